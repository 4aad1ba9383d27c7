/**
 * Issue 4: every `/metrics` a phasebench service serves passes the real `promtool check metrics`
 * with nothing to report, and says what the service did.
 * - `phasebench engine` and `phasebench fleet`, spawned as an operator starts them, against a
 *   real broker (scripts/kafka.sh) of this file's own; a small plan runs live through them
 *   (`runLive` with `inProcess: false`, as `phasebench live --external`). The engine's
 *   `/metrics` holds the run's families, agreeing with the summary the driver projects from the
 *   log; the fleet's holds what the fleet did, and no run families.
 * - `phasebench serve` (the HTTP admin API), spawned, after accepting a command.
 * Without Java and the Kafka jars, or without promtool, the tests fail and say what is missing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type KafkaBroker, startBroker, stopBroker } from '../live/broker.ts';
import { createTopics, kafkaClient, type LiveTopics, liveTopics } from '../live/kafka-config.ts';
import { DEAD_LETTER_CATEGORIES } from '../live/messages.ts';
import { type LiveRun, liveRunId, runLive } from '../live/run-live.ts';
import {
  HTTP_METRIC_NAMES,
  METRICS,
  PROCESS_METRICS,
  SERVICE_METRICS,
  STRANDED_REASONS,
} from '../metrics/names.ts';
import { parseScenario } from '../scenario/load.ts';
import { instances } from '../testing/scenarios.ts';
import { engineCommand, fleetCommand } from './services.ts';

/** A port of this file's own, so it never meets another test file's broker. */
const BROKER_PORT = 19992;
const BIN = fileURLToPath(new URL('../../bin/phasebench.js', import.meta.url));
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

// 200 devices, always in coverage, a third below 4.5 and a few problem accounts (stranded users),
// in two phases: about half a minute at time scale 300.
const scenario = parseScenario(
  {
    name: 'metrics-endpoints',
    seed: 5,
    horizon: '1d',
    domain: { instances: instances(2, [100, 100]) },
    fleet: {
      users: 200,
      coverage: { alwaysOnlineShare: 1 },
      softwareVersions: { '4.5': 0.7, '4.2': 0.3 },
      problemAccountShare: 0.03,
    },
    plans: { phased: { kind: 'phased', into: { newInstances: {} }, size: 100, every: '10m' } },
  },
  'harness/cli/metrics-endpoints.test.ts',
);

let broker: KafkaBroker | undefined;
let kafka: Kafka;
const children: ChildProcess[] = [];

beforeAll(async () => {
  broker = await startBroker({ port: BROKER_PORT });
  kafka = kafkaClient({ brokers: [broker.bootstrap], clientId: 'phasebench-metrics-endpoints-test' });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (broker !== undefined) await stopBroker(broker);
}, 120_000);

interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/** `phasebench <args>`; resolves with the first match of `ready` in its output. */
async function phasebench(
  args: string[],
  ready: RegExp,
  env: Record<string, string | undefined> = {},
): Promise<Spawned & { ready: RegExpExecArray }> {
  const merged: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete merged[name];
  const child = spawn(process.execPath, [BIN, ...args], { env: merged, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    const look = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const found = ready.exec(output);
      if (found) resolve(found);
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    void exited.then((code) => reject(new Error(`phasebench ${args[0]} exited (${code}):\n${output}`)));
  });
  return { child, output: () => output, exited, ready: match };
}

/** `promtool check metrics` on a scrape: what it reports (nothing when the text is clean). */
function promtool(text: string): string {
  const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (check.error)
    throw new Error(
      `${PROMTOOL} is not installed: apt-get install prometheus (or point PROMTOOL at it): ${check.error.message}`,
    );
  const report = check.stdout + check.stderr;
  // promtool exits non-zero exactly when it has something to report.
  expect(check.status === 0, report).toBe(report === '');
  return report;
}

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a Prometheus text exposition. */
function samples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, '$1');
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of a sample name's values over the series whose labels include `match`. */
function sum(all: readonly Sample[], name: string, match: Record<string, string> = {}): number {
  return all
    .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

async function scrape(url: string): Promise<{ text: string; samples: Sample[] }> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  const text = await response.text();
  return { text, samples: samples(text) };
}

/** Scrapes until `check` passes (what a service reports trails what it does), or 20 s pass. */
async function settled(
  url: string,
  check: (all: Sample[]) => boolean,
): Promise<{ text: string; samples: Sample[] }> {
  for (let attempt = 0; ; attempt++) {
    const read = await scrape(url);
    if (check(read.samples) || attempt >= 100) return read;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The process metrics the dashboards chart for every live service. */
function expectProcessMetrics(all: readonly Sample[]): void {
  for (const name of Object.values(PROCESS_METRICS))
    expect(
      all.some((s) => s.name === name),
      name,
    ).toBe(true);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Topics of a test's own under a fresh prefix, created; so no test meets another's messages. */
async function freshTopics(): Promise<{ prefix: string; topics: LiveTopics }> {
  const prefix = `metrics-${randomUUID()}.`;
  const topics = liveTopics({ prefix });
  const admin = kafka.admin();
  await admin.connect();
  await createTopics(admin, Object.values(topics));
  await admin.disconnect();
  return { prefix, topics };
}

// First in this file: it needs a broker on which no consumer group has been joined yet.
describe('the live driver on a fresh broker', () => {
  it('follows the run though its first group join fails while the group coordinator is being set up', async () => {
    // A fresh broker sets up its group coordinator (the offsets topic) on the first request for
    // one and answers "not available" until it is up; kafkajs gives up after its retries, and
    // `run` resolves with no group joined. Without retries the driver's first join fails for sure
    // (the log says so), instead of only on a busy machine.
    const crashes: string[] = [];
    const impatient = new Kafka({
      brokers: [broker!.bootstrap],
      clientId: 'phasebench-impatient-driver',
      retry: { retries: 0 },
      logLevel: logLevel.ERROR,
      logCreator:
        () =>
        ({ log }) => {
          if (log.message.startsWith('Crash:')) crashes.push(log.message);
        },
    });
    const { topics } = await freshTopics();
    // No engine: the run stalls, which says the driver got as far as following it.
    await expect(
      runLive(scenario, 'phased', {
        kafka: impatient,
        topics,
        timeScale: 300,
        runSuffix: randomUUID(),
        inProcess: false,
        stallTimeoutMs: 1_000,
      }),
    ).rejects.toMatchObject({ code: 'LIVE_RUN_STALLED' });
    expect(crashes.join('\n')).toMatch(/group coordinator/i);
  }, 60_000);
});

describe('phasebench engine and fleet /metrics', () => {
  it('pass promtool with nothing to report; the engine shows the run it hosted, the fleet what it answered', async () => {
    const { prefix, topics } = await freshTopics();
    const common = ['--brokers', broker!.bootstrap, '--topic-prefix', prefix, '--metrics-port', '0'];
    const metricsUrl = /metrics (http:\/\/\S+)\/metrics/;
    // The engine listens where it is told by default (loopback); the fleet where the environment
    // says, as docker-compose.yml has it (every interface).
    const engine = await phasebench(['engine', ...common], metricsUrl, {
      PHASEBENCH_METRICS_HOST: undefined,
      PHASEBENCH_METRICS_PORT: undefined,
    });
    const fleet = await phasebench(['fleet', ...common], metricsUrl, {
      PHASEBENCH_METRICS_HOST: '0.0.0.0',
      PHASEBENCH_METRICS_PORT: undefined,
    });
    const engineUrl = engine.ready[1]!;
    expect(engineUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(fleet.ready[1]).toMatch(/^http:\/\/0\.0\.0\.0:\d+$/);
    const fleetUrl = `http://127.0.0.1:${new URL(fleet.ready[1]!).port}`;

    for (const [url, service] of [
      [engineUrl, 'engine'],
      [fleetUrl, 'fleet'],
    ] as const) {
      const health = await fetch(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ ok: true, service, state: 'consuming' });
    }

    const suffix = randomUUID();
    const run = liveRunId(scenario, 'phased', suffix);
    let live: LiveRun;
    try {
      live = await runLive(scenario, 'phased', {
        kafka,
        topics,
        timeScale: 300,
        runSuffix: suffix,
        inProcess: false,
      });
      // The engine logs the run's completion once its last append is acknowledged.
      for (let i = 0; i < 200 && !engine.output().includes(`completed ${run}`); i++) await sleep(100);
      expect(engine.output()).toContain(`completed ${run}`);
    } catch (error) {
      throw new Error(`${(error as Error).message}\nengine:\n${engine.output()}\nfleet:\n${fleet.output()}`);
    }
    const m = live.metrics;
    expect(m.pushes.pending).toBe(0);
    expect(m.pushes.acknowledged).toBeGreaterThan(0);
    expect(m.stranded.total).toBeGreaterThan(0);

    // The engine: the run's families, as the driver's summary has them, and its own figures.
    const pushes = METRICS.pushes.name;
    const engineRead = await settled(
      engineUrl,
      (all) =>
        sum(all, SERVICE_METRICS.messagesHandled.name) >= m.pushes.acknowledged + 1 &&
        sum(all, SERVICE_METRICS.runsEnded.name, { outcome: 'completed' }) === 1,
    );
    expect(promtool(engineRead.text)).toBe('');
    const e = engineRead.samples;
    const ofRun = { run, plan: 'phased' };
    expect(sum(e, pushes, ofRun)).toBe(m.pushes.acknowledged + m.pushes.expired);
    expect(sum(e, pushes, { ...ofRun, outcome: 'acknowledged' })).toBe(m.pushes.acknowledged);
    expect(sum(e, METRICS.pushesQueued.name, ofRun)).toBe(m.pushes.queued);
    expect(sum(e, METRICS.events.name, ofRun)).toBe(m.events);
    expect(sum(e, `${METRICS.pushDelivery.name}_count`, ofRun)).toBe(m.pushDelivery.count);
    expect(sum(e, `${METRICS.userMigration.name}_count`, ofRun)).toBe(m.userMigration.count);
    for (const reason of STRANDED_REASONS)
      expect(sum(e, METRICS.strandedUsers.name, { ...ofRun, reason }), reason).toBe(
        m.stranded.byReason[reason] ?? 0,
      );
    expect(sum(e, METRICS.convergedShare.name, ofRun)).toBeCloseTo(m.convergedShare, 12);
    expect(sum(e, METRICS.jobsDispatched.name, ofRun)).toBeGreaterThan(0);
    expect(sum(e, SERVICE_METRICS.runsHosted.name)).toBe(0);
    expect(sum(e, SERVICE_METRICS.runsEnded.name, { outcome: 'handedOver' })).toBe(0);
    for (const category of DEAD_LETTER_CATEGORIES)
      expect(sum(e, SERVICE_METRICS.deadLetters.name, { category }), category).toBe(0);
    expectProcessMetrics(e);

    // The fleet: what it received and answered, process metrics, and no run families.
    const fleetRead = await settled(
      fleetUrl,
      (all) =>
        sum(all, SERVICE_METRICS.acknowledgementsWaiting.name) === 0 &&
        sum(all, SERVICE_METRICS.acknowledgementsSent.name) >= m.pushes.acknowledged,
    );
    expect(promtool(fleetRead.text)).toBe('');
    const f = fleetRead.samples;
    const received = sum(f, SERVICE_METRICS.pushesReceived.name);
    expect(received).toBeGreaterThanOrEqual(m.pushes.acknowledged);
    expect(sum(f, SERVICE_METRICS.messagesHandled.name)).toBe(received);
    expect(sum(f, SERVICE_METRICS.acknowledgementsSent.name)).toBe(received);
    expect(sum(f, SERVICE_METRICS.acknowledgementsWaiting.name)).toBe(0);
    expect(f.some((s) => s.name.startsWith('phasebench_pushes'))).toBe(false);
    expectProcessMetrics(f);

    const engineHealth = await (await fetch(`${engineUrl}/healthz`)).json();
    expect(engineHealth).toMatchObject({ ok: true, hosting: [], runsCompleted: 1, runsHandedOver: 0 });

    // SIGTERM: each leaves its group and exits 0; its /metrics goes with it.
    engine.child.kill('SIGTERM');
    fleet.child.kill('SIGTERM');
    expect(await engine.exited).toBe(0);
    expect(await fleet.exited).toBe(0);
    await expect(fetch(`${engineUrl}/metrics`)).rejects.toThrow();
  }, 240_000);

  it('take --metrics-host from PHASEBENCH_METRICS_HOST, falling back to loopback, and say so in --help', () => {
    const saved = process.env.PHASEBENCH_METRICS_HOST;
    try {
      delete process.env.PHASEBENCH_METRICS_HOST;
      expect(engineCommand().opts().metricsHost).toBe('127.0.0.1');
      process.env.PHASEBENCH_METRICS_HOST = '0.0.0.0';
      for (const command of [engineCommand(), fleetCommand()]) {
        expect(command.opts().metricsHost).toBe('0.0.0.0');
        const help = command.helpInformation().replace(/\s+/g, ' ');
        expect(help).toMatch(
          /--metrics-host <host> .*env PHASEBENCH_METRICS_HOST.*\(default: "0\.0\.0\.0"\)/,
        );
      }
    } finally {
      if (saved === undefined) delete process.env.PHASEBENCH_METRICS_HOST;
      else process.env.PHASEBENCH_METRICS_HOST = saved;
    }
  });
});

describe('phasebench serve /metrics', () => {
  it('passes promtool with nothing to report, with the accepted command and the process metrics', async () => {
    const token = randomUUID();
    const serve = await phasebench(
      ['serve', '--port', '0', '--log-level', 'warn'],
      /admin API on (http:\/\/127\.0\.0\.1:\d+)/,
      { PHASEBENCH_TOKEN: token },
    );
    const url = serve.ready[1]!;
    const accepted = await fetch(`${url}/v1/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        run: 'r1',
        commands: [{ type: 'moveUsers', users: ['u000001'], to: 'BESNEW1' }],
      }),
    });
    expect(accepted.status).toBe(202);
    expect((await fetch(`${url}/no-such-route`)).status).toBe(404);

    const { text, samples: all } = await scrape(url);
    expect(promtool(text)).toBe('');
    expect(sum(all, HTTP_METRIC_NAMES.commandsAccepted, { type: 'moveUsers' })).toBe(1);
    expect(sum(all, HTTP_METRIC_NAMES.requests, { method: 'POST', status: '202' })).toBe(1);
    expectProcessMetrics(all);
    // prom-client's own nodejs_active_*_total gauges, which promtool reports, are left out.
    expect(text).toContain('# TYPE nodejs_active_handles gauge');
    expect(text).not.toContain('nodejs_active_handles_total');

    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
  }, 60_000);
});
