import type { StoredEvent } from '../domain/events.ts';
import { EventLogError } from './errors.ts';
import type { EventLog } from './port.ts';

/**
 * The reference adapter: an array in append order. Other adapters must behave like this one
 * (the contract suite checks it). It keeps the event objects themselves, not copies: events are
 * immutable values once decided, and copying a million of them would cost more than the run.
 */
export class MemoryEventLog implements EventLog {
  readonly #events: StoredEvent[] = [];
  #closed = false;

  /** Every event in append order, synchronously: for after-the-run tools such as writeEventsFile. */
  get events(): readonly StoredEvent[] {
    return this.#events;
  }

  async append(events: readonly StoredEvent[]): Promise<void> {
    if (this.#closed)
      throw new EventLogError('LOG_CLOSED', 'cannot append to the in-memory event log: it is closed');
    // A loop, not push(...events): spreading a very large batch overflows the argument limit.
    for (const event of events) this.#events.push(event);
  }

  async *read(options: { run?: string } = {}): AsyncIterable<StoredEvent> {
    const { run } = options;
    // Stop at the length seen when reading began, like a file or topic read up to its end.
    const end = this.#events.length;
    for (let index = 0; index < end; index++) {
      const event = this.#events[index]!;
      if (run === undefined || event.run === run) yield event;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }
}
