import { resolve } from 'node:path';
import { Command } from 'commander';
import pc from 'picocolors';
import { backfillRun } from '../metrics/backfill.ts';
import { parseStart, START_HELP } from './export-metrics.ts';

export function backfillCommand(): Command {
  return new Command('backfill')
    .description(
      "Backfill a run's metrics into a Prometheus TSDB folder (promtool tsdb create-blocks-from openmetrics)",
    )
    .argument('<run-dir>', 'a results folder written by phasebench run')
    .requiredOption('--tsdb <dir>', 'the Prometheus data folder to write blocks into (created if missing)')
    .option('-p, --plan <names...>', 'only these plans (default: every plan of the run)')
    .option('--start <time>', START_HELP, parseStart)
    .option('--promtool <path>', 'the promtool binary (default: $PROMTOOL or promtool on the PATH)')
    .addHelpText(
      'after',
      `
Needs promtool (Debian/Ubuntu: apt-get install prometheus).

Examples:
  $ phasebench backfill results/flagship-10k-s42-20261122T030710 --tsdb .cache/prometheus/flagship
  $ PROMETHEUS_TSDB=.cache/prometheus/flagship bash scripts/prometheus.sh up`,
    )
    .action(
      async (
        runDir: string,
        options: { tsdb: string; plan?: string[]; start?: number; promtool?: string },
      ) => {
        const tsdb = resolve(options.tsdb);
        const result = await backfillRun(runDir, {
          tsdb,
          plans: options.plan,
          startMs: options.start,
          promtool: options.promtool,
          now: new Date(),
        });
        const from = new Date(result.firstSampleMs).toISOString();
        const to = new Date(result.lastSampleMs).toISOString();
        console.log(
          `Backfilled ${result.samples.toLocaleString('en-US')} samples (${result.series.toLocaleString('en-US')} series) ` +
            `of ${result.plans.map((p) => p.plan).join(', ')} into ${tsdb}`,
        );
        console.log(`The run is placed at ${from} .. ${to}.`);
        console.log(`
Point Prometheus at it (retention must reach back to ${from.slice(0, 10)}):
  ${pc.bold(`PROMETHEUS_TSDB=${tsdb} bash scripts/prometheus.sh up`)}      # http://127.0.0.1:19090, 10y retention
or
  prometheus --storage.tsdb.path=${tsdb} --storage.tsdb.retention.time=10y --config.file=deploy/prometheus/standalone.yml
A Prometheus already running on that folder loads new blocks at its next start or compaction.
Query it at http://127.0.0.1:19090 (e.g. max_over_time(phasebench_domain_queue_depth_jobs[4d])), or
add it as a Prometheus datasource to a Grafana and import dashboards/*.json; set the time range
to ${from} .. ${to}. (docker compose's Grafana reads compose's Prometheus: see docker-compose.yml.)`);
      },
    );
}
