import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { exportRunMetrics } from '../metrics/backfill.ts';

/** An ISO 8601 instant (`2026-11-20T09:00:00Z`) as epoch ms. */
export function parseStart(value: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d\d-\d\d/.test(value) || Number.isNaN(ms))
    throw new InvalidArgumentError('expected an ISO 8601 time such as 2026-11-20T09:00:00Z.');
  return ms;
}

export const START_HELP =
  "wall time of the run's virtual 0, ISO 8601 (default: a whole minute 1 day before now, earlier for runs longer than 21 h, so every sample is in the past and outside the ~3 h head block Prometheus is still writing)";

export function exportMetricsCommand(): Command {
  return new Command('export-metrics')
    .description("Write a run's metrics as OpenMetrics text with timestamps (one sample per virtual minute)")
    .argument('<run-dir>', 'a results folder written by phasebench run')
    .option('-p, --plan <names...>', 'only these plans (default: every plan of the run)')
    .option('-o, --out <file>', "output file, '-' for stdout (default: <run-dir>/metrics.om)")
    .option('--start <time>', START_HELP, parseStart)
    .addHelpText(
      'after',
      `
Every series carries the labels run (the results folder's name) and plan; the names are in
harness/metrics/names.ts. Virtual time t is written at wall time start + t.

Examples:
  $ phasebench export-metrics results/flagship-10k-s42-20261122T030710
  $ phasebench export-metrics results/bes01 --plan phased --start 2026-11-20T09:00:00Z --out - | promtool check metrics
  $ promtool tsdb create-blocks-from openmetrics results/bes01/metrics.om data/   (or: phasebench backfill)`,
    )
    .action(async (runDir: string, options: { plan?: string[]; out?: string; start?: number }) => {
      const out = options.out ?? join(runDir, 'metrics.om');
      const result = await exportRunMetrics(runDir, out, {
        plans: options.plan,
        startMs: options.start,
        now: new Date(),
      });
      if (out === '-') return;
      console.error(
        `Wrote ${result.series.toLocaleString('en-US')} series, ${result.samples.toLocaleString('en-US')} samples ` +
          `of ${result.plans.map((p) => p.plan).join(', ')} to ${out}`,
      );
      console.error(
        pc.dim(
          `Wall time ${new Date(result.firstSampleMs).toISOString()} .. ${new Date(result.lastSampleMs).toISOString()}`,
        ),
      );
    });
}
