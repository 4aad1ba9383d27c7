import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InvalidArgumentError } from 'commander';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseGates, parseIntervals, parseSizes, sweepCommand, sweepTable } from '../cli/sweep.ts';
import { meetsSlos } from '../metrics/slo.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';
import { parseScenario } from '../scenario/load.ts';
import type { ScenarioInput } from '../scenario/schema.ts';
import { runPlan } from '../sim/run.ts';
import {
  defaultSweepDir,
  dominates,
  type Objectives,
  objectivesOf,
  paretoFrontier,
  recommend,
  runSweep,
  SweepError,
  type SweepResult,
  writeSweep,
} from './sweep.ts';

const MINUTE = 60_000;
const NUM_RUNS = Number(process.env.PHASEBENCH_PROPERTY_RUNS ?? 30);

const dir = mkdtempSync(join(tmpdir(), 'phasebench-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Plan metrics with the three objectives set and everything else empty. */
function metricsWith(o: Objectives): PlanMetrics {
  const latency = { count: 0, minMs: 0, p50Ms: 0, p95Ms: 0, p99Ms: 0, maxMs: 0, meanMs: 0, histogram: '' };
  return {
    plan: 'p',
    planKind: 'phased',
    makespanMs: o.makespanMs,
    convergenceMs: o.makespanMs,
    users: 0,
    usersConverged: 0,
    convergedShare: 0,
    pushDelivery: { ...latency, p95Ms: o.p95DeliveryMs },
    userMigration: latency,
    peakQueue: { domain: o.peakQueue, byInstance: {} },
    jobsPerMinute: { peakDomain: 0, meanDomain: 0, peakByInstance: {} },
    maxJobsInAnyMinute: { domain: 0, byInstance: {} },
    pushes: { queued: 0, acknowledged: 0, expired: 0, pending: 0, resent: 0 },
    stranded: { total: 0, byReason: {} },
    srpConflicts: [],
    devicesCutOff: 0,
    servers: { initial: 1, peak: 1, added: 0 },
    srpCredentials: { initial: 1, peak: 1, added: 0 },
    userMinutesWithoutService: 0,
    phases: [],
    events: 0,
    timeline: { minute: [], queue: [], convergedShare: [] },
    logSha256: '',
  };
}

// Small ranges so ties and dominance are common.
const objectivesArb: fc.Arbitrary<Objectives> = fc.record({
  makespanMs: fc.nat(6),
  p95DeliveryMs: fc.nat(6),
  peakQueue: fc.nat(6),
});

describe('Pareto frontier', () => {
  it('dominance needs no worse on all three and better on one', () => {
    const a = { makespanMs: 1, p95DeliveryMs: 2, peakQueue: 3 };
    expect(dominates(a, { ...a, peakQueue: 4 })).toBe(true);
    expect(dominates(a, a)).toBe(false);
    expect(dominates(a, { makespanMs: 2, p95DeliveryMs: 1, peakQueue: 3 })).toBe(false);
  });

  it('no member is dominated by any point, and every other point is dominated by a member', () => {
    fc.assert(
      fc.property(fc.array(objectivesArb, { maxLength: 40 }), (points) => {
        const items = points.map((o, index) => ({ index, o }));
        const frontier = paretoFrontier(items, (i) => i.o);
        const members = new Set(frontier.map((i) => i.index));
        for (const member of frontier) {
          for (const other of items) expect(dominates(other.o, member.o)).toBe(false);
        }
        for (const item of items) {
          if (members.has(item.index)) continue;
          expect(frontier.some((member) => dominates(member.o, item.o))).toBe(true);
        }
        expect(frontier.length > 0).toBe(items.length > 0);
        // In the original order.
        expect(frontier.map((i) => i.index)).toEqual([...members].sort((a, b) => a - b));
      }),
      { numRuns: NUM_RUNS * 10 },
    );
  });
});

type Slos = RunSummary['slos'];

const slosArb: fc.Arbitrary<Slos> = fc
  .record({
    makespan: fc.option(fc.nat(6), { nil: undefined }),
    p95Delivery: fc.option(fc.nat(6), { nil: undefined }),
    peakQueue: fc.option(fc.nat(6), { nil: undefined }),
  })
  .map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined)) as Slos);

const entriesArb = fc
  .array(fc.record({ kind: fc.constantFrom('variant' as const, 'reference' as const), o: objectivesArb }), {
    maxLength: 25,
  })
  .map((rows) => rows.map((r, i) => ({ name: `e${i}`, kind: r.kind, metrics: metricsWith(r.o) })));

describe('recommendation', () => {
  it('meets every SLO, is a variant, and no SLO-meeting variant is faster; otherwise none meets them', () => {
    fc.assert(
      fc.property(entriesArb, slosArb, (entries, slos) => {
        const r = recommend(entries, slos);
        const variants = entries.filter((e) => e.kind === 'variant');
        const meeting = variants.filter((e) => meetsSlos(slos, e.metrics));
        if (r.kind === 'meetsSlos') {
          const chosen = entries.find((e) => e.name === r.entry)!;
          expect(chosen.kind).toBe('variant');
          expect(meetsSlos(slos, chosen.metrics)).toBe(true);
          for (const e of meeting)
            expect(e.metrics.makespanMs).toBeGreaterThanOrEqual(chosen.metrics.makespanMs);
          expect(r.makespanMs).toBe(chosen.metrics.makespanMs);
          expect(r.noSlos).toBe(Object.keys(slos).length === 0);
          if (r.fasterReference !== null) {
            const ref = entries.find((e) => e.name === r.fasterReference)!;
            expect(ref.kind).toBe('reference');
            expect(meetsSlos(slos, ref.metrics)).toBe(true);
            expect(ref.metrics.makespanMs).toBeLessThanOrEqual(chosen.metrics.makespanMs);
          }
        } else {
          expect(meeting).toEqual([]);
          expect(r.closest === null).toBe(variants.length === 0);
          if (r.closest) {
            const worst = (misses: Array<{ overshoot: number }>) =>
              Math.max(...misses.map((m) => m.overshoot));
            expect(r.closest.misses.length).toBeGreaterThan(0);
            const closest = worst(r.closest.misses);
            for (const v of variants) {
              const again = recommend([v], slos);
              if (again.kind === 'none' && again.closest) {
                expect(closest).toBeLessThanOrEqual(worst(again.closest.misses));
              }
            }
            for (const s of r.bySlo) {
              expect(s.metBy).toBe(variants.filter((v) => objective(v.metrics, s.name) <= s.limit).length);
            }
          }
        }
      }),
      { numRuns: NUM_RUNS * 10 },
    );
  });

  it('says which SLO comes closest when none is met by any variant', () => {
    const slos = { makespan: 100, p95Delivery: 100 };
    const r = recommend(
      [
        {
          name: 'slow',
          kind: 'variant',
          metrics: metricsWith({ makespanMs: 300, p95DeliveryMs: 50, peakQueue: 0 }),
        },
        {
          name: 'late',
          kind: 'variant',
          metrics: metricsWith({ makespanMs: 50, p95DeliveryMs: 120, peakQueue: 0 }),
        },
      ],
      slos,
    );
    expect(r.kind).toBe('none');
    if (r.kind !== 'none') return;
    expect(r.closest?.entry).toBe('late');
    expect(r.closest?.misses.map((m) => [m.name, m.overshoot])).toEqual([['p95Delivery', 0.2]]);
    expect(r.bySlo).toEqual([
      { name: 'makespan', limit: 100, best: 50, bestEntry: 'late', metBy: 1 },
      { name: 'p95Delivery', limit: 100, best: 50, bestEntry: 'slow', metBy: 1 },
    ]);
  });
});

function objective(m: PlanMetrics, name: 'makespan' | 'p95Delivery' | 'peakQueue' | 'strandedShare'): number {
  if (name === 'strandedShare') return m.users > 0 ? m.stranded.total / m.users : 0;
  const o = objectivesOf(m);
  return name === 'makespan' ? o.makespanMs : name === 'p95Delivery' ? o.p95DeliveryMs : o.peakQueue;
}

// ---------------------------------------------------------------------------------------------
// A tiny scenario, swept for real.

const tinyInput: ScenarioInput = {
  name: 'tiny-sweep',
  seed: 5,
  horizon: '3d',
  domain: {
    instances: [
      { id: 'BES01A', srpId: 1 },
      { id: 'BES01B', srpId: 2 },
    ],
    usersPerInstance: 200,
  },
  fleet: { users: 300, recradleDelay: '2h' },
  plans: {
    collapse: { kind: 'collapse', from: ['BES01B'], into: 'BES01A', stopWindow: '20m' },
    phased: { kind: 'phased', into: { newInstances: { srpIdBase: 50 } }, size: 50, every: '20m' },
  },
  slos: { makespan: '2h', p95Delivery: '30m' },
  sweep: { base: 'phased', sizes: [50, 150], intervals: ['5m', '20m'] },
};

describe('runSweep on a tiny scenario (300 users, sizes 50 and 150, intervals 5m and 20m)', () => {
  const scenario = parseScenario(tinyInput);
  let result: SweepResult;
  beforeAll(async () => {
    result = await runSweep(scenario);
  });

  it('runs one variant per size x interval, then the other plans as references', () => {
    expect(result.entries.map((e) => [e.name, e.kind])).toEqual([
      ['50/5m/none', 'variant'],
      ['50/20m/none', 'variant'],
      ['150/5m/none', 'variant'],
      ['150/20m/none', 'variant'],
      // The base (50 every 20m) is one of the variants, so only the collapse is a reference.
      ['collapse', 'reference'],
    ]);
    expect(result.skipped).toEqual([]);
  });

  it('prints one table row per variant and reference', () => {
    const rows = sweepTable(result)
      .split('\n')
      .filter((line) => line.startsWith('│') && !line.includes('makespan'));
    expect(rows).toHaveLength(result.entries.length);
    for (const [i, entry] of result.entries.entries()) expect(rows[i]).toContain(entry.name);
    const frontierRows = rows.filter((row) => row.includes('★'));
    expect(frontierRows).toHaveLength(result.frontier.length);
  });

  it('marks the frontier and recommends consistently with the pure functions', () => {
    const expected = paretoFrontier(result.entries, (e) => objectivesOf(e.metrics)).map((e) => e.name);
    expect(result.frontier).toEqual(expected);
    for (const e of result.entries) expect(e.onFrontier).toBe(expected.includes(e.name));
    const meeting = result.entries.filter((e) => e.kind === 'variant' && meetsSlos(scenario.slos, e.metrics));
    const r = result.recommendation;
    if (meeting.length === 0) {
      expect(r.kind).toBe('none');
    } else {
      expect(r.kind).toBe('meetsSlos');
      if (r.kind !== 'meetsSlos') return;
      const fastest = Math.min(...meeting.map((e) => e.metrics.makespanMs));
      expect(result.entries.find((e) => e.name === r.entry)!.metrics.makespanMs).toBe(fastest);
      expect(sweepTable(result)).toContain(`${r.entry} ◀ recommended`);
    }
  });

  it('each variant measures what an independent run of that plan measures (one shared fleet, same draws)', () => {
    const variant = result.entries.find((e) => e.name === '150/5m/none')!;
    const alone = parseScenario({
      ...tinyInput,
      plans: {
        ...tinyInput.plans,
        alone: { kind: 'phased', into: { newInstances: { srpIdBase: 50 } }, size: 150, every: '5m' },
      },
    });
    const { metrics } = runPlan(alone, 'alone');
    expect(objectivesOf(variant.metrics)).toEqual(objectivesOf(metrics));
    expect(variant.metrics.stranded).toEqual(metrics.stranded);
    expect(variant.metrics.servers).toEqual(metrics.servers);
  });

  it('writes sweep.json with the variants, their metrics, the frontier and the recommendation', async () => {
    const path = await writeSweep(join(dir, 'out'), result);
    const stored = JSON.parse(readFileSync(path, 'utf8')) as SweepResult;
    expect(stored.schema).toBe('phasebench.sweep/1');
    expect(stored.entries.map((e) => e.name)).toEqual(result.entries.map((e) => e.name));
    expect(stored.entries[0]!.metrics.makespanMs).toBe(result.entries[0]!.metrics.makespanMs);
    expect(stored.frontier).toEqual(result.frontier);
    expect(stored.recommendation).toEqual(result.recommendation);
  });
});

describe('variants', () => {
  it('crosses sizes, intervals and gates, and skips a variant with neither interval nor gate', async () => {
    const scenario = parseScenario({ ...tinyInput, fleet: { users: 40 }, sweep: undefined });
    const result = await runSweep(scenario, {
      base: 'phased',
      sizes: [20],
      intervals: [null, 10 * MINUTE],
      gates: [null, { kind: 'queueBelow', depth: 5 }],
      references: false,
    });
    expect(result.entries.map((e) => e.name)).toEqual([
      '20/none/queueBelow:5',
      '20/10m/none',
      '20/10m/queueBelow:5',
    ]);
    expect(result.skipped).toEqual(['20/none/none']);
    const gated = result.entries[0]!.plan;
    expect(gated).toMatchObject({
      kind: 'phased',
      size: 20,
      every: undefined,
      gate: { kind: 'queueBelow', depth: 5 },
    });
  });

  it('refuses a base plan that is not phased, and a scenario without a sweep section and no base', async () => {
    const scenario = parseScenario({ ...tinyInput, sweep: undefined });
    await expect(runSweep(scenario, { base: 'collapse' })).rejects.toMatchObject({
      name: 'SweepError',
      code: 'SWEEP_BASE_NOT_PHASED',
      exitCode: 2,
      message: expect.stringContaining("'collapse' is a collapse plan"),
    });
    await expect(runSweep(scenario)).rejects.toBeInstanceOf(SweepError);
    await expect(runSweep(scenario)).rejects.toMatchObject({ code: 'SWEEP_NO_BASE', exitCode: 2 });
  });

  it('names the default folder results/<scenario>-sweep-<timestamp>', () => {
    const scenario = parseScenario(tinyInput);
    expect(defaultSweepDir(scenario, new Date('2026-01-02T03:04:05.678Z'), '/r')).toBe(
      '/r/tiny-sweep-sweep-20260102T030405',
    );
  });
});

describe('command-line axes', () => {
  it('parses sizes, intervals and gates', () => {
    expect(parseSizes('250,500,1000')).toEqual([250, 500, 1000]);
    expect(parseIntervals('15m,30m,none')).toEqual([15 * MINUTE, 30 * MINUTE, null]);
    expect(parseGates('none,queueBelow:100,converged:0.95,converged,p95Below:20m,p95Below:20m/1h')).toEqual([
      null,
      { kind: 'queueBelow', depth: 100 },
      { kind: 'converged', share: 0.95 },
      { kind: 'converged', share: 1 },
      { kind: 'p95Below', latency: 20 * MINUTE, window: 15 * MINUTE },
      { kind: 'p95Below', latency: 20 * MINUTE, window: 60 * MINUTE },
    ]);
  });

  it.each([
    ['sizes', () => parseSizes('250,x')],
    ['sizes', () => parseSizes('0')],
    ['intervals', () => parseIntervals('15m,fortnight')],
    ['intervals', () => parseIntervals('0')],
    ['gates', () => parseGates('queueBelow')],
    ['gates', () => parseGates('converged:1.5')],
    ['gates', () => parseGates('p95Below:soon')],
    ['gates', () => parseGates('drained')],
  ])('rejects bad %s with a usage error', (_axis, parse) => {
    expect(parse).toThrow(InvalidArgumentError);
  });
});

describe('phasebench sweep', () => {
  const file = join(dir, 'tiny-sweep.ts');
  writeFileSync(file, `export default ${JSON.stringify({ ...tinyInput, fleet: { users: 60 } })};\n`);

  it('fails with exit code 2 and one paragraph when --base names a plan that is not phased', async () => {
    const command = sweepCommand().exitOverride();
    await expect(
      command.parseAsync([file, '--base', 'collapse', '--no-write'], { from: 'user' }),
    ).rejects.toMatchObject({
      code: 'SWEEP_BASE_NOT_PHASED',
      exitCode: 2,
      message: expect.not.stringContaining('\n'),
    });
  });

  it('prints sweep.json with --json and writes it under --out', async () => {
    const out = join(dir, 'cli-out');
    const written: string[] = [];
    const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    try {
      await sweepCommand()
        .exitOverride()
        .parseAsync(
          [file, '--sizes', '30,60', '--intervals', '10m', '--json', '--out', out, '--no-references'],
          {
            from: 'user',
          },
        );
    } finally {
      spy.mockRestore();
    }
    const printed = JSON.parse(written.join('')) as SweepResult;
    expect(printed.entries.map((e) => e.name)).toEqual(['30/10m/none', '60/10m/none']);
    const stored = JSON.parse(readFileSync(join(out, 'sweep.json'), 'utf8')) as SweepResult;
    expect(stored.entries.map((e) => e.name)).toEqual(printed.entries.map((e) => e.name));
  });
});
