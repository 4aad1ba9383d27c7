/**
 * Same scenario + same seed in virtual time => byte-identical log, for every shipped scenario.
 * A different seed must change the random draws, not just the seed recorded in RunStarted.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { runScenario } from '../run/scenario-run.ts';
import { loadScenario } from '../scenario/load.ts';
import type { Scenario } from '../scenario/schema.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { runPlan } from './run.ts';

const scenariosDir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
const shipped = readdirSync(scenariosDir)
  .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts'))
  .sort();

interface Fingerprint {
  logSha256: string;
  /** Hash of the facts alone (type, key, time, data), leaving out RunStarted and the envelope, which name the seed. */
  factsSha256: string;
  events: number;
}

function fingerprint(scenario: Scenario, plan: string): Fingerprint {
  const facts = createHash('sha256');
  const onEvent = (e: StoredEvent): void => {
    if (e.type !== 'RunStarted') facts.update(`${JSON.stringify([e.type, e.key, e.at, e.data])}\n`);
  };
  const run = runPlan(scenario, plan, { keepEvents: false, onEvent });
  return { logSha256: run.metrics.logSha256, factsSha256: facts.digest('hex'), events: run.metrics.events };
}

describe('shipped scenarios are deterministic', () => {
  it('ships scenarios to check', () => {
    expect(shipped.length).toBeGreaterThanOrEqual(4);
  });

  it.each(shipped)('%s: its first plan gives the same log twice, and another with seed + 1', async (file) => {
    const scenario = await loadScenario(`${scenariosDir}${file}`);
    const plan = Object.keys(scenario.plans)[0]!;
    const first = fingerprint(scenario, plan);
    const again = fingerprint(scenario, plan);
    expect(first.events).toBeGreaterThan(1_000);
    expect(again).toEqual(first);

    const reseeded = fingerprint({ ...scenario, seed: scenario.seed + 1 }, plan);
    expect(reseeded.logSha256).not.toBe(first.logSha256);
    expect(reseeded.factsSha256).not.toBe(first.factsSha256);
  });
});

describe('plans over one fleet', () => {
  const scenario = tinyScenario({
    name: 'paired',
    seed: 9,
    instances: 3,
    horizon: '2d',
    fleet: quietFleet(200, {
      softwareVersions: { '4.5': 0.7, '4.2': 0.2, '3.8': 0.1 },
      coverage: { alwaysOnlineShare: 0.3 },
      link: [{ name: 'EDGE', share: 1, bandwidthKbps: { kind: 'uniform', min: 100, max: 200 }, rttMs: 400 }],
      problemAccountShare: 0.05,
    }),
    engine: { serverProcessing: { kind: 'lognormal', median: 800, sigma: 0.5 } },
    domain: { moveDetectionPoll: '15m' },
    plans: {
      collapse: { kind: 'collapse', from: ['BES01B', 'BES01C'], into: 'BES01A' },
      phased: { kind: 'phased', into: { newInstances: {} }, size: 50, every: '30m' },
      policy: { kind: 'itPolicyChange' },
    },
  });

  it('gives each plan the same log whether run alone, first or last (common random numbers)', async () => {
    const forward = await runScenario(scenario);
    const backward = await runScenario(scenario, { plans: ['policy', 'phased', 'collapse'] });
    for (const plan of Object.keys(scenario.plans)) {
      const alone = runPlan(scenario, plan, { keepEvents: false }).metrics.logSha256;
      expect(forward.summary.plans[plan]!.metrics.logSha256).toBe(alone);
      expect(backward.summary.plans[plan]!.metrics.logSha256).toBe(alone);
    }
    const hashes = new Set(forward.runs.map((r) => r.metrics.logSha256));
    expect(hashes.size).toBe(3);
  });
});
