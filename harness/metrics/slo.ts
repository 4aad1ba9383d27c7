import type { PlanMetrics, RunSummary } from './summary.ts';

export interface SloCheck {
  name: 'makespan' | 'p95Delivery' | 'peakQueue';
  limit: number;
  value: number;
  met: boolean;
}

/** A scenario's service-level objectives checked against one plan's metrics. */
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
    const v = m.pushDelivery.p95Ms;
    checks.push({ name: 'p95Delivery', limit: slos.p95Delivery, value: v, met: v <= slos.p95Delivery });
  }
  if (slos.peakQueue !== undefined) {
    checks.push({
      name: 'peakQueue',
      limit: slos.peakQueue,
      value: m.peakQueue.domain,
      met: m.peakQueue.domain <= slos.peakQueue,
    });
  }
  return checks;
}

export function meetsSlos(slos: RunSummary['slos'], m: PlanMetrics): boolean {
  return checkSlos(slos, m).every((c) => c.met);
}
