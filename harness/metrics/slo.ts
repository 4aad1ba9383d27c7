import type { PlanMetrics, RunSummary } from './summary.ts';

export interface SloCheck {
  name: 'makespan' | 'p95Delivery' | 'peakQueue' | 'strandedShare';
  limit: number;
  /** The plan's value; Infinity for a p95 when pushes were queued and none delivered (a miss). */
  value: number;
  met: boolean;
}

/**
 * A scenario's service-level objectives checked against one plan's metrics. A plan that queued
 * pushes but delivered none has no delivery latency at all: it misses a p95 objective, it does
 * not meet it with 0 ms.
 */
export function checkSlos(slos: RunSummary['slos'], m: PlanMetrics): SloCheck[] {
  const checks: SloCheck[] = [];
  if (slos.makespan !== undefined) {
    checks.push({
      name: 'makespan',
      limit: slos.makespan,
      value: m.makespanMs,
      met: m.makespanMs <= slos.makespan,
    });
  }
  if (slos.p95Delivery !== undefined) {
    const delivered = m.pushDelivery.count > 0 || m.pushes.queued === 0;
    const value = delivered ? m.pushDelivery.p95Ms : Number.POSITIVE_INFINITY;
    checks.push({ name: 'p95Delivery', limit: slos.p95Delivery, value, met: value <= slos.p95Delivery });
  }
  if (slos.peakQueue !== undefined) {
    checks.push({
      name: 'peakQueue',
      limit: slos.peakQueue,
      value: m.peakQueue.domain,
      met: m.peakQueue.domain <= slos.peakQueue,
    });
  }
  if (slos.strandedShare !== undefined) {
    const share = m.users > 0 ? m.stranded.total / m.users : 0;
    checks.push({
      name: 'strandedShare',
      limit: slos.strandedShare,
      value: share,
      met: share <= slos.strandedShare,
    });
  }
  return checks;
}

export function meetsSlos(slos: RunSummary['slos'], m: PlanMetrics): boolean {
  return checkSlos(slos, m).every((c) => c.met);
}
