/**
 * Issue 4: every `/metrics` a phasebench service serves passes the real `promtool check metrics`
 * with nothing to report, and says what the service did.
 * - `phasebench engine` and `phasebench fleet`, spawned as an operator starts them, against a
 *   real broker (scripts/kafka.sh) of this file's own; a small plan runs live through them
 *   (`runLive` with `inProcess: false`, as `phasebench live --external`). The engine's
 *   `/metrics` holds the run's families, agreeing with the summary the driver projects from the
 *   log; the fleet's holds what the fleet did, and no run families.
 * - `phasebench serve` (the HTTP admin API), spawned, after accepting a command.
 * - The services dashboard (dashboards/phasebench-services.json) on a real Prometheus
 *   (scripts/prometheus.sh) that scrapes an engine, a fleet and an admin API every second while a
 *   live run goes through them and the admin API takes commands: every PromQL expression of every
 *   panel, with `job` and `instance` resolved as Grafana resolves them, returns data.
 * Without Java and the Kafka jars, or without prometheus and promtool, the tests fail and say
 * what is missing.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../dashboards/build.ts';
import {
  committedDashboards,
  interpolate,
  queriesOf,
  regexEscape,
  variableQueries,
} from '../dashboards/queries.ts';
import { type KafkaBroker, startBroker, stopBroker } from '../live/broker.ts';
import { kafkaClient, type LiveTopics } from '../live/kafka-config.ts';
import { DEAD_LETTER_CATEGORIES } from '../live/messages.ts';
import { type LiveRun, liveRunId, runLive } from '../live/run-live.ts';
import { LocalPrometheus } from '../metrics/backfill.ts';
import {
  HTTP_METRICS,
  METRICS,
  PROCESS_METRICS,
  SERVICE_METRICS,
  STRANDED_REASONS,
} from '../metrics/names.ts';
import { parseScenario } from '../scenario/load.ts';
import { freshTopics, nowS, until } from '../testing/live.ts';
import { instances } from '../testing/scenarios.ts';
import { engineCommand, fleetCommand } from './services.ts';

/** Ports of this file's own, so it never meets another test file's broker or Prometheus. */
const BROKER_PORT = 19992;
const PROMETHEUS_PORT = 19790;
const BIN = fileURLToPath(new URL('../../bin/phasebench.js', import.meta.url));
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';
const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus';

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
let prometheus: LocalPrometheus | undefined;
const children: ChildProcess[] = [];
const scratch = mkdtempSync(join(tmpdir(), 'phasebench-metrics-endpoints-'));

beforeAll(async () => {
  broker = await startBroker({ port: BROKER_PORT });
  kafka = kafkaClient({ brokers: [broker.bootstrap], clientId: 'phasebench-metrics-endpoints-test' });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  // Prometheus first: it must be stopped whatever failed before.
  const stops = await Promise.allSettled([
    prometheus?.down(),
    broker === undefined ? undefined : stopBroker(broker),
  ]);
  rmSync(scratch, { recursive: true, force: true });
  const failed = stops.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
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

/**
 * A live run of the scenario's phased plan through the spawned engine and fleet, until the engine
 * says it completed the run; a failure carries both services' output.
 */
async function runThroughServices(
  topics: LiveTopics,
  suffix: string,
  engine: Spawned,
  fleet: Spawned,
): Promise<LiveRun> {
  const run = liveRunId(scenario, 'phased', suffix);
  try {
    const live = await runLive(scenario, 'phased', {
      kafka,
      topics,
      timeScale: 300,
      runSuffix: suffix,
      inProcess: false,
    });
    // The engine logs the run's completion once its last append is acknowledged.
    for (let i = 0; i < 200 && !engine.output().includes(`completed ${run}`); i++) await sleep(100);
    expect(engine.output()).toContain(`completed ${run}`);
    return live;
  } catch (error) {
    throw new Error(`${(error as Error).message}\nengine:\n${engine.output()}\nfleet:\n${fleet.output()}`);
  }
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
    const { topics } = await freshTopics(kafka, 'metrics');
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
    const { prefix, topics } = await freshTopics(kafka, 'metrics');
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
    const live = await runThroughServices(topics, suffix, engine, fleet);
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
    // names.ts's types for the admin API's families are the ones it exposes.
    for (const { name, type } of Object.values(HTTP_METRICS))
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
    expect(sum(all, HTTP_METRICS.commandsAccepted.name, { type: 'moveUsers' })).toBe(1);
    expect(sum(all, HTTP_METRICS.requests.name, { method: 'POST', status: '202' })).toBe(1);
    expectProcessMetrics(all);
    // prom-client's own nodejs_active_*_total gauges, which promtool reports, are left out.
    expect(text).toContain('# TYPE nodejs_active_handles gauge');
    expect(text).not.toContain('nodejs_active_handles_total');

    serve.child.kill('SIGTERM');
    expect(await serve.exited).toBe(0);
  }, 60_000);
});

describe('the services dashboard on a real Prometheus', () => {
  it('answers every PromQL expression of every panel with data, after a live run through a scraped engine, fleet and admin API', async () => {
    if (spawnSync(PROMETHEUS_BIN, ['--version'], { encoding: 'utf8' }).error)
      throw new Error(
        `${PROMETHEUS_BIN} is not installed: apt-get install prometheus (or point PROMETHEUS_BIN at it)`,
      );
    const { prefix, topics } = await freshTopics(kafka, 'metrics');
    const common = ['--brokers', broker!.bootstrap, '--topic-prefix', prefix, '--metrics-port', '0'];
    const loopback = { PHASEBENCH_METRICS_HOST: '127.0.0.1', PHASEBENCH_METRICS_PORT: undefined };
    const metricsUrl = /metrics (http:\/\/\S+)\/metrics/;
    // The engine forgets the run's series a second after the run completes.
    const engine = await phasebench(['engine', ...common, '--forget-runs-after', '1'], metricsUrl, loopback);
    const fleet = await phasebench(['fleet', ...common], metricsUrl, loopback);
    const token = randomUUID();
    const admin = await phasebench(
      ['serve', '--port', '0', '--rate-limit', '0', '--log-level', 'warn'],
      /admin API on (http:\/\/127\.0\.0\.1:\d+)/,
      { PHASEBENCH_TOKEN: token },
    );
    const targets = { engine: engine.ready[1]!, fleet: fleet.ready[1]!, admin: admin.ready[1]! };

    // The jobs docker-compose.yml's Prometheus has (deploy/prometheus/prometheus.yml), scraped every second.
    const config = join(scratch, 'prometheus.yml');
    writeFileSync(
      config,
      LocalPrometheus.scrapeConfig(
        1,
        Object.fromEntries(Object.entries(targets).map(([job, url]) => [job, new URL(url).host])),
      ),
    );
    prometheus = new LocalPrometheus({ port: PROMETHEUS_PORT, tsdb: join(scratch, 'tsdb'), config });
    // The port is this file's own: one left running by an interrupted run of it goes first.
    await prometheus.down();
    await prometheus.up();
    await until('Prometheus to scrape the engine, the fleet and the admin API', async () => {
      const up = await prometheus!.query('up == 1', nowS());
      return up.length === Object.keys(targets).length;
    });

    const startS = nowS();
    const suffix = randomUUID();
    const run = liveRunId(scenario, 'phased', suffix);
    // Operators' commands reach the admin API while the run goes on (moves, policy changes, a
    // look at what it accepted, one refused for a missing token).
    let running = true;
    let accepted = 0;
    const commanding = (async () => {
      const post = (body: unknown, authorised = true) =>
        fetch(`${targets.admin}/v1/commands`, {
          method: 'POST',
          headers: {
            ...(authorised ? { authorization: `Bearer ${token}` } : {}),
            'content-type': 'application/json',
          },
          body: JSON.stringify(body),
        });
      for (let i = 0; running || i < 3; i++) {
        const moved = await post({
          run,
          commands: [
            { type: 'moveUsers', users: [`u${String(i).padStart(6, '0')}`], to: 'BESNEW1' },
            { type: 'changeItPolicy', policy: `policy-${i}` },
          ],
        });
        expect(moved.status).toBe(202);
        accepted += 2;
        expect(
          (
            await fetch(`${targets.admin}/v1/runs/${encodeURIComponent(run)}`, {
              headers: { authorization: `Bearer ${token}` },
            })
          ).status,
        ).toBe(200);
        if (i === 0) expect((await post({ run, commands: [] }, false)).status).toBe(401);
        await sleep(250);
      }
    })();
    let live: LiveRun;
    try {
      live = await runThroughServices(topics, suffix, engine, fleet);
    } finally {
      running = false;
      await commanding;
    }
    // Scrapes after the run's end: Prometheus holds the services' final figures.
    const commandsAccepted = `sum(${HTTP_METRICS.commandsAccepted.name}{job="admin"})`;
    const runsCompleted = `${SERVICE_METRICS.runsEnded.name}{job="engine",outcome="completed"}`;
    const acknowledgements = `${SERVICE_METRICS.acknowledgementsSent.name}{job="fleet"}`;
    await until('Prometheus to scrape the end of the run and the last command', async () => {
      const at = nowS();
      const [commands, completed, acks] = await Promise.all(
        [commandsAccepted, runsCompleted, acknowledgements].map((q) => prometheus!.query(q, at)),
      );
      return (
        commands![0]?.values[0] === accepted &&
        completed![0]?.values[0] === 1 &&
        (acks![0]?.values[0] ?? 0) >= live.metrics.pushes.acknowledged
      );
    });
    const endS = nowS() + 1;

    const dashboards = committedDashboards(REPO_ROOT, 'services');
    expect(dashboards.map((d) => d.file)).toEqual(['phasebench-services.json']);
    const { dashboard } = dashboards[0]!;
    // The variables as Grafana resolves them: each one's query, with the ones before it set.
    // $__rate_interval as Grafana makes it for the provisioned datasource (timeInterval 60s).
    const vars: Record<string, string> = { __rate_interval: '4m' };
    for (const [i, query] of variableQueries(dashboard).entries()) {
      const name = dashboard.templating!.list![i]!.name;
      const [, selector, label] = /^label_values\((.*),\s*(\w+)\)$/.exec(query) ?? [];
      const found = await prometheus.query(`count by (${label}) (${interpolate(selector!, vars)})`, endS);
      const values = found.map((s) => s.metric[label!]!).sort();
      if (name === 'job') expect(values).toEqual(['admin', 'engine', 'fleet']);
      if (name === 'instance')
        expect(values).toEqual(
          Object.values(targets)
            .map((url) => new URL(url).host)
            .sort(),
        );
      vars[name] = `(${values.map(regexEscape).join('|')})`;
    }

    const checked: string[] = [];
    for (const query of queriesOf(dashboard)) {
      const expr = interpolate(query.expr, vars);
      const result = query.instant
        ? await prometheus.query(expr, endS)
        : await prometheus.queryRange(expr, startS, endS, 1);
      const finite = result.flatMap((s) => s.values).filter(Number.isFinite);
      const where = `${query.where}: ${expr}`;
      expect(result.length, where).toBeGreaterThan(0);
      // NaN alone (a quantile of no requests in the window) would draw nothing.
      expect(finite.length, where).toBeGreaterThan(0);
      checked.push(
        `  ${String(result.length).padStart(2)} series, max ${Math.max(...finite)
          .toPrecision(4)
          .padStart(10)}  ${query.where}`,
      );
    }
    expect(checked.length).toBeGreaterThanOrEqual(15);

    // What Prometheus holds is what the services did.
    const range = `${Math.ceil(endS - startS)}s`;
    const one = async (promql: string) => (await prometheus!.query(promql, endS))[0]?.values[0];
    expect(await one(`max_over_time(${SERVICE_METRICS.runsHosted.name}{job="engine"}[${range}])`)).toBe(1);
    expect(await one(`${SERVICE_METRICS.runsHosted.name}{job="engine"}`)).toBe(0);
    expect(await one(commandsAccepted)).toBe(accepted);
    expect(await one(`sum(${HTTP_METRICS.requests.name}{job="admin",status="401"})`)).toBe(1);
    expect(await one(`${SERVICE_METRICS.pushesReceived.name}{job="fleet"}`)).toBeGreaterThanOrEqual(
      live.metrics.pushes.acknowledged,
    );
    console.log(
      `${checked.length} services dashboard expressions checked on run ${run} ` +
        `(${Math.round(endS - startS)} s scraped every second, ${accepted} commands accepted by the admin API):\n` +
        checked.join('\n'),
    );

    // Prometheus saw the run's families on the engine; past --forget-runs-after they are gone
    // from its /metrics, and its own figures stay.
    expect(await one(`max_over_time(${METRICS.events.name}{job="engine",run="${run}"}[${range}])`)).toBe(
      live.metrics.events,
    );
    const forgotten = await settled(targets.engine, (all) => !all.some((s) => s.labels.run === run));
    expect(forgotten.samples.filter((s) => s.labels.run === run)).toEqual([]);
    expect(sum(forgotten.samples, SERVICE_METRICS.runsEnded.name, { outcome: 'completed' })).toBe(1);
    expect(promtool(forgotten.text)).toBe('');

    for (const service of [engine, fleet, admin]) service.child.kill('SIGTERM');
    for (const service of [engine, fleet, admin]) expect(await service.exited).toBe(0);
  }, 300_000);
});
