/**
 * What the admin API keeps about runs: it appends CommandAccepted facts to the event log with the
 * run's next sequence numbers, and answers status questions by folding the log (the source of
 * truth), never from a copy of its own.
 */
import type { StoredEvent } from '../domain/events.ts';
import type { EventLog } from '../log/port.ts';
import type { Clock } from '../sim/clock.ts';
import {
  asStoredEvents,
  COMMAND_TYPES,
  type CommandAccepted,
  type CommandBatch,
  type CommandType,
  commandsAccepted,
  isCommandAccepted,
} from './commands.ts';

/** The answer to GET /v1/runs/:id. */
export interface RunStatus {
  run: string;
  /** Events of the run in the log, of any type. */
  events: number;
  commandsAccepted: number;
  byType: Record<CommandType, number>;
  /** Wall ms since server start of the last accepted command; null when none was accepted. */
  lastAcceptedAt: number | null;
}

/** Folds one run's events into its status; undefined when the log holds nothing of the run. */
export function runStatusOf(
  run: string,
  events: Iterable<StoredEvent | CommandAccepted>,
): RunStatus | undefined {
  const byType = Object.fromEntries(COMMAND_TYPES.map((type) => [type, 0])) as Record<CommandType, number>;
  const status: RunStatus = { run, events: 0, commandsAccepted: 0, byType, lastAcceptedAt: null };
  for (const event of events) {
    if (event.run !== run) continue;
    status.events++;
    if (!isCommandAccepted(event)) continue;
    status.commandsAccepted++;
    byType[event.data.type]++;
    status.lastAcceptedAt = event.at;
  }
  return status.events === 0 ? undefined : status;
}

export async function readRunStatus(log: EventLog, run: string): Promise<RunStatus | undefined> {
  const events: StoredEvent[] = [];
  for await (const event of log.read({ run })) events.push(event);
  return runStatusOf(run, events);
}

/**
 * Appends accepted batches to the log. Appends of one run go one after another, so seq is
 * increasing in append order; different runs do not wait for each other. A run's next seq is
 * read from the log the first time the run is seen (and again after a failed append, which may
 * have stored part of a batch), so facts continue a run the log already holds.
 *
 * Seq is assigned by this process: two servers appending to one run through a shared log would
 * need the log (a Kafka partition owner) to assign it instead.
 */
export class CommandRecorder {
  readonly #log: EventLog;
  readonly #clock: Pick<Clock, 'now'>;
  readonly #nextSeq = new Map<string, number>();
  /** Per run: settles when the run's last queued append has finished (either way). */
  readonly #tails = new Map<string, Promise<void>>();

  /** @param clock stamps `at`: milliseconds since the server started. */
  constructor(log: EventLog, clock: Pick<Clock, 'now'>) {
    this.#log = log;
    this.#clock = clock;
  }

  /** Appends one fact per command; resolves with them once the log has accepted them. */
  record(batch: CommandBatch): Promise<CommandAccepted[]> {
    const { run } = batch;
    const previous = this.#tails.get(run);
    const knownSeq = previous === undefined ? this.#nextSeq.get(run) : undefined;
    // A run with nothing in flight whose next seq is known appends at once, without an async
    // function's promise and resumption: the common case, once per request.
    const appended =
      knownSeq !== undefined
        ? this.#appendAt(batch, knownSeq)
        : previous === undefined
          ? this.#append(batch)
          : previous.then(() => this.#append(batch));
    // Forget idle runs, so the map holds only runs with appends in flight.
    const settled = (): void => {
      if (this.#tails.get(run) === tail) this.#tails.delete(run);
    };
    const tail: Promise<void> = appended.then(settled, settled);
    this.#tails.set(run, tail);
    return appended;
  }

  async #append(batch: CommandBatch): Promise<CommandAccepted[]> {
    const firstSeq = this.#nextSeq.get(batch.run) ?? (await nextSeqInLog(this.#log, batch.run));
    return this.#appendAt(batch, firstSeq);
  }

  #appendAt(batch: CommandBatch, firstSeq: number): Promise<CommandAccepted[]> {
    const facts = commandsAccepted(batch, firstSeq, this.#clock.now());
    // Forgotten until the append succeeds: after a failure the next batch reads the log again.
    this.#nextSeq.delete(batch.run);
    return this.#log.append(asStoredEvents(facts)).then(() => {
      this.#nextSeq.set(batch.run, firstSeq + facts.length);
      return facts;
    });
  }
}

async function nextSeqInLog(log: EventLog, run: string): Promise<number> {
  let next = 0;
  for await (const event of log.read({ run })) next = Math.max(next, event.seq + 1);
  return next;
}
