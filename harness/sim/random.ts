import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { RandomSource, Rng, StreamTable } from '../domain/random.ts';

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

  streams(count: number, prefix: string, name: (i: number) => string, suffix: string): StreamTable {
    return new SeededStreamTable(this.seed, count, prefix, name, suffix);
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

// uniformFloat64's masks and scales: 26 + 27 bits of two outputs make a 53-bit fraction.
const MASK_26 = 0x3ffffff;
const MASK_27 = 0x7ffffff;
const SCALE_26 = 2 ** -26;
const SCALE_53 = 2 ** -53;

/**
 * Many xoroshiro128+ streams in one Int32Array, four words each in the generator's field order
 * (s01, s00, s11, s10): the same arithmetic as pure-rand's generator and uniformFloat64, so
 * entity i draws exactly what `stream(key(i))` would. A stream's state is one cache line
 * instead of a stream object, a generator object and four boxed numbers.
 */
class SeededStreamTable implements StreamTable, Rng {
  private readonly words: Int32Array;
  private readonly started: Uint8Array;
  /** FNV-1a state after the key's prefix, shared by every key of the table. */
  private readonly prefixHash: number;
  private current = 0;

  constructor(
    private readonly seed: number,
    count: number,
    prefix: string,
    private readonly name: (i: number) => string,
    private readonly suffix: string,
  ) {
    this.words = new Int32Array(count * 4);
    this.started = new Uint8Array(count);
    this.prefixHash = fnv1a((0x811c9dc5 ^ seed) >>> 0, prefix);
  }

  at(i: number): Rng {
    if (this.started[i] === 0) this.start(i);
    this.current = i * 4;
    return this;
  }

  next(): number {
    const value1 = this.step(this.current) & MASK_26;
    const value2 = this.step(this.current) & MASK_27;
    return value1 * SCALE_26 + value2 * SCALE_53;
  }

  private start(i: number): void {
    const seed = finish(this.seed, fnv1a(fnv1a(this.prefixHash, this.name(i)), this.suffix));
    // xoroshiro128plus(seed): new XoroShiro128Plus(-1, ~seed, seed | 0, 0)
    const k = i * 4;
    this.words[k] = -1;
    this.words[k + 1] = ~seed;
    this.words[k + 2] = seed | 0;
    this.words[k + 3] = 0;
    this.started[i] = 1;
  }

  /** XoroShiro128Plus.next() on the words at k. */
  private step(k: number): number {
    const w = this.words;
    const s01 = w[k]!;
    const s00 = w[k + 1]!;
    const s11 = w[k + 2]!;
    const s10 = w[k + 3]!;
    const out = (s00 + s10) | 0;
    const a0 = s10 ^ s00;
    const a1 = s11 ^ s01;
    w[k + 1] = (s00 << 24) ^ (s01 >>> 8) ^ a0 ^ (a0 << 16);
    w[k] = (s01 << 24) ^ (s00 >>> 8) ^ a1 ^ ((a1 << 16) | (a0 >>> 16));
    w[k + 3] = (a1 << 5) ^ (a0 >>> 27);
    w[k + 2] = (a0 << 5) ^ (a1 >>> 27);
    return out;
  }
}

/** FNV-1a over the key, mixed with the seed and finalised with murmur3's fmix32. */
function hashKey(seed: number, key: string): number {
  return finish(seed, fnv1a((0x811c9dc5 ^ seed) >>> 0, key));
}

function fnv1a(state: number, text: string): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

function finish(seed: number, state: number): number {
  let h = state;
  h ^= seed >>> 16;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
