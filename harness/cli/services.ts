/**
 * `phasebench engine` and `phasebench fleet`: long-lived members of live mode's consumer groups.
 * Each serves `/healthz` and `/metrics` on its metrics port (startMetricsServer, as the live
 * driver does), and stops gracefully on SIGTERM or SIGINT: it leaves its group (its partitions go
 * to the other members at once), commits what it has handled, and exits 0. A second signal exits
 * at once.
 *
 * `/metrics`: the process metrics and the service's own (SERVICE_METRICS in names.ts); an engine
 * also shows the runs it hosts, the same families as the driver's `/metrics`, fed with each run's
 * events as they are in the log, until --forget-runs-after past the run's completion (a
 * long-lived engine would otherwise keep every run it ever hosted); a run handed over to another
 * worker is forgotten at once, since its new host shows the whole run. `/healthz`: 200 while the
 * worker consumes, 503 once it has failed or is stopping, with the worker's figures.
 */
import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { PhasebenchError } from '../errors.ts';
import { EngineWorker } from '../live/engine-worker.ts';
import { FleetWorker } from '../live/fleet-worker.ts';
import { createTopics, kafkaClient, type LiveTopics, liveTopics } from '../live/kafka-config.ts';
import {
  LiveMetrics,
  registerEngineMetrics,
  registerFleetMetrics,
  startMetricsServer,
} from '../live/metrics.ts';
import { buildRegistry, processRegistry } from '../metrics/names.ts';

export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65_535)
    throw new InvalidArgumentError('expected a port number (0-65535).');
  return n;
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0)
    throw new InvalidArgumentError('expected a number of seconds (0 or more).');
  return n;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number.');
  return n;
}

interface ServiceOptions {
  brokers: string;
  topicPrefix: string;
  metricsPort: number;
  metricsHost: string;
  sessionTimeout: number;
  forgetRunsAfter: number;
}

function serviceCommand(name: 'engine' | 'fleet', description: string, help: string): Command {
  return new Command(name)
    .description(description)
    .option(
      '-b, --brokers <list>',
      'Kafka bootstrap servers, comma-separated (env KAFKA_BROKERS)',
      process.env.KAFKA_BROKERS ?? '127.0.0.1:19092',
    )
    .option('--topic-prefix <prefix>', 'prefix for the phasebench.* topic names', '')
    .option(
      '--metrics-port <n>',
      'port of /healthz and /metrics; 0 picks a free one (env PHASEBENCH_METRICS_PORT)',
      port,
      Number(process.env.PHASEBENCH_METRICS_PORT ?? 9464),
    )
    .option(
      '--metrics-host <host>',
      'address /healthz and /metrics listen on (env PHASEBENCH_METRICS_HOST; 0.0.0.0 in a container)',
      process.env.PHASEBENCH_METRICS_HOST ?? '127.0.0.1',
    )
    .option(
      '--session-timeout <ms>',
      'how soon the group hands a silent (crashed) member’s partitions to the others',
      positiveInt,
      10_000,
    )
    .option(
      '--forget-runs-after <seconds>',
      "how long a completed run's series stay on /metrics (engine): long enough for a last scrape",
      seconds,
      300,
    )
    .addHelpText('after', help)
    .action(async (options: ServiceOptions) => {
      const kafka = kafkaClient({
        brokers: options.brokers.split(',').map((b) => b.trim()),
        clientId: `phasebench-${name}`,
      });
      const topics = await ensureTopics(kafka, options);
      const session = {
        sessionTimeoutMs: options.sessionTimeout,
        heartbeatIntervalMs: Math.max(100, Math.floor(options.sessionTimeout / 5)),
      };
      // The engine's registry has the run families; the fleet's only what a fleet does.
      const live = name === 'engine' ? buildRegistry() : undefined;
      const registry = live?.registry ?? processRegistry();
      const runs = live && new LiveMetrics(live, { forgetCompletedAfterMs: options.forgetRunsAfter * 1000 });
      const worker =
        name === 'engine'
          ? await EngineWorker.start({
              kafka,
              topics,
              ...session,
              onRunEvents: (events) => {
                for (const event of events) runs!.apply(event);
              },
              onRunStarted: (run, recovered) =>
                console.log(
                  `hosting ${run}` +
                    (recovered > 0 ? ` (taken over: ${recovered} events already in the log)` : ''),
                ),
              onRunEnded: (r) => {
                // Its next host shows the whole run, the events it finds in the log included.
                if (!r.completed) runs!.forget(r.run);
                console.log(
                  `${r.completed ? 'completed' : 'handed over'} ${r.run}: ${r.appendedEvents} events appended, ` +
                    `${r.pushesSent} pushes sent (${r.pushesResent} again), ${r.acksLost} acknowledgements lost`,
                );
              },
            })
          : await FleetWorker.start({ kafka, topics, ...session });
      if (worker instanceof EngineWorker) registerEngineMetrics(registry, () => worker.stats());
      else registerFleetMetrics(registry, () => worker.stats());
      let failed: unknown;
      let stopping: Promise<void> | undefined;
      const endpoint = await startMetricsServer({
        host: options.metricsHost,
        port: options.metricsPort,
        registry,
        health: () => ({
          ok: failed === undefined && stopping === undefined,
          service: name,
          state: failed !== undefined ? 'failed' : stopping !== undefined ? 'stopping' : 'consuming',
          ...(failed === undefined ? {} : { error: (failed as Error).message }),
          ...worker.stats(),
        }),
      });
      console.log(
        `phasebench ${name} ${pc.green('running')}: brokers ${options.brokers}, ` +
          `health ${endpoint.url}/healthz, metrics ${endpoint.url}/metrics (SIGTERM stops it)`,
      );

      const stop = (): Promise<void> => {
        stopping ??= (async () => {
          await worker.stop();
          await endpoint.close();
        })();
        return stopping;
      };
      await new Promise<void>((resolve, reject) => {
        const onSignal = (signal: NodeJS.Signals): void => {
          if (stopping !== undefined) process.exit(130);
          console.log(`${signal}: leaving the group…`);
          stop().then(resolve, reject);
        };
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
        worker.done.then(
          () => resolve(),
          (error: unknown) => {
            failed = error;
            stop().finally(() => reject(error));
          },
        );
      });
      console.log(`phasebench ${name} stopped`);
    });
}

/**
 * Connects to Kafka and creates the live topics (with `topicPrefix`) that do not exist yet: what
 * `phasebench live`, `engine` and `fleet` do before anything else.
 * @throws PhasebenchError KAFKA_UNREACHABLE when no broker answers; KafkaSetupError when the
 *   topics cannot be created or one exists with another partition count
 */
export async function ensureTopics(
  kafka: ReturnType<typeof kafkaClient>,
  options: { brokers: string; topicPrefix: string },
): Promise<LiveTopics> {
  const topics = liveTopics({ prefix: options.topicPrefix });
  const admin = kafka.admin();
  try {
    await admin.connect().catch((cause: unknown) => {
      throw new PhasebenchError(
        'KAFKA_UNREACHABLE',
        `cannot reach Kafka at ${options.brokers} (${(cause as Error).message}); start one with 'npm run kafka:up'`,
        { cause, retriable: true },
      );
    });
    // Its errors name the topics and what is wrong with them: a mismatch is not an unreachable broker.
    await createTopics(admin, Object.values(topics));
  } finally {
    await admin.disconnect().catch(() => {});
  }
  return topics;
}

export function engineCommand(): Command {
  return serviceCommand(
    'engine',
    'Run a push engine worker: hosts the live runs whose start commands land on its partitions',
    `
Members of the 'phasebench-engine' group share the commands topic's partitions; each run (one BES
domain: its Policy Services and throttles) lives on the worker that owns its partition. When a
worker dies, another takes its runs over from the event log after --session-timeout.

/metrics: process metrics, the engine's own (hosted runs, runs ended, messages handled, dead
letters) and the families of each run it hosts, as 'phasebench live --metrics-port' has them,
until --forget-runs-after seconds past the run's completion.
/healthz: 200 while it consumes, 503 once it has failed or is stopping.

Examples:
  $ phasebench engine --metrics-port 9464
  $ phasebench engine --metrics-port 9474 --brokers 127.0.0.1:19092   # a second worker
  $ PHASEBENCH_METRICS_HOST=0.0.0.0 phasebench engine                  # in a container`,
  );
}

export function fleetCommand(): Command {
  return serviceCommand(
    'fleet',
    "Run a fleet worker: the devices' side of live runs, acknowledging pushes when their transfer ends",
    `
Members of the 'phasebench-fleet' group share the pushes topic's partitions.

/metrics: process metrics and the fleet's own (pushes received, acknowledgements sent and
waiting, messages handled, dead letters). /healthz: 200 while it consumes, 503 once it has failed
or is stopping.

Examples:
  $ phasebench fleet --metrics-port 9465
  $ PHASEBENCH_METRICS_HOST=0.0.0.0 phasebench fleet                   # in a container`,
  );
}
