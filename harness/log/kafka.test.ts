/**
 * The Kafka adapter against a real broker (scripts/kafka.sh), never a mock: the shared contract,
 * then what only Kafka has (partitions, the bytes of messages, broker failures). Needs the jars
 * (`bash scripts/kafka.sh fetch`) and Java; without them the suite fails and says so. Every log
 * lives in a topic of its own, so tests and runs never see each other's events.
 */
import { randomUUID } from 'node:crypto';
import { type Admin, Kafka, type KafkaMessage, logLevel } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type KafkaBroker, startBroker, stopBroker, TEST_BROKER_PORT } from '../live/broker.ts';
import { createTopics, kafkaClient, liveTopics, type TopicSpec } from '../live/kafka-config.ts';
import { serializeEvent } from './codec.ts';
import { eventLogContract, exampleRunEvents, readAll } from './contract.ts';
import { KafkaEventLog } from './kafka.ts';

let broker: KafkaBroker | undefined;
let kafka: Kafka;
let admin: Admin;

beforeAll(async () => {
  // A broker from harness/live/vitest.global-setup.ts when that is configured, else our own.
  let bootstrap = inject('kafkaBootstrap');
  if (bootstrap === undefined) {
    broker = await startBroker({ port: TEST_BROKER_PORT });
    bootstrap = broker.bootstrap;
  }
  kafka = kafkaClient({ brokers: [bootstrap], clientId: 'phasebench-test' });
  admin = kafka.admin();
  await admin.connect();
});

afterAll(async () => {
  await admin?.disconnect();
  if (broker !== undefined) await stopBroker(broker);
});

/** A new topic of its own for the events of one test. */
async function newEventsTopic(partitions = 1): Promise<TopicSpec> {
  const topic = liveTopics({ prefix: `test-${randomUUID()}.`, topics: { events: { partitions } } }).events;
  await createTopics(admin, [topic]);
  return topic;
}

async function deleteTopic(topic: TopicSpec): Promise<void> {
  await admin.deleteTopics({ topics: [topic.name] });
}

eventLogContract(
  'kafka',
  async () => {
    const topic = await newEventsTopic();
    const log = await KafkaEventLog.open({ kafka, topic: topic.name });
    return {
      log,
      reopen: () => KafkaEventLog.open({ kafka, topic: topic.name }),
      cleanup: async () => {
        await log.close().catch(() => {});
        await deleteTopic(topic);
      },
    };
  },
  // Each run is a topic and several consumer groups on the broker: a few runs, not fifty.
  { propertyRuns: 5 },
);

describe('KafkaEventLog', () => {
  it('keeps every run in append order on a topic of several partitions', async () => {
    const topic = await newEventsTopic(3);
    const runs = ['run-a', 'run-b', 'run-c', 'run-d', 'run-e'].map((run) => exampleRunEvents(run, 40));
    const interleaved = runs[0]!.flatMap((_, index) => runs.map((events) => events[index]!));
    const log = await KafkaEventLog.open({ kafka, topic: topic.name });
    try {
      await log.append(interleaved.slice(0, 77));
      await log.append(interleaved.slice(77));
      for (const events of runs) expect(await readAll(log.read({ run: events[0]!.run }))).toEqual(events);
      const all = await readAll(log.read());
      expect(all).toHaveLength(interleaved.length);
      for (const events of runs) expect(all.filter((event) => event.run === events[0]!.run)).toEqual(events);
    } finally {
      await log.close();
      await deleteTopic(topic);
    }
  });

  it("stores each event as the file format's line, keyed by the event's key", async () => {
    const topic = await newEventsTopic();
    const events = exampleRunEvents('run-1', 5);
    const log = await KafkaEventLog.open({ kafka, topic: topic.name });
    await log.append(events);
    await log.close();

    const consumer = kafka.consumer({ groupId: `test-${randomUUID()}`, maxWaitTimeInMs: 100 });
    const messages: KafkaMessage[] = [];
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: topic.name, fromBeginning: true });
      await new Promise<void>((resolve) => {
        void consumer.run({
          eachMessage: async ({ message }) => {
            messages.push(message);
            if (messages.length === events.length) resolve();
          },
        });
      });
    } finally {
      await consumer.disconnect();
      await deleteTopic(topic);
    }
    expect(messages.map((message) => message.value?.toString('utf8'))).toEqual(events.map(serializeEvent));
    expect(messages.map((message) => message.key?.toString('utf8'))).toEqual(
      events.map((event) => event.key),
    );
    expect(messages.map((message) => message.headers?.run?.toString())).toEqual(events.map(() => 'run-1'));
  });

  it('fails reading a message that is not an event with LOG_CORRUPT naming its offset', async () => {
    const topic = await newEventsTopic();
    const log = await KafkaEventLog.open({ kafka, topic: topic.name });
    await log.append(exampleRunEvents('run-1', 2));
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: topic.name, messages: [{ key: 'x', value: '{"v":1,"id":' }] });
    await producer.disconnect();
    try {
      const error = await readAll(log.read()).catch((thrown: unknown) => thrown);
      expect(error).toMatchObject({ code: 'LOG_CORRUPT', retriable: false });
      expect((error as Error).message).toContain(`offset 2 of topic ${topic.name}, partition 0`);
    } finally {
      await log.close();
      await deleteTopic(topic);
    }
  });

  it('refuses a topic that does not exist with LOG_NOT_WRITABLE: topics are created on purpose', async () => {
    const missing = `test-${randomUUID()}.missing`;
    const error = await KafkaEventLog.open({ kafka, topic: missing }).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'LOG_NOT_WRITABLE', retriable: false });
    expect((error as Error).message).toContain(missing);
  });

  it("wraps an unreachable broker as LOG_NOT_WRITABLE, retriable as kafkajs's cause says", async () => {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const nowhere = new Kafka({
      brokers: ['127.0.0.1:1'],
      logLevel: logLevel.NOTHING,
      retry: { retries: 1, initialRetryTime: 50 },
    });
    const error = await KafkaEventLog.open({ kafka: nowhere }).catch((thrown: unknown) => thrown);
    expect(error).toMatchObject({ code: 'LOG_NOT_WRITABLE', retriable: true });
    expect((error as Error).cause).toMatchObject({ name: expect.stringMatching(/^KafkaJS/) });
  });
});

describe('createTopics', () => {
  it('creates topics with their partition counts, again without harm, and refuses another count', async () => {
    const topics = liveTopics({ prefix: `test-${randomUUID()}.` });
    const specs = [topics.commands, topics.events];
    try {
      await createTopics(admin, specs);
      await createTopics(admin, specs);
      const metadata = await admin.fetchTopicMetadata({ topics: specs.map((topic) => topic.name) });
      expect(metadata.topics.map((topic) => [topic.name, topic.partitions.length])).toEqual(
        expect.arrayContaining(specs.map((topic) => [topic.name, topic.partitions])),
      );
      await expect(createTopics(admin, [{ ...topics.events, partitions: 2 }])).rejects.toMatchObject({
        code: 'KAFKA_TOPIC_MISMATCH',
      });
    } finally {
      await admin.deleteTopics({ topics: specs.map((topic) => topic.name) });
    }
  });
});
