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
 * Each server gets a short warm-up run first. It prints figures and the ratio (target: the admin
 * API at least half the bare server's requests/s); it asserts nothing (the machine is shared).
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

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '10' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
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
    const origin = performance.now();
    const app = await buildServer({
      log: new MemoryEventLog(),
      token: process.env[TOKEN_VARIABLE] ?? '',
      clock: () => Math.round(performance.now() - origin),
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

async function stopChild(child: ChildProcess): Promise<void> {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

interface Measured {
  target: string;
  requestsPerSecond: number;
  requests: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  errors: number;
  non2xx: number;
}

function measured(target: string, result: autocannon.Result): Measured {
  return {
    target,
    requestsPerSecond: result.requests.mean,
    requests: result.requests.total,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
  };
}

async function main(): Promise<void> {
  const connections = Number(args.connections);
  const durationSeconds = Number(args.duration);
  const warmupSeconds = Number(args.warmup);
  const log = (line: string): void => {
    if (!args.json) console.error(line);
  };
  const token = randomBytes(24).toString('hex');
  const results: Record<Target, Measured | undefined> = { admin: undefined, bare: undefined };

  for (const target of ['admin', 'bare'] as const) {
    const { url, child } = await startChild(target, token);
    try {
      const parameters = (seconds: number, run: string): HttpLoadParameters => ({
        url,
        connections,
        durationSeconds: seconds,
        run,
        commandsPerBatch: 3,
        usersPerCommand: 10,
      });
      log(`${target}: warm-up ${warmupSeconds} s…`);
      await runHttpLoad(parameters(warmupSeconds, 'bench/warmup'), token);
      log(`${target}: ${durationSeconds} s with ${connections} connections…`);
      results[target] = measured(
        target,
        await runHttpLoad(parameters(durationSeconds, 'bench/measure'), token),
      );
    } finally {
      await stopChild(child);
    }
  }

  const admin = results.admin!;
  const bare = results.bare!;
  const ratio = admin.requestsPerSecond / bare.requestsPerSecond;
  const report = { connections, durationSeconds, admin, bare, ratio, target: 0.5 };
  if (args.json) {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const table = new Table({
    head: ['server', 'requests/s', 'requests', 'latency p50', 'latency p99', 'errors', 'non-2xx'],
  });
  for (const m of [admin, bare]) {
    table.push([
      m.target === 'admin' ? 'admin API' : 'bare node:http',
      count(m.requestsPerSecond),
      count(m.requests),
      `${m.latencyP50Ms} ms`,
      `${m.latencyP99Ms} ms`,
      count(m.errors),
      count(m.non2xx),
    ]);
  }
  console.log(table.toString());
  console.log(
    `admin API / bare server: ${(ratio * 100).toFixed(1)}% of the requests/s ` +
      `(target at least 50%: ${ratio >= 0.5 ? 'met' : 'not met'}). ${connections} connections, ${durationSeconds} s each, loopback.`,
  );
}
