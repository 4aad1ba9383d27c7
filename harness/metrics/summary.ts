/**
 * The shape of `summary.json`: a plain, serialisable object. Everything under `metrics` is a
 * projection of the event log and is identical whether computed live, after the run or by
 * `phasebench replay`. `runtime` holds the wall-clock figures of one execution and is not.
 * Times are milliseconds (virtual time since run start for instants).
 */
import type { StrandedReason } from '../domain/events.ts';

export interface LatencyStats {
  count: number;
  minMs: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
  /** hdr-histogram-js compressed base64, for merging and statistical comparison. */
  histogram: string;
}

export interface PhaseSummary {
  phase: number;
  users: number;
  startedAt: number;
  convergedAt: number | null;
  /** convergedAt - startedAt, or null if the phase never converged before the horizon. */
  convergenceMs: number | null;
  converged: number;
  stranded: number;
  peakQueue: number;
  p95DeliveryMs: number | null;
}

export interface PlanMetrics {
  plan: string;
  planKind: string;
  /**
   * The rollout's duration on the server side: from the plan's first action until the Policy
   * Services have handed the last job to the network (or the last move / activation failed).
   * Device-side tails (coverage, cradling) are in `convergenceMs` and `userMigration`.
   */
  makespanMs: number;
  /** From the plan's first action until the last device converged or was found stranded (horizon if work is still pending). */
  convergenceMs: number;
  users: number;
  usersConverged: number;
  convergedShare: number;
  pushDelivery: LatencyStats;
  userMigration: LatencyStats;
  peakQueue: { domain: number; byInstance: Record<string, number> };
  jobsPerMinute: { peakDomain: number; meanDomain: number; peakByInstance: Record<string, number> };
  /** Largest number of jobs dispatched in any 60 s sliding window (checked against the throttle). */
  maxJobsInAnyMinute: { domain: number; byInstance: Record<string, number> };
  pushes: { queued: number; acknowledged: number; expired: number; pending: number; resent: number };
  stranded: { total: number; byReason: Partial<Record<StrandedReason, number>> };
  srpConflicts: Array<{ srpId: string; instance: string; at: number; devicesHolding: number }>;
  devicesCutOff: number;
  servers: { initial: number; peak: number; added: number };
  srpCredentials: { initial: number; peak: number; added: number };
  userMinutesWithoutService: number;
  phases: PhaseSummary[];
  events: number;
  /** Converged share and domain queue depth sampled once per virtual minute, for charts. */
  timeline: { minute: number[]; queue: number[]; convergedShare: number[] };
  logSha256: string;
}

export interface PlanRuntime {
  wallMs: number;
  eventsPerSecond: number;
}

export interface RunSummary {
  schema: 'phasebench.summary/1';
  scenario: string;
  seed: number;
  horizonMs: number;
  plans: Record<string, { metrics: PlanMetrics; runtime?: PlanRuntime }>;
  slos: { makespan?: number; p95Delivery?: number; peakQueue?: number; strandedShare?: number };
  assumptions: Array<{ key: string; value: string; source: string; note: string }>;
}
