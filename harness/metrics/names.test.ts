/**
 * The metric names are defined once and follow Prometheus conventions; the live registry built
 * from them exposes every family, and the real `promtool check metrics` finds no problem in it.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  buildRegistry,
  METRIC_DEFINITIONS,
  METRICS,
  PROCESS_METRICS,
  processRegistry,
  SERVICE_METRICS,
  seriesNames,
} from './names.ts';

describe('metric names', () => {
  it('are unique, prefixed, snake case, in base units, and never label a user, device or push', () => {
    const names = METRIC_DEFINITIONS.map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const metric of METRIC_DEFINITIONS) {
      expect(metric.name).toMatch(/^phasebench_[a-z][a-z0-9_]*[a-z0-9]$/);
      expect(metric.name.endsWith('_total')).toBe(metric.type === 'counter');
      expect(metric.name).not.toMatch(/_(milliseconds|ms|minutes|hours|percent|bytes_total_bytes)$/);
      if (metric.type === 'histogram') expect(metric.name).toMatch(/_seconds$/);
      if (metric.unit) expect(metric.name.endsWith(`_${metric.unit}`)).toBe(true);
      expect(metric.labels).toContain('plan');
      for (const label of metric.labels)
        expect(['user', 'device', 'push', 'job', 'instance']).not.toContain(label);
      expect(metric.help.length).toBeGreaterThan(20);
    }
    const buckets = METRICS.pushDelivery.buckets;
    expect([...buckets].sort((a, b) => a - b)).toEqual(buckets);
    expect(buckets[0]).toBeLessThanOrEqual(1);
    expect(buckets[buckets.length - 1]).toBeGreaterThanOrEqual(7 * 24 * 3600);
  });

  it('of the live services follow the same conventions, with no run label and no clash with a run family', () => {
    const runNames = new Set(METRIC_DEFINITIONS.map((m) => m.name));
    const names = Object.values(SERVICE_METRICS).map((m) => m.name);
    expect(new Set(names).size).toBe(names.length);
    for (const metric of Object.values(SERVICE_METRICS)) {
      expect(metric.name).toMatch(/^phasebench_[a-z][a-z0-9_]*[a-z0-9]$/);
      expect(metric.name.endsWith('_total')).toBe(metric.type === 'counter');
      expect(runNames).not.toContain(metric.name);
      // A service's series outlive any run; which service and replica is Prometheus's job and instance.
      for (const label of metric.labels)
        expect(['run', 'plan', 'user', 'device', 'push', 'instance']).not.toContain(label);
      expect(metric.help.length).toBeGreaterThan(20);
    }
  });

  it('processRegistry has the process metrics the dashboards chart and nothing promtool reports', async () => {
    const text = await processRegistry().metrics();
    for (const name of Object.values(PROCESS_METRICS)) expect(text).toContain(`# TYPE ${name} `);
    expect(text).not.toMatch(/^phasebench_/m);
    expect(lint(text)).toBe('');
  });

  it('build a prom-client registry with every family and the process metrics, which promtool finds clean', async () => {
    const { registry, metrics } = buildRegistry({ defaultLabels: { service: 'engine' } });
    const plan = { run: 'r1', plan: 'phased' };
    metrics.queueDepth.set({ ...plan, bes_instance: 'BES01A' }, 12);
    metrics.domainQueueDepth.set(plan, 12);
    metrics.jobsDispatched.inc({ ...plan, bes_instance: 'BES01A' }, 3);
    metrics.throttleUtilisation.set({ ...plan, bes_instance: 'BES01A' }, 0.3);
    metrics.pushesQueued.inc({ ...plan, kind: 'itPolicy' });
    metrics.pushes.inc({ ...plan, kind: 'itPolicy', outcome: 'acknowledged' });
    metrics.pushResends.inc({ ...plan, kind: 'itPolicy' });
    metrics.pushDelivery.observe({ ...plan, kind: 'itPolicy' }, 42.5);
    metrics.userMigration.observe(plan, 600);
    metrics.convergedShare.set(plan, 0.5);
    metrics.strandedUsers.set({ ...plan, reason: 'needsCradle' }, 2);
    metrics.currentPhase.set(plan, 3);
    metrics.events.inc(plan, 100);

    const text = await registry.metrics();
    const exposed = new Set([...text.matchAll(/^([a-z_:][a-z0-9_:]*)[{ ]/gm)].map((m) => m[1]!));
    for (const name of seriesNames()) expect(exposed, name).toContain(name);
    for (const name of Object.values(PROCESS_METRICS)) expect(exposed).toContain(name);
    // Bucket bounds are written as the OpenMetrics export writes them (le="60"), so live and
    // backfilled series are the same series.
    expect(text).toMatch(/^phasebench_push_delivery_seconds_bucket\{le="60",[^}]*kind="itPolicy"[^}]*\} 1$/m);
    expect(text).toMatch(/^phasebench_push_delivery_seconds_bucket\{le="30",[^}]*kind="itPolicy"[^}]*\} 0$/m);

    // prom-client's own gauges nodejs_active_{handles,requests,resources}_total end in _total,
    // which promtool reports; the registry leaves them out and keeps the counts by type.
    expect(lint(text)).toBe('');
    for (const what of ['handles', 'requests', 'resources']) {
      expect(text).toContain(`# TYPE nodejs_active_${what} gauge\n`);
      expect(text).not.toContain(`nodejs_active_${what}_total`);
    }
    const ours = buildRegistry({ processMetrics: false });
    ours.metrics.pushDelivery.observe({ ...plan, kind: 'serviceBooks' }, 3600);
    ours.metrics.pushes.inc({ ...plan, kind: 'serviceBooks', outcome: 'expired' });
    expect(lint(await ours.registry.metrics())).toBe('');
  });
});

function lint(text: string): string {
  const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  expect(check.error, 'promtool must be installed: apt-get install prometheus').toBeUndefined();
  expect(check.status === 0).toBe(check.stdout + check.stderr === '');
  return check.stdout + check.stderr;
}
