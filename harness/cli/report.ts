/**
 * `phasebench report <dir>`: draws report.html (self-contained, readable offline) and
 * key-chart.png into a run's or a sweep's results folder. `run` and `sweep` do this themselves
 * when they finish; this command redraws an existing folder.
 */
import { Command } from 'commander';
import pc from 'picocolors';

export function reportCommand(): Command {
  return new Command('report')
    .description("Draw a results folder's HTML report (charts inline, no network needed) and key-chart.png")
    .argument(
      '<dir>',
      "a folder written by 'phasebench run' (summary.json) or 'phasebench sweep' (sweep.json)",
    )
    .addHelpText(
      'after',
      `
Writes <dir>/report.html and <dir>/key-chart.png (queue depth over time per plan, with phase
starts marked). Exit codes: 0 written, 1 the files could not be written, 2 the folder holds
neither summary.json nor sweep.json.

Examples:
  $ phasebench report results/flagship-10k-s42-20250101T120000Z
  $ phasebench report results/flagship-10k-sweep-20250101T120000Z`,
    )
    .action(async (dir: string) => {
      // The chart renderer takes a second or two to load; other commands must not pay for it.
      const { writeReport } = await import('../report/write.ts');
      const files = await writeReport(dir);
      console.log(`Report: ${files.html}`);
      console.log(pc.dim(`Key chart: ${files.png}`));
    });
}
