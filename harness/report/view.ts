/**
 * What the report says, before any of it is drawn: the plans it shows, the headline answers
 * (who finishes first, who is gentlest on the queue, who is recommended) and the sentences under
 * them. The answers come from the same `verdict` and `sweepVerdict` the terminal prints, so the
 * report never disagrees with the table. Pure.
 */
import { formatMs, verdict } from '../cli/output.ts';
import { SLO_LABELS, sweepVerdict } from '../cli/sweep.ts';
import { checkSlos } from '../metrics/slo.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';
import { ASSUMPTIONS } from '../scenario/schema.ts';
import { formatGate, formatInterval, type SweepEntry, type SweepResult } from '../sweep/sweep.ts';
import type { ReportSource } from './source.ts';

export const FINISHES_FIRST = 'Finishes first';
export const GENTLEST = 'Gentlest on the queue';
export const RECOMMENDED = 'Recommended';

export interface HeadlineFact {
  /** FINISHES_FIRST, GENTLEST or RECOMMENDED. */
  label: string;
  /** The plan the answer names; null when there is none ('No plan meets every SLO.'). */
  plan: string | null;
  /** The rest of the sentence: '1h 08m', 'the fastest plan that meets every SLO'. */
  detail: string;
  /** For a sweep's recommendation: the settings to use. */
  setting?: { size: number; interval: string; gate: string };
}

export interface ShownPlan {
  name: string;
  metrics: PlanMetrics;
  /** Short labels for the plan's card: 'recommended', 'finishes first', 'reference plan'. */
  badges: string[];
}

export interface ReportView {
  kind: 'run' | 'sweep';
  scenario: { name: string; seed: number; description: string | null };
  slos: RunSummary['slos'];
  /** The plans the cards and charts show, in order. A sweep shows a few telling entries. */
  plans: ShownPlan[];
  facts: HeadlineFact[];
  /** The plan to draw boldest; null when nothing can be recommended. */
  recommended: string | null;
  /** Why not the plan that finishes first, or the gentlest one: what choosing them would cost. */
  tradeoffs: string[];
  /** Sentences under the headline (a sweep's frontier and recommendation in full). */
  notes: string[];
  sweep: SweepResult | null;
  assumptions: RunSummary['assumptions'];
}

export function buildView(source: ReportSource): ReportView {
  return source.kind === 'run'
    ? runView(source.summary, source.description)
    : sweepView(source.sweep, source.description);
}

export function runView(summary: RunSummary, description: string | null): ReportView {
  const names = Object.keys(summary.plans);
  const facts = parseVerdict(verdict(summary), names).map((f) => withMakespan(f, summary));
  const recommended = facts.find((f) => f.label === RECOMMENDED)?.plan ?? null;
  return {
    kind: 'run',
    scenario: { name: summary.scenario, seed: summary.seed, description },
    slos: summary.slos,
    plans: names.map((name) => ({
      name,
      metrics: summary.plans[name]!.metrics,
      badges: badgesOf(name, facts),
    })),
    facts,
    recommended,
    tradeoffs: tradeoffs(facts, summary),
    notes: [],
    sweep: null,
    assumptions: summary.assumptions,
  };
}

/**
 * A sweep has too many entries to draw as lines; the report shows the recommended variant (or
 * the closest miss), the fastest and the gentlest variants, and the reference plans.
 */
export function sweepView(sweep: SweepResult, description: string | null): ReportView {
  const all = sweepAsSummary(sweep, sweep.entries);
  const names = sweep.entries.map((e) => e.name);
  const facts = parseVerdict(verdict(all), names)
    .filter((f) => f.label !== RECOMMENDED)
    .map((f) => withMakespan(f, all));
  const r = sweep.recommendation;
  const pick = r.kind === 'meetsSlos' ? r.entry : (r.closest?.entry ?? null);
  const picked = sweep.entries.find((e) => e.name === pick);
  if (r.kind === 'meetsSlos' && picked) {
    facts.push({
      label: RECOMMENDED,
      plan: picked.name,
      detail: r.noSlos
        ? 'the fastest variant (the scenario sets no SLOs)'
        : 'the fastest variant that meets every SLO',
      ...(picked.kind === 'variant' ? { setting: settingOf(picked) } : {}),
    });
  } else {
    facts.push({
      label: RECOMMENDED,
      plan: null,
      detail: picked ? `No variant meets every SLO; closest: ${picked.name}.` : 'No variant ran.',
    });
  }
  const variants = sweep.entries.filter((e) => e.kind === 'variant');
  const fastest = variants.reduce<SweepEntry | null>(
    (a, b) => (a === null || b.metrics.makespanMs < a.metrics.makespanMs ? b : a),
    null,
  );
  const gentlest = variants.reduce<SweepEntry | null>(
    (a, b) => (a === null || b.metrics.peakQueue.domain < a.metrics.peakQueue.domain ? b : a),
    null,
  );
  const shown = [picked, fastest, gentlest, ...sweep.entries.filter((e) => e.kind === 'reference')].filter(
    (e, i, list): e is SweepEntry => e != null && list.findIndex((o) => o?.name === e.name) === i,
  );
  return {
    kind: 'sweep',
    scenario: { name: sweep.scenario, seed: sweep.seed, description },
    slos: sweep.slos,
    plans: shown.map((e) => {
      const badges = badgesOf(e.name, facts);
      if (r.kind === 'none' && e.name === pick) badges.push('closest to the SLOs');
      if (e === fastest && !badges.includes('finishes first')) badges.push('fastest variant');
      if (e === gentlest && !badges.includes('gentlest on the queue')) badges.push('gentlest variant');
      if (e.kind === 'reference') badges.push('reference plan');
      return { name: e.name, metrics: e.metrics, badges };
    }),
    facts,
    recommended: r.kind === 'meetsSlos' ? r.entry : null,
    tradeoffs: tradeoffs(facts, all),
    // The recommendation has its own tile; the rest (frontier, warnings, misses) reads as notes.
    notes: sweepVerdict(sweep)
      .split('\n')
      .filter((line) => !line.startsWith('Recommended:')),
    sweep,
    // A sweep runs the same model as a run; its defaults and their sources are the same list.
    assumptions: [...ASSUMPTIONS],
  };
}

/** A sweep's entries in the shape of a run summary, so one `verdict` answers for both. */
export function sweepAsSummary(sweep: SweepResult, entries: readonly SweepEntry[]): RunSummary {
  return {
    schema: 'phasebench.summary/1',
    scenario: sweep.scenario,
    seed: sweep.seed,
    horizonMs: 0,
    plans: Object.fromEntries(entries.map((e) => [e.name, { metrics: e.metrics }])),
    slos: sweep.slos,
    assumptions: [...ASSUMPTIONS],
  };
}

function settingOf(entry: SweepEntry): HeadlineFact['setting'] {
  const plan = entry.plan.kind === 'phased' ? entry.plan : null;
  return {
    size: plan?.size ?? 0,
    interval: plan?.every === undefined ? 'none' : formatInterval(plan.every),
    gate: formatGate(plan?.gate ?? null),
  };
}

/**
 * `verdict` lines ('Finishes first: bigBang (1h 08m).') as facts. The plan is the longest known
 * name the answer starts with, so names with spaces or punctuation still come out whole.
 */
export function parseVerdict(text: string, planNames: readonly string[]): HeadlineFact[] {
  const byLength = [...planNames].sort((a, b) => b.length - a.length);
  return text.split('\n').flatMap((line) => {
    const colon = line.indexOf(': ');
    if (colon < 0) {
      // 'No plan meets every SLO.': an answer to the recommendation question without a plan.
      return line.startsWith('No plan') ? [{ label: RECOMMENDED, plan: null, detail: line }] : [];
    }
    const label = line.slice(0, colon);
    const answer = line.slice(colon + 2);
    const plan =
      byLength.find((n) => answer.startsWith(n) && /^([ ,.(]|$)/.test(answer.slice(n.length))) ?? null;
    const rest = plan === null ? answer : answer.slice(plan.length);
    const detail = rest
      .replace(/^[ ,]+/, '')
      .replace(/\.$/, '')
      .replace(/^\((.*)\)$/, '$1');
    return [{ label, plan, detail }];
  });
}

/**
 * The recommendation against the other answers, in one sentence each: 'bigBang finishes 1h 24m
 * sooner but misses p95 delivery, peak queue.' Nothing when an answer is the recommendation.
 */
export function tradeoffs(facts: readonly HeadlineFact[], summary: RunSummary): string[] {
  const metrics = (label: string) => {
    const plan = facts.find((f) => f.label === label)?.plan ?? null;
    const m = plan === null ? undefined : summary.plans[plan]?.metrics;
    return m && plan !== null ? { plan, m } : null;
  };
  const chosen = metrics(RECOMMENDED);
  if (chosen === null) return [];
  const missed = (m: PlanMetrics) =>
    checkSlos(summary.slos, m)
      .filter((c) => !c.met)
      .map((c) => SLO_LABELS[c.name]);
  const lines: string[] = [];
  const fastest = metrics(FINISHES_FIRST);
  if (fastest && fastest.plan !== chosen.plan && fastest.m.makespanMs < chosen.m.makespanMs) {
    const sooner = `${fastest.plan} finishes ${formatMs(chosen.m.makespanMs - fastest.m.makespanMs)} sooner`;
    const misses = missed(fastest.m);
    lines.push(
      misses.length > 0 ? `${sooner} but misses ${misses.join(', ')}.` : `${sooner} and meets every SLO.`,
    );
  }
  const gentlest = metrics(GENTLEST);
  if (gentlest && gentlest.plan !== chosen.plan && gentlest.m.peakQueue.domain < chosen.m.peakQueue.domain) {
    const longer = gentlest.m.makespanMs - chosen.m.makespanMs;
    lines.push(
      `${gentlest.plan} keeps the queue lower (peak ${count.format(gentlest.m.peakQueue.domain)} against ${count.format(chosen.m.peakQueue.domain)})` +
        (longer > 0 ? ` but takes ${formatMs(longer)} longer.` : '.'),
    );
  }
  return lines;
}

const count = new Intl.NumberFormat('en-US');

/** 'Finishes first: bigBang (1h 08m)' says what 1h 08m is in the table's row label; the tile says it itself. */
function withMakespan(fact: HeadlineFact, summary: RunSummary): HeadlineFact {
  const m = fact.plan === null ? undefined : summary.plans[fact.plan]?.metrics;
  return fact.label === FINISHES_FIRST && m
    ? { ...fact, detail: `makespan ${formatMs(m.makespanMs)} (server side)` }
    : fact;
}

function badgesOf(name: string, facts: readonly HeadlineFact[]): string[] {
  return facts.filter((f) => f.plan === name).map((f) => f.label.toLowerCase());
}
