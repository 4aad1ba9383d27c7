/**
 * LiveMetrics holds in its registry what the plan projection (summary.json) says of the same
 * events, read as Prometheus would read it: at any moments during the run and once after it.
 * The events come from simulated runs, which the live decider reproduces event for event
 * (run-live.test.ts). The metrics server is checked over real HTTP.
 */
import { createServer } from 'node:net';
import fc from 'fast-check';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMA_VERSION, type EventData, type EventType, type StoredEvent } from '../domain/events.ts';
import { buildRegistry, METRICS, type MetricDefinition, STRANDED_REASONS } from '../metrics/names.ts';
import type { PlanMetrics } from '../metrics/summary.ts';
import { runPlan } from '../sim/run.ts';
import { arbitraryScenario, quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { LiveMetrics, startMetricsServer } from './metrics.ts';

type Sample = { labels: Record<string, string | number>; value: number; metricName?: string };

/** The registry as a scrape reads it: samples by metric name (histograms by sample name). */
async function scrape(registry: Registry): Promise<Map<string, Sample[]>> {
  const samples = new Map<string, Sample[]>();
  for (const metric of await registry.getMetricsAsJSON())
    for (const value of metric.values as Sample[]) {
      const name = value.metricName ?? metric.name;
      samples.set(name, [...(samples.get(name) ?? []), value]);
    }
  return samples;
}

/** The sum of a sample name's values over the series matching `match`. */
function sum(read: Map<string, Sample[]>, name: string, match: Record<string, string> = {}): number {
  return (read.get(name) ?? [])
    .filter((s) => Object.entries(match).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
}

/** The largest value each series of a gauge took over all reads, by its label (e.g. bes_instance). */
function peaks(reads: Map<string, Sample[]>[], metric: MetricDefinition, by: string): Map<string, number> {
  const peak = new Map<string, number>();
  for (const read of reads)
    for (const s of read.get(metric.name) ?? []) {
      const key = String(s.labels[by] ?? '');
      peak.set(key, Math.max(peak.get(key) ?? 0, s.value));
    }
  return peak;
}

/** The final registry agrees with the plan's summary: counters, stranded users, histograms, share, phase. */
function expectFinal(read: Map<string, Sample[]>, m: PlanMetrics): void {
  expect(sum(read, METRICS.pushesQueued.name)).toBe(m.pushes.queued);
  expect(sum(read, METRICS.pushes.name, { outcome: 'acknowledged' })).toBe(m.pushes.acknowledged);
  expect(sum(read, METRICS.pushes.name, { outcome: 'expired' })).toBe(m.pushes.expired);
  expect(sum(read, METRICS.pushResends.name)).toBe(m.pushes.resent);
  expect(sum(read, METRICS.events.name)).toBe(m.events);
  for (const reason of STRANDED_REASONS)
    expect(sum(read, METRICS.strandedUsers.name, { reason }), reason).toBe(m.stranded.byReason[reason] ?? 0);
  expect(sum(read, `${METRICS.pushDelivery.name}_count`)).toBe(m.pushDelivery.count);
  expect(sum(read, `${METRICS.userMigration.name}_count`)).toBe(m.userMigration.count);
  expect(sum(read, METRICS.convergedShare.name)).toBeCloseTo(m.convergedShare, 12);
  expect(sum(read, METRICS.currentPhase.name)).toBe(m.phases.length);
  // Every series carries the run and the plan.
  for (const samples of read.values())
    for (const s of samples) expect(s.labels).toMatchObject({ plan: m.plan, run: expect.any(String) });
}

describe('LiveMetrics over a simulated run', () => {
  it('holds the summary: peak queues however often it is read, pushes, stranded users, histograms, share', async () => {
    await fc.assert(
      fc.asyncProperty(
        arbitraryScenario(),
        fc.integer({ min: 1, max: 400 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        async ({ scenario, plan }, readEvery, readSeed) => {
          const run = runPlan(scenario, plan);
          const { registry, metrics } = buildRegistry({ processMetrics: false });
          const live = new LiveMetrics({ registry, metrics });
          const reads: Map<string, Sample[]>[] = [];
          // Reads at irregular moments: roughly every `readEvery` events.
          let next = readSeed % readEvery;
          for (let i = 0; i < run.events.length; i++) {
            live.apply(run.events[i]!);
            if (i === next) {
              reads.push(await scrape(registry));
              next += 1 + ((readSeed >>> (i % 16)) % readEvery);
            }
          }
          const final = await scrape(registry);
          reads.push(final);
          const m = run.metrics;

          expectFinal(final, m);
          // The queue gauges hold the deepest level since the previous read: their largest
          // reading is the summary's peak, for the domain and for every instance.
          expect(peaks(reads, METRICS.domainQueueDepth, 'plan').get(plan)).toBe(m.peakQueue.domain);
          for (const [instance, peak] of peaks(reads, METRICS.queueDepth, 'bes_instance'))
            expect(peak, instance).toBe(m.peakQueue.byInstance[instance] ?? 0);
          // Utilisation holds the busiest 60 s since the previous read: its largest reading is
          // the summary's busiest 60 s of each Policy Service.
          const limit = scenario.domain.throttle.jobsPerMinutePerService;
          for (const [instance, peak] of peaks(reads, METRICS.throttleUtilisation, 'bes_instance'))
            expect(Math.round(peak * limit!), instance).toBe(m.maxJobsInAnyMinute.byInstance[instance] ?? 0);
          if (limit === null) expect(final.get(METRICS.throttleUtilisation.name) ?? []).toEqual([]);
        },
      ),
      { numRuns: 25 },
    );
  });

  // Old devices, hours out of coverage with no relay, problem accounts: resends, expiries,
  // cradles, strandings.
  const scenario = tinyScenario({
    name: 'live-metrics',
    seed: 5,
    instances: 3,
    horizon: '12h',
    fleet: quietFleet(150, {
      softwareVersions: { '4.5': 0.8, '3.8': 0.2 },
      coverage: {
        alwaysOnlineShare: 0.6,
        online: { kind: 'exponential', mean: '3h' },
        offline: { kind: 'exponential', mean: '2h' },
      },
      problemAccountShare: 0.05,
    }),
    throttle: { inProcessJobs: 5, jobsPerMinutePerService: 10, jobsPerMinuteDomain: 20 },
    engine: { resendInterval: '1h', pushExpiry: '3h', relay: { maxItems: 0, maxHold: '1h' } },
    plans: { phased: { kind: 'phased', into: { newInstances: { srpIdBase: 50 } }, size: 40, every: '10m' } },
  });

  it('read after every event, shows the busiest 60 s of each throttle and ignores duplicate deliveries', async () => {
    const run = runPlan(scenario, 'phased');
    const m = run.metrics;
    expect(m.stranded.total).toBeGreaterThan(0);
    expect(m.pushes.resent).toBeGreaterThan(0);
    expect(m.pushes.expired).toBeGreaterThan(0);
    const { registry, metrics } = buildRegistry({ processMetrics: false });
    const live = new LiveMetrics({ registry, metrics });
    const reads: Map<string, Sample[]>[] = [];
    for (const [i, e] of run.events.entries()) {
      live.apply(e);
      // At-least-once delivery: some events arrive twice, and count once.
      if (i % 5 === 0) live.apply(structuredClone(e));
      reads.push(await scrape(registry));
    }
    expectFinal(reads.at(-1)!, m);
    const utilisation = peaks(reads, METRICS.throttleUtilisation, 'bes_instance');
    expect(utilisation.size).toBeGreaterThan(0);
    for (const [instance, peak] of utilisation)
      expect(Math.round(peak * 10), instance).toBe(m.maxJobsInAnyMinute.byInstance[instance] ?? 0);
    expect(Math.max(...utilisation.values())).toBe(1);
  });

  it('keeps two runs apart by their run label', async () => {
    const { registry, metrics } = buildRegistry({ processMetrics: false });
    const live = new LiveMetrics({ registry, metrics });
    const a = runPlan(scenario, 'phased');
    const b = runPlan({ ...scenario, seed: 6 }, 'phased');
    for (let i = 0; i < Math.max(a.events.length, b.events.length); i++) {
      if (a.events[i]) live.apply(a.events[i]!);
      if (b.events[i]) live.apply(b.events[i]!);
    }
    const read = await scrape(registry);
    for (const r of [a, b]) {
      const only = new Map(
        [...read].map(([name, samples]) => [name, samples.filter((s) => s.labels.run === r.runId)]),
      );
      expectFinal(only, r.metrics);
    }
  });
});

describe('LiveMetrics forgetting runs', () => {
  const scenario = tinyScenario({
    name: 'live-forget',
    seed: 7,
    instances: 2,
    horizon: '6h',
    fleet: quietFleet(40),
    throttle: { inProcessJobs: 5, jobsPerMinutePerService: 10 },
    plans: { phased: { kind: 'phased', into: { newInstances: { srpIdBase: 50 } }, size: 20, every: '5m' } },
  });
  const a = runPlan(scenario, 'phased');
  const b = runPlan({ ...scenario, seed: 8 }, 'phased');
  /** The read's samples of one run. */
  const ofRun = (read: Map<string, Sample[]>, run: string) =>
    new Map([...read].map(([name, samples]) => [name, samples.filter((s) => s.labels.run === run)]));
  const seriesOf = (read: Map<string, Sample[]>, run: string) =>
    [...ofRun(read, run).values()].reduce((n, samples) => n + samples.length, 0);

  it('removes a completed run a grace period after its RunCompleted, at the next read, and keeps the others', async () => {
    let wallMs = 0;
    const grace = 300_000;
    const { registry, metrics } = buildRegistry({ processMetrics: false });
    const live = new LiveMetrics(
      { registry, metrics },
      { wall: { nowMs: () => wallMs }, forgetCompletedAfterMs: grace },
    );
    for (const e of a.events) live.apply(e);
    expect(a.events.at(-1)!.type).toBe('RunCompleted');
    const completedAtMs = wallMs;
    // b is still going: half its events.
    for (const e of b.events.slice(0, b.events.length >> 1)) live.apply(e);

    // Within the grace period, scrapes see the final values.
    wallMs = completedAtMs + grace - 1;
    expectFinal(ofRun(await scrape(registry), a.runId), a.metrics);
    expect(live.held.sort()).toEqual([a.runId, b.runId].sort());

    wallMs = completedAtMs + grace;
    const after = await scrape(registry);
    expect(seriesOf(after, a.runId)).toBe(0);
    expect(live.held).toEqual([b.runId]);
    expect(await registry.metrics()).not.toContain(a.runId);
    // Still forgotten on later reads: nothing of it is written again.
    expect(seriesOf(await scrape(registry), a.runId)).toBe(0);
    // The other run goes on and ends as its summary says.
    for (const e of b.events.slice(b.events.length >> 1)) live.apply(e);
    expectFinal(ofRun(await scrape(registry), b.runId), b.metrics);
    // b completed at `wallMs`: it stays for its own grace period.
    wallMs += grace - 1;
    expect(seriesOf(await scrape(registry), b.runId)).toBeGreaterThan(0);
    wallMs += 1;
    expect(seriesOf(await scrape(registry), b.runId)).toBe(0);
    expect(live.held).toEqual([]);
  });

  it('without a grace period keeps completed runs; forget removes one at once, and its events applied again count from nothing', async () => {
    let wallMs = 0;
    const { registry, metrics } = buildRegistry({ processMetrics: false });
    const live = new LiveMetrics({ registry, metrics }, { wall: { nowMs: () => wallMs } });
    for (const e of [...a.events, ...b.events]) live.apply(e);
    wallMs = 7 * 24 * 3_600_000;
    expect(seriesOf(await scrape(registry), a.runId)).toBeGreaterThan(0);

    expect(live.forget(a.runId)).toBe(true);
    expect(live.forget(a.runId)).toBe(false);
    const read = await scrape(registry);
    expect(seriesOf(read, a.runId)).toBe(0);
    expectFinal(ofRun(read, b.runId), b.metrics);

    // A run hosted here again is replayed from the log in full: its series are the whole run's, once.
    for (const e of a.events) live.apply(e);
    expectFinal(ofRun(await scrape(registry), a.runId), a.metrics);
  });
});

describe('LiveMetrics on the run timeline', () => {
  let seq = 0;
  const run = 'timeline/phased/s1/live-test';
  function stored<T extends EventType>(type: T, at: number, data: EventData[T]): StoredEvent {
    const s = seq++;
    return {
      type,
      key: 'k',
      at,
      data,
      v: EVENT_SCHEMA_VERSION,
      run,
      seq: s,
      id: `${run}#${s}`,
    } as StoredEvent;
  }
  const job = (n: number, at: number) =>
    stored('JobQueued', at, {
      job: n,
      user: `u${n}`,
      device: `d${n}`,
      instance: 'BES01A',
      pushes: [{ push: n, kind: 'itPolicy', bytes: 1_000 }],
      bypassThrottle: false,
      cause: 'move',
    });
  const dispatch = (n: number, at: number) =>
    stored('JobDispatched', at, { job: n, instance: 'BES01A', queuedAt: 0, fromDeferredSlot: false });

  it('drains the queue gauge and idles the throttle as run time passes without events, at the time scale', async () => {
    let wallMs = 0;
    const timeScale = 300;
    const { registry, metrics } = buildRegistry({ processMetrics: false });
    const live = new LiveMetrics({ registry, metrics }, { timeScale, wall: { nowMs: () => wallMs } });
    /** Events arrive on the wall clock: run time / scale, plus `lagMs` on the way. */
    const arrive = (e: StoredEvent, lagMs = 0) => {
      wallMs = Math.max(wallMs, e.at / timeScale + lagMs);
      live.apply(e);
    };
    const gauges = async () => {
      const read = await scrape(registry);
      return {
        queue: sum(read, METRICS.queueDepth.name),
        domain: sum(read, METRICS.domainQueueDepth.name),
        utilisation: sum(read, METRICS.throttleUtilisation.name),
      };
    };
    arrive(
      stored('RunStarted', 0, {
        scenario: 'timeline',
        plan: 'phased',
        planKind: 'phased',
        seed: 1,
        horizonMs: 86_400_000,
        planSpec: {},
        throttle: { inProcessJobs: null, jobsPerMinutePerService: 10, jobsPerMinuteDomain: null },
        slos: {},
      }),
    );
    arrive(
      stored('FleetProvisioned', 0, {
        users: 3,
        devices: 3,
        instances: [{ id: 'BES01A', srpId: '1', users: 3 }],
        softwareVersions: { '4.5': 3 },
        problemAccounts: 0,
        alwaysOnline: 3,
      }),
    );
    for (const n of [1, 2, 3]) arrive(job(n, 1_000));
    arrive(dispatch(1, 2_000), 50);
    arrive(dispatch(2, 20_000));
    expect(await gauges()).toEqual({ queue: 3, domain: 3, utilisation: 0.2 });
    // 30 run-seconds on: the peak of 3 is still within the minute.
    wallMs += 30_000 / timeScale;
    expect(await gauges()).toEqual({ queue: 3, domain: 3, utilisation: 0.2 });
    // At 70 s the minute starts at 10 s: the peak of 3 and the first start have left it, and
    // the queue held 2 from 2 s to 20 s.
    wallMs += 20_000 / timeScale;
    expect(await gauges()).toEqual({ queue: 2, domain: 2, utilisation: 0.1 });
    // At 130 s: one job still waits, nothing started for a minute.
    wallMs += 60_000 / timeScale;
    expect(await gauges()).toEqual({ queue: 1, domain: 1, utilisation: 0 });

    // A peak between two reads is not lost, however fast run time passed since.
    arrive(job(4, 130_000));
    arrive(dispatch(3, 131_000));
    arrive(dispatch(4, 132_000));
    wallMs += 600_000 / timeScale;
    expect(await gauges()).toEqual({ queue: 2, domain: 2, utilisation: 0.2 });
    expect(await gauges()).toEqual({ queue: 0, domain: 0, utilisation: 0 });

    // After the run: the queues keep their last level, the throttles are idle.
    arrive(job(5, 800_000));
    arrive(stored('RunCompleted', 800_000, { pendingPushes: 1, reason: 'horizon' }));
    expect(await gauges()).toEqual({ queue: 1, domain: 1, utilisation: 0 });
  });
});

describe('the metrics server', () => {
  it('serves /metrics as Prometheus text, /healthz as JSON with 200 or 503, and JSON 404s and 405s', async () => {
    const { registry, metrics } = buildRegistry();
    let healthy = true;
    const server = await startMetricsServer({
      port: 0,
      registry,
      health: () => ({ ok: healthy, run: 'r1', events: 3 }),
    });
    try {
      expect(server.port).toBeGreaterThan(0);
      expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
      metrics.events.inc({ run: 'r1', plan: 'phased' }, 3);

      const next = server.scraped(10_000);
      const scraped = await fetch(`${server.url}/metrics`);
      expect(scraped.status).toBe(200);
      expect(scraped.headers.get('content-type')).toBe(registry.contentType);
      const text = await scraped.text();
      expect(text).toContain('phasebench_events_total{run="r1",plan="phased"} 3\n');
      expect(text).toContain('# TYPE process_cpu_seconds_total counter');
      expect(await next).toBe(true);
      expect(server.scrapes).toBe(1);
      expect(await server.scraped(50)).toBe(false);

      const ok = await fetch(`${server.url}/healthz`);
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await ok.json()).toEqual({ ok: true, run: 'r1', events: 3 });
      healthy = false;
      const down = await fetch(`${server.url}/healthz?verbose=1`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({ ok: false, run: 'r1', events: 3 });

      const missing = await fetch(`${server.url}/nope`);
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({ error: 'not found', path: '/nope' });
      const posted = await fetch(`${server.url}/metrics`, { method: 'POST' });
      expect(posted.status).toBe(405);
      expect(posted.headers.get('allow')).toBe('GET, HEAD');
      expect(await posted.json()).toEqual({ error: 'method not allowed', method: 'POST' });
      const head = await fetch(`${server.url}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('answers 503 when the health check throws, closes with a kept-alive connection open, and says when a port is taken', async () => {
    const { registry } = buildRegistry({ processMetrics: false });
    const server = await startMetricsServer({
      port: 0,
      registry,
      health: () => {
        throw new Error('broker unreachable');
      },
    });
    const failing = await fetch(`${server.url}/healthz`, { keepalive: true });
    expect(failing.status).toBe(503);
    expect(await failing.json()).toEqual({ ok: false, error: 'broker unreachable' });
    await server.close();

    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(
        startMetricsServer({ port, registry, health: () => ({ ok: true }) }),
      ).rejects.toMatchObject({
        code: 'METRICS_SERVER_NOT_STARTED',
        message: expect.stringContaining(`127.0.0.1:${port}`),
      });
    } finally {
      taken.close();
    }
  });
});
