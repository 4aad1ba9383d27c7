/**
 * Given / when / then on the push engine's decider, without the scheduler: each test builds a
 * tiny scenario, feeds commands at chosen instants and reads the facts and scheduled commands.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Scenario } from '../scenario/schema.ts';
import { SeededRandom } from '../sim/random.ts';
import { instances, quietFleet, tinyScenario } from '../testing/scenarios.ts';
import {
  type Command,
  type Decision,
  decide,
  type EngineState,
  initialState,
  needsCradle,
  type Scheduled,
} from './engine.ts';
import type { DomainEvent, EventOf, EventType } from './events.ts';
import { type Fleet, findAccountProblems, generateFleet, pinOf, userIdOf } from './fleet.ts';

const HOUR = 3_600_000;

interface Given {
  state: EngineState;
  fleet: Fleet;
  /** Decides one command at `at`; checks the decision never schedules into the past. */
  when(command: Command, at: number): Decision;
}

function given(scenario: Scenario, plan: string, prepareFleet?: (fleet: Fleet) => void): Given {
  const random = new SeededRandom(scenario.seed);
  const fleet = generateFleet(scenario, random);
  prepareFleet?.(fleet);
  const state = initialState(scenario, plan, fleet);
  return {
    state,
    fleet,
    when(command, at) {
      const decision = decide(state, command, at, { random });
      for (const next of decision.scheduled) {
        expect(
          next.at,
          `${command.type} at ${at} schedules ${next.command.type} in the past`,
        ).toBeGreaterThanOrEqual(at);
      }
      return decision;
    },
  };
}

const types = (d: Decision): EventType[] => d.events.map((e) => e.type);

function only<T extends EventType>(d: Decision, type: T): EventOf<T> {
  const found = d.events.filter((e): e is EventOf<T> => e.type === type);
  expect(found, `exactly one ${type} in ${types(d).join(', ')}`).toHaveLength(1);
  return found[0]!;
}

function all<T extends EventType>(d: Decision, type: T): EventOf<T>[] {
  return d.events.filter((e): e is EventOf<T> => e.type === type);
}

function scheduledOf<T extends Command['type']>(
  d: Decision,
  type: T,
): Array<Scheduled & { command: Extract<Command, { type: T }> }> {
  return d.scheduled.filter(
    (s): s is Scheduled & { command: Extract<Command, { type: T }> } => s.command.type === type,
  );
}

function onlyScheduled<T extends Command['type']>(
  d: Decision,
  type: T,
): Scheduled & { command: Extract<Command, { type: T }> } {
  const found = scheduledOf(d, type);
  expect(found, `exactly one ${type} scheduled`).toHaveLength(1);
  return found[0]!;
}

/** Runs StartRun and an IT policy change up to the first planned minute; returns that decision. */
function planFirstMinute(g: Given, at = 0): Decision {
  g.when({ type: 'StartRun' }, 0);
  const change = g.when({ type: 'ChangeItPolicy' }, at);
  const queueAt = onlyScheduled(change, 'QueueItPolicyJobs').at;
  const queued = g.when({ type: 'QueueItPolicyJobs' }, queueAt);
  const plans = scheduledOf(queued, 'PlanMinute');
  let last: Decision | undefined;
  for (const p of plans) last = g.when(p.command, p.at);
  expect(last, 'a minute was planned').toBeDefined();
  return last!;
}

describe('StartRun', () => {
  it('records the run and the fleet, then schedules the plan at its start', () => {
    const g = given(
      tinyScenario({
        instances: 2,
        fleet: quietFleet(6),
        plans: { policy: { kind: 'itPolicyChange', at: '5m' } },
      }),
      'policy',
    );
    const d = g.when({ type: 'StartRun' }, 0);
    expect(types(d)).toEqual(['RunStarted', 'FleetProvisioned']);
    expect(only(d, 'FleetProvisioned').data).toMatchObject({
      users: 6,
      devices: 6,
      instances: [
        { id: 'BES01A', srpId: '1', users: 3 },
        { id: 'BES01B', srpId: '2', users: 3 },
      ],
      softwareVersions: { '4.5': 6 },
      problemAccounts: 0,
      alwaysOnline: 6,
    });
    expect(d.scheduled).toEqual([{ at: 300_000, command: { type: 'ChangeItPolicy' } }]);
  });
});

describe('moving users', () => {
  const scenario = tinyScenario({
    fleet: quietFleet(3),
    plans: { phased: { kind: 'phased', into: { newInstances: { srpIdBase: 20 } }, size: 3, every: '15m' } },
  });

  it('a user with a problem account is left behind, stranded, and gets no job', () => {
    const g = given(scenario, 'phased', (fleet) => {
      fleet.users[1]!.mailbox = ''; // the move tool cannot find user 1's mailbox
    });
    g.when({ type: 'StartRun' }, 0);
    const d = g.when({ type: 'StartPhase', phase: 1 }, 0);

    const failed = only(d, 'UserMoveFailed');
    expect(failed.data).toEqual({
      user: userIdOf(1),
      device: pinOf(1),
      from: 'BES01A',
      to: 'BESNEW01',
      reason: 'mailboxNotFound',
    });
    const stranded = only(d, 'DeviceStranded');
    expect(stranded.data).toEqual({ device: pinOf(1), user: userIdOf(1), reason: 'migrationFailed' });
    expect(d.events.indexOf(stranded)).toBe(d.events.indexOf(failed) + 1);
    expect(all(d, 'UserMoved').map((e) => e.data.user)).toEqual([userIdOf(0), userIdOf(2)]);
    // Only the moved users are ever detected, so only they get jobs.
    expect(scheduledOf(d, 'DetectMove').map((s) => s.command.user)).toEqual([0, 2]);
    expect(types(d)).not.toContain('JobQueued');

    const job = g.when({ type: 'DetectMove', user: 0 }, 0);
    expect(only(job, 'JobQueued').data).toMatchObject({
      user: userIdOf(0),
      instance: 'BESNEW01',
      cause: 'move',
    });
  });

  it('moves a 4.0+ user with IT policy, service books and a data sync onto the target instance', () => {
    const g = given(scenario, 'phased');
    g.when({ type: 'StartRun' }, 0);
    const d = g.when({ type: 'StartPhase', phase: 1 }, 0);
    expect(types(d).slice(0, 2)).toEqual(['InstanceProvisioned', 'PhaseStarted']);
    expect(only(d, 'InstanceProvisioned').data).toEqual({
      instance: 'BESNEW01',
      srpId: '21',
      newServer: true,
    });
    expect(all(d, 'UserMoved')).toHaveLength(3);
    // Everyone left BES01A, so it is retired.
    expect(only(d, 'InstanceDecommissioned').data).toEqual({ instance: 'BES01A', srpId: '1' });
    const job = only(g.when({ type: 'DetectMove', user: 2 }, 0), 'JobQueued');
    expect(job.data.pushes.map((p) => p.kind)).toEqual(['itPolicy', 'serviceBooks', 'dataSync']);
    expect(job.data.bypassThrottle).toBe(false);
  });

  it("the move tool's account check finds exactly the accounts the generator damaged", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 1, max: 200 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (seed, users, share) => {
          const s = tinyScenario({
            seed,
            fleet: quietFleet(users, { problemAccountShare: share }),
            plans: { p: { kind: 'itPolicyChange' } },
          });
          const fleet = generateFleet(s, new SeededRandom(seed));
          expect(findAccountProblems(fleet.users)).toEqual(fleet.plantedProblems);
        },
      ),
      { numRuns: 50 },
    );
  });
});

describe('the Policy Service throttle', () => {
  function policyChange(
    users: number,
    throttle: Scenario['domain']['throttle'] | object,
    count = 1,
  ): Scenario {
    return tinyScenario({
      instances: count,
      fleet: quietFleet(users),
      throttle: throttle as Scenario['domain']['throttle'],
      plans: { policy: { kind: 'itPolicyChange' } },
    });
  }

  it.each([
    { users: 10, throttle: {}, jobs: 10 },
    { users: 10, throttle: { jobsPerMinutePerService: 4 }, jobs: 4 },
    { users: 3, throttle: {}, jobs: 3 },
  ])(
    'plans min(queued, limit) jobs for the minute and spreads them evenly ($users users, $jobs jobs)',
    ({ users, throttle, jobs }) => {
      const g = given(policyChange(users, throttle), 'policy');
      const d = planFirstMinute(g, 120_000);
      expect(types(d)).toEqual(['ThrottleMinutePlanned']);
      expect(only(d, 'ThrottleMinutePlanned').data).toEqual({
        instance: 'BES01A',
        minute: 2,
        jobs,
        queued: users,
        inProcess: 0,
      });
      const slots = scheduledOf(d, 'DispatchSlot');
      expect(slots.map((s) => s.command)).toEqual(
        Array.from({ length: jobs }, () => ({ type: 'DispatchSlot', instance: 'BES01A', deferred: false })),
      );
      const step = 60_000 / jobs;
      expect(slots.map((s) => s.at)).toEqual(
        Array.from({ length: jobs }, (_, i) => 120_000 + Math.floor(i * step)),
      );
      // Work is left (or may be left): the service plans its next minute a minute later.
      expect(onlyScheduled(d, 'PlanMinute')).toEqual({
        at: 180_000,
        command: { type: 'PlanMinute', instance: 'BES01A', due: 180_000 },
      });
    },
  );

  it('shares the domain limit evenly among the Policy Services with work queued', () => {
    const g = given(policyChange(20, { jobsPerMinuteDomain: 6 }, 2), 'policy');
    g.when({ type: 'StartRun' }, 0);
    g.when({ type: 'ChangeItPolicy' }, 0);
    const queued = g.when({ type: 'QueueItPolicyJobs' }, 0);
    const plans = scheduledOf(queued, 'PlanMinute');
    expect(plans.map((p) => p.command.instance)).toEqual(['BES01A', 'BES01B']);
    for (const p of plans) {
      const d = g.when(p.command, p.at);
      expect(only(d, 'ThrottleMinutePlanned').data).toMatchObject({
        instance: p.command.instance,
        jobs: 3,
        queued: 10,
      });
      expect(scheduledOf(d, 'DispatchSlot').map((s) => s.at)).toEqual([0, 20_000, 40_000]);
    }
  });

  it('defers a slot while the in-process limit is reached, and uses it when a job completes', () => {
    const g = given(
      tinyScenario({
        fleet: quietFleet(3),
        throttle: { inProcessJobs: 1 },
        engine: { serverProcessing: 30_000 },
        plans: { policy: { kind: 'itPolicyChange' } },
      }),
      'policy',
    );
    const planned = planFirstMinute(g);
    expect(scheduledOf(planned, 'DispatchSlot').map((s) => s.at)).toEqual([0, 20_000, 40_000]);

    const first = g.when({ type: 'DispatchSlot', instance: 'BES01A', deferred: false }, 0);
    expect(only(first, 'JobDispatched').data).toEqual({
      job: 0,
      instance: 'BES01A',
      queuedAt: 0,
      fromDeferredSlot: false,
    });
    expect(onlyScheduled(first, 'ReachRelay')).toEqual({
      at: 30_000,
      command: { type: 'ReachRelay', push: 0 },
    });

    // Job 0 is still being processed at the second slot.
    const second = g.when({ type: 'DispatchSlot', instance: 'BES01A', deferred: false }, 20_000);
    expect(second.events).toEqual([
      {
        type: 'DispatchDeferred',
        key: 'BES01A',
        at: 20_000,
        data: { instance: 'BES01A', reason: 'inProcess', retryAt: null },
      },
    ]);
    expect(second.scheduled).toEqual([]);

    const relay = g.when({ type: 'ReachRelay', push: 0 }, 30_000);
    const ack = onlyScheduled(relay, 'Acknowledge');
    const acked = g.when(ack.command, ack.at);
    expect(types(acked)).toEqual(['PushAcknowledged', 'JobCompleted', 'DeviceConverged']);
    expect(only(acked, 'JobCompleted').data).toEqual({ job: 0, instance: 'BES01A', parked: 0 });
    const retry = onlyScheduled(acked, 'DispatchSlot');
    expect(retry).toEqual({
      at: ack.at,
      command: { type: 'DispatchSlot', instance: 'BES01A', deferred: true },
    });

    const deferred = g.when(retry.command, retry.at);
    expect(only(deferred, 'JobDispatched').data).toEqual({
      job: 1,
      instance: 'BES01A',
      queuedAt: 0,
      fromDeferredSlot: true,
    });
  });

  it('defers a slot until the per-service 60 s window has room', () => {
    const g = given(
      tinyScenario({
        fleet: quietFleet(4),
        throttle: { inProcessJobs: null, jobsPerMinutePerService: 2 },
        plans: { policy: { kind: 'itPolicyChange' } },
      }),
      'policy',
    );
    planFirstMinute(g);
    // The minute's two slots start late (as deferred slots do): at 10 s and 50 s.
    g.when({ type: 'DispatchSlot', instance: 'BES01A', deferred: false }, 10_000);
    g.when({ type: 'DispatchSlot', instance: 'BES01A', deferred: false }, 50_000);
    const next = g.when({ type: 'PlanMinute', instance: 'BES01A', due: 60_000 }, 60_000);
    expect(scheduledOf(next, 'DispatchSlot').map((s) => s.at)).toEqual([60_000, 90_000]);

    const full = g.when({ type: 'DispatchSlot', instance: 'BES01A', deferred: false }, 60_000);
    expect(only(full, 'DispatchDeferred').data).toEqual({
      instance: 'BES01A',
      reason: 'window',
      retryAt: 70_000,
    });
    expect(types(full)).not.toContain('JobDispatched');
    const retry = onlyScheduled(full, 'DispatchSlot');
    expect(retry.at).toBe(70_000);
    expect(only(g.when(retry.command, retry.at), 'JobDispatched').data.fromDeferredSlot).toBe(true);
  });
});

describe('pushes to old devices', () => {
  it.each([
    [3.5, 'itPolicy', true],
    [3.6, 'itPolicy', false],
    [3.8, 'serviceBooks', true],
    [3.8, 'dataSync', true],
    [4.0, 'serviceBooks', false],
    [3.5, 'pinKey', false],
  ] as const)('software %s needs a cradle for %s: %s', (software, kind, expected) => {
    expect(needsCradle(software, kind)).toBe(expected);
  });

  it('holds service books for a device below 4.0 until the user re-cradles it', () => {
    const g = given(
      tinyScenario({
        fleet: quietFleet(1, { softwareVersions: { '3.8': 1 }, recradleDelay: '3h' }),
        plans: {
          phased: { kind: 'phased', into: { newInstances: { srpIdBase: 20 } }, size: 1, every: '15m' },
        },
      }),
      'phased',
    );
    g.when({ type: 'StartRun' }, 0);
    const moved = g.when({ type: 'StartPhase', phase: 1 }, 0);
    const detect = onlyScheduled(moved, 'DetectMove');
    const queued = g.when(detect.command, detect.at);
    // Below 4.0 there is no wireless data sync.
    expect(only(queued, 'JobQueued').data.pushes.map((p) => p.kind)).toEqual(['itPolicy', 'serviceBooks']);
    const plan = onlyScheduled(queued, 'PlanMinute');
    const slot = onlyScheduled(g.when(plan.command, plan.at), 'DispatchSlot');
    const dispatched = g.when(slot.command, slot.at);
    const [policy, books] = scheduledOf(dispatched, 'ReachRelay');
    expect([policy!.at, books!.at]).toEqual([500, 1_000]);

    const policyAtRelay = g.when(policy!.command, policy!.at);
    expect(types(policyAtRelay)).toEqual(['PushDelivered']); // 3.8 takes an IT policy over the air

    const booksAtRelay = g.when(books!.command, books!.at);
    const waiting = only(booksAtRelay, 'PushAwaitingCradle');
    expect(waiting.data).toEqual({
      push: 1,
      device: pinOf(0),
      kind: 'serviceBooks',
      cradleAt: 1_000 + 3 * HOUR,
    });
    expect(types(booksAtRelay)).not.toContain('PushDelivered');
    expect(onlyScheduled(booksAtRelay, 'Cradle')).toEqual({
      at: 1_000 + 3 * HOUR,
      command: { type: 'Cradle', device: 0 },
    });

    const ack = onlyScheduled(policyAtRelay, 'Acknowledge');
    const acked = g.when(ack.command, ack.at);
    expect(only(acked, 'JobCompleted').data.parked).toBe(1);
    expect(only(acked, 'DeviceStranded').data.reason).toBe('needsCradle');

    const cradled = g.when({ type: 'Cradle', device: 0 }, 1_000 + 3 * HOUR);
    expect(types(cradled)).toEqual([
      'DeviceCradled',
      'PushAcknowledged',
      'DeviceSrpChanged',
      'DeviceConverged',
    ]);
    expect(only(cradled, 'PushAcknowledged').data).toMatchObject({
      push: 1,
      kind: 'serviceBooks',
      via: 'cradle',
    });
    expect(only(cradled, 'DeviceSrpChanged').data).toEqual({ device: pinOf(0), from: '1', to: '21' });
  });
});

describe('enterprise activation', () => {
  function storm(software: string): Given {
    return given(
      tinyScenario({
        fleet: quietFleet(1, { softwareVersions: { [software]: 1 } }),
        engine: { activation: { handshake: '5m' } },
        plans: { storm: { kind: 'activationStorm', activations: 1, window: '1h', arrivals: 'uniform' } },
      }),
      'storm',
    );
  }

  it('fails at once for a device below 4.0 (softwareTooOld), with no handshake and no job', () => {
    const g = storm('3.8');
    const start = g.when({ type: 'StartRun' }, 0);
    const request = onlyScheduled(start, 'RequestActivation');
    expect(request).toEqual({ at: 0, command: { type: 'RequestActivation', user: 0 } });
    const d = g.when(request.command, request.at);
    expect(types(d)).toEqual([
      'PhaseStarted',
      'ActivationRequested',
      'ActivationFailed',
      'DeviceStranded',
      'PhaseConverged',
    ]);
    expect(only(d, 'ActivationFailed').data).toEqual({
      user: userIdOf(0),
      device: pinOf(0),
      reason: 'softwareTooOld',
    });
    expect(only(d, 'DeviceStranded').data.reason).toBe('activationFailed');
    expect(only(d, 'PhaseConverged').data).toMatchObject({ converged: 0, stranded: 1 });
    expect(d.scheduled).toEqual([]);
  });

  it('on 4.0+ runs the handshake, then pushes its job past the throttle at once', () => {
    const g = storm('4.5');
    g.when({ type: 'StartRun' }, 0);
    const d = g.when({ type: 'RequestActivation', user: 0 }, 0);
    expect(types(d)).toEqual(['PhaseStarted', 'ActivationRequested', 'ActivationStarted']);
    const handshake = onlyScheduled(d, 'FinishHandshake');
    expect(handshake.at).toBe(300_000);
    const done = g.when(handshake.command, handshake.at);
    expect(types(done)).toEqual(['JobQueued', 'JobDispatched']);
    expect(only(done, 'JobQueued').data).toMatchObject({ bypassThrottle: true, cause: 'activation' });
    expect(only(done, 'JobQueued').data.pushes.map((p) => p.kind)).toEqual([
      'activation',
      'itPolicy',
      'serviceBooks',
      'dataSync',
    ]);
    expect(scheduledOf(done, 'PlanMinute')).toEqual([]);
  });
});

describe('SRP ids', () => {
  function reuse(srpId: number): Given {
    return given(
      tinyScenario({
        instances: 2,
        instanceUsers: [2, 3],
        fleet: quietFleet(5),
        plans: {
          phased: {
            kind: 'phased',
            from: ['BES01B'],
            into: { newInstances: { instances: [{ id: 'BES02A', srpId }] } },
            size: 1,
            every: '15m',
          },
        },
      }),
      'phased',
    );
  }

  it('provisioning an instance with an SRP id devices still hold disables it and cuts every holder off', () => {
    const g = reuse(2);
    g.when({ type: 'StartRun' }, 0);
    const d = g.when({ type: 'StartPhase', phase: 1 }, 0);
    expect(types(d).slice(0, 2)).toEqual(['InstanceProvisioned', 'SrpConflictDetected']);
    expect(only(d, 'SrpConflictDetected').data).toEqual({
      srpId: '2',
      instance: 'BES02A',
      devicesHolding: 3,
      heldBy: ['BES01B'],
    });
    const holders = [2, 3, 4].map(pinOf); // the users of BES01B
    expect(all(d, 'DeviceCutOff').map((e) => e.data)).toEqual(
      holders.map((pin, i) => ({ device: pin, user: userIdOf(i + 2), srpId: '2' })),
    );
    const stranded = all(d, 'DeviceStranded').filter((e) => e.data.reason === 'srpDisabled');
    expect(stranded.map((e) => e.data.device)).toEqual(holders);
    for (const e of d.events as DomainEvent[]) {
      if (e.type === 'DeviceCutOff') expect(holders).toContain(e.data.device);
    }
  });

  it('a fresh SRP id raises no conflict', () => {
    const g = reuse(20);
    g.when({ type: 'StartRun' }, 0);
    const d = g.when({ type: 'StartPhase', phase: 1 }, 0);
    expect(types(d)).not.toContain('SrpConflictDetected');
    expect(types(d)).not.toContain('DeviceCutOff');
    expect(instances(2).map((i) => i.srpId)).not.toContain(20);
  });
});

describe('the relay and server expiry', () => {
  it('a push the relay gives back after the server expiry expires then, not in the past', () => {
    const g = given(
      tinyScenario({
        fleet: quietFleet(1, { coverage: { alwaysOnlineShare: 0, online: 60_000, offline: '1000h' } }),
        engine: { pushExpiry: '2h', relay: { maxHold: '48h' } },
        plans: { policy: { kind: 'itPolicyChange' } },
      }),
      'policy',
    );
    const planned = planFirstMinute(g);
    const slot = onlyScheduled(planned, 'DispatchSlot');
    const relay = onlyScheduled(g.when(slot.command, slot.at), 'ReachRelay');
    const held = g.when(relay.command, relay.at);
    expect(only(held, 'PushHeldAtRelay').data.deliverAt).toBeNull(); // out of coverage beyond maxHold
    const drop = onlyScheduled(held, 'RelayDrop');
    expect(drop.at).toBe(relay.at + 48 * HOUR);

    // `when` fails if the decision schedules anything before drop.at.
    const dropped = g.when(drop.command, drop.at);
    for (const e of all(dropped, 'PushRetryScheduled'))
      expect(e.data.retryAt).toBeGreaterThanOrEqual(drop.at);
  });
});
