/** 0..999 as text, and the same padded to three digits (the last three digits of 1000..∞). */
const SMALL_NUMBERS = Array.from({ length: 1000 }, (_, i) => String(i));
const LAST_THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * Names `${prefix}${n}` for non-negative integers n (event ids, job keys), joined from a string
 * per thousand (made once, kept) and a shared three-digit string, without turning n into text.
 * Turning a number into text goes through V8's number-string cache, which keeps its last few
 * thousand results alive: a run naming 100,000 jobs had every scavenge copy some 300 KB of them.
 */
export class NumberedNames {
  private readonly thousands: string[] = [];

  constructor(private readonly prefix: string) {}

  /** The name of `n`, a non-negative integer. */
  of(n: number): string {
    if (n < 1000) return this.prefix + SMALL_NUMBERS[n]!;
    const k = Math.floor(n / 1000);
    let head = this.thousands[k];
    if (head === undefined) this.thousands[k] = head = this.prefix + k;
    return head + LAST_THREE_DIGITS[n - k * 1000]!;
  }
}
