import { mkdir } from 'node:fs/promises';
import autocannon from 'autocannon';
import Table from 'cli-table3';
import { Command } from 'commander';
import pc from 'picocolors';
import { ResultsError } from '../errors.ts';
import { HttpAdminError } from '../http/errors.ts';
import {
  checkBounds,
  checkTarget,
  defaultHttpLoadDir,
  HTTP_LOAD_FILE,
  type HttpLoadParameters,
  type HttpLoadRecord,
  LOAD_BOUNDS,
  runHttpLoad,
  utcStamp,
} from '../http/load.ts';
import { writeJson } from '../results/store.ts';
import { integerIn, tokenFromEnv } from './serve.ts';

interface HttpLoadOptions {
  url: string;
  connections: number;
  duration: number;
  amount?: number;
  tokenEnv: string;
  run?: string;
  commands: number;
  users: number;
  allowRemote?: boolean;
  out?: string;
  progress: boolean;
  json?: boolean;
}

export function httpLoadCommand(): Command {
  const b = LOAD_BOUNDS;
  return new Command('http-load')
    .description('Load the HTTP admin API with valid command batches (autocannon) and store the result')
    .option('--url <url>', "the admin API's base URL", 'http://127.0.0.1:8080')
    .option(
      '-c, --connections <n>',
      'concurrent connections',
      integerIn(b.connections.min, b.connections.max),
      10,
    )
    .option(
      '-d, --duration <seconds>',
      'how long to send (also the limit when --amount is set)',
      integerIn(b.durationSeconds.min, b.durationSeconds.max),
      10,
    )
    .option(
      '-a, --amount <n>',
      'stop after this many requests (or at --duration, whichever comes first)',
      integerIn(b.amount.min, b.amount.max),
    )
    .option('--token-env <name>', 'environment variable holding the bearer token', 'PHASEBENCH_TOKEN')
    .option('--run <id>', 'run id the commands are submitted for (default: http-load/<timestamp>)')
    .option(
      '--commands <n>',
      'commands in each request',
      integerIn(b.commandsPerBatch.min, b.commandsPerBatch.max),
      3,
    )
    .option(
      '--users <n>',
      'users in each moveUsers / activateDevices command',
      integerIn(b.usersPerCommand.min, b.usersPerCommand.max),
      10,
    )
    .option('--allow-remote', 'allow a target that is not a loopback address')
    .option('-o, --out <dir>', 'results folder (default: results/http-load-<timestamp>)')
    .option('--no-progress', 'no progress bar')
    .option('--json', 'print http-load.json to stdout instead of the table')
    .addHelpText(
      'after',
      `
Examples:
  $ phasebench serve --rate-limit 0 &
  $ phasebench http-load --connections 20 --duration 30
  $ phasebench http-load --amount 5000 --commands 10 --users 100

Every request is a fresh, valid batch for one run (moveUsers, changeItPolicy and activateDevices
in turn). Writes results/http-load-<timestamp>/http-load.json: the parameters and autocannon's
result, its latency histogram as autocannon reports it. Exits 1 if no request was accepted.`,
    )
    .action(async (options: HttpLoadOptions) => {
      const target = checkTarget(options.url, options.allowRemote ?? false);
      const token = tokenFromEnv(options.tokenEnv);
      const startedAt = new Date();
      const parameters: HttpLoadParameters = {
        url: target.origin,
        connections: options.connections,
        durationSeconds: options.duration,
        ...(options.amount === undefined ? {} : { amount: options.amount }),
        run: options.run ?? `http-load/${utcStamp(startedAt)}`,
        commandsPerBatch: options.commands,
        usersPerCommand: options.users,
      };
      checkBounds(parameters);
      await preflight(target, parameters.run, token);

      const showProgress = options.progress && !options.json && process.stderr.isTTY;
      const stopOnSigint = (): void => current?.stop();
      let current: autocannon.Instance | undefined;
      process.once('SIGINT', stopOnSigint);
      let result: autocannon.Result;
      try {
        result = await runHttpLoad(parameters, token, {
          onStart: (instance) => {
            current = instance;
            // Display only listens to the run's events.
            autocannon.track(instance, { renderProgressBar: showProgress, renderResultsTable: false });
          },
        });
      } finally {
        process.off('SIGINT', stopOnSigint);
      }

      const record: HttpLoadRecord = { schema: 'phasebench.http-load/1', parameters, result };
      const outDir = options.out ?? defaultHttpLoadDir(startedAt);
      try {
        await mkdir(outDir, { recursive: true });
      } catch (cause) {
        throw new ResultsError(`cannot create the results folder ${outDir}: ${(cause as Error).message}`, {
          target: outDir,
          cause,
        });
      }
      await writeJson(outDir, HTTP_LOAD_FILE, record);

      if (options.json) process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
      else {
        console.log(loadTable(result));
        const limited = result.statusCodeStats?.['429']?.count ?? 0;
        if (limited > 0) {
          console.log(
            pc.yellow(
              `${limited.toLocaleString('en-US')} requests were rate limited (429); for ingress throughput, ` +
                'start the server with --rate-limit 0.',
            ),
          );
        }
        console.log(pc.dim(`Results: ${outDir}`));
      }
      if (result['2xx'] === 0) {
        throw new HttpAdminError(
          'LOAD_NOTHING_ACCEPTED',
          `no request was accepted (${result.errors} connection errors, ${result.non2xx} non-2xx answers)`,
        );
      }
    });
}

/**
 * Before sending load: the server is there and takes the token (GET /v1/runs/:id needs it and
 * changes nothing), so a wrong token is one clear error instead of thousands of 401s.
 */
async function preflight(target: URL, run: string, token: string): Promise<void> {
  let response: Response;
  try {
    response = await fetch(new URL(`/v1/runs/${encodeURIComponent(run)}`, target), {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(10_000),
    });
    await response.arrayBuffer();
  } catch (cause) {
    throw new HttpAdminError('SERVER_UNREACHABLE', `cannot reach the admin API at ${target.origin}`, {
      retriable: true,
      cause,
    });
  }
  if (response.status === 401) {
    throw new HttpAdminError('TOKEN_REJECTED', `the admin API at ${target.origin} rejected the token (401)`);
  }
}

function loadTable(result: autocannon.Result): string {
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const ms = (n: number): string => `${n.toLocaleString('en-US', { maximumFractionDigits: 2 })} ms`;
  const table = new Table({ style: { head: [], border: [] } });
  table.push(
    { 'requests / s (mean)': count(result.requests.mean) },
    { 'requests answered': count(result.requests.total) },
    { 'latency p50': ms(result.latency.p50) },
    { 'latency p97.5': ms(result.latency.p97_5) },
    { 'latency p99': ms(result.latency.p99) },
    { '2xx': count(result['2xx']) },
    { 'non-2xx': count(result.non2xx) },
    { 'errors (timeouts)': `${count(result.errors)} (${count(result.timeouts)})` },
    { duration: `${result.duration} s, ${result.connections} connections` },
  );
  return table.toString();
}
