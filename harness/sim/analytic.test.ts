/**
 * Throttle arithmetic against the simulator. An IT policy change to N always-online devices on
 * fast links is limited only by the Policy Service throttles (D: 100 jobs a minute per service,
 * 300 across the domain, spread evenly over the minute), so its makespan is known in advance:
 * the last of N evenly spaced starts at `rate` jobs a minute is at (N - 1) / rate minutes, and
 * the last minute's jobs are spread over the whole minute, so it ends within a minute or so of
 * N / rate.
 */
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { MINUTE_MS, throttleLowerBoundMs } from '../domain/throttle.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { runPlan } from './run.ts';

const DEFAULT_PROCESSING = { kind: 'lognormal', median: 800, sigma: 0.5 } as const;

function policyChange(users: number, instanceCount: number, jobsPerMinuteDomain?: number | null) {
  const scenario = tinyScenario({
    name: 'analytic',
    instances: instanceCount,
    fleet: quietFleet(users),
    throttle: jobsPerMinuteDomain === undefined ? {} : { jobsPerMinuteDomain },
    engine: { serverProcessing: DEFAULT_PROCESSING },
    horizon: '1d',
    plans: { policy: { kind: 'itPolicyChange' } },
  });
  return { scenario, run: runPlan(scenario, 'policy') };
}

/** Most throttled jobs started in one calendar minute, counted from the log itself. */
function peakJobsPerMinute(events: readonly StoredEvent[], instance?: string): number {
  const perMinute = new Map<number, number>();
  for (const e of events) {
    if (e.type !== 'JobDispatched' || (instance !== undefined && e.data.instance !== instance)) continue;
    const minute = Math.floor(e.at / MINUTE_MS);
    perMinute.set(minute, (perMinute.get(minute) ?? 0) + 1);
  }
  return Math.max(0, ...perMinute.values());
}

function expectMakespanNear(makespanMs: number, users: number, rate: number): void {
  const minutes = makespanMs / MINUTE_MS;
  expect(minutes).toBeGreaterThanOrEqual((users - 1) / rate);
  expect(Math.abs(minutes - users / rate)).toBeLessThanOrEqual(0.05 * (users / rate) + 2);
}

describe('IT policy change makespan from the throttle arithmetic', () => {
  it.each([
    [7, 2_100],
    [20, 3_000],
  ])(
    '%i instances with a domain limit of 30 a minute: no capacity is lost to rounding the shares',
    (instances, users) => {
      // 30 / 7 and 30 / 20 do not divide: the remainder goes round the services minute by minute,
      // so the domain still starts 30 jobs every minute (fewer, and later, if shares were rounded
      // down). Uncoordinated services may bunch a minute's starts, so the hard bound is whole
      // minutes of the domain limit (throttleLowerBoundMs), and the pace is still N / 30.
      const { scenario, run } = policyChange(users, instances, 30);
      const m = run.metrics;
      expect(m.usersConverged).toBe(users);
      const perService = Array.from({ length: instances }, () => users / instances);
      expect(m.makespanMs).toBeGreaterThanOrEqual(throttleLowerBoundMs(perService, scenario.domain.throttle));
      expect(Math.abs(m.makespanMs / MINUTE_MS - users / 30)).toBeLessThanOrEqual(0.05 * (users / 30) + 2);
      expect(m.maxJobsInAnyMinute.domain).toBeLessThanOrEqual(30);
    },
  );

  it.each([500, 2000, 5000])('one instance: %i devices take about N/100 minutes', (users) => {
    const { scenario, run } = policyChange(users, 1);
    const m = run.metrics;
    expect(m.usersConverged).toBe(users);
    expect(m.pushes).toMatchObject({ queued: users, acknowledged: users, pending: 0 });
    expectMakespanNear(m.makespanMs, users, 100);
    expect(m.makespanMs).toBeGreaterThanOrEqual(throttleLowerBoundMs([users], scenario.domain.throttle));
    expect(m.jobsPerMinute.peakDomain).toBe(100);
    expect(m.maxJobsInAnyMinute.domain).toBe(100);
    expect(peakJobsPerMinute(run.events)).toBe(100);
  });

  it.each([500, 2000, 5000, 10_000])(
    'five instances: the domain limit binds, %i devices take about N/300 minutes',
    (users) => {
      const { scenario, run } = policyChange(users, 5);
      const m = run.metrics;
      expect(m.usersConverged).toBe(users);
      expectMakespanNear(m.makespanMs, users, 300);
      // Five services at 100 a minute each could do N/500; the domain's 300 must be what binds.
      expect(m.makespanMs / MINUTE_MS).toBeGreaterThan(users / 500);
      const perInstance = users / 5;
      expect(m.makespanMs).toBeGreaterThanOrEqual(
        throttleLowerBoundMs(
          [1, 2, 3, 4, 5].map(() => perInstance),
          scenario.domain.throttle,
        ),
      );
      expect(m.jobsPerMinute.peakDomain).toBe(300);
      expect(m.maxJobsInAnyMinute.domain).toBe(300);
      expect(peakJobsPerMinute(run.events)).toBe(300);
      // The services do not coordinate: each takes an equal share of the domain budget.
      for (const id of ['BES01A', 'BES01B', 'BES01C', 'BES01D', 'BES01E'])
        expect(peakJobsPerMinute(run.events, id)).toBe(60);
    },
  );

  it.each([2000, 5000])(
    'five instances without a domain limit take about N/500 minutes (%i devices)',
    (users) => {
      const { run } = policyChange(users, 5, null);
      const m = run.metrics;
      expect(m.usersConverged).toBe(users);
      expectMakespanNear(m.makespanMs, users, 500);
      expect(m.jobsPerMinute.peakDomain).toBe(500);
      expect(m.maxJobsInAnyMinute.domain).toBe(500);
      expect(peakJobsPerMinute(run.events)).toBe(500);
      expect(Object.values(m.jobsPerMinute.peakByInstance)).toEqual([100, 100, 100, 100, 100]);
    },
  );
});
