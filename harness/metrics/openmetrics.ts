/**
 * A simulated run's metrics as Prometheus series: one sample per virtual minute per series,
 * folded from a plan's event log, and written as OpenMetrics text with timestamps so promtool
 * can backfill them into a TSDB and Grafana shows the run as if it had happened.
 *
 * Sample k stands for virtual time k minutes and reflects every event before it (the same
 * instant the summary's timeline samples). Gauges that peak between samples — the queues and
 * throttle utilisation — carry the peak of the minute ending at the sample, so
 * `max_over_time` over a run equals summary.json's `peakQueue`, and utilisation times the limit
 * equals its `jobsPerMinute`. The rules are the plan projection's (projection.ts): the events
 * go through a PlanProjection first, which also drops duplicates and gives the plan's final
 * user count for the converged share.
 */

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Writable } from 'node:stream';
import type { PushKind, StoredEvent, StrandedReason } from '../domain/events.ts';
import { ResultsError } from '../errors.ts';
import {
  METRIC_DEFINITIONS,
  METRICS,
  type MetricDefinition,
  PUSH_OUTCOMES,
  STRANDED_REASONS,
} from './names.ts';
import { PlanProjection } from './projection.ts';
import type { PlanMetrics } from './summary.ts';

const MINUTE_MS = 60_000;

export type Labels = Readonly<Record<string, string>>;

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
class Sampled {
  current = 0;
  readonly series: ScalarSeries;
  constructor(labels: Labels, samplesSoFar: number) {
    this.series = { labels, values: new Array<number>(samplesSoFar).fill(0) };
  }
}

/** The peak of a level within the minute up to each sample (the level itself carries over). */
class PeakPerMinute extends Sampled {
  level = 0;
  set(level: number): void {
    this.level = level;
    if (level > this.current) this.current = level;
  }
  /** After a sample the next minute's peak starts at the level it inherits. */
  reset(): void {
    this.current = this.level;
  }
}

class HistogramTrack {
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

interface DeviceState {
  stranded: StrandedReason | null;
  converged: boolean;
}

/**
 * Folds one plan's events (in log order) into per-minute series. Feed every event to `apply`,
 * then call `finish` once.
 */
export class MinuteSeriesProjection {
  private readonly projection = new PlanProjection();
  private plan = '';
  private throttleLimit: number | null = null;
  private samples = 0;
  private nextSampleAt = 0;
  private lastAt = 0;

  private readonly scalars = new Map<string, Map<string, Sampled>>();
  private readonly histograms = new Map<string, Map<string, HistogramTrack>>();
  private readonly queues = new Map<string, PeakPerMinute>();
  private readonly domainQueue: PeakPerMinute;
  /** Jobs each instance started since the previous sample. */
  private readonly startedThisMinute = new Map<string, number>();

  private readonly jobs = new Map<number, { instance: string; bypass: boolean }>();
  private readonly pushKinds = new Map<number, PushKind>();
  private readonly activationInstance = new Map<string, string>();
  private readonly devices = new Map<string, DeviceState>();
  private converged = 0;
  private readonly convergedBySample: number[] = [];
  private eventsTotal: Sampled | undefined;

  /** @param run the `run` label of every series (e.g. the results folder's name) */
  constructor(private readonly run: string) {
    this.domainQueue = new PeakPerMinute({}, 0);
  }

  /** Applies one event; a duplicate (seen by the projection before) changes nothing. */
  apply(e: StoredEvent): void {
    if (!this.projection.apply(e)) return;
    // The plan labels every series, including those the first sample creates.
    if (e.type === 'RunStarted') this.plan = e.data.plan;
    this.sampleUntil(e.at);
    this.lastAt = Math.max(this.lastAt, e.at);
    switch (e.type) {
      case 'RunStarted':
        this.throttleLimit = e.data.throttle.jobsPerMinutePerService;
        // Every label set that exists from the start, at 0, so rates and panels have a baseline.
        this.scalar(METRICS.domainQueueDepth, {});
        this.scalar(METRICS.convergedShare, {});
        this.scalar(METRICS.currentPhase, {});
        for (const reason of STRANDED_REASONS) this.scalar(METRICS.strandedUsers, { reason });
        this.histogram(METRICS.userMigration, {});
        break;
      case 'FleetProvisioned':
        for (const instance of e.data.instances) this.addInstance(instance.id);
        break;
      case 'InstanceProvisioned':
        this.addInstance(e.data.instance);
        break;
      case 'PhaseStarted':
        this.scalar(METRICS.currentPhase, {}).current = e.data.phase;
        break;
      case 'ActivationRequested':
        this.activationInstance.set(e.data.device, e.data.instance);
        this.addQueue(e.data.instance, 1);
        break;
      case 'ActivationStarted':
        this.addQueue(e.data.instance, -1);
        break;
      case 'ActivationFailed': {
        const instance = this.activationInstance.get(e.data.device);
        if (instance) this.addQueue(instance, -1);
        break;
      }
      case 'JobQueued':
        this.jobs.set(e.data.job, { instance: e.data.instance, bypass: e.data.bypassThrottle });
        for (const push of e.data.pushes) {
          this.pushKinds.set(push.push, push.kind);
          this.addKind(push.kind);
          this.scalar(METRICS.pushesQueued, { kind: push.kind }).current++;
        }
        if (!e.data.bypassThrottle) this.addQueue(e.data.instance, 1);
        break;
      case 'JobDispatched': {
        const job = this.jobs.get(e.data.job);
        if (!job || job.bypass) break;
        this.addQueue(job.instance, -1);
        this.addInstance(job.instance);
        this.scalar(METRICS.jobsDispatched, { bes_instance: job.instance }).current++;
        this.startedThisMinute.set(job.instance, (this.startedThisMinute.get(job.instance) ?? 0) + 1);
        break;
      }
      case 'PushResent': {
        const kind = this.pushKinds.get(e.data.push);
        if (kind) this.scalar(METRICS.pushResends, { kind }).current++;
        break;
      }
      case 'PushAcknowledged': {
        this.addKind(e.data.kind);
        this.scalar(METRICS.pushes, { kind: e.data.kind, outcome: 'acknowledged' }).current++;
        const latencyMs = Math.max(1, Math.round(e.at - e.data.queuedAt));
        this.histogram(METRICS.pushDelivery, { kind: e.data.kind }).observe(latencyMs / 1000);
        break;
      }
      case 'PushExpired':
        this.addKind(e.data.kind);
        this.scalar(METRICS.pushes, { kind: e.data.kind, outcome: 'expired' }).current++;
        break;
      case 'DeviceConverged': {
        const device = this.device(e.data.device);
        const migrationMs = Math.max(1, Math.round(e.at - e.data.since));
        this.histogram(METRICS.userMigration, {}).observe(migrationMs / 1000);
        if (!device.converged) {
          if (device.stranded !== null)
            this.scalar(METRICS.strandedUsers, { reason: device.stranded }).current--;
          device.converged = true;
          this.converged++;
        }
        device.stranded = null;
        break;
      }
      case 'DeviceStranded': {
        const device = this.device(e.data.device);
        // Once converged a device is never counted as stranded again (the projection's rule).
        if (!device.converged) {
          if (device.stranded !== null)
            this.scalar(METRICS.strandedUsers, { reason: device.stranded }).current--;
          this.scalar(METRICS.strandedUsers, { reason: e.data.reason }).current++;
        }
        device.stranded = e.data.reason;
        break;
      }
      default:
        break;
    }
    // After the switch, so RunStarted has set the plan label first.
    this.eventsTotal ??= this.scalar(METRICS.events, {});
    this.eventsTotal.current++;
  }

  /** Takes the last sample (after the last event) and returns the series. */
  finish(): PlanMinuteSeries {
    this.sampleUntil(this.lastAt);
    this.sample();
    const summary = this.projection.result('');
    // The share's denominator is the plan's users, known only at the end (as in the summary's timeline).
    this.scalar(METRICS.convergedShare, {}).series.values = this.convergedBySample.map((c) =>
      summary.users ? c / summary.users : 0,
    );
    const scalars = new Map<string, ScalarSeries[]>();
    for (const [name, byLabels] of this.scalars)
      scalars.set(
        name,
        [...byLabels.values()].map((s) => s.series),
      );
    const histograms = new Map<string, HistogramSeries[]>();
    for (const [name, byLabels] of this.histograms)
      histograms.set(
        name,
        [...byLabels.values()].map((h) => h.series),
      );
    return { plan: this.plan, samples: this.samples, endMs: this.lastAt, scalars, histograms, summary };
  }

  private sampleUntil(at: number): void {
    while (this.nextSampleAt <= at) this.sample();
  }

  private sample(): void {
    const domain = this.scalar(METRICS.domainQueueDepth, {});
    domain.current = this.domainQueue.current;
    this.domainQueue.reset();
    if (this.throttleLimit !== null) {
      for (const instance of this.queues.keys()) {
        const started = this.startedThisMinute.get(instance) ?? 0;
        this.scalar(METRICS.throttleUtilisation, { bes_instance: instance }).current =
          started / this.throttleLimit;
      }
    }
    this.startedThisMinute.clear();
    this.convergedBySample.push(this.converged);
    for (const byLabels of this.scalars.values())
      for (const s of byLabels.values()) s.series.values.push(s.current);
    for (const byLabels of this.histograms.values()) for (const h of byLabels.values()) h.sample();
    for (const queue of this.queues.values()) queue.reset();
    this.samples++;
    this.nextSampleAt += MINUTE_MS;
  }

  private addInstance(instance: string): void {
    if (this.queues.has(instance)) return;
    const queue = new PeakPerMinute(this.labels({ bes_instance: instance }), this.samples);
    this.queues.set(instance, queue);
    this.register(METRICS.queueDepth, queue);
    this.scalar(METRICS.jobsDispatched, { bes_instance: instance });
    if (this.throttleLimit !== null) this.scalar(METRICS.throttleUtilisation, { bes_instance: instance });
  }

  private addKind(kind: PushKind): void {
    this.scalar(METRICS.pushesQueued, { kind });
    for (const outcome of PUSH_OUTCOMES) this.scalar(METRICS.pushes, { kind, outcome });
    this.scalar(METRICS.pushResends, { kind });
    this.histogram(METRICS.pushDelivery, { kind });
  }

  private addQueue(instance: string, delta: number): void {
    this.addInstance(instance);
    const queue = this.queues.get(instance)!;
    queue.set(queue.level + delta);
    this.domainQueue.set(this.domainQueue.level + delta);
  }

  private device(pin: string): DeviceState {
    let device = this.devices.get(pin);
    if (!device) {
      device = { stranded: null, converged: false };
      this.devices.set(pin, device);
    }
    return device;
  }

  private labels(extra: Labels): Labels {
    return { run: this.run, plan: this.plan, ...extra };
  }

  private scalar(metric: MetricDefinition, extra: Labels): Sampled {
    const labels = this.labels(extra);
    const key = labelKey(labels);
    let byLabels = this.scalars.get(metric.name);
    if (!byLabels) {
      byLabels = new Map();
      this.scalars.set(metric.name, byLabels);
    }
    let sampled = byLabels.get(key);
    if (!sampled) {
      sampled = new Sampled(labels, this.samples);
      byLabels.set(key, sampled);
    }
    return sampled;
  }

  private register(metric: MetricDefinition, sampled: Sampled): void {
    let byLabels = this.scalars.get(metric.name);
    if (!byLabels) {
      byLabels = new Map();
      this.scalars.set(metric.name, byLabels);
    }
    byLabels.set(labelKey(sampled.series.labels), sampled);
  }

  private histogram(metric: MetricDefinition, extra: Labels): HistogramTrack {
    const labels = this.labels(extra);
    const key = labelKey(labels);
    let byLabels = this.histograms.get(metric.name);
    if (!byLabels) {
      byLabels = new Map();
      this.histograms.set(metric.name, byLabels);
    }
    let track = byLabels.get(key);
    if (!track) {
      track = new HistogramTrack(metric.buckets ?? [], labels, this.samples);
      byLabels.set(key, track);
    }
    return track;
  }
}

function labelKey(labels: Labels): string {
  return JSON.stringify(Object.entries(labels));
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
