/**
 * `report.html` and `key-chart.png` into a run's or a sweep's results folder. The only part of
 * the report that touches the disk.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ResultsError } from '../errors.ts';
import { KEY_CHART_FILE, REPORT_FILE } from './files.ts';
import { keyChartSvg, renderReportHtml } from './html.ts';
import { renderPng } from './render.ts';
import { loadReportSource } from './source.ts';
import { buildView } from './view.ts';

export interface ReportFiles {
  html: string;
  png: string;
}

/** Reads summary.json or sweep.json in `dir` and writes the report beside it; returns the paths. */
export async function writeReport(dir: string): Promise<ReportFiles> {
  const source = await loadReportSource(dir);
  const view = buildView(source);
  const files = { html: join(source.dir, REPORT_FILE), png: join(source.dir, KEY_CHART_FILE) };
  await write(files.html, renderReportHtml(view));
  await write(files.png, renderPng(keyChartSvg(view)));
  return files;
}

async function write(path: string, content: string | Buffer): Promise<void> {
  try {
    await writeFile(path, content);
  } catch (cause) {
    throw new ResultsError(`cannot write ${path}: ${(cause as Error).message}`, { target: path, cause });
  }
}
