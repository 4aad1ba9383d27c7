/**
 * A simulated run's metrics as Prometheus series: one sample per virtual minute per series,
 * folded from a plan's event log, and written as OpenMetrics text with timestamps so promtool
 * can backfill them into a TSDB and Grafana shows the run as if it had happened.
 *
 * Sample k stands for virtual time k minutes and reflects every event before it (the same
 * instant the summary's timeline samples). Gauges that peak between samples — the queues and
 * throttle utilisation — carry the peak of the minute ending at the sample, so
 * `max_over_time` over a run equals summary.json's `peakQueue`, and utilisation times the limit
 * equals its `jobsPerMinute`. Which event moves which series is families.ts's (shared with the
 * live `/metrics`); its PlanProjection also drops duplicates and gives the plan's final user
 * count for the converged share.
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import type { StoredEvent } from '../domain/events.ts';
import { ResultsError } from '../errors.ts';
import {
  FamilyProjection,
  type FamilySink,
  type HistogramCell,
  type Labels,
  type LevelCell,
  type PerMinuteCell,
  type ScalarCell,
} from './families.ts';
import { METRIC_DEFINITIONS, METRICS, type MetricDefinition } from './names.ts';
import type { PlanMetrics } from './summary.ts';

const MINUTE_MS = 60_000;

export type { Labels };

/** A counter or gauge: one value per sample. */
export interface ScalarSeries {
  labels: Labels;
  values: number[];
}

/** A histogram: cumulative bucket counts (one array per bucket, +Inf last), count and sum per sample. */
export interface HistogramSeries {
  labels: Labels;
  buckets: number[][];
  count: number[];
  sum: number[];
}

export interface PlanMinuteSeries {
  plan: string;
  /** Samples per series: sample k is virtual minute k. */
  samples: number;
  /** Virtual ms of the last event. */
  endMs: number;
  /** Series by metric name (METRICS[*].name), in creation order. */
  scalars: Map<string, ScalarSeries[]>;
  histograms: Map<string, HistogramSeries[]>;
  /** The plan projection's result over the same events (its log hash left empty). */
  summary: PlanMetrics;
}

/** A settable value whose history is sampled once a minute. */
class Sampled implements ScalarCell {
  current = 0;
  readonly series: ScalarSeries;
  constructor(labels: Labels, samplesSoFar: number) {
    this.series = { labels, values: new Array<number>(samplesSoFar).fill(0) };
  }
  add(delta: number): void {
    this.current += delta;
  }
  set(value: number): void {
    this.current = value;
  }
  /** Called before each sample is taken. */
  closeMinute(): void {}
}

/** The peak of a level within the minute up to each sample (the level itself carries over). */
class PeakPerMinute extends Sampled implements LevelCell {
  level = 0;
  override set(level: number): void {
    this.level = level;
    if (level > this.current) this.current = level;
  }
  /** After a sample the next minute's peak starts at the level it inherits. */
  reset(): void {
    this.current = this.level;
  }
}

/** Things counted within the minute up to each sample, over a per-minute limit. */
class CountPerMinute extends Sampled implements PerMinuteCell {
  private counted = 0;
  constructor(
    labels: Labels,
    samplesSoFar: number,
    private readonly limit: number,
  ) {
    super(labels, samplesSoFar);
  }
  count(): void {
    this.counted++;
  }
  override closeMinute(): void {
    this.current = this.counted / this.limit;
    this.counted = 0;
  }
}

class HistogramTrack implements HistogramCell {
  private readonly counts: number[];
  private count = 0;
  private sum = 0;
  readonly series: HistogramSeries;

  constructor(
    private readonly bounds: readonly number[],
    labels: Labels,
    samplesSoFar: number,
  ) {
    this.counts = new Array<number>(bounds.length + 1).fill(0);
    const zeros = () => new Array<number>(samplesSoFar).fill(0);
    this.series = { labels, buckets: this.counts.map(zeros), count: zeros(), sum: zeros() };
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > this.bounds[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sum += value;
  }

  sample(): void {
    let cumulative = 0;
    for (let i = 0; i < this.counts.length; i++) {
      cumulative += this.counts[i]!;
      this.series.buckets[i]!.push(cumulative);
    }
    this.series.count.push(this.count);
    this.series.sum.push(this.sum);
  }
}

/** The series of one plan, sampled at every whole virtual minute before the events at it. */
class MinuteSink implements FamilySink {
  samples = 0;
  lastAt = 0;
  private nextSampleAt = 0;
  /** Series by metric name, in creation order. */
  readonly scalars = new Map<string, Sampled[]>();
  readonly histograms = new Map<string, HistogramTrack[]>();
  private readonly peaks: PeakPerMinute[] = [];
  /** The converged users at each sample: the share's denominator is known only at the end. */
  readonly convergedBySample: number[] = [];

  constructor(private readonly usersConverged: () => number) {}

  beforeEvent(at: number): void {
    this.sampleUntil(at);
    this.lastAt = Math.max(this.lastAt, at);
  }

  scalar(metric: MetricDefinition, labels: Labels): Sampled {
    return this.add(metric, new Sampled(labels, this.samples));
  }

  level(metric: MetricDefinition, labels: Labels): PeakPerMinute {
    const peak = this.add(metric, new PeakPerMinute(labels, this.samples));
    this.peaks.push(peak);
    return peak;
  }

  perMinute(metric: MetricDefinition, labels: Labels, limitPerMinute: number): CountPerMinute {
    return this.add(metric, new CountPerMinute(labels, this.samples, limitPerMinute));
  }

  histogram(metric: MetricDefinition, labels: Labels): HistogramTrack {
    const track = new HistogramTrack(metric.buckets ?? [], labels, this.samples);
    const tracks = this.histograms.get(metric.name) ?? [];
    tracks.push(track);
    this.histograms.set(metric.name, tracks);
    return track;
  }

  sampleUntil(at: number): void {
    while (this.nextSampleAt <= at) this.sample();
  }

  sample(): void {
    this.convergedBySample.push(this.usersConverged());
    for (const series of this.scalars.values())
      for (const s of series) {
        s.closeMinute();
        s.series.values.push(s.current);
      }
    for (const tracks of this.histograms.values()) for (const h of tracks) h.sample();
    for (const peak of this.peaks) peak.reset();
    this.samples++;
    this.nextSampleAt += MINUTE_MS;
  }

  private add<S extends Sampled>(metric: MetricDefinition, sampled: S): S {
    const series = this.scalars.get(metric.name) ?? [];
    series.push(sampled);
    this.scalars.set(metric.name, series);
    return sampled;
  }
}

/**
 * Folds one plan's events (in log order) into per-minute series. Feed every event to `apply`,
 * then call `finish` once.
 */
export class MinuteSeriesProjection {
  private readonly sink: MinuteSink;
  private readonly families: FamilyProjection;

  /** @param run the `run` label of every series (e.g. the results folder's name) */
  constructor(run: string) {
    this.sink = new MinuteSink(() => this.families.usersConverged);
    this.families = new FamilyProjection(run, this.sink);
  }

  /** Applies one event; a duplicate (seen by the projection before) changes nothing. */
  apply(e: StoredEvent): void {
    this.families.apply(e);
  }

  /** Takes the last sample (after the last event) and returns the series. */
  finish(): PlanMinuteSeries {
    const sink = this.sink;
    sink.sampleUntil(sink.lastAt);
    sink.sample();
    const summary = this.families.projection.result('');
    // The share's denominator is the plan's users, known only at the end (as in the summary's timeline).
    for (const share of sink.scalars.get(METRICS.convergedShare.name) ?? [])
      share.series.values = sink.convergedBySample.map((c) => (summary.users ? c / summary.users : 0));
    const scalars = new Map<string, ScalarSeries[]>();
    for (const [name, series] of sink.scalars)
      scalars.set(
        name,
        series.map((s) => s.series),
      );
    const histograms = new Map<string, HistogramSeries[]>();
    for (const [name, tracks] of sink.histograms)
      histograms.set(
        name,
        tracks.map((h) => h.series),
      );
    return { plan: summary.plan, samples: sink.samples, endMs: sink.lastAt, scalars, histograms, summary };
  }
}

/** Folds a plan's events (an array, a generator or a log file reader) into per-minute series. */
export async function projectMinuteSeries(
  events: Iterable<StoredEvent> | AsyncIterable<StoredEvent>,
  run: string,
): Promise<PlanMinuteSeries> {
  const projection = new MinuteSeriesProjection(run);
  for await (const event of events) projection.apply(event);
  return projection.finish();
}

/**
 * When the run is placed on the wall clock by default: one day before now, earlier still when the
 * run is longer than 21 hours, at a whole minute. Every sample then lies in the past (Grafana's
 * "last N days" shows it) and at least 3 hours before now: Prometheus is still writing its head
 * block over the last ~3 hours, and its docs warn against backfilling into that range. Keep
 * the Prometheus retention longer than the distance back (scripts/prometheus.sh uses 10y;
 * the default 15d holds runs up to about two weeks).
 */
export function defaultStartMs(nowMs: number, spanMs: number): number {
  const DAY_MS = 24 * 60 * MINUTE_MS;
  const HEAD_BLOCK_MS = 3 * 60 * MINUTE_MS;
  const start = Math.min(nowMs - DAY_MS, nowMs - HEAD_BLOCK_MS - spanMs);
  return Math.floor(start / MINUTE_MS) * MINUTE_MS;
}

export interface OpenMetricsStats {
  series: number;
  samples: number;
  /** Wall time (epoch ms) of the first and the last sample. */
  firstSampleMs: number;
  lastSampleMs: number;
}

/** Characters of text handed to the stream at once. */
const CHUNK_CHARS = 1 << 20;

/**
 * Writes the plans' series as OpenMetrics text: families in METRIC_DEFINITIONS order, every
 * plan's series of a family together, samples in time order, `# EOF` last. Timestamps are whole
 * seconds (`startMs` is rounded down to one), which both OpenMetrics and the text-format linter
 * of `promtool check metrics` accept.
 *
 * Counter families are declared under their sample name (`# TYPE x_total counter`), as in the
 * Prometheus text format: `promtool check metrics` parses the text format and would otherwise
 * report the `_total` samples as an untyped family without help; Prometheus's OpenMetrics parser
 * (what `promtool tsdb create-blocks-from openmetrics` uses) accepts it.
 */
export async function writeOpenMetrics(
  out: Writable,
  plans: readonly PlanMinuteSeries[],
  options: { startMs: number },
): Promise<OpenMetricsStats> {
  const startS = Math.floor(options.startMs / 1000);
  const maxSamples = Math.max(0, ...plans.map((p) => p.samples));
  const timestamps = Array.from({ length: maxSamples }, (_, k) => String(startS + k * 60));
  const stats: OpenMetricsStats = {
    series: 0,
    samples: 0,
    firstSampleMs: startS * 1000,
    lastSampleMs: (startS + Math.max(0, maxSamples - 1) * 60) * 1000,
  };
  let chunk = '';
  const flush = async (force: boolean): Promise<void> => {
    if (chunk.length < CHUNK_CHARS && !force) return;
    if (!out.write(chunk)) await once(out, 'drain');
    chunk = '';
  };

  for (const metric of METRIC_DEFINITIONS) {
    chunk += `# TYPE ${metric.name} ${metric.type}\n`;
    if (metric.unit) chunk += `# UNIT ${metric.name} ${metric.unit}\n`;
    chunk += `# HELP ${metric.name} ${escapeHelp(metric.help)}\n`;
    for (const plan of plans) {
      if (metric.type === 'histogram') {
        const bounds = [...(metric.buckets ?? []).map(String), '+Inf'];
        for (const series of plan.histograms.get(metric.name) ?? []) {
          const base = labelText(series.labels);
          const bucketPrefixes = bounds.map(
            (le) => `${metric.name}_bucket{${base}${base ? ',' : ''}le="${le}"} `,
          );
          const countPrefix = `${metric.name}_count${braces(base)} `;
          const sumPrefix = `${metric.name}_sum${braces(base)} `;
          stats.series += bounds.length + 2;
          for (let k = 0; k < plan.samples; k++) {
            const ts = timestamps[k]!;
            for (let b = 0; b < bucketPrefixes.length; b++)
              chunk += `${bucketPrefixes[b]}${series.buckets[b]![k]} ${ts}\n`;
            chunk += `${countPrefix}${series.count[k]} ${ts}\n`;
            chunk += `${sumPrefix}${formatNumber(series.sum[k]!)} ${ts}\n`;
            stats.samples += bucketPrefixes.length + 2;
            if (chunk.length >= CHUNK_CHARS) await flush(false);
          }
        }
      } else {
        for (const series of plan.scalars.get(metric.name) ?? []) {
          const prefix = `${metric.name}${braces(labelText(series.labels))} `;
          stats.series++;
          for (let k = 0; k < plan.samples; k++) {
            chunk += `${prefix}${formatNumber(series.values[k]!)} ${timestamps[k]}\n`;
            stats.samples++;
            if (chunk.length >= CHUNK_CHARS) await flush(false);
          }
        }
      }
    }
  }
  chunk += '# EOF\n';
  await flush(true);
  return stats;
}

/** Writes OpenMetrics text to a file (created with its folder), or to stdout for '-'. */
export async function writeOpenMetricsFile(
  path: string,
  plans: readonly PlanMinuteSeries[],
  options: { startMs: number },
): Promise<OpenMetricsStats> {
  if (path === '-') return writeOpenMetrics(process.stdout, plans, options);
  let file: ReturnType<typeof createWriteStream>;
  try {
    await mkdir(dirname(path), { recursive: true });
    file = createWriteStream(path);
    await once(file, 'open');
  } catch (cause) {
    throw new ResultsError(`cannot write ${path}: ${(cause as Error).message}`, { target: path, cause });
  }
  const failed = new Promise<never>((_, reject) => file.once('error', reject));
  try {
    const stats = await Promise.race([writeOpenMetrics(file, plans, options), failed]);
    file.end();
    await Promise.race([once(file, 'finish'), failed]);
    return stats;
  } catch (cause) {
    file.destroy();
    throw new ResultsError(`cannot write ${path}: ${(cause as Error).message}`, { target: path, cause });
  }
}

function braces(labels: string): string {
  return labels ? `{${labels}}` : '';
}

function labelText(labels: Labels): string {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabelValue(value)}"`)
    .join(',');
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(value);
}
