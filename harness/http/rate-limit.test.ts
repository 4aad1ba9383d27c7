import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clientKey, FixedWindowRateLimiter } from './rate-limit.ts';

describe('FixedWindowRateLimiter', () => {
  it('lets max requests through per window, then says how long until the window closes', () => {
    const limiter = new FixedWindowRateLimiter({ max: 3, windowMs: 60_000 });
    expect([0, 10, 20].map((at) => limiter.take('a', at))).toEqual([0, 0, 0]);
    expect(limiter.take('a', 1_000)).toBe(59_000);
    // Another client has a window of its own.
    expect(limiter.take('b', 1_000)).toBe(0);
    // Refused requests count: the window does not restart early.
    expect(limiter.take('a', 59_999)).toBe(1);
    expect(limiter.take('a', 60_000)).toBe(0);
  });

  it('forgets clients whose window has closed', () => {
    const limiter = new FixedWindowRateLimiter({ max: 1, windowMs: 100 });
    for (let client = 0; client < 50; client++) limiter.take(`c${client}`, client);
    expect(limiter.clients).toBe(50);
    limiter.take('late', 1_000);
    expect(limiter.clients).toBe(1);
  });

  it('refuses a limit that cannot be kept', () => {
    expect(() => new FixedWindowRateLimiter({ max: 0, windowMs: 1_000 })).toThrow(RangeError);
    expect(() => new FixedWindowRateLimiter({ max: 1.5, windowMs: 1_000 })).toThrow(RangeError);
    expect(() => new FixedWindowRateLimiter({ max: 1, windowMs: 0 })).toThrow(RangeError);
  });

  const requests = fc
    .array(fc.record({ client: fc.constantFrom('a', 'b', 'c'), gapMs: fc.nat({ max: 400 }) }), {
      maxLength: 300,
    })
    .map((list) => {
      let atMs = 0;
      return list.map(({ client, gapMs }) => {
        atMs += gapMs;
        return { client, atMs };
      });
    });
  const limits = fc.record({
    max: fc.integer({ min: 1, max: 8 }),
    windowMs: fc.integer({ min: 1, max: 2_000 }),
  });

  it('property: a client never gets more than max through per window length it has been active', () => {
    fc.assert(
      fc.property(limits, requests, (limit, sequence) => {
        const limiter = new FixedWindowRateLimiter(limit);
        const allowed = new Map<string, number[]>();
        for (const { client, atMs } of sequence) {
          const waitMs = limiter.take(client, atMs);
          expect(waitMs).toBeGreaterThanOrEqual(0);
          expect(waitMs).toBeLessThanOrEqual(limit.windowMs);
          if (waitMs === 0) allowed.set(client, [...(allowed.get(client) ?? []), atMs]);
        }
        for (const times of allowed.values()) {
          // Windows are disjoint and windowMs long, so [first, last] meets at most this many.
          const windows = Math.floor((times.at(-1)! - times[0]!) / limit.windowMs) + 1;
          expect(times.length).toBeLessThanOrEqual(limit.max * windows);
          // And any window-long stretch holds at most two windows' worth.
          for (let i = 0; i + 2 * limit.max < times.length; i++) {
            expect(times[i + 2 * limit.max]! - times[i]!).toBeGreaterThanOrEqual(limit.windowMs);
          }
        }
      }),
    );
  });

  it("property: one client's requests never change another's answers", () => {
    fc.assert(
      fc.property(limits, requests, (limit, sequence) => {
        const together = new FixedWindowRateLimiter(limit);
        const alone = new FixedWindowRateLimiter(limit);
        for (const { client, atMs } of sequence) {
          const answer = together.take(client, atMs);
          if (client === 'a') expect(alone.take('a', atMs)).toBe(answer);
        }
      }),
    );
  });

  it('property: a refused client that waits as long as it was told is let through', () => {
    fc.assert(
      fc.property(limits, requests, (limit, sequence) => {
        const limiter = new FixedWindowRateLimiter(limit);
        for (const { client, atMs } of sequence) {
          const waitMs = limiter.take(client, atMs);
          if (waitMs > 0) {
            expect(limiter.take(client, atMs + waitMs)).toBe(0);
            return;
          }
        }
      }),
    );
  });
});

describe('clientKey', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['::ffff:10.1.2.3', '10.1.2.3'],
    ['::1', '0:0:0:0::/64'],
    ['2001:db8:0:1:aaaa::1', '2001:db8:0:1::/64'],
    ['2001:DB8:0:1:bbbb:cccc:dddd:eeee', '2001:db8:0:1::/64'],
    ['2001:0db8::5', '2001:db8:0:0::/64'],
    ['fe80::1%eth0', 'fe80:0:0:0::/64'],
    [undefined, '(unknown)'],
  ])('%s counts as %s', (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});
