/**
 * A live run through a real Kafka broker (scripts/kafka.sh) against the virtual-time run of the
 * same scenario and seed. Every acknowledgement crosses the broker twice (pushes out, device
 * events back) and the summary is projected from the events read back from the broker. Without
 * the jars or Java the suite fails and says so; it never skips.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseScenario } from '../scenario/load.ts';
import { runPlan } from '../sim/run.ts';
import { freshTopics } from '../testing/live.ts';
import { type KafkaBroker, startBroker, stopBroker } from './broker.ts';
import { kafkaClient } from './kafka-config.ts';
import { runLive } from './run-live.ts';

/** A port of this file's own, so it never meets the broker of another test file. */
const PORT = 19392;

let broker: KafkaBroker | undefined;
let kafka: Kafka;

beforeAll(async () => {
  broker = await startBroker({ port: PORT });
  kafka = kafkaClient({ brokers: [broker.bootstrap], clientId: 'phasebench-live-test' });
}, 120_000);

afterAll(async () => {
  if (broker !== undefined) await stopBroker(broker);
});

// About 500 devices, always in coverage and on 4.0+ software, so the run's tail is minutes, not
// days of relay holds and re-cradles waited out on the wall clock.
const scenario = parseScenario(
  {
    name: 'live-agreement',
    seed: 3,
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
  'harness/live/run-live.test.ts',
);

describe('a live run through Kafka', () => {
  it('agrees with the virtual-time run within 15% on makespan and p95 delivery, at time scale 300', async () => {
    const { topics } = await freshTopics(kafka, 'live');
    const live = await runLive(scenario, 'phased', {
      kafka,
      topics,
      timeScale: 300,
      runSuffix: randomUUID(),
    });
    const sim = runPlan(scenario, 'phased');

    // Every push crossed the broker and came back acknowledged, as in the simulation.
    expect(live.metrics.pushes.pending).toBe(0);
    expect(live.metrics.pushes.acknowledged).toBe(sim.metrics.pushes.acknowledged);
    expect(live.metrics.usersConverged).toBe(sim.metrics.usersConverged);
    // The summary was projected from what the broker holds: every event, in order, once.
    expect(live.events.map((e) => e.seq)).toEqual(live.events.map((_, i) => i));
    expect(live.metrics.events).toBe(live.events.length);

    // The decider runs the same commands in the same order as in virtual time, so the log's facts
    // are the simulation's, paced by the wall clock.
    expect(live.events.map(({ run: _r, id: _i, ...rest }) => rest)).toEqual(
      sim.events.map(({ run: _r, id: _i, ...rest }) => rest),
    );
    const within = (a: number, b: number) => Math.abs(a - b) / b;
    expect(within(live.metrics.makespanMs, sim.metrics.makespanMs)).toBeLessThanOrEqual(0.15);
    expect(within(live.metrics.pushDelivery.p95Ms, sim.metrics.pushDelivery.p95Ms)).toBeLessThanOrEqual(0.15);
  }, 180_000);
});
