/**
 * A member of a Kafka consumer group for live mode's topics that no message can stop: every
 * message is decoded (messages.ts); a valid one goes to the handler, an invalid one to the
 * dead-letter topic (dlq.ts) with the reason and where it was. Nothing is lost: a partition's
 * offset is committed only once its messages are handled or their dead letters are stored.
 *
 * The handler's failures follow the error tree (harness/errors.ts):
 * - not retriable (a bug, or input the schema let through but the handler cannot use): the
 *   message is dead-lettered with reason `handler: …` and consumption goes on;
 * - retriable (a broker restarting): retried with exponential backoff and jitter, heartbeating
 *   so the group keeps the partition; when the retries run out the consumer stops without
 *   committing the message, so the group delivers it again (to a restarted or another member).
 *   A transient outage is not the message's fault: dead-lettering it would drop valid work.
 *
 * Delivery is at-least-once: a member that crashes between handling and committing hands the
 * same messages to the next owner. A graceful stop() commits what it has handled.
 */
import type { Consumer, EachBatchPayload, IHeaders, Kafka, KafkaMessage } from 'kafkajs';
import type { Rng } from '../domain/random.ts';
import { formatError, PhasebenchError } from '../errors.ts';
import { systemWallTime, type WallTime } from '../sim/clock.ts';
import { type DeadLetterRecord, DeadLetterWriter, deadLetterFor } from './dlq.ts';
import { DEFAULT_TOPICS, isRetriableKafkaError, type LiveTopics, type TopicRole } from './kafka-config.ts';
import {
  DEAD_LETTER_CATEGORIES,
  type DeadLetterCategory,
  decodeMessage,
  formatReason,
  type MessageByTopic,
} from './messages.ts';

/** The topics a consumer may read: every one but the DLQ, which it writes. */
export type ConsumedRole = Exclude<TopicRole, 'dlq'>;

/** A valid message and where it was. */
export interface ConsumedMessage<R extends ConsumedRole> {
  role: R;
  topic: string;
  partition: number;
  /** int64 as decimal text, as kafkajs gives it. */
  offset: string;
  key: Buffer | null;
  headers: IHeaders;
  value: MessageByTopic[R];
}

/** One ConsumedMessage per role, so a handler's `switch (message.role)` narrows `value`. */
export type ConsumedMessageOf<R extends ConsumedRole> = R extends ConsumedRole ? ConsumedMessage<R> : never;

export interface HandlerRetry {
  /** Attempts after the first for a retriable failure. Default 5. */
  retries: number;
  /** Wait before the first retry, in ms; each retry doubles it, ±20% jitter. Default 300. */
  initialDelayMs: number;
  /** Longest wait, in ms. Default 10_000: keep it under the group's session timeout (30 s). */
  maxDelayMs: number;
}

const DEFAULT_RETRY: HandlerRetry = { retries: 5, initialDelayMs: 300, maxDelayMs: 10_000 };

export interface DeadLetteringConsumerOptions<R extends ConsumedRole> {
  /** The kafkajs client (kafkaClient() in kafka-config.ts). */
  kafka: Kafka;
  /** The consumer group: members of one group share the topics' partitions. */
  groupId: string;
  /** The topics to consume, by role. */
  roles: readonly R[];
  /** Topic names; default DEFAULT_TOPICS. Dead letters go to `topics.dlq`. All must exist. */
  topics?: LiveTopics;
  /**
   * Called once per valid message, in partition order; the next message of the partition waits
   * for it. Throw a PhasebenchError with `retriable: true` for a failure worth retrying.
   */
  handle: (message: ConsumedMessageOf<R>, context: HandlerContext) => Promise<void>;
  /**
   * Partitions whose batches are handled at the same time. Default 1. A handler that holds its
   * message for long (the engine hosts a whole run in one) needs one per partition it may own, or
   * the other partitions wait.
   */
  partitionsConsumedConcurrently?: number;
  /** The group's session timeout, in ms: how soon a member that died silently loses its partitions. Default 30_000. */
  sessionTimeoutMs?: number;
  /** How often the member heartbeats, in ms. Default 3_000; keep it under a third of the session timeout. */
  heartbeatIntervalMs?: number;
  /** Where a group without committed offsets starts: the earliest message, or (default) new ones only. */
  fromBeginning?: boolean;
  retry?: Partial<HandlerRetry>;
  /** Draws the retry jitter. Default Math.random: jitter only spreads retries, it decides nothing. */
  random?: Rng;
  /** The timers of the waits between retries. Default systemWallTime. */
  wallTime?: WallTime;
  /**
   * Calendar time for dead letters' `detectedAt`, epoch ms; operators match it with logs.
   * Default Date.now (WallTime's clock is monotonic, not calendar time).
   */
  epochMs?: () => number;
  /** How long the broker may hold a fetch open waiting for messages, in ms. Default 1_000. */
  maxWaitTimeInMs?: number;
  /**
   * Commit what was handled at most this often, in wall ms, in one request for every partition,
   * instead of after each batch (default 0: each batch commits its partition before the next
   * fetch). Each commit is a write to the group's offsets topic, and per batch it is a round trip
   * before the next fetch: a member on a hot path (the fleet: every answer it sends is awaited)
   * saves both. A batch commits when the interval is up, so offsets handled while the topic then
   * goes quiet wait for the next batch or stop(), which commits everything handled. Delivery stays
   * at-least-once, with more to repeat: what was handled since the last commit comes again after a
   * crash or a rebalance, so only for handlers whose work may be done twice.
   */
  commitIntervalMs?: number;
}

/** What a handler may use while it holds a message. */
export interface HandlerContext {
  /**
   * Tells the group this member is alive; a handler that holds its message for longer than the
   * session timeout must call it now and then. It rejects when the group is rebalancing: the
   * handler must then give the message up (stop its work and rethrow), and the message stays
   * uncommitted for whoever owns the partition next.
   */
  heartbeat: () => Promise<void>;
}

/** What a consumer has done since it started. */
export interface ConsumerCounts {
  /** Messages the handler accepted. */
  handled: number;
  /** Handler attempts that failed retriably and were tried again. */
  retried: number;
  /** Dead letters stored, by category. */
  deadLettered: Record<DeadLetterCategory, number>;
  /**
   * Times this member joined its group. More than one means a rebalance, after which what was
   * handled but not yet committed is handed over again (at-least-once).
   */
  groupJoins: number;
}

export type LiveConsumerErrorCode =
  /** The options contradict each other (no topic, the DLQ among the consumed topics). */
  | 'CONSUMER_MISCONFIGURED'
  /** Connecting, subscribing or starting the consumer failed. */
  | 'CONSUMER_NOT_STARTED'
  /** The handler still failed retriably after every retry; the message stays uncommitted. */
  | 'HANDLER_RETRIES_EXHAUSTED'
  /** kafkajs gave up on the consumer and will not restart it. */
  | 'CONSUMER_CRASHED';

export class LiveConsumerError extends PhasebenchError {
  override name = 'LiveConsumerError';
  declare readonly code: LiveConsumerErrorCode;

  constructor(
    code: LiveConsumerErrorCode,
    message: string,
    details: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { retriable: details.retriable ?? false, cause: details.cause });
  }
}

type Outcome =
  | { kind: 'handled' }
  | { kind: 'rejected'; reason: string }
  /** stop() was called while the handler's failure waited for a retry. */
  | { kind: 'abandoned' }
  /** A heartbeat between retries failed: the group is rebalancing. */
  | { kind: 'interrupted'; error: unknown };

export class DeadLetteringConsumer<R extends ConsumedRole> {
  readonly groupId: string;
  /**
   * Settles once the consumer has stopped: resolves after stop(), rejects with the failure that
   * stopped it otherwise (LiveConsumerError, DeadLetterError). Watch it: a consumer that failed
   * consumes nothing more.
   */
  readonly done: Promise<void>;

  readonly #options: DeadLetteringConsumerOptions<R>;
  readonly #retry: HandlerRetry;
  readonly #roleOfTopic: ReadonlyMap<string, R>;
  readonly #consumer: Consumer;
  readonly #writer: DeadLetterWriter;
  readonly #abort = new AbortController();
  readonly #counts: ConsumerCounts = {
    handled: 0,
    retried: 0,
    groupJoins: 0,
    deadLettered: Object.fromEntries(DEAD_LETTER_CATEGORIES.map((category) => [category, 0])) as Record<
      DeadLetterCategory,
      number
    >,
  };
  #failure: unknown;
  #stopping: Promise<void> | undefined;
  /** With commitIntervalMs: the next offset to read of each partition, handled but not committed. */
  readonly #uncommitted = new Map<string, { topic: string; partition: number; offset: string }>();
  #lastCommitMs = Number.NEGATIVE_INFINITY;
  #committing: Promise<void> | undefined;
  #settle: { resolve: () => void; reject: (error: unknown) => void } = {
    resolve: () => {},
    reject: () => {},
  };

  private constructor(
    options: DeadLetteringConsumerOptions<R>,
    roleOfTopic: ReadonlyMap<string, R>,
    consumer: Consumer,
    writer: DeadLetterWriter,
  ) {
    this.groupId = options.groupId;
    this.#options = options;
    this.#retry = { ...DEFAULT_RETRY, ...options.retry };
    this.#roleOfTopic = roleOfTopic;
    this.#consumer = consumer;
    this.#writer = writer;
    this.done = new Promise<void>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // The failure reaches whoever awaits `done`; nobody awaiting it must not crash the process.
    this.done.catch(() => {});
  }

  /**
   * Joins the group and starts consuming; resolves once the consumer runs.
   * @throws LiveConsumerError CONSUMER_MISCONFIGURED, CONSUMER_NOT_STARTED (retriable when
   *   kafkajs says so); DeadLetterError DLQ_NOT_AVAILABLE.
   */
  static async start<R extends ConsumedRole>(
    options: DeadLetteringConsumerOptions<R>,
  ): Promise<DeadLetteringConsumer<R>> {
    const topics = options.topics ?? DEFAULT_TOPICS;
    const roleOfTopic = new Map(options.roles.map((role) => [topics[role].name, role]));
    if (roleOfTopic.size === 0) {
      throw new LiveConsumerError(
        'CONSUMER_MISCONFIGURED',
        `consumer group ${options.groupId} names no topic`,
      );
    }
    if (roleOfTopic.has(topics.dlq.name) || (options.roles as readonly TopicRole[]).includes('dlq')) {
      // Its own rejects would come back to it, and a rejected dead letter would be rejected forever.
      throw new LiveConsumerError(
        'CONSUMER_MISCONFIGURED',
        `consumer group ${options.groupId} would consume the DLQ topic ${topics.dlq.name} it writes to`,
      );
    }

    const writer = await DeadLetterWriter.open({ kafka: options.kafka, topic: topics.dlq.name });
    const consumer = options.kafka.consumer({
      groupId: options.groupId,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: options.maxWaitTimeInMs ?? 1_000,
      ...(options.sessionTimeoutMs === undefined ? {} : { sessionTimeout: options.sessionTimeoutMs }),
      ...(options.heartbeatIntervalMs === undefined
        ? {}
        : { heartbeatInterval: options.heartbeatIntervalMs }),
    });
    const live = new DeadLetteringConsumer(options, roleOfTopic, consumer, writer);
    consumer.on(consumer.events.GROUP_JOIN, () => {
      live.#counts.groupJoins++;
      // The partitions may be another member's now: what was not committed is theirs to handle again.
      live.#uncommitted.clear();
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) {
        live.#fail(
          new LiveConsumerError('CONSUMER_CRASHED', `consumer group ${options.groupId} crashed`, {
            retriable: isRetriableKafkaError(payload.error),
            cause: payload.error,
          }),
        );
      }
    });
    try {
      await consumer.connect();
      await consumer.subscribe({
        topics: [...roleOfTopic.keys()],
        fromBeginning: options.fromBeginning ?? false,
      });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? 1,
        eachBatch: (payload) => live.#consumeBatch(payload),
      });
    } catch (cause) {
      await consumer.disconnect().catch(() => {});
      await writer.close().catch(() => {});
      throw new LiveConsumerError(
        'CONSUMER_NOT_STARTED',
        `could not start consumer group ${options.groupId} on ${[...roleOfTopic.keys()].join(', ')}`,
        { retriable: isRetriableKafkaError(cause), cause },
      );
    }
    return live;
  }

  /** True until stop() is called or a failure stops the consumer. */
  get running(): boolean {
    return this.#stopping === undefined;
  }

  /** A copy of the counts so far. */
  counts(): ConsumerCounts {
    return { ...this.#counts, deadLettered: { ...this.#counts.deadLettered } };
  }

  /**
   * Finishes the message in hand (a retry wait ends at once and its message stays uncommitted),
   * commits what was handled, leaves the group and disconnects. Idempotent; resolves when done,
   * even when a failure had already stopped the consumer (`done` tells that).
   */
  async stop(): Promise<void> {
    await this.#shutdown().catch(() => {});
  }

  #shutdown(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#abort.abort();
      // What earlier batches handled, while the member still runs (a batch in hand commits its own).
      await this.#commitHandled().catch(() => {});
      try {
        // Waits for the batch in hand to finish (it sees isRunning() turn false) before leaving.
        await this.#consumer.disconnect();
      } catch (cause) {
        this.#failure ??= new LiveConsumerError(
          'CONSUMER_CRASHED',
          `consumer group ${this.groupId} did not disconnect cleanly`,
          { retriable: isRetriableKafkaError(cause), cause },
        );
      }
      try {
        await this.#writer.close();
      } catch (cause) {
        this.#failure ??= cause;
      }
      if (this.#failure === undefined) this.#settle.resolve();
      else this.#settle.reject(this.#failure);
    })();
    return this.#stopping;
  }

  /** Stops the consumer because of `error`; called from inside a batch, so it must not wait for it. */
  #fail(error: unknown): void {
    if (this.#stopping !== undefined) return;
    this.#failure = error;
    void this.#shutdown();
  }

  async #consumeBatch(payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale } = payload;
    const role = this.#roleOfTopic.get(batch.topic);
    if (this.#stopping !== undefined || role === undefined) return;

    const letters: DeadLetterRecord[] = [];
    const lettersByCategory = new Map<DeadLetterCategory, number>();
    const deadLetter = (message: KafkaMessage, category: DeadLetterCategory, reason: string): void => {
      const rejected = { topic: batch.topic, partition: batch.partition, message };
      letters.push(deadLetterFor(rejected, { category, reason }, this.groupId, this.#now()));
      lettersByCategory.set(category, (lettersByCategory.get(category) ?? 0) + 1);
    };
    // The last offset whose message is handled or has its dead letter in `letters`.
    let done: string | undefined;
    // A heartbeat's failure (a rebalance): what is done so far is still written and committed.
    let interruption: unknown;
    for (const message of batch.messages) {
      // Stale: a rebalance gave the partition away; its new owner starts after the last commit.
      if (this.#stopping !== undefined || !isRunning() || isStale()) break;
      const decoded = decodeMessage(role, message.value);
      if (decoded.ok) {
        const consumed = {
          role,
          topic: batch.topic,
          partition: batch.partition,
          offset: message.offset,
          key: message.key,
          headers: message.headers ?? {},
          value: decoded.value,
        } as ConsumedMessageOf<R>;
        let outcome: Outcome;
        try {
          outcome = await this.#handle(consumed, heartbeat);
        } catch (error) {
          this.#fail(error);
          break;
        }
        if (outcome.kind === 'abandoned') break;
        if (outcome.kind === 'interrupted') {
          interruption = outcome.error;
          break;
        }
        if (outcome.kind === 'rejected') deadLetter(message, 'handler', outcome.reason);
      } else {
        deadLetter(message, decoded.category, decoded.reason);
      }
      done = message.offset;
      try {
        // kafkajs sends one only every heartbeatInterval (3 s): a long batch keeps its partitions.
        await heartbeat();
      } catch (error) {
        interruption = error;
        break;
      }
    }
    // Even when a handler's failure is stopping the consumer: what was done before it is done.
    if (done !== undefined) {
      // Dead letters first, commit after: a crash in between re-delivers, never loses.
      if (letters.length > 0) {
        try {
          await this.#writer.write(letters);
        } catch (error) {
          this.#fail(error);
          return;
        }
        for (const [category, count] of lettersByCategory) this.#counts.deadLettered[category] += count;
      }
      payload.resolveOffset(done);
      const next = { topic: batch.topic, partition: batch.partition, offset: (BigInt(done) + 1n).toString() };
      const intervalMs = this.#options.commitIntervalMs ?? 0;
      if (intervalMs <= 0) {
        await this.#commit(payload, [next]);
      } else {
        this.#uncommitted.set(`${next.topic}\0${next.partition}`, next);
        const due = this.#wallTime().nowMs() - this.#lastCommitMs >= intervalMs;
        // Otherwise a later batch commits it, or stop() does.
        if (due || interruption !== undefined || this.#stopping !== undefined)
          await this.#commitHandled(payload);
      }
    }
    // kafkajs rejoins the group on a rebalance error.
    if (interruption !== undefined) throw interruption;
  }

  /**
   * Commits the offsets (each the next to read of its partition), from a batch in hand. A
   * coordinator that is loading or moving (a broker restarting, a fresh cluster) is waited for:
   * kafkajs would treat it as a rebalance, rejoin, and hand the whole batch over again. A real
   * rebalance is not retried: the partition may be another member's already.
   */
  async #commit(
    payload: EachBatchPayload,
    offsets: ReadonlyArray<{ topic: string; partition: number; offset: string }>,
  ): Promise<void> {
    const byTopic = new Map<string, Array<{ partition: number; offset: string }>>();
    for (const { topic, partition, offset } of offsets) {
      const partitions = byTopic.get(topic) ?? [];
      partitions.push({ partition, offset });
      byTopic.set(topic, partitions);
    }
    const topics = [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
    for (let attempt = 0; ; attempt++) {
      try {
        await payload.commitOffsetsIfNecessary({ topics });
        return;
      } catch (error) {
        const type = (error as { type?: unknown }).type;
        if (attempt >= this.#retry.retries || typeof type !== 'string' || !COORDINATOR_CHURN.has(type))
          throw error;
        await this.#wait(this.#delayMs(attempt));
      }
    }
  }

  /**
   * With commitIntervalMs: commits every partition's handled offsets in one request, one commit at
   * a time. From a batch in hand its payload commits (a failure reaches kafkajs, which rejoins);
   * from stop() the consumer does, and a failure only leaves the offsets to be delivered again.
   */
  async #commitHandled(payload?: EachBatchPayload): Promise<void> {
    while (this.#committing !== undefined) await this.#committing.catch(() => {});
    if (this.#uncommitted.size === 0) return;
    const offsets = [...this.#uncommitted.values()];
    this.#uncommitted.clear();
    this.#lastCommitMs = this.#wallTime().nowMs();
    this.#committing =
      payload === undefined
        ? this.#consumer.commitOffsets(offsets).then(() => {})
        : this.#commit(payload, offsets);
    try {
      await this.#committing;
    } finally {
      this.#committing = undefined;
    }
  }

  #wallTime(): WallTime {
    return this.#options.wallTime ?? systemWallTime;
  }

  /**
   * Runs the handler with retries of retriable failures, heartbeating while it waits.
   * @throws LiveConsumerError HANDLER_RETRIES_EXHAUSTED
   */
  async #handle(message: ConsumedMessageOf<R>, heartbeat: () => Promise<void>): Promise<Outcome> {
    // A heartbeat that failed inside the handler: the group is rebalancing, whatever the handler threw.
    let heartbeatFailure: { error: unknown } | undefined;
    const context: HandlerContext = {
      heartbeat: async () => {
        try {
          await heartbeat();
        } catch (error) {
          heartbeatFailure = { error };
          throw error;
        }
      },
    };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.#options.handle(message, context);
        this.#counts.handled++;
        return { kind: 'handled' };
      } catch (error) {
        if (heartbeatFailure !== undefined) return { kind: 'interrupted', error: heartbeatFailure.error };
        if (!isRetriableKafkaError(error)) {
          return { kind: 'rejected', reason: formatReason('handler', describeError(error)) };
        }
        const where = `${message.topic} partition ${message.partition} offset ${message.offset}`;
        if (attempt >= this.#retry.retries) {
          throw new LiveConsumerError(
            'HANDLER_RETRIES_EXHAUSTED',
            `consumer group ${this.groupId}: the handler still failed on ${where} after ${attempt + 1} attempts; ` +
              'the message is not committed and will be delivered again',
            { retriable: true, cause: error },
          );
        }
        if (this.#stopping !== undefined) return { kind: 'abandoned' };
        this.#counts.retried++;
        try {
          // Around the wait, which may be longer than a heartbeat interval.
          await heartbeat();
          await this.#wait(this.#delayMs(attempt));
          if (this.#abort.signal.aborted) return { kind: 'abandoned' };
          await heartbeat();
        } catch (interruption) {
          return { kind: 'interrupted', error: interruption };
        }
      }
    }
  }

  /** Exponential backoff with ±20% jitter, as kafkajs retries its own requests. */
  #delayMs(attempt: number): number {
    const { initialDelayMs, maxDelayMs } = this.#retry;
    const jitter = 0.8 + 0.4 * (this.#options.random ?? MATH_RANDOM).next();
    return Math.min(maxDelayMs, Math.round(initialDelayMs * 2 ** attempt * jitter));
  }

  #now(): number {
    return (this.#options.epochMs ?? Date.now)();
  }

  /** Resolves after `delayMs`, or at once when stop() is called (the timer then fires into nothing). */
  #wait(delayMs: number): Promise<void> {
    const signal = this.#abort.signal;
    return new Promise((resolve) => {
      if (signal.aborted) {
        resolve();
        return;
      }
      const wake = (): void => {
        signal.removeEventListener('abort', wake);
        resolve();
      };
      signal.addEventListener('abort', wake, { once: true });
      this.#wallTime().after(delayMs, wake);
    });
  }
}

const MATH_RANDOM: Rng = { next: Math.random };

/** kafkajs error types of a group coordinator that is loading or has moved: worth waiting for. */
const COORDINATOR_CHURN = new Set([
  'GROUP_LOAD_IN_PROGRESS',
  'GROUP_COORDINATOR_NOT_AVAILABLE',
  'NOT_COORDINATOR_FOR_GROUP',
]);

/** The error as one line: formatError's text without its hint about stacks (a reason is not a terminal). */
function describeError(error: unknown): string {
  return formatError(error, { debug: false })
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('(set PHASEBENCH_DEBUG'))
    .join('; ');
}
