import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Command } from '../domain/engine.ts';
import type { EventOf, StoredEvent } from '../domain/events.ts';
import { userIdOf } from '../domain/fleet.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { runPlan } from './run.ts';

const NUM_RUNS = Number(process.env.PHASEBENCH_PROPERTY_RUNS ?? 20);

function ofType<T extends StoredEvent['type']>(events: readonly StoredEvent[], type: T): EventOf<T>[] {
  return events.filter((e): e is StoredEvent & EventOf<T> => e.type === type);
}

interface Move {
  at: number;
  user: number;
  phase: number;
  to: string;
}

function commandsOf(moves: readonly Move[]): Array<{ at: number; command: Command }> {
  return moves.map((m) => ({
    at: m.at,
    command: { type: 'MoveUser', user: m.user, to: m.to, phase: m.phase },
  }));
}

function commandedScenario(users: number, expected: number) {
  return tinyScenario({
    instances: 2,
    fleet: quietFleet(users),
    plans: { commanded: { kind: 'commanded', moves: expected } },
  });
}

/** Moves in time order: users drawn with repeats (and a few unknown), phases that mostly go on. */
const movesArb = (users: number) =>
  fc
    .array(
      fc.record({
        gap: fc.integer({ min: 0, max: 120_000 }),
        user: fc.integer({ min: 0, max: users + 3 }),
        phaseStep: fc.integer({ min: -1, max: 1 }),
        target: fc.constantFrom('BESNEW1', 'BESNEW2'),
      }),
      { minLength: 1, maxLength: 80 },
    )
    .map((steps) => {
      let at = 0;
      let phase = 1;
      return steps.map((s): Move => {
        at += s.gap;
        phase = Math.max(1, phase + s.phaseStep);
        return { at, user: s.user, phase, to: s.target };
      });
    });

const caseArb = fc.integer({ min: 5, max: 40 }).chain((users) =>
  fc.record({
    users: fc.constant(users),
    expected: fc.integer({ min: 1, max: users }),
    moves: movesArb(users),
    seed: fc.integer({ min: 1, max: 1_000 }),
  }),
);

describe('a commanded plan: moves that arrive as commands', () => {
  it('moves each commanded user once, up to the expected count, and its phases add up to the users moved', () => {
    fc.assert(
      fc.property(caseArb, ({ users, expected, moves, seed }) => {
        const scenario = { ...commandedScenario(users, expected), seed };
        const { events } = runPlan(scenario, 'commanded', { commands: commandsOf(moves) });

        // The moves that take effect: known users, the first command for each, up to `expected`.
        const taken: string[] = [];
        for (const m of moves) {
          const user = userIdOf(m.user);
          if (m.user < users && !taken.includes(user) && taken.length < expected) taken.push(user);
        }
        const requested = ofType(events, 'UserMoveRequested').map((e) => e.data.user);
        expect(requested).toEqual(taken);

        const done = ofType(events, 'RunCompleted')[0]!;
        expect(done.data.reason).toBe('drained');
        expect(done.data.pendingPushes).toBe(0);
        // A quiet fleet: every moved device converges.
        const converged = ofType(events, 'DeviceConverged').map((e) => e.data.user);
        expect(new Set(converged)).toEqual(new Set(taken));
        const phases = ofType(events, 'PhaseStarted').map((e) => e.data.phase);
        expect(phases).toEqual(phases.map((_, i) => i + 1));
        const closed = ofType(events, 'PhaseConverged');
        if (taken.length === expected) {
          // Everything expected arrived: every phase closes, and their sizes add up.
          // (in any order: a later phase's devices may all settle before an earlier one's)
          expect(closed.map((e) => e.data.phase).sort((a, b) => a - b)).toEqual(phases);
          expect(closed.reduce((n, e) => n + e.data.users, 0)).toBe(taken.length);
        } else {
          // The newest phase waits for the moves still expected.
          expect(closed.map((e) => e.data.phase)).not.toContain(phases.at(-1));
        }
      }),
      { numRuns: NUM_RUNS },
    );
  });

  it('provisions a target the domain does not have, with the SRP id the plan gives it', () => {
    const scenario = tinyScenario({
      instances: 1,
      fleet: quietFleet(6),
      plans: {
        commanded: {
          kind: 'commanded',
          moves: 3,
          newInstances: { instances: [{ id: 'BESX', srpId: '777' }] },
        },
      },
    });
    const { events, metrics } = runPlan(scenario, 'commanded', {
      commands: commandsOf([
        { at: 0, user: 0, phase: 1, to: 'BESX' },
        { at: 10, user: 0, phase: 1, to: 'BESX' }, // delivered twice
        { at: 60_000, user: 1, phase: 2, to: 'BESNEW9' },
        { at: 60_000, user: 2, phase: 2, to: 'BESX' },
        { at: 90_000, user: 3, phase: 2, to: 'BESX' }, // one more than expected
      ]),
    });
    const provisioned = ofType(events, 'InstanceProvisioned').map((e) => [e.data.instance, e.data.srpId]);
    expect(provisioned).toEqual([
      ['BESX', '777'],
      ['BESNEW9', '1002'],
    ]);
    expect(ofType(events, 'UserMoved').map((e) => [e.data.user, e.data.to])).toEqual([
      ['u000000', 'BESX'],
      ['u000001', 'BESNEW9'],
      ['u000002', 'BESX'],
    ]);
    expect(metrics.phases.map((p) => [p.phase, p.users, p.converged])).toEqual([
      [1, 1, 1],
      [2, 2, 2],
    ]);
  });

  it('a phase stays open while more moves are expected', () => {
    const scenario = commandedScenario(10, 4);
    const { events } = runPlan(scenario, 'commanded', {
      commands: commandsOf([
        { at: 0, user: 0, phase: 1, to: 'BESNEW1' },
        { at: 0, user: 1, phase: 1, to: 'BESNEW1' },
      ]),
    });
    expect(ofType(events, 'DeviceConverged')).toHaveLength(2);
    expect(ofType(events, 'PhaseConverged')).toHaveLength(0);
  });

  it('a plan of another kind ignores MoveUser', () => {
    const scenario = tinyScenario({
      fleet: quietFleet(4),
      plans: { policy: { kind: 'itPolicyChange' } },
    });
    const plain = runPlan(scenario, 'policy');
    const commanded = runPlan(scenario, 'policy', {
      commands: commandsOf([{ at: 0, user: 1, phase: 1, to: 'BESNEW1' }]),
    });
    expect(commanded.metrics.logSha256).toBe(plain.metrics.logSha256);
  });
});
