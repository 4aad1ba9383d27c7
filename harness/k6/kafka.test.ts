/**
 * k6 (the binary scripts/k6.sh builds, with k6/x/kafka) runs scenarios/k6/kafka-phased-vs-burst.ts
 * against a real broker (scripts/kafka.sh), never a mock; DeadLetteringConsumer reads the commands
 * topic back. Every message k6 produced must be a valid moveUser command (none dead-lettered), on
 * the partition the harness's own producers would pick for its user, exactly once; phased
 * commands must fall in their phases on the run's timeline.
 *
 * Needs the Kafka jars (`bash scripts/kafka.sh fetch`), Java, and k6 (built on first use: minutes);
 * without them every test here fails and says why, none skips. The broker runs on a port of this
 * file's own, and every test uses topics of its own.
 */
import { randomUUID } from 'node:crypto';
import { type Admin, type IHeaders, type Kafka, Partitioners } from 'kafkajs';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it, vi } from 'vitest';
import { type KafkaBroker, startBroker, stopBroker } from '../live/broker.ts';
import { type ConsumedMessage, type ConsumerCounts, DeadLetteringConsumer } from '../live/consumer.ts';
import { createTopics, kafkaClient, type LiveTopics, liveTopics } from '../live/kafka-config.ts';
import { MESSAGE_SCHEMA_VERSION, RUN_HEADER, VERSION_HEADER } from '../live/messages.ts';
import { type LiveRun, runLive } from '../live/run-live.ts';
import { freshTopics } from '../testing/live.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { k6Binary } from './k6.ts';
import { type KafkaMovesOptions, type KafkaMovesRun, runKafkaMoves } from './kafka-moves.ts';

/** Not the other suites' ports: test files run in parallel. */
const PORT = 19492;

const USERS = 200;
const PHASE_SIZE = 100;
const PHASE_INTERVAL_MS = 5000;
const PHASE_SPREAD_MS = 1000;
const BURST_SPREAD_MS = 1000;
/**
 * How late a command may be stamped after its scheduled start: k6 starting the iteration, the VU's
 * writer connecting, the broker's acknowledgement, on two busy cores. Less than the gap between
 * phases (interval - spread), so phases still cannot overlap.
 */
const LATE_MS = 3000;

let broker: KafkaBroker | undefined;
let kafka: Kafka;
let admin: Admin;

/** Why k6, the broker or the clients could not start: every test then fails with it (never skips). */
let setupFailure: unknown;

beforeAll(async () => {
  try {
    await k6Binary();
    // A broker from harness/live/vitest.global-setup.ts when that is configured, else our own.
    let bootstrap = inject('kafkaBootstrap');
    if (bootstrap === undefined) {
      broker = await startBroker({ port: PORT });
      bootstrap = broker.bootstrap;
    }
    kafka = kafkaClient({ brokers: [bootstrap], clientId: 'phasebench-k6-test' });
    admin = kafka.admin();
    await admin.connect();
  } catch (error) {
    setupFailure = error;
  }
}, 900_000);

beforeEach(() => {
  if (setupFailure !== undefined) throw setupFailure;
});

afterAll(async () => {
  await admin?.disconnect();
  if (broker !== undefined) await stopBroker(broker);
});

/** The commands topic (and the DLQ its consumer writes to), of one test's own. */
async function newTopics(): Promise<LiveTopics> {
  const topics = liveTopics({ prefix: `k6-test-${randomUUID()}.` });
  await createTopics(admin, [topics.commands, topics.dlq]);
  return topics;
}

function bootstrapOf(): string {
  return inject('kafkaBootstrap') ?? broker!.bootstrap;
}

async function produceMoves(
  topics: LiveTopics,
  options: Omit<KafkaMovesOptions, 'bootstrap' | 'topic'>,
): Promise<KafkaMovesRun> {
  const k6 = await runKafkaMoves({ bootstrap: bootstrapOf(), topic: topics.commands.name, ...options });
  expect(k6.exitCode, k6.stderr).toBe(0);
  expect(k6.produced).toBe(options.users);
  return k6;
}

/** Messages in a topic: the sum of its partitions' end offsets. */
async function messagesIn(topic: string): Promise<number> {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.reduce((sum, { high }) => sum + Number(high), 0);
}

/** Every message of the commands topic through DeadLetteringConsumer: valid ones and the counts. */
async function consumeCommands(
  topics: LiveTopics,
): Promise<{ messages: ConsumedMessage<'commands'>[]; counts: ConsumerCounts }> {
  const total = await messagesIn(topics.commands.name);
  const messages: ConsumedMessage<'commands'>[] = [];
  const consumer = await DeadLetteringConsumer.start({
    kafka,
    groupId: `k6-test-${randomUUID()}`,
    roles: ['commands'],
    topics,
    fromBeginning: true,
    maxWaitTimeInMs: 100,
    handle: async (message) => {
      messages.push(message);
    },
  });
  try {
    await vi.waitFor(
      () => {
        const deadLettered = Object.values(consumer.counts().deadLettered).reduce((a, b) => a + b, 0);
        expect(messages.length + deadLettered).toBe(total);
      },
      { timeout: 60_000, interval: 100 },
    );
  } finally {
    await consumer.stop();
  }
  return { messages, counts: consumer.counts() };
}

function header(headers: IHeaders, name: string): string | undefined {
  const value = headers[name];
  return value === undefined ? undefined : String(Array.isArray(value) ? value[0] : value);
}

const partitionOf = Partitioners.DefaultPartitioner();

/** The partition kafkajs's default partitioner (the harness's producers) picks for a key. */
function expectedPartition(topic: string, partitions: number, key: string): number {
  const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
    partitionId,
    leader: 1,
    replicas: [1],
    isr: [1],
    partitionErrorCode: 0,
  }));
  return partitionOf({ topic, partitionMetadata, message: { key, value: null } });
}

const userId = (n: number): string => `u${String(n).padStart(6, '0')}`;

/** Checks what every plan must hold; returns the commands by user. */
function expectValidCommands(
  topics: LiveTopics,
  k6: KafkaMovesRun,
  consumed: { messages: ConsumedMessage<'commands'>[]; counts: ConsumerCounts },
  run: string,
) {
  expect(consumed.counts.deadLettered).toEqual(
    Object.fromEntries(Object.keys(consumed.counts.deadLettered).map((category) => [category, 0])),
  );
  expect(consumed.messages).toHaveLength(k6.produced);

  const commands = consumed.messages.map((message) => {
    const { value } = message;
    if (value.type !== 'moveUser') throw new Error(`expected moveUser commands, found ${value.type}`);
    expect(value.v).toBe(MESSAGE_SCHEMA_VERSION);
    expect(value.run).toBe(run);
    expect(message.key?.toString()).toBe(value.user);
    expect(header(message.headers, RUN_HEADER)).toBe(run);
    expect(header(message.headers, VERSION_HEADER)).toBe(String(MESSAGE_SCHEMA_VERSION));
    expect(message.partition).toBe(expectedPartition(message.topic, topics.commands.partitions, value.user));
    return value;
  });
  // Each user exactly once.
  expect(new Set(commands.map((command) => command.user))).toEqual(
    new Set(Array.from({ length: k6.produced }, (_, i) => userId(i))),
  );
  return commands;
}

describe('k6 kafka-phased-vs-burst.ts against a real broker', () => {
  it('phased: every command is valid, sent once, and falls in its phase', async () => {
    const topics = await newTopics();
    const run = 'k6-test/phased';
    const k6 = await produceMoves(topics, {
      plan: 'phased',
      run,
      users: USERS,
      phaseSize: PHASE_SIZE,
      phaseIntervalMs: PHASE_INTERVAL_MS,
      phaseSpreadMs: PHASE_SPREAD_MS,
    });
    expect(await messagesIn(topics.commands.name)).toBe(k6.produced);

    const commands = expectValidCommands(topics, k6, await consumeCommands(topics), run);
    const phases = USERS / PHASE_SIZE;
    const ends: { first: number; last: number }[] = [];
    for (let phase = 1; phase <= phases; phase++) {
      const inPhase = commands.filter((command) => command.phase === phase);
      // Phase n moves users (n-1)·size ... n·size - 1, onto its own new instance.
      expect(new Set(inPhase.map((command) => command.user))).toEqual(
        new Set(Array.from({ length: PHASE_SIZE }, (_, i) => userId((phase - 1) * PHASE_SIZE + i))),
      );
      expect(new Set(inPhase.map((command) => command.to))).toEqual(new Set([`BESNEW${phase}`]));
      // Sent within the phase's window on the run's timeline, spread over it rather than at once.
      const ats = inPhase.map((command) => command.at);
      const start = (phase - 1) * PHASE_INTERVAL_MS;
      const first = Math.min(...ats);
      const last = Math.max(...ats);
      expect(first).toBeGreaterThanOrEqual(start - 50);
      expect(last).toBeLessThanOrEqual(start + PHASE_SPREAD_MS + LATE_MS);
      expect(last - first).toBeGreaterThanOrEqual(PHASE_SPREAD_MS / 2);
      ends.push({ first, last });
    }
    for (let i = 1; i < ends.length; i++) expect(ends[i]!.first).toBeGreaterThan(ends[i - 1]!.last);
  });

  it('burst: every command is valid, sent once, all in one phase within the burst', async () => {
    const topics = await newTopics();
    const run = 'k6-test/burst';
    const k6 = await produceMoves(topics, {
      plan: 'burst',
      run,
      users: USERS,
      burstSpreadMs: BURST_SPREAD_MS,
    });
    expect(await messagesIn(topics.commands.name)).toBe(k6.produced);

    const commands = expectValidCommands(topics, k6, await consumeCommands(topics), run);
    expect(new Set(commands.map((command) => command.phase))).toEqual(new Set([1]));
    expect(new Set(commands.map((command) => command.to))).toEqual(new Set(['BESNEW1']));
    const ats = commands.map((command) => command.at);
    expect(Math.max(...ats)).toBeLessThanOrEqual(BURST_SPREAD_MS + LATE_MS);
  });
});

/** Run ms per wall ms for the commanded runs: k6's phases 5 s apart are 25 run-minutes apart. */
const TIME_SCALE = 300;

/**
 * A live commanded run through the real engine and fleet workers, its moves produced by k6 while
 * it runs: the run's id and timeline go to k6, and the run ends once every move has settled.
 */
async function commandedRun(
  options: Omit<KafkaMovesOptions, 'bootstrap' | 'topic' | 'run' | 'startedAt' | 'timeScale' | 'users'>,
): Promise<{ k6: KafkaMovesRun; live: LiveRun; topics: LiveTopics }> {
  const { topics } = await freshTopics(kafka, 'k6-test');
  const scenario = tinyScenario({
    name: 'k6-moves',
    instances: 2,
    horizon: '6h',
    fleet: quietFleet(USERS),
    plans: { commanded: { kind: 'commanded', moves: USERS } },
  });
  let started: (value: { run: string; startedAt: number }) => void;
  const start = new Promise<{ run: string; startedAt: number }>((resolve) => {
    started = resolve;
  });
  const live = runLive(scenario, 'commanded', {
    kafka,
    topics,
    timeScale: TIME_SCALE,
    runSuffix: randomUUID().slice(0, 8),
    onStart: (run, startedAt) => started({ run, startedAt }),
  });
  // If the run fails before it starts, say so rather than wait for k6.
  const { run, startedAt } = await Promise.race([start, live.then(() => start)]);
  const k6 = await produceMoves(topics, { ...options, run, users: USERS, startedAt, timeScale: TIME_SCALE });
  return { k6, live: await live, topics };
}

function eventsOf<T extends LiveRun['events'][number]['type']>(live: LiveRun, type: T) {
  return live.events.filter((e): e is Extract<LiveRun['events'][number], { type: T }> => e.type === type);
}

describe("k6's commands carried out by the real engine and fleet", () => {
  it('phased: every user k6 commands is moved once onto its phase instance, and every device converges', async () => {
    const { k6, live, topics } = await commandedRun({
      plan: 'phased',
      phaseSize: PHASE_SIZE,
      phaseIntervalMs: PHASE_INTERVAL_MS,
      phaseSpreadMs: PHASE_SPREAD_MS,
    });
    expect(k6.produced).toBe(USERS);
    const done = eventsOf(live, 'RunCompleted');
    expect(done.map((e) => e.data)).toEqual([{ pendingPushes: 0, reason: 'drained' }]);

    const moved = eventsOf(live, 'UserMoved');
    expect(moved).toHaveLength(USERS);
    for (const e of moved) {
      const phase = Math.floor(Number(e.data.user.slice(1)) / PHASE_SIZE) + 1;
      expect(e.data.to, e.data.user).toBe(`BESNEW${phase}`);
    }
    expect(new Set(eventsOf(live, 'DeviceConverged').map((e) => e.data.user))).toEqual(
      new Set(Array.from({ length: USERS }, (_, i) => userId(i))),
    );
    // k6's phases are the run's phases: each converged with its own users.
    expect(live.metrics.phases.map((p) => [p.phase, p.users, p.converged, p.stranded])).toEqual([
      [1, PHASE_SIZE, PHASE_SIZE, 0],
      [2, PHASE_SIZE, PHASE_SIZE, 0],
    ]);
    // The second phase began when k6 commanded its first move on the run's timeline: not before,
    // and no later than the command's trip through the broker.
    const { messages } = await consumeCommands(topics);
    const commandedAt = Math.min(
      ...messages.flatMap(({ value }) => (value.type === 'moveUser' && value.phase === 2 ? [value.at] : [])),
    );
    const secondStart = live.metrics.phases[1]!.startedAt;
    expect(secondStart).toBeGreaterThanOrEqual(Math.ceil(commandedAt));
    expect(secondStart).toBeLessThanOrEqual(commandedAt + LATE_MS * TIME_SCALE);
  });

  it('burst: every user lands on one instance in one phase, and every device converges', async () => {
    const { live } = await commandedRun({ plan: 'burst', burstSpreadMs: BURST_SPREAD_MS });
    expect(eventsOf(live, 'RunCompleted').map((e) => e.data.reason)).toEqual(['drained']);
    expect(new Set(eventsOf(live, 'UserMoved').map((e) => e.data.to))).toEqual(new Set(['BESNEW1']));
    expect(live.metrics.phases.map((p) => [p.phase, p.users, p.converged])).toEqual([[1, USERS, USERS]]);
  });
});
