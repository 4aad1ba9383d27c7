import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { defaultRunDir, writeText } from '../results/store.ts';
import { runScenario } from '../run/scenario-run.ts';
import { loadScenario } from '../scenario/load.ts';
import type { Scenario } from '../scenario/schema.ts';
import { comparisonMarkdown, comparisonTable, verdict } from './output.ts';
import { RunProgress } from './progress.ts';

export function parseSeed(value: string): number {
  const seed = Number(value);
  if (!Number.isInteger(seed) || seed < 0) throw new InvalidArgumentError('expected a non-negative integer.');
  return seed;
}

/** Loads a scenario and applies the command-line overrides every command shares. */
export async function scenarioFromArgs(path: string, options: { seed?: number }): Promise<Scenario> {
  const scenario = await loadScenario(path);
  return options.seed === undefined ? scenario : { ...scenario, seed: options.seed };
}

export function runCommand(): Command {
  return new Command('run')
    .description("Run a scenario's plans in virtual time over one fleet and compare them")
    .argument('<scenario>', 'scenario file (TypeScript), e.g. scenarios/flagship.ts')
    .option('-p, --plans <names...>', 'run only these plans (default: all)')
    .option('-s, --seed <n>', "override the scenario's seed", parseSeed)
    .option('-o, --out <dir>', 'results folder (default: results/<scenario>-s<seed>-<timestamp>)')
    .option('--json', 'print summary.json to stdout instead of the table')
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
Examples:
  $ phasebench run scenarios/flagship.ts
  $ phasebench run scenarios/bes01-collapse.ts --plans collapse phased --seed 9
  $ phasebench run scenarios/it-policy-10k.ts --json > summary.json

Writes results/<run-id>/: events/<plan>.ndjson.gz (the logs), summary.json, comparison.md,
scenario.json, report.html (charts, readable offline) and key-chart.png.
'phasebench replay <dir>' rebuilds the summary from the logs alone.`,
    )
    .action(
      async (
        path: string,
        options: { plans?: string[]; seed?: number; out?: string; json?: boolean; progress: boolean },
      ) => {
        const scenario = await scenarioFromArgs(path, options);
        const outDir = options.out ?? defaultRunDir(scenario, new Date());
        const progress = new RunProgress(options.progress && !options.json);
        const { summary } = await runScenario(scenario, {
          plans: options.plans,
          outDir,
          wallClock: () => performance.now(),
          onPlanStart: (plan, i, n) => progress.startPlan(plan, i, n, scenario.horizon),
          onProgress: (_plan, at) => progress.update(at),
          onPlanDone: () => progress.stopPlan(),
        });
        await writeText(outDir, 'comparison.md', comparisonMarkdown(summary));
        // Loaded here, not at the top: the chart renderer takes a second or two to load, and only
        // commands that draw a report should pay for it.
        const { writeReport } = await import('../report/write.ts');
        const report = await writeReport(outDir);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
          return;
        }
        const users = scenario.fleet.users.toLocaleString('en-US');
        console.log(
          pc.bold(`${scenario.name}`) +
            ` — ${scenario.description || `${users} users`} (seed ${scenario.seed})`,
        );
        console.log(comparisonTable(summary));
        console.log(verdict(summary));
        console.log(pc.dim(`Results: ${outDir}`));
        console.log(pc.dim(`Report: ${report.html}`));
      },
    );
}
