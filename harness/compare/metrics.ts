/**
 * The metrics `phasebench compare` knows: their threshold names, their units and where each one
 * lives in `summary.json`. The threshold parser, the evaluator and both reports read this one
 * catalogue, so a metric added here is comparable, checkable and displayed everywhere.
 */
import type { LatencyStats, PhaseSummary, PlanMetrics } from '../metrics/summary.ts';

/**
 * `ms`: a duration; thresholds accept '15m', '90s', '2h' or a number of milliseconds.
 * `count`, `fraction` (0..1) and `user-minutes`: plain numbers only.
 */
export type MetricUnit = 'ms' | 'count' | 'fraction' | 'user-minutes';

interface RunMetricDefinition {
  unit: MetricUnit;
  read(metrics: PlanMetrics): number;
}

interface PhaseMetricDefinition {
  unit: MetricUnit;
  /** Null when the phase has no value (it never converged, or delivered no push). */
  read(phase: PhaseSummary): number | null;
  /** Why `read` gave null, for a failure message. */
  missingBecause: string;
}

/** The latency histograms of a plan, by the series name thresholds use. */
export const LATENCY_SERIES = {
  push_delivery: (metrics: PlanMetrics): LatencyStats => metrics.pushDelivery,
  user_migration: (metrics: PlanMetrics): LatencyStats => metrics.userMigration,
} as const;
export type LatencySeriesName = keyof typeof LATENCY_SERIES;
export const LATENCY_SERIES_NAMES = Object.keys(LATENCY_SERIES) as LatencySeriesName[];

/** Aggregates a threshold may take of a latency series: `p95(push_delivery)`. */
export const LATENCY_AGGREGATES = ['p50', 'p95', 'p99', 'max'] as const;

// Display order of the report tables is the order of this object.
const RUN_METRICS = {
  makespan: { unit: 'ms', read: (m) => m.makespanMs },
  convergence: { unit: 'ms', read: (m) => m.convergenceMs },
  'p50(push_delivery)': { unit: 'ms', read: (m) => m.pushDelivery.p50Ms },
  'p95(push_delivery)': { unit: 'ms', read: (m) => m.pushDelivery.p95Ms },
  'p99(push_delivery)': { unit: 'ms', read: (m) => m.pushDelivery.p99Ms },
  'max(push_delivery)': { unit: 'ms', read: (m) => m.pushDelivery.maxMs },
  'p50(user_migration)': { unit: 'ms', read: (m) => m.userMigration.p50Ms },
  'p95(user_migration)': { unit: 'ms', read: (m) => m.userMigration.p95Ms },
  'p99(user_migration)': { unit: 'ms', read: (m) => m.userMigration.p99Ms },
  'max(user_migration)': { unit: 'ms', read: (m) => m.userMigration.maxMs },
  peak_queue: { unit: 'count', read: (m) => m.peakQueue.domain },
  stranded: { unit: 'count', read: (m) => m.stranded.total },
  srp_conflicts: { unit: 'count', read: (m) => m.srpConflicts.length },
  user_minutes_without_service: { unit: 'user-minutes', read: (m) => m.userMinutesWithoutService },
  converged_share: { unit: 'fraction', read: (m) => m.convergedShare },
} satisfies Record<string, RunMetricDefinition>;

const PHASE_METRICS = {
  convergence: {
    unit: 'ms',
    read: (p) => p.convergenceMs,
    missingBecause: 'the phase never converged before the horizon',
  },
  peak_queue: { unit: 'count', read: (p) => p.peakQueue, missingBecause: 'no queue depth was recorded' },
  p95_delivery: {
    unit: 'ms',
    read: (p) => p.p95DeliveryMs,
    missingBecause: 'the phase delivered no push',
  },
} satisfies Record<string, PhaseMetricDefinition>;

export type RunMetricName = keyof typeof RUN_METRICS;
export type PhaseMetricName = keyof typeof PHASE_METRICS;

export const RUN_METRIC_NAMES = Object.keys(RUN_METRICS) as RunMetricName[];
export const PHASE_METRIC_NAMES = Object.keys(PHASE_METRICS) as PhaseMetricName[];

export function isRunMetricName(name: string): name is RunMetricName {
  return Object.hasOwn(RUN_METRICS, name);
}

export function isPhaseMetricName(name: string): name is PhaseMetricName {
  return Object.hasOwn(PHASE_METRICS, name);
}

export function runMetric(name: RunMetricName): RunMetricDefinition {
  return RUN_METRICS[name];
}

export function phaseMetric(name: PhaseMetricName): PhaseMetricDefinition {
  return PHASE_METRICS[name];
}
