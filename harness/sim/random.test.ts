import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SeededRandom } from './random.ts';

describe('SeededRandom.streams', () => {
  it('draws for entity i exactly what stream(prefix + name(i) + suffix) draws, however draws interleave', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }),
        fc.array(fc.nat(19), { minLength: 1, maxLength: 200 }),
        (seed, order) => {
          const random = new SeededRandom(seed);
          const name = (i: number): string => `${(0x20000000 + i).toString(16).toUpperCase()}`;
          const table = random.streams(20, 'device:', name, ':work');
          const streams = new Map<number, ReturnType<SeededRandom['stream']>>();
          for (const i of order) {
            let stream = streams.get(i);
            if (!stream) {
              stream = random.stream(`device:${name(i)}:work`);
              streams.set(i, stream);
            }
            expect(table.at(i).next()).toBe(stream.next());
          }
        },
      ),
    );
  });
});
