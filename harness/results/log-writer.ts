import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { StoredEvent } from '../domain/events.ts';
import { ResultsError } from '../errors.ts';
import { serializeEvent } from '../log/codec.ts';

const CHUNK_CHARS = 4 * 1024 * 1024;

/**
 * Writes a virtual-time run's log while it runs, without holding the events: the simulator is
 * synchronous, so lines are gathered into ~4 MB chunks, each written as one gzip member. A
 * multi-member gzip file is an ordinary gzip file (`readEventsFile`, `zcat` read it whole).
 */
export class StreamingLogWriter {
  private readonly fd: number;
  private chunk = '';

  constructor(readonly path: string) {
    try {
      mkdirSync(dirname(path), { recursive: true });
      this.fd = openSync(path, 'w');
    } catch (cause) {
      throw new ResultsError(`cannot write the event log ${path}: ${(cause as Error).message}`, {
        target: path,
        cause,
      });
    }
  }

  write(event: StoredEvent): void {
    this.writeLine(serializeEvent(event));
  }

  /** A line already serialised with serializeEvent, without its newline. */
  writeLine(line: string): void {
    this.chunk += line + '\n';
    if (this.chunk.length >= CHUNK_CHARS) this.flush();
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    if (this.chunk === '') return;
    writeSync(this.fd, gzipSync(this.chunk, { level: 1 }));
    this.chunk = '';
  }
}
