/**
 * Benchmark: ingress throughput of the HTTP admin API next to a bare node:http server that reads
 * the same request and answers 202, in one run, with the same connections and duration, both on
 * loopback. Each server runs in a child process of its own, so the load generator (autocannon,
 * here) does not share an event loop with it.
 *
 *   admin API     fastify: rate limit (never reached), bearer token, body limit, zod validation,
 *                 CommandAccepted facts appended to a memory event log, metrics, request log at
 *                 info (written to /dev/null)
 *   bare server   node:http: read the body, answer 202 with a fixed JSON body
 *
 * Both servers run side by side; after a short warm-up each, they take turns in rounds (default
 * 2 x 5 s each), so a busy neighbour on the machine slows both rather than one. It prints figures
 * and the ratio (target: the admin API at least half the bare server's requests/s); it asserts
 * nothing (the machine is shared).
 *
 *   npm run bench:http
 *   npm run bench:http -- --connections 20 --duration 5
 *   npm run bench:http -- --json
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type autocannon from 'autocannon';
import Table from 'cli-table3';
import { type HttpLoadParameters, runHttpLoad } from '../harness/http/load.ts';
import { buildServer } from '../harness/http/server.ts';
import { MemoryEventLog } from '../harness/log/memory.ts';
import { WallClock } from '../harness/sim/clock.ts';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '10' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '2' },
    json: { type: 'boolean', default: false },
    // Internal: the child process mode, one server per child.
    serve: { type: 'string' },
  },
});

type Target = 'admin' | 'bare';
const TOKEN_VARIABLE = 'PHASEBENCH_BENCH_TOKEN';

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
      // On, so its cost is measured, and far above what a 10 s run can send.
      rateLimit: { max: 100_000_000, windowMs: 60_000 },
      logLevel: 'info',
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as AddressInfo).port;
    close = () => app.close();
  } else {
    const answer = JSON.stringify({ run: 'bench', accepted: 3, ids: ['bench#c0', 'bench#c1', 'bench#c2'] });
    const server = createServer((request, response) => {
      request.resume();
      request.on('end', () => {
        response.writeHead(202, { 'content-type': 'application/json; charset=utf-8' });
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

async function startChild(target: Target, token: string): Promise<{ url: string; child: ChildProcess }> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', target], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, [TOKEN_VARIABLE]: token },
    // The request log goes to /dev/null: written for real, read by nobody.
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
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
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

interface Measured {
  target: string;
  requestsPerSecond: number;
  requests: number;
  seconds: number;
  /** The worst round's percentiles: latency is not additive across rounds. */
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  non2xx: number;
  /** The server process's CPU time per answered request: robust to a busy machine, unlike requests/s. */
  serverCpuMicrosPerRequest: number;
}

/** Rounds of one target added up: requests/s is all requests over all seconds. */
function combined(target: string, rounds: readonly autocannon.Result[], cpuMicros: number): Measured {
  const requests = rounds.reduce((n, r) => n + r.requests.total, 0);
  const seconds = rounds.reduce((n, r) => n + r.duration, 0);
  return {
    target,
    requestsPerSecond: requests / seconds,
    requests,
    seconds,
    latencyP50Ms: Math.max(...rounds.map((r) => r.latency.p50)),
    latencyP99Ms: Math.max(...rounds.map((r) => r.latency.p99)),
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    non2xx: rounds.reduce((n, r) => n + r.non2xx, 0),
    serverCpuMicrosPerRequest: cpuMicros / requests,
  };
}

async function main(): Promise<void> {
  const connections = Number(args.connections);
  const durationSeconds = Number(args.duration);
  const warmupSeconds = Number(args.warmup);
  const rounds = Number(args.rounds);
  const roundSeconds = Math.max(1, Math.round(durationSeconds / rounds));
  const log = (line: string): void => {
    if (!args.json) console.error(line);
  };
  const token = randomBytes(24).toString('hex');
  const targets = ['admin', 'bare'] as const;
  const servers = { admin: await startChild('admin', token), bare: await startChild('bare', token) };
  const results: Record<Target, autocannon.Result[]> = { admin: [], bare: [] };
  const serverCpu: Record<Target, number> = { admin: 0, bare: 0 };
  const parameters = (target: Target, seconds: number, run: string): HttpLoadParameters => ({
    url: servers[target].url,
    connections,
    durationSeconds: seconds,
    run,
    commandsPerBatch: 3,
    usersPerCommand: 10,
  });
  try {
    for (const target of targets) {
      log(`${target}: warm-up ${warmupSeconds} s…`);
      await runHttpLoad(parameters(target, warmupSeconds, 'bench/warmup'), token);
    }
    // The machine is shared: taking turns in short rounds spreads its noise over both servers.
    for (let round = 1; round <= rounds; round++) {
      for (const target of targets) {
        log(`round ${round}/${rounds}: ${target}, ${roundSeconds} s with ${connections} connections…`);
        const cpuBefore = await cpuMicros(servers[target].child);
        results[target].push(await runHttpLoad(parameters(target, roundSeconds, 'bench/measure'), token));
        serverCpu[target] += (await cpuMicros(servers[target].child)) - cpuBefore;
      }
    }
  } finally {
    await Promise.all(targets.map((target) => stopChild(servers[target].child)));
  }

  const admin = combined('admin', results.admin, serverCpu.admin);
  const bare = combined('bare', results.bare, serverCpu.bare);
  const ratio = admin.requestsPerSecond / bare.requestsPerSecond;
  const roundRatios = results.admin.map(
    (r, i) => r.requests.total / r.duration / (results.bare[i]!.requests.total / results.bare[i]!.duration),
  );
  const report = { connections, rounds, roundSeconds, admin, bare, ratio, roundRatios, target: 0.5 };
  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const table = new Table({
    head: [
      'server',
      'requests/s',
      'requests',
      'seconds',
      'latency p50',
      'latency p99',
      'errors',
      'non-2xx',
      'server CPU / request',
    ],
  });
  for (const m of [admin, bare]) {
    table.push([
      m.target === 'admin' ? 'admin API' : 'bare node:http',
      count(m.requestsPerSecond),
      count(m.requests),
      m.seconds.toFixed(1),
      `${m.latencyP50Ms} ms`,
      `${m.latencyP99Ms} ms`,
      count(m.errors),
      count(m.non2xx),
      `${Math.round(m.serverCpuMicrosPerRequest)} µs`,
    ]);
  }
  const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;
  console.log(table.toString());
  console.log(
    `admin API / bare server: ${percent(ratio)} of the requests/s ` +
      `(target at least 50%: ${ratio >= 0.5 ? 'met' : 'not met'}); by round ${roundRatios.map(percent).join(', ')}. ` +
      `${connections} connections, ${rounds} rounds of ${roundSeconds} s each, loopback.`,
  );
}
