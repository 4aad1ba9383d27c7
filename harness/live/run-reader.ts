/**
 * A reader of one run's messages on one topic: a consumer in a group of its own (so it reads every
 * partition and commits nothing) that skips other runs' messages by their `run` header. The live
 * driver follows a run's events with it; a run's host reads its acknowledgements and commanded
 * moves with it.
 *
 * Where to read is set on every join of the group, before its first fetch, not once after `run`:
 * `run` resolves even when its join failed (a fresh broker's group coordinator not set up within
 * kafkajs's retries), and then there is no group to seek in ("Consumer group was not
 * initialized"). A rejoin goes on after what was read rather than from the beginning. A join that
 * failed is tried again with a new consumer.
 */
import type { Consumer, ConsumerConfig, Kafka } from 'kafkajs';
import { PhasebenchError } from '../errors.ts';
import { RUN_HEADER } from './messages.ts';

/** Joins tried before giving up; the coordinator of a fresh broker is up within a few seconds. */
const JOIN_ATTEMPTS = 5;

export interface RunReaderOptions {
  kafka: Kafka;
  topic: string;
  run: string;
  /** Names the reader's group: `${groupPrefix}.${run}.${pid}.${now}`. */
  groupPrefix: string;
  /** Where each partition is first read from; partitions left out are read from the beginning. */
  from: Iterable<readonly [partition: number, offset: string]>;
  /** Each message value of the run, in partition order. */
  onValue: (value: Buffer) => void;
  /** Fetch settings (maxWaitTimeInMs, minBytes, ...). */
  fetch?: Pick<ConsumerConfig, 'maxWaitTimeInMs' | 'minBytes'>;
}

export async function startRunReader(options: RunReaderOptions): Promise<Consumer> {
  const { kafka, topic, run, onValue } = options;
  const next = new Map(options.from);
  // Other runs' messages are skipped by their header's bytes, without decoding it to text first.
  const runBytes = Buffer.from(run);
  for (let attempt = 1; ; attempt++) {
    const consumer = kafka.consumer({
      groupId: `${options.groupPrefix}.${run}.${process.pid}.${Date.now()}`,
      allowAutoTopicCreation: false,
      ...options.fetch,
    });
    let joined = false;
    let crash: unknown;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true;
      for (const [partition, offset] of next) consumer.seek({ topic, partition, offset });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      crash = payload.error;
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const message of batch.messages) {
          const header = message.headers?.[RUN_HEADER];
          if (!Buffer.isBuffer(header) || !header.equals(runBytes) || message.value === null) continue;
          onValue(message.value);
        }
        const last = batch.messages.at(-1);
        if (last !== undefined) next.set(batch.partition, (BigInt(last.offset) + 1n).toString());
      },
    });
    if (joined) return consumer;
    // The join failed and kafkajs stopped the consumer: a new one, once the coordinator is up.
    await consumer.disconnect().catch(() => {});
    if (attempt >= JOIN_ATTEMPTS) {
      throw new PhasebenchError(
        'RUN_READER_NOT_STARTED',
        `cannot join a consumer group to read ${topic} for run ${run}: ${(crash as Error | undefined)?.message ?? 'no join'}`,
        { cause: crash, retriable: true },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500 * attempt));
  }
}
