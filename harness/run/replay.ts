/**
 * Rebuilds a run's summary from its event logs alone, with the same projection the run used,
 * and says whether every number matches the stored summary.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { PhasebenchError } from '../errors.ts';
import { EventHasher } from '../log/codec.ts';
import { readEventsFile } from '../log/file.ts';
import { PlanProjection } from '../metrics/projection.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';
import { eventsPath, readSummary } from '../results/store.ts';

export interface ReplayResult {
  stored: RunSummary;
  replayed: Record<string, PlanMetrics>;
  /** Plans whose replayed metrics differ from the stored ones, with the differing fields. */
  mismatches: Array<{ plan: string; fields: string[] }>;
}

export async function replayPlanLog(path: string): Promise<PlanMetrics> {
  const projection = new PlanProjection();
  const hasher = new EventHasher();
  for await (const event of readEventsFile(path)) {
    hasher.update(event);
    projection.apply(event);
  }
  return projection.result(hasher.digest());
}

export async function replayRun(dir: string): Promise<ReplayResult> {
  const stored = await readSummary(dir);
  const logs = await readdir(join(dir, 'events')).catch(() => [] as string[]);
  const replayed: Record<string, PlanMetrics> = {};
  const mismatches: ReplayResult['mismatches'] = [];
  for (const plan of Object.keys(stored.plans)) {
    if (!logs.includes(`${plan}.ndjson.gz`)) {
      throw new PhasebenchError(
        'REPLAY_LOG_MISSING',
        `${dir} has no event log for plan ${plan} (expected ${eventsPath(dir, plan)})`,
        {
          exitCode: 2,
        },
      );
    }
    const metrics = await replayPlanLog(eventsPath(dir, plan));
    replayed[plan] = metrics;
    const expected = stored.plans[plan]!.metrics;
    const fields = (Object.keys(expected) as Array<keyof PlanMetrics>).filter(
      (k) => !isDeepStrictEqual(expected[k], metrics[k]),
    );
    if (fields.length > 0) mismatches.push({ plan, fields });
  }
  return { stored, replayed, mismatches };
}
