/**
 * The results folder of a run: everything needed to rebuild it lives under results/<run-id>/.
 *   scenario.json         the resolved scenario (defaults filled in, durations in ms)
 *   events/<plan>.ndjson.gz  each plan's event log: the source of truth
 *   summary.json          the projections of those logs (RunSummary)
 *   comparison.md         the headline comparison in Markdown
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { ResultsError } from '../errors.ts';
import type { RunSummary } from '../metrics/summary.ts';
import type { Scenario } from '../scenario/schema.ts';

export const SUMMARY_FILE = 'summary.json';

export function eventsPath(dir: string, plan: string): string {
  return join(dir, 'events', `${plan}.ndjson.gz`);
}

/** results/<scenario>-s<seed>-<UTC timestamp>: sortable, and never overwrites an earlier run. */
export function defaultRunDir(scenario: Scenario, startedAt: Date, root = 'results'): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
  return resolve(root, `${scenario.name}-s${scenario.seed}-${stamp}`);
}

export async function prepareRunDir(dir: string): Promise<void> {
  try {
    await mkdir(join(dir, 'events'), { recursive: true });
  } catch (cause) {
    throw new ResultsError(
      `cannot create the results folder ${dir}: ${(cause as Error).message}. Choose another with --out.`,
      { target: dir, cause },
    );
  }
}

export async function writeJson(dir: string, file: string, value: unknown): Promise<void> {
  const path = join(dir, file);
  try {
    await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
  } catch (cause) {
    throw new ResultsError(`cannot write ${path}: ${(cause as Error).message}`, { target: path, cause });
  }
}

export async function writeText(dir: string, file: string, text: string): Promise<void> {
  const path = join(dir, file);
  try {
    await writeFile(path, text);
  } catch (cause) {
    throw new ResultsError(`cannot write ${path}: ${(cause as Error).message}`, { target: path, cause });
  }
}

/** Reads summary.json from a results folder, or a summary file given directly. */
export async function readSummary(pathOrDir: string): Promise<RunSummary> {
  const path = pathOrDir.endsWith('.json') ? pathOrDir : join(pathOrDir, SUMMARY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new ResultsError(
      `cannot read ${path}: ${(cause as Error).message}. Is it a phasebench results folder?`,
      {
        target: path,
        cause,
      },
    );
  }
  const summary = JSON.parse(text) as RunSummary;
  if (summary.schema !== 'phasebench.summary/1') {
    throw new ResultsError(`${path} is not a phasebench summary (schema ${String(summary.schema)})`, {
      target: path,
    });
  }
  return summary;
}
