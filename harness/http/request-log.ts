import { writeSync } from 'node:fs';

/**
 * Pending lines are written at once when they reach this many characters, not later. Small
 * enough that pending lines rarely live through a young-generation collection, which would copy them.
 */
const FLUSH_CHARS = 16 * 1024;
/** Longest a line waits before it is written, when fewer than FLUSH_CHARS are pending. */
const DEFAULT_FLUSH_INTERVAL_MS = 100;
/** How long to wait for a full pipe (EAGAIN) to drain before trying again. */
const FULL_PIPE_WAIT_MS = 1;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * The request log's destination when none is given: a file descriptor (stdout) written in
 * batches, when 16 KB are pending or `flushIntervalMs` after the first pending line,
 * whichever comes first. pino's default destination makes one write(2) per line; writing once per
 * event-loop turn (this class's first form) still cost a setImmediate and a write per turn, and
 * under the HTTP bench a turn mostly answers one request. Writes stay synchronous, so no other
 * thread is involved; `flushSync` writes what is left (the server calls it on close). A process
 * that dies without closing loses at most the last interval's lines.
 *
 * If the descriptor fails (EPIPE: whoever read stdout went away), logging stops with one notice
 * on stderr rather than taking the server down.
 */
export class BatchedLogDestination {
  readonly #fd: number;
  readonly #flushIntervalMs: number;
  #pending = '';
  #timer: NodeJS.Timeout | undefined;
  #failed = false;

  /**
   * @param fd a file descriptor open for writing; 1 is stdout.
   * @param flushIntervalMs longest a line waits to be written (ms); default 100.
   */
  constructor(fd: number, flushIntervalMs = DEFAULT_FLUSH_INTERVAL_MS) {
    this.#fd = fd;
    this.#flushIntervalMs = flushIntervalMs;
  }

  /** pino calls this with one serialised line, newline included. */
  write(line: string): boolean {
    if (this.#failed) return true;
    this.#pending += line;
    if (this.#pending.length >= FLUSH_CHARS) this.flushSync();
    else if (this.#timer === undefined) {
      // Unreferenced: pending lines never keep a process alive that has nothing else to do.
      this.#timer = setTimeout(this.#onTimer, this.#flushIntervalMs).unref();
    }
    return true;
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.flushSync();
  };

  /** Writes every pending line now. */
  flushSync(): void {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#pending === '' || this.#failed) return;
    let bytes = Buffer.from(this.#pending, 'utf8');
    this.#pending = '';
    while (bytes.length > 0) {
      try {
        bytes = bytes.subarray(writeSync(this.#fd, bytes));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN') {
          // A non-blocking pipe is full: the reader is behind. Wait for it, as pino's would.
          Atomics.wait(waitCell, 0, 0, FULL_PIPE_WAIT_MS);
          continue;
        }
        this.#failed = true;
        process.stderr.write(
          `request log stopped: cannot write to fd ${this.#fd}: ${(error as Error).message}\n`,
        );
        return;
      }
    }
  }
}
