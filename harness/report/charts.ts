/**
 * The report's charts as ECharts options: pure functions of the metrics, rendered to SVG on the
 * server (render.ts), so the page needs no script. Every plan keeps one colour, one dash and one
 * symbol across charts, and lines carry direct labels, so nothing depends on colour alone.
 */
import type { EChartsOption, LineSeriesOption } from 'echarts';
import { formatMs } from '../cli/output.ts';
import { decodeHistogram } from '../compare/stats.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';
import type { SweepResult } from '../sweep/sweep.ts';

const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/**
 * Server-side rendering lays text out with Arial-like widths (there is no font to measure), so
 * Arial-metric fonts come first; wider fallbacks get room from generous gaps.
 */
export const FONT_FAMILY = "Arial, Helvetica, 'Liberation Sans', 'DejaVu Sans', sans-serif";
const INK = '#1f2328';
const MUTED = '#59636e';
const GRID = '#e6e8eb';
const SLO_COLOR = '#b42318';

/** Okabe–Ito: told apart by people with any common colour-vision deficiency. */
const PALETTE = ['#D55E00', '#0072B2', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];
const DASHES: Array<'solid' | 'dashed' | 'dotted' | number[]> = ['solid', 'dashed', [2, 3], [10, 4, 2, 4]];
const SYMBOLS = ['circle', 'rect', 'triangle', 'diamond', 'roundRect', 'pin', 'arrow'];

export interface PlanStyle {
  color: string;
  dash: 'solid' | 'dashed' | 'dotted' | number[];
  symbol: string;
  /** The recommended plan is drawn heavier. */
  width: number;
}

export interface ChartPlan {
  name: string;
  metrics: PlanMetrics;
  style: PlanStyle;
}

export function planStyles(names: readonly string[], recommended: string | null): Map<string, PlanStyle> {
  return new Map(
    names.map((name, i) => [
      name,
      {
        color: PALETTE[i % PALETTE.length]!,
        dash: DASHES[i % DASHES.length]!,
        symbol: SYMBOLS[i % SYMBOLS.length]!,
        width: name === recommended ? 3.5 : 2,
      },
    ]),
  );
}

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** The width legends are laid out for when a builder is not told its chart's width. */
const DEFAULT_WIDTH = 1160;

function base(title: string, subtitle: string): EChartsOption {
  return {
    animation: false,
    backgroundColor: '#ffffff',
    textStyle: { fontFamily: FONT_FAMILY, color: INK, fontSize: 12 },
    title: {
      text: title,
      subtext: subtitle,
      left: 12,
      top: 8,
      textStyle: { fontSize: 16, fontWeight: 'bold', color: INK },
      subtextStyle: { fontSize: 12, color: MUTED },
    },
  };
}

/**
 * Room a legend item takes, from its text, erring wide: server-side rendering has no font to
 * measure, and the browser may substitute a wider one.
 */
function legendItemWidth(text: string): number {
  return LEGEND_ICON_WIDTH + 5 + text.length * 7.4 + LEGEND_GAP;
}

const LEGEND_ICON_WIDTH = 30;
const LEGEND_GAP = 34;
const LEGEND_TOP = 58;
const LEGEND_ROW_HEIGHT = 24;

/**
 * Legends under the title, one per row, whose labels carry each plan's key figure, and the top
 * of the plot below them. Rows are packed here rather than left to ECharts, so the plot always
 * starts below the last row.
 */
function legendFor(
  plans: readonly ChartPlan[],
  width: number,
  label: (p: ChartPlan) => string,
): { legend: EChartsOption['legend']; gridTop: number } {
  const labels = new Map(plans.map((p) => [p.name, label(p)]));
  const rows: string[][] = [];
  let used = Number.POSITIVE_INFINITY;
  for (const [name, text] of labels) {
    const w = legendItemWidth(text);
    if (used + w > width - 24) {
      rows.push([]);
      used = 0;
    }
    rows.at(-1)!.push(name);
    used += w;
  }
  return {
    legend: rows.map((names, row) => ({
      top: LEGEND_TOP + row * LEGEND_ROW_HEIGHT,
      left: 12,
      itemWidth: LEGEND_ICON_WIDTH,
      itemHeight: 10,
      itemGap: LEGEND_GAP,
      textStyle: { fontSize: 13, color: INK },
      data: names,
      formatter: (name: string) => labels.get(name) ?? name,
    })),
    gridTop: LEGEND_TOP + Math.max(1, rows.length) * LEGEND_ROW_HEIGHT + 22,
  };
}

/** A round upper bound at or above `value` with about five steps of 1, 2, 2.5 or 5 × 10^k. */
export function niceScale(value: number): { max: number; interval: number } {
  const raw = value / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const interval = magnitude * ([1, 2, 2.5, 5, 10].find((step) => step * magnitude >= raw) ?? 10);
  return { max: Math.ceil(value / interval) * interval, interval };
}

/** A round scale in hours that shows everything up to `ms` with some air, at most about 8 ticks. */
export function hoursScale(ms: number): { max: number; interval: number } {
  const hours = Math.max((ms * 1.06) / HOUR_MS, 0.25);
  const interval = [0.25, 0.5, 1, 2, 3, 4, 6, 8, 12, 24, 48].find((step) => hours / step <= 8) ?? 96;
  return { max: Math.ceil(hours / interval) * interval, interval };
}

function hoursAxis(name: string, scale: { max: number; interval: number }): EChartsOption['xAxis'] {
  return {
    type: 'value',
    name,
    nameLocation: 'middle',
    nameGap: 30,
    nameTextStyle: { color: MUTED, fontSize: 12 },
    min: 0,
    max: scale.max,
    interval: scale.interval,
    axisLine: { lineStyle: { color: MUTED } },
    axisLabel: { formatter: (h: number) => `${h} h`, color: MUTED },
    splitLine: { lineStyle: { color: GRID } },
  };
}

/** Where each plan's first phase started (its rollout clock starts there). */
function planStart(m: PlanMetrics): number {
  return m.phases[0]?.startedAt ?? 0;
}

/** Timeline points up to `maxHours` (and one past it, so the line reaches the edge). */
function timelinePoints(m: PlanMetrics, values: readonly number[], maxHours: number, scale = 1): number[][] {
  const points: number[][] = [];
  for (const [i, minute] of m.timeline.minute.entries()) {
    const hours = (minute * MINUTE_MS) / HOUR_MS;
    points.push([round(hours, 4), round(values[i]! * scale, 2)]);
    if (hours > maxHours) break;
  }
  return points;
}

/** About a dozen symbols per line, shifted per plan so symbols of lines on top of each other alternate. */
function sparse(points: readonly number[][], plans: number, index: number): LineSeriesOption['data'] {
  const every = Math.max(4, Math.round(points.length / 12));
  const shift = Math.floor((every * index) / Math.max(1, plans));
  return withSparseSymbols(points, every, shift);
}

/**
 * Line points where every `every`-th one (and only those) carries the plan's symbol, so lines can
 * be told apart in grey print without a marker at every sample.
 */
export function withSparseSymbols(
  points: readonly number[][],
  every: number,
  shift = 0,
): LineSeriesOption['data'] {
  return points.map((value, i) => (i % every === shift % every ? value : { value, symbol: 'none' }));
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/**
 * The key chart: jobs waiting in the domain's Policy Service queues, per plan, with a dashed
 * vertical line where each of the plan's phases started and the peak labelled.
 */
export function queueDepthOption(
  plans: readonly ChartPlan[],
  slos: RunSummary['slos'],
  width = DEFAULT_WIDTH,
): EChartsOption {
  const end = Math.max(1, ...plans.map((p) => planStart(p.metrics) + p.metrics.makespanMs));
  const scale = hoursScale(end);
  const peakQueue = slos.peakQueue;
  const highest = Math.max(...plans.map((p) => p.metrics.peakQueue.domain));
  const { legend, gridTop } = legendFor(
    plans,
    width,
    (p) => `${p.name} (peak ${count.format(p.metrics.peakQueue.domain)})`,
  );
  const series: NonNullable<EChartsOption['series']> = plans.map((p, i) => ({
    type: 'line',
    name: p.name,
    data: sparse(timelinePoints(p.metrics, p.metrics.timeline.queue, scale.max), plans.length, i),
    showSymbol: true,
    symbol: p.style.symbol,
    symbolSize: 8,
    color: p.style.color,
    lineStyle: { color: p.style.color, width: p.style.width, type: p.style.dash },
    z: 3 + (p.style.width > 2 ? 1 : 0),
    markLine: {
      silent: true,
      // The plan's own symbol caps each of its phase lines, so markers say whose phase it is.
      symbol: ['none', p.style.symbol],
      symbolSize: 7,
      label: { show: false },
      lineStyle: { color: p.style.color, type: [4, 4], width: 1, opacity: 0.45 },
      data: p.metrics.phases.map((phase) => ({
        name: `${p.name} phase ${phase.phase}`,
        xAxis: round(phase.startedAt / HOUR_MS, 4),
      })),
    },
    markPoint: {
      symbol: p.style.symbol,
      symbolSize: 11,
      itemStyle: { color: p.style.color, borderColor: '#ffffff', borderWidth: 1.5 },
      // Only the highest peak is labelled on the plot (lower ones crowd near zero); the legend
      // gives every plan's peak.
      label: {
        show: p.metrics.peakQueue.domain === highest && highest > 0,
        position: 'right',
        distance: 8,
        color: INK,
        fontSize: 12,
        fontWeight: 'bold',
        formatter: `${p.name}: peak ${count.format(p.metrics.peakQueue.domain)}`,
        backgroundColor: 'rgba(255,255,255,0.85)',
        padding: [1, 4],
      },
      data: [{ type: 'max', name: 'peak' }],
    },
  }));
  if (peakQueue !== undefined) {
    series.push(sloLine('SLO', { yAxis: peakQueue }, `SLO: peak queue ≤ ${count.format(peakQueue)}`));
  }
  return {
    ...base(
      'Push queue depth over time',
      "Policy Service jobs waiting in the domain, per plan. Thin dashed verticals capped with the plan's symbol: a phase starts.",
    ),
    legend,
    grid: { left: 76, right: 40, top: gridTop, bottom: 56 },
    xAxis: hoursAxis('hours since the rollout started', scale),
    yAxis: {
      type: 'value',
      name: 'jobs queued (domain)',
      nameLocation: 'middle',
      nameGap: 56,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      min: 0,
      ...niceScale(Math.max(highest, peakQueue ?? 0, 5) * 1.04),
      axisLabel: { formatter: (v: number) => count.format(v), color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    series,
  };
}

/** A series holding nothing but one labelled limit line. */
function sloLine(
  name: string,
  at: { xAxis: number } | { yAxis: number },
  text: string,
  position: 'insideEndTop' | 'insideStartTop' = 'insideEndTop',
): LineSeriesOption {
  return {
    type: 'line',
    name,
    data: [],
    silent: true,
    markLine: {
      silent: true,
      symbol: 'none',
      lineStyle: { color: SLO_COLOR, type: 'dashed', width: 1.5 },
      label: {
        show: true,
        position,
        formatter: text,
        color: SLO_COLOR,
        fontSize: 12,
        fontWeight: 'bold',
      },
      data: [at],
    },
  };
}

/** Share of the plan's users whose devices have converged, over the whole tail. */
export function convergedShareOption(plans: readonly ChartPlan[], width = DEFAULT_WIDTH): EChartsOption {
  const end = Math.max(1, ...plans.map((p) => planStart(p.metrics) + p.metrics.convergenceMs));
  const scale = hoursScale(end);
  const { legend, gridTop } = legendFor(
    plans,
    width,
    (p) => `${p.name} (${(p.metrics.convergedShare * 100).toFixed(1)}%)`,
  );
  return {
    ...base(
      'Converged share over time',
      'Users whose device has its new policy, per plan (final share in brackets).',
    ),
    legend,
    grid: { left: 64, right: 28, top: gridTop, bottom: 56 },
    xAxis: hoursAxis('hours since the rollout started', scale),
    yAxis: {
      type: 'value',
      name: 'users converged (%)',
      nameLocation: 'middle',
      nameGap: 44,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      min: 0,
      max: 100,
      axisLabel: { formatter: '{value}%', color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    series: plans.map((p, i) => ({
      type: 'line',
      name: p.name,
      data: sparse(
        timelinePoints(p.metrics, p.metrics.timeline.convergedShare, scale.max, 100),
        plans.length,
        i,
      ),
      showSymbol: true,
      symbol: p.style.symbol,
      symbolSize: 8,
      color: p.style.color,
      lineStyle: { color: p.style.color, width: p.style.width, type: p.style.dash },
    })),
  };
}

/** Percentiles up to 99.9 on a 'nines' scale: x = -log10(1 - p/100), so 90 → 1, 99 → 2. */
export const NINES_MAX = 3;
const PERCENTILE_TICKS = [0, 50, 90, 95, 99, 99.9];

export function nines(percentile: number): number {
  return -Math.log10(1 - percentile / 100);
}

export function percentileOf(ninesValue: number): number {
  return 100 * (1 - 10 ** -ninesValue);
}

/** [nines, latency ms] along the distribution in an encoded histogram; empty when nothing was recorded. */
export function percentileCurve(encodedHistogram: string, steps = 120): Array<[number, number]> {
  const histogram = decodeHistogram(encodedHistogram);
  if (histogram.totalCount === 0) return [];
  const points: Array<[number, number]> = [];
  for (let i = 0; i <= steps; i++) {
    const x = (NINES_MAX * i) / steps;
    // A log axis has no zero; 1 ms is below anything a push takes.
    points.push([round(x, 4), Math.max(1, histogram.getValueAtPercentile(percentileOf(x)))]);
  }
  return points;
}

/** Round durations for a log latency axis: 100 ms, 1 s, 10 s, 1 min, 10 min, 1 h, 10 h, 1 d, 7 d, 30 d. */
const LATENCY_TICKS_MS = [
  100, 1_000, 10_000, 60_000, 600_000, 3_600_000, 36_000_000, 86_400_000, 604_800_000, 2_592_000_000,
];

function latencyTick(ms: number): string {
  if (ms < 1_000) return `${ms} ms`;
  if (ms < 60_000) return `${ms / 1_000} s`;
  if (ms < 3_600_000) return `${ms / 60_000} min`;
  if (ms < 86_400_000) return `${ms / 3_600_000} h`;
  return `${ms / 86_400_000} d`;
}

function percentileLabel(x: number): string {
  const p = percentileOf(x);
  return `p${Number(p.toFixed(p >= 99 ? 1 : 0))}`;
}

/** Push delivery latency (from the intended send time) at every percentile, per plan. */
export function deliveryPercentilesOption(
  plans: readonly ChartPlan[],
  slos: RunSummary['slos'],
  width = DEFAULT_WIDTH,
): EChartsOption {
  const { legend, gridTop } = legendFor(plans, width, (p) =>
    p.metrics.pushDelivery.count === 0
      ? `${p.name} (none delivered)`
      : `${p.name} (p95 ${formatMs(p.metrics.pushDelivery.p95Ms)})`,
  );
  const ticks = PERCENTILE_TICKS.map((p) => round(nines(p), 6));
  const curves = plans.map((p) => percentileCurve(p.metrics.pushDelivery.histogram));
  const latencies = curves.flat().map(([, ms]) => ms);
  // With nothing delivered the axis still spans something sensible (1 s to the SLO or 1 h).
  const fastest = latencies.length > 0 ? Math.min(...latencies) : 1_000;
  const slowest = Math.max(...latencies, slos.p95Delivery ?? 0, fastest * 10);
  const low = LATENCY_TICKS_MS.filter((t) => t <= fastest).at(-1) ?? LATENCY_TICKS_MS[0]!;
  const high = LATENCY_TICKS_MS.find((t) => t >= slowest) ?? LATENCY_TICKS_MS.at(-1)!;
  const yTicks = LATENCY_TICKS_MS.filter((t) => t >= low && t <= high);
  const series: NonNullable<EChartsOption['series']> = plans.map((p, i) => ({
    type: 'line',
    name: p.name,
    data: sparse(curves[i]!, plans.length, i),
    showSymbol: true,
    symbol: p.style.symbol,
    symbolSize: 8,
    color: p.style.color,
    lineStyle: { color: p.style.color, width: p.style.width, type: p.style.dash },
  }));
  if (slos.p95Delivery !== undefined) {
    // Curves start low on the left, so the label sits there.
    series.push(
      sloLine(
        'SLO',
        { yAxis: slos.p95Delivery },
        `SLO: p95 ≤ ${formatMs(slos.p95Delivery)}`,
        'insideStartTop',
      ),
    );
  }
  series.push({
    type: 'line',
    name: 'p95',
    data: [],
    silent: true,
    markLine: {
      silent: true,
      symbol: 'none',
      lineStyle: { color: MUTED, type: 'dotted', width: 1.5 },
      label: { show: false },
      data: [{ xAxis: round(nines(95), 6) }],
    },
  });
  return {
    ...base(
      'Push delivery latency by percentile',
      'From the intended send time, log scale; p95 in brackets, dotted vertical at p95.',
    ),
    legend,
    grid: { left: 76, right: 28, top: gridTop, bottom: 56 },
    xAxis: {
      type: 'value',
      name: 'percentile of pushes',
      nameLocation: 'middle',
      nameGap: 30,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      min: 0,
      max: NINES_MAX,
      axisLine: { lineStyle: { color: MUTED } },
      axisTick: { customValues: ticks },
      axisLabel: { customValues: ticks, formatter: (x: number) => percentileLabel(x), color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    yAxis: {
      type: 'log',
      logBase: 10,
      min: low,
      max: high,
      name: 'delivery latency (log scale)',
      nameLocation: 'middle',
      nameGap: 60,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      axisTick: { customValues: yTicks },
      axisLabel: { customValues: yTicks, formatter: (ms: number) => latencyTick(ms), color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    series,
  };
}

const STRANDED_COLORS = ['#6e7781', '#bc4c00', '#8250df', '#0969da', '#1a7f37', '#bf3989'];

/** Users left behind, per plan, split by reason; each bar carries its count. */
export function strandedOption(plans: readonly ChartPlan[]): EChartsOption {
  const reasons = [...new Set(plans.flatMap((p) => Object.keys(p.metrics.stranded.byReason)))].sort();
  const shown = reasons.length > 0 ? reasons : ['none'];
  const names = plans.map((p) => p.name);
  return {
    ...base(
      'Stranded users by reason',
      reasons.length > 0 ? 'Users the rollout left behind, per plan.' : 'No plan left anyone behind.',
    ),
    // Patterns on the bars, so reasons differ by more than colour.
    aria: { enabled: true, decal: { show: true } },
    legend: {
      top: LEGEND_TOP,
      left: 12,
      itemWidth: 24,
      itemGap: 30,
      textStyle: { fontSize: 13, color: INK },
      data: shown,
    },
    // Server-side rendering measures text roughly; leave room for the longest bold plan name.
    grid: { left: 24 + 8.5 * Math.max(...names.map((n) => n.length)), right: 64, top: 96, bottom: 56 },
    xAxis: {
      type: 'value',
      name: 'users stranded',
      nameLocation: 'middle',
      nameGap: 30,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      min: 0,
      minInterval: 1,
      axisLabel: { formatter: (v: number) => count.format(v), color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    yAxis: {
      type: 'category',
      data: names,
      inverse: true,
      axisLabel: { color: INK, fontSize: 13, fontWeight: 'bold' },
      axisLine: { lineStyle: { color: MUTED } },
    },
    series: shown.map((reason, i) => ({
      type: 'bar',
      name: reason,
      stack: 'stranded',
      barMaxWidth: 34,
      color: STRANDED_COLORS[i % STRANDED_COLORS.length]!,
      label: {
        show: true,
        position: i === shown.length - 1 ? 'right' : 'inside',
        formatter: (params: { value: unknown }) =>
          Number(params.value) > 0 ? count.format(Number(params.value)) : '',
        color: i === shown.length - 1 ? INK : '#ffffff',
        fontWeight: 'bold',
      },
      data: plans.map(
        (p) => p.metrics.stranded.byReason[reason as keyof PlanMetrics['stranded']['byReason']] ?? 0,
      ),
    })),
  };
}

type FrontierRole = 'frontier' | 'dominated' | 'reference' | 'recommended';

const FRONTIER_SERIES: Record<FrontierRole, { name: string; symbol: string; hollow: boolean }> = {
  recommended: { name: 'recommended', symbol: 'pin', hollow: false },
  frontier: { name: 'on the Pareto frontier', symbol: 'circle', hollow: false },
  dominated: { name: 'dominated (not on the frontier)', symbol: 'emptyCircle', hollow: true },
  reference: { name: 'reference plan', symbol: 'triangle', hollow: false },
};

/**
 * Every sweep entry at (makespan, p95 delivery); bubble size and colour are its peak queue.
 * Frontier members are filled, dominated ones hollow, references triangles, the recommendation
 * a pin; the shaded box is where the makespan and p95 SLOs are met.
 */
export function frontierOption(sweep: SweepResult): EChartsOption {
  const recommended = sweep.recommendation.kind === 'meetsSlos' ? sweep.recommendation.entry : null;
  const role = (e: SweepResult['entries'][number]): FrontierRole =>
    e.name === recommended
      ? 'recommended'
      : e.kind === 'reference'
        ? 'reference'
        : e.onFrontier
          ? 'frontier'
          : 'dominated';
  const peaks = sweep.entries.map((e) => e.metrics.peakQueue.domain);
  const maxPeak = Math.max(1, ...peaks);
  const size = (peak: number) => 10 + 30 * Math.sqrt(peak / maxPeak);
  const { makespan, p95Delivery } = sweep.slos;
  const hours = sweep.entries.map((e) => e.metrics.makespanMs / HOUR_MS);
  // A log axis needs bounds above zero: whole powers of two around every run (and the SLO).
  const minHours = 2 ** Math.floor(Math.log2(Math.max(1 / 64, Math.min(...hours, 1))));
  const maxHours = 2 ** Math.ceil(Math.log2(Math.max(...hours, (makespan ?? 0) / HOUR_MS, 1)));
  const roles: FrontierRole[] = ['dominated', 'frontier', 'reference', 'recommended'];
  const series: NonNullable<EChartsOption['series']> = roles.map((r) => {
    const look = FRONTIER_SERIES[r];
    return {
      type: 'scatter',
      name: look.name,
      symbol: look.symbol,
      z: r === 'recommended' ? 10 : r === 'dominated' ? 2 : 5,
      itemStyle: look.hollow
        ? { borderWidth: 2, opacity: 0.8 }
        : { borderColor: r === 'recommended' ? '#1a7f37' : INK, borderWidth: r === 'recommended' ? 3 : 1 },
      label: {
        show: r !== 'dominated',
        position: r === 'recommended' ? 'top' : 'right',
        formatter: (params: { data: unknown }) => {
          const name = String((params.data as unknown[])[3]);
          return r === 'recommended' ? `★ recommended: ${name}` : name;
        },
        color: r === 'recommended' ? '#1a7f37' : INK,
        fontWeight: r === 'recommended' ? 'bold' : 'normal',
        fontSize: r === 'recommended' ? 14 : 11,
      },
      labelLayout: { hideOverlap: true },
      symbolSize: (value: unknown) => size(Number((value as number[])[2])) * (r === 'recommended' ? 1.4 : 1),
      data: sweep.entries
        .filter((e) => role(e) === r)
        .map((e) => [
          round(e.metrics.makespanMs / HOUR_MS, 4),
          round(e.metrics.pushDelivery.p95Ms / MINUTE_MS, 3),
          e.metrics.peakQueue.domain,
          e.name,
        ]),
    };
  });
  if (makespan !== undefined && p95Delivery !== undefined) {
    series.push({
      type: 'scatter',
      name: 'SLO',
      data: [],
      silent: true,
      markArea: {
        silent: true,
        itemStyle: {
          color: 'rgba(26,127,55,0.08)',
          borderColor: 'rgba(26,127,55,0.5)',
          borderType: 'dashed',
        },
        label: {
          show: true,
          position: 'insideBottomRight',
          color: '#1a7f37',
          fontWeight: 'bold',
          formatter: `meets makespan ≤ ${formatMs(makespan)} and p95 ≤ ${formatMs(p95Delivery)}`,
        },
        data: [[{ coord: [minHours, 0] }, { coord: [makespan / HOUR_MS, p95Delivery / MINUTE_MS] }]],
      },
    });
  }
  return {
    ...base(
      'Sweep: makespan against p95 delivery',
      'One bubble per run; size and colour: peak queue. Lower left is better on both axes.',
    ),
    legend: {
      top: LEGEND_TOP,
      left: 12,
      itemWidth: 18,
      itemHeight: 14,
      itemGap: 36,
      textStyle: { fontSize: 13, color: INK },
      data: roles.map((r) => FRONTIER_SERIES[r].name),
    },
    grid: { left: 70, right: 150, top: 100, bottom: 56 },
    visualMap: {
      type: 'continuous',
      dimension: 2,
      seriesIndex: roles.map((_, i) => i),
      min: 0,
      max: maxPeak,
      right: 12,
      top: 'middle',
      itemHeight: 180,
      text: [`peak queue ${count.format(maxPeak)} jobs`, '0'],
      textStyle: { color: MUTED },
      calculable: false,
      inRange: { color: ['#2c7bb6', '#abd9e9', '#fdae61', '#d7191c'] },
    },
    xAxis: {
      type: 'log',
      logBase: 2,
      min: minHours,
      max: maxHours,
      name: 'makespan (hours, log scale)',
      nameLocation: 'middle',
      nameGap: 30,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      axisLabel: { formatter: (h: number) => `${Number(h.toFixed(2))} h`, color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    yAxis: {
      type: 'value',
      name: 'p95 push delivery (minutes)',
      nameLocation: 'middle',
      nameGap: 44,
      nameTextStyle: { color: MUTED, fontSize: 12 },
      min: 0,
      axisLabel: { formatter: '{value} min', color: MUTED },
      splitLine: { lineStyle: { color: GRID } },
    },
    series,
  };
}
