import { writeSync } from 'node:fs';

/** A turn's lines are written at once when they reach this many characters, not later. */
const FLUSH_CHARS = 64 * 1024;
/** How long to wait for a full pipe (EAGAIN) to drain before trying again. */
const FULL_PIPE_WAIT_MS = 1;
const waitCell = new Int32Array(new SharedArrayBuffer(4));

/**
 * The request log's destination when none is given: a file descriptor (stdout) written once per
 * turn of the event loop. Under load a turn answers several requests; pino's default destination
 * makes one write(2) per line, this one makes one for all the turn's lines, at the end of the
 * turn. Writes stay synchronous, so a quiet server's line is out as soon as its turn ends and no
 * other thread is involved; `flushSync` writes what is left (the server calls it on close).
 *
 * If the descriptor fails (EPIPE: whoever read stdout went away), logging stops with one notice
 * on stderr rather than taking the server down.
 */
export class TurnBatchedLogDestination {
  readonly #fd: number;
  #pending = '';
  #flushScheduled = false;
  #failed = false;

  /** @param fd a file descriptor open for writing; 1 is stdout. */
  constructor(fd: number) {
    this.#fd = fd;
  }

  /** pino calls this with one serialised line, newline included. */
  write(line: string): boolean {
    if (this.#failed) return true;
    this.#pending += line;
    if (this.#pending.length >= FLUSH_CHARS) this.flushSync();
    else if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#endOfTurn);
    }
    return true;
  }

  readonly #endOfTurn = (): void => {
    this.#flushScheduled = false;
    this.flushSync();
  };

  /** Writes every pending line now. */
  flushSync(): void {
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
