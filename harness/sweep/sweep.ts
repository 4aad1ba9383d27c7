/**
 * `phasebench sweep`: vary a phased plan's phase size, interval and gate, run every variant over
 * one shared fleet (paired comparison, as `runScenario` does for a scenario's plans), and answer
 * the capacity planner's question: which settings are worth considering (the Pareto frontier
 * over makespan, p95 delivery and peak queue) and which is the fastest that meets the SLOs.
 * The frontier and the recommendation are pure functions of the runs' metrics.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { generateFleet } from '../domain/fleet.ts';
import { PhasebenchError, ResultsError } from '../errors.ts';
import { checkSlos, meetsSlos, type SloCheck } from '../metrics/slo.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';
import { writeJson } from '../results/store.ts';
import type { Gate, PhasedPlan, Plan, Scenario } from '../scenario/schema.ts';
import { SeededRandom } from '../sim/random.ts';
import { runPlan } from '../sim/run.ts';

export const SWEEP_FILE = 'sweep.json';

type Slos = RunSummary['slos'];

/** The values a sweep tries; `null` interval = gate only, `null` gate = fixed interval only. */
export interface SweepAxes {
  sizes: number[];
  intervals: Array<number | null>;
  gates: Array<Gate | null>;
}

export interface SweepVariant {
  /** `size/interval/gate`, e.g. `500/30m/none` or `1000/none/queueBelow:100`. */
  name: string;
  size: number;
  intervalMs: number | null;
  gate: Gate | null;
  plan: PhasedPlan;
}

export interface SweepEntry {
  name: string;
  /** A variant of the base plan, or another plan of the scenario run as a reference point. */
  kind: 'variant' | 'reference';
  plan: Plan;
  metrics: PlanMetrics;
  slos: SloCheck[];
  meetsSlos: boolean;
  onFrontier: boolean;
}

/** The three figures the frontier trades off; all are minimised. */
export interface Objectives {
  makespanMs: number;
  p95DeliveryMs: number;
  peakQueue: number;
}

export interface SloMiss extends SloCheck {
  /** How far past the limit, as a share of it: 0.12 = 12 % over. */
  overshoot: number;
}

export type Recommendation =
  | {
      kind: 'meetsSlos';
      /** The fastest variant that meets every SLO (every variant does when there are none). */
      entry: string;
      makespanMs: number;
      /** True when the scenario sets no SLOs: the recommendation is simply the fastest variant. */
      noSlos: boolean;
      /** A reference plan that also meets every SLO and is faster, if any. */
      fasterReference: string | null;
    }
  | {
      kind: 'none';
      /** Per SLO: how many variants meet it and the best value any variant reached. */
      bySlo: Array<{ name: SloCheck['name']; limit: number; best: number; bestEntry: string; metBy: number }>;
      /** The variant whose worst miss is smallest, and what it misses. */
      closest: { entry: string; misses: SloMiss[] } | null;
    };

export interface SweepResult {
  schema: 'phasebench.sweep/1';
  scenario: string;
  seed: number;
  base: string;
  axes: SweepAxes;
  slos: Slos;
  /** Axis combinations that make no phased plan (neither an interval nor a gate). */
  skipped: string[];
  entries: SweepEntry[];
  /** Names of the entries on the Pareto frontier, in entry order. */
  frontier: string[];
  recommendation: Recommendation;
}

/** A sweep that cannot start: the base plan is missing or not phased. Input error: exit code 2. */
export class SweepError extends PhasebenchError {
  override name = 'SweepError';

  constructor(code: 'SWEEP_NO_BASE' | 'SWEEP_BASE_NOT_PHASED', message: string) {
    super(code, message, { exitCode: 2 });
  }
}

// ---------------------------------------------------------------------------------------------
// Pure: dominance, frontier, recommendation.

export function objectivesOf(m: PlanMetrics): Objectives {
  return { makespanMs: m.makespanMs, p95DeliveryMs: m.pushDelivery.p95Ms, peakQueue: m.peakQueue.domain };
}

/** a dominates b: no worse on every objective and strictly better on at least one. */
export function dominates(a: Objectives, b: Objectives): boolean {
  const noWorse =
    a.makespanMs <= b.makespanMs && a.p95DeliveryMs <= b.p95DeliveryMs && a.peakQueue <= b.peakQueue;
  const better =
    a.makespanMs < b.makespanMs || a.p95DeliveryMs < b.p95DeliveryMs || a.peakQueue < b.peakQueue;
  return noWorse && better;
}

/** The items no other item dominates, in their original order. Ties (equal objectives) all stay. */
export function paretoFrontier<T>(items: readonly T[], objectives: (item: T) => Objectives): T[] {
  const points = items.map(objectives);
  return items.filter((_, i) => !points.some((other, j) => j !== i && dominates(other, points[i]!)));
}

interface Candidate {
  name: string;
  kind: 'variant' | 'reference';
  metrics: PlanMetrics;
}

/**
 * The fastest variant (least makespan) that meets every SLO; ties go to the lower p95 delivery,
 * then the lower peak queue, then the earlier entry. References never become the recommendation
 * (they are not settings of the swept plan) but one that beats it is named. When no variant meets
 * every SLO, says per SLO how close the variants came and which variant misses by the least.
 */
export function recommend(entries: readonly Candidate[], slos: Slos): Recommendation {
  const variants = entries.filter((e) => e.kind === 'variant');
  const meeting = variants.filter((e) => meetsSlos(slos, e.metrics));
  if (meeting.length > 0) {
    const best = meeting.reduce((a, b) => (faster(b, a) ? b : a));
    const beating = entries
      .filter((e) => e.kind === 'reference' && meetsSlos(slos, e.metrics) && faster(e, best))
      .reduce<Candidate | null>((a, b) => (a === null || faster(b, a) ? b : a), null);
    return {
      kind: 'meetsSlos',
      entry: best.name,
      makespanMs: best.metrics.makespanMs,
      noSlos: checkSlos(slos, best.metrics).length === 0,
      fasterReference: beating?.name ?? null,
    };
  }
  const checks = variants.map((e) => ({ entry: e.name, checks: checkSlos(slos, e.metrics) }));
  const names = checks[0]?.checks.map((c) => c.name) ?? [];
  const bySlo = names.map((name) => {
    const values = checks.map((v) => ({ entry: v.entry, check: v.checks.find((c) => c.name === name)! }));
    const best = values.reduce((a, b) => (b.check.value < a.check.value ? b : a));
    return {
      name,
      limit: best.check.limit,
      best: best.check.value,
      bestEntry: best.entry,
      metBy: values.filter((v) => v.check.met).length,
    };
  });
  let closest: { entry: string; misses: SloMiss[]; worst: number } | null = null;
  for (const v of checks) {
    const misses = v.checks.filter((c) => !c.met).map((c) => ({ ...c, overshoot: overshoot(c) }));
    const worst = Math.max(...misses.map((m) => m.overshoot));
    if (closest === null || worst < closest.worst) closest = { entry: v.entry, misses, worst };
  }
  return { kind: 'none', bySlo, closest: closest && { entry: closest.entry, misses: closest.misses } };
}

function overshoot(check: SloCheck): number {
  // A limit of 0 (peak queue 0) has no scale of its own: count each unit over as 100 %.
  return (check.value - check.limit) / Math.max(check.limit, 1);
}

function faster(a: Candidate, b: Candidate): boolean {
  const x = objectivesOf(a.metrics);
  const y = objectivesOf(b.metrics);
  if (x.makespanMs !== y.makespanMs) return x.makespanMs < y.makespanMs;
  if (x.p95DeliveryMs !== y.p95DeliveryMs) return x.p95DeliveryMs < y.p95DeliveryMs;
  return x.peakQueue < y.peakQueue;
}

// ---------------------------------------------------------------------------------------------
// Variants.

/** The phased plan a sweep varies: `base` when given, else the scenario's `sweep.base`. */
export function resolveBase(scenario: Scenario, base?: string): { name: string; plan: PhasedPlan } {
  const phased = Object.entries(scenario.plans)
    .filter(([, p]) => p.kind === 'phased')
    .map(([n]) => n);
  const choices =
    phased.length > 0
      ? `phased plans here: ${phased.join(', ')}`
      : 'this scenario has no phased plan; add one to its plans';
  const name = base ?? scenario.sweep?.base;
  if (name === undefined) {
    throw new SweepError(
      'SWEEP_NO_BASE',
      `Scenario ${scenario.name} has no sweep section, so the sweep does not know which plan to vary. ` +
        `Name a phased plan with --base (${choices}), or add \`sweep: { base: '<plan>' }\` to the scenario.`,
    );
  }
  const plan = scenario.plans[name];
  if (!plan) {
    throw new SweepError(
      'SWEEP_BASE_NOT_PHASED',
      `Scenario ${scenario.name} has no plan named '${name}' to sweep (${choices}).`,
    );
  }
  if (plan.kind !== 'phased') {
    throw new SweepError(
      'SWEEP_BASE_NOT_PHASED',
      `Cannot sweep plan '${name}' of scenario ${scenario.name}: a sweep varies a phased plan's phase size, ` +
        `interval and gate, and '${name}' is a ${plan.kind} plan, which has none of them. ` +
        `Choose a phased plan with --base or in sweep.base (${choices}).`,
    );
  }
  return { name, plan };
}

/** The axes: explicit overrides, else the scenario's sweep section, else the base plan's own values. */
export function sweepAxes(
  scenario: Scenario,
  base: PhasedPlan,
  overrides: Partial<SweepAxes> = {},
): SweepAxes {
  const section = scenario.sweep;
  return {
    sizes: distinct(overrides.sizes ?? section?.sizes ?? [base.size]),
    intervals: distinct(overrides.intervals ?? section?.intervals ?? [base.every ?? null]),
    gates: distinctBy(overrides.gates ?? section?.gates ?? [base.gate ?? null], formatGate),
  };
}

/** Every size x interval x gate that makes a phased plan; the rest are returned as skipped. */
export function sweepVariants(
  base: PhasedPlan,
  axes: SweepAxes,
): { variants: SweepVariant[]; skipped: string[] } {
  const variants: SweepVariant[] = [];
  const skipped: string[] = [];
  for (const size of axes.sizes) {
    for (const intervalMs of axes.intervals) {
      for (const gate of axes.gates) {
        const name = variantName(size, intervalMs, gate);
        if (intervalMs === null && gate === null) {
          skipped.push(name);
          continue;
        }
        const plan: PhasedPlan = {
          ...base,
          description: `${base.description ? `${base.description}; ` : ''}sweep variant ${name}`,
          size,
          every: intervalMs ?? undefined,
          gate: gate ?? undefined,
        };
        variants.push({ name, size, intervalMs, gate, plan });
      }
    }
  }
  return { variants, skipped };
}

export function variantName(size: number, intervalMs: number | null, gate: Gate | null): string {
  return `${size}/${intervalMs === null ? 'none' : formatInterval(intervalMs)}/${formatGate(gate)}`;
}

/** '15m', '90m', '2h', '45s': exact, and readable back by `ms`. */
export function formatInterval(valueMs: number): string {
  if (valueMs > 0 && valueMs % 3_600_000 === 0) return `${valueMs / 3_600_000}h`;
  if (valueMs > 0 && valueMs % 60_000 === 0) return `${valueMs / 60_000}m`;
  if (valueMs > 0 && valueMs % 1_000 === 0) return `${valueMs / 1_000}s`;
  return `${valueMs}ms`;
}

/** 'none', 'queueBelow:100', 'converged:0.95', 'p95Below:20m' (with '/window' when not 15 min). */
export function formatGate(gate: Gate | null): string {
  if (gate === null) return 'none';
  switch (gate.kind) {
    case 'converged':
      return `converged:${gate.share}`;
    case 'queueBelow':
      return `queueBelow:${gate.depth}`;
    case 'p95Below':
      return `p95Below:${formatInterval(gate.latency)}${gate.window === DEFAULT_P95_WINDOW_MS ? '' : `/${formatInterval(gate.window)}`}`;
  }
}

/** The schema's default p95 gate window. */
export const DEFAULT_P95_WINDOW_MS = 15 * 60_000;

function distinct<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}

function distinctBy<T>(values: readonly T[], key: (value: T) => string): T[] {
  const seen = new Set<string>();
  return values.filter((v) => {
    const k = key(v);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ---------------------------------------------------------------------------------------------
// Running.

export interface SweepOptions extends Partial<SweepAxes> {
  /** The phased plan to vary; default the scenario's `sweep.base`. */
  base?: string;
  /** Also run the scenario's other plans as reference points. Default true. */
  references?: boolean;
  /** Listeners: they only observe. */
  onRunStart?: (name: string, index: number, total: number) => void;
  onProgress?: (name: string, virtualMs: number, horizonMs: number) => void;
  onRunDone?: (entry: SweepEntry) => void;
}

export async function runSweep(scenario: Scenario, options: SweepOptions = {}): Promise<SweepResult> {
  const base = resolveBase(scenario, options.base);
  const axes = sweepAxes(scenario, base.plan, options);
  const { variants, skipped } = sweepVariants(base.plan, axes);
  const runs: Array<{ name: string; kind: SweepEntry['kind']; plan: Plan }> = variants.map((v) => ({
    name: v.name,
    kind: 'variant',
    plan: v.plan,
  }));
  if (options.references ?? true) {
    // The base itself is a reference only when its own settings are not one of the variants.
    const baseIsVariant = variants.some(
      (v) => v.name === variantName(base.plan.size, base.plan.every ?? null, base.plan.gate ?? null),
    );
    for (const [name, plan] of Object.entries(scenario.plans)) {
      if (name === base.name && baseIsVariant) continue;
      runs.push({ name, kind: 'reference', plan });
    }
  }

  // One fleet for every run: the same users, devices and random draws (common random numbers).
  const random = new SeededRandom(scenario.seed);
  const fleet = generateFleet(scenario, random);
  const measured: Array<Omit<SweepEntry, 'onFrontier'>> = [];
  for (const [index, run] of runs.entries()) {
    options.onRunStart?.(run.name, index, runs.length);
    const planKey = run.kind === 'variant' ? `${base.name}@${run.name}` : run.name;
    const variantScenario =
      run.kind === 'variant' ? { ...scenario, plans: { ...scenario.plans, [planKey]: run.plan } } : scenario;
    const { metrics } = runPlan(variantScenario, planKey, {
      fleet,
      random,
      keepEvents: false,
      onProgress: options.onProgress
        ? (at, horizon) => options.onProgress!(run.name, at, horizon)
        : undefined,
    });
    const entry = {
      name: run.name,
      kind: run.kind,
      plan: run.plan,
      metrics,
      slos: checkSlos(scenario.slos, metrics),
      meetsSlos: meetsSlos(scenario.slos, metrics),
    };
    measured.push(entry);
    options.onRunDone?.({ ...entry, onFrontier: false });
    // Let a progress bar repaint between runs (each run is synchronous).
    await new Promise((done) => setImmediate(done));
  }
  const frontier = new Set(paretoFrontier(measured, (e) => objectivesOf(e.metrics)).map((e) => e.name));
  const entries = measured.map((e) => ({ ...e, onFrontier: frontier.has(e.name) }));
  return {
    schema: 'phasebench.sweep/1',
    scenario: scenario.name,
    seed: scenario.seed,
    base: base.name,
    axes,
    slos: scenario.slos,
    skipped,
    entries,
    frontier: entries.filter((e) => e.onFrontier).map((e) => e.name),
    recommendation: recommend(entries, scenario.slos),
  };
}

/** results/<scenario>-sweep-<UTC timestamp>, stamped like run folders. */
export function defaultSweepDir(scenario: Scenario, startedAt: Date, root = 'results'): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return resolve(root, `${scenario.name}-sweep-${stamp}`);
}

/** Writes sweep.json into `dir` (created if needed); returns the file's path. */
export async function writeSweep(dir: string, result: SweepResult): Promise<string> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (cause) {
    throw new ResultsError(
      `cannot create the sweep folder ${dir}: ${(cause as Error).message}. Choose another with --out.`,
      { target: dir, cause },
    );
  }
  await writeJson(dir, SWEEP_FILE, result);
  return resolve(dir, SWEEP_FILE);
}
