/**
 * The admin API's per-client rate limit: a fixed window per client that opens at the client's
 * first request and lets `max` requests through until it closes, as @fastify/rate-limit's local
 * store counts. It is our own because the plugin's hook is an async function awaiting a promise
 * per request and tests every address against the IPv6 pattern: under load that was a visible
 * share of a request's CPU for a map lookup and an increment.
 */

/** Requests one client may make per window. */
export interface RateLimit {
  /** Requests one client (one IP address) may make per window. */
  max: number;
  windowMs: number;
}

interface ClientWindow {
  count: number;
  /** When the window closes, on the caller's clock (ms). */
  endsAtMs: number;
}

export class FixedWindowRateLimiter {
  readonly #max: number;
  readonly #windowMs: number;
  readonly #windows = new Map<string, ClientWindow>();
  /** Closed windows are dropped at most once per window length, so the map holds recent clients only. */
  #sweepAtMs = Number.NEGATIVE_INFINITY;

  constructor(limit: RateLimit) {
    if (!Number.isInteger(limit.max) || limit.max < 1) {
      throw new RangeError(`rate limit max must be a positive integer, found ${limit.max}`);
    }
    if (!(limit.windowMs > 0))
      throw new RangeError(`rate limit window must be positive, found ${limit.windowMs}`);
    this.#max = limit.max;
    this.#windowMs = limit.windowMs;
  }

  get max(): number {
    return this.#max;
  }

  get windowMs(): number {
    return this.#windowMs;
  }

  /**
   * Counts one request of `client` at `nowMs` (any monotonic millisecond clock, the same on every
   * call). Returns 0 when the request may go on, otherwise the milliseconds until the client's
   * window closes (always > 0). Refused requests count too: a client hammering the limit does not
   * get a fresh window any sooner.
   */
  take(client: string, nowMs: number): number {
    if (nowMs >= this.#sweepAtMs) this.#sweep(nowMs);
    let window = this.#windows.get(client);
    if (window === undefined || nowMs >= window.endsAtMs) {
      window = { count: 0, endsAtMs: nowMs + this.#windowMs };
      this.#windows.set(client, window);
    }
    window.count++;
    return window.count <= this.#max ? 0 : window.endsAtMs - nowMs;
  }

  /** Clients remembered: those with an open window, and maybe some whose window closed lately. */
  get clients(): number {
    return this.#windows.size;
  }

  #sweep(nowMs: number): void {
    for (const [client, window] of this.#windows) if (nowMs >= window.endsAtMs) this.#windows.delete(client);
    this.#sweepAtMs = nowMs + this.#windowMs;
  }
}

/**
 * The client a request counts against: its IPv4 address, or the /64 network of an IPv6 address
 * (one host usually holds a whole /64 and could otherwise take a fresh address per request), as
 * @fastify/rate-limit keys them by default. IPv4-mapped IPv6 addresses count as their IPv4
 * address. Anything else (no address: a closed socket) is the same unnamed client.
 */
export function clientKey(address: string | undefined): string {
  if (address === undefined || address === '') return '(unknown)';
  if (!address.includes(':')) return address;
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
  if (mapped !== null) return mapped[1]!;
  const zoneless = lower.split('%', 1)[0]!;
  const [head = '', tail] = zoneless.split('::', 2);
  const headGroups = head === '' ? [] : head.split(':');
  const tailGroups = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = 8 - headGroups.length - tailGroups.length;
  const groups =
    tail === undefined
      ? headGroups
      : [...headGroups, ...Array(Math.max(0, missing)).fill('0'), ...tailGroups];
  return `${groups
    .slice(0, 4)
    .map((group) => group.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
