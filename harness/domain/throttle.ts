import type { Throttle } from '../scenario/schema.ts';

export const MINUTE_MS = 60_000;

/**
 * The last `limit` start times. A start at `at` keeps every 60 s window within the limit iff
 * the limit-th previous start is at least 60 s before it. This is the hard guarantee behind the
 * Policy Service's even spreading, which on its own can bunch when slots are deferred.
 */
export class SlidingWindow {
  private readonly starts: number[];
  private head = 0;
  private filled = 0;

  constructor(readonly limit: number) {
    this.starts = new Array(limit).fill(0);
  }

  /** Earliest instant >= at at which one more start fits. */
  earliestStart(at: number): number {
    if (this.filled < this.limit) return at;
    const oldest = this.starts[this.head]!;
    return Math.max(at, oldest + MINUTE_MS);
  }

  record(at: number): void {
    this.starts[this.head] = at;
    this.head = (this.head + 1) % this.limit;
    if (this.filled < this.limit) this.filled++;
  }
}

/**
 * How many jobs a Policy Service plans for its next minute (D: it decides how many users to
 * process in the next 60 s and spreads them evenly). The domain limit is shared among the Policy
 * Services that have work queued (E: services do not coordinate, so each takes a share): an equal
 * share each, and the remainder one job apiece to services that take turns minute by minute
 * (`rank` is the service's place among the busy ones), so no capacity is lost to rounding, not
 * even when there are more busy services than the domain allows jobs a minute.
 */
export function jobsForMinute(
  queued: number,
  busyServices: number,
  throttle: Throttle,
  rank = 0,
  minute = 0,
): number {
  let n = queued;
  if (throttle.jobsPerMinutePerService !== null) n = Math.min(n, throttle.jobsPerMinutePerService);
  if (throttle.jobsPerMinuteDomain !== null) {
    const busy = Math.max(1, busyServices);
    const share = Math.floor(throttle.jobsPerMinuteDomain / busy);
    const extra = (rank + minute) % busy < throttle.jobsPerMinuteDomain % busy ? 1 : 0;
    n = Math.min(n, share + extra);
  }
  return n;
}

/** Offsets within the minute at which n planned jobs start: equal intervals from the minute's start. */
export function slotOffsets(n: number): number[] {
  const offsets = new Array<number>(n);
  for (let i = 0; i < n; i++) offsets[i] = Math.floor((i * MINUTE_MS) / n);
  return offsets;
}

/**
 * Lower bound on the time to start `jobs` throttled jobs spread over `services` Policy Services
 * (used by preview). A service starts at most min(its limit, the domain limit) in any 60 s and
 * spreads them evenly; the domain as a whole starts at most its limit in any 60 s window, and since
 * services do not coordinate, only whole minutes of that can be counted on.
 */
export function throttleLowerBoundMs(jobsByService: readonly number[], throttle: Throttle): number {
  const perService = throttle.jobsPerMinutePerService;
  const domain = throttle.jobsPerMinuteDomain;
  const total = jobsByService.reduce((a, b) => a + b, 0);
  if (total === 0) return 0;
  const serviceLimit =
    perService === null ? domain : domain === null ? perService : Math.min(perService, domain);
  let minutes = 0;
  if (serviceLimit !== null)
    minutes = Math.max(...jobsByService.map((j) => Math.max(0, j - 1) / serviceLimit));
  if (domain !== null) minutes = Math.max(minutes, Math.floor((total - 1) / domain));
  return minutes * MINUTE_MS;
}
