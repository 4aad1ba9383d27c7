import { PhasebenchError } from '../errors.ts';

export type EventLogErrorCode =
  /** append() after close(). */
  | 'LOG_CLOSED'
  /** append() on a log opened for reading. */
  | 'LOG_READ_ONLY'
  /** The log's file or its folder cannot be created or written. */
  | 'LOG_NOT_WRITABLE'
  /** The log's file does not exist or cannot be read. */
  | 'LOG_NOT_READABLE'
  /** Writing to an open log failed (disk full, file removed under us, ...). */
  | 'LOG_WRITE_FAILED'
  /** A stored line is not a valid event, or the file is not complete gzip. */
  | 'LOG_CORRUPT'
  /** An event whose envelope cannot be written as JSON: a bug in whoever built it. */
  | 'EVENT_NOT_SERIALISABLE';

/** A failure of an event-log adapter. The code is the same whichever adapter raised it. */
export class EventLogError extends PhasebenchError {
  override name = 'EventLogError';
  declare readonly code: EventLogErrorCode;
  /** The log file concerned, when the adapter has one. */
  readonly path: string | undefined;
  /** For LOG_CORRUPT: the 1-based line of the (decompressed) NDJSON that is not an event. */
  readonly line: number | undefined;

  constructor(
    code: EventLogErrorCode,
    message: string,
    details: { path?: string; line?: number; retriable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { retriable: details.retriable ?? false, cause: details.cause });
    this.path = details.path;
    this.line = details.line;
  }
}

/** File-system failures that can go away by themselves, so a retry may succeed. */
const TRANSIENT_FS_CODES = new Set(['ENOSPC', 'EMFILE', 'ENFILE', 'EAGAIN', 'EBUSY', 'EINTR']);

export function isTransientFsError(cause: unknown): boolean {
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_FS_CODES.has(code);
}
