/**
 * A results folder is enough to rebuild its summary: replaying each plan's stored log through
 * the plan projection gives exactly the metrics the run wrote, and a tampered summary is caught.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { PhasebenchError } from '../errors.ts';
import { readEventsFile } from '../log/file.ts';
import { PlanProjection } from '../metrics/projection.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { eventsPath, SUMMARY_FILE } from '../results/store.ts';
import { arbitraryScenario, quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { replayPlanLog, replayRun } from './replay.ts';
import { runScenario } from './scenario-run.ts';

const root = mkdtempSync(join(tmpdir(), 'phasebench-replay-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = (): string => join(root, `run-${dirs++}`);

/** Three plans over one fleet with coverage gaps, old devices and problem accounts. */
const scenario = tinyScenario({
  name: 'replay',
  seed: 5,
  instances: 3,
  horizon: '2d',
  fleet: quietFleet(120, {
    softwareVersions: { '4.5': 0.8, '3.8': 0.2 },
    coverage: { alwaysOnlineShare: 0.5 },
    problemAccountShare: 0.05,
  }),
  throttle: { inProcessJobs: 5, jobsPerMinutePerService: 10, jobsPerMinuteDomain: 20 },
  domain: { moveDetectionPoll: '15m' },
  plans: {
    collapse: { kind: 'collapse', from: ['BES01B', 'BES01C'], into: 'BES01A', stopWindow: '20m' },
    gated: {
      kind: 'phased',
      into: { newInstances: { srpIdBase: 50 } },
      size: 30,
      gate: { kind: 'queueBelow', depth: 10 },
    },
    policy: { kind: 'itPolicyChange' },
  },
});

async function readEvents(path: string): Promise<StoredEvent[]> {
  const events: StoredEvent[] = [];
  for await (const e of readEventsFile(path)) events.push(e);
  return events;
}

describe('replay of a results folder', () => {
  it('rebuilds every plan’s metrics exactly from its log', async () => {
    const dir = newDir();
    const { summary, runs } = await runScenario(scenario, { outDir: dir });
    const result = await replayRun(dir);
    expect(result.mismatches).toEqual([]);
    expect(Object.keys(result.replayed)).toEqual(['collapse', 'gated', 'policy']);
    for (const run of runs) {
      expect(result.replayed[run.plan]).toEqual(summary.plans[run.plan]!.metrics);
      expect(result.replayed[run.plan]).toEqual(run.metrics);
      expect(run.metrics.events).toBeGreaterThan(0);
    }
  });

  it('hashes the stored log’s bytes: logSha256 is the SHA-256 of the decompressed file', async () => {
    const dir = newDir();
    const { runs } = await runScenario(scenario, { outDir: dir, plans: ['policy'] });
    const bytes = gunzipSync(readFileSync(eventsPath(dir, 'policy')));
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(runs[0]!.metrics.logSha256);
    expect(bytes.toString('utf8').trimEnd().split('\n')).toHaveLength(runs[0]!.metrics.events);
  });

  it('matches for small random scenarios', async () => {
    await fc.assert(
      fc.asyncProperty(arbitraryScenario(), async (s) => {
        const dir = newDir();
        const { runs } = await runScenario(s.scenario, { outDir: dir });
        const result = await replayRun(dir);
        expect(result.mismatches).toEqual([]);
        expect(result.replayed[s.plan]).toEqual(runs[0]!.metrics);
        rmSync(dir, { recursive: true, force: true });
      }),
      { numRuns: 6 },
    );
  });

  it('reports a summary whose makespan was changed after the run', async () => {
    const dir = newDir();
    await runScenario(scenario, { outDir: dir });
    const path = join(dir, SUMMARY_FILE);
    const summary = JSON.parse(readFileSync(path, 'utf8')) as RunSummary;
    summary.plans.gated!.metrics.makespanMs += 1;
    writeFileSync(path, JSON.stringify(summary, null, 2));

    const result = await replayRun(dir);
    expect(result.mismatches).toEqual([{ plan: 'gated', fields: ['makespanMs'] }]);
    expect(result.replayed.gated!.makespanMs).toBe(summary.plans.gated!.metrics.makespanMs - 1);
  });

  it('refuses a folder whose summary names a plan without a log', async () => {
    const dir = newDir();
    await runScenario(scenario, { outDir: dir, plans: ['policy', 'collapse'] });
    unlinkSync(eventsPath(dir, 'collapse'));
    const error = await replayRun(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PhasebenchError);
    expect((error as PhasebenchError).code).toBe('REPLAY_LOG_MISSING');
  });
});

describe('the plan projection under at-least-once delivery', () => {
  it('ignores every event it has already applied: the log applied twice gives the same metrics', async () => {
    const dir = newDir();
    const { runs } = await runScenario(scenario, { outDir: dir, plans: ['collapse'] });
    const path = eventsPath(dir, 'collapse');
    const events = await readEvents(path);
    const hash = runs[0]!.metrics.logSha256;

    const twice = new PlanProjection();
    expect(events.map((e) => twice.apply(e)).every(Boolean)).toBe(true);
    expect(events.map((e) => twice.apply(e)).some(Boolean)).toBe(false);
    const once = await replayPlanLog(path);
    expect(twice.result(hash)).toEqual(once);
    expect(once).toEqual(runs[0]!.metrics);
  });

  it('ignores a redelivered event interleaved with later ones', async () => {
    const dir = newDir();
    const { runs } = await runScenario(scenario, { outDir: dir, plans: ['gated'] });
    const events = await readEvents(eventsPath(dir, 'gated'));
    const projection = new PlanProjection();
    // Each event is delivered again right after its successor (a consumer re-reading a batch).
    events.forEach((e, i) => {
      projection.apply(e);
      if (i > 0) projection.apply(events[i - 1]!);
    });
    expect(projection.result(runs[0]!.metrics.logSha256)).toEqual(runs[0]!.metrics);
  });
});
