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

export interface RandomSource {
  /** The stream for `key`; asking twice for one key gives two generators at the same start. */
  stream(key: string): Rng;
}
