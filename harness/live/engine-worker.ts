/**
 * `phasebench engine`: a member of the `phasebench-engine` consumer group on
 * `phasebench.commands` and `phasebench.device-events`. Every message is validated on the way in
 * (consumer.ts): a malformed one goes to the dead-letter topic with the reason.
 *
 * A `startRun` command makes this worker the run's host (run-host.ts) for as long as it owns the
 * command's partition. The command stays uncommitted until the run has completed, so when this
 * worker dies or a rebalance gives the partition to another member, the new owner receives the
 * same command and takes the run over from the event log. Runs are keyed by run id: several runs
 * spread over the partitions, and so over the workers, while all of one run (its BES domain,
 * whose Policy Services share the domain-wide throttle) lives on exactly one worker at a time.
 *
 * Acknowledgements on the device-events topic, and a commanded run's moveUser commands, are read
 * by each run's host itself (from every partition, filtered by run); the group's share of them is
 * only validated here. Other commands (changeItPolicy, activateDevice) are not carried out by
 * this engine: they are dead-lettered with a reason that says so, rather than dropped.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { StoredEvent } from '../domain/events.ts';
import { PhasebenchError } from '../errors.ts';
import { KafkaEventLog } from '../log/kafka.ts';
import { parseScenario } from '../scenario/load.ts';
import { type ConsumerCounts, DeadLetteringConsumer } from './consumer.ts';
import type { LiveTopics } from './kafka-config.ts';
import { type HostedRun, hostRun } from './run-host.ts';

export const ENGINE_GROUP = 'phasebench-engine';

export interface EngineWorkerOptions {
  kafka: Kafka;
  topics: LiveTopics;
  groupId?: string;
  /** Read commands already on the topic when the group has no committed offsets. Default true. */
  fromBeginning?: boolean;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Wall ms an acknowledgement may be overdue before its push is sent again. */
  resendAfterMs?: number;
  /** Called when a hosted run ends (completed, or given up to another owner). */
  onRunEnded?: (run: HostedRun) => void;
  /** Called when this worker begins hosting a run. */
  onRunStarted?: (run: string, recoveredEvents: number) => void;
  /** Called with the events of the runs hosted here as they are in the log (HostRunOptions.onLogged). */
  onRunEvents?: (events: readonly StoredEvent[]) => void;
}

export interface EngineStats {
  /** Runs hosted now. */
  hosting: string[];
  runsCompleted: number;
  runsHandedOver: number;
  consumer: ConsumerCounts;
}

export class EngineWorker {
  readonly id = randomUUID();
  readonly #options: EngineWorkerOptions;
  readonly #log: KafkaEventLog;
  readonly #producer: Producer;
  readonly #hosting = new Map<string, AbortController>();
  readonly #stopping = new AbortController();
  #consumer: DeadLetteringConsumer<'commands' | 'deviceEvents'> | undefined;
  #completed = 0;
  #handedOver = 0;

  private constructor(options: EngineWorkerOptions, log: KafkaEventLog, producer: Producer) {
    this.#options = options;
    this.#log = log;
    this.#producer = producer;
  }

  static async start(options: EngineWorkerOptions): Promise<EngineWorker> {
    const log = await KafkaEventLog.open({ kafka: options.kafka, topic: options.topics.events.name });
    const producer = options.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const worker = new EngineWorker(options, log, producer);
    worker.#consumer = await DeadLetteringConsumer.start({
      kafka: options.kafka,
      groupId: options.groupId ?? ENGINE_GROUP,
      roles: ['commands', 'deviceEvents'],
      topics: options.topics,
      fromBeginning: options.fromBeginning ?? true,
      maxWaitTimeInMs: 100,
      // A hosted run holds its partition's batch: the others must not wait for it.
      partitionsConsumedConcurrently:
        options.topics.commands.partitions + options.topics.deviceEvents.partitions,
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      handle: async (message, context) => {
        if (message.role === 'deviceEvents') return;
        const command = message.value;
        if (command.type === 'moveUser') return; // carried out by the host of the command's run
        if (command.type !== 'startRun') {
          throw new PhasebenchError(
            'COMMAND_NOT_SUPPORTED',
            `${command.type} commands are not carried out by this engine; start a scenario's plan with startRun (phasebench live), or move users with moveUser commands into a commanded plan`,
          );
        }
        await worker.#host(command, context.heartbeat);
      },
    });
    return worker;
  }

  /** Settles when the consumer stops; rejects with what stopped it when it failed. */
  get done(): Promise<void> {
    return this.#consumer!.done;
  }

  stats(): EngineStats {
    return {
      hosting: [...this.#hosting.keys()],
      runsCompleted: this.#completed,
      runsHandedOver: this.#handedOver,
      consumer: this.#consumer!.counts(),
    };
  }

  /**
   * Stops hosting (the runs stay uncommitted: another member, or this one restarted, takes them
   * over from the log), leaves the group and disconnects.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    for (const controller of this.#hosting.values()) controller.abort();
    await this.#consumer?.stop();
    await this.#producer.disconnect().catch(() => {});
    await this.#log.close().catch(() => {});
  }

  async #host(
    command: {
      run: string;
      plan: string;
      scenario: Record<string, unknown>;
      startedAt: number;
      timeScale: number;
    },
    heartbeat: () => Promise<void>,
  ): Promise<void> {
    // The scenario travelled as data: it is validated as any scenario file is.
    const scenario = parseScenario(command.scenario, `startRun ${command.run}`);
    if (!(command.plan in scenario.plans)) {
      throw new PhasebenchError(
        'PLAN_NOT_FOUND',
        `plan: scenario ${scenario.name} has no plan named '${command.plan}' (plans: ${Object.keys(scenario.plans).join(', ')})`,
      );
    }
    if (this.#stopping.signal.aborted) {
      throw new PhasebenchError('ENGINE_STOPPING', `not hosting run ${command.run}: the engine is stopping`, {
        retriable: true,
      });
    }
    this.#hosting.get(command.run)?.abort();
    const controller = new AbortController();
    this.#hosting.set(command.run, controller);
    const onStop = (): void => controller.abort();
    this.#stopping.signal.addEventListener('abort', onStop, { once: true });
    try {
      const hosted = await hostRun({
        kafka: this.#options.kafka,
        topics: this.#options.topics,
        log: this.#log,
        producer: this.#producer,
        start: { ...command, scenario },
        signal: controller.signal,
        ...(this.#options.resendAfterMs === undefined ? {} : { resendAfterMs: this.#options.resendAfterMs }),
        heartbeat: async () => {
          try {
            await heartbeat();
          } catch (error) {
            controller.abort();
            throw error;
          }
        },
        onHosting: (recovered) => this.#options.onRunStarted?.(command.run, recovered),
        onLogged: this.#options.onRunEvents,
      });
      if (hosted.completed) this.#completed++;
      else this.#handedOver++;
      this.#options.onRunEnded?.(hosted);
      if (!hosted.completed) {
        // Not finished here: the command must stay uncommitted for the partition's next owner.
        throw new PhasebenchError(
          'RUN_HANDED_OVER',
          `run ${command.run} left to the partition's next owner`,
          {
            retriable: true,
          },
        );
      }
    } finally {
      this.#stopping.signal.removeEventListener('abort', onStop);
      if (this.#hosting.get(command.run) === controller) this.#hosting.delete(command.run);
    }
  }
}
