/**
 * The dead-letter topic, `phasebench.dlq`: where a consumer puts each message it cannot use,
 * with where the message was (topic, partition, offset), its bytes and why it was rejected. A
 * dead letter is itself a message of messages.ts (`deadLetter`), so tools read the topic with
 * decodeMessage('dlq', …).
 *
 * A rejected value is kept whole when it is within the data topics' size limit, so it can be
 * replayed once whatever rejected it is fixed; only an oversized value is cut, to its first
 * MAX_KEPT_VALUE_BYTES. Kept bytes are text when they are UTF-8 that JSON can carry about as
 * compactly as base64, and base64 otherwise, so a dead letter stays within the DLQ's own limit.
 */
import { isUtf8 } from 'node:buffer';
import type { IHeaders, Kafka, KafkaMessage, Message, Producer } from 'kafkajs';
import { PhasebenchError } from '../errors.ts';
import { DEFAULT_TOPICS, isRetriableKafkaError } from './kafka-config.ts';
import {
  type DeadLetter,
  type DeadLetterCategory,
  MESSAGE_BYTE_LIMITS,
  MESSAGE_SCHEMA_VERSION,
  type RawBytes,
  RUN_HEADER,
  VERSION_HEADER,
} from './messages.ts';

/** Bytes of a rejected value a dead letter keeps: the largest valid data message, whole. */
export const MAX_KEPT_VALUE_BYTES = Math.max(
  MESSAGE_BYTE_LIMITS.commands,
  MESSAGE_BYTE_LIMITS.pushes,
  MESSAGE_BYTE_LIMITS.deviceEvents,
  MESSAGE_BYTE_LIMITS.events,
);
/** Bytes of a rejected key a dead letter keeps; keys are ids, a longer one is cut. */
export const MAX_KEPT_KEY_BYTES = 1024;

/**
 * Bytes of dead letters per produce request. The broker rejects a record batch over
 * message.max.bytes (1 MiB by default) and the DLQ has one partition, so one request's letters
 * are one batch: a few oversized originals are enough to need several requests.
 */
const MAX_REQUEST_BYTES = 512 * 1024;

/** The message that could not be used, as kafkajs delivered it, and where it was. */
export interface RejectedMessage {
  topic: string;
  partition: number;
  message: Pick<KafkaMessage, 'offset' | 'timestamp' | 'key' | 'value' | 'headers'>;
}

/** A dead letter ready to produce: the payload, the original key, and headers. */
export interface DeadLetterRecord {
  letter: DeadLetter;
  key: Buffer | null;
  headers: IHeaders;
}

/**
 * The dead letter for `rejected`. `reason` is already formatted (messages.ts formatReason);
 * `detectedAt` is epoch ms.
 */
export function deadLetterFor(
  rejected: RejectedMessage,
  verdict: { category: DeadLetterCategory; reason: string },
  group: string,
  detectedAt: number,
): DeadLetterRecord {
  const { message } = rejected;
  const letter: DeadLetter = {
    v: MESSAGE_SCHEMA_VERSION,
    type: 'deadLetter',
    topic: rejected.topic,
    partition: rejected.partition,
    offset: message.offset,
    timestamp: message.timestamp,
    key: rawBytes(message.key, MAX_KEPT_KEY_BYTES),
    value: rawBytes(message.value, MAX_KEPT_VALUE_BYTES),
    category: verdict.category,
    reason: verdict.reason,
    group,
    detectedAt,
  };
  const headers: IHeaders = { [VERSION_HEADER]: String(MESSAGE_SCHEMA_VERSION) };
  // The run header lets per-run tools find their rejects without parsing every letter.
  const run = message.headers?.[RUN_HEADER];
  if ((typeof run === 'string' || Buffer.isBuffer(run)) && run.length <= MAX_KEPT_KEY_BYTES) {
    headers[RUN_HEADER] = run;
  }
  // The original key, so the letter sorts with its entity; cut like the copy in the letter.
  return { letter, key: message.key?.subarray(0, MAX_KEPT_KEY_BYTES) ?? null, headers };
}

/** The first `maxBytes` of `bytes`, as UTF-8 text when that is compact, else base64. */
export function rawBytes(bytes: Buffer | null, maxBytes: number): RawBytes | null {
  if (bytes === null) return null;
  const kept = bytes.length > maxBytes ? bytes.subarray(0, maxBytes) : bytes;
  const base64 = kept.toString('base64');
  const base = { bytes: bytes.length, truncated: kept.length < bytes.length };
  if (isUtf8(kept)) {
    const text = kept.toString('utf8');
    // Control characters cost six bytes each as JSON escapes; base64 never costs more than 4/3.
    if (Buffer.byteLength(JSON.stringify(text)) <= base64.length + 2) {
      return { encoding: 'utf8', data: text, ...base };
    }
  }
  return { encoding: 'base64', data: base64, ...base };
}

/** The kept bytes of a dead letter's key or value (a prefix of the original when truncated). */
export function keptBytes(raw: RawBytes): Buffer {
  return Buffer.from(raw.data, raw.encoding);
}

export type DeadLetterErrorCode =
  /** The DLQ topic does not exist or the brokers cannot be reached. */
  | 'DLQ_NOT_AVAILABLE'
  /** Producing dead letters failed after kafkajs's own retries. */
  | 'DLQ_WRITE_FAILED';

export class DeadLetterError extends PhasebenchError {
  override name = 'DeadLetterError';
  declare readonly code: DeadLetterErrorCode;

  constructor(
    code: DeadLetterErrorCode,
    message: string,
    details: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { retriable: details.retriable ?? false, cause: details.cause });
  }
}

/** Produces dead letters to the DLQ topic, acknowledged by every in-sync replica. */
export class DeadLetterWriter {
  readonly topic: string;
  readonly #producer: Producer;
  #closing: Promise<void> | undefined;

  private constructor(topic: string, producer: Producer) {
    this.topic = topic;
    this.#producer = producer;
  }

  /**
   * A writer on an existing DLQ topic (default DEFAULT_TOPICS.dlq.name; see createTopics).
   * @throws DeadLetterError DLQ_NOT_AVAILABLE (retriable when the brokers cannot be reached).
   */
  static async open(options: { kafka: Kafka; topic?: string }): Promise<DeadLetterWriter> {
    const topic = options.topic ?? DEFAULT_TOPICS.dlq.name;
    const admin = options.kafka.admin();
    let topics: string[];
    try {
      await admin.connect();
      topics = await admin.listTopics();
    } catch (cause) {
      throw new DeadLetterError('DLQ_NOT_AVAILABLE', `cannot reach the Kafka brokers of DLQ topic ${topic}`, {
        retriable: isRetriableKafkaError(cause),
        cause,
      });
    } finally {
      await admin.disconnect().catch(() => {});
    }
    if (!topics.includes(topic)) {
      throw new DeadLetterError(
        'DLQ_NOT_AVAILABLE',
        `DLQ topic ${topic} does not exist (topics are not created automatically: ` +
          'see createTopics in harness/live/kafka-config.ts)',
      );
    }
    // Idempotent: kafkajs's retries of a request the broker already stored do not store it twice.
    const producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
    try {
      await producer.connect();
    } catch (cause) {
      await producer.disconnect().catch(() => {});
      throw new DeadLetterError('DLQ_NOT_AVAILABLE', `cannot connect a producer for DLQ topic ${topic}`, {
        retriable: isRetriableKafkaError(cause),
        cause,
      });
    }
    return new DeadLetterWriter(topic, producer);
  }

  /**
   * Resolves once every letter is stored. A failed write may have stored a prefix of them.
   * @throws DeadLetterError DLQ_WRITE_FAILED (retriable when kafkajs says so).
   */
  async write(records: readonly DeadLetterRecord[]): Promise<void> {
    if (this.#closing !== undefined) {
      throw new DeadLetterError('DLQ_WRITE_FAILED', `DLQ topic ${this.topic}: the writer is closed`);
    }
    for (const messages of toProduceRequests(records)) {
      try {
        await this.#producer.send({ topic: this.topic, acks: -1, messages });
      } catch (cause) {
        throw new DeadLetterError(
          'DLQ_WRITE_FAILED',
          `writing ${records.length} dead letters to topic ${this.topic} failed`,
          { retriable: isRetriableKafkaError(cause), cause },
        );
      }
    }
  }

  /** Disconnects the producer. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#producer.disconnect().catch((cause: unknown) => {
      throw new DeadLetterError('DLQ_WRITE_FAILED', `closing the producer of DLQ topic ${this.topic}`, {
        retriable: isRetriableKafkaError(cause),
        cause,
      });
    });
    return this.#closing;
  }
}

/** The letters as produce requests of at most MAX_REQUEST_BYTES each (at least one letter). */
function toProduceRequests(records: readonly DeadLetterRecord[]): Message[][] {
  const requests: Message[][] = [];
  let messages: Message[] = [];
  let bytes = 0;
  for (const { letter, key, headers } of records) {
    const value = JSON.stringify(letter);
    const messageBytes = Buffer.byteLength(value) + (key?.length ?? 0);
    if (messages.length > 0 && bytes + messageBytes > MAX_REQUEST_BYTES) {
      requests.push(messages);
      messages = [];
      bytes = 0;
    }
    messages.push({ key, value, headers });
    bytes += messageBytes;
  }
  if (messages.length > 0) requests.push(messages);
  return requests;
}
