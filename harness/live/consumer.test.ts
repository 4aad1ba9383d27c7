/**
 * DeadLetteringConsumer against a real broker (scripts/kafka.sh), never a mock: a thousand
 * malformed messages among valid ones, handler failures, a graceful stop and a restart. Needs the
 * jars (`bash scripts/kafka.sh fetch`) and Java; without them every test here fails and says why.
 * The broker runs on a port of this file's own, and every test uses topics and groups of its own.
 */
import { randomUUID } from 'node:crypto';
import { type Admin, ConfigResourceTypes, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { PhasebenchError } from '../errors.ts';
import { type KafkaBroker, startBroker, stopBroker } from './broker.ts';
import { type ConsumedRole, DeadLetteringConsumer, type DeadLetteringConsumerOptions } from './consumer.ts';
import { keptBytes, MAX_KEPT_VALUE_BYTES } from './dlq.ts';
import { createTopics, kafkaClient, type LiveTopics, liveTopics } from './kafka-config.ts';
import {
  type DeadLetter,
  type DeadLetterCategory,
  decodeMessage,
  REASON_PREFIXES,
  type RejectionCategory,
} from './messages.ts';

/** Not TEST_BROKER_PORT (harness/log/kafka.test.ts): test files run in parallel. */
const PORT = 19292;
const RUN = 'consumer-test/phased/s1';

let broker: KafkaBroker | undefined;
let kafka: Kafka;
let admin: Admin;
let producer: Producer;

/** Why the broker or the clients could not start: every test then fails with it (never skips). */
let setupFailure: unknown;

beforeAll(async () => {
  try {
    // A broker from harness/live/vitest.global-setup.ts when that is configured, else our own.
    let bootstrap = inject('kafkaBootstrap');
    if (bootstrap === undefined) {
      broker = await startBroker({ port: PORT });
      bootstrap = broker.bootstrap;
    }
    kafka = kafkaClient({ brokers: [bootstrap], clientId: 'phasebench-consumer-test' });
    admin = kafka.admin();
    await admin.connect();
    // Idempotent: a request retried on a loaded machine must not append its batch twice (the
    // test knows each message by the offset the broker reported for it).
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
  } catch (error) {
    setupFailure = error;
  }
});

beforeEach(() => {
  if (setupFailure !== undefined) throw setupFailure;
});

afterAll(async () => {
  await producer?.disconnect();
  await admin?.disconnect();
  if (broker !== undefined) await stopBroker(broker);
});

/** Topics of one test's own: commands, device events and the DLQ exist; `partitions` per work topic. */
async function newTopics(partitions = 6): Promise<LiveTopics> {
  const topics = liveTopics({
    prefix: `test-${randomUUID()}.`,
    topics: { commands: { partitions }, deviceEvents: { partitions } },
  });
  await createTopics(admin, [topics.commands, topics.deviceEvents, topics.dlq]);
  return topics;
}

interface Outgoing {
  key: string | null;
  value: Buffer | null;
  partition: number;
}

/** Bytes per produce request: a record batch must stay under the broker's 1 MiB. */
const REQUEST_BYTES = 512 * 1024;

/** Produces in order; returns each message's offset. */
async function produce(topic: string, messages: readonly Outgoing[]): Promise<string[]> {
  const offsets: string[] = [];
  for (let start = 0; start < messages.length; ) {
    let end = start;
    let bytes = 0;
    while (
      end < messages.length &&
      (end === start || bytes + (messages[end]!.value?.length ?? 0) <= REQUEST_BYTES)
    ) {
      bytes += messages[end]!.value?.length ?? 0;
      end++;
    }
    const chunk = messages.slice(start, end);
    const metadata = await producer.send({ topic, acks: -1, messages: chunk });
    const next = new Map(metadata.map((m) => [m.partition, BigInt(m.baseOffset ?? '0')]));
    for (const message of chunk) {
      const offset = next.get(message.partition)!;
      offsets.push(offset.toString());
      next.set(message.partition, offset + 1n);
    }
    start = end;
  }
  return offsets;
}

/** Every message of a single-partition topic, up to its current end. */
async function readTopic(topic: string): Promise<KafkaMessage[]> {
  const end = Number((await admin.fetchTopicOffsets(topic))[0]!.high);
  const messages: KafkaMessage[] = [];
  if (end === 0) return messages;
  const reader = kafka.consumer({ groupId: `reader-${randomUUID()}`, maxWaitTimeInMs: 100 });
  try {
    await reader.connect();
    await reader.subscribe({ topic, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ message }) => {
        if (Number(message.offset) < end) messages.push(message);
      },
    });
    await vi.waitFor(() => expect(messages).toHaveLength(end), { timeout: 30_000, interval: 50 });
  } finally {
    await reader.disconnect();
  }
  return messages;
}

async function committedOffsets(groupId: string, topic: string): Promise<Map<number, string>> {
  const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
  return new Map(committed!.partitions.map(({ partition, offset }) => [partition, offset]));
}

async function endOffsets(topic: string): Promise<Map<number, string>> {
  return new Map((await admin.fetchTopicOffsets(topic)).map(({ partition, high }) => [partition, high]));
}

/** A deterministic stream of numbers in [0, 1), so a failure can be reproduced. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const user = (n: number): string => `u${String(n).padStart(6, '0')}`;
const pin = (n: number): string => (0x20000000 + n).toString(16).toUpperCase();
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));

function validMessage(role: 'commands' | 'deviceEvents', n: number): { key: string; value: object } {
  if (role === 'commands') {
    const value = [
      { v: 1, type: 'moveUser', run: RUN, user: user(n), to: 'BES05A', phase: n % 7, at: n * 1000 },
      { v: 1, type: 'changeItPolicy', run: RUN, user: user(n), policy: 'Default IT Policy 2', at: n },
      { v: 1, type: 'activateDevice', run: RUN, user: user(n), device: pin(n), at: n },
    ][n % 3]!;
    return { key: user(n), value };
  }
  const value = [
    { v: 1, type: 'acknowledged', run: RUN, push: n, device: pin(n), at: n * 10 },
    { v: 1, type: 'coverageChanged', run: RUN, device: pin(n), online: n % 2 === 0, at: n },
    { v: 1, type: 'activationMessage', run: RUN, device: pin(n), user: user(n), at: n },
  ][n % 3]!;
  return { key: pin(n), value };
}

/** One of 20 slots per cycle: 3 empty, 2 oversized, 5 not JSON, 4 unknown type, 6 schema. */
const SLOTS: readonly RejectionCategory[] = [
  ...Array<RejectionCategory>(3).fill('empty'),
  ...Array<RejectionCategory>(2).fill('oversized'),
  ...Array<RejectionCategory>(5).fill('notJson'),
  ...Array<RejectionCategory>(4).fill('unknownType'),
  ...Array<RejectionCategory>(6).fill('schema'),
];

/** A malformed message for `role` whose decoding fails with `category`, varied by `n`. */
function malformedMessage(
  role: 'commands' | 'deviceEvents',
  category: RejectionCategory,
  n: number,
): { key: string | null; value: Buffer | null } {
  const { key, value } = validMessage(role, n);
  const valid = value as Record<string, unknown>;
  switch (category) {
    case 'empty':
      return { key, value: n % 2 === 0 ? null : Buffer.alloc(0) };
    case 'oversized':
      // Valid-looking JSON, 1 byte to 30 KiB over the limit.
      return { key, value: json({ ...valid, padding: 'x'.repeat(64 * 1024 + (n % 30) * 1024) }) };
    case 'notJson':
      return {
        key: n % 5 === 0 ? null : key,
        value: [
          Buffer.from(JSON.stringify(valid).slice(0, -3)),
          Buffer.from(`hello ${n}`),
          Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
          Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(String(n))]),
          Buffer.from(`{'v': 1, 'type': '${valid.type}'}`),
        ][n % 5]!,
      };
    case 'unknownType':
      return {
        key,
        value: json(
          n % 2 === 0
            ? { ...valid, type: 'teleportUser' }
            : // A message of the other topic, sent to the wrong one.
              validMessage(role === 'commands' ? 'deviceEvents' : 'commands', n).value,
        ),
      };
    case 'schema':
      return {
        key,
        value: [
          json({ ...valid, run: undefined }),
          json({ ...valid, at: 'later' }),
          json({ ...valid, v: 2 }),
          json({ ...valid, colour: 'red' }),
          Buffer.from('[1, 2, 3]'),
          json({ ...valid, type: 42 }),
        ][n % 6]!,
      };
  }
}

function startConsumer<R extends ConsumedRole>(
  options: Omit<DeadLetteringConsumerOptions<R>, 'kafka' | 'groupId' | 'maxWaitTimeInMs'> & {
    groupId?: string;
  },
): Promise<DeadLetteringConsumer<R>> {
  return DeadLetteringConsumer.start({
    kafka,
    groupId: `test-${randomUUID()}`,
    maxWaitTimeInMs: 100,
    ...options,
  });
}

const coordinates = (topic: string, partition: number, offset: string): string =>
  `${topic}/${partition}/${offset}`;

describe('DeadLetteringConsumer', () => {
  it('dead-letters 1,000 malformed messages with their reasons and coordinates, hands every valid one over (once unless the group rebalanced), and keeps running', async () => {
    const topics = await newTopics();
    const random = seeded(7);
    const roles = ['commands', 'deviceEvents'] as const;
    interface Expected {
      role: (typeof roles)[number];
      category: RejectionCategory | 'valid';
      key: string | null;
      value: Buffer | null;
      partition: number;
    }
    const outgoing: Expected[] = [];
    let malformed = 0;
    for (let n = 0; outgoing.length < 1_300; n++) {
      const role = roles[n % 2]!;
      const partition = Math.floor(random() * 6);
      // Three valid messages in every thirteen, spread among the malformed ones.
      if (n % 13 === 0 || n % 13 === 4 || n % 13 === 8) {
        const { key, value } = validMessage(role, n);
        outgoing.push({ role, category: 'valid', key, value: json(value), partition });
      } else {
        const category = SLOTS[malformed % SLOTS.length]!;
        malformed++;
        outgoing.push({ role, category, ...malformedMessage(role, category, n), partition });
      }
    }
    expect(outgoing.filter((message) => message.category !== 'valid')).toHaveLength(1_000);

    // Produce each topic's share in order; remember where each message landed.
    const expected = new Map<string, Expected>();
    for (const role of roles) {
      const mine = outgoing.filter((message) => message.role === role);
      const offsets = await produce(topics[role].name, mine);
      mine.forEach((message, index) => {
        expected.set(coordinates(topics[role].name, message.partition, offsets[index]!), message);
      });
    }

    const handled = new Map<string, number>();
    const handledValues = new Map<string, unknown>();
    const started = performance.now();
    const consumer = await startConsumer({
      topics,
      roles: ['commands', 'deviceEvents'],
      fromBeginning: true,
      handle: async (message) => {
        const at = coordinates(message.topic, message.partition, message.offset);
        handled.set(at, (handled.get(at) ?? 0) + 1);
        handledValues.set(at, message.value);
      },
    });
    try {
      // Done when everything is committed (committing follows handling and dead-lettering).
      await vi.waitFor(
        async () => {
          for (const role of roles) {
            expect(await committedOffsets(consumer.groupId, topics[role].name)).toEqual(
              await endOffsets(topics[role].name),
            );
          }
        },
        { timeout: 45_000, interval: 100 },
      );
      const consumedMs = performance.now() - started;
      // At-least-once: a rebalance hands over again what was handled but not yet committed. With
      // no rebalance (one join), nothing may come twice.
      const rejoined = consumer.counts().groupJoins > 1;
      const atMost = rejoined ? 2 : 1;

      // Every valid message reached the handler, as it was sent; once unless the group rebalanced.
      const valid = [...expected].filter(([, message]) => message.category === 'valid');
      expect(handled.size).toBe(valid.length);
      for (const [at, message] of valid) {
        expect(handled.get(at), at).toBeGreaterThanOrEqual(1);
        expect(handled.get(at), at).toBeLessThanOrEqual(atMost);
        expect(handledValues.get(at), at).toEqual(JSON.parse(message.value!.toString()));
      }
      expect(consumer.counts().handled).toBe([...handled.values()].reduce((a, b) => a + b, 0));

      // Every malformed message is in the DLQ at its coordinates, with its bytes; once unless the
      // group rebalanced.
      const letters = await readTopic(topics.dlq.name);
      const byCategory = new Map<DeadLetterCategory, number>();
      const lettersByCategory = new Map<DeadLetterCategory, number>();
      const seen = new Map<string, number>();
      for (const raw of letters) {
        const decoded = decodeMessage('dlq', raw.value);
        if (!decoded.ok) throw new Error(`a dead letter that is not one: ${decoded.reason}`);
        const letter: DeadLetter = decoded.value;
        const at = coordinates(letter.topic, letter.partition, letter.offset);
        const original = expected.get(at);
        expect(original, `${at} was produced`).toBeDefined();
        lettersByCategory.set(letter.category, (lettersByCategory.get(letter.category) ?? 0) + 1);
        seen.set(at, (seen.get(at) ?? 0) + 1);
        expect(seen.get(at), `${at} dead-lettered at most ${atMost} time(s)`).toBeLessThanOrEqual(atMost);
        if (seen.get(at)! > 1) continue;
        expect(letter.category, at).toBe(original!.category);
        expect(letter.reason.startsWith(REASON_PREFIXES[letter.category]), letter.reason).toBe(true);
        // The reason is the decoder's own verdict on the original bytes.
        expect(decodeMessage(original!.role, original!.value)).toMatchObject({
          ok: false,
          reason: letter.reason,
        });
        expect(letter.group).toBe(consumer.groupId);
        expect(raw.key?.toString() ?? null).toBe(original!.key);
        if (original!.value === null) {
          expect(letter.value).toBeNull();
        } else {
          expect(letter.value).toMatchObject({
            bytes: original!.value.length,
            truncated: original!.value.length > MAX_KEPT_VALUE_BYTES,
          });
          expect(keptBytes(letter.value!).equals(original!.value.subarray(0, MAX_KEPT_VALUE_BYTES)), at).toBe(
            true,
          );
        }
        byCategory.set(letter.category, (byCategory.get(letter.category) ?? 0) + 1);
      }
      expect(seen.size).toBe(1_000);
      expect(Object.fromEntries(byCategory)).toEqual({
        empty: 150,
        oversized: 100,
        notJson: 250,
        unknownType: 200,
        schema: 300,
      });
      expect(consumer.counts().deadLettered).toEqual({
        ...Object.fromEntries(lettersByCategory),
        handler: 0,
      });

      // Still running: a valid and a malformed message sent now are dealt with too.
      expect(consumer.running).toBe(true);
      const late = validMessage('commands', 9_999);
      const [lateOffset] = await produce(topics.commands.name, [
        { key: late.key, value: json(late.value), partition: 0 },
      ]);
      await produce(topics.deviceEvents.name, [{ key: null, value: Buffer.from('{oops'), partition: 0 }]);
      await vi.waitFor(
        () => {
          expect(handled.get(coordinates(topics.commands.name, 0, lateOffset!))).toBe(1);
          expect(consumer.counts().deadLettered.notJson).toBe((lettersByCategory.get('notJson') ?? 0) + 1);
        },
        { timeout: 15_000, interval: 50 },
      );
      console.info(
        `consumer: 1,300 messages (1,000 malformed, ~${Math.round(outgoing.reduce((sum, m) => sum + (m.value?.length ?? 0), 0) / 1024 / 1024)} MiB) handled and dead-lettered in ${Math.round(consumedMs)} ms`,
      );
    } finally {
      await consumer.stop();
    }
    await expect(consumer.done).resolves.toBeUndefined();
    expect(consumer.running).toBe(false);
  });

  it('dead-letters a message whose handler fails for good, and retries a retriable failure until it passes', async () => {
    const topics = await newTopics(1);
    const sent = [0, 1, 2, 3].map((n) => validMessage('commands', n));
    const offsets = await produce(
      topics.commands.name,
      sent.map(({ key, value }) => ({ key, value: json(value), partition: 0 })),
    );
    const attempts = new Map<string, number>();
    const handled: string[] = [];
    const consumer = await startConsumer({
      topics,
      roles: ['commands'],
      fromBeginning: true,
      retry: { initialDelayMs: 5, maxDelayMs: 20 },
      handle: async (message) => {
        const attempt = (attempts.get(message.offset) ?? 0) + 1;
        attempts.set(message.offset, attempt);
        if (message.offset === offsets[1])
          throw new TypeError(
            `cannot read 'phase' of user ${'user' in message.value ? message.value.user : '?'}`,
          );
        if (message.offset === offsets[2] && attempt <= 2) {
          throw new PhasebenchError('LOG_WRITE_FAILED', 'the event log is restarting', { retriable: true });
        }
        handled.push(message.offset);
      },
    });
    try {
      await vi.waitFor(() => expect(handled).toEqual([offsets[0], offsets[2], offsets[3]]), {
        timeout: 30_000,
        interval: 50,
      });
      await vi.waitFor(() => expect(consumer.counts().deadLettered.handler).toBe(1), { timeout: 10_000 });
      expect(attempts.get(offsets[1]!)).toBe(1);
      expect(attempts.get(offsets[2]!)).toBe(3);
      expect(consumer.counts()).toMatchObject({ handled: 3, retried: 2 });

      const [letter] = (await readTopic(topics.dlq.name)).map((raw) => decodeMessage('dlq', raw.value));
      expect(letter).toMatchObject({
        ok: true,
        value: {
          topic: topics.commands.name,
          partition: 0,
          offset: offsets[1],
          category: 'handler',
          reason: "handler: TypeError: cannot read 'phase' of user u000001",
        },
      });
      expect(await committedOffsets(consumer.groupId, topics.commands.name)).toEqual(
        await endOffsets(topics.commands.name),
      );
    } finally {
      await consumer.stop();
    }
  });

  it('stops without committing a message whose retriable failure outlasts the retries; the group gets it again', async () => {
    const topics = await newTopics(1);
    const sent = [0, 1, 2].map((n) => validMessage('commands', n));
    const offsets = await produce(
      topics.commands.name,
      sent.map(({ key, value }) => ({ key, value: json(value), partition: 0 })),
    );
    const groupId = `test-${randomUUID()}`;
    const outage = new PhasebenchError('LOG_WRITE_FAILED', 'the event log is down', { retriable: true });
    const first = await startConsumer({
      groupId,
      topics,
      roles: ['commands'],
      fromBeginning: true,
      retry: { retries: 2, initialDelayMs: 5, maxDelayMs: 20 },
      handle: async (message) => {
        if (message.offset === offsets[1]) throw outage;
      },
    });
    const error = await first.done.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toMatchObject({ code: 'HANDLER_RETRIES_EXHAUSTED', retriable: true, cause: outage });
    expect((error as Error).message).toContain(
      `${topics.commands.name} partition 0 offset ${offsets[1]} after 3 attempts`,
    );
    expect(first.running).toBe(false);
    expect(first.counts()).toMatchObject({ handled: 1, retried: 2 });
    // The message before is committed; the failed one is not.
    expect(await committedOffsets(groupId, topics.commands.name)).toEqual(new Map([[0, offsets[1]]]));

    const redelivered: string[] = [];
    const second = await startConsumer({
      groupId,
      topics,
      roles: ['commands'],
      handle: async (message) => {
        redelivered.push(message.offset);
      },
    });
    try {
      await vi.waitFor(() => expect(redelivered).toEqual([offsets[1], offsets[2]]), {
        timeout: 30_000,
        interval: 50,
      });
    } finally {
      await second.stop();
    }
    expect((await readTopic(topics.dlq.name)).length).toBe(0);
  });

  it('commits nothing past a message whose dead letter could not be written; the group gets it again', async () => {
    const topics = liveTopics({
      prefix: `test-${randomUUID()}.`,
      // Small enough that the broker refuses the dead letter of a 4 KiB value.
      topics: { commands: { partitions: 1 }, dlq: { configs: { 'max.message.bytes': '2048' } } },
    });
    await createTopics(admin, [topics.commands, topics.dlq]);
    const before = validMessage('commands', 1);
    const offsets = await produce(topics.commands.name, [
      { key: before.key, value: json(before.value), partition: 0 },
      { key: 'u000002', value: Buffer.from(`{"v":1,${' '.repeat(4096)}`), partition: 0 },
    ]);
    const groupId = `test-${randomUUID()}`;
    const handled: string[] = [];
    const handle = async (message: { offset: string }): Promise<void> => {
      handled.push(message.offset);
    };
    const first = await startConsumer({ groupId, topics, roles: ['commands'], fromBeginning: true, handle });
    const error = await first.done.then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toMatchObject({ code: 'DLQ_WRITE_FAILED' });
    expect(handled).toContain(offsets[0]);
    // The letter is not stored, so its message is not committed (nor anything of its batch after it).
    const committed = (await committedOffsets(groupId, topics.commands.name)).get(0)!;
    expect(BigInt(committed)).toBeLessThanOrEqual(BigInt(offsets[1]!));

    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topics.dlq.name,
          configEntries: [{ name: 'max.message.bytes', value: String(1024 * 1024) }],
        },
      ],
    });
    const second = await startConsumer({ groupId, topics, roles: ['commands'], fromBeginning: true, handle });
    try {
      await vi.waitFor(() => expect(second.counts().deadLettered.notJson).toBe(1), {
        timeout: 30_000,
        interval: 50,
      });
    } finally {
      await second.stop();
    }
    const [letter] = (await readTopic(topics.dlq.name)).map((raw) => decodeMessage('dlq', raw.value));
    expect(letter).toMatchObject({ ok: true, value: { offset: offsets[1], category: 'notJson' } });
  });

  it('stops gracefully mid-stream, committing what it handled, so a restarted member handles each message once', async () => {
    const topics = await newTopics(2);
    const sent = Array.from({ length: 200 }, (_, n) => validMessage('deviceEvents', n));
    await produce(
      topics.deviceEvents.name,
      sent.map(({ key, value }, n) => ({ key, value: json(value), partition: n % 2 })),
    );
    const groupId = `test-${randomUUID()}`;
    const handled = new Map<string, number>();
    const handle = async (message: { topic: string; partition: number; offset: string }): Promise<void> => {
      const at = coordinates(message.topic, message.partition, message.offset);
      handled.set(at, (handled.get(at) ?? 0) + 1);
      // Slow enough that stop() lands mid-batch.
      await new Promise((resolve) => setTimeout(resolve, 2));
    };
    const first = await startConsumer({
      groupId,
      topics,
      roles: ['deviceEvents'],
      fromBeginning: true,
      handle,
    });
    await vi.waitFor(() => expect(handled.size).toBeGreaterThanOrEqual(40), { timeout: 30_000, interval: 5 });
    await first.stop();
    await expect(first.done).resolves.toBeUndefined();
    const handledBeforeStop = handled.size;
    expect(handledBeforeStop).toBeLessThan(200);

    // fromBeginning again: a partition the first member never reached has no committed offset.
    const second = await startConsumer({
      groupId,
      topics,
      roles: ['deviceEvents'],
      fromBeginning: true,
      handle,
    });
    try {
      await vi.waitFor(() => expect(handled.size).toBe(200), { timeout: 30_000, interval: 50 });
    } finally {
      await second.stop();
    }
    expect([...handled.values()].filter((count) => count !== 1)).toEqual([]);
    expect(second.counts().handled).toBe(200 - handledBeforeStop);
  });

  it('with commitIntervalMs, commits what it handled when the interval is up and when it stops, so a restarted member handles each message once', async () => {
    const topics = await newTopics(2);
    const sent = Array.from({ length: 200 }, (_, n) => validMessage('deviceEvents', n));
    const offsets = await produce(
      topics.deviceEvents.name,
      sent.map(({ key, value }, n) => ({ key, value: json(value), partition: n % 2 })),
    );
    const lastOffsets = new Map([0, 1].map((p) => [p, offsets.filter((_, n) => n % 2 === p).at(-1)!]));
    const groupId = `test-${randomUUID()}`;
    const handled = new Map<string, number>();
    const handle = async (message: { topic: string; partition: number; offset: string }): Promise<void> => {
      const at = coordinates(message.topic, message.partition, message.offset);
      handled.set(at, (handled.get(at) ?? 0) + 1);
    };
    const options = { groupId, topics, roles: ['deviceEvents'] as const, fromBeginning: true, handle };
    const first = await startConsumer({ ...options, commitIntervalMs: 200 });
    await vi.waitFor(() => expect(handled.size).toBe(200), { timeout: 30_000, interval: 50 });
    await first.stop();
    await expect(first.done).resolves.toBeUndefined();
    const committed = await committedOffsets(groupId, topics.deviceEvents.name);
    for (const [partition, last] of lastOffsets) {
      expect(committed.get(partition)).toBe((BigInt(last) + 1n).toString());
    }

    // More while it is down; the next member takes up after what the first one committed.
    const more = Array.from({ length: 20 }, (_, n) => validMessage('deviceEvents', 200 + n));
    await produce(
      topics.deviceEvents.name,
      more.map(({ key, value }, n) => ({ key, value: json(value), partition: n % 2 })),
    );
    const second = await startConsumer({ ...options, commitIntervalMs: 60_000 });
    await vi.waitFor(() => expect(handled.size).toBe(220), { timeout: 30_000, interval: 50 });
    // Within its interval nothing is committed until stop(), which commits it all.
    await second.stop();
    const third = await startConsumer({ ...options, commitIntervalMs: 60_000 });
    await vi.waitFor(() => expect(third.counts().groupJoins).toBeGreaterThan(0), { timeout: 30_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await third.stop();
    expect([...handled.values()].filter((count) => count !== 1)).toEqual([]);
    expect(second.counts().handled).toBe(20);
    expect(third.counts().handled).toBe(0);
  });

  it('refuses to consume the DLQ it writes to, and a DLQ topic that does not exist', async () => {
    const topics = await newTopics(1);
    const handle = async (): Promise<void> => {};
    await expect(
      startConsumer({ topics: { ...topics, commands: topics.dlq }, roles: ['commands'], handle }),
    ).rejects.toMatchObject({ code: 'CONSUMER_MISCONFIGURED' });
    const missing = { ...topics.dlq, name: `test-${randomUUID()}.missing-dlq` };
    const error = await startConsumer({
      topics: { ...topics, dlq: missing },
      roles: ['commands'],
      handle,
    }).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'DLQ_NOT_AVAILABLE', retriable: false });
    expect((error as Error).message).toContain(missing.name);
  });
});
