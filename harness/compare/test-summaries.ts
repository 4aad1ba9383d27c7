/**
 * Test support: builds `summary.json` objects for compare's tests. Latencies are recorded into
 * real hdr-histogram-js histograms and their percentiles read back from them, so every summary
 * carries the encoding a run writes, never a pasted string. Not used outside tests.
 */
import { build, encodeIntoCompressedBase64, type Histogram } from 'hdr-histogram-js';
import type { LatencyStats, PhaseSummary, PlanMetrics, RunSummary } from '../metrics/summary.ts';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** A histogram of every value (milliseconds, rounded to integers). */
export function recordHistogram(valuesMs: readonly number[]): Histogram {
  const histogram = build();
  for (const value of valuesMs) histogram.recordValue(Math.round(value));
  return histogram;
}

/** The compressed base64 encoding summaries carry. */
export function encodeHistogram(valuesMs: readonly number[]): string {
  return encodeIntoCompressedBase64(recordHistogram(valuesMs));
}

/** LatencyStats whose percentiles come from a real histogram of `valuesMs`. */
export function latencyStats(valuesMs: readonly number[]): LatencyStats {
  const histogram = recordHistogram(valuesMs);
  const empty = valuesMs.length === 0;
  return {
    count: histogram.totalCount,
    minMs: empty ? 0 : histogram.minNonZeroValue,
    p50Ms: histogram.getValueAtPercentile(50),
    p95Ms: histogram.getValueAtPercentile(95),
    p99Ms: histogram.getValueAtPercentile(99),
    maxMs: empty ? 0 : histogram.maxValue,
    meanMs: empty ? 0 : histogram.mean,
    histogram: encodeIntoCompressedBase64(histogram),
  };
}

/** `count` values spread evenly over [fromMs, toMs]. */
export function spread(count: number, fromMs: number, toMs: number): number[] {
  return Array.from({ length: count }, (_, i) => fromMs + ((toMs - fromMs) * i) / Math.max(1, count - 1));
}

export interface PhaseSpec {
  phase: number;
  convergenceMs?: number | null;
  peakQueue?: number;
  p95DeliveryMs?: number | null;
}

export interface PlanSpec {
  makespanMs?: number;
  /** Default: makespan plus 30 minutes of device-side tail. */
  convergenceMs?: number;
  pushDeliveryMs?: readonly number[];
  userMigrationMs?: readonly number[];
  peakQueue?: number;
  stranded?: number;
  srpConflicts?: number;
  userMinutesWithoutService?: number;
  convergedShare?: number;
  phases?: readonly PhaseSpec[];
}

const DEFAULT_PHASES: readonly PhaseSpec[] = [
  { phase: 1, convergenceMs: 20 * MINUTE_MS, peakQueue: 400, p95DeliveryMs: 90_000 },
  { phase: 2, convergenceMs: 25 * MINUTE_MS, peakQueue: 600, p95DeliveryMs: 120_000 },
];

export function planMetrics(plan: string, spec: PlanSpec = {}): PlanMetrics {
  const users = 1_000;
  const convergedShare = spec.convergedShare ?? 1;
  const stranded = spec.stranded ?? 0;
  let startedAt = 0;
  const phases = (spec.phases ?? DEFAULT_PHASES).map((phase): PhaseSummary => {
    const convergenceMs = phase.convergenceMs === undefined ? 20 * MINUTE_MS : phase.convergenceMs;
    const summary: PhaseSummary = {
      phase: phase.phase,
      users: 500,
      startedAt,
      convergedAt: convergenceMs === null ? null : startedAt + convergenceMs,
      convergenceMs,
      converged: 500,
      stranded: 0,
      peakQueue: phase.peakQueue ?? 500,
      p95DeliveryMs: phase.p95DeliveryMs === undefined ? 60_000 : phase.p95DeliveryMs,
    };
    startedAt += HOUR_MS;
    return summary;
  });
  const makespanMs = spec.makespanMs ?? 8 * HOUR_MS;
  return {
    plan,
    planKind: 'phased',
    makespanMs,
    convergenceMs: spec.convergenceMs ?? makespanMs + 30 * MINUTE_MS,
    users,
    usersConverged: Math.round(users * convergedShare),
    convergedShare,
    pushDelivery: latencyStats(spec.pushDeliveryMs ?? spread(200, 1_000, 120_000)),
    userMigration: latencyStats(spec.userMigrationMs ?? spread(200, 60_000, 30 * MINUTE_MS)),
    peakQueue: { domain: spec.peakQueue ?? 1_000, byInstance: { 'cucm-1': spec.peakQueue ?? 1_000 } },
    jobsPerMinute: { peakDomain: 40, meanDomain: 20, peakByInstance: { 'cucm-1': 40 } },
    maxJobsInAnyMinute: { domain: 40, byInstance: { 'cucm-1': 40 } },
    pushes: { queued: 1_000, acknowledged: 1_000, expired: 0, pending: 0, resent: 0 },
    stranded: { total: stranded, byReason: stranded === 0 ? {} : { migrationFailed: stranded } },
    srpConflicts: Array.from({ length: spec.srpConflicts ?? 0 }, (_, i) => ({
      srpId: `srp-${i}`,
      instance: 'cucm-1',
      at: i * MINUTE_MS,
      devicesHolding: 2,
    })),
    devicesCutOff: 0,
    servers: { initial: 2, peak: 2, added: 0 },
    srpCredentials: { initial: 10, peak: 10, added: 0 },
    userMinutesWithoutService: spec.userMinutesWithoutService ?? 120,
    phases,
    events: 10_000,
    timeline: { minute: [0, 1], queue: [0, 10], convergedShare: [0, 0.01] },
    logSha256: '0'.repeat(64),
  };
}

export function runSummary(
  plans: Record<string, PlanSpec>,
  options: { scenario?: string; seed?: number } = {},
): RunSummary {
  return {
    schema: 'phasebench.summary/1',
    scenario: options.scenario ?? 'flagship-10k',
    seed: options.seed ?? 42,
    horizonMs: 24 * HOUR_MS,
    plans: Object.fromEntries(
      Object.entries(plans).map(([plan, spec]) => [plan, { metrics: planMetrics(plan, spec) }]),
    ),
    slos: {},
    assumptions: [],
  };
}

export { HOUR_MS, MINUTE_MS };
