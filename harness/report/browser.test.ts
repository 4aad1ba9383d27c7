/**
 * The report as a person meets it: report.html opened from disk in headless Chromium with
 * JavaScript off. Every chart must have drawn marks of real size, nothing may be fetched, the
 * console must stay clean and the headline must name the plan that finishes first. A full-page
 * screenshot of each lands in results/report-screenshots/ for people to look at.
 *
 * Needs Chromium at /usr/bin/chromium (Debian's package) or at PHASEBENCH_CHROMIUM. Without it
 * this suite fails, it never skips: in CI (CI=true) the pipeline must install it.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunSummary } from '../metrics/summary.ts';
import { writeJson } from '../results/store.ts';
import { runScenario } from '../run/scenario-run.ts';
import { loadScenario } from '../scenario/load.ts';
import { runSweep, type SweepResult, writeSweep } from '../sweep/sweep.ts';
import { REPORT_FILE } from './files.ts';
import { reportScenario } from './fixtures.ts';
import { CHART_NAMES } from './html.ts';
import { writeReport } from './write.ts';

const CHROMIUM = process.env.PHASEBENCH_CHROMIUM ?? '/usr/bin/chromium';
const SCREENSHOTS = resolve(import.meta.dirname, '../../results/report-screenshots');
/** Shapes a chart draws at least (axes, grid and legend alone draw about this many). */
const MIN_SHAPES = 20;
/**
 * Shapes that stand for data (a symbol on a line, a bar, a bubble) at least. ECharts' server-side
 * renderer tags those `ecmeta_ssr_type="chart"`; a chart without data has none.
 */
const MIN_DATA_MARKS = 3;

function missingChromium(): Error {
  return new Error(
    process.env.CI === 'true'
      ? `Chromium is not installed at ${CHROMIUM}, so the HTML report cannot be checked in a browser. ` +
          'The CI job must install it before the tests: apt-get install -y chromium'
      : `Chromium is not installed at ${CHROMIUM}; the report's browser test needs it. ` +
          'Install it with `sudo apt-get install chromium`, or point PHASEBENCH_CHROMIUM at a Chromium binary.',
  );
}

const root = mkdtempSync(join(tmpdir(), 'phasebench-report-browser-'));

/**
 * The work behind a test, done once on first use. Tests await it rather than relying on a
 * beforeAll hook, so a missing Chromium fails every test with its message instead of skipping them.
 */
function once<T>(work: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => {
    result ??= work();
    return result;
  };
}

let launched: Browser | undefined;
const browser = once(async () => {
  if (!existsSync(CHROMIUM)) throw missingChromium();
  mkdirSync(SCREENSHOTS, { recursive: true });
  launched = await chromium.launch({
    executablePath: CHROMIUM,
    // Without the background-networking flags Chromium phones home, which a closed machine refuses.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return launched;
});

afterAll(async () => {
  await launched?.close();
  rmSync(root, { recursive: true, force: true });
});

interface Opened {
  requests: string[];
  consoleErrors: string[];
  charts: Array<{
    name: string;
    shapes: number;
    dataMarks: number;
    /** Width × height of the first few data marks as drawn. */
    dataMarkAreas: number[];
    width: number;
    height: number;
  }>;
  headline: string;
  /** The headline's answers: 'Finishes first' → the plan it names. */
  answers: Record<string, string>;
  screenshot: string;
}

/** Opens a results folder's report.html with JavaScript off and collects what the tests check. */
async function openReport(dir: string, name: string): Promise<Opened> {
  const context = await (await browser()).newContext({
    javaScriptEnabled: false,
    viewport: { width: 1280, height: 900 },
  });
  const page = await context.newPage();
  const requests: string[] = [];
  const consoleErrors: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  try {
    await page.goto(pathToFileURL(join(dir, REPORT_FILE)).href, { waitUntil: 'load' });
    const charts = [];
    for (const figure of await page.locator('[data-chart]').all()) {
      const svg = figure.locator('svg').first();
      const box = await svg.boundingBox();
      const dataMarks = svg.locator('[ecmeta_ssr_type="chart"]');
      const dataMarkAreas = [];
      for (const mark of (await dataMarks.all()).slice(0, 5)) {
        const b = await mark.boundingBox();
        dataMarkAreas.push((b?.width ?? 0) * (b?.height ?? 0));
      }
      charts.push({
        name: (await figure.getAttribute('data-chart')) ?? '',
        shapes: await svg.locator('path, rect').count(),
        dataMarks: await dataMarks.count(),
        dataMarkAreas,
        width: box?.width ?? 0,
        height: box?.height ?? 0,
      });
    }
    const headline = (await page.locator('[data-headline]').textContent()) ?? '';
    const answers: Record<string, string> = {};
    for (const tile of await page.locator('[data-headline] article').all()) {
      const label = (await tile.locator('h2').textContent())?.trim() ?? '';
      const plan = tile.locator('.plan');
      answers[label] = (await plan.count()) > 0 ? ((await plan.textContent())?.trim() ?? '') : '';
    }
    const screenshot = join(SCREENSHOTS, `${name}.png`);
    await page.screenshot({ path: screenshot, fullPage: true });
    return { requests, consoleErrors, charts, headline, answers, screenshot };
  } finally {
    await context.close();
  }
}

function checkPage(opened: Opened, dir: string, charts: readonly string[]): void {
  expect(opened.requests, 'requests the page made').toEqual([pathToFileURL(join(dir, REPORT_FILE)).href]);
  expect(opened.consoleErrors, 'console errors').toEqual([]);
  expect(opened.charts.map((c) => c.name)).toEqual(charts);
  for (const chart of opened.charts) {
    expect(chart.shapes, `${chart.name}: shapes drawn`).toBeGreaterThanOrEqual(MIN_SHAPES);
    expect(chart.dataMarks, `${chart.name}: data marks`).toBeGreaterThanOrEqual(MIN_DATA_MARKS);
    // A zero stack (no users stranded for that reason) is a bar of no width; some marks must show.
    expect(
      chart.dataMarkAreas.filter((area) => area > 0).length,
      `${chart.name}: data marks of some size`,
    ).toBeGreaterThan(0);
    expect(chart.width, `${chart.name}: width`).toBeGreaterThan(200);
    expect(chart.height, `${chart.name}: height`).toBeGreaterThan(150);
  }
  expect(statSync(opened.screenshot).size).toBeGreaterThan(10_000);
}

function fastestPlan(summary: RunSummary): string {
  return Object.entries(summary.plans).sort(
    ([, a], [, b]) => a.metrics.makespanMs - b.metrics.makespanMs,
  )[0]![0];
}

const RUN_CHARTS = [
  CHART_NAMES.queueDepth,
  CHART_NAMES.convergedShare,
  CHART_NAMES.deliveryPercentiles,
  CHART_NAMES.stranded,
];

describe.each([
  { name: 'tiny-run', scenario: async () => reportScenario() },
  {
    name: 'flagship-run',
    scenario: () => loadScenario(resolve(import.meta.dirname, '../../scenarios/flagship.ts')),
  },
])('report of a run ($name) in Chromium', ({ name, scenario }) => {
  const dir = join(root, name);
  const opened = once(async () => {
    await browser(); // no Chromium: fail at once, before running anything
    await runScenario(await scenario(), { outDir: dir });
    await writeReport(dir);
    return openReport(dir, name);
  });

  it('draws every chart, fetches nothing and logs no error', async () => {
    checkPage(await opened(), dir, RUN_CHARTS);
  });

  it('names the plan that finishes first in the headline', async () => {
    const { answers, headline } = await opened();
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as RunSummary;
    expect(answers['Finishes first']).toBe(fastestPlan(summary));
    expect(headline).toContain(fastestPlan(summary));
  });
});

describe('report of a sweep in Chromium', () => {
  const dir = join(root, 'tiny-sweep');
  let sweep: SweepResult;
  const opened = once(async () => {
    await browser();
    const scenario = reportScenario();
    sweep = await runSweep(scenario);
    await writeSweep(dir, sweep);
    await writeJson(dir, 'scenario.json', scenario);
    await writeReport(dir);
    return openReport(dir, 'tiny-sweep');
  });

  it('draws every chart and the frontier, fetches nothing and logs no error', async () => {
    checkPage(await opened(), dir, [...RUN_CHARTS, CHART_NAMES.frontier]);
  });

  it('names the fastest run and the recommended setting in the headline', async () => {
    const { answers, headline } = await opened();
    const fastest = [...sweep.entries].sort((a, b) => a.metrics.makespanMs - b.metrics.makespanMs)[0]!;
    expect(answers['Finishes first']).toBe(fastest.name);
    expect(sweep.recommendation.kind).toBe('meetsSlos');
    if (sweep.recommendation.kind !== 'meetsSlos') return;
    const [size] = sweep.recommendation.entry.split('/');
    expect(answers.Recommended).toBe(sweep.recommendation.entry);
    expect(headline).toContain(`Phases of ${size} users`);
  });
});
