/**
 * The Clock port. A run has one timeline, in milliseconds since it started. In simulation the
 * scheduler's heap is the clock (time jumps to the next command); live, the timeline follows the
 * wall clock sped up by a time scale, so an 8-hour rollout at scale 300 takes 96 seconds.
 */
export interface Clock {
  /** Milliseconds since the run started, on the run's timeline. */
  now(): number;
  /** Resolves once the timeline reaches `at` (at once when it already has). */
  sleepUntil(at: number): Promise<void>;
}

/** The machine's own time and timers: the one adapter that may read them. */
export interface WallTime {
  /** Monotonic milliseconds. */
  nowMs(): number;
  /** Calls `fn` after `delayMs` wall milliseconds. */
  after(delayMs: number, fn: () => void): void;
}

export const systemWallTime: WallTime = {
  nowMs: () => performance.now(),
  after: (delayMs, fn) => {
    setTimeout(fn, delayMs);
  },
};

/** A run timeline that advances `timeScale` times faster than the wall clock. */
export class WallClock implements Clock {
  private readonly startedAt: number;

  constructor(
    readonly timeScale: number,
    private readonly wall: WallTime = systemWallTime,
  ) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
      throw new RangeError(`time scale must be a positive number, found ${timeScale}`);
    }
    this.startedAt = wall.nowMs();
  }

  now(): number {
    return Math.floor((this.wall.nowMs() - this.startedAt) * this.timeScale);
  }

  sleepUntil(at: number): Promise<void> {
    const waitMs = at / this.timeScale - (this.wall.nowMs() - this.startedAt);
    if (waitMs <= 0) return Promise.resolve();
    return new Promise((resolve) => this.wall.after(waitMs, resolve));
  }
}

/**
 * A run timeline anchored to calendar time: run ms = (epoch ms - startedAt) × timeScale, never
 * below 0. Every process that knows `startedAt` and the scale reads the same timeline, so a live
 * run can move from one worker to another and go on where it was.
 */
export class EpochClock implements Clock {
  constructor(
    readonly startedAt: number,
    readonly timeScale: number,
    private readonly epochMs: () => number = Date.now,
  ) {
    if (!(timeScale > 0) || !Number.isFinite(timeScale)) {
      throw new RangeError(`time scale must be a positive number, found ${timeScale}`);
    }
  }

  now(): number {
    return Math.max(0, Math.floor((this.epochMs() - this.startedAt) * this.timeScale));
  }

  /** The calendar time (epoch ms) at which the timeline reaches `at`. */
  wallAt(at: number): number {
    return this.startedAt + at / this.timeScale;
  }

  sleepUntil(at: number): Promise<void> {
    const waitMs = this.wallAt(at) - this.epochMs();
    if (waitMs <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs)));
  }
}
