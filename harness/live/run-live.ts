/**
 * The live driver (`phasebench live`): asks the engine workers to run a scenario's plan on the
 * wall clock, follows the run's events on `phasebench.events` as they are appended, and projects
 * the summary from them with the same projection the simulator uses.
 *
 * The driver sends one `startRun` command (key: the run id) naming the run's timeline; the
 * engine worker that owns the command's partition hosts the run (run-host.ts), the fleet workers
 * answer its pushes, and every fact goes to the event log topic. By default the driver starts one
 * engine worker and one fleet worker in its own process, members of the same consumer groups as
 * `phasebench engine` and `phasebench fleet`; with `inProcess: false` it relies on running
 * services.
 *
 * The log may hold an event twice (a worker that took the run over appends again what it could
 * not know was stored); events are kept once by id, in sequence order, before projecting.
 */
import type { Consumer, Kafka } from 'kafkajs';
import type { StoredEvent } from '../domain/events.ts';
import { PhasebenchError } from '../errors.ts';
import { EventHasher } from '../log/codec.ts';
import { PlanProjection } from '../metrics/projection.ts';
import type { PlanMetrics } from '../metrics/summary.ts';
import type { Scenario } from '../scenario/schema.ts';
import { runId as simRunId } from '../sim/run.ts';
import { EngineWorker } from './engine-worker.ts';
import { FleetWorker } from './fleet-worker.ts';
import { isRetriableKafkaError, type LiveTopics } from './kafka-config.ts';
import { MESSAGE_SCHEMA_VERSION, RUN_HEADER, VERSION_HEADER } from './messages.ts';
import { startRunReader } from './run-reader.ts';

export interface LiveRunOptions {
  kafka: Kafka;
  topics: LiveTopics;
  /** Run time passes this many times faster than the wall clock. */
  timeScale: number;
  /** Makes the run id unique among live runs sharing the topics: letters, digits, `.`, `_`, `-`. */
  runSuffix: string;
  /** Start an engine and a fleet worker in this process. Default true. */
  inProcess?: boolean;
  /** Wall ms between sending the start command and the run's time 0, for the workers to get ready. Default 1_000. */
  leadMs?: number;
  /** Wall ms without a new event before the run is declared stuck. Default 120_000. */
  stallTimeoutMs?: number;
  onProgress?: (runMs: number, horizonMs: number) => void;
  /** Called once with each of the run's events (by id) as it is read from the log topic. */
  onEvent?: (event: StoredEvent) => void;
  /**
   * Called once the start command is on the topic, with the run id and its timeline's start
   * (epoch ms): what a load generator commanding the run's moves needs (a commanded plan).
   */
  onStart?: (run: string, startedAt: number) => void;
}

export interface LiveRun {
  plan: string;
  runId: string;
  /** The run's events as read back from the event log topic, once each, in sequence order. */
  events: StoredEvent[];
  metrics: PlanMetrics;
  /** Events the topic held more than once (a worker took the run over and appended them again). */
  duplicateEvents: number;
}

export function liveRunId(scenario: Scenario, plan: string, suffix: string): string {
  return `${simRunId(scenario, plan)}/live-${suffix}`;
}

export async function runLive(
  scenario: Scenario,
  planName: string,
  options: LiveRunOptions,
): Promise<LiveRun> {
  const { kafka, topics } = options;
  const run = liveRunId(scenario, planName, options.runSuffix);
  const inProcess = options.inProcess ?? true;
  const workers: Array<{ stop(): Promise<void> }> = [];
  const follower = await EventFollower.start(kafka, topics, run, options.onEvent, (at) =>
    options.onProgress?.(at, scenario.horizon),
  );
  try {
    if (inProcess) {
      workers.push(await EngineWorker.start({ kafka, topics }));
      workers.push(await FleetWorker.start({ kafka, topics }));
    }
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const startedAt = Date.now() + (options.leadMs ?? 1_000);
    try {
      await producer.send({
        topic: topics.commands.name,
        messages: [
          {
            key: run,
            headers: { [RUN_HEADER]: run, [VERSION_HEADER]: String(MESSAGE_SCHEMA_VERSION) },
            value: JSON.stringify({
              v: MESSAGE_SCHEMA_VERSION,
              type: 'startRun',
              run,
              plan: planName,
              scenario,
              startedAt,
              timeScale: options.timeScale,
            }),
          },
        ],
      });
    } finally {
      await producer.disconnect().catch(() => {});
    }
    options.onStart?.(run, startedAt);
    await follower.completion(options.stallTimeoutMs ?? 120_000, inProcess);
  } finally {
    await follower.stop();
    await Promise.allSettled(workers.map((w) => w.stop()));
  }

  const events = follower.events();
  const projection = new PlanProjection();
  const hasher = new EventHasher();
  for (const e of events) {
    hasher.update(e);
    projection.apply(e);
  }
  return {
    plan: planName,
    runId: run,
    events,
    metrics: projection.result(hasher.digest()),
    duplicateEvents: follower.duplicates,
  };
}

/**
 * Reads one run's events from the log topic as they are appended, keeping each sequence number
 * once, until the run has completed and every event up to its last is in hand.
 */
class EventFollower {
  readonly #bySeq = new Map<number, StoredEvent>();
  #lastSeq: number | undefined;
  #lastEventAt = Date.now();
  #wake: (() => void) | undefined;
  #consumer: Consumer | undefined;
  duplicates = 0;

  private constructor(
    private readonly onEvent: ((event: StoredEvent) => void) | undefined,
    private readonly onProgress: (at: number) => void,
  ) {}

  static async start(
    kafka: Kafka,
    topics: LiveTopics,
    run: string,
    onEvent: ((event: StoredEvent) => void) | undefined,
    onProgress: (at: number) => void,
  ): Promise<EventFollower> {
    const topic = topics.events.name;
    const follower = new EventFollower(onEvent, onProgress);
    follower.#consumer = await startRunReader({
      kafka,
      topic,
      run,
      groupPrefix: 'phasebench-live',
      // From each partition's end now: the run does not exist before its start command.
      from: (await endOffsets(kafka, topic)).map(({ partition, high }) => [partition, high] as const),
      onValue: (value) => follower.#accept(JSON.parse(value.toString('utf8')) as StoredEvent),
      // Nothing waits on the driver: a fetch may wait for a few appends' worth (the engine
      // appends ~128 KB at a time) rather than return on each, within the same 50 ms as before.
      fetch: { maxWaitTimeInMs: 50, minBytes: 256 * 1024 },
    });
    return follower;
  }

  #accept(event: StoredEvent): void {
    this.#lastEventAt = Date.now();
    if (this.#bySeq.has(event.seq)) {
      this.duplicates++;
      return;
    }
    this.#bySeq.set(event.seq, event);
    if (event.type === 'RunCompleted') this.#lastSeq = event.seq;
    this.onEvent?.(event);
    this.onProgress(event.at);
    if (this.#complete()) this.#wake?.();
  }

  #complete(): boolean {
    return this.#lastSeq !== undefined && this.#bySeq.size >= this.#lastSeq + 1;
  }

  async completion(stallTimeoutMs: number, inProcess: boolean): Promise<void> {
    this.#lastEventAt = Date.now();
    while (!this.#complete()) {
      if (Date.now() - this.#lastEventAt > stallTimeoutMs) {
        const seen = this.#bySeq.size;
        throw new PhasebenchError(
          'LIVE_RUN_STALLED',
          `no event of the run for ${Math.round(stallTimeoutMs / 1000)} s (${seen} events so far)` +
            (inProcess
              ? ''
              : "; is an engine worker running on these topics ('phasebench engine') and a fleet worker ('phasebench fleet')?"),
          { exitCode: 1 },
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 500);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  events(): StoredEvent[] {
    return [...this.#bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  async stop(): Promise<void> {
    await this.#consumer?.disconnect().catch(() => {});
  }
}

/**
 * The end offset of each of the topic's partitions. A topic created a moment ago may still be
 * electing its leaders (kafkajs gives up at once on "not the leader"): asked again, briefly.
 */
async function endOffsets(kafka: Kafka, topic: string): Promise<Array<{ partition: number; high: string }>> {
  for (let attempt = 1; ; attempt++) {
    const admin = kafka.admin();
    try {
      await admin.connect();
      return await admin.fetchTopicOffsets(topic);
    } catch (error) {
      if (!isRetriableKafkaError(error) || attempt >= 10) throw error;
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}
