/**
 * The report from a real small run: chart options against the summary they draw, the headline
 * against `verdict`, the files `writeReport` leaves, and the compare Markdown linking the PNG.
 * The browser side (what a person sees) is browser.test.ts.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EChartsOption, LineSeriesOption } from 'echarts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatMs } from '../cli/output.ts';
import { reportCommand } from '../cli/report.ts';
import { runCommand } from '../cli/run.ts';
import { SLO_LABELS, sweepCommand } from '../cli/sweep.ts';
import { compareSummaries } from '../compare/compare.ts';
import { loadSummary } from '../compare/load.ts';
import { writeReports } from '../compare/report.ts';
import { decodeHistogram } from '../compare/stats.ts';
import { parseThresholds } from '../compare/thresholds.ts';
import { checkSlos, meetsSlos } from '../metrics/slo.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';
import { writeJson } from '../results/store.ts';
import { runScenario } from '../run/scenario-run.ts';
import { runSweep, type SweepResult, writeSweep } from '../sweep/sweep.ts';
import {
  type ChartPlan,
  convergedShareOption,
  deliveryPercentilesOption,
  frontierOption,
  hoursScale,
  NINES_MAX,
  niceScale,
  nines,
  percentileCurve,
  planStyles,
  queueDepthOption,
  strandedOption,
} from './charts.ts';
import { KEY_CHART_FILE, REPORT_FILE } from './files.ts';
import { reportScenario } from './fixtures.ts';
import { CHART_NAMES, chartPlans, KEY_CHART_SIZE, renderReportHtml } from './html.ts';
import { renderChartSvg } from './render.ts';
import { ReportError } from './source.ts';
import { FINISHES_FIRST, GENTLEST, parseVerdict, RECOMMENDED, runView, sweepView } from './view.ts';
import { writeReport } from './write.ts';

const HOUR_MS = 3_600_000;
const scenario = reportScenario();
const root = mkdtempSync(join(tmpdir(), 'phasebench-report-'));
const runDir = join(root, 'run');
const sweepDir = join(root, 'sweep');
let summary: RunSummary;
let sweep: SweepResult;
let plans: ChartPlan[];

beforeAll(async () => {
  ({ summary } = await runScenario(scenario, { outDir: runDir }));
  sweep = await runSweep(scenario);
  await writeSweep(sweepDir, sweep);
  await writeJson(sweepDir, 'scenario.json', scenario);
  plans = chartPlans(runView(summary, null));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

type Series = Record<string, unknown> & { name?: string; type?: string };

function seriesOf(option: EChartsOption): Series[] {
  return option.series as Series[];
}

function planSeries(option: EChartsOption): Series[] {
  const names = new Set(plans.map((p) => p.name));
  return seriesOf(option).filter((s) => names.has(String(s.name)));
}

/** Data points of a line series, whether plain [x, y] or `{ value: [x, y] }`. */
function points(series: Series): number[][] {
  return (series.data as LineSeriesOption['data'] & unknown[]).map((d) =>
    Array.isArray(d) ? (d as number[]) : ((d as { value: number[] }).value as number[]),
  );
}

function legendText(option: EChartsOption): string[] {
  const legends = option.legend as Array<{ data: string[]; formatter: (name: string) => string }>;
  return legends.flatMap((l) => l.data.map((name) => l.formatter(name)));
}

function metricsOf(plan: string): PlanMetrics {
  return summary.plans[plan]!.metrics;
}

describe('the fixture run', () => {
  it('has what the report must show: several phases, stranded users and an SRP conflict', () => {
    expect(Object.keys(summary.plans)).toEqual(['bigBang', 'phased-30', 'srp-reuse']);
    expect(metricsOf('phased-30').phases.length).toBeGreaterThan(2);
    expect(metricsOf('srp-reuse').srpConflicts.length).toBeGreaterThan(0);
    expect(Object.keys(metricsOf('srp-reuse').stranded.byReason).length).toBeGreaterThan(1);
  });
});

describe('headline', () => {
  it('names the plans `verdict` names: least makespan, least peak queue, fastest meeting every SLO', () => {
    const view = runView(summary, null);
    const entries = Object.entries(summary.plans).map(([plan, p]) => ({ plan, m: p.metrics }));
    const byMakespan = [...entries].sort((a, b) => a.m.makespanMs - b.m.makespanMs);
    const byQueue = [...entries].sort((a, b) => a.m.peakQueue.domain - b.m.peakQueue.domain);
    const meeting = byMakespan.filter((e) => meetsSlos(summary.slos, e.m));
    const fact = (label: string) => view.facts.find((f) => f.label === label);
    expect(fact(FINISHES_FIRST)?.plan).toBe(byMakespan[0]!.plan);
    expect(fact(GENTLEST)?.plan).toBe(byQueue[0]!.plan);
    expect(fact(RECOMMENDED)?.plan).toBe(meeting[0]?.plan ?? null);
    expect(view.recommended).toBe(meeting[0]?.plan ?? null);
  });

  it('says what the faster plan would cost: the SLOs it misses', () => {
    const view = runView(summary, null);
    const fastest = view.facts.find((f) => f.label === FINISHES_FIRST)!.plan!;
    expect(fastest).not.toBe(view.recommended);
    const missed = checkSlos(summary.slos, metricsOf(fastest)).filter((c) => !c.met);
    expect(missed.length).toBeGreaterThan(0);
    const sooner = metricsOf(view.recommended!).makespanMs - metricsOf(fastest).makespanMs;
    expect(view.tradeoffs[0]).toBe(
      `${fastest} finishes ${formatMs(sooner)} sooner but misses ${missed.map((c) => SLO_LABELS[c.name]).join(', ')}.`,
    );
  });

  it('reads the longest plan name an answer starts with, and a recommendation without a plan', () => {
    const facts = parseVerdict(
      'Finishes first: phased-10 (1h 00m).\nGentlest on the queue: phased (peak 5 jobs, p95 delivery 1m 00s).\nNo plan meets every SLO.',
      ['phased', 'phased-10'],
    );
    expect(facts).toEqual([
      { label: FINISHES_FIRST, plan: 'phased-10', detail: '1h 00m' },
      { label: GENTLEST, plan: 'phased', detail: 'peak 5 jobs, p95 delivery 1m 00s' },
      { label: RECOMMENDED, plan: null, detail: 'No plan meets every SLO.' },
    ]);
  });

  it("for a sweep, recommends the sweep's choice with its size, interval and gate", () => {
    expect(sweep.recommendation.kind).toBe('meetsSlos');
    const view = sweepView(sweep, null);
    const recommended = view.facts.find((f) => f.label === RECOMMENDED)!;
    const entry = sweep.entries.find((e) => e.name === recommended.plan)!;
    expect(sweep.recommendation.kind === 'meetsSlos' && sweep.recommendation.entry).toBe(entry.name);
    expect(entry.plan.kind).toBe('phased');
    if (entry.plan.kind !== 'phased') return;
    expect(recommended.setting?.size).toBe(entry.plan.size);
    expect(entry.name).toBe(
      `${recommended.setting?.size}/${recommended.setting?.interval}/${recommended.setting?.gate}`,
    );
    // The cards show the recommendation, the extremes and every reference plan.
    const shown = view.plans.map((p) => p.name);
    expect(shown[0]).toBe(entry.name);
    for (const ref of sweep.entries.filter((e) => e.kind === 'reference')) expect(shown).toContain(ref.name);
  });
});

describe('queue depth chart (the key chart)', () => {
  it('draws one line per plan from its timeline, up to a window that holds every makespan', () => {
    const option = queueDepthOption(plans, summary.slos);
    const lines = planSeries(option);
    expect(lines.map((s) => s.name)).toEqual(Object.keys(summary.plans));
    const maxHours = (option.xAxis as { max: number }).max;
    for (const line of lines) {
      const m = metricsOf(String(line.name));
      expect(maxHours * HOUR_MS).toBeGreaterThanOrEqual(m.makespanMs);
      const drawn = points(line);
      expect(drawn.length).toBeGreaterThan(1);
      for (const [i, [hours, queue]] of drawn.entries()) {
        expect(hours).toBeCloseTo(m.timeline.minute[i]! / 60, 3);
        expect(queue).toBe(m.timeline.queue[i]);
      }
      const hoursDrawn = drawn.map(([h]) => h!);
      expect(hoursDrawn).toEqual([...hoursDrawn].sort((a, b) => a - b));
    }
  });

  it("marks every phase start of every plan, at the phase's start", () => {
    for (const line of planSeries(queueDepthOption(plans, summary.slos))) {
      const marks = (line.markLine as { data: Array<{ xAxis: number }> }).data.map((d) => d.xAxis);
      const starts = metricsOf(String(line.name)).phases.map((p) => p.startedAt / HOUR_MS);
      expect(marks).toHaveLength(starts.length);
      for (const [i, x] of marks.entries()) expect(x).toBeCloseTo(starts[i]!, 3);
    }
  });

  it("draws the peak-queue SLO and gives every plan's peak in the legend", () => {
    const option = queueDepthOption(plans, summary.slos);
    const slo = seriesOf(option).find((s) => s.name === 'SLO')!;
    expect((slo.markLine as { data: unknown[] }).data).toEqual([{ yAxis: summary.slos.peakQueue }]);
    const legend = legendText(option);
    for (const p of plans) expect(legend).toContain(`${p.name} (peak ${p.metrics.peakQueue.domain})`);
  });

  it('gives each plan its own colour, dash and symbol, and the recommended plan a heavier line', () => {
    const styles = planStyles(['a', 'b', 'c'], 'b');
    const [a, b, c] = ['a', 'b', 'c'].map((n) => styles.get(n)!);
    expect(new Set([a!.color, b!.color, c!.color]).size).toBe(3);
    expect(new Set([a!.dash, b!.dash, c!.dash].map(String)).size).toBe(3);
    expect(new Set([a!.symbol, b!.symbol, c!.symbol]).size).toBe(3);
    expect(b!.width).toBeGreaterThan(a!.width);
  });

  it('ends the queue axis on a round number above every peak and the SLO', () => {
    for (const value of [5.2, 87, 116.5, 994, 2_600, 10_292]) {
      const { max, interval } = niceScale(value);
      expect(max, `${value}`).toBeGreaterThanOrEqual(value);
      expect(max / interval, `${value}`).toBeLessThanOrEqual(6);
      expect(Number.isInteger(max / interval), `${value}`).toBe(true);
      const mantissa = interval / 10 ** Math.floor(Math.log10(interval));
      expect([1, 2, 2.5, 5], `${value}`).toContainEqual(Number(mantissa.toFixed(6)));
    }
  });

  it('picks round hour scales with at most eight steps', () => {
    for (const ms of [
      60_000,
      20 * 60_000,
      68 * 60_000,
      4.8 * HOUR_MS,
      19.3 * HOUR_MS,
      39 * HOUR_MS,
      72 * HOUR_MS,
    ]) {
      const { max, interval } = hoursScale(ms);
      expect(max * HOUR_MS, `${ms}`).toBeGreaterThanOrEqual(ms);
      expect(max / interval, `${ms}`).toBeLessThanOrEqual(8);
      expect(Number.isInteger(max / interval), `${ms}`).toBe(true);
    }
  });
});

describe('converged share chart', () => {
  it('draws each plan’s converged share in percent and states the final share in the legend', () => {
    const option = convergedShareOption(plans);
    for (const line of planSeries(option)) {
      const m = metricsOf(String(line.name));
      for (const [i, [, share]] of points(line).entries()) {
        expect(share).toBeCloseTo(m.timeline.convergedShare[i]! * 100, 1);
        expect(share).toBeGreaterThanOrEqual(0);
        expect(share).toBeLessThanOrEqual(100);
      }
    }
    expect(legendText(option)).toContain(
      `bigBang (${(metricsOf('bigBang').convergedShare * 100).toFixed(1)}%)`,
    );
  });
});

describe('push delivery percentile curve', () => {
  it('rises with the percentile, from p0 to p99.9, and passes through the p95 in the summary', () => {
    for (const plan of Object.keys(summary.plans)) {
      const stats = metricsOf(plan).pushDelivery;
      const curve = percentileCurve(stats.histogram);
      expect(curve[0]![0]).toBe(0);
      expect(curve.at(-1)![0]).toBeCloseTo(NINES_MAX, 6);
      for (let i = 1; i < curve.length; i++) expect(curve[i]![1]).toBeGreaterThanOrEqual(curve[i - 1]![1]);
      const x95 = nines(95);
      const below = curve.filter(([x]) => x <= x95).at(-1)!;
      const above = curve.find(([x]) => x >= x95)!;
      expect(below[1]).toBeLessThanOrEqual(stats.p95Ms);
      expect(above[1]).toBeGreaterThanOrEqual(stats.p95Ms);
      expect(curve.at(-1)![1]).toBeLessThanOrEqual(decodeHistogram(stats.histogram).maxValue);
    }
  });

  it('is empty for a plan that delivered nothing, and the chart still has an axis and the SLO', () => {
    expect(percentileCurve('')).toEqual([]);
    const silent = {
      ...plans[0]!,
      metrics: {
        ...plans[0]!.metrics,
        pushDelivery: { ...plans[0]!.metrics.pushDelivery, count: 0, histogram: '' },
      },
    };
    const option = deliveryPercentilesOption([silent], summary.slos);
    const y = option.yAxis as { min: number; max: number };
    expect(y.max).toBeGreaterThan(y.min);
    expect(y.max).toBeGreaterThanOrEqual(summary.slos.p95Delivery!);
    expect(legendText(option)).toEqual([`${silent.name} (none delivered)`]);
  });

  it('draws one curve per plan and the p95 SLO', () => {
    const option = deliveryPercentilesOption(plans, summary.slos);
    expect(planSeries(option)).toHaveLength(plans.length);
    const slo = seriesOf(option).find((s) => s.name === 'SLO')!;
    expect((slo.markLine as { data: unknown[] }).data).toEqual([{ yAxis: summary.slos.p95Delivery }]);
  });
});

describe('stranded chart', () => {
  it('stacks one bar per plan by reason; the stacks add up to each plan’s stranded total', () => {
    const option = strandedOption(plans);
    const bars = seriesOf(option);
    const reasons = [...new Set(plans.flatMap((p) => Object.keys(p.metrics.stranded.byReason)))].sort();
    expect(bars.map((b) => b.name)).toEqual(reasons);
    expect((option.yAxis as { data: string[] }).data).toEqual(plans.map((p) => p.name));
    plans.forEach((p, i) => {
      const stacked = bars.reduce((sum, b) => sum + (b.data as number[])[i]!, 0);
      expect(stacked, p.name).toBe(p.metrics.stranded.total);
    });
  });
});

describe('sweep frontier chart', () => {
  it('places every entry once: recommended, frontier, dominated or reference, at (makespan, p95)', () => {
    const option = frontierOption(sweep);
    const groups = new Map(
      seriesOf(option)
        .filter((s) => s.type === 'scatter' && s.name !== 'SLO')
        .map((s) => [String(s.name), (s.data as Array<[number, number, number, string]>) ?? []]),
    );
    const all = [...groups.values()].flat();
    expect(all.map((d) => d[3]).sort()).toEqual(sweep.entries.map((e) => e.name).sort());
    const recommended = sweep.recommendation.kind === 'meetsSlos' ? sweep.recommendation.entry : null;
    expect(groups.get('recommended')!.map((d) => d[3])).toEqual([recommended]);
    for (const [x, y, peak, name] of all) {
      const e = sweep.entries.find((entry) => entry.name === name)!;
      expect(x).toBeCloseTo(e.metrics.makespanMs / HOUR_MS, 3);
      expect(y).toBeCloseTo(e.metrics.pushDelivery.p95Ms / 60_000, 2);
      expect(peak).toBe(e.metrics.peakQueue.domain);
    }
    const onFrontier = groups.get('on the Pareto frontier')!.map((d) => d[3]);
    for (const name of onFrontier) expect(sweep.frontier).toContain(name);
    for (const name of groups.get('dominated (not on the frontier)')!.map((d) => d[3]))
      expect(sweep.frontier).not.toContain(name);
  });
});

describe('rendering', () => {
  it('gives each chart an SVG with a title for screen readers and ids of its own, the same every time', () => {
    const option = queueDepthOption(plans, summary.slos);
    const first = renderChartSvg(option, KEY_CHART_SIZE, 'queue-depth', 'Queue <depth>');
    const again = renderChartSvg(option, KEY_CHART_SIZE, 'queue-depth', 'Queue <depth>');
    expect(again).toBe(first);
    expect(first).toMatch(/^<svg role="img" aria-label="Queue &lt;depth&gt;" /);
    expect(first).toContain('<title>Queue &lt;depth&gt;</title>');
    expect(first).not.toMatch(/\bzr\d+-/);
    expect(first.match(/<path /g)?.length ?? 0).toBeGreaterThan(20);
  });

  it('puts every chart of a run in the page under its data-chart name, and a sweep adds the frontier', () => {
    const run = renderReportHtml(runView(summary, 'desc'));
    const charts = (html: string) => [...html.matchAll(/data-chart="([^"]+)"/g)].map((m) => m[1]);
    const runCharts = [
      CHART_NAMES.queueDepth,
      CHART_NAMES.convergedShare,
      CHART_NAMES.deliveryPercentiles,
      CHART_NAMES.stranded,
    ];
    expect(charts(run)).toEqual(runCharts);
    expect(charts(renderReportHtml(sweepView(sweep, null)))).toEqual([...runCharts, CHART_NAMES.frontier]);
  });
});

describe('writeReport', () => {
  it('writes a self-contained report.html: no script, nothing fetched, every assumption listed', async () => {
    const files = await writeReport(runDir);
    expect(files.html).toBe(join(runDir, REPORT_FILE));
    const html = readFileSync(files.html, 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link /i);
    expect(html).not.toMatch(/@import|url\((?!#)/);
    // Every reference stays inside the page (SVG patterns) or is inline data.
    for (const [, value] of html.matchAll(/\b(?:src|href)="([^"]*)"/g)) expect(value).toMatch(/^(#|data:)/);
    expect(html).toContain(scenario.description);
    for (const a of summary.assumptions) expect(html).toContain(`<code>${a.key}</code>`);
    expect(html).toContain('NEW2'); // the SRP conflict's instance, in the conflicts table
  });

  it('writes key-chart.png, twice the key chart’s size', async () => {
    const files = await writeReport(runDir);
    const png = readFileSync(files.png);
    expect(files.png).toBe(join(runDir, KEY_CHART_FILE));
    expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(png.readUInt32BE(16)).toBe(KEY_CHART_SIZE.width * 2);
    expect(png.readUInt32BE(20)).toBe(KEY_CHART_SIZE.height * 2);
  });

  it('draws a sweep folder from sweep.json, with the scenario description from scenario.json', async () => {
    const files = await writeReport(sweepDir);
    const html = readFileSync(files.html, 'utf8');
    expect(html).toContain('data-chart="frontier"');
    expect(html).toContain(scenario.description);
    expect(existsSync(files.png)).toBe(true);
  });

  it('refuses a folder with neither summary.json nor sweep.json: an input error', async () => {
    await expect(writeReport(join(root, 'nowhere'))).rejects.toBeInstanceOf(ReportError);
    await expect(reportCommand().exitOverride().parseAsync([root], { from: 'user' })).rejects.toMatchObject({
      code: 'REPORT_NO_RESULTS',
      exitCode: 2,
    });
  });
});

describe('the commands write the report', () => {
  const file = join(root, 'report-tiny.ts');

  beforeAll(() => {
    // The resolved scenario is valid input too (durations in ms, defaults spelt out).
    writeFileSync(file, `export default ${JSON.stringify(scenario)};\n`);
  });

  async function quietly(run: () => Promise<unknown>): Promise<string> {
    const written: string[] = [];
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      written.push(String(chunk));
      return true;
    });
    const log = vi.spyOn(console, 'log').mockImplementation((...args) => written.push(args.join(' ')));
    try {
      await run();
    } finally {
      out.mockRestore();
      log.mockRestore();
    }
    return written.join('\n');
  }

  it('run writes report.html and key-chart.png into its results folder', async () => {
    const out = join(root, 'cli-run');
    const printed = await quietly(() =>
      runCommand().exitOverride().parseAsync([file, '--out', out, '--no-progress'], { from: 'user' }),
    );
    expect(existsSync(join(out, REPORT_FILE))).toBe(true);
    expect(existsSync(join(out, KEY_CHART_FILE))).toBe(true);
    expect(printed).toContain(join(out, REPORT_FILE));
  });

  it('report redraws an existing results folder and says where', async () => {
    rmSync(join(runDir, REPORT_FILE), { force: true });
    const printed = await quietly(() =>
      reportCommand().exitOverride().parseAsync([runDir], { from: 'user' }),
    );
    expect(existsSync(join(runDir, REPORT_FILE))).toBe(true);
    expect(printed).toContain(`Report: ${join(runDir, REPORT_FILE)}`);
  });

  it('sweep writes scenario.json, report.html and key-chart.png beside sweep.json', async () => {
    const out = join(root, 'cli-sweep');
    await quietly(() =>
      sweepCommand()
        .exitOverride()
        .parseAsync([file, '--sizes', '60', '--intervals', '10m', '--out', out, '--no-progress'], {
          from: 'user',
        }),
    );
    for (const f of ['sweep.json', 'scenario.json', REPORT_FILE, KEY_CHART_FILE]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
  });
});

describe('compare links the key chart', () => {
  it('puts the candidate’s key-chart.png into the Markdown summary when the candidate folder has one', async () => {
    await writeReport(runDir);
    const loaded = await loadSummary(runDir, 'candidate');
    const result = compareSummaries(loaded, loaded, parseThresholds(['makespan < +10%']));
    const paths = await writeReports(result, { outDir: join(root, 'compare') });
    const markdown = readFileSync(paths.markdown, 'utf8');
    expect(markdown).toContain(`](../run/${KEY_CHART_FILE})`);
  });

  it('leaves the image out when the candidate folder has no key chart', async () => {
    const bare = join(root, 'bare');
    await runScenario(scenario, { outDir: bare, plans: ['bigBang'] });
    const loaded = await loadSummary(bare, 'candidate');
    const paths = await writeReports(compareSummaries(loaded, loaded, parseThresholds(['makespan < +10%'])), {
      outDir: join(root, 'compare-bare'),
    });
    expect(readFileSync(paths.markdown, 'utf8')).not.toContain(KEY_CHART_FILE);
  });
});
