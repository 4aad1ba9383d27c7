import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomSource, Rng } from '../domain/random.ts';

/**
 * Seeded, splittable randomness: each stream is a xoroshiro128+ generator seeded from a hash of
 * (run seed, stream key), so streams are independent of each other and of the order they are
 * created in.
 */
export class SeededRandom implements RandomSource {
  constructor(private readonly seed: number) {}

  stream(key: string): Rng {
    return new SeededStream(xoroshiro128plus(hashKey(this.seed, key)));
  }
}

/**
 * One stream. A class rather than a closure: a run creates one stream per device, and one
 * shape for all of them keeps `next` monomorphic on the hot path.
 */
class SeededStream implements Rng {
  constructor(private readonly generator: ReturnType<typeof xoroshiro128plus>) {}

  next(): number {
    return uniformFloat64(this.generator);
  }
}

/** FNV-1a over the key, mixed with the seed and finalised with murmur3's fmix32. */
function hashKey(seed: number, key: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= seed >>> 16;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
