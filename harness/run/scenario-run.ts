/**
 * Runs every plan of a scenario over one fleet (paired comparison: the same users, devices and
 * random draws in every plan), streams each plan's log into the results folder and writes the
 * summary. Listeners (progress bars) only observe; they never change what is computed.
 */

import { generateFleet } from '../domain/fleet.ts';
import { PhasebenchError } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { StreamingLogWriter } from '../results/log-writer.ts';
import { eventsPath, prepareRunDir, SUMMARY_FILE, writeJson } from '../results/store.ts';
import { ASSUMPTIONS, type Scenario } from '../scenario/schema.ts';
import { SeededRandom } from '../sim/random.ts';
import { type PlanRun, runPlan } from '../sim/run.ts';

export interface ScenarioRunOptions {
  /** Plans to run; default every plan of the scenario. */
  plans?: string[];
  /** Results folder; when omitted nothing is written (sweeps, tests). */
  outDir?: string;
  wallClock?: () => number;
  onPlanStart?: (plan: string, index: number, total: number) => void;
  onProgress?: (plan: string, virtualMs: number, horizonMs: number) => void;
  onPlanDone?: (run: PlanRun) => void;
}

export interface ScenarioRun {
  summary: RunSummary;
  runs: PlanRun[];
}

export async function runScenario(
  scenario: Scenario,
  options: ScenarioRunOptions = {},
): Promise<ScenarioRun> {
  // A commanded plan's moves come from outside the run (k6, live): in virtual time it moves nobody.
  const commanded = Object.keys(scenario.plans).filter((name) => scenario.plans[name]!.kind === 'commanded');
  const plans = options.plans ?? Object.keys(scenario.plans).filter((name) => !commanded.includes(name));
  for (const plan of plans) {
    if (!(plan in scenario.plans)) {
      throw new Error(
        `scenario ${scenario.name} has no plan named '${plan}' (plans: ${Object.keys(scenario.plans).join(', ')})`,
      );
    }
    if (commanded.includes(plan)) {
      throw new PhasebenchError(
        'PLAN_COMMANDED',
        `plan '${plan}' of scenario ${scenario.name} is commanded: its moves come from outside the run, so it runs live (phasebench live <scenario> --plan ${plan}), not in virtual time`,
        { exitCode: 2 },
      );
    }
  }
  if (plans.length === 0) {
    throw new PhasebenchError(
      'NO_PLANS',
      `scenario ${scenario.name} has only commanded plans (${commanded.join(', ')}): run them live with phasebench live`,
      { exitCode: 2 },
    );
  }
  if (options.outDir) await prepareRunDir(options.outDir);
  const random = new SeededRandom(scenario.seed);
  const fleet = generateFleet(scenario, random);
  const runs: PlanRun[] = [];
  for (const [index, plan] of plans.entries()) {
    options.onPlanStart?.(plan, index, plans.length);
    const writer = options.outDir ? new StreamingLogWriter(eventsPath(options.outDir, plan)) : null;
    const run = runPlan(scenario, plan, {
      fleet,
      random,
      keepEvents: false,
      wallClock: options.wallClock,
      onLine: writer ? (line) => writer.writeLine(line) : undefined,
      onProgress: options.onProgress ? (at, horizon) => options.onProgress!(plan, at, horizon) : undefined,
    });
    writer?.close();
    runs.push(run);
    options.onPlanDone?.(run);
  }
  const summary = summarise(scenario, runs);
  if (options.outDir) {
    await writeJson(options.outDir, 'scenario.json', scenario);
    await writeJson(options.outDir, SUMMARY_FILE, summary);
  }
  return { summary, runs };
}

/** The summary of a scenario's plan runs; a run needs only its plan, metrics and (optionally) runtime. */
export function summarise(
  scenario: Scenario,
  runs: ReadonlyArray<Pick<PlanRun, 'plan' | 'metrics'> & { runtime?: PlanRun['runtime'] }>,
): RunSummary {
  return {
    schema: 'phasebench.summary/1',
    scenario: scenario.name,
    seed: scenario.seed,
    horizonMs: scenario.horizon,
    plans: Object.fromEntries(runs.map((r) => [r.plan, { metrics: r.metrics, runtime: r.runtime }])),
    slos: scenario.slos,
    assumptions: [...ASSUMPTIONS],
  };
}
