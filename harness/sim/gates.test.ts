/**
 * Closed-loop phases: the next phase starts only when the gate's condition holds, checked here
 * against what the log itself says (phase convergence, backlog, acknowledgements).
 */
import { describe, expect, it } from 'vitest';
import type { EventOf, StoredEvent } from '../domain/events.ts';
import type { Gate } from '../scenario/schema.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { runPlan } from './run.ts';

const MINUTE = 60_000;

function gated(
  gate: Gate | Record<string, unknown>,
  seed: number,
  fleet = quietFleet(60, { coverage: { alwaysOnlineShare: 0.5 } }),
) {
  const scenario = tinyScenario({
    seed,
    fleet,
    throttle: { jobsPerMinutePerService: 4 },
    domain: { moveDetectionPoll: '15m' },
    horizon: '2d',
    plans: {
      gated: { kind: 'phased', into: { newInstances: { srpIdBase: 20 } }, size: 10, gate: gate as Gate },
    },
  });
  return runPlan(scenario, 'gated');
}

function ofType<T extends StoredEvent['type']>(
  events: readonly StoredEvent[],
  type: T,
): Array<StoredEvent & EventOf<T>> {
  return events.filter((e): e is StoredEvent & EventOf<T> => e.type === type);
}

describe('phase gates', () => {
  it.each([1, 2, 3])(
    'converged: each phase starts only after the previous one converged (seed %i)',
    (seed) => {
      const { events } = gated({ kind: 'converged', share: 1 }, seed);
      const started = ofType(events, 'PhaseStarted');
      expect(started.length).toBe(6);
      for (const next of started.slice(1)) {
        const previous = ofType(events, 'PhaseConverged').find((e) => e.data.phase === next.data.phase - 1);
        expect(
          previous,
          `phase ${next.data.phase - 1} converged before phase ${next.data.phase}`,
        ).toBeDefined();
        expect(previous!.seq).toBeLessThan(next.seq);
        expect(previous!.data.converged + previous!.data.stranded).toBe(10);
      }
    },
  );

  it.each([1, 2, 3])(
    'queueBelow: a phase starts only when the backlog in the log is below the depth (seed %i)',
    (seed) => {
      const depth = 5;
      const { events } = gated({ kind: 'queueBelow', depth }, seed);
      const bypass = new Map<number, boolean>();
      let queued = 0; // throttled jobs waiting for a slot
      let undetected = 0; // users moved whose jobs the Policy Service has not created yet
      let checks = 0;
      for (const e of events) {
        if (e.type === 'UserMoved') undetected++;
        else if (e.type === 'JobQueued') {
          bypass.set(e.data.job, e.data.bypassThrottle);
          if (e.data.cause === 'move') undetected--;
          if (!e.data.bypassThrottle) queued++;
        } else if (e.type === 'JobDispatched' && !bypass.get(e.data.job)) queued--;
        else if (e.type === 'GateChecked') {
          checks++;
          expect(e.data.value).toBe(queued + undetected);
          expect(e.data.passed).toBe(queued + undetected < depth);
        }
      }
      expect(checks).toBeGreaterThan(5);
      expect(ofType(events, 'PhaseStarted')).toHaveLength(6);
    },
  );

  it('p95Below: does not open when nothing was acknowledged in its window and the first phase has waited past the bound', () => {
    // Nearly every device is out of coverage for hundreds of hours: almost nothing is acknowledged.
    const offline = quietFleet(200, { coverage: { alwaysOnlineShare: 0, online: MINUTE, offline: '1000h' } });
    const latency = 10 * MINUTE;
    const window = 15 * MINUTE;
    const { events, metrics } = gated({ kind: 'p95Below', latency, window }, 1, offline);
    expect(metrics.pushes.pending).toBeGreaterThan(0);
    const acks = ofType(events, 'PushAcknowledged').map((e) => e.at);
    const firstJob = ofType(events, 'JobQueued')[0]!;
    // From here on phase 1's pushes have waited longer than the bound: p95 latency cannot be below it.
    const overdue = firstJob.at + latency;
    const blind = ofType(events, 'GateChecked').filter(
      (e) => e.data.passed && e.at > overdue && !acks.some((at) => at > e.at - window && at <= e.at),
    );
    expect(
      blind.map((e) => `phase ${e.data.phase + 1} started at ${e.at / MINUTE} min with p95 ${e.data.value}`),
    ).toEqual([]);
  });
});
