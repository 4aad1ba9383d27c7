import type { StoredEvent } from '../domain/events.ts';

/**
 * The event log port: the run's source of truth. Adapters: memory (the reference), file
 * (gzipped NDJSON under results/), and Kafka (live mode). One contract suite
 * (`contract.ts`) runs against each of them.
 */
export interface EventLog {
  /** Appends events in order. Resolves once the adapter has accepted them (file: written to the stream). */
  append(events: readonly StoredEvent[]): Promise<void>;
  /** Every stored event in append order, optionally only those of one run. */
  read(options?: { run?: string }): AsyncIterable<StoredEvent>;
  /** Flushes and releases the adapter; appending afterwards is an error. */
  close(): Promise<void>;
}
