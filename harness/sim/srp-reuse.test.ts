/**
 * The seed article's SRP rule over a whole run: an old instance's SRP id stays in quiet use until
 * every device has new service books. Reusing it for a new server is safe only after that.
 */
import { describe, expect, it } from 'vitest';
import type { EventOf, StoredEvent } from '../domain/events.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { runPlan } from './run.ts';

/** BES01B's users move first onto a fresh SRP id; then BES01A's onto a new server reusing SRP id 2. */
function reuseAfter(every: string) {
  const scenario = tinyScenario({
    instances: 2,
    instanceUsers: [2, 2],
    fleet: quietFleet(4),
    domain: { usersPerInstance: 2 },
    plans: {
      reuse: {
        kind: 'phased',
        from: ['BES01B', 'BES01A'],
        into: {
          newInstances: {
            instances: [
              { id: 'NEW1', srpId: 20 },
              { id: 'NEW2', srpId: 2 },
            ],
          },
        },
        size: 2,
        every,
      },
    },
  });
  return runPlan(scenario, 'reuse');
}

function ofType<T extends StoredEvent['type']>(events: readonly StoredEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is StoredEvent & EventOf<T> => e.type === type);
}

describe('reusing a retired SRP id', () => {
  it('is safe once every device holding it has switched to its new instance', () => {
    const { events, metrics } = reuseAfter('1h');
    const switched = ofType(events, 'DeviceSrpChanged').filter((e) => e.data.from === '2');
    expect(switched).toHaveLength(2);
    const provisioned = ofType(events, 'InstanceProvisioned').find((e) => e.data.srpId === '2')!;
    expect(Math.max(...switched.map((e) => e.at))).toBeLessThan(provisioned.at);
    expect(ofType(events, 'SrpConflictDetected')).toEqual([]);
    expect(metrics.devicesCutOff).toBe(0);
    expect(metrics.usersConverged).toBe(4);
    // SRP id 2 was an existing credential: only 20 is new.
    expect(metrics.srpCredentials.added).toBe(1);
  });

  it('disables the id while devices of the retired instance still hold it, cutting them off', () => {
    const { events, metrics } = reuseAfter('1s');
    const conflicts = ofType(events, 'SrpConflictDetected');
    expect(conflicts.map((e) => e.data)).toEqual([
      { srpId: '2', instance: 'NEW2', devicesHolding: 2, heldBy: [] }, // BES01B is retired: quiet use
    ]);
    const cut = ofType(events, 'DeviceCutOff').map((e) => e.data.device);
    expect(cut.sort()).toEqual(['20000002', '20000003']);
    expect(metrics.devicesCutOff).toBe(2);
    expect(metrics.srpConflicts).toHaveLength(1);
    expect(metrics.stranded.byReason.srpDisabled).toBeGreaterThanOrEqual(2);
  });
});

describe('who an SRP conflict strands', () => {
  it('counts devices cut off outside the moved users among the plan users, so stranded never exceeds users', () => {
    // BES01B's two users move to a new server that reuses BES01A's SRP id 1: BES01A's two users,
    // who are not moving, lose service too.
    const scenario = tinyScenario({
      instances: 2,
      instanceUsers: [2, 2],
      fleet: quietFleet(4),
      plans: {
        clash: {
          kind: 'phased',
          from: ['BES01B'],
          into: { newInstances: { instances: [{ id: 'NEW1', srpId: 1 }] } },
          size: 2,
          every: '10m',
        },
      },
    });
    const { events, metrics } = runPlan(scenario, 'clash');
    const cutOff = new Set(ofType(events, 'DeviceCutOff').map((e) => e.data.device));
    const moved = new Set(ofType(events, 'UserMoveRequested').map((e) => e.data.device));
    expect([...cutOff].some((d) => !moved.has(d))).toBe(true);
    expect(metrics.users).toBe(new Set([...cutOff, ...moved]).size);
    expect(metrics.stranded.total).toBeLessThanOrEqual(metrics.users);
    expect(metrics.stranded.byReason.srpDisabled).toBe(metrics.stranded.total);
  });
});
