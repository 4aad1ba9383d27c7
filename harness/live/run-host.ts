/**
 * One live run hosted by an engine worker: the same decider as the simulator, paced by the run's
 * timeline (EpochClock), with the device side of every push crossing the broker to the fleet and
 * every fact appended to the event log topic.
 *
 * Why a crashed run can be taken over. The decider is deterministic: given the scenario, the plan
 * and the seed, the commands it runs and the facts it decides follow from the order in which the
 * commands run, and that order is the simulator's own, because:
 * - an acknowledgement is scheduled on the heap when its push is sent, as in the simulator, at
 *   the time the transfer ends; live, that heap entry waits until the fleet's answer has arrived,
 *   and nothing later on the timeline runs before it (the barrier);
 * - commands run at their scheduled time on the timeline even when the wall clock is a little
 *   past it, so the facts never depend on how late the process woke up.
 * So the log of a live run is the simulation's log, paced by the wall clock. A worker that takes
 * the run over (the previous owner was killed, or a rebalance moved the partition) reads how much
 * of the log is already there, runs the decider again from the start without waiting, treating
 * every acknowledgement before that point as arrived (the previous owner only got past it because
 * it had), appends nothing it re-decided below that point, sends again the pushes still waiting
 * for an answer, and goes on live. Anything appended twice carries the same event id and is
 * counted once by the projections.
 *
 * Each instance's Policy Service and throttle therefore live in exactly one place at a time: the
 * worker hosting the run. Its throttle state after a takeover is the one the log implies, so a
 * handover never lets more jobs through a 60-second window than the limits allow.
 */
import type { Consumer, Kafka, Producer } from 'kafkajs';
import { type Command, createDecide, type Decision, initialState } from '../domain/engine.ts';
import { EVENT_SCHEMA_VERSION, type PushKind, type StoredEvent } from '../domain/events.ts';
import { generateFleet, userIndexOf } from '../domain/fleet.ts';
import type { EventLog } from '../log/port.ts';
import type { Scenario } from '../scenario/schema.ts';
import { EpochClock } from '../sim/clock.ts';
import { TimeHeap } from '../sim/heap.ts';
import { SeededRandom } from '../sim/random.ts';
import { CoalescingSender } from './coalescing-sender.ts';
import { isRetriableKafkaError, type LiveTopics } from './kafka-config.ts';
import {
  decodeMessage,
  MESSAGE_SCHEMA_VERSION,
  type MoveUserMessage,
  type PushMessage,
  RUN_HEADER,
  VERSION_HEADER,
} from './messages.ts';
import { startRunReader } from './run-reader.ts';

/** Pushes per produce request at most; kafkajs sends one record batch per partition per request. */
const PUSHES_PER_REQUEST = 1_000;

export interface RunStart {
  run: string;
  plan: string;
  scenario: Scenario;
  /** Epoch ms at which the run's timeline starts. */
  startedAt: number;
  timeScale: number;
}

export interface HostRunOptions {
  kafka: Kafka;
  topics: LiveTopics;
  /** The event log topic's adapter (shared by the worker's runs). */
  log: EventLog;
  /** Sends pushes (shared by the worker's runs). */
  producer: Producer;
  start: RunStart;
  /** Aborting stops hosting at once, without finishing the run: another owner will. */
  signal?: AbortSignal;
  /** Called about once a second while the run is hosted; a rejection stops hosting and is rethrown. */
  heartbeat?: () => Promise<void>;
  /** Wall ms an acknowledgement may be overdue before its push is sent again. Default 5_000. */
  resendAfterMs?: number;
  /** Wall ms after a push was last sent before its acknowledgement is given up on. Default 120_000. */
  ackTimeoutMs?: number;
  /** Events appended per request at most. Default 2_000. */
  batchSize?: number;
  /** Calendar time, epoch ms. Default Date.now. */
  epochMs?: () => number;
  /** Called once the log has been read: how many of the run's events were already there. */
  onHosting?: (recoveredEvents: number) => void;
  /**
   * Called with the run's events that are in the log, in sequence order: those a takeover found
   * there, as they are decided again, then each batch once appended (e.g. for live /metrics).
   * Must not throw: a throw ends hosting.
   */
  onLogged?: (events: readonly StoredEvent[]) => void;
}

export interface HostedRun {
  run: string;
  /** Events of the run in the log when this host began: re-decided, not appended again. */
  recoveredEvents: number;
  /** Events this host appended. */
  appendedEvents: number;
  /** Pushes sent to the fleet (again, after a takeover or an overdue answer, included). */
  pushesSent: number;
  /** Pushes sent again because their acknowledgement was overdue or a takeover found them open. */
  pushesResent: number;
  /** Acknowledgements given up on after ackTimeoutMs: their pushes stay pending. */
  acksLost: number;
  /** False when the host was aborted before the run completed. */
  completed: boolean;
}

interface OpenPush {
  job: number;
  device: string;
  kind: PushKind;
  bytes: number;
  queuedAt: number;
}

export async function hostRun(options: HostRunOptions): Promise<HostedRun> {
  const { kafka, topics, log, producer, start } = options;
  const { scenario, run } = start;
  const epochMs = options.epochMs ?? Date.now;
  const clock = new EpochClock(start.startedAt, start.timeScale, epochMs);
  const resendAfterMs = options.resendAfterMs ?? 5_000;
  const ackTimeoutMs = options.ackTimeoutMs ?? 120_000;
  const batchSize = options.batchSize ?? 2_000;
  const signal = options.signal;

  // How much of the run the log already holds: the unbroken prefix of sequence numbers.
  const logged = new Set<number>();
  /** A commanded run's moves as the log has them: a takeover makes them again at the same times. */
  const loggedMoves: Array<{ seq: number; at: number; command: Command }> = [];
  for await (const e of log.read({ run })) {
    logged.add(e.seq);
    if (e.type === 'UserMoveRequested') {
      const { user, to, phase } = e.data;
      loggedMoves.push({
        seq: e.seq,
        at: e.at,
        command: { type: 'MoveUser', user: userIndexOf(user), to, phase },
      });
    }
  }
  let recovered = 0;
  while (logged.has(recovered)) recovered++;
  logged.clear();
  options.onHosting?.(recovered);

  const random = new SeededRandom(scenario.seed);
  const fleet = generateFleet(scenario, random);
  const state = initialState(scenario, start.plan, fleet);
  const heap = new TimeHeap<Command>();
  /** Pushes decided to be sent whose message has not left yet. */
  const outbox = new Map<number, number>();
  const decide = createDecide(state, { random }, (at, command) => {
    heap.push(at, command);
    if (command.type === 'Acknowledge') outbox.set(command.push, at);
  });

  const open = new Map<number, OpenPush>();
  /** Pushes whose acknowledgement has come back from the fleet. */
  const arrived = new Set<number>();
  /** Wall time (epoch ms) each open push was last sent. */
  const lastSent = new Map<number, number>();
  const lost = new Set<number>();
  let wake: (() => void) | undefined;
  const acks = await startAckReader(kafka, topics, run, start.startedAt, (push) => {
    arrived.add(push);
    wake?.();
  });
  // A commanded plan's moves come from outside: moveUser commands for this run on the commands topic.
  const plan = scenario.plans[start.plan]!;
  const commandedMoves = plan.kind === 'commanded' ? plan.moves : 0;
  const incoming: MoveUserMessage[] = [];
  const commands =
    commandedMoves > 0
      ? await startCommandReader(kafka, topics, run, start.startedAt, (message) => {
          incoming.push(message);
          wake?.();
        })
      : undefined;
  /** The timeline position of the last command run: a move arriving late runs no earlier. */
  let lastAt = 0;
  /**
   * Moves that arrived go onto the heap at the time they were commanded, or now if that has
   * passed. While a takeover catches up, the log's own moves are made instead, and these wait (the
   * engine moves a user once, so one the log already moved is not moved again).
   */
  const takeIncoming = (): void => {
    if (incoming.length === 0 || seq < recovered) return;
    for (const m of incoming) {
      heap.push(Math.max(Math.ceil(m.at), lastAt), {
        type: 'MoveUser',
        user: userIndexOf(m.user),
        to: m.to,
        phase: m.phase,
      });
    }
    incoming.length = 0;
  };
  const expectingMoves = (): boolean => state.commanded !== null && state.commanded.moves < commandedMoves;

  const stats: HostedRun = {
    run,
    recoveredEvents: recovered,
    appendedEvents: 0,
    pushesSent: 0,
    pushesResent: 0,
    acksLost: 0,
    completed: false,
  };
  let seq = 0;
  let sendFailure: unknown;
  /**
   * Runs `work` with retries; the first failure that outlasts them ends hosting. Once hosting is
   * aborted nothing more leaves: the next owner appends and sends what this one did not.
   */
  const guarded =
    <T>(work: (items: T[]) => Promise<unknown>) =>
    async (items: T[]): Promise<void> => {
      try {
        if (sendFailure === undefined && signal?.aborted !== true) await retrying(() => work(items), signal);
      } catch (error) {
        sendFailure ??= error;
      }
    };
  // Pushes and facts travel on lanes of their own, so a push never waits behind a large append
  // (the barrier waits for its answer), and each lane gathers what was decided while its last
  // request was out into the next one.
  const facts = new CoalescingSender<StoredEvent>(
    guarded(async (batch) => {
      await log.append(batch);
      stats.appendedEvents += batch.length;
      options.onLogged?.(batch);
    }),
    { maxItems: batchSize },
  );
  const pushes = new CoalescingSender<PushMessage>(
    guarded((messages) =>
      producer.send({
        topic: topics.pushes.name,
        messages: messages.map((m) => ({
          key: m.device,
          value: JSON.stringify(m),
          headers: { [RUN_HEADER]: run, [VERSION_HEADER]: String(MESSAGE_SCHEMA_VERSION) },
        })),
      }),
    ),
    // A record batch over the broker's message.max.bytes (1 MiB) is refused: about 400 bytes each.
    { maxItems: PUSHES_PER_REQUEST },
  );

  const store = (decision: Decision, at: number): void => {
    for (const e of decision.events) {
      const stored = e as StoredEvent;
      stored.v = EVENT_SCHEMA_VERSION;
      stored.run = run;
      stored.seq = seq;
      stored.id = `${run}#${seq}`;
      seq++;
      if (stored.type === 'JobQueued') {
        for (const p of stored.data.pushes) {
          open.set(p.push, {
            job: stored.data.job,
            device: stored.data.device,
            kind: p.kind,
            bytes: p.bytes,
            queuedAt: at,
          });
        }
      } else if (stored.type === 'PushAcknowledged' || stored.type === 'PushExpired') {
        open.delete(stored.data.push);
        outbox.delete(stored.data.push);
      }
      if (stored.seq >= recovered) facts.add(stored);
      else options.onLogged?.([stored]);
    }
  };

  const pushMessage = (push: number, ackAt: number): PushMessage | undefined => {
    const p = open.get(push);
    if (p === undefined) return undefined;
    return {
      v: MESSAGE_SCHEMA_VERSION,
      type: 'push',
      run,
      push,
      job: p.job,
      device: p.device,
      kind: p.kind,
      bytes: p.bytes,
      queuedAt: p.queuedAt,
      intendedAt: p.queuedAt,
      ackAt,
      clock: { startedAt: start.startedAt, timeScale: start.timeScale },
    };
  };

  const sendPush = (m: PushMessage, now: number): void => {
    lastSent.set(m.push, now);
    stats.pushesSent++;
    pushes.add(m);
  };

  /** Sends what was decided: pushes first (the fleet's clock is running), then the facts. */
  const flush = (): void => {
    if (outbox.size > 0) {
      const now = epochMs();
      for (const [push, ackAt] of outbox) {
        const m = pushMessage(push, ackAt);
        if (m !== undefined) sendPush(m, now);
      }
      outbox.clear();
      pushes.flush();
    }
    facts.flush();
  };

  const aborted = (): boolean => signal?.aborted === true || sendFailure !== undefined;
  let lastBeat = epochMs();
  const beat = async (): Promise<void> => {
    if (options.heartbeat === undefined || epochMs() - lastBeat < 1_000) return;
    lastBeat = epochMs();
    await options.heartbeat();
  };
  /** Waits until `wallMs` (epoch), an acknowledgement arrives, or the host is aborted. */
  const waitUntil = async (wallMs: number): Promise<void> => {
    const delay = Math.min(1_000, Math.max(1, Math.ceil(wallMs - epochMs())));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, delay);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        signal?.removeEventListener('abort', done);
        resolve();
      }
      wake = done;
      signal?.addEventListener('abort', done, { once: true });
    });
    // Backpressure: a broker that is slower than the run holds the run, not the memory.
    while (facts.queued > 16 * batchSize && !aborted()) await facts.settled();
  };

  const horizon = scenario.horizon;
  let caughtUp = recovered === 0;
  try {
    heap.push(0, { type: 'StartRun' });
    for (const m of loggedMoves) if (m.seq < recovered) heap.push(m.at, m.command);
    for (;;) {
      if (aborted()) break;
      takeIncoming();
      const next = heap.peekTime();
      if (next === undefined || next > horizon) {
        // A commanded run waits for the moves still expected, until the horizon.
        if (expectingMoves() && seq >= recovered && clock.now() < horizon) {
          flush();
          await beat();
          await waitUntil(clock.wallAt(horizon));
          continue;
        }
        break;
      }
      const catchingUp = seq < recovered;
      if (!catchingUp) {
        if (!caughtUp) {
          // Just caught up with the log: pushes it left open go out again (the fleet answers twice at worst).
          caughtUp = true;
          stats.pushesResent += outbox.size;
          flush();
        }
        const wallNext = clock.wallAt(next);
        if (wallNext > epochMs()) {
          flush();
          await beat();
          await waitUntil(wallNext);
          continue;
        }
        const command = heap.peek()!;
        if (command.type === 'Acknowledge' && !arrived.has(command.push)) {
          // The barrier: nothing later on the timeline runs before this answer.
          flush();
          const sentAt = lastSent.get(command.push) ?? epochMs();
          const now = epochMs();
          if (now - sentAt >= ackTimeoutMs) {
            heap.pop();
            lost.add(command.push);
            stats.acksLost++;
            continue;
          }
          const overdueAt = Math.max(sentAt, clock.wallAt(next)) + resendAfterMs;
          if (now >= overdueAt) {
            const m = pushMessage(command.push, next);
            if (m !== undefined) {
              sendPush(m, now);
              pushes.flush();
              stats.pushesResent++;
            }
            continue;
          }
          await beat();
          await waitUntil(Math.min(overdueAt, sentAt + ackTimeoutMs));
          continue;
        }
      }
      const command = heap.pop()!;
      lastAt = next;
      store(decide(command, next), next);
      if (!catchingUp && facts.queued >= batchSize) flush();
      else if (catchingUp && (seq & 0xfff) === 0) await beat();
    }
    if (!aborted()) {
      const reason = heap.size > 0 || expectingMoves() ? 'horizon' : 'drained';
      const at = reason === 'horizon' ? horizon : state.now;
      store(decide({ type: 'FinishRun', reason }, at), at);
      flush();
      stats.completed = true;
    }
    await Promise.all([pushes.drain(), facts.drain()]);
    if (sendFailure !== undefined) throw sendFailure;
    return stats;
  } finally {
    await acks.disconnect().catch(() => {});
    await commands?.disconnect().catch(() => {});
  }
}

/**
 * Runs `work` until it succeeds; a retriable Kafka failure (a broker restarting) is tried again
 * with backoff for up to five minutes, so an outage pauses the run instead of ending it.
 */
async function retrying<T>(work: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + 300_000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isRetriableKafkaError(error) || Date.now() > deadline || signal?.aborted) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 200 * 2 ** attempt)));
    }
  }
}

/**
 * A reader of the run's acknowledgements on the device-events topic, from shortly before the run
 * started: a new owner of the run sees the answers sent to the one before it. The engine's shared
 * group validates the topic and dead-letters what is malformed; this reader only skips it.
 */
async function startAckReader(
  kafka: Kafka,
  topics: LiveTopics,
  run: string,
  startedAt: number,
  onAck: (push: number) => void,
): Promise<Consumer> {
  return startHostReader(kafka, topics.deviceEvents.name, run, startedAt, 'phasebench-engine-acks', (raw) => {
    let value: { type?: unknown; run?: unknown; push?: unknown };
    try {
      value = JSON.parse(raw.toString('utf8')) as typeof value;
    } catch {
      return;
    }
    if (value.type === 'acknowledged' && value.run === run && typeof value.push === 'number')
      onAck(value.push);
  });
}

/**
 * A reader of a commanded run's moveUser commands on the commands topic, from shortly before the
 * run started (a new owner sees the moves commanded before it). The engine's shared group
 * dead-letters what is malformed; this reader takes only valid moveUser commands of this run.
 */
async function startCommandReader(
  kafka: Kafka,
  topics: LiveTopics,
  run: string,
  startedAt: number,
  onMove: (move: MoveUserMessage) => void,
): Promise<Consumer> {
  return startHostReader(kafka, topics.commands.name, run, startedAt, 'phasebench-engine-commands', (raw) => {
    const decoded = decodeMessage('commands', raw);
    if (decoded.ok && decoded.value.type === 'moveUser' && decoded.value.run === run) onMove(decoded.value);
  });
}

/**
 * What the host's readers share: `topic` read for `run` from a minute before the run started
 * (so a new owner sees what was sent to the one before it), each fetch answering within 20 ms.
 */
async function startHostReader(
  kafka: Kafka,
  topic: string,
  run: string,
  startedAt: number,
  groupPrefix: string,
  onValue: (raw: Buffer) => void,
): Promise<Consumer> {
  return startRunReader({
    kafka,
    topic,
    run,
    groupPrefix,
    from: await offsetsSince(kafka, topic, startedAt - 60_000),
    fetch: { maxWaitTimeInMs: 20 },
    onValue,
  });
}

/** Each partition's first offset at or after `since` (epoch ms); partitions with none are left out. */
async function offsetsSince(kafka: Kafka, topic: string, since: number): Promise<Array<[number, string]>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsetsByTimestamp(topic, since);
    return offsets
      .filter(({ offset }) => offset !== '-1')
      .map(({ partition, offset }) => [partition, offset]);
  } finally {
    await admin.disconnect().catch(() => {});
  }
}
