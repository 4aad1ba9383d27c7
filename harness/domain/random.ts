/**
 * The Random port. The domain never calls Math.random: it asks for a named stream, and a
 * stream's draws depend only on the run seed and the stream's key. Keys are per entity and
 * purpose (`device:2A000001:coverage`), so two plans over the same fleet see the same draws for
 * the same device (common random numbers), whatever order the plans touch devices in.
 */
export interface Rng {
  /** A uniform draw in [0, 1). */
  next(): number;
}

/**
 * One stream per entity of a kind (entity i's key is `prefix + name(i) + suffix`), held as one
 * table rather than an object per entity: a run draws for every device, and 100,000 stream
 * objects were scattered through the heap by the time each was drawn from again.
 */
export interface StreamTable {
  /**
   * Entity i's stream: the same draws as `stream(prefix + name(i) + suffix)`. The Rng is the
   * table's one cursor, valid until the next call of `at`: draw from it at once.
   */
  at(i: number): Rng;
}

export interface RandomSource {
  /** The stream for `key`; asking twice for one key gives two generators at the same start. */
  stream(key: string): Rng;
  /** Streams for entities 0..count-1, keyed `prefix + name(i) + suffix`, each started on first use. */
  streams(count: number, prefix: string, name: (i: number) => string, suffix: string): StreamTable;
}
