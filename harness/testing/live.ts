/**
 * Helpers the suites against a real broker and a real Prometheus share: topics of a test's own,
 * and waiting for something to become true.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import { createTopics, type LiveTopics, liveTopics } from '../live/kafka-config.ts';

/** Live mode's topics under a fresh prefix (`<label>-<uuid>.`), created: no test meets another's messages. */
export async function freshTopics(
  kafka: Kafka,
  label: string,
): Promise<{ prefix: string; topics: LiveTopics }> {
  const prefix = `${label}-${randomUUID()}.`;
  const topics = liveTopics({ prefix });
  const admin = kafka.admin();
  await admin.connect();
  try {
    await createTopics(admin, Object.values(topics));
  } finally {
    await admin.disconnect();
  }
  return { prefix, topics };
}

/** The wall clock in seconds, as Prometheus's query API takes it. */
export function nowS(): number {
  return Date.now() / 1000;
}

/** Polls `done` every 250 ms until it is true; fails naming `what` after `timeoutMs`. */
export async function until(what: string, done: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting ${timeoutMs / 1000} s for ${what}`);
    await sleep(250);
  }
}
