/**
 * Faults survived, against a real broker (scripts/kafka.sh):
 * - `kill -9` of the engine worker hosting a run, one of two `phasebench engine` processes: the
 *   other takes the run over from the event log and the run completes;
 * - the broker stopped and started again (on its kept storage) in the middle of a run: the run
 *   pauses and completes.
 * In both, what the log holds, once each by event id, is exactly the virtual-time run's log of the
 * same scenario and seed: every push in exactly one terminal state, nothing lost, nothing twice.
 * Without the jars or Java the suite fails and says so; it never skips.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { parseScenario } from '../scenario/load.ts';
import { runPlan } from '../sim/run.ts';
import { freshTopics } from '../testing/live.ts';
import { type KafkaBroker, pauseBroker, resumeBroker, startBroker, stopBroker } from './broker.ts';
import { EngineWorker } from './engine-worker.ts';
import { FleetWorker } from './fleet-worker.ts';
import { kafkaClient } from './kafka-config.ts';
import { decodeMessage, MESSAGE_BYTE_LIMITS } from './messages.ts';
import { liveRunId, runLive } from './run-live.ts';

/** A port of this file's own, so it never meets the broker of another test file. */
const PORT = 19792;
const BIN = fileURLToPath(new URL('../../bin/phasebench.js', import.meta.url));

let broker: KafkaBroker | undefined;
let kafka: Kafka;
const children: ChildProcess[] = [];

beforeAll(async () => {
  broker = await startBroker({ port: PORT });
  kafka = kafkaClient({ brokers: [broker.bootstrap], clientId: 'phasebench-faults-test' });
}, 120_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  if (broker !== undefined) await stopBroker(broker);
}, 120_000);

const scenario = parseScenario(
  {
    name: 'live-faults',
    seed: 11,
    horizon: '1d',
    domain: {
      instances: [
        { id: 'BES01A', srpId: 1, users: 250 },
        { id: 'BES01B', srpId: 2, users: 250 },
      ],
    },
    fleet: {
      users: 500,
      coverage: { alwaysOnlineShare: 1 },
      softwareVersions: { '4.5': 0.7, '4.2': 0.3 },
      problemAccountShare: 0.02,
    },
    plans: {
      phased: { kind: 'phased', into: { newInstances: {} }, size: 125, every: '10m' },
    },
  },
  'harness/live/faults.test.ts',
);

/** A `phasebench engine` process; resolves once it has joined and says so. */
function startEngine(prefix: string): Promise<{ child: ChildProcess; output: () => string }> {
  const child = spawn(
    process.execPath,
    [
      BIN,
      'engine',
      '--brokers',
      broker!.bootstrap,
      '--topic-prefix',
      prefix,
      '--metrics-port',
      '0',
      '--session-timeout',
      '6000',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (output.includes('running')) {
        clearInterval(timer);
        resolve({ child, output: () => output });
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`phasebench engine exited with ${child.exitCode}:\n${output}`));
      }
    }, 100);
  });
}

/** The facts of a log without its run id: a live run's are the simulation's. */
function facts(events: readonly StoredEvent[]): unknown[] {
  return events.map(({ run: _run, id: _id, ...rest }) => rest);
}

/** How many terminal events (acknowledged or expired) each push has. */
function terminalCounts(events: readonly StoredEvent[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const e of events) {
    if (e.type === 'PushAcknowledged' || e.type === 'PushExpired')
      counts.set(e.data.push, (counts.get(e.data.push) ?? 0) + 1);
  }
  return counts;
}

function expectSameAsVirtualTime(events: readonly StoredEvent[]): void {
  const sim = runPlan(scenario, 'phased');
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
  expect(facts(events)).toEqual(facts(sim.events));
  const terminal = terminalCounts(events);
  for (const [, count] of terminal) expect(count).toBe(1);
  expect(terminal.size).toBe(sim.metrics.pushes.acknowledged + sim.metrics.pushes.expired);
}

describe('faults in live mode', () => {
  it('survives kill -9 of the engine worker hosting the run, one of two', async () => {
    const { prefix, topics } = await freshTopics(kafka, 'faults');
    const engines = await Promise.all([startEngine(prefix), startEngine(prefix)]);
    const fleet = await FleetWorker.start({
      kafka,
      topics,
      sessionTimeoutMs: 6_000,
      heartbeatIntervalMs: 1_000,
    });
    const suffix = randomUUID();
    const run = liveRunId(scenario, 'phased', suffix);
    const expected = runPlan(scenario, 'phased', { keepEvents: false }).metrics.events;
    let seen = 0;
    let killed: number | undefined;
    let killedAt = 0;
    try {
      const live = await runLive(scenario, 'phased', {
        kafka,
        topics,
        timeScale: 300,
        runSuffix: suffix,
        inProcess: false,
        onEvent: () => {
          seen++;
          if (killed === undefined && seen >= expected * 0.3) {
            killed = engines.findIndex((e) => e.output().includes(`hosting ${run}`));
            if (killed >= 0) engines[killed]!.child.kill('SIGKILL');
            killedAt = seen;
          }
        },
      });
      expect(killed).toBeGreaterThanOrEqual(0);
      // The host logs its completion once its last appends are acknowledged, just after the driver saw them.
      const survivorOutput = engines[1 - killed!]!.output;
      for (let i = 0; i < 100 && !survivorOutput().includes(`completed ${run}`); i++) await sleep(100);
      const survivor = survivorOutput();
      // The survivor took the run over from the log, not from scratch.
      expect(survivor).toMatch(new RegExp(`hosting ${run} \\(taken over: [1-9]\\d* events`));
      expect(survivor).toContain(`completed ${run}`);
      console.log(
        `kill -9 at ${killedAt} of ${expected} events; the survivor: ${survivor.match(/taken over: \d+ events/)?.[0]}; ` +
          `${live.duplicateEvents} events appended twice, counted once`,
      );
      expectSameAsVirtualTime(live.events);
      expect(live.metrics.pushes.pending).toBe(0);
    } finally {
      await fleet.stop();
      for (const e of engines) if (e.child.exitCode === null) e.child.kill('SIGTERM');
    }
  }, 240_000);

  it('survives the broker stopped and started again mid-run, losing nothing', async () => {
    const { topics } = await freshTopics(kafka, 'faults');
    const expected = runPlan(scenario, 'phased', { keepEvents: false }).metrics.events;
    let seen = 0;
    let outage: Promise<void> | undefined;
    let stoppedAt = 0;
    const live = await runLive(scenario, 'phased', {
      kafka,
      topics,
      timeScale: 300,
      runSuffix: randomUUID(),
      stallTimeoutMs: 180_000,
      onEvent: () => {
        seen++;
        if (outage === undefined && seen >= expected * 0.3) {
          stoppedAt = seen;
          outage = (async () => {
            await pauseBroker(broker!);
            await sleep(3_000);
            await resumeBroker(broker!);
          })();
        }
      },
    });
    expect(outage).toBeDefined();
    await outage;
    console.log(
      `broker stopped at ${stoppedAt} of ${expected} events; ${live.duplicateEvents} events read twice`,
    );
    expectSameAsVirtualTime(live.events);
    expect(live.metrics.pushes.pending).toBe(0);
  }, 300_000);

  it('dead-letters 1,000 malformed commands and device events injected mid-run, with reasons, and completes the run', async () => {
    const { topics } = await freshTopics(kafka, 'faults');
    const session = { sessionTimeoutMs: 6_000, heartbeatIntervalMs: 1_000 };
    const engine = await EngineWorker.start({ kafka, topics, ...session });
    const fleet = await FleetWorker.start({ kafka, topics, ...session });
    const expected = runPlan(scenario, 'phased', { keepEvents: false }).metrics.events;
    const suffix = randomUUID();
    const run = liveRunId(scenario, 'phased', suffix);
    // Four kinds, 250 of each, half to each topic: not JSON, a valid shape with a wrong field,
    // bigger than the topic allows, a type the topic does not carry.
    const kinds = ['notJson', 'schema', 'oversized', 'unknownType'] as const;
    const malformed = (role: 'commands' | 'deviceEvents', n: number): Buffer => {
      const valid =
        role === 'commands'
          ? { v: 1, type: 'moveUser', run, user: 'u000001', to: 'BES02A', phase: 0, at: n }
          : { v: 1, type: 'acknowledged', run, push: n, device: '2000002A', at: n };
      switch (kinds[n % 4]!) {
        case 'notJson':
          return Buffer.from(`{"v": 1, "type": "${valid.type}", `);
        case 'schema':
          return Buffer.from(JSON.stringify({ ...valid, v: 'one' }));
        case 'oversized':
          return Buffer.from(JSON.stringify({ ...valid, padding: 'x'.repeat(MESSAGE_BYTE_LIMITS[role]) }));
        case 'unknownType':
          return Buffer.from(JSON.stringify({ ...valid, type: 'teleportUser' }));
      }
    };
    const producer = kafka.producer();
    await producer.connect();
    let injection: Promise<unknown> | undefined;
    let seen = 0;
    try {
      const live = await runLive(scenario, 'phased', {
        kafka,
        topics,
        timeScale: 300,
        runSuffix: suffix,
        inProcess: false,
        onEvent: () => {
          seen++;
          if (injection === undefined && seen >= expected * 0.3) {
            // In small requests: a request holds whole messages, and 64 KiB ones add up.
            injection = (async () => {
              for (const role of ['commands', 'deviceEvents'] as const) {
                for (let from = 0; from < 500; from += 10) {
                  await producer.send({
                    topic: topics[role].name,
                    messages: Array.from({ length: 10 }, (_, i) => ({
                      key: `k${from + i}`,
                      headers: { run },
                      value: malformed(role, from + i),
                    })),
                  });
                }
              }
            })();
          }
        },
      });
      await injection;
      expectSameAsVirtualTime(live.events);

      // Every one of them is in the dead-letter topic, with a reason of its kind.
      const letters = await readAll(topics.dlq.name, 1_000);
      const categories = new Map<string, number>();
      for (const letter of letters) {
        const decoded = decodeMessage('dlq', letter);
        expect(decoded.ok).toBe(true);
        if (!decoded.ok) continue;
        expect(decoded.value.reason.length).toBeGreaterThan(0);
        categories.set(decoded.value.category, (categories.get(decoded.value.category) ?? 0) + 1);
      }
      expect(Object.fromEntries(categories)).toEqual({
        notJson: 250,
        schema: 250,
        oversized: 250,
        unknownType: 250,
      });
      // Nothing crashed: both workers still consume.
      expect(engine.stats().consumer.deadLettered.notJson + fleet.stats().consumer.deadLettered.notJson).toBe(
        250,
      );
    } finally {
      await producer.disconnect();
      await engine.stop();
      await fleet.stop();
    }
  }, 240_000);
});

/** The values of a topic, waiting until there are `count` of them (or 60 s have passed). */
async function readAll(topic: string, count: number): Promise<Buffer[]> {
  const values: Buffer[] = [];
  const consumer = kafka.consumer({ groupId: `faults-read-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.value) values.push(message.value);
    },
  });
  for (let i = 0; i < 600 && values.length < count; i++) await sleep(100);
  await consumer.disconnect();
  return values;
}
