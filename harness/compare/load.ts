/**
 * Reads the two `summary.json` files compare is given. A path is the file itself or a results
 * folder holding one. Only the fields compare reads are checked, so a summary written by a newer
 * phasebench with extra fields still compares.
 */
import { readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { PhasebenchError } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { decodeHistogram } from './stats.ts';

export type SummaryRole = 'baseline' | 'candidate';

export interface LoadedSummary {
  /** The summary.json file read, absolute. */
  path: string;
  summary: RunSummary;
}

export type SummaryLoadErrorCode = 'SUMMARY_NOT_FOUND' | 'SUMMARY_NOT_JSON' | 'SUMMARY_INVALID';

/** A summary that cannot be found, parsed or used. Input error: exit code 2. */
export class SummaryLoadError extends PhasebenchError {
  override name = 'SummaryLoadError';
  declare readonly code: SummaryLoadErrorCode;

  constructor(
    code: SummaryLoadErrorCode,
    readonly role: SummaryRole,
    readonly path: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(code, `cannot use the ${role} summary ${path}: ${reason}`, {
      exitCode: 2,
      retriable: false,
      cause: options.cause,
    });
  }
}

const histogram = z.string().refine(isDecodableHistogram, {
  message: 'expected an hdr-histogram-js compressed base64 histogram',
});

const latencyStats = z.looseObject({
  count: z.number(),
  p50Ms: z.number(),
  p95Ms: z.number(),
  p99Ms: z.number(),
  maxMs: z.number(),
  histogram,
});

const phaseSummary = z.looseObject({
  phase: z.number(),
  convergenceMs: z.number().nullable(),
  peakQueue: z.number(),
  p95DeliveryMs: z.number().nullable(),
});

const planMetrics = z.looseObject({
  makespanMs: z.number(),
  convergenceMs: z.number(),
  convergedShare: z.number(),
  pushDelivery: latencyStats,
  userMigration: latencyStats,
  peakQueue: z.looseObject({ domain: z.number() }),
  stranded: z.looseObject({ total: z.number() }),
  srpConflicts: z.array(z.unknown()),
  userMinutesWithoutService: z.number(),
  phases: z.array(phaseSummary),
});

const runSummary = z.looseObject({
  schema: z.literal('phasebench.summary/1'),
  scenario: z.string(),
  seed: z.number(),
  plans: z.record(z.string(), z.looseObject({ metrics: planMetrics })),
});

const SUMMARY_FILE = 'summary.json';
const ISSUES_SHOWN = 3;

export async function loadSummary(path: string, role: SummaryRole): Promise<LoadedSummary> {
  const file = await summaryFile(resolve(path), role);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new SummaryLoadError('SUMMARY_NOT_FOUND', role, file, describeFsError(cause), { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new SummaryLoadError(
      'SUMMARY_NOT_JSON',
      role,
      file,
      `it is not JSON (${(cause as Error).message})`,
      {
        cause,
      },
    );
  }
  const parsed = runSummary.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues;
    const shown = issues
      .slice(0, ISSUES_SHOWN)
      .map((issue) => `${issue.path.length === 0 ? '(root)' : issue.path.join('.')}: ${issue.message}`);
    const more = issues.length > ISSUES_SHOWN ? `; and ${issues.length - ISSUES_SHOWN} more` : '';
    throw new SummaryLoadError(
      'SUMMARY_INVALID',
      role,
      file,
      // The issues are the whole story; the ZodError as a cause would only repeat them as JSON.
      `it is not a phasebench.summary/1 summary (${shown.join('; ')}${more})`,
    );
  }
  // The fields compare reads are checked above; the rest is the writer's contract (summary.ts).
  return { path: file, summary: parsed.data as unknown as RunSummary };
}

async function summaryFile(path: string, role: SummaryRole): Promise<string> {
  try {
    const stats = await stat(path);
    if (!stats.isDirectory()) return path;
  } catch (cause) {
    throw new SummaryLoadError('SUMMARY_NOT_FOUND', role, path, describeFsError(cause), { cause });
  }
  const file = join(path, SUMMARY_FILE);
  try {
    await stat(file);
  } catch (cause) {
    throw new SummaryLoadError('SUMMARY_NOT_FOUND', role, path, `the folder holds no ${SUMMARY_FILE}`, {
      cause,
    });
  }
  return file;
}

function describeFsError(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    return `no such file or folder (give a ${SUMMARY_FILE} or the results folder of a run)`;
  if (code === 'EACCES') return 'permission denied';
  return (cause as Error).message;
}

function isDecodableHistogram(encoded: string): boolean {
  try {
    decodeHistogram(encoded);
    return true;
  } catch {
    return false;
  }
}
