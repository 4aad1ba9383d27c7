/**
 * The HTTP admin API: operators (and load generators) submit command batches, which become
 * CommandAccepted facts in the event log; run status is read back from that log.
 *
 *   POST /v1/commands   bearer token; body { run, commands: [...] } -> 202 { run, accepted, ids }
 *   GET  /v1/runs/:id   bearer token; the run's status folded from the log -> 200, or 404
 *   GET  /metrics       Prometheus text (unauthenticated, like any scrape target)
 *   GET  /healthz       200 { status: 'ok' } (unauthenticated)
 *
 * Every error is JSON: { error: { code, message, field?, issues? } }.
 *
 * A request passes, in order: the per-client rate limit (onRequest, so a client guessing tokens is
 * throttled too), the token check (preParsing, so no body of an unauthenticated client is read),
 * the body size limit (while parsing), then schema validation. Only a batch that passes all four
 * reaches the log.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import rateLimitPlugin from '@fastify/rate-limit';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifyServerOptions,
  LogController,
  type preParsingHookHandler,
} from 'fastify';
import { Registry } from 'prom-client';
import { EventLogError } from '../log/errors.ts';
import type { EventLog } from '../log/port.ts';
import type { Clock } from '../sim/clock.ts';
import { HttpAdminError } from './errors.ts';
import { HTTP_METRICS, HttpMetrics, UNMATCHED_ROUTE } from './metrics.ts';
import { BatchedLogDestination } from './request-log.ts';
import { CommandRecorder, readRunStatus } from './runs.ts';
import { BODY_FIELD, type FieldIssue, validateCommandBatch } from './validate.ts';

export type ApiErrorCode =
  | 'UNAUTHORIZED'
  | 'RATE_LIMITED'
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_JSON'
  | 'INVALID_COMMAND'
  | 'BAD_REQUEST'
  | 'RUN_NOT_FOUND'
  | 'NOT_FOUND'
  | 'LOG_UNAVAILABLE'
  | 'INTERNAL';

/** The body of every error answer. */
export interface ApiErrorBody {
  error: {
    code: ApiErrorCode;
    message: string;
    /** The first offending field (`commands[0].users[1]`), or '(body)'; for 400 answers. */
    field?: string;
    /** Every problem found (up to MAX_ISSUES), for INVALID_COMMAND. */
    issues?: FieldIssue[];
  };
}

/** The body of a 202 answer: the ids of the stored CommandAccepted events, in command order. */
export interface CommandsAcceptedBody {
  run: string;
  accepted: number;
  ids: string[];
}

export interface RateLimit {
  /** Requests one client (one IP address) may make per window. */
  max: number;
  windowMs: number;
}

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;
/** 20 requests a second per client: plenty for operators; load runs raise or switch it off. */
export const DEFAULT_RATE_LIMIT: RateLimit = { max: 1200, windowMs: 60_000 };

export interface AdminServerOptions {
  /** Where accepted commands go: MemoryEventLog by default in `serve`, any EventLog adapter. */
  log: EventLog;
  /** The bearer token clients must present. Must not be empty. */
  token: string;
  /**
   * Stamps `at` on CommandAccepted facts: milliseconds since the server started (`serve` uses a
   * WallClock at time scale 1). Only `now` is read.
   */
  clock: Pick<Clock, 'now'>;
  /** Largest request body accepted; larger ones get 413. Default 1 MiB. */
  bodyLimitBytes?: number;
  /** Per-client limit on /v1 routes (429 with Retry-After beyond it); false: none. Default 1,200 a minute. */
  rateLimit?: RateLimit | false;
  /** Where the metrics are registered and exposed from. Default: a registry of the server's own. */
  registry?: Registry;
  /** pino level for the request log. Default 'info'. */
  logLevel?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
  /** Where the request log goes. Default stdout, written in batches at most 100 ms apart (BatchedLogDestination). */
  logStream?: NodeJS.WritableStream;
}

/** An answer other than success, thrown by hooks and handlers and rendered by the error handler. */
class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details: { field?: string; issues?: FieldIssue[] } = {},
  ) {
    super(message);
  }

  body(): ApiErrorBody {
    return { error: { code: this.code, message: this.message, ...this.details } };
  }
}

/**
 * One log line per request, written when it completes, with the request (its id, method, url,
 * remote address) and its outcome together: fastify's default is two lines, which doubles the
 * log volume (and its cost) under load.
 */
class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(
    error: Error | null | undefined,
    request: FastifyRequest,
    reply: FastifyReply,
  ): void {
    const line = { reqId: request.id, req: request, res: reply, responseTime: reply.elapsedTime };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}

/**
 * The admin API's request log as fastify options: pino at `level`, one line per request, to
 * `stream` or else to stdout in batches (BatchedLogDestination). `flush` writes what is pending;
 * call it on close. Exported so the HTTP bench can measure a server with this log and nothing else.
 */
export function requestLogging(
  level: AdminServerOptions['logLevel'] = 'info',
  stream?: NodeJS.WritableStream,
): { fastifyOptions: FastifyServerOptions; flush: () => void } {
  const stdoutLog = stream === undefined ? new BatchedLogDestination(1) : undefined;
  return {
    fastifyOptions: {
      logController: new OneLinePerRequest(),
      logger: { level, stream: stream ?? stdoutLog },
      // request.log is the server's logger itself, not a child made for each request to carry
      // its id: each line that concerns a request names it (reqId) instead. The child, made and
      // thrown away per request, measured as a third of the request log's cost.
      childLoggerFactory: (logger) => logger,
    },
    flush: () => stdoutLog?.flushSync(),
  };
}

/** Builds the admin API, ready to `listen`. Closing it does not close the log: its owner does. */
export async function buildServer(options: AdminServerOptions): Promise<FastifyInstance> {
  if (options.token.trim() === '') {
    throw new HttpAdminError('TOKEN_MISSING', 'the admin API needs a non-empty bearer token');
  }
  const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT;
  const registry = options.registry ?? new Registry();
  const metrics = new HttpMetrics(registry);
  const recorder = new CommandRecorder(options.log, options.clock);
  const authenticate = bearerCheck(options.token);
  const requestLog = requestLogging(options.logLevel, options.logStream);

  const app = Fastify({
    bodyLimit: bodyLimitBytes,
    ...requestLog.fastifyOptions,
  }) as unknown as FastifyInstance;
  // (The cast drops the pino-specific logger generic that the logger options infer.)
  // Bodies are JSON only: fastify would hand a text/plain body to the route as a string.
  app.removeContentTypeParser('text/plain');

  app.setErrorHandler((error, request, reply) => {
    const answer = toApiError(error, bodyLimitBytes);
    if (answer.statusCode >= 500) request.log.error({ reqId: request.id, err: error }, 'request failed');
    if (answer.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="phasebench"');
    return reply.code(answer.statusCode).send(answer.body());
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send(new ApiError(404, 'NOT_FOUND', `no route ${request.method} ${request.url}`).body()),
  );

  // Hooks take a callback rather than being async: one promise fewer per request each.
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    metrics.requestAnswered(route, request.method, reply.statusCode, reply.elapsedTime / 1000);
    done();
  });
  app.addHook('onClose', async () => {
    // So the same registry can serve a server built after this one.
    for (const { name } of Object.values(HTTP_METRICS)) registry.removeSingleMetric(name);
    requestLog.flush();
  });

  if (rateLimit !== false) {
    await app.register(rateLimitPlugin, {
      global: true,
      max: rateLimit.max,
      timeWindow: rateLimit.windowMs,
      hook: 'onRequest',
      errorResponseBuilder: (_request, context) =>
        new ApiError(
          429,
          'RATE_LIMITED',
          `rate limit reached: at most ${context.max} requests per ${rateLimit.windowMs / 1000} s per client; ` +
            `retry in ${context.after}`,
        ),
    });
  }
  const unlimited = { rateLimit: false as const };

  app.get('/healthz', { config: unlimited }, async () => ({ status: 'ok' }));

  app.get('/metrics', { config: unlimited }, async (_request, reply) => {
    reply.type(registry.contentType);
    return registry.metrics();
  });

  app.post('/v1/commands', { preParsing: authenticate, schema: ACCEPTED_SCHEMA }, async (request, reply) => {
    const validation = validateCommandBatch(request.body);
    if (!validation.ok) {
      const [first] = validation.issues;
      const more = validation.issues.length > 1 ? ` (and ${validation.issues.length - 1} more)` : '';
      throw new ApiError(400, 'INVALID_COMMAND', `${first!.field}: ${first!.problem}${more}`, {
        field: first!.field,
        issues: validation.issues,
      });
    }
    const facts = await recorder.record(validation.batch);
    for (const fact of facts) metrics.commandAccepted(fact.data.type);
    // Debug, not info: fastify already logs every request at info, and the facts are in the log.
    request.log.debug(
      { reqId: request.id, run: validation.batch.run, accepted: facts.length, firstSeq: facts[0]!.seq },
      'commands accepted',
    );
    const body: CommandsAcceptedBody = {
      run: validation.batch.run,
      accepted: facts.length,
      ids: facts.map((fact) => fact.id),
    };
    return reply.code(202).send(body);
  });

  app.get<{ Params: { id: string } }>('/v1/runs/:id', { preParsing: authenticate }, async (request) => {
    const status = await readRunStatus(options.log, request.params.id);
    if (status === undefined) {
      throw new ApiError(404, 'RUN_NOT_FOUND', `the event log holds no run '${request.params.id}'`);
    }
    return status;
  });

  return app;
}

/**
 * The 202 answer's shape, so fastify writes it with a serializer compiled for it (fast-json-stringify)
 * instead of JSON.stringify; answers with other status codes are written as before.
 */
const ACCEPTED_SCHEMA = {
  response: {
    202: {
      type: 'object',
      properties: {
        run: { type: 'string' },
        accepted: { type: 'integer' },
        ids: { type: 'array', items: { type: 'string' } },
      },
      required: ['run', 'accepted', 'ids'],
      additionalProperties: false,
    },
  },
} as const;

/**
 * The token check. Both sides are hashed first, so timingSafeEqual compares equal-length buffers
 * and neither the comparison time nor an early length check says how long the token is.
 */
function bearerCheck(token: string): preParsingHookHandler {
  const expected = sha256(token);
  return (request, _reply, payload, done) => {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    if (match === null) {
      done(
        new ApiError(401, 'UNAUTHORIZED', 'a bearer token is required: send Authorization: Bearer <token>'),
      );
    } else if (!timingSafeEqual(sha256(match[1]!), expected)) {
      done(new ApiError(401, 'UNAUTHORIZED', 'the bearer token is not valid'));
    } else {
      done(null, payload);
    }
  };
}

function sha256(text: string): Buffer {
  // The one-shot hash: a createHash object per request measured as a tenth of the request's CPU.
  return hash('sha256', text, 'buffer');
}

function toApiError(error: unknown, bodyLimitBytes: number): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof EventLogError) {
    // The batch was not (fully) stored; a retriable log failure is worth the client retrying.
    return error.retriable
      ? new ApiError(503, 'LOG_UNAVAILABLE', `the event log is unavailable, retry: ${error.message}`)
      : new ApiError(500, 'INTERNAL', `the event log failed [${error.code}]; see the server log`);
  }
  const code = (error as { code?: unknown }).code;
  const statusCode = (error as { statusCode?: unknown }).statusCode;
  const message = error instanceof Error ? error.message : String(error);
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'BODY_TOO_LARGE', `the request body is larger than ${bodyLimitBytes} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send the body as Content-Type: application/json');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'INVALID_JSON', 'the body is empty; expected a JSON object', {
        field: BODY_FIELD,
      });
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'INVALID_JSON', `the body is not valid JSON: ${message}`, {
        field: BODY_FIELD,
      });
  }
  // JSON.parse and the prototype-poisoning guard throw SyntaxErrors that fastify marks 400.
  if (statusCode === 400 && error instanceof SyntaxError) {
    return new ApiError(400, 'INVALID_JSON', `the body is not valid JSON: ${message}`, { field: BODY_FIELD });
  }
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    return new ApiError(statusCode, 'BAD_REQUEST', message);
  }
  return new ApiError(500, 'INTERNAL', 'internal error; see the server log');
}
