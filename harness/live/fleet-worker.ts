/**
 * `phasebench fleet`: the devices' side of live mode, a member of the `phasebench-fleet` consumer
 * group on `phasebench.pushes`. A push reaches its device when its transfer ends (`ackAt` on the
 * run's timeline, turned into wall time with the run's clock in the message); the device's
 * acknowledgement then goes to `phasebench.device-events`, keyed by the device PIN, with the
 * run's id in the `run` header so the run's engine reads it without parsing the rest.
 *
 * Many pushes wait at once: they sit in one time-ordered queue with one timer, and the answers due
 * together leave in one request; while one request is out, the answers falling due gather for the
 * next. The fleet keeps nothing that a crash would lose for good: an answer that never comes is
 * overdue at the engine, which sends the push again.
 */
import type { Kafka, Producer } from 'kafkajs';
import { TimeHeap } from '../sim/heap.ts';
import { CoalescingSender } from './coalescing-sender.ts';
import { type ConsumerCounts, DeadLetteringConsumer } from './consumer.ts';
import type { LiveTopics } from './kafka-config.ts';
import { type DeviceEventMessage, MESSAGE_SCHEMA_VERSION, RUN_HEADER, VERSION_HEADER } from './messages.ts';

export const FLEET_GROUP = 'phasebench-fleet';

/** Answers per produce request at most; kafkajs sends one record batch per partition per request. */
const ANSWERS_PER_REQUEST = 2_000;

/** How often the fleet commits the pushes it has handled, in wall ms. */
const FLEET_COMMIT_INTERVAL_MS = 1_000;

export interface FleetWorkerOptions {
  kafka: Kafka;
  topics: LiveTopics;
  groupId?: string;
  /** Read pushes already on the topic when the group has no committed offsets. Default true. */
  fromBeginning?: boolean;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  epochMs?: () => number;
}

export interface FleetStats {
  pushesReceived: number;
  acksSent: number;
  waiting: number;
  consumer: ConsumerCounts;
}

export class FleetWorker {
  readonly #options: FleetWorkerOptions;
  readonly #producer: Producer;
  readonly #due = new TimeHeap<DeviceEventMessage>();
  /** Answers that are due: one request at a time, the ones due meanwhile gathered into the next. */
  readonly #answers: CoalescingSender<DeviceEventMessage>;
  #consumer: DeadLetteringConsumer<'pushes'> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #received = 0;
  #sent = 0;
  #stopped = false;

  private constructor(options: FleetWorkerOptions, producer: Producer) {
    this.#options = options;
    this.#producer = producer;
    this.#answers = new CoalescingSender((ready) => this.#send(ready), {
      // A record batch over the broker's message.max.bytes (1 MiB) is refused: about 150 bytes each.
      maxItems: ANSWERS_PER_REQUEST,
    });
  }

  static async start(options: FleetWorkerOptions): Promise<FleetWorker> {
    const producer = options.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const worker = new FleetWorker(options, producer);
    worker.#consumer = await DeadLetteringConsumer.start({
      kafka: options.kafka,
      groupId: options.groupId ?? FLEET_GROUP,
      roles: ['pushes'],
      topics: options.topics,
      fromBeginning: options.fromBeginning ?? true,
      maxWaitTimeInMs: 50,
      // The partitions' batches are handled together: one after another, each would wait for the
      // one before, and the run's engine waits on every answer.
      partitionsConsumedConcurrently: options.topics.pushes.partitions,
      // Not a commit per batch: that was a write to the offsets topic and a round trip before the
      // next fetch, on the path every answer takes (about as many commits as pushes requests). A
      // push handled again after a crash is answered twice, which the engine ignores.
      commitIntervalMs: FLEET_COMMIT_INTERVAL_MS,
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs: options.sessionTimeoutMs }),
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatIntervalMs: options.heartbeatIntervalMs }),
      handle: async ({ value }) => {
        worker.#received++;
        const wallAt = value.clock.startedAt + value.ackAt / value.clock.timeScale;
        worker.#due.push(wallAt, {
          v: MESSAGE_SCHEMA_VERSION,
          type: 'acknowledged',
          run: value.run,
          push: value.push,
          device: value.device,
          at: value.ackAt,
        });
        worker.#arm();
      },
    });
    return worker;
  }

  /** Settles when the consumer stops; rejects with what stopped it when it failed. */
  get done(): Promise<void> {
    return this.#consumer!.done;
  }

  stats(): FleetStats {
    return {
      pushesReceived: this.#received,
      acksSent: this.#sent,
      waiting: this.#due.size,
      consumer: this.#consumer!.counts(),
    };
  }

  /** Leaves the group, sends the answers already due, and disconnects. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#consumer?.stop();
    if (this.#timer) clearTimeout(this.#timer);
    this.#release();
    await this.#answers.drain();
    await this.#producer.disconnect().catch(() => {});
  }

  #now(): number {
    return (this.#options.epochMs ?? Date.now)();
  }

  #arm(): void {
    const next = this.#due.peekTime();
    if (next === undefined || this.#stopped) return;
    if (this.#timer !== undefined && this.#timerAt <= next) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        this.#timerAt = Number.POSITIVE_INFINITY;
        this.#release();
        this.#arm();
      },
      Math.max(0, Math.ceil(next - this.#now())),
    );
  }

  /** Sends every answer that is due: at once, or with the next request when one is out. */
  #release(): void {
    const now = this.#now();
    while (this.#due.size > 0 && this.#due.peekTime()! <= now) this.#answers.add(this.#due.pop()!);
    this.#answers.flush();
  }

  async #send(ready: DeviceEventMessage[]): Promise<void> {
    // One headers object per run, not per answer: kafkajs only reads it.
    let headers: Record<string, string> | undefined;
    const messages = ready.map((m) => {
      if (headers?.[RUN_HEADER] !== m.run) {
        headers = { [RUN_HEADER]: m.run, [VERSION_HEADER]: String(MESSAGE_SCHEMA_VERSION) };
      }
      return { key: m.device, value: JSON.stringify(m), headers };
    });
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#producer.send({ topic: this.#options.topics.deviceEvents.name, messages });
        this.#sent += messages.length;
        return;
      } catch {
        // A broker restarting: keep trying a while; past that the engine sends the pushes again.
        if (attempt >= 8) return;
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** attempt)));
      }
    }
  }
}
