/**
 * The OpenMetrics export of a simulated run agrees with the plan projection (summary.json),
 * passes the real `promtool check metrics`, and — backfilled with the real promtool into a TSDB
 * served by a real Prometheus — answers PromQL with summary.json's numbers.
 *
 * Needs Debian's prometheus package (prometheus + promtool); without it these tests fail, they
 * are never skipped (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportMetricsCommand } from '../cli/export-metrics.ts';
import { readEventsFile } from '../log/file.ts';
import { eventsPath } from '../results/store.ts';
import { runScenario } from '../run/scenario-run.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { backfillRun, exportRunMetrics, LocalPrometheus, projectRun } from './backfill.ts';
import { METRICS, STRANDED_REASONS } from './names.ts';
import { defaultStartMs, type PlanMinuteSeries, projectMinuteSeries } from './openmetrics.ts';
import type { RunSummary } from './summary.ts';

const root = mkdtempSync(join(tmpdir(), 'phasebench-openmetrics-'));
const runDir = join(root, 'om-run');
const START = Date.parse('2026-03-01T08:00:00Z');
let summary: RunSummary;

/** Two plans over one fleet with coverage gaps, old devices (cradles) and problem accounts. */
const scenario = tinyScenario({
  name: 'openmetrics',
  seed: 3,
  instances: 3,
  horizon: '12h',
  fleet: quietFleet(150, {
    softwareVersions: { '4.5': 0.8, '3.8': 0.2 },
    coverage: { alwaysOnlineShare: 0.6 },
    problemAccountShare: 0.05,
  }),
  throttle: { inProcessJobs: 5, jobsPerMinutePerService: 10, jobsPerMinuteDomain: 20 },
  domain: { moveDetectionPoll: '15m' },
  plans: {
    collapse: { kind: 'collapse', from: ['BES01B', 'BES01C'], into: 'BES01A', stopWindow: '20m' },
    phased: { kind: 'phased', into: { newInstances: { srpIdBase: 50 } }, size: 40, every: '10m' },
  },
});

beforeAll(async () => {
  ({ summary } = await runScenario(scenario, { outDir: runDir }));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function lastValue(plan: PlanMinuteSeries, name: string, labels: Record<string, string>): number {
  const series = plan.scalars
    .get(name)
    ?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (!series) throw new Error(`no ${name} series with ${JSON.stringify(labels)} in plan ${plan.plan}`);
  return series.values[series.values.length - 1]!;
}

function maxValue(plan: PlanMinuteSeries, name: string, labels: Record<string, string>): number {
  const series = plan.scalars
    .get(name)
    ?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return series ? Math.max(...series.values) : 0;
}

describe('per-minute series from a plan log', () => {
  it('agree with the plan projection: peaks, jobs per minute, pushes, stranded, histograms, converged share', async () => {
    const plans = await projectRun(runDir);
    expect(plans.map((p) => p.plan)).toEqual(['collapse', 'phased']);
    for (const plan of plans) {
      const m = summary.plans[plan.plan]!.metrics;
      expect(plan.summary).toEqual({ ...m, logSha256: '' });
      // Sample k is minute k; the last one follows the last event.
      expect(plan.samples).toBe(Math.floor(plan.endMs / 60_000) + 2);

      expect(maxValue(plan, METRICS.domainQueueDepth.name, {})).toBe(m.peakQueue.domain);
      expect(m.peakQueue.domain).toBeGreaterThan(0);
      const instances = plan.scalars.get(METRICS.queueDepth.name)!.map((s) => s.labels.bes_instance!);
      for (const instance of instances) {
        const labels = { bes_instance: instance };
        expect(maxValue(plan, METRICS.queueDepth.name, labels)).toBe(m.peakQueue.byInstance[instance] ?? 0);
        // Utilisation is jobs started in a whole minute over the per-service limit (10).
        expect(Math.round(maxValue(plan, METRICS.throttleUtilisation.name, labels) * 10)).toBe(
          m.jobsPerMinute.peakByInstance[instance] ?? 0,
        );
      }
      const dispatched = plan.scalars
        .get(METRICS.jobsDispatched.name)!
        .reduce((sum, s) => sum + s.values[s.values.length - 1]!, 0);
      expect(dispatched).toBeGreaterThan(0);

      const sumOver = (name: string, labels: Record<string, string>): number =>
        (plan.scalars.get(name) ?? [])
          .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
          .reduce((sum, s) => sum + s.values[s.values.length - 1]!, 0);
      expect(sumOver(METRICS.pushesQueued.name, {})).toBe(m.pushes.queued);
      expect(sumOver(METRICS.pushes.name, { outcome: 'acknowledged' })).toBe(m.pushes.acknowledged);
      expect(sumOver(METRICS.pushes.name, { outcome: 'expired' })).toBe(m.pushes.expired);
      expect(sumOver(METRICS.pushResends.name, {})).toBe(m.pushes.resent);
      expect(lastValue(plan, METRICS.events.name, {})).toBe(m.events);

      for (const reason of STRANDED_REASONS)
        expect(lastValue(plan, METRICS.strandedUsers.name, { reason })).toBe(
          m.stranded.byReason[reason] ?? 0,
        );
      expect(m.stranded.total).toBeGreaterThan(0);

      const delivery = plan.histograms.get(METRICS.pushDelivery.name)!;
      expect(delivery.reduce((sum, h) => sum + h.count[h.count.length - 1]!, 0)).toBe(m.pushDelivery.count);
      const migration = plan.histograms.get(METRICS.userMigration.name)![0]!;
      expect(migration.count[migration.count.length - 1]).toBe(m.userMigration.count);
      // The +Inf bucket is the count, sample by sample.
      expect(migration.buckets[migration.buckets.length - 1]).toEqual(migration.count);

      // The summary's timeline samples the same instants (minute k, before events at k), keeping
      // the last of every `step` minutes when it downsamples.
      const share = plan.scalars.get(METRICS.convergedShare.name)![0]!.values;
      const n = plan.samples - 1;
      const step = Math.max(1, Math.ceil(n / 1_500));
      expect(m.timeline.minute).toEqual(m.timeline.minute.map((_, i) => i * step));
      expect(m.timeline.convergedShare).toEqual(
        m.timeline.minute.map((k) => Math.round(share[Math.min(n, k + step) - 1]! * 10_000) / 10_000),
      );
      expect(share[share.length - 1]).toBeCloseTo(m.convergedShare, 12);
      expect(lastValue(plan, METRICS.currentPhase.name, {})).toBe(m.phases.length);
    }
  });

  it('ignore a duplicate delivery of an event, as the projection does', async () => {
    const events = [];
    for await (const e of readEventsFile(eventsPath(runDir, 'phased'))) events.push(e);
    const doubled = events.flatMap((e, i) => (i % 7 === 0 ? [e, e] : [e]));
    const once = await projectMinuteSeries(events, 'r');
    const twice = await projectMinuteSeries(doubled, 'r');
    expect(twice.scalars).toEqual(once.scalars);
    expect(twice.histograms).toEqual(once.histograms);
  });
});

describe('OpenMetrics text', () => {
  it('is timestamped from --start, one sample a minute, labelled by run and plan, and ends with # EOF', async () => {
    const out = join(root, 'cli.om');
    await exportMetricsCommand().parseAsync([runDir, '--start', '2026-03-01T08:00:00Z', '--out', out], {
      from: 'user',
    });
    const text = readFileSync(out, 'utf8');
    expect(text.endsWith('\n# EOF\n')).toBe(true);
    expect(text.match(/^# EOF$/gm)).toHaveLength(1);
    const first = `phasebench_domain_queue_depth_jobs{run="om-run",plan="collapse"} 0 ${START / 1000}\n`;
    expect(text).toContain(first);
    const times = [
      ...text.matchAll(/^phasebench_current_phase\{run="om-run",plan="phased"\} \S+ (\d+)$/gm),
    ].map((match) => Number(match[1]));
    expect(times[0]).toBe(START / 1000);
    expect(times.slice(1).every((t, i) => t - times[i]! === 60)).toBe(true);
    // Same log, same start: the same bytes.
    const again = join(root, 'again.om');
    await exportRunMetrics(runDir, again, { startMs: START, now: new Date(0) });
    expect(readFileSync(again, 'utf8')).toBe(text);
  });

  it('passes promtool check metrics with no problems', async () => {
    const out = join(root, 'check.om');
    await exportRunMetrics(runDir, out, { startMs: START, now: new Date(0) });
    const check = spawnSync('promtool', ['check', 'metrics'], { input: readFileSync(out), encoding: 'utf8' });
    expect(check.error, 'promtool must be installed: apt-get install prometheus').toBeUndefined();
    expect(check.stdout + check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('defaults to a start at least a day back and 3 hours clear of now, at a whole minute', () => {
    const now = Date.parse('2026-06-10T12:34:56.789Z');
    expect(defaultStartMs(now, 2 * 3_600_000)).toBe(Date.parse('2026-06-09T12:34:00Z'));
    const week = 7 * 24 * 3_600_000;
    const start = defaultStartMs(now, week);
    expect(start % 60_000).toBe(0);
    expect(start + week).toBeLessThanOrEqual(now - 3 * 3_600_000);
    expect(start + week).toBeGreaterThan(now - 3 * 3_600_000 - 60_000);
  });
});

describe('backfilled into a real Prometheus', () => {
  const tsdb = join(root, 'tsdb');
  let prometheus: LocalPrometheus | undefined;
  let firstS = 0;
  let lastS = 0;

  beforeAll(async () => {
    // The default start (relative to now), as a user gets it.
    const result = await backfillRun(runDir, { tsdb, now: new Date() });
    firstS = result.firstSampleMs / 1000;
    lastS = result.lastSampleMs / 1000;
    expect(readdirSync(tsdb).filter((f) => /^[0-9A-Z]{26}$/.test(f)).length).toBeGreaterThan(0);
    prometheus = new LocalPrometheus({ port: await LocalPrometheus.freePort(), tsdb });
    await prometheus.up();
  });
  afterAll(async () => {
    await prometheus?.down();
  });

  const query = async (promql: string) =>
    (await prometheus!.query(promql, lastS)).map((r) => ({ metric: r.metric, value: r.values[0]! }));

  it('answers max_over_time of the queue depth with summary.json peakQueue, per plan and per instance', async () => {
    const range = `${lastS - firstS + 60}s`;
    for (const [plan, { metrics }] of Object.entries(summary.plans)) {
      const selector = `{run="om-run",plan="${plan}"}`;
      const domain = await query(`max_over_time(${METRICS.domainQueueDepth.name}${selector}[${range}])`);
      expect(domain).toHaveLength(1);
      expect(domain[0]!.value).toBe(metrics.peakQueue.domain);

      const byInstance = await query(`max_over_time(${METRICS.queueDepth.name}${selector}[${range}])`);
      expect(byInstance.length).toBeGreaterThanOrEqual(Object.keys(metrics.peakQueue.byInstance).length);
      const peaks = Object.fromEntries(byInstance.map((r) => [r.metric.bes_instance!, r.value]));
      for (const [instance, peak] of Object.entries(peaks))
        expect(peak, `${plan} ${instance}`).toBe(metrics.peakQueue.byInstance[instance] ?? 0);
      for (const instance of Object.keys(metrics.peakQueue.byInstance))
        expect(peaks).toHaveProperty(instance);
    }
  });

  it('says how to install promtool when it cannot run it', async () => {
    await expect(
      backfillRun(runDir, {
        tsdb: join(root, 'unused'),
        now: new Date(),
        promtool: join(root, 'no-promtool'),
      }),
    ).rejects.toMatchObject({
      code: 'PROMTOOL_NOT_FOUND',
      message: expect.stringContaining('apt-get install prometheus'),
    });
  });

  it('holds the final counters: pushes by outcome and the converged share at the end of the run', async () => {
    for (const [plan, { metrics }] of Object.entries(summary.plans)) {
      const selector = `{run="om-run",plan="${plan}"}`;
      const outcomes = await query(`sum by (outcome) (${METRICS.pushes.name}${selector})`);
      const byOutcome = Object.fromEntries(outcomes.map((r) => [r.metric.outcome!, r.value]));
      expect(byOutcome).toEqual({
        acknowledged: metrics.pushes.acknowledged,
        expired: metrics.pushes.expired,
      });
      const share = await query(`${METRICS.convergedShare.name}${selector}`);
      expect(share[0]!.value).toBeCloseTo(metrics.convergedShare, 12);
    }
  });
});
