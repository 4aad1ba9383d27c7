/**
 * The whole comparison of a candidate run against a baseline: per plan the metric table, the
 * phases, the latency distributions, and every threshold result. A plain serialisable object:
 * `--json` prints it, the Markdown and JUnit reports and the terminal table render it.
 */
import type { RunSummary } from '../metrics/summary.ts';
import { commonPlans, evaluateThresholds, type ThresholdResult } from './evaluate.ts';
import type { LoadedSummary } from './load.ts';
import {
  LATENCY_SERIES,
  LATENCY_SERIES_NAMES,
  type LatencySeriesName,
  type MetricUnit,
  PHASE_METRIC_NAMES,
  type PhaseMetricName,
  phaseMetric,
  RUN_METRIC_NAMES,
  runMetric,
} from './metrics.ts';
import { compareLatencyHistograms, DEFAULT_ALPHA, type LatencyComparison } from './stats.ts';
import type { Threshold } from './thresholds.ts';

/** All thresholds on the row passed, one failed, or no threshold looked at it. */
export type Verdict = 'passed' | 'failed' | null;

export interface MetricRow {
  metric: string;
  unit: MetricUnit;
  baseline: number;
  candidate: number;
  verdict: Verdict;
}

export interface PhaseRow {
  phase: number;
  /** Null where the phase is missing from that summary or has no value. */
  values: Record<PhaseMetricName, { baseline: number | null; candidate: number | null; unit: MetricUnit }>;
  verdict: Verdict;
}

export interface PlanComparison {
  plan: string;
  metrics: MetricRow[];
  phases: PhaseRow[];
  latency: Record<LatencySeriesName, LatencyComparison>;
}

export interface SummaryReference {
  path: string;
  scenario: string;
  seed: number;
}

export interface CompareResult {
  schema: 'phasebench.compare/1';
  baseline: SummaryReference;
  candidate: SummaryReference;
  /** True when every threshold result passed. */
  passed: boolean;
  /** The plans present in both summaries, in the candidate's order. */
  plans: PlanComparison[];
  baselineOnlyPlans: string[];
  candidateOnlyPlans: string[];
  thresholds: ThresholdResult[];
}

export function compareSummaries(
  baseline: LoadedSummary,
  candidate: LoadedSummary,
  thresholds: readonly Threshold[],
  alpha = DEFAULT_ALPHA,
): CompareResult {
  const results = evaluateThresholds(thresholds, baseline.summary, candidate.summary);
  const plans = commonPlans(baseline.summary, candidate.summary);
  return {
    schema: 'phasebench.compare/1',
    baseline: reference(baseline),
    candidate: reference(candidate),
    passed: results.every((result) => result.passed),
    plans: plans.map((plan) => comparePlan(plan, baseline.summary, candidate.summary, results, alpha)),
    baselineOnlyPlans: Object.keys(baseline.summary.plans).filter((plan) => !plans.includes(plan)),
    candidateOnlyPlans: Object.keys(candidate.summary.plans).filter((plan) => !plans.includes(plan)),
    thresholds: results,
  };
}

function comparePlan(
  plan: string,
  baselineSummary: RunSummary,
  candidateSummary: RunSummary,
  results: readonly ThresholdResult[],
  alpha: number,
): PlanComparison {
  const baseline = baselineSummary.plans[plan]!.metrics;
  const candidate = candidateSummary.plans[plan]!.metrics;
  const planResults = results.filter((result) => result.plan === plan);

  const metrics = RUN_METRIC_NAMES.map((metric): MetricRow => {
    const { unit, read } = runMetric(metric);
    const verdict = verdictOf(
      planResults.filter((result) => result.metric === metric && result.phase === undefined),
    );
    return { metric, unit, baseline: read(baseline), candidate: read(candidate), verdict };
  });

  const phaseNumbers = [
    ...new Set([...baseline.phases, ...candidate.phases].map((phase) => phase.phase)),
  ].sort((a, b) => a - b);
  const phases = phaseNumbers.map((phaseNumber): PhaseRow => {
    const baselinePhase = baseline.phases.find((phase) => phase.phase === phaseNumber);
    const candidatePhase = candidate.phases.find((phase) => phase.phase === phaseNumber);
    const values = Object.fromEntries(
      PHASE_METRIC_NAMES.map((metric) => {
        const { unit, read } = phaseMetric(metric);
        return [
          metric,
          {
            baseline: baselinePhase === undefined ? null : read(baselinePhase),
            candidate: candidatePhase === undefined ? null : read(candidatePhase),
            unit,
          },
        ];
      }),
    ) as PhaseRow['values'];
    return {
      phase: phaseNumber,
      values,
      verdict: verdictOf(planResults.filter((r) => r.phase === phaseNumber)),
    };
  });

  const latency = Object.fromEntries(
    LATENCY_SERIES_NAMES.map((series) => {
      const read = LATENCY_SERIES[series];
      return [series, compareLatencyHistograms(read(baseline).histogram, read(candidate).histogram, alpha)];
    }),
  ) as Record<LatencySeriesName, LatencyComparison>;

  return { plan, metrics, phases, latency };
}

function verdictOf(results: readonly ThresholdResult[]): Verdict {
  if (results.length === 0) return null;
  return results.every((result) => result.passed) ? 'passed' : 'failed';
}

function reference(loaded: LoadedSummary): SummaryReference {
  return { path: loaded.path, scenario: loaded.summary.scenario, seed: loaded.summary.seed };
}

/** How many threshold results failed, the ones that could not be checked included. */
export function failedCount(result: CompareResult): number {
  return result.thresholds.filter((threshold) => !threshold.passed).length;
}
