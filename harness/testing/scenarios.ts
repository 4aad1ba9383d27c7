/**
 * Small scenario builders for tests. Every builder goes through `parseScenario`, so tests run on
 * exactly the shape (defaults filled, durations in ms) a scenario file would produce.
 */
import fc from 'fast-check';
import { parseScenario } from '../scenario/load.ts';
import type { Scenario, ScenarioInput } from '../scenario/schema.ts';

type PlanInput = ScenarioInput['plans'][string];
type FleetInput = ScenarioInput['fleet'];
type MoveTarget = Extract<PlanInput, { kind: 'phased' }>['into'];
type ThrottleInput = NonNullable<ScenarioInput['domain']['throttle']>;

/** Instances BES01A, BES01B, … with SRP ids 1, 2, …; users spread evenly unless given. */
export function instances(count: number, users?: readonly number[]): ScenarioInput['domain']['instances'] {
  return Array.from({ length: count }, (_, i) => ({
    id: `BES01${String.fromCharCode(65 + i)}`,
    srpId: i + 1,
    ...(users ? { users: users[i]! } : {}),
  }));
}

/**
 * A fleet with nothing in the way: every device always in coverage, on software 4.5, on one fast
 * constant link, with no problem accounts. Throttles and plan arithmetic alone decide timing.
 */
export function quietFleet(users: number, overrides: Partial<FleetInput> = {}): FleetInput {
  return {
    users,
    softwareVersions: { '4.5': 1 },
    coverage: { alwaysOnlineShare: 1 },
    link: [{ name: 'fast', share: 1, bandwidthKbps: 1_000, rttMs: 100 }],
    problemAccountShare: 0,
    wirelessBackupShare: 0,
    ...overrides,
  };
}

export interface TinyScenarioOptions {
  name?: string;
  seed?: number;
  horizon?: number | string;
  instances?: number;
  /** Users per instance, in instance order; default: spread evenly. */
  instanceUsers?: readonly number[];
  fleet?: FleetInput;
  throttle?: ThrottleInput;
  domain?: Partial<Omit<ScenarioInput['domain'], 'instances' | 'throttle'>>;
  engine?: ScenarioInput['engine'];
  pushes?: ScenarioInput['pushes'];
  plans: Record<string, PlanInput>;
}

/**
 * A small validated scenario: a quiet fleet of 10 users on one instance unless told otherwise,
 * moves detected at once (no 15-minute poll) and constant 500 ms server processing, so tests
 * can predict every time.
 */
export function tinyScenario(options: TinyScenarioOptions): Scenario {
  return parseScenario(
    {
      name: options.name ?? 'tiny',
      seed: options.seed ?? 1,
      horizon: options.horizon ?? '7d',
      domain: {
        instances: instances(options.instances ?? 1, options.instanceUsers),
        throttle: options.throttle ?? {},
        moveDetectionPoll: 0,
        ...options.domain,
      },
      fleet: options.fleet ?? quietFleet(10),
      engine: { serverProcessing: 500, ...options.engine },
      pushes: options.pushes ?? {},
      plans: options.plans,
    },
    'tiny-scenario',
  );
}

/** The plan kinds `arbitraryScenario` draws from; the label says which one a counterexample used. */
export type PlanShape =
  | 'collapse'
  | 'phasedFixed'
  | 'gatedConverged'
  | 'gatedQueueBelow'
  | 'gatedP95Below'
  | 'itPolicyChange'
  | 'activationStorm';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** A throttle limit: sometimes off, often tight enough to bind on a few hundred users. */
const limitArb = (max: number) =>
  fc.oneof(
    { weight: 1, arbitrary: fc.constant(null) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 5 }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max }) },
  );

function planArb(instanceCount: number, users: number): fc.Arbitrary<{ shape: PlanShape; plan: PlanInput }> {
  const ids = instances(instanceCount).map((i) => i.id);
  // New instances either get fresh SRP ids or (srpIdBase 0) reuse 1, 2, … while devices hold them.
  const into: fc.Arbitrary<MoveTarget> = fc.constantFrom<MoveTarget>(
    { newInstances: { srpIdBase: 100 } },
    { newInstances: { srpIdBase: 0 } },
    ...(instanceCount > 1 ? [ids[0]!] : []),
  );
  const size = fc.integer({ min: 1, max: Math.max(1, users) });
  const every = fc.integer({ min: 1, max: 90 }).map((m) => m * MINUTE);
  return fc.oneof(
    fc
      .record({
        kind: fc.constantFrom('collapse' as const, 'bigBang' as const),
        into,
        stopWindow: fc.integer({ min: 0, max: 60 }),
      })
      .map(({ kind, into, stopWindow }) => ({
        shape: 'collapse' as const,
        plan: { kind, into, stopWindow: stopWindow * MINUTE },
      })),
    fc.record({ into, size, every }).map(({ into, size, every }) => ({
      shape: 'phasedFixed' as const,
      plan: { kind: 'phased' as const, into, size, every },
    })),
    fc
      .record({ into, size, share: fc.double({ min: 0.1, max: 1, noNaN: true }) })
      .map(({ into, size, share }) => ({
        shape: 'gatedConverged' as const,
        plan: { kind: 'phased' as const, into, size, gate: { kind: 'converged' as const, share } },
      })),
    fc.record({ into, size, depth: fc.integer({ min: 1, max: 200 }) }).map(({ into, size, depth }) => ({
      shape: 'gatedQueueBelow' as const,
      plan: { kind: 'phased' as const, into, size, gate: { kind: 'queueBelow' as const, depth } },
    })),
    fc
      .record({ into, size, latency: fc.integer({ min: 1, max: 120 }), every: fc.option(every) })
      .map(({ into, size, latency, every }) => ({
        shape: 'gatedP95Below' as const,
        plan: {
          kind: 'phased' as const,
          into,
          size,
          ...(every === null ? {} : { every }),
          gate: { kind: 'p95Below' as const, latency: latency * MINUTE, window: 15 * MINUTE },
        },
      })),
    fc.integer({ min: 0, max: 60 }).map((at) => ({
      shape: 'itPolicyChange' as const,
      plan: { kind: 'itPolicyChange' as const, at: at * MINUTE },
    })),
    fc
      .record({
        activations: fc.integer({ min: 1, max: users + 20 }),
        window: fc.integer({ min: 1, max: 240 }),
        arrivals: fc.constantFrom('uniform' as const, 'poisson' as const),
      })
      .map(({ activations, window, arrivals }) => ({
        shape: 'activationStorm' as const,
        plan: { kind: 'activationStorm' as const, activations, window: window * MINUTE, arrivals },
      })),
  );
}

export interface ArbitraryScenario {
  shape: PlanShape;
  /** The one plan in `scenario.plans`. */
  plan: string;
  scenario: Scenario;
}

/**
 * Small random scenarios for properties: 20-400 users on 1-4 instances, one random plan, random
 * throttle limits (some switched off), coverage, software mix, problem accounts and relay limits,
 * and a horizon of 6 h to 3 d so work is often still pending when the run stops.
 */
export function arbitraryScenario(): fc.Arbitrary<ArbitraryScenario> {
  return fc
    .record({
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      users: fc.integer({ min: 20, max: 400 }),
      instanceCount: fc.integer({ min: 1, max: 4 }),
      horizonHours: fc.integer({ min: 6, max: 72 }),
      throttle: fc.record({
        inProcessJobs: limitArb(40),
        jobsPerMinutePerService: limitArb(120),
        jobsPerMinuteDomain: limitArb(400),
      }),
      alwaysOnlineShare: fc.double({ min: 0, max: 1, noNaN: true }),
      oldSoftwareShare: fc.constantFrom(0, 0.1, 0.5),
      problemAccountShare: fc.constantFrom(0, 0.05, 0.3),
      offlineMeanMinutes: fc.integer({ min: 5, max: 600 }),
      moveDetectionPoll: fc.constantFrom(0, 15 * MINUTE),
      resendHours: fc.integer({ min: 1, max: 8 }),
      expiryHours: fc.integer({ min: 2, max: 7 * 24 }),
      relayMaxItems: fc.integer({ min: 0, max: 5 }),
      passwordLifetimeHours: fc.integer({ min: 1, max: 48 }),
    })
    .chain((base) =>
      planArb(base.instanceCount, base.users).map(({ shape, plan }) => {
        const scenario = parseScenario(
          {
            name: 'prop',
            seed: base.seed,
            horizon: base.horizonHours * HOUR,
            domain: {
              instances: instances(base.instanceCount),
              throttle: base.throttle,
              moveDetectionPoll: base.moveDetectionPoll,
              usersPerInstance: Math.max(1, Math.ceil(base.users / 2)),
            },
            fleet: {
              users: base.users,
              softwareVersions: {
                '4.5': 1 - base.oldSoftwareShare,
                '3.8': base.oldSoftwareShare / 2,
                '3.5': base.oldSoftwareShare / 2,
              },
              coverage: {
                alwaysOnlineShare: base.alwaysOnlineShare,
                online: { kind: 'exponential', mean: 3 * HOUR },
                offline: { kind: 'exponential', mean: base.offlineMeanMinutes * MINUTE },
              },
              problemAccountShare: base.problemAccountShare,
              recradleDelay: { kind: 'exponential', mean: 12 * HOUR },
            },
            engine: {
              resendInterval: base.resendHours * HOUR,
              pushExpiry: base.expiryHours * HOUR,
              relay: { maxItems: base.relayMaxItems, maxHold: 2 * 24 * HOUR },
              activation: {
                handshake: { kind: 'lognormal', median: 4 * MINUTE, sigma: 0.7 },
                concurrency: 5,
                passwordLifetime: base.passwordLifetimeHours * HOUR,
              },
            },
            plans: { [shape]: plan },
          },
          'arbitrary-scenario',
        );
        return { shape, plan: shape, scenario };
      }),
    );
}
