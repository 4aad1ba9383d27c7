/**
 * A live run watched by a real Prometheus (issue 4): a small plan runs live through a real Kafka
 * broker (scripts/kafka.sh), LiveMetrics follows its events through runLive's `onEvent`, a
 * metrics server serves them on a free loopback port, and a real Prometheus (scripts/prometheus.sh,
 * Debian's package) scrapes that every second. Then:
 * - the `/metrics` text passes the real `promtool check metrics` with nothing to report;
 * - every PromQL expression of every panel and annotation in dashboards/*.json, with the
 *   template variables resolved as Grafana resolves them (their own label_values queries) for
 *   this run, returns data from Prometheus's HTTP API;
 * - what Prometheus holds agrees with the run's summary (peak queues, pushes, stranded users).
 *
 * Without Java and the Kafka jars, or without prometheus and promtool, the tests fail and say
 * what to install; they never skip (with CI=true the message says the CI job must install it).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../dashboards/build.ts';
import {
  committedDashboards,
  type DashboardQuery,
  interpolate,
  queriesOf,
  regexEscape,
  variableQueries,
} from '../dashboards/queries.ts';
import { LocalPrometheus, type PromSample } from '../metrics/backfill.ts';
import { buildRegistry, METRICS, STRANDED_REASONS } from '../metrics/names.ts';
import { parseScenario } from '../scenario/load.ts';
import { freshTopics, nowS, until } from '../testing/live.ts';
import { instances } from '../testing/scenarios.ts';
import { type KafkaBroker, startBroker, stopBroker } from './broker.ts';
import { kafkaClient } from './kafka-config.ts';
import { LiveMetrics, type MetricsServer, startMetricsServer } from './metrics.ts';
import { type LiveRun, runLive } from './run-live.ts';

/** Ports of this file's own, so it never meets another test file's broker or Prometheus. */
const BROKER_PORT = 19592;
const PROMETHEUS_PORT = 19690;
const SCRAPE_INTERVAL_S = 1;
const TIME_SCALE = 300;
/**
 * Grafana's $__rate_interval: max($__interval + scrape interval, 4 × scrape interval), with the
 * scrape interval the provisioned datasource declares (timeInterval 60s), as in build.test.ts.
 */
const RATE_INTERVAL = '4m';

const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? 'prometheus';
const PROMTOOL = process.env.PROMTOOL ?? 'promtool';

function missingTool(tool: string): Error {
  return new Error(
    process.env.CI === 'true'
      ? `${tool} is not installed, so live metrics cannot be checked against a real Prometheus. ` +
          'The CI job must install it before the tests: apt-get install -y prometheus'
      : `${tool} is not installed; this test needs Debian's prometheus package (prometheus and promtool): ` +
          '`sudo apt-get install prometheus`, or point PROMETHEUS_BIN / PROMTOOL at the binaries.',
  );
}

// About 500 devices on 4.0+ software; a fifth of them drop out of coverage now and then, with no
// relay to hold their pushes, so some pushes are resent and some expire, and 2% problem accounts
// strand their users: every panel has something to draw. It drains after about 78 minutes of
// run time, 16 s at time scale 300.
const scenario = parseScenario(
  {
    name: 'prometheus-live',
    seed: 3,
    horizon: '1d',
    domain: { instances: instances(2, [250, 250]) },
    fleet: {
      users: 500,
      coverage: {
        alwaysOnlineShare: 0.8,
        online: { kind: 'exponential', mean: '2h' },
        offline: { kind: 'exponential', mean: '30m' },
      },
      softwareVersions: { '4.5': 0.7, '4.2': 0.3 },
      problemAccountShare: 0.02,
    },
    engine: { resendInterval: '15m', pushExpiry: '45m', relay: { maxItems: 0, maxHold: '1h' } },
    plans: {
      phased: { kind: 'phased', into: { newInstances: {} }, size: 125, every: '10m' },
    },
  },
  'harness/live/prometheus-live.test.ts',
);

const root = mkdtempSync(join(tmpdir(), 'phasebench-prometheus-live-'));
let broker: KafkaBroker | undefined;
let prometheus: LocalPrometheus | undefined;
let server: MetricsServer | undefined;

interface Watched {
  live: LiveRun;
  /** The `/metrics` text read after Prometheus's last scrape of the run. */
  text: string;
  /** Epoch seconds: the first scrape before the run started, and a time after its last scrape. */
  startS: number;
  endS: number;
}

/**
 * The work behind the tests, done once on first use. Tests await it rather than relying on a
 * beforeAll hook, so a missing component fails every test with its message instead of skipping them.
 */
function once<T>(work: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => {
    result ??= work();
    return result;
  };
}

const watched = once(async (): Promise<Watched> => {
  for (const tool of [PROMETHEUS_BIN, PROMTOOL])
    if (spawnSync(tool, ['--version'], { encoding: 'utf8' }).error) throw missingTool(tool);

  broker = await startBroker({ port: BROKER_PORT });
  const kafka: Kafka = kafkaClient({
    brokers: [broker.bootstrap],
    clientId: 'phasebench-prometheus-live-test',
  });
  const { topics } = await freshTopics(kafka, 'prometheus-live');

  await joinAGroup(kafka, topics.events.name);

  const registry = buildRegistry();
  const metrics = new LiveMetrics(registry, { timeScale: TIME_SCALE });
  let events = 0;
  server = await startMetricsServer({
    port: 0,
    registry: registry.registry,
    health: () => ({ ok: true, events }),
  });

  const config = join(root, 'prometheus.yml');
  writeFileSync(
    config,
    LocalPrometheus.scrapeConfig(SCRAPE_INTERVAL_S, { 'phasebench-live': `127.0.0.1:${server.port}` }),
  );
  prometheus = new LocalPrometheus({ port: PROMETHEUS_PORT, tsdb: join(root, 'tsdb'), config });
  await prometheus.up();
  // The run starts once Prometheus has the target's first samples, so it sees the whole run.
  await until('Prometheus to scrape the metrics server', async () => {
    const up = await prometheus!.query('up{job="phasebench-live"}', nowS());
    return up[0]?.values[0] === 1;
  });

  const startS = nowS();
  const live = await runLive(scenario, 'phased', {
    kafka,
    topics,
    timeScale: TIME_SCALE,
    runSuffix: randomUUID(),
    onEvent: (event) => {
      events++;
      metrics.apply(event);
    },
  });
  const selector = `{run="${live.runId}"}`;
  // A scrape after the run's last event: Prometheus holds the run's final values.
  await until('Prometheus to scrape the end of the run', async () => {
    const total = await prometheus!.query(`${METRICS.events.name}${selector}`, nowS());
    return total[0]?.values[0] === live.events.length;
  });
  const response = await fetch(`${server.url}/metrics`);
  expect(response.status).toBe(200);
  return { live, text: await response.text(), startS, endS: nowS() };
});

afterAll(async () => {
  // Prometheus first: it must be stopped whatever failed before.
  const stops = await Promise.allSettled([
    prometheus?.down(),
    server?.close(),
    broker === undefined ? undefined : stopBroker(broker),
  ]);
  rmSync(root, { recursive: true, force: true });
  const failed = stops.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
}, 120_000);

/**
 * Joins a consumer group once and leaves. A fresh broker sets up its group coordinator on the
 * first join, and until then a consumer that seeks right after `run` (runLive's event follower
 * does) fails with "Consumer group was not initialized".
 */
async function joinAGroup(kafka: Kafka, topic: string): Promise<void> {
  const consumer = kafka.consumer({ groupId: `prometheus-live-warm-up-${randomUUID()}` });
  await consumer.connect();
  try {
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.subscribe({ topic });
    await consumer.run({ eachMessage: async () => {} });
    await Promise.race([
      joined,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('no consumer group could be joined within 60 s')), 60_000).unref(),
      ),
    ]);
  } finally {
    await consumer.disconnect();
  }
}

/** Values of a `label_values(<selector>, <label>)` variable query, as Grafana asks Prometheus. */
async function labelValues(query: string, vars: Record<string, string>, atS: number): Promise<string[]> {
  const [, selector, label] = /^label_values\((.*),\s*(\w+)\)$/.exec(query) ?? [];
  if (!selector || !label) throw new Error(`not a label_values query: ${query}`);
  const found = await prometheus!.query(`count by (${label}) (${interpolate(selector, vars)})`, atS);
  return found.map((s) => s.metric[label]!).sort();
}

/** A multi-value variable with these values selected, as Grafana writes it into a regex matcher. */
function selected(values: readonly string[]): string {
  const escaped = values.map(regexEscape);
  return escaped.length === 1 ? escaped[0]! : `(${escaped.join('|')})`;
}

describe('a live run scraped by a real Prometheus', () => {
  it('exposes /metrics that promtool check metrics finds nothing to report in', async () => {
    const { text, live } = await watched();
    expect(text).toContain(
      `${METRICS.events.name}{run="${live.runId}",plan="phased"} ${live.events.length}\n`,
    );
    const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
    console.log(
      `promtool check metrics: exit ${check.status}, no output, on ${text.split('\n').length} lines of /metrics`,
    );
  }, 300_000);

  it('answers every PromQL expression of every dashboard panel and annotation with data for this run', async () => {
    const { live, startS, endS } = await watched();
    const dashboards = committedDashboards(REPO_ROOT);
    expect(dashboards.map((d) => d.file)).toEqual(['phasebench-compare.json', 'phasebench-rollout.json']);

    const checked: Array<{ query: DashboardQuery; series: number; last: number; max: number; expr: string }> =
      [];
    for (const { dashboard } of dashboards) {
      // The variables as Grafana resolves them: each one's query, with the ones before it set.
      const vars: Record<string, string> = {
        __rate_interval: RATE_INTERVAL,
        __range: `${Math.ceil(endS - startS)}s`,
      };
      for (const [i, query] of variableQueries(dashboard).entries()) {
        const name = dashboard.templating!.list![i]!.name;
        const values = await labelValues(query, vars, endS);
        expect(values.length, `$${name}: ${query}`).toBeGreaterThan(0);
        if (name === 'run') {
          expect(values).toContain(live.runId);
          vars.run = regexEscape(live.runId);
        } else {
          vars[name] = selected(values);
        }
      }
      expect(vars.plan).toBe('phased');
      expect(vars.bes_instance).toMatch(/^\(BES01A\|BES01B\|BESNEW\d+/);

      for (const query of queriesOf(dashboard)) {
        const expr = interpolate(query.expr, vars);
        const result: PromSample[] = query.instant
          ? await prometheus!.query(expr, endS)
          : await prometheus!.queryRange(expr, startS, endS, SCRAPE_INTERVAL_S);
        const finite = result.flatMap((s) => s.values).filter(Number.isFinite);
        const where = `${query.dashboard} / ${query.where}: ${expr}`;
        expect(result.length, where).toBeGreaterThan(0);
        // NaN alone (a quantile of no observations) would draw nothing.
        expect(finite.length, where).toBeGreaterThan(0);
        checked.push({ query, series: result.length, last: finite.at(-1)!, max: Math.max(...finite), expr });
      }
    }
    console.log(
      `${checked.length} dashboard expressions checked on run ${live.runId} ` +
        `(${Math.round(endS - startS)} s, scraped every ${SCRAPE_INTERVAL_S} s; $__rate_interval=${RATE_INTERVAL}):\n` +
        checked
          .map(
            ({ query, series, last, max, expr }) =>
              `  ${query.instant ? 'instant' : 'range  '} ${String(series).padStart(2)} series, ` +
              `max ${formatValue(max).padStart(9)}, last ${formatValue(last).padStart(9)}  ` +
              `${query.dashboard} / ${query.where}\n      ${expr}`,
          )
          .join('\n'),
    );
    expect(checked.length).toBeGreaterThanOrEqual(30);
  }, 300_000);

  it('holds what the run summary says: peak queues, pushes by outcome, stranded users, converged share', async () => {
    const { live, startS, endS } = await watched();
    const m = live.metrics;
    const selector = `{run="${live.runId}",plan="phased"}`;
    const range = `${Math.ceil(endS - startS)}s`;
    const at = async (promql: string) => prometheus!.query(promql, endS);
    const one = async (promql: string) => (await at(promql))[0]?.values[0];

    // The queue gauges hold the deepest level since the previous scrape, so Prometheus saw every peak.
    expect(await one(`max_over_time(${METRICS.domainQueueDepth.name}${selector}[${range}])`)).toBe(
      m.peakQueue.domain,
    );
    const byInstance = await at(`max_over_time(${METRICS.queueDepth.name}${selector}[${range}])`);
    for (const s of byInstance)
      expect(s.values[0], s.metric.bes_instance).toBe(m.peakQueue.byInstance[s.metric.bes_instance!] ?? 0);
    expect(byInstance.length).toBeGreaterThanOrEqual(Object.keys(m.peakQueue.byInstance).length);
    // Utilisation holds the busiest minute since the previous scrape: the summary's busiest 60 s.
    const limit = scenario.domain.throttle.jobsPerMinutePerService!;
    const busiest = await at(`max_over_time(${METRICS.throttleUtilisation.name}${selector}[${range}])`);
    for (const s of busiest)
      expect(Math.round(s.values[0]! * limit), s.metric.bes_instance).toBe(
        m.maxJobsInAnyMinute.byInstance[s.metric.bes_instance!] ?? 0,
      );
    expect(busiest.length).toBe(byInstance.length);

    const outcomes = await at(`sum by (outcome) (${METRICS.pushes.name}${selector})`);
    expect(Object.fromEntries(outcomes.map((s) => [s.metric.outcome!, s.values[0]]))).toEqual({
      acknowledged: m.pushes.acknowledged,
      expired: m.pushes.expired,
    });
    expect(m.pushes.expired).toBeGreaterThan(0);
    expect(await one(`sum(${METRICS.pushesQueued.name}${selector})`)).toBe(m.pushes.queued);
    expect(m.pushes.resent).toBeGreaterThan(0);
    expect(await one(`sum(${METRICS.pushResends.name}${selector})`)).toBe(m.pushes.resent);
    expect(await one(`${METRICS.events.name}${selector}`)).toBe(m.events);
    expect(await one(`sum(${METRICS.pushDelivery.name}_count${selector})`)).toBe(m.pushDelivery.count);
    const stranded = await at(`${METRICS.strandedUsers.name}${selector}`);
    expect(stranded.map((s) => s.metric.reason).sort()).toEqual([...STRANDED_REASONS].sort());
    for (const s of stranded)
      expect(s.values[0], s.metric.reason).toBe(m.stranded.byReason[s.metric.reason as never] ?? 0);
    expect(m.stranded.total).toBeGreaterThan(0);
    expect(await one(`${METRICS.convergedShare.name}${selector}`)).toBeCloseTo(m.convergedShare, 12);
    expect(await one(`${METRICS.currentPhase.name}${selector}`)).toBe(m.phases.length);

    const scrapes = await one(`count_over_time(up{job="phasebench-live"}[${range}])`);
    console.log(
      `live run ${live.runId}: ${m.events} events in ${Math.round(endS - startS)} s at x${TIME_SCALE}, ${scrapes} scrapes; ` +
        `busiest minute ${JSON.stringify(m.maxJobsInAnyMinute.byInstance)} jobs (limit ${limit}), ` +
        `peak queue ${m.peakQueue.domain} (${Object.entries(m.peakQueue.byInstance)
          .map(([i, p]) => `${i} ${p}`)
          .join(
            ', ',
          )}), pushes queued ${m.pushes.queued}, acknowledged ${m.pushes.acknowledged}, expired ${m.pushes.expired}, ` +
        `resent ${m.pushes.resent}, p95 delivery ${(m.pushDelivery.p95Ms / 1000).toFixed(1)} s, stranded ${JSON.stringify(m.stranded.byReason)}, ` +
        `converged ${(m.convergedShare * 100).toFixed(1)}%, phases ${m.phases.length}`,
    );
  }, 300_000);
});

function formatValue(value: number): string {
  return Number.isInteger(value) ? String(value) : value.toPrecision(4);
}
