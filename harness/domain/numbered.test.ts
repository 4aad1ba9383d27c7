import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NumberedNames } from './numbered.ts';

describe('NumberedNames', () => {
  it('names n as the prefix followed by n in decimal, in any order of asking', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 20_000_000 }), { maxLength: 200 }), (ns) => {
        const names = new NumberedNames('job-');
        for (const n of ns) expect(names.of(n)).toBe(`job-${n}`);
      }),
    );
  });

  it('names the edges of a thousand', () => {
    const names = new NumberedNames('run#');
    for (const n of [0, 9, 10, 999, 1000, 1001, 1099, 9999, 10_000, 100_000, 999_999, 1_000_000]) {
      expect(names.of(n)).toBe(`run#${n}`);
    }
  });
});
