/**
 * The Kafka adapter (live mode): the event log as a Kafka topic, `phasebench.events` by default.
 * Each message's value is exactly one canonical NDJSON line of codec.ts (no newline), so the bytes
 * on the wire are the bytes of the file adapter and the run hash of a consumed log is the same.
 * The message key is the event's `key` (the entity it is about); a `run` header carries the run id.
 *
 * Order: Kafka orders messages only within a partition. The port promises append order, and a
 * run's hash needs exactly one order, so messages are partitioned by their run, not by their key:
 * every event of a run lands on one partition, in append order, whatever the partition count.
 * `read({ run })` is therefore in append order on any topic. `read()` of a whole topic is in append
 * order on a single-partition topic (the default, DEFAULT_TOPICS.events); on more partitions it
 * returns partition after partition, each in append order. Sorting by (run, seq) instead would not
 * restore append order: runs interleave, and seq is only as ordered as whoever appended.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka, KafkaMessage, Message, PartitionerArgs, Producer } from 'kafkajs';
import { Partitioners } from 'kafkajs';
import type { StoredEvent } from '../domain/events.ts';
import { PhasebenchError } from '../errors.ts';
import { DEFAULT_TOPICS, isRetriableKafkaError } from '../live/kafka-config.ts';
import { parseEventLine, serializeEvent } from './codec.ts';
import { EventLogError, type EventLogErrorCode } from './errors.ts';
import type { EventLog } from './port.ts';

/** The header naming the event's run: the partitioner reads it, and filtered reads skip by it. */
const RUN_HEADER = 'run';

/**
 * Bytes of values per produce request; a larger append goes out in several requests, one after
 * another (the producer is idempotent: in order). The broker rejects a record batch over
 * message.max.bytes (1 MiB by default), and kafkajs sends one batch per partition per request.
 * Smaller than that on purpose: kafkajs groups a request's messages by partition copying the
 * partition's list once per message (quadratic in messages per partition) and encodes a request
 * in one synchronous stretch. At 512 KB (about 1,600 events) the grouping alone cost about 3 µs
 * an event, and a live engine stopped reading acknowledgements for ~25 ms per request; at 128 KB
 * (about 400 events) the per-request overhead is still small next to the events'.
 */
const MAX_REQUEST_BYTES = 128 * 1024;

export interface KafkaEventLogOptions {
  /** The kafkajs client (kafkaClient() in harness/live/kafka-config.ts). */
  kafka: Kafka;
  /** Default DEFAULT_TOPICS.events.name. Must exist: topics are not auto-created (createTopics). */
  topic?: string;
  /**
   * How long one read may take to reach the end offsets it saw when it began, in ms. Default
   * 60_000. A read that cannot get there (a partition without a leader) fails instead of hanging.
   */
  readTimeoutMs?: number;
}

export class KafkaEventLog implements EventLog {
  readonly topic: string;
  readonly #kafka: Kafka;
  readonly #producer: Producer;
  readonly #readTimeoutMs: number;
  /** Appends run one after another, so concurrent appends keep their call order. */
  #appending: Promise<void> = Promise.resolve();
  #closing: Promise<void> | undefined;

  private constructor(options: KafkaEventLogOptions, topic: string, producer: Producer) {
    this.topic = topic;
    this.#kafka = options.kafka;
    this.#producer = producer;
    this.#readTimeoutMs = options.readTimeoutMs ?? 60_000;
  }

  /**
   * A handle on the log in an existing topic, for appending and reading; several handles (and
   * processes) may share a topic.
   * @throws EventLogError LOG_NOT_WRITABLE when the brokers cannot be reached (retriable) or the
   *   topic does not exist.
   */
  static async open(options: KafkaEventLogOptions): Promise<KafkaEventLog> {
    const topic = options.topic ?? DEFAULT_TOPICS.events.name;
    const admin = options.kafka.admin();
    let topics: string[];
    try {
      await admin.connect();
      topics = await admin.listTopics();
    } catch (cause) {
      throw kafkaFailure(
        'LOG_NOT_WRITABLE',
        `cannot reach the Kafka brokers of event log topic ${topic}`,
        cause,
      );
    } finally {
      await admin.disconnect().catch(() => {});
    }
    if (!topics.includes(topic)) {
      throw new EventLogError(
        'LOG_NOT_WRITABLE',
        `event log topic ${topic} does not exist (topics are not created automatically: ` +
          'see createTopics in harness/live/kafka-config.ts)',
      );
    }
    const producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: partitionByRun,
    });
    try {
      await producer.connect();
    } catch (cause) {
      await producer.disconnect().catch(() => {});
      throw kafkaFailure('LOG_NOT_WRITABLE', `cannot connect a producer for event log topic ${topic}`, cause);
    }
    return new KafkaEventLog(options, topic, producer);
  }

  /**
   * Resolves once every event is stored on the broker with acks from all in-sync replicas. A
   * failed append may have stored a prefix of its events.
   * @throws EventLogError LOG_CLOSED, EVENT_NOT_SERIALISABLE, LOG_WRITE_FAILED (retriable when
   *   kafkajs says so).
   */
  append(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closing !== undefined) {
      return Promise.reject(new EventLogError('LOG_CLOSED', `event log topic ${this.topic} is closed`));
    }
    let requests: Message[][];
    try {
      requests = toProduceRequests(events);
    } catch (error) {
      return Promise.reject(error);
    }
    const appended = this.#appending.then(() => this.#produce(requests, events.length));
    // The next append waits for this one whether it succeeded or not; failures reach the caller.
    this.#appending = appended.catch(() => {});
    return appended;
  }

  /**
   * Reads from the beginning of every partition up to the end offsets fetched when reading
   * begins (later appends are not included), with a consumer group of its own that commits
   * nothing. Events are collected before the first is yielded. Works after close() too.
   * @throws EventLogError LOG_NOT_READABLE (retriable when kafkajs says so), LOG_CORRUPT when a
   *   message is not an event.
   */
  async *read(options: { run?: string } = {}): AsyncIterable<StoredEvent> {
    await this.#appending;
    const partitions = await this.#readPartitions(options.run);
    for (const events of partitions) yield* events;
  }

  /** Waits for pending appends and disconnects the producer. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#appending.then(async () => {
      try {
        await this.#producer.disconnect();
      } catch (cause) {
        throw kafkaFailure(
          'LOG_WRITE_FAILED',
          `closing the producer of event log topic ${this.topic}`,
          cause,
        );
      }
    });
    return this.#closing;
  }

  async #produce(requests: Message[][], eventCount: number): Promise<void> {
    for (const messages of requests) {
      try {
        await this.#producer.send({ topic: this.topic, acks: -1, messages });
      } catch (cause) {
        throw kafkaFailure(
          'LOG_WRITE_FAILED',
          `appending ${eventCount} events to topic ${this.topic} failed`,
          cause,
        );
      }
    }
  }

  /** The events of each non-empty partition, in partition order. */
  async #readPartitions(run: string | undefined): Promise<StoredEvent[][]> {
    const endOffsets = await this.#endOffsets();
    if (endOffsets.size === 0) return [];
    const eventsByPartition = new Map<number, StoredEvent[]>(
      [...endOffsets.keys()].sort((a, b) => a - b).map((partition) => [partition, []]),
    );
    const runBytes = run === undefined ? undefined : Buffer.from(run);
    const unfinished = new Set(endOffsets.keys());

    let finish: () => void = () => {};
    let fail: (error: unknown) => void = () => {};
    const finished = new Promise<void>((resolve, reject) => {
      finish = resolve;
      fail = reject;
    });
    // Awaited below once the consumer runs; a failure while it is still connecting is not unhandled.
    finished.catch(() => {});
    const consumer = this.#kafka.consumer({
      groupId: `phasebench-read-${randomUUID()}`,
      allowAutoTopicCreation: false,
      // The last fetches reach the end; do not let the broker hold them for the default 5 s.
      maxWaitTimeInMs: 100,
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => fail(payload.error));
    // Not a domain timer: a network deadline, so a read that cannot finish fails instead of hanging.
    const deadline = setTimeout(() => {
      fail(
        new EventLogError(
          'LOG_NOT_READABLE',
          `reading event log topic ${this.topic} did not reach its end offsets within ${this.#readTimeoutMs} ms`,
          { retriable: true },
        ),
      );
    }, this.#readTimeoutMs);
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: this.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const { partition } = batch;
          const endOffset = endOffsets.get(partition);
          const events = eventsByPartition.get(partition);
          if (endOffset === undefined || events === undefined || !unfinished.has(partition)) return;
          try {
            for (const message of batch.messages) {
              if (Number(message.offset) >= endOffset) break;
              const event = this.#decode(message, partition, run, runBytes);
              if (event !== undefined) events.push(event);
            }
          } catch (error) {
            // Thrown from here, kafkajs would retry the batch; a corrupt message stays corrupt.
            fail(error);
            return;
          }
          if (Number(batch.lastOffset()) + 1 >= endOffset) {
            unfinished.delete(partition);
            if (unfinished.size === 0) finish();
          }
        },
      });
      await finished;
    } catch (cause) {
      throw kafkaFailure('LOG_NOT_READABLE', `reading event log topic ${this.topic} failed`, cause);
    } finally {
      clearTimeout(deadline);
      await consumer.disconnect().catch(() => {});
    }
    return [...eventsByPartition.values()];
  }

  /** The end offset of every partition that holds messages (end > start). */
  async #endOffsets(): Promise<Map<number, number>> {
    const admin = this.#kafka.admin();
    try {
      await admin.connect();
      const offsets = await admin.fetchTopicOffsets(this.topic);
      return new Map(
        offsets
          .filter(({ high, low }) => Number(high) > Number(low))
          .map(({ partition, high }) => [partition, Number(high)]),
      );
    } catch (cause) {
      throw kafkaFailure(
        'LOG_NOT_READABLE',
        `fetching the end offsets of event log topic ${this.topic}`,
        cause,
      );
    } finally {
      await admin.disconnect().catch(() => {});
    }
  }

  /** The message's event, or undefined when it belongs to another run than `run`. */
  #decode(
    message: KafkaMessage,
    partition: number,
    run: string | undefined,
    runBytes: Buffer | undefined,
  ): StoredEvent | undefined {
    const header = message.headers?.[RUN_HEADER];
    // Skip other runs without parsing them; the header is only a hint, the envelope decides.
    if (runBytes !== undefined && Buffer.isBuffer(header) && !header.equals(runBytes)) return undefined;
    const where = `message at offset ${message.offset} of topic ${this.topic}, partition ${partition}`;
    if (message.value === null) throw new EventLogError('LOG_CORRUPT', `${where} has no value`);
    let event: StoredEvent;
    try {
      event = parseEventLine(message.value.toString('utf8'), Number(message.offset) + 1, this.topic);
    } catch (cause) {
      throw new EventLogError('LOG_CORRUPT', `${where} is not an event`, { cause });
    }
    return run === undefined || event.run === run ? event : undefined;
  }
}

/** The events as produce requests of at most MAX_REQUEST_BYTES of values each (at least one event). */
function toProduceRequests(events: readonly StoredEvent[]): Message[][] {
  const requests: Message[][] = [];
  let messages: Message[] = [];
  let bytes = 0;
  let headers: Record<string, string> | undefined;
  for (const event of events) {
    const value = serializeEvent(event);
    const messageBytes =
      Buffer.byteLength(value) + Buffer.byteLength(event.key) + Buffer.byteLength(event.run);
    if (messages.length > 0 && bytes + messageBytes > MAX_REQUEST_BYTES) {
      requests.push(messages);
      messages = [];
      bytes = 0;
    }
    // One headers object per run, not per event: kafkajs only reads it.
    if (headers?.[RUN_HEADER] !== event.run) headers = { [RUN_HEADER]: event.run };
    messages.push({ key: event.key, value, headers });
    bytes += messageBytes;
  }
  if (messages.length > 0) requests.push(messages);
  return requests;
}

/**
 * kafkajs's key hashing (murmur2, as the Java client), applied to the run header instead of the key.
 * kafkajs asks for every message, and every message of an append has the same run: the last
 * answer is kept, so the hash (a tenth of an append's CPU time otherwise) is computed once per
 * append rather than once per event.
 */
function partitionByRun(): (args: PartitionerArgs) => number {
  const byKey = Partitioners.DefaultPartitioner();
  let last: { topic: string; run: string; partitions: number; partition: number } | undefined;
  return ({ topic, partitionMetadata, message }) => {
    const header = message.headers?.[RUN_HEADER];
    const run = typeof header === 'string' ? header : undefined;
    if (
      run !== undefined &&
      last !== undefined &&
      last.run === run &&
      last.topic === topic &&
      last.partitions === partitionMetadata.length
    ) {
      return last.partition;
    }
    const partition = byKey({ topic, partitionMetadata, message: { key: run ?? null, value: null } });
    if (run !== undefined) last = { topic, run, partitions: partitionMetadata.length, partition };
    return partition;
  };
}

/** Wraps a kafkajs failure in the error tree; our own errors (LOG_CORRUPT, ...) pass unchanged. */
function kafkaFailure(code: EventLogErrorCode, message: string, cause: unknown): PhasebenchError {
  if (cause instanceof PhasebenchError) return cause;
  return new EventLogError(code, message, { retriable: isRetriableKafkaError(cause), cause });
}
