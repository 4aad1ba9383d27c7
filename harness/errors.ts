/**
 * The error tree (after kafkajs): every error phasebench throws on purpose is a PhasebenchError
 * with a stable `code` that scripts and docs can rely on, a `retriable` flag that the one generic
 * retrier reads (programmer and input errors are never retriable), the underlying `cause`, and
 * the process exit code the CLI should use.
 */
import { inspect } from 'node:util';

/** 2: the user gave us something we cannot use (scenario, flags). 1: anything else failed. */
export type ExitCode = 1 | 2;

export interface PhasebenchErrorOptions {
  /** Default false: only errors known to be transient (a broker restarting, a full disk) retry. */
  retriable?: boolean;
  /** Default 1. */
  exitCode?: ExitCode;
  cause?: unknown;
}

export class PhasebenchError extends Error {
  override name = 'PhasebenchError';
  readonly code: string;
  readonly retriable: boolean;
  readonly exitCode: ExitCode;

  constructor(code: string, message: string, options: PhasebenchErrorOptions = {}) {
    // Only pass `cause` when there is one, so `'cause' in err` means something.
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.exitCode = options.exitCode ?? 1;
  }
}

export type ScenarioErrorCode = 'SCENARIO_INVALID' | 'SCENARIO_LOAD_FAILED';

/** One problem found in a scenario: where (`fleet.users`) and what is wrong there. */
export interface ScenarioIssue {
  path: string;
  problem: string;
}

/** A scenario file that cannot be found, imported or validated. Input error: exit code 2. */
export class ScenarioError extends PhasebenchError {
  override name = 'ScenarioError';
  declare readonly code: ScenarioErrorCode;
  /** The scenario file as shown to the user, or '<inline>' for objects parsed in code. */
  readonly source: string;
  /** Validation problems, one per line of the message; empty when the file did not load. */
  readonly issues: readonly ScenarioIssue[];

  constructor(
    code: ScenarioErrorCode,
    message: string,
    details: { source: string; issues?: readonly ScenarioIssue[]; cause?: unknown },
  ) {
    super(code, message, { exitCode: 2, retriable: false, cause: details.cause });
    this.source = details.source;
    this.issues = details.issues ?? [];
  }
}

/** The results folder (event log, summary, report) cannot be written. */
export class ResultsError extends PhasebenchError {
  override name = 'ResultsError';
  declare readonly code: 'RESULTS_NOT_WRITABLE';
  /** The file or folder that could not be written. */
  readonly target: string;

  constructor(message: string, details: { target: string; retriable?: boolean; cause?: unknown }) {
    super('RESULTS_NOT_WRITABLE', message, {
      exitCode: 1,
      retriable: details.retriable ?? false,
      cause: details.cause,
    });
    this.target = details.target;
  }
}

/** Causes are followed this deep; a longer chain is almost certainly a cycle. */
const MAX_CAUSES = 5;

/**
 * Renders any thrown value as one readable paragraph for a terminal: the message (with the code
 * for our own errors), then one `caused by:` line per cause. Stacks only help us, not users, so
 * they appear only with PHASEBENCH_DEBUG=1.
 */
export function formatError(err: unknown, options: { debug?: boolean } = {}): string {
  const debug = options.debug ?? process.env.PHASEBENCH_DEBUG === '1';
  const lines = [headline(err)];
  let cause = causeOf(err);
  for (let depth = 0; cause !== undefined && depth < MAX_CAUSES; depth++) {
    // Messages often quote their cause already ("importing it threw Error: boom"); say it once.
    const said = squash(lines.join(' '));
    const text = headline(cause);
    const quoted = squash(cause instanceof Error ? cause.message : text);
    if (quoted === '' || !said.includes(quoted)) {
      lines.push(indent(`caused by: ${text}`));
    }
    cause = causeOf(cause);
  }
  if (debug) {
    for (let e: unknown = err, depth = 0; e !== undefined && depth <= MAX_CAUSES; e = causeOf(e), depth++) {
      if (e instanceof Error && e.stack) lines.push(indent(e.stack));
    }
  } else if (err instanceof Error && !(err instanceof PhasebenchError)) {
    // Not one of ours means a bug or an unexpected failure: say how to see more.
    lines.push(indent('(set PHASEBENCH_DEBUG=1 to see the stack)'));
  }
  return lines.join('\n');
}

function headline(err: unknown): string {
  if (err instanceof PhasebenchError) return `[${err.code}] ${err.message}`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    // Node system errors repeat their code in the message ('ENOENT: no such file ...').
    const withCode = typeof code === 'string' && !err.message.includes(code) ? ` [${code}]` : '';
    return `${err.name}${withCode}: ${err.message || '(no message)'}`;
  }
  return `non-error value thrown: ${inspect(err, { depth: 2, breakLength: Number.POSITIVE_INFINITY })}`;
}

function causeOf(err: unknown): unknown {
  return err instanceof Error ? err.cause : undefined;
}

function squash(text: string): string {
  return text.replace(/\s+/g, ' ');
}

function indent(text: string): string {
  return text.replace(/^/gm, '  ');
}
