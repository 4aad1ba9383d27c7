/**
 * A plan run live: the same decider as the simulator, paced by a wall clock sped up by a time
 * scale, with the device side of every push crossing a real Kafka broker and every fact going to
 * the event log topic. The summary is projected from what is read back from that topic, with the
 * same projection the simulator uses.
 *
 * The round trip of a push: when the engine would schedule its acknowledgement, it publishes the
 * push on `phasebench.pushes` instead; the fleet consumer waits out the transfer on the run's
 * timeline and answers on `phasebench.device-events`; the engine consumer turns the answer into
 * an Acknowledge command at the time it arrives. Broker latency is therefore part of the
 * measured delivery latency, as it would be in production.
 *
 * This first live driver runs engine and fleet in one process; separate, scaled-out services
 * and fault tolerance build on it.
 */
import type { Consumer, Kafka } from 'kafkajs';
import { type Command, createDecide, type Decision, initialState } from '../domain/engine.ts';
import { EVENT_SCHEMA_VERSION, type StoredEvent } from '../domain/events.ts';
import { type Fleet, generateFleet } from '../domain/fleet.ts';
import { EventHasher } from '../log/codec.ts';
import { KafkaEventLog } from '../log/kafka.ts';
import { PlanProjection } from '../metrics/projection.ts';
import type { PlanMetrics } from '../metrics/summary.ts';
import type { Scenario } from '../scenario/schema.ts';
import type { Clock } from '../sim/clock.ts';
import { TimeHeap } from '../sim/heap.ts';
import { SeededRandom } from '../sim/random.ts';
import { runId as simRunId } from '../sim/run.ts';
import type { LiveTopics } from './kafka-config.ts';

export interface LiveRunOptions {
  kafka: Kafka;
  topics: LiveTopics;
  clock: Clock;
  /** Makes the run id unique among live runs sharing the topics (e.g. a timestamp). */
  runSuffix: string;
  fleet?: Fleet;
  /** Events appended per Kafka request at most. */
  batchSize?: number;
  onProgress?: (runMs: number, horizonMs: number) => void;
  /** How long after its push was sent (run timeline) an acknowledgement is waited for before it counts as lost. Default 30 min. */
  ackTimeoutMs?: number;
  /** Called with each of the run's events as it becomes known (live metrics, progress). */
  onEvent?: (event: StoredEvent) => void;
}

export interface LiveRun {
  plan: string;
  runId: string;
  /** The run's events as read back from the event log topic. */
  events: StoredEvent[];
  metrics: PlanMetrics;
  /** Pushes whose round trip through the broker was still open when the run ended. */
  pushesInFlight: number;
  /** Acknowledgements given up on after ackTimeoutMs. */
  acksLost: number;
}

interface PushMessage {
  run: string;
  push: number;
  device: string;
  /** When the device's acknowledgement would reach the server, on the run's timeline. */
  ackAt: number;
}

interface AckMessage {
  run: string;
  push: number;
  device: string;
  /** When the acknowledgement reached the server, on the run's timeline (event time). */
  at: number;
}

export async function runLive(
  scenario: Scenario,
  planName: string,
  options: LiveRunOptions,
): Promise<LiveRun> {
  const { kafka, topics, clock } = options;
  const random = new SeededRandom(scenario.seed);
  const fleet = options.fleet ?? generateFleet(scenario, random);
  const run = `${simRunId(scenario, planName)}@${options.runSuffix}`;
  const state = initialState(scenario, planName, fleet);
  const heap = new TimeHeap<Command>();
  const outgoing: PushMessage[] = [];
  let inFlight = 0;
  // Acknowledgements still crossing the broker, earliest first: the engine's timeline may not pass
  // the earliest of them, or a fact could be decided before the acknowledgement it depends on.
  const outstanding = new TimeHeap<number>();
  const arrived = new Set<number>();
  /** When each push left for the broker (run timeline), to tell a slow acknowledgement from a lost one. */
  const sentAt = new Map<number, number>();
  const lost = new Set<number>();
  const barrier = (): number | undefined => {
    while (outstanding.size > 0 && arrived.has(outstanding.peek()!)) arrived.delete(outstanding.pop()!);
    return outstanding.peekTime();
  };

  const decide = createDecide(state, { random }, (at, command) => {
    if (command.type === 'Acknowledge') {
      // The device side of the push goes through the broker instead of the local heap.
      inFlight++;
      outstanding.push(at, command.push);
      outgoing.push({
        run,
        push: command.push,
        device: fleet.devices[state.pushes[command.push]!.device]!.pin,
        ackAt: at,
      });
    } else {
      heap.push(at, command);
    }
  });

  const log = await KafkaEventLog.open({ kafka, topic: topics.events.name });
  const producer = kafka.producer();
  await producer.connect();
  const acks: AckMessage[] = [];
  let wake: (() => void) | null = null;
  const fleetSide = await startConsumer(kafka, `phasebench-fleet-${run}`, topics.pushes.name, (value) => {
    const message = JSON.parse(value) as PushMessage;
    if (message.run !== run) return;
    // The device answers once the transfer is over; meanwhile this partition keeps flowing.
    void clock.sleepUntil(message.ackAt).then(() =>
      producer.send({
        topic: topics.deviceEvents.name,
        messages: [
          {
            key: message.device,
            value: JSON.stringify({ run, push: message.push, device: message.device, at: message.ackAt }),
          },
        ],
      }),
    );
  });
  const engineSide = await startConsumer(
    kafka,
    `phasebench-engine-${run}`,
    topics.deviceEvents.name,
    (value) => {
      const message = JSON.parse(value) as AckMessage;
      if (message.run !== run) return;
      acks.push(message);
      wake?.();
    },
  );

  let seq = 0;
  let lastAt = 0;
  const pending: StoredEvent[] = [];
  const store = (decision: Decision): void => {
    for (const e of decision.events) {
      const stored = e as StoredEvent;
      stored.v = EVENT_SCHEMA_VERSION;
      stored.run = run;
      stored.seq = seq;
      stored.id = `${run}#${seq}`;
      seq++;
      pending.push(stored);
      options.onEvent?.(stored);
    }
  };
  // The loop never waits for the broker: sends are chained in order and awaited once at the end,
  // so the run's timeline is paced by the clock alone, not by produce round trips.
  let sending: Promise<unknown> = Promise.resolve();
  const flush = (): void => {
    if (outgoing.length > 0) {
      const now = clock.now();
      for (const m of outgoing) sentAt.set(m.push, now);
      const messages = outgoing.splice(0).map((m) => ({ key: m.device, value: JSON.stringify(m) }));
      const pushes = producer.send({ topic: topics.pushes.name, messages });
      sending = Promise.all([sending, pushes]);
    }
    const size = options.batchSize ?? 2000;
    while (pending.length > 0) {
      const batch = pending.splice(0, size);
      sending = Promise.all([sending, log.append(batch)]);
    }
  };
  // Commands run at their scheduled time, or later if the loop fell behind; never before a fact
  // already logged, so the log's times never go backwards.
  const execute = (command: Command, at: number): void => {
    lastAt = Math.max(lastAt, at);
    store(decide(command, lastAt));
  };

  const horizon = scenario.horizon;
  const ackTimeout = options.ackTimeoutMs ?? 30 * 60_000;
  try {
    heap.push(0, { type: 'StartRun' });
    for (;;) {
      // An acknowledgement joins the engine's timeline at the time the device sent it.
      while (acks.length > 0) {
        const ack = acks.shift()!;
        sentAt.delete(ack.push);
        if (lost.delete(ack.push)) {
          // Given up on, and here after all: late, so it joins the timeline now.
          heap.push(Math.max(ack.at, lastAt), { type: 'Acknowledge', push: ack.push });
          continue;
        }
        inFlight--;
        arrived.add(ack.push);
        heap.push(ack.at, { type: 'Acknowledge', push: ack.push });
      }
      const next = heap.peekTime();
      const blockedAt = barrier();
      const now = clock.now();
      const runnable = next !== undefined && next <= horizon && (blockedAt === undefined || next < blockedAt);
      if (runnable && next <= now) {
        execute(heap.pop()!, next);
        continue;
      }
      flush();
      options.onProgress?.(now, horizon);
      const drained = (next === undefined || next > horizon) && inFlight === 0;
      if (drained || (now >= horizon && !runnable)) break;
      const waitingFor = blockedAt === undefined ? undefined : outstanding.peek()!;
      const givesUpAt = waitingFor === undefined ? undefined : (sentAt.get(waitingFor) ?? now) + ackTimeout;
      if (!runnable && givesUpAt !== undefined && now >= givesUpAt) {
        // The acknowledgement has not come back in time: stop holding the timeline for it.
        arrived.add(waitingFor!);
        lost.add(waitingFor!);
        inFlight--;
        continue;
      }
      const until = runnable ? next : givesUpAt !== undefined ? givesUpAt : horizon;
      await new Promise<void>((resolve) => {
        wake = resolve;
        void clock.sleepUntil(until).then(resolve);
      });
      wake = null;
    }
    const reason =
      inFlight === 0 && (heap.peekTime() === undefined || heap.peekTime()! > horizon) ? 'drained' : 'horizon';
    execute({ type: 'FinishRun', reason }, reason === 'horizon' ? Math.max(lastAt, horizon) : lastAt);
    flush();
    await sending;
  } finally {
    await Promise.allSettled([fleetSide.disconnect(), engineSide.disconnect()]);
    await producer.disconnect().catch(() => {});
  }

  // The summary comes from the log as the broker has it, not from memory.
  const events: StoredEvent[] = [];
  for await (const e of log.read({ run })) events.push(e);
  await log.close();
  const projection = new PlanProjection();
  const hasher = new EventHasher();
  for (const e of events) {
    hasher.update(e);
    projection.apply(e);
  }
  return {
    plan: planName,
    runId: run,
    events,
    metrics: projection.result(hasher.digest()),
    pushesInFlight: inFlight,
    acksLost: lost.size,
  };
}

/**
 * A consumer of one topic that starts exactly at the topic's end as it is now: anything produced
 * after this returns is read, nothing before it is (other runs share the topic).
 */
async function startConsumer(
  kafka: Kafka,
  groupId: string,
  topic: string,
  onValue: (value: string) => void,
): Promise<Consumer> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 20 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      if (message.value) onValue(message.value.toString('utf8'));
    },
  });
  for (const { partition, high } of ends) consumer.seek({ topic, partition, offset: high });
  return consumer;
}
