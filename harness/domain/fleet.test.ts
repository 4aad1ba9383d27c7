import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deviceIndexOf, pinOf, userIdOf, userIndexOf } from './fleet.ts';

describe('device and user ids', () => {
  it('deviceIndexOf and userIndexOf invert pinOf and userIdOf', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 28 - 1 }), (index) => {
        expect(deviceIndexOf(pinOf(index))).toBe(index);
        expect(deviceIndexOf(pinOf(index).toLowerCase())).toBe(index);
        expect(userIndexOf(userIdOf(index))).toBe(index);
      }),
    );
  });
});
