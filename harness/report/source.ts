/**
 * What a report is drawn from: a run's results folder (summary.json) or a sweep's folder
 * (sweep.json), plus the scenario.json beside either for the scenario's description. Only reads.
 */
import { access, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { PhasebenchError } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { readSummary, SUMMARY_FILE } from '../results/store.ts';
import { SWEEP_FILE, type SweepResult } from '../sweep/sweep.ts';

export type ReportSource =
  | { kind: 'run'; dir: string; summary: RunSummary; description: string | null }
  | { kind: 'sweep'; dir: string; sweep: SweepResult; description: string | null };

export type ReportErrorCode = 'REPORT_NO_RESULTS' | 'REPORT_UNREADABLE';

/** A folder the report cannot be drawn from. Input error: exit code 2. */
export class ReportError extends PhasebenchError {
  override name = 'ReportError';
  declare readonly code: ReportErrorCode;

  constructor(code: ReportErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { exitCode: 2, retriable: false, cause: options.cause });
  }
}

/** A sweep folder wins over a run folder: a sweep's report also shows its reference plans. */
export async function loadReportSource(folder: string): Promise<ReportSource> {
  const dir = resolve(folder);
  const description = await scenarioDescription(dir);
  if (await exists(join(dir, SWEEP_FILE))) {
    return { kind: 'sweep', dir, sweep: await readSweep(join(dir, SWEEP_FILE)), description };
  }
  if (await exists(join(dir, SUMMARY_FILE))) {
    return { kind: 'run', dir, summary: await readSummary(dir), description };
  }
  throw new ReportError(
    'REPORT_NO_RESULTS',
    `${dir} holds neither ${SUMMARY_FILE} nor ${SWEEP_FILE}: give the folder written by 'phasebench run' or 'phasebench sweep'.`,
  );
}

async function readSweep(path: string): Promise<SweepResult> {
  let parsed: { schema?: unknown };
  try {
    parsed = JSON.parse(await readFile(path, 'utf8')) as { schema?: unknown };
  } catch (cause) {
    throw new ReportError('REPORT_UNREADABLE', `cannot read ${path}: ${(cause as Error).message}`, { cause });
  }
  if (parsed.schema !== 'phasebench.sweep/1') {
    throw new ReportError(
      'REPORT_UNREADABLE',
      `${path} is not a phasebench sweep (schema ${String(parsed.schema)}, expected phasebench.sweep/1)`,
    );
  }
  return parsed as SweepResult;
}

/** The scenario's description from scenario.json, when the folder has one that says anything. */
async function scenarioDescription(dir: string): Promise<string | null> {
  try {
    const scenario = JSON.parse(await readFile(join(dir, 'scenario.json'), 'utf8')) as {
      description?: unknown;
    };
    return typeof scenario.description === 'string' && scenario.description !== ''
      ? scenario.description
      : null;
  } catch {
    // The description is a courtesy: a folder without scenario.json still gets its report.
    return null;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
