import Table from 'cli-table3';
import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import type { StoredEvent } from '../domain/events.ts';
import { PhasebenchError } from '../errors.ts';
import { kafkaClient } from '../live/kafka-config.ts';
import { LiveMetrics, type MetricsServer, startMetricsServer } from '../live/metrics.ts';
import { type LiveRun, runLive } from '../live/run-live.ts';
import { buildRegistry } from '../metrics/names.ts';
import { StreamingLogWriter } from '../results/log-writer.ts';
import { defaultRunDir, eventsPath, prepareRunDir, SUMMARY_FILE, writeJson } from '../results/store.ts';
import { summarise } from '../run/scenario-run.ts';
import { runPlan } from '../sim/run.ts';
import { formatMs } from './output.ts';
import { RunProgress } from './progress.ts';
import { parseSeed, scenarioFromArgs } from './run.ts';
import { ensureTopics, port as parsePort } from './services.ts';

/** How long /metrics stays up after the run for a last scrape: Prometheus's default interval, and some. */
const LAST_SCRAPE_WAIT_MS = 20_000;

function positive(value: string): number {
  const n = Number(value);
  if (!(n > 0) || !Number.isFinite(n)) throw new InvalidArgumentError('expected a positive number.');
  return n;
}

interface LiveOptions {
  plan?: string;
  timeScale: number;
  brokers: string;
  topicPrefix: string;
  seed?: number;
  out?: string;
  compareSim?: boolean;
  tolerance: number;
  progress: boolean;
  external?: boolean;
  metricsPort?: number;
  metricsHost: string;
}

export function liveCommand(): Command {
  return new Command('live')
    .description(
      "Run a scenario's plan live: paced by the wall clock, every push's acknowledgement through Kafka",
    )
    .argument('<scenario>', 'scenario file (TypeScript)')
    .option('-p, --plan <name>', 'the plan to run (default: the first)')
    .option(
      '-t, --time-scale <n>',
      'run time passes this many times faster than the wall clock',
      positive,
      300,
    )
    .option(
      '-b, --brokers <list>',
      'Kafka bootstrap servers, comma-separated (env KAFKA_BROKERS)',
      process.env.KAFKA_BROKERS ?? '127.0.0.1:19092',
    )
    .option('--topic-prefix <prefix>', 'prefix for the phasebench.* topic names', '')
    .option('-s, --seed <n>', "override the scenario's seed", parseSeed)
    .option('-o, --out <dir>', 'results folder (default: results/<scenario>-s<seed>-<timestamp>)')
    .option(
      '--compare-sim',
      'also run the plan in virtual time and report the agreement (exit 1 beyond --tolerance)',
    )
    .option(
      '--tolerance <fraction>',
      'largest relative difference in makespan and p95 delivery',
      positive,
      0.15,
    )
    .option(
      '--external',
      "use running 'phasebench engine' and 'phasebench fleet' services instead of starting one of each in this process",
    )
    .option(
      '--metrics-port <n>',
      'serve the run live on /metrics and /healthz on this port, for Prometheus (env PHASEBENCH_METRICS_PORT; default: off)',
      parsePort,
      process.env.PHASEBENCH_METRICS_PORT ? Number(process.env.PHASEBENCH_METRICS_PORT) : undefined,
    )
    .option(
      '--metrics-host <host>',
      'address /metrics listens on (env PHASEBENCH_METRICS_HOST; 0.0.0.0 in a container)',
      process.env.PHASEBENCH_METRICS_HOST ?? '127.0.0.1',
    )
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
Needs a broker: 'npm run kafka:up' starts one on 127.0.0.1:19092. Topics are created if missing.
Without --external the driver starts one engine worker and one fleet worker in its own process,
members of the same consumer groups as 'phasebench engine' and 'phasebench fleet'.

Examples:
  $ phasebench live scenarios/bes01-collapse.ts --plan phased --time-scale 600 --compare-sim
  $ phasebench live my-scenario.ts --brokers 127.0.0.1:19092 --out results/live-1
  $ phasebench engine & phasebench engine & phasebench fleet &
  $ phasebench live scenarios/it-policy-10k.ts --external --time-scale 600
  $ phasebench live scenarios/flagship.ts --metrics-port 9464     (Prometheus scrapes 127.0.0.1:9464)`,
    )
    .action(async (path: string, options: LiveOptions) => {
      const scenario = await scenarioFromArgs(path, options);
      const plan = options.plan ?? Object.keys(scenario.plans)[0]!;
      if (!(plan in scenario.plans)) {
        throw new PhasebenchError(
          'PLAN_NOT_FOUND',
          `scenario ${scenario.name} has no plan named '${plan}' (plans: ${Object.keys(scenario.plans).join(', ')})`,
          { exitCode: 2 },
        );
      }
      const commanded = scenario.plans[plan]!.kind === 'commanded';
      if (commanded && options.compareSim) {
        throw new PhasebenchError(
          'COMPARE_SIM_COMMANDED',
          `--compare-sim: plan '${plan}' is commanded (its moves come from outside the run, e.g. k6), so there is no virtual-time run of it to compare with`,
          { exitCode: 2 },
        );
      }
      const kafka = kafkaClient({ brokers: options.brokers.split(',').map((b) => b.trim()) });
      const topics = await ensureTopics(kafka, options);

      const outDir = options.out ?? defaultRunDir(scenario, new Date());
      await prepareRunDir(outDir);
      const metrics = options.metricsPort === undefined ? undefined : await serveMetrics(options);
      const progress = new RunProgress(options.progress);
      progress.startPlan(`${plan} live x${options.timeScale}`, 0, 1, scenario.horizon);
      let live: LiveRun;
      try {
        live = await runLive(scenario, plan, {
          kafka,
          topics,
          timeScale: options.timeScale,
          runSuffix: new Date().toISOString().replace(/[:]/g, '-'),
          inProcess: !options.external,
          onProgress: (at) => progress.update(at),
          onEvent: metrics?.apply,
          onStart: (run, startedAt) => {
            if (!commanded) return;
            // What a load generator needs to command the run's moves onto its timeline.
            progress.log(
              `Run ${run} waits for ${(scenario.plans[plan] as { moves: number }).moves} moveUser commands on ${topics.commands.name}. With k6:\n` +
                `  "$(bash scripts/k6.sh path)" run -e RUN='${run}' -e STARTED_AT=${startedAt} -e TIME_SCALE=${options.timeScale} ` +
                `-e BROKERS=${options.brokers} -e TOPIC=${topics.commands.name} scenarios/k6/kafka-phased-vs-burst.ts`,
            );
          },
        }).finally(() => progress.stopPlan());
        // Someone scrapes: let them read the run's final values before the server goes.
        if (metrics && metrics.server.scrapes > 0) {
          console.log(
            pc.dim(
              `Waiting up to ${LAST_SCRAPE_WAIT_MS / 1000} s for a last scrape of ${metrics.server.url}/metrics`,
            ),
          );
          await metrics.server.scraped(LAST_SCRAPE_WAIT_MS);
        }
      } finally {
        await metrics?.server.close();
      }

      const writer = new StreamingLogWriter(eventsPath(outDir, plan));
      for (const e of live.events) writer.write(e);
      writer.close();
      const summary = summarise(scenario, [{ plan, metrics: live.metrics }]);
      await writeJson(outDir, SUMMARY_FILE, summary);
      await writeJson(outDir, 'scenario.json', scenario);

      const m = live.metrics;
      console.log(
        `${pc.bold(`${scenario.name} / ${plan}`)} live at x${options.timeScale}: makespan ${formatMs(m.makespanMs)}, ` +
          `p95 delivery ${formatMs(m.pushDelivery.p95Ms)}, peak queue ${m.peakQueue.domain}, ${m.events} events from the broker` +
          (m.pushes.pending > 0 ? pc.yellow(`, ${m.pushes.pending} pushes still pending`) : ''),
      );
      console.log(pc.dim(`Results: ${outDir}`));
      if (!options.compareSim) return;

      const sim = runPlan(scenario, plan, { keepEvents: false }).metrics;
      const rows: Array<[string, number, number, boolean]> = [
        ['makespan', m.makespanMs, sim.makespanMs, true],
        ['push delivery p95', m.pushDelivery.p95Ms, sim.pushDelivery.p95Ms, true],
        ['push delivery p50', m.pushDelivery.p50Ms, sim.pushDelivery.p50Ms, false],
        ['full convergence', m.convergenceMs, sim.convergenceMs, false],
      ];
      const table = new Table({ head: ['', 'live', 'virtual time', 'difference'] });
      let breached = false;
      for (const [label, a, b, gated] of rows) {
        const diff = b === 0 ? (a === 0 ? 0 : 1) : Math.abs(a - b) / b;
        const bad = gated && diff > options.tolerance;
        breached ||= bad;
        const text = `${(diff * 100).toFixed(1)}%`;
        table.push([label, formatMs(a), formatMs(b), bad ? pc.red(text) : text]);
      }
      console.log(table.toString());
      if (breached) {
        throw new PhasebenchError(
          'LIVE_DISAGREES',
          `the live run differs from virtual time by more than ${(options.tolerance * 100).toFixed(0)}% on makespan or p95 delivery`,
        );
      }
      console.log(pc.green(`Live agrees with virtual time within ${(options.tolerance * 100).toFixed(0)}%.`));
    });
}

/**
 * /metrics and /healthz for the length of the run: LiveMetrics follows the run's events as the
 * driver reads them from the log topic.
 */
async function serveMetrics(
  options: LiveOptions,
): Promise<{ server: MetricsServer; apply: (event: StoredEvent) => void }> {
  const registry = buildRegistry();
  const metrics = new LiveMetrics(registry, { timeScale: options.timeScale });
  let events = 0;
  let lastEventAt: number | null = null;
  const server = await startMetricsServer({
    host: options.metricsHost,
    port: options.metricsPort!,
    registry: registry.registry,
    health: () => ({
      ok: true,
      service: 'live',
      events,
      lastEventAt: lastEventAt === null ? null : new Date(lastEventAt).toISOString(),
    }),
  });
  console.log(pc.dim(`Live metrics on ${server.url}/metrics`));
  return {
    server,
    apply: (event) => {
      events++;
      lastEventAt = Date.now();
      metrics.apply(event);
    },
  };
}
