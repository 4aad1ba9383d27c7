import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventOf, StoredEvent } from '../domain/events.ts';
import { MINUTE_MS } from '../domain/throttle.ts';
import type { Scenario } from '../scenario/schema.ts';
import { type ArbitraryScenario, arbitraryScenario, quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { type PlanRun, runPlan } from './run.ts';

/** PHASEBENCH_PROPERTY_RUNS=500 digs deeper locally; CI keeps the suite well under a minute. */
const NUM_RUNS = Number(process.env.PHASEBENCH_PROPERTY_RUNS ?? 20);

function run(s: ArbitraryScenario): PlanRun {
  return runPlan(s.scenario, s.plan);
}

function ofType<T extends StoredEvent['type']>(events: readonly StoredEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is StoredEvent & EventOf<T> => e.type === type);
}

function runCompleted(events: readonly StoredEvent[]): EventOf<'RunCompleted'> {
  const done = ofType(events, 'RunCompleted');
  expect(done).toHaveLength(1);
  expect(events.at(-1)!.type).toBe('RunCompleted');
  return done[0]!;
}

/** Describes a scenario compactly in a counterexample. */
function describeScenario(s: ArbitraryScenario): string {
  const sc = s.scenario;
  return `${s.shape} seed=${sc.seed} users=${sc.fleet.users} instances=${sc.domain.instances.length} throttle=${JSON.stringify(sc.domain.throttle)} horizon=${sc.horizon}`;
}

const PUSH_EVENTS_AFTER_DISPATCH = new Set<StoredEvent['type']>([
  'PushHeldAtRelay',
  'PushRetryScheduled',
  'PushResent',
  'PushAwaitingCradle',
  'PushDelivered',
]);

describe('simulation invariants over small random scenarios', () => {
  it('every queued push ends in exactly one terminal state, or is pending at the horizon', () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const { events } = run(s);
        const queued = new Set<number>();
        for (const e of ofType(events, 'JobQueued')) {
          for (const p of e.data.pushes) {
            expect(queued.has(p.push), `push ${p.push} queued twice`).toBe(false);
            queued.add(p.push);
          }
        }
        const terminal = new Map<number, string>();
        for (const e of events) {
          if (e.type === 'PushAcknowledged' || e.type === 'PushExpired') {
            const push = e.data.push;
            expect(queued.has(push), `${e.type} for push ${push} that was never queued`).toBe(true);
            expect(
              terminal.get(push),
              `push ${push}: ${e.type} at seq ${e.seq} after ${terminal.get(push)}`,
            ).toBeUndefined();
            terminal.set(push, `${e.type}@${e.seq}`);
          } else if (PUSH_EVENTS_AFTER_DISPATCH.has(e.type)) {
            const push = (e.data as { push: number }).push;
            expect(
              terminal.get(push),
              `push ${push}: ${e.type} at seq ${e.seq} after its terminal ${terminal.get(push)}`,
            ).toBeUndefined();
          }
        }
        const pending = [...queued].filter((p) => !terminal.has(p)).length;
        const done = runCompleted(events);
        expect(done.data.pendingPushes, describeScenario(s)).toBe(pending);
        if (done.data.reason === 'drained') expect(pending).toBe(0);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('no 60 s window exceeds the per-service or domain limit, and in-process jobs stay within their limit', () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const { events } = run(s);
        const throttle = s.scenario.domain.throttle;
        const jobs = new Map<number, { instance: string; bypass: boolean }>();
        const startsByInstance = new Map<string, number[]>();
        const domainStarts: number[] = [];
        const inProcess = new Map<string, number>();
        const running = new Set<number>();
        for (const e of events) {
          if (e.type === 'JobQueued') {
            jobs.set(e.data.job, { instance: e.data.instance, bypass: e.data.bypassThrottle });
          } else if (e.type === 'JobDispatched') {
            const job = jobs.get(e.data.job);
            expect(job, `job ${e.data.job} dispatched before it was queued`).toBeDefined();
            expect(running.has(e.data.job), `job ${e.data.job} dispatched twice`).toBe(false);
            running.add(e.data.job);
            if (job!.bypass) continue;
            expect(e.data.instance).toBe(job!.instance);
            const starts = startsByInstance.get(job!.instance) ?? [];
            startsByInstance.set(job!.instance, starts);
            starts.push(e.at);
            domainStarts.push(e.at);
            const now = (inProcess.get(job!.instance) ?? 0) + 1;
            inProcess.set(job!.instance, now);
            if (throttle.inProcessJobs !== null) {
              expect(
                now,
                `${job!.instance} in process at ${e.at} (${describeScenario(s)})`,
              ).toBeLessThanOrEqual(throttle.inProcessJobs);
            }
          } else if (e.type === 'JobCompleted') {
            const job = jobs.get(e.data.job)!;
            expect(running.has(e.data.job), `job ${e.data.job} completed without being dispatched`).toBe(
              true,
            );
            running.delete(e.data.job);
            if (!job.bypass) inProcess.set(job.instance, inProcess.get(job.instance)! - 1);
          }
        }
        if (throttle.jobsPerMinutePerService !== null) {
          for (const [instance, starts] of startsByInstance)
            expectWindowWithin(
              starts,
              throttle.jobsPerMinutePerService,
              `${instance} ${describeScenario(s)}`,
            );
        }
        if (throttle.jobsPerMinuteDomain !== null)
          expectWindowWithin(domainStarts, throttle.jobsPerMinuteDomain, `domain ${describeScenario(s)}`);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('event times never decrease and seq numbers run 0..n-1 with unique ids', () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const { events, runId } = run(s);
        const ids = new Set<string>();
        let previous = 0;
        for (const [i, e] of events.entries()) {
          // One expect per event would dominate the run time: check, and fail with a message.
          if (e.seq !== i) expect.fail(`event ${i} (${e.type}) has seq ${e.seq}`);
          if (e.run !== runId) expect.fail(`event ${i} (${e.type}) has run ${e.run}, expected ${runId}`);
          if (e.at < previous) {
            expect.fail(
              `${e.type} seq ${e.seq} at ${e.at} goes back in time from ${previous} (${describeScenario(s)})`,
            );
          }
          if (e.at > s.scenario.horizon)
            expect.fail(`${e.type} seq ${e.seq} at ${e.at} is after the horizon`);
          if (e.type === 'PushRetryScheduled' && e.data.retryAt < e.at)
            expect.fail(`push ${e.data.push}: retry scheduled at ${e.data.retryAt}, before ${e.at}`);
          previous = e.at;
          ids.add(e.id);
        }
        expect(ids.size).toBe(events.length);
        expect(events[0]!.type).toBe('RunStarted');
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a push the relay held past its expiry expires when the relay gives it back, not earlier', () => {
    // The relay holds for 48 h but the server expires unacknowledged pushes after 2 h.
    const scenario = tinyScenario({
      fleet: quietFleet(1, { coverage: { alwaysOnlineShare: 0, online: 60_000, offline: '1000h' } }),
      engine: { pushExpiry: '2h', relay: { maxHold: '48h' } },
      horizon: '3d',
      plans: { policy: { kind: 'itPolicyChange' } },
    });
    const { events } = runPlan(scenario, 'policy');
    const held = ofType(events, 'PushHeldAtRelay');
    expect(held.map((e) => e.data.deliverAt)).toEqual([null]);
    const expired = ofType(events, 'PushExpired');
    expect(expired).toHaveLength(1);
    expect(expired[0]!.at).toBeGreaterThanOrEqual(held[0]!.at + 48 * 3_600_000);
    expect(events.map((e) => e.at)).toEqual(events.map((e) => e.at).sort((a, b) => a - b));
  });

  it('same scenario and seed give the same log; another seed gives other draws', () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const first = run(s);
        const second = run(s);
        expect(second.metrics.logSha256).toBe(first.metrics.logSha256);
        expect(second.events).toEqual(first.events);
        expect(second.metrics).toEqual(first.metrics);

        const reseeded: Scenario = { ...s.scenario, seed: s.scenario.seed + 1 };
        const other = runPlan(reseeded, s.plan);
        expect(other.metrics.logSha256).not.toBe(first.metrics.logSha256);
        // The hash differs trivially (the seed is in RunStarted and the run id); the draws must differ
        // too. Server processing and links are random here, so any run with work shows it.
        if (first.metrics.pushes.queued > 0 || other.metrics.pushes.queued > 0)
          expect(drawnFacts(other.events)).not.toEqual(drawnFacts(first.events));
      }),
      { numRuns: Math.ceil(NUM_RUNS * 0.75) },
    );
  });

  it('when a run drains, every user moved got a move job and no device is left pending', () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const { events } = run(s);
        if (runCompleted(events).data.reason !== 'drained') return;
        const jobs = new Set(
          ofType(events, 'JobQueued')
            .filter((e) => e.data.cause === 'move')
            .map((e) => e.data.user),
        );
        const moved = ofType(events, 'UserMoved').map((e) => e.data.user);
        expect(
          moved.filter((u) => !jobs.has(u)),
          `moved users without a job (${describeScenario(s)})`,
        ).toEqual([]);
        const pending = ofType(events, 'DeviceStranded').filter((e) => e.data.reason === 'pendingAtHorizon');
        expect(pending.map((e) => e.data.device)).toEqual([]);
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('a collapse without a stop window still detects every moved user', () => {
    const scenario = tinyScenario({
      instances: 2,
      fleet: quietFleet(4),
      plans: { collapse: { kind: 'collapse', from: ['BES01B'], into: 'BES01A', stopWindow: 0 } },
    });
    const { events, metrics } = runPlan(scenario, 'collapse');
    expect(ofType(events, 'UserMoved')).toHaveLength(2);
    expect(ofType(events, 'JobQueued').map((e) => e.data.user)).toEqual(['u000002', 'u000003']);
    expect(metrics.usersConverged).toBe(2);
  });

  it('conserves pushes: queued = acknowledged + expired + pending, each matching the log', () => {
    fc.assert(
      fc.property(arbitraryScenario(), (s) => {
        const { events, metrics } = run(s);
        const { pushes } = metrics;
        expect(pushes.queued).toBe(pushes.acknowledged + pushes.expired + pushes.pending);
        expect(pushes.queued).toBe(ofType(events, 'JobQueued').reduce((n, e) => n + e.data.pushes.length, 0));
        expect(pushes.acknowledged).toBe(ofType(events, 'PushAcknowledged').length);
        expect(pushes.expired).toBe(ofType(events, 'PushExpired').length);
        expect(pushes.pending).toBe(runCompleted(events).data.pendingPushes);
        expect(pushes.resent).toBe(ofType(events, 'PushResent').length);
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

/** Fails when more than `limit` starts fall in some (t - 60 s, t]. `starts` is ascending. */
function expectWindowWithin(starts: readonly number[], limit: number, what: string): void {
  for (let i = limit; i < starts.length; i++) {
    const span = starts[i]! - starts[i - limit]!;
    if (span < MINUTE_MS) {
      expect.fail(
        `${what}: ${limit + 1} throttled jobs started within ${span} ms (from ${starts[i - limit]} to ${starts[i]})`,
      );
    }
  }
}

/** The facts without the envelope and RunStarted, i.e. what the random draws decided. */
function drawnFacts(events: readonly StoredEvent[]): unknown[] {
  return events.filter((e) => e.type !== 'RunStarted').map((e) => [e.type, e.key, e.at, e.data]);
}
