/**
 * k6 for tests and tools: the binary scripts/k6.sh builds (k6 with k6/x/kafka, at the script's
 * pinned versions), and one run of a script that returns its exit code, its output and the
 * `--summary-export` JSON. The script does the building; this only runs it and turns its failures
 * into errors that say why.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { PhasebenchError } from '../errors.ts';

const execFileAsync = promisify(execFile);

const SCRIPT = fileURLToPath(new URL('../../scripts/k6.sh', import.meta.url));

/** The k6 scripts of scenarios/k6, by file name. */
export const K6_SCRIPTS_DIR = fileURLToPath(new URL('../../scenarios/k6/', import.meta.url));

/** A first build downloads k6's modules and compiles for minutes on two cores. */
const BUILD_TIMEOUT_MS = 15 * 60_000;

/** k6's exit code when a threshold failed (k6's errext.ThresholdsHaveFailed). */
export const K6_THRESHOLDS_FAILED = 99;

export type K6ErrorCode =
  /** scripts/k6.sh could not build k6 (no Go, the module proxy refused a module, a compile error). */
  | 'K6_NOT_BUILT'
  /** k6 could not be started, or ran past its time limit. */
  | 'K6_RUN_FAILED'
  /** k6 finished without writing the summary it was asked for. */
  | 'K6_NO_SUMMARY';

export class K6Error extends PhasebenchError {
  override name = 'K6Error';
  declare readonly code: K6ErrorCode;

  constructor(code: K6ErrorCode, message: string, details: { cause?: unknown } = {}) {
    super(code, message, { retriable: false, cause: details.cause });
  }
}

let built: Promise<string> | undefined;

/**
 * The k6 binary, built first when its pins changed (`bash scripts/k6.sh build`; once per process).
 * @throws K6Error K6_NOT_BUILT with the script's explanation.
 */
export function k6Binary(): Promise<string> {
  built ??= buildK6().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  return built;
}

async function buildK6(): Promise<string> {
  try {
    await execFileAsync('bash', [SCRIPT, 'build'], {
      timeout: BUILD_TIMEOUT_MS,
      maxBuffer: 16 * 1024 * 1024,
    });
    const { stdout } = await execFileAsync('bash', [SCRIPT, 'path']);
    return stdout.trim();
  } catch (cause) {
    const { stderr, stdout } = cause as { stderr?: unknown; stdout?: unknown };
    const said = [stderr, stdout].filter(
      (text): text is string => typeof text === 'string' && text.trim() !== '',
    );
    const ci =
      process.env.CI === 'true'
        ? ' CI must build it before the tests (bash scripts/k6.sh build in .ci/run), with Go and the Go module proxy.'
        : '';
    throw new K6Error(
      'K6_NOT_BUILT',
      `could not build k6 with scripts/k6.sh build:${ci}\n${said.join('\n').trim() || String(cause)}`,
      { cause },
    );
  }
}

/** One metric of k6's `--summary-export` JSON; which fields it has depends on its type. */
export interface K6MetricSummary {
  /** Counters: the total. */
  count?: number;
  /** Counters: per second; rates: the share of non-zero samples. */
  rate?: number;
  /** Checks and rates: samples that passed / failed. */
  passes?: number;
  fails?: number;
  /** Gauges and rates: the value. */
  value?: number;
  /** Trends: `avg`, `min`, `med`, `max`, `p(90)`, `p(95)`. */
  [stat: string]: unknown;
}

export interface K6Summary {
  metrics: Record<string, K6MetricSummary>;
}

export interface K6Run {
  /** 0 passed, 99 a threshold failed (K6_THRESHOLDS_FAILED), others: k6's errors. */
  exitCode: number;
  stdout: string;
  stderr: string;
  summary: K6Summary;
}

export interface K6RunOptions {
  /** A file of scenarios/k6 ('http-admin.ts') or a path. */
  script: string;
  /** Passed to the script as `-e NAME=value` (its __ENV). */
  env?: Readonly<Record<string, string>>;
  /**
   * Kill k6 after this long, in ms. Default 120_000. Scripts bound their own load; this only
   * stops a hung run.
   */
  timeoutMs?: number;
}

/**
 * Runs `k6 run` on a script, quietly, with nothing from the process environment but PATH and HOME
 * (a stray K6_* variable must not change the run) and no usage reporting.
 * @throws K6Error K6_NOT_BUILT, K6_RUN_FAILED (not started, or killed at `timeoutMs`),
 *   K6_NO_SUMMARY (k6 exited before writing it; the error has its output).
 */
export async function runK6(options: K6RunOptions): Promise<K6Run> {
  const binary = await k6Binary();
  const script = options.script.includes('/') ? options.script : join(K6_SCRIPTS_DIR, options.script);
  const folder = mkdtempSync(join(tmpdir(), 'phasebench-k6-'));
  const summaryFile = join(folder, 'summary.json');
  const timeoutMs = options.timeoutMs ?? 120_000;
  const args = ['run', '--quiet', '--no-color', '--summary-export', summaryFile];
  for (const [name, value] of Object.entries(options.env ?? {})) args.push('-e', `${name}=${value}`);
  args.push(script);
  try {
    const { exitCode, stdout, stderr } = await spawnCollecting(binary, args, timeoutMs);
    let summary: K6Summary;
    try {
      summary = JSON.parse(readFileSync(summaryFile, 'utf8')) as K6Summary;
    } catch (cause) {
      throw new K6Error(
        'K6_NO_SUMMARY',
        `k6 exited with ${exitCode} without a summary for ${script}:\n${tail(stderr || stdout)}`,
        { cause },
      );
    }
    return { exitCode, stdout, stderr, summary };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}

function spawnCollecting(
  binary: string,
  args: readonly string[],
  timeoutMs: number,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? tmpdir(),
        K6_NO_USAGE_REPORT: 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (cause) => {
      clearTimeout(timer);
      reject(new K6Error('K6_RUN_FAILED', `could not start ${binary}: ${cause.message}`, { cause }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === null) {
        reject(
          new K6Error(
            'K6_RUN_FAILED',
            `k6 was stopped by ${signal}${signal === 'SIGKILL' ? ` after ${timeoutMs} ms` : ''}:\n${tail(stderr)}`,
          ),
        );
        return;
      }
      resolve({ exitCode: code, stdout, stderr });
    });
  });
}

/** The last lines of k6's output: where its reason is. */
function tail(text: string, lines = 30): string {
  return text.trim().split('\n').slice(-lines).join('\n');
}

/** A counter's total in a summary; 0 when the metric recorded nothing. */
export function counterTotal(summary: K6Summary, metric: string): number {
  return summary.metrics[metric]?.count ?? 0;
}
