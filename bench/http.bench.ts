/**
 * Benchmark: requests/s of the HTTP admin API next to a bare node:http server, in one run, under
 * the same load (issue 5: the admin API, validation and logging on, should answer at least half
 * as many requests a second).
 *
 *   admin API     buildServer as `serve` runs it: rate limit on (at 1,000,000,000 a minute, never
 *                 reached), bearer token, body limit, validation, CommandAccepted facts appended
 *                 to a memory event log, metrics, and the request log at info, written to a file
 *   bare server   node:http: reads the whole body, answers 202 with a JSON body of the same size
 *
 * With --references, three more servers are measured in the same rounds, each against the bare
 * server, to show where the ceiling is on this machine:
 *
 *   fastify, nothing on     fastify parses the JSON body and answers a fixed 202: no token,
 *                           validation, rate limit, metrics, event log or request log
 *   fastify + request log   the same with the admin API's request log (requestLogging), to a file
 *   node:http + the work    no framework: reads the body, JSON.parse, validateCommandBatch,
 *                           CommandRecorder on a memory log, the ids as the answer, one pino line
 *                           per request to a file (no token check or rate limit)
 *
 * Each server runs in a child process of its own; autocannon runs here, with the same
 * connections, pipelining, round length and requests for both: a pool of valid command batches
 * built before the run (the generator only writes prepared bytes, so it measures the servers, not
 * itself). After a warm-up each, the servers take turns in rounds (each round starts one server
 * later than the last: ABBA for two), so a busy
 * neighbour on the machine slows both rather than one, and the headline is the median of the
 * rounds' ratios. Only 2xx answers count as throughput; errors and non-2xx answers are shown
 * beside it. It prints figures and asserts nothing: the machine is shared.
 *
 *   npm run bench:http
 *   npm run bench:http -- --rounds 8 --round-seconds 5 --connections 20
 *   npm run bench:http -- --commands 1 --users 1    the smallest valid body instead of 3 × 10
 *   npm run bench:http -- --references          also fastify alone, with its log, and node:http doing the work
 *   npm run bench:http -- --json
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type autocannon from 'autocannon';
import Table from 'cli-table3';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { type HttpLoadParameters, runHttpLoad } from '../harness/http/load.ts';
import { BatchedLogDestination } from '../harness/http/request-log.ts';
import { CommandRecorder } from '../harness/http/runs.ts';
import { buildServer, requestLogging } from '../harness/http/server.ts';
import { validateCommandBatch } from '../harness/http/validate.ts';
import { MemoryEventLog } from '../harness/log/memory.ts';
import { WallClock } from '../harness/sim/clock.ts';
import { benchArgs, positiveInteger } from './args.ts';
import { medianOf } from './median.ts';

const args = benchArgs(
  'npm run bench:http --',
  'Requests a second of the admin API (validation and logging on) against a bare node:http server, ' +
    "with autocannon, in rounds; the median of the rounds' ratios is the headline (target: 50%).",
  {
    connections: { type: 'string', default: '10', help: 'connections autocannon keeps open', value: 'n' },
    pipelining: { type: 'string', default: '1', help: 'requests in flight per connection', value: 'n' },
    rounds: { type: 'string', default: '6', help: 'rounds; each measures every server once', value: 'n' },
    'round-seconds': { type: 'string', default: '3', help: 'seconds per server per round', value: 's' },
    warmup: { type: 'string', default: '3', help: 'seconds of warm-up per server', value: 's' },
    commands: { type: 'string', default: '3', help: 'commands in each request body', value: 'n' },
    users: { type: 'string', default: '10', help: 'users named by each command', value: 'n' },
    references: {
      type: 'boolean',
      default: false,
      help: 'also fastify alone, fastify with the request log, and node:http doing the work',
    },
    json: { type: 'boolean', default: false, help: 'the figures as JSON on stdout' },
    // Internal: the child process mode, one server per child.
    serve: { type: 'string' },
  },
);

type Target = 'admin' | 'bare' | Reference;
type Reference = 'fastify' | 'fastifyLog' | 'work';
const REFERENCES: readonly Reference[] = ['fastify', 'fastifyLog', 'work'];
const TARGETS: readonly Target[] = ['admin', 'bare', ...(args.references ? REFERENCES : [])];
const LABEL: Record<Target, string> = {
  admin: 'admin API',
  bare: 'bare node:http',
  fastify: 'fastify, nothing on',
  fastifyLog: 'fastify + request log',
  work: 'node:http + the work',
};
/** Servers that write a request log: stdout goes to a file, which the parent measures. */
const LOGGING: ReadonlySet<Target> = new Set(['admin', 'fastifyLog', 'work']);
const TOKEN_VARIABLE = 'PHASEBENCH_BENCH_TOKEN';
/** Far above what any round can send: the limiter runs (its cost is measured) but never refuses. */
const RATE_LIMIT_PER_MINUTE = 1_000_000_000;
const RUN = 'bench/measure';
/**
 * The shape of every request body: --commands commands (moveUsers, changeItPolicy and
 * activateDevices in turn), each naming --users users where it names users.
 */
const BATCH = {
  commandsPerBatch: positiveInteger('commands', args.commands),
  usersPerCommand: positiveInteger('users', args.users),
  batchPool: 256,
};

/** Child mode: start one server on 127.0.0.1, report its port to the parent, stop on SIGTERM. */
async function serveInChild(target: Target): Promise<void> {
  const { port, close } = await SERVERS[target]();
  process.once('SIGTERM', () => void close().then(() => process.disconnect?.()));
  // The parent asks for the CPU time used so far, to work out CPU per request.
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
  process.send?.({ port });
}

interface Listening {
  port: number;
  close: () => Promise<void>;
}

/** The admin API's answer to a 3-command batch has this shape and about this size. */
const FIXED_ANSWER = JSON.stringify({
  run: RUN,
  accepted: 3,
  ids: [`${RUN}#c1000000`, `${RUN}#c1000001`, `${RUN}#c1000002`],
});
const JSON_TYPE = 'application/json; charset=utf-8';

const SERVERS: Record<Target, () => Promise<Listening>> = {
  admin: async () => {
    const app = await buildServer({
      log: new MemoryEventLog(),
      token: process.env[TOKEN_VARIABLE] ?? '',
      clock: new WallClock(1),
      rateLimit: { max: RATE_LIMIT_PER_MINUTE, windowMs: 60_000 },
      logLevel: 'info',
      // The request log goes to its default destination, stdout: the parent points it at a file.
    });
    return listenFastify(app);
  },
  bare: () => listenNodeHttp((_body, respond) => respond(FIXED_ANSWER)),
  fastify: () => listenFastify(fixedAnswerApp(Fastify() as unknown as FastifyInstance)),
  fastifyLog: async () => {
    const log = requestLogging('info');
    const app = fixedAnswerApp(Fastify(log.fastifyOptions) as unknown as FastifyInstance);
    app.addHook('onClose', async () => log.flush());
    return listenFastify(app);
  },
  work: () => {
    const destination = new BatchedLogDestination(1);
    const logger = pino({ level: 'info' }, destination);
    const recorder = new CommandRecorder(new MemoryEventLog(), new WallClock(1));
    return listenNodeHttp(
      (body, respond, started) => {
        const validation = validateCommandBatch(JSON.parse(body.toString('utf8')));
        if (!validation.ok)
          throw new Error(`the bench sent an invalid batch: ${validation.issues[0]!.problem}`);
        void recorder.record(validation.batch).then((facts) => {
          const { run } = validation.batch;
          respond(JSON.stringify({ run, accepted: facts.length, ids: facts.map((fact) => fact.id) }));
          logger.info(
            { url: '/v1/commands', statusCode: 202, responseTime: performance.now() - started },
            'request completed',
          );
        });
      },
      () => destination.flushSync(),
    );
  },
};

/** POST /v1/commands answers FIXED_ANSWER with 202, after fastify has parsed the JSON body. */
function fixedAnswerApp(app: FastifyInstance): FastifyInstance {
  app.post('/v1/commands', (_request, reply) => {
    reply.code(202).type(JSON_TYPE).send(FIXED_ANSWER);
  });
  return app;
}

async function listenFastify(app: FastifyInstance): Promise<Listening> {
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

/** A node:http server that reads the whole body (not decoded) and hands it to `handle`, which answers with `respond`. */
async function listenNodeHttp(
  handle: (body: Buffer, respond: (answer: string) => void, started: number) => void,
  onClose: () => void = () => {},
): Promise<Listening> {
  const server = createServer((request, response) => {
    const started = performance.now();
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      handle(
        Buffer.concat(chunks),
        (answer) => {
          response.writeHead(202, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(answer) });
          response.end(answer);
        },
        started,
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) =>
        server.close(() => {
          onClose();
          resolve();
        }),
      ),
  };
}

async function startChild(
  target: Target,
  token: string,
  stdout: number | 'ignore',
): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', target], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, [TOKEN_VARIABLE]: token },
    stdio: ['ignore', stdout, 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`the ${target} server exited (${code}) before listening`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

/** User + system CPU microseconds the child has used so far. */
function cpuMicros(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (message) => {
      const { cpu } = message as { cpu: NodeJS.CpuUsage };
      resolve(cpu.user + cpu.system);
    });
    child.send('cpu');
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

/** One server's figures over one round. */
interface RoundFigures {
  /** 2xx answers a second: errors and other answers are not throughput. */
  requestsPerSecond: number;
  ok: number;
  non2xx: number;
  /** Connection errors and timeouts. */
  errors: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  seconds: number;
  serverCpuMicros: number;
}

interface Round {
  round: number;
  order: Target[];
  admin: RoundFigures;
  bare: RoundFigures;
  /** admin requests/s over bare requests/s in this round. */
  ratio: number;
  /** With --references: each reference server's figures, its ratio to the bare server's. */
  references?: Partial<Record<Reference, RoundFigures & { ratio: number }>>;
}

function figures(result: autocannon.Result, serverCpuMicros: number): RoundFigures {
  return {
    requestsPerSecond: result['2xx'] / result.duration,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    seconds: result.duration,
    serverCpuMicros,
  };
}

/** A server's rounds together: requests/s over all its seconds, latency as the rounds' median. */
function summary(rounds: readonly RoundFigures[]) {
  const sum = (pick: (r: RoundFigures) => number): number => rounds.reduce((n, r) => n + pick(r), 0);
  const ok = sum((r) => r.ok);
  return {
    requestsPerSecond: ok / sum((r) => r.seconds),
    ok,
    non2xx: sum((r) => r.non2xx),
    errors: sum((r) => r.errors),
    latencyP50Ms: medianOf(rounds.map((r) => r.latencyP50Ms)),
    latencyP99Ms: medianOf(rounds.map((r) => r.latencyP99Ms)),
    /** Server CPU time per 2xx answer: less sensitive to a busy machine than requests/s. */
    serverCpuMicrosPerRequest: sum((r) => r.serverCpuMicros) / ok,
  };
}

interface RatioSpread {
  medianRatio: number;
  minRatio: number;
  maxRatio: number;
}

/** The rounds' ratios of one server to the bare one: their median and range. */
function spread(ratios: readonly number[]): RatioSpread {
  return { medianRatio: medianOf(ratios), minRatio: Math.min(...ratios), maxRatio: Math.max(...ratios) };
}

async function main(): Promise<void> {
  const connections = positiveInteger('connections', args.connections);
  const pipelining = positiveInteger('pipelining', args.pipelining);
  const roundCount = positiveInteger('rounds', args.rounds);
  const roundSeconds = positiveInteger('round-seconds', args['round-seconds']);
  const warmupSeconds = positiveInteger('warmup', args.warmup);
  const progress = (line: string): void => {
    if (!args.json) console.error(line);
  };
  const token = randomBytes(24).toString('hex');
  const logDir = mkdtempSync(join(tmpdir(), 'phasebench-bench-http-'));
  const requestLogs = new Map(
    TARGETS.filter((target) => LOGGING.has(target)).map((target) => {
      const path = join(logDir, `${target}-requests.log`);
      return [target, { path, fd: openSync(path, 'w') }] as const;
    }),
  );
  const loadAverageAtStart = loadavg()[0]!;
  const servers = {} as Record<Target, { url: string; child: ChildProcess }>;
  for (const target of TARGETS) {
    servers[target] = await startChild(target, token, requestLogs.get(target)?.fd ?? 'ignore');
  }
  const parameters = (target: Target, seconds: number): HttpLoadParameters => ({
    url: servers[target].url,
    connections,
    pipelining,
    durationSeconds: seconds,
    run: RUN,
    ...BATCH,
  });
  const rounds: Round[] = [];
  let requestLogBytes = 0;
  try {
    for (const target of TARGETS) {
      progress(`warm-up: ${LABEL[target]}, ${warmupSeconds} s…`);
      await runHttpLoad(parameters(target, warmupSeconds), token);
    }
    for (let round = 1; round <= roundCount; round++) {
      // Each round starts one server later (ABBA for two): none always goes first, when the
      // machine may have just got busier.
      const shift = (round - 1) % TARGETS.length;
      const order = [...TARGETS.slice(shift), ...TARGETS.slice(0, shift)];
      const measured = {} as Record<Target, RoundFigures>;
      for (const target of order) {
        progress(`round ${round}/${roundCount}: ${LABEL[target]}, ${roundSeconds} s…`);
        const cpuBefore = await cpuMicros(servers[target].child);
        const result = await runHttpLoad(parameters(target, roundSeconds), token);
        measured[target] = figures(result, (await cpuMicros(servers[target].child)) - cpuBefore);
      }
      const toBare = (target: Target): number =>
        measured[target].requestsPerSecond / measured.bare.requestsPerSecond;
      rounds.push({
        round,
        order,
        admin: measured.admin,
        bare: measured.bare,
        ratio: toBare('admin'),
        ...(args.references && {
          references: Object.fromEntries(
            REFERENCES.map((reference) => [reference, { ...measured[reference], ratio: toBare(reference) }]),
          ),
        }),
      });
    }
  } finally {
    await Promise.all(TARGETS.map((target) => stopChild(servers[target].child)));
    requestLogBytes = statSync(requestLogs.get('admin')!.path).size;
    for (const { fd } of requestLogs.values()) closeSync(fd);
    rmSync(logDir, { recursive: true, force: true });
  }

  const admin = summary(rounds.map((r) => r.admin));
  const bare = summary(rounds.map((r) => r.bare));
  const adminRatios = spread(rounds.map((r) => r.ratio));
  const references = args.references
    ? Object.fromEntries(
        REFERENCES.map((reference) => {
          const figures = rounds.map((r) => r.references![reference]!);
          return [reference, { ...summary(figures), ...spread(figures.map((f) => f.ratio)) }];
        }),
      )
    : undefined;
  const report = {
    parameters: {
      connections,
      pipelining,
      rounds: roundCount,
      roundSeconds,
      warmupSeconds,
      ...BATCH,
      rateLimitPerMinute: RATE_LIMIT_PER_MINUTE,
    },
    rounds,
    admin,
    bare,
    medianRatio: adminRatios.medianRatio,
    target: 0.5,
    ...(references && { references }),
    requestLogBytes,
    machine: {
      cores: availableParallelism(),
      loadAverageAtStart,
      loadAverageAtEnd: loadavg()[0]!,
    },
  };
  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }

  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;
  const ms = (n: number): string => `${n} ms`;
  const perRound = new Table({
    head: ['round', 'order', 'admin API 2xx/s', 'bare 2xx/s', 'ratio'],
    style: { head: [], border: [] },
  });
  for (const r of rounds) {
    perRound.push([
      r.round,
      r.order.join(', '),
      count(r.admin.requestsPerSecond),
      count(r.bare.requestsPerSecond),
      percent(r.ratio),
    ]);
  }
  const totals = new Table({
    head: [
      'server',
      '2xx/s',
      'of bare (rounds)',
      'latency p50',
      'latency p99',
      '2xx',
      'non-2xx',
      'errors',
      'server CPU / 2xx',
    ],
    style: { head: [], border: [] },
  });
  const ratioText = (r: RatioSpread): string =>
    `${percent(r.medianRatio)} (${percent(r.minRatio)}–${percent(r.maxRatio)})`;
  const rows: Array<readonly [Target, ReturnType<typeof summary>, string]> = [
    ['admin', admin, ratioText(adminRatios)],
    ['bare', bare, ''],
    ...Object.entries(references ?? {}).map(
      ([reference, m]) => [reference as Reference, m, ratioText(m)] as const,
    ),
  ];
  for (const [target, m, ofBare] of rows) {
    totals.push([
      LABEL[target],
      count(m.requestsPerSecond),
      ofBare,
      ms(m.latencyP50Ms),
      ms(m.latencyP99Ms),
      count(m.ok),
      count(m.non2xx),
      count(m.errors),
      `${Math.round(m.serverCpuMicrosPerRequest)} µs`,
    ]);
  }
  const { medianRatio, minRatio, maxRatio } = adminRatios;
  console.log(perRound.toString());
  console.log(totals.toString());
  console.log(
    [
      `admin API / bare server: ${percent(medianRatio)} of the 2xx/s (median of ${roundCount} rounds, ` +
        `${percent(minRatio)} to ${percent(maxRatio)}); ` +
        `target at least 50%: ${medianRatio >= 0.5 ? 'met' : 'not met'}.`,
      `Only 2xx answers count as requests/s; latency is the median of the rounds' percentiles. ` +
        `${connections} connections, pipelining ${pipelining}, rounds of ${roundSeconds} s per server ` +
        `after ${warmupSeconds} s of warm-up each, loopback; ${BATCH.batchPool} prepared batches of ` +
        `${BATCH.commandsPerBatch} commands of ${BATCH.usersPerCommand} users, the same for every server.`,
      `Admin API: rate limit on at ${count(RATE_LIMIT_PER_MINUTE)} a minute, request log at info ` +
        `(${(requestLogBytes / 1e6).toFixed(1)} MB written to a file).`,
      `Machine: ${availableParallelism()} cores, load average ${loadAverageAtStart.toFixed(1)} at the start ` +
        `and ${report.machine.loadAverageAtEnd.toFixed(1)} at the end (other work slows both servers; ` +
        `the spread of the rounds' ratios shows how much).`,
    ].join('\n'),
  );
}

// Last, once every declaration above is initialised: the child mode reads SERVERS.
if (args.serve !== undefined) {
  await serveInChild(args.serve as Target);
} else {
  await main();
}
