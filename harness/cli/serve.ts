import { Command, InvalidArgumentError } from 'commander';
import { HttpAdminError } from '../http/errors.ts';
import { isLoopbackHost } from '../http/load.ts';
import { type AdminServerOptions, buildServer, DEFAULT_BODY_LIMIT_BYTES } from '../http/server.ts';
import { MemoryEventLog } from '../log/memory.ts';
import type { EventLog } from '../log/port.ts';
import { processRegistry } from '../metrics/names.ts';
import { WallClock } from '../sim/clock.ts';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
type LogLevel = (typeof LOG_LEVELS)[number];

/** A commander parser for an integer flag within [min, max]. */
export function integerIn(min: number, max: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer from ${min} to ${max}.`);
    }
    return n;
  };
}

/** The bearer token from the environment variable named by --token-env. */
export function tokenFromEnv(variable: string, env: NodeJS.ProcessEnv = process.env): string {
  const token = env[variable]?.trim();
  if (!token) {
    throw new HttpAdminError(
      'TOKEN_MISSING',
      `no bearer token: the environment variable ${variable} is not set or empty. Set it to the secret ` +
        'clients send as "Authorization: Bearer <token>", or name another variable with --token-env.',
    );
  }
  return token;
}

export interface ServeOptions {
  port: number;
  host: string;
  tokenEnv: string;
  /** Requests per minute per client on /v1 routes; 0: no limit. */
  rateLimit: number;
  bodyLimit: number;
  logLevel: LogLevel;
}

export interface RunningServer {
  /** http://host:port as bound (the real port when 0 was asked for). */
  url: string;
  /** Stops accepting, finishes the requests in flight, then closes the log. Idempotent. */
  close(): Promise<void>;
  /** Settles once the server and its log are closed. */
  closed: Promise<void>;
}

/**
 * Starts the admin API on a fresh in-memory event log and stops it gracefully on SIGTERM or
 * SIGINT (a second signal ends the process the usual way).
 * @throws HttpAdminError TOKEN_MISSING (exit 2) without a token, LISTEN_FAILED when it cannot bind
 */
export async function startServe(
  options: ServeOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningServer> {
  const token = tokenFromEnv(options.tokenEnv, env);
  const log: EventLog = new MemoryEventLog();
  // Process metrics as every phasebench /metrics has them, so promtool finds nothing to report.
  const registry = processRegistry();
  const serverOptions: AdminServerOptions = {
    log,
    token,
    clock: new WallClock(1),
    bodyLimitBytes: options.bodyLimit,
    rateLimit: options.rateLimit === 0 ? false : { max: options.rateLimit, windowMs: 60_000 },
    registry,
    logLevel: options.logLevel,
  };
  const app = await buildServer(serverOptions);
  let url: string;
  try {
    url = await app.listen({ port: options.port, host: options.host });
  } catch (cause) {
    await app.close();
    await log.close();
    throw new HttpAdminError(
      'LISTEN_FAILED',
      `cannot listen on ${options.host}:${options.port}: ${(cause as Error).message}`,
      { cause },
    );
  }

  let closing: Promise<void> | undefined;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolveClosed) => {
    markClosed = resolveClosed;
  });
  const close = (): Promise<void> => {
    closing ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      await app.close();
      await log.close();
      markClosed();
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`${signal}: finishing requests in flight, then stopping`);
    void close().then(() => console.error('admin API stopped'));
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return { url, close, closed };
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('Serve the HTTP admin API: accept operator commands into an event log, expose /metrics')
    .option('--port <n>', 'port to listen on (0: any free port)', integerIn(0, 65_535), 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--token-env <name>', 'environment variable holding the bearer token', 'PHASEBENCH_TOKEN')
    .option(
      '--rate-limit <n>',
      'requests per minute per client on /v1 routes (0: no limit)',
      integerIn(0, 10_000_000),
      1200,
    )
    .option(
      '--body-limit <bytes>',
      'largest request body accepted',
      integerIn(1024, 64 * 1024 * 1024),
      DEFAULT_BODY_LIMIT_BYTES,
    )
    .option('--log-level <level>', `request log level (${LOG_LEVELS.join(', ')})`, logLevel, 'info')
    .addHelpText(
      'after',
      `
Routes:
  POST /v1/commands   bearer token; { run, commands: [...] } -> 202 { run, accepted, ids }
  GET  /v1/runs/:id   bearer token; commands accepted for the run (encode '/' in ids as %2F)
  GET  /metrics       Prometheus text
  GET  /healthz       { "status": "ok" }

Examples:
  $ PHASEBENCH_TOKEN=$(openssl rand -hex 32) phasebench serve
  $ phasebench serve --port 9090 --rate-limit 0      # no rate limit, for http-load runs

Accepted commands go to an in-memory event log and the request log goes to stdout as JSON
lines. SIGTERM or Ctrl-C finishes the requests in flight, then stops.`,
    )
    .action(async (options: ServeOptions) => {
      const server = await startServe(options);
      if (!isLoopbackHost(options.host)) {
        console.error(
          `warning: listening on ${options.host}, beyond this machine; the token travels in clear over http`,
        );
      }
      console.error(`phasebench admin API on ${server.url} (Ctrl-C stops it)`);
      await server.closed;
    });
}

function logLevel(value: string): LogLevel {
  if (!(LOG_LEVELS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}.`);
  }
  return value as LogLevel;
}
