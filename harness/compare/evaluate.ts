/**
 * Checks thresholds against a baseline and a candidate summary. Pure: summaries in, results out.
 *
 * A threshold that cannot be checked — it names a plan or phase that does not exist, or a relative
 * limit has no baseline value — is an error result: failed, with a message saying why. A typo in
 * a plan name must turn a CI job red, not pass it silently.
 */
import type { PhaseSummary, PlanMetrics, RunSummary } from '../metrics/summary.ts';
import { formatValue } from './format.ts';
import type { MetricUnit } from './metrics.ts';
import { phaseMetric, runMetric } from './metrics.ts';
import { type ComparisonOp, formatTarget, type Threshold, targetUnit } from './thresholds.ts';

export interface ThresholdResult {
  /** The threshold as written. */
  threshold: string;
  /** The plan checked; '*' when a plan-less threshold found no plan common to both summaries. */
  plan: string;
  /** The phase checked, for phase thresholds (`phase[*]` gives one result per phase). */
  phase?: number;
  /** What was checked: 'makespan', 'p95(push_delivery)', 'phase[2].convergence'. */
  metric: string;
  unit: MetricUnit;
  baselineValue: number | null;
  candidateValue: number | null;
  /** The value the candidate was compared with: absolute, or the baseline scaled. */
  limit: number | null;
  passed: boolean;
  /** True when the threshold could not be checked at all; such a result never passes. */
  error: boolean;
  message: string;
}

export function evaluateThresholds(
  thresholds: readonly Threshold[],
  baseline: RunSummary,
  candidate: RunSummary,
): ThresholdResult[] {
  return thresholds.flatMap((threshold) => evaluateThreshold(threshold, baseline, candidate));
}

/** Plans present in both summaries, in the candidate's order. */
export function commonPlans(baseline: RunSummary, candidate: RunSummary): string[] {
  return Object.keys(candidate.plans).filter((plan) => Object.hasOwn(baseline.plans, plan));
}

export function evaluateThreshold(
  threshold: Threshold,
  baseline: RunSummary,
  candidate: RunSummary,
): ThresholdResult[] {
  const relative = threshold.limit.kind === 'relative';
  if (threshold.plan === null) {
    const plans = commonPlans(baseline, candidate);
    if (plans.length === 0) {
      return [
        errorResult(
          threshold,
          '*',
          undefined,
          `no plan is present in both summaries ${planLists(baseline, candidate)}`,
        ),
      ];
    }
    return plans.flatMap((plan) =>
      evaluateOnPlan(threshold, plan, baseline.plans[plan]?.metrics, candidate.plans[plan]!.metrics),
    );
  }

  const plan = threshold.plan;
  const candidatePlan = candidate.plans[plan]?.metrics;
  const baselinePlan = baseline.plans[plan]?.metrics;
  if (candidatePlan === undefined) {
    return [
      errorResult(
        threshold,
        plan,
        undefined,
        `no plan '${plan}' in the candidate ${planLists(baseline, candidate)}`,
      ),
    ];
  }
  if (relative && baselinePlan === undefined) {
    return [
      errorResult(
        threshold,
        plan,
        undefined,
        `no plan '${plan}' in the baseline to be relative to ${planLists(baseline, candidate)}`,
      ),
    ];
  }
  return evaluateOnPlan(threshold, plan, baselinePlan, candidatePlan);
}

function evaluateOnPlan(
  threshold: Threshold,
  plan: string,
  baselinePlan: PlanMetrics | undefined,
  candidatePlan: PlanMetrics,
): ThresholdResult[] {
  const { target } = threshold;
  if (target.scope === 'run') {
    const read = runMetric(target.metric).read;
    return [
      check(threshold, plan, undefined, baselinePlan === undefined ? null : finite(read(baselinePlan)), {
        value: finite(read(candidatePlan)),
        missingBecause: 'the summary holds no finite value',
      }),
    ];
  }

  const definition = phaseMetric(target.metric);
  const phases =
    target.phase === '*'
      ? candidatePlan.phases
      : candidatePlan.phases.filter((phase) => phase.phase === target.phase);
  if (phases.length === 0) {
    const which = target.phase === '*' ? 'no phases' : `no phase ${target.phase}`;
    return [
      errorResult(
        threshold,
        plan,
        undefined,
        `plan '${plan}' has ${which} in the candidate ${phaseList(candidatePlan)}`,
      ),
    ];
  }

  return phases.map((candidatePhase) => {
    const baselinePhase = baselinePlan?.phases.find((phase) => phase.phase === candidatePhase.phase);
    if (threshold.limit.kind === 'relative' && baselinePhase === undefined) {
      return errorResult(
        threshold,
        plan,
        candidatePhase.phase,
        `plan '${plan}' has no phase ${candidatePhase.phase} in the baseline to be relative to ${phaseList(baselinePlan)}`,
      );
    }
    return check(
      threshold,
      plan,
      candidatePhase.phase,
      baselinePhase === undefined ? null : finite(definition.read(baselinePhase)),
      { value: finite(definition.read(candidatePhase)), missingBecause: definition.missingBecause },
    );
  });
}

function check(
  threshold: Threshold,
  plan: string,
  phase: number | undefined,
  baselineValue: number | null,
  candidate: { value: number | null; missingBecause: string },
): ThresholdResult {
  const unit = targetUnit(threshold.target);
  const metric = metricLabel(threshold, phase);
  const fmt = (value: number | null) => formatValue(value, unit);

  let limit: number;
  let limitNote = '';
  if (threshold.limit.kind === 'absolute') {
    limit = threshold.limit.value;
  } else {
    if (baselineValue === null) {
      return errorResult(threshold, plan, phase, `the baseline has no ${metric} to be relative to`, {
        candidateValue: candidate.value,
      });
    }
    const { percent } = threshold.limit;
    // Scaled as (100 + p) / 100 rather than 1 + p/100: 1000 * 1.1 is 1100.0000000000002.
    limit = (baselineValue * (100 + percent)) / 100;
    limitNote = ` (baseline ${fmt(baselineValue)} ${percent < 0 ? '-' : '+'}${Math.abs(percent)}%)`;
  }

  const base = { threshold: threshold.source, plan, metric, unit, baselineValue, limit, error: false };
  const withPhase = phase === undefined ? base : { ...base, phase };
  if (candidate.value === null) {
    return {
      ...withPhase,
      candidateValue: null,
      passed: false,
      message: `${metric} has no value: ${candidate.missingBecause}; required ${threshold.op} ${fmt(limit)}${limitNote}`,
    };
  }
  const passed = compare(candidate.value, threshold.op, limit);
  const verb = passed ? '' : 'not ';
  return {
    ...withPhase,
    candidateValue: candidate.value,
    passed,
    message: `${metric} ${fmt(candidate.value)} is ${verb}${threshold.op} ${fmt(limit)}${limitNote}`,
  };
}

export function compare(value: number, op: ComparisonOp, limit: number): boolean {
  switch (op) {
    case '<':
      return value < limit;
    case '<=':
      return value <= limit;
    case '>':
      return value > limit;
    case '>=':
      return value >= limit;
    case '==':
      return value === limit;
  }
}

function errorResult(
  threshold: Threshold,
  plan: string,
  phase: number | undefined,
  reason: string,
  values: { candidateValue?: number | null } = {},
): ThresholdResult {
  const result: ThresholdResult = {
    threshold: threshold.source,
    plan,
    metric: metricLabel(threshold, phase),
    unit: targetUnit(threshold.target),
    baselineValue: null,
    candidateValue: values.candidateValue ?? null,
    limit: null,
    passed: false,
    error: true,
    message: `cannot check: ${reason}`,
  };
  return phase === undefined ? result : { ...result, phase };
}

function metricLabel(threshold: Threshold, phase: number | undefined): string {
  const { target } = threshold;
  if (target.scope === 'phase' && phase !== undefined) return formatTarget({ ...target, phase });
  return formatTarget(target);
}

function finite(value: number | null): number | null {
  return value !== null && Number.isFinite(value) ? value : null;
}

function planLists(baseline: RunSummary, candidate: RunSummary): string {
  return `(baseline plans: ${names(Object.keys(baseline.plans))}; candidate plans: ${names(Object.keys(candidate.plans))})`;
}

function phaseList(plan: PlanMetrics | undefined): string {
  const phases: PhaseSummary[] = plan?.phases ?? [];
  return `(phases: ${phases.length === 0 ? 'none' : phases.map((phase) => phase.phase).join(', ')})`;
}

function names(list: readonly string[]): string {
  return list.length === 0 ? 'none' : list.join(', ');
}
