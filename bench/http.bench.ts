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
 * Each server runs in a child process of its own; autocannon runs here, with the same
 * connections, pipelining, round length and requests for both: a pool of valid command batches
 * built before the run (the generator only writes prepared bytes, so it measures the servers, not
 * itself). After a warm-up each, the servers take turns in rounds (ABBA order), so a busy
 * neighbour on the machine slows both rather than one, and the headline is the median of the
 * rounds' ratios. Only 2xx answers count as throughput; errors and non-2xx answers are shown
 * beside it. It prints figures and asserts nothing: the machine is shared.
 *
 *   npm run bench:http
 *   npm run bench:http -- --rounds 8 --round-seconds 5 --connections 20
 *   npm run bench:http -- --commands 1 --users 1    the smallest valid body instead of 3 × 10
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
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import Table from 'cli-table3';
import { type HttpLoadParameters, runHttpLoad } from '../harness/http/load.ts';
import { buildServer } from '../harness/http/server.ts';
import { MemoryEventLog } from '../harness/log/memory.ts';
import { WallClock } from '../harness/sim/clock.ts';
import { medianOf } from './median.ts';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '10' },
    pipelining: { type: 'string', default: '1' },
    rounds: { type: 'string', default: '6' },
    'round-seconds': { type: 'string', default: '3' },
    warmup: { type: 'string', default: '3' },
    commands: { type: 'string', default: '3' },
    users: { type: 'string', default: '10' },
    json: { type: 'boolean', default: false },
    // Internal: the child process mode, one server per child.
    serve: { type: 'string' },
  },
});

type Target = 'admin' | 'bare';
const TARGETS: readonly Target[] = ['admin', 'bare'];
const LABEL: Record<Target, string> = { admin: 'admin API', bare: 'bare node:http' };
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

if (args.serve !== undefined) {
  await serveInChild(args.serve as Target);
} else {
  await main();
}

/** Child mode: start one server on 127.0.0.1, report its port to the parent, stop on SIGTERM. */
async function serveInChild(target: Target): Promise<void> {
  let close: () => Promise<void>;
  let port: number;
  if (target === 'admin') {
    const app = await buildServer({
      log: new MemoryEventLog(),
      token: process.env[TOKEN_VARIABLE] ?? '',
      clock: new WallClock(1),
      rateLimit: { max: RATE_LIMIT_PER_MINUTE, windowMs: 60_000 },
      logLevel: 'info',
      // The request log goes to its default destination, stdout: the parent points it at a file.
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    close = () => app.close();
  } else {
    // The admin API's answer to a 3-command batch has this shape and about this size.
    const answer = JSON.stringify({
      run: RUN,
      accepted: 3,
      ids: [`${RUN}#c1000000`, `${RUN}#c1000001`, `${RUN}#c1000002`],
    });
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        Buffer.concat(chunks);
        response.writeHead(202, {
          'content-type': 'application/json; charset=utf-8',
          'content-length': Buffer.byteLength(answer),
        });
        response.end(answer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    close = () => new Promise((resolve) => server.close(() => resolve()));
  }
  process.once('SIGTERM', () => void close().then(() => process.disconnect?.()));
  // The parent asks for the CPU time used so far, to work out CPU per request.
  process.on('message', (message) => {
    if (message === 'cpu') process.send?.({ cpu: process.cpuUsage() });
  });
  process.send?.({ port });
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

function positiveInteger(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, found ${text}`);
  return n;
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
  const requestLogPath = join(logDir, 'requests.log');
  const requestLogFd = openSync(requestLogPath, 'w');
  const loadAverageAtStart = loadavg()[0]!;
  const servers = {
    admin: await startChild('admin', token, requestLogFd),
    bare: await startChild('bare', token, 'ignore'),
  };
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
      // ABBA: neither server always goes first, when the machine may have just got busier.
      const order: Target[] = round % 2 === 1 ? ['admin', 'bare'] : ['bare', 'admin'];
      const measured = {} as Record<Target, RoundFigures>;
      for (const target of order) {
        progress(`round ${round}/${roundCount}: ${LABEL[target]}, ${roundSeconds} s…`);
        const cpuBefore = await cpuMicros(servers[target].child);
        const result = await runHttpLoad(parameters(target, roundSeconds), token);
        measured[target] = figures(result, (await cpuMicros(servers[target].child)) - cpuBefore);
      }
      rounds.push({
        round,
        order,
        ...measured,
        ratio: measured.admin.requestsPerSecond / measured.bare.requestsPerSecond,
      });
    }
  } finally {
    await Promise.all(TARGETS.map((target) => stopChild(servers[target].child)));
    requestLogBytes = statSync(requestLogPath).size;
    closeSync(requestLogFd);
    rmSync(logDir, { recursive: true, force: true });
  }

  const admin = summary(rounds.map((r) => r.admin));
  const bare = summary(rounds.map((r) => r.bare));
  const ratios = rounds.map((r) => r.ratio);
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
    medianRatio: medianOf(ratios),
    target: 0.5,
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
    head: ['server', '2xx/s', 'latency p50', 'latency p99', '2xx', 'non-2xx', 'errors', 'server CPU / 2xx'],
    style: { head: [], border: [] },
  });
  for (const [target, m] of [
    ['admin', admin],
    ['bare', bare],
  ] as const) {
    totals.push([
      LABEL[target],
      count(m.requestsPerSecond),
      ms(m.latencyP50Ms),
      ms(m.latencyP99Ms),
      count(m.ok),
      count(m.non2xx),
      count(m.errors),
      `${Math.round(m.serverCpuMicrosPerRequest)} µs`,
    ]);
  }
  const { medianRatio } = report;
  console.log(perRound.toString());
  console.log(totals.toString());
  console.log(
    [
      `admin API / bare server: ${percent(medianRatio)} of the 2xx/s (median of ${roundCount} rounds, ` +
        `${percent(Math.min(...ratios))} to ${percent(Math.max(...ratios))}); ` +
        `target at least 50%: ${medianRatio >= 0.5 ? 'met' : 'not met'}.`,
      `Only 2xx answers count as requests/s; latency is the median of the rounds' percentiles. ` +
        `${connections} connections, pipelining ${pipelining}, rounds of ${roundSeconds} s per server ` +
        `after ${warmupSeconds} s of warm-up each, loopback; ${BATCH.batchPool} prepared batches of ` +
        `${BATCH.commandsPerBatch} commands of ${BATCH.usersPerCommand} users, the same for both.`,
      `Admin API: rate limit on at ${count(RATE_LIMIT_PER_MINUTE)} a minute, request log at info ` +
        `(${(requestLogBytes / 1e6).toFixed(1)} MB written to a file).`,
      `Machine: ${availableParallelism()} cores, load average ${loadAverageAtStart.toFixed(1)} at the start ` +
        `and ${report.machine.loadAverageAtEnd.toFixed(1)} at the end (other work slows both servers; ` +
        `the spread of the rounds' ratios shows how much).`,
    ].join('\n'),
  );
}
