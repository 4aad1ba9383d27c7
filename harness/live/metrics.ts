/**
 * Live metrics: the events of live runs, as they become known, kept in the prom-client registry
 * of names.ts (`buildRegistry`), and a small HTTP server for `/metrics` and `/healthz` that the
 * live driver and the engine and fleet services share.
 *
 * Which event moves which series is harness/metrics/families.ts, the same rules the OpenMetrics
 * export of simulated runs follows, so a live run and a backfilled simulation of it draw the
 * same panels. Applying an event only updates numbers in memory; they are written to prom-client
 * when the registry is read (a scrape), so a run emitting thousands of events a second pays for
 * prom-client's label handling once per series per scrape, not per event. Histograms are the
 * exception: each observation goes to prom-client as it comes.
 *
 * Two families are measured on the run's timeline, like their simulated samples:
 * - queue depth (per instance and domain): the deepest the queue got in the run-minute up to the
 *   scrape, and since the previous scrape, so `max_over_time` over a run is its summary's peak
 *   however fast the run's time passes. With two Prometheus servers scraping one endpoint, each
 *   sees the peaks since its own previous scrape only when the other did not read them first.
 * - throttle utilisation: the most jobs an instance started in any run-minute ending since the
 *   previous scrape (the minute up to the scrape included), over its per-minute limit, so
 *   `max_over_time` times the limit is the summary's busiest 60 s (`maxJobsInAnyMinute`).
 * With `timeScale`, the run-minute up to a scrape ends at the run time reached by then (the
 * queues drain and the throttles go idle on the dashboards while no event arrives); without it,
 * at the latest event. Once a run has completed its queues stay at their last level and its throttles
 * read 0.
 *
 * A long-lived process (`phasebench engine`) hosts run after run: `forgetCompletedAfterMs` removes
 * a completed run's series, and what LiveMetrics holds for it, that long after its RunCompleted
 * arrived, at the next read or new run, so the scrapes in between still see its final values;
 * `forget` removes a run's series at once.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, type Histogram, type Registry } from 'prom-client';
import type { StoredEvent } from '../domain/events.ts';
import { PhasebenchError } from '../errors.ts';
import {
  FamilyProjection,
  type FamilySink,
  type HistogramCell,
  type Labels,
  type LevelCell,
  type PerMinuteCell,
  type ScalarCell,
} from '../metrics/families.ts';
import {
  type LiveRegistry,
  METRICS,
  type MetricDefinition,
  type MetricKey,
  SERVICE_METRICS,
} from '../metrics/names.ts';
import { systemWallTime, type WallTime } from '../sim/clock.ts';
import type { ConsumerCounts } from './consumer.ts';
import type { EngineStats } from './engine-worker.ts';
import type { FleetStats } from './fleet-worker.ts';
import { DEAD_LETTER_CATEGORIES } from './messages.ts';

const MINUTE_MS = 60_000;

export interface LiveMetricsOptions {
  /**
   * How many times faster than the wall clock the runs' time passes (the live run's time scale).
   * When given, a scrape reads the queue and throttle gauges at the run time reached by then,
   * estimated from when the events arrived; without it, at the latest event's time.
   */
  timeScale?: number;
  /** Monotonic wall milliseconds for that estimate and for forgetting. Default: the process's own (performance.now). */
  wall?: Pick<WallTime, 'nowMs'>;
  /**
   * Wall milliseconds a completed run's series stay after its RunCompleted arrived; then the first
   * read of the registry (a scrape) or the first event of another run removes them. Default:
   * kept for the life of the process (a driver shows one run and exits).
   */
  forgetCompletedAfterMs?: number;
}

/** A series whose value is written to prom-client when its family is read. */
interface Written {
  write(): void;
}

/**
 * Follows live runs' events into a registry from `buildRegistry()`: one LiveMetrics per registry,
 * fed every event of every run it should show (`apply`, e.g. runLive's `onEvent`). Runs are told
 * apart by the events' `run`, which labels their series; a duplicate event changes nothing.
 */
export class LiveMetrics {
  private readonly runs = new Map<string, RunSeries>();
  /** Series by metric name, written when prom-client reads the family. */
  private readonly written = new Map<string, Written[]>();
  /** Wall ms at which each completed run (not yet forgotten) completed, oldest first. */
  private readonly completedAt = new Map<string, number>();

  constructor(
    private readonly live: LiveRegistry,
    private readonly options: LiveMetricsOptions = {},
  ) {
    for (const [key, metric] of Object.entries(METRICS) as Array<[MetricKey, MetricDefinition]>) {
      const series: Written[] = [];
      if (metric.type !== 'histogram') this.written.set(metric.name, series);
      // prom-client calls a metric's `collect` (kept from its configuration) before each read of
      // it: the registry's text, getMetricsAsJSON and get() alike. A read collects every family
      // in one go, so the first one forgets what is due and the read is consistent.
      Object.assign(live.metrics[key], {
        collect: () => {
          this.forgetDue();
          for (const s of series) s.write();
        },
      });
    }
  }

  /** Applies one event of a run (a run's events in log order). */
  apply(event: StoredEvent): void {
    let run = this.runs.get(event.run);
    if (!run) {
      this.forgetDue();
      run = new RunSeries(event.run, this.live, this.written, this.options);
      this.runs.set(event.run, run);
    }
    if (run.apply(event) && event.type === 'RunCompleted') this.completedAt.set(event.run, this.wallMs());
  }

  /**
   * Removes a run's series from the registry and everything held for it; its events, applied
   * again, count from nothing (a run taken over again is replayed from the log in full).
   * @returns false when no series of the run were held
   */
  forget(run: string): boolean {
    const series = this.runs.get(run);
    this.completedAt.delete(run);
    if (!series) return false;
    this.runs.delete(run);
    series.remove();
    return true;
  }

  /** The runs whose series are held now. */
  get held(): string[] {
    return [...this.runs.keys()];
  }

  private forgetDue(): void {
    const { forgetCompletedAfterMs } = this.options;
    if (forgetCompletedAfterMs === undefined || this.completedAt.size === 0) return;
    const due = this.wallMs() - forgetCompletedAfterMs;
    for (const [run, at] of this.completedAt) {
      if (at > due) break;
      this.forget(run);
    }
  }

  private wallMs(): number {
    return (this.options.wall ?? systemWallTime).nowMs();
  }
}

/** One run's series: the sink its FamilyProjection writes to. */
class RunSeries implements FamilySink {
  private readonly families: FamilyProjection;
  private readonly handles = new Map<string, Counter | Gauge | Histogram>();
  /** Every series of the run, by metric name: what `remove` takes away. */
  private readonly series: Array<{ name: string; labels: Labels; cell?: Written }> = [];
  private lastAt = 0;
  private completed = false;
  /** The largest (event time − wall time × scale) seen: run time ≈ wall time × scale + this. */
  private offset = Number.NEGATIVE_INFINITY;

  constructor(
    run: string,
    live: LiveRegistry,
    private readonly written: Map<string, Written[]>,
    private readonly options: LiveMetricsOptions,
  ) {
    for (const key of Object.keys(METRICS) as MetricKey[])
      this.handles.set(METRICS[key].name, live.metrics[key]);
    this.families = new FamilyProjection(run, this);
  }

  /** @returns false for a duplicate (an event already applied) */
  apply(event: StoredEvent): boolean {
    const applied = this.families.apply(event);
    if (applied && event.type === 'RunCompleted') this.completed = true;
    return applied;
  }

  /** Takes the run's series out of prom-client and out of the reads. */
  remove(): void {
    for (const { name, labels, cell } of this.series) {
      this.handles.get(name)!.remove(labels);
      if (cell === undefined) continue;
      const written = this.written.get(name)!;
      const i = written.indexOf(cell);
      if (i >= 0) written.splice(i, 1);
    }
    this.series.length = 0;
  }

  /** The run time gauges measured on the run's timeline are read at. */
  now(): number {
    if (this.completed) return Number.POSITIVE_INFINITY;
    const { timeScale } = this.options;
    if (timeScale === undefined) return this.lastAt;
    return Math.max(this.lastAt, this.wallMs() * timeScale + this.offset);
  }

  beforeEvent(at: number): void {
    this.lastAt = Math.max(this.lastAt, at);
    // An event arrives some time after it happened: the quickest arrival estimates the timeline best.
    const { timeScale } = this.options;
    if (timeScale !== undefined) this.offset = Math.max(this.offset, at - this.wallMs() * timeScale);
  }

  scalar(metric: MetricDefinition, labels: Labels): ScalarCell {
    const handle = this.handles.get(metric.name)!;
    const cell = new ScalarSeries(
      metric.type === 'counter'
        ? { kind: 'counter', counter: handle as Counter }
        : { kind: 'gauge', gauge: handle as Gauge },
      labels,
    );
    this.track(metric, labels, cell);
    return cell;
  }

  level(metric: MetricDefinition, labels: Labels): LevelCell {
    const cell = new LevelSeries(this.handles.get(metric.name) as Gauge, labels, () => this.now());
    this.track(metric, labels, cell);
    return cell;
  }

  perMinute(metric: MetricDefinition, labels: Labels, limitPerMinute: number): PerMinuteCell {
    const cell = new StartsSeries(this.handles.get(metric.name) as Gauge, labels, limitPerMinute, () =>
      this.now(),
    );
    this.track(metric, labels, cell);
    return cell;
  }

  histogram(metric: MetricDefinition, labels: Labels): HistogramCell {
    const handle = this.handles.get(metric.name) as Histogram;
    // Every bucket at 0 from the start, as in the export, so quantiles have a baseline.
    handle.zero(labels);
    this.series.push({ name: metric.name, labels });
    return handle.labels(labels);
  }

  private track(metric: MetricDefinition, labels: Labels, cell: Written): void {
    this.written.get(metric.name)!.push(cell);
    this.series.push({ name: metric.name, labels, cell });
  }

  private wallMs(): number {
    return (this.options.wall ?? systemWallTime).nowMs();
  }
}

/** A counter's or a gauge's value, kept here and written to prom-client on a read. */
class ScalarSeries implements ScalarCell, Written {
  private value = 0;
  /** What a counter has been increased by so far (prom-client counters only go up). */
  private reported = 0;

  constructor(
    private readonly handle: { kind: 'counter'; counter: Counter } | { kind: 'gauge'; gauge: Gauge },
    private readonly labels: Labels,
  ) {
    // The series exists (at 0) before its first change, so rates have a baseline.
    if (handle.kind === 'counter') handle.counter.inc(labels, 0);
    else handle.gauge.set(labels, 0);
  }

  add(delta: number): void {
    this.value += delta;
  }

  set(value: number): void {
    this.value = value;
  }

  write(): void {
    if (this.handle.kind === 'gauge') this.handle.gauge.set(this.labels, this.value);
    else if (this.value > this.reported) {
      this.handle.counter.inc(this.labels, this.value - this.reported);
      this.reported = this.value;
    }
  }
}

/**
 * Run times (ms, never decreasing) of the last run-minute's changes, trimmed as events arrive;
 * reads at later times look without trimming, because a later event may still be a little
 * earlier than a read's estimated time.
 */
class RecentTimes {
  readonly times: number[] = [];
  head = 0;

  /** Drops what is no longer within the minute up to `at`; returns how many were dropped. */
  push(at: number, onDrop: (index: number) => void): void {
    this.times.push(at);
    while (this.times[this.head]! + MINUTE_MS <= at) onDrop(this.head++);
  }

  compact(arrays: unknown[][]): void {
    if (this.head < 4096 || this.head * 2 < this.times.length) return;
    for (const array of [this.times, ...arrays]) array.splice(0, this.head);
    this.head = 0;
  }
}

/** A queue's depth: the deepest in the run-minute up to a read, and since the previous read. */
class LevelSeries implements LevelCell, Written {
  private level = 0;
  private peakSinceRead = 0;
  /** The level before the first recent change. */
  private before = 0;
  private readonly recent = new RecentTimes();
  private readonly levels: number[] = [];

  constructor(
    private readonly handle: Gauge,
    private readonly labels: Labels,
    private readonly now: () => number,
  ) {
    handle.set(labels, 0);
  }

  set(level: number, at: number): void {
    this.level = level;
    if (level > this.peakSinceRead) this.peakSinceRead = level;
    this.levels.push(level);
    this.recent.push(at, (i) => {
      this.before = this.levels[i]!;
    });
    this.recent.compact([this.levels]);
  }

  write(): void {
    const windowStart = this.now() - MINUTE_MS;
    let before = this.before;
    let peak = this.peakSinceRead;
    const { times, head } = this.recent;
    for (let i = head; i < times.length; i++) {
      if (times[i]! <= windowStart) before = this.levels[i]!;
      else if (this.levels[i]! > peak) peak = this.levels[i]!;
    }
    this.handle.set(this.labels, Math.max(peak, before));
    this.peakSinceRead = this.level;
  }
}

/** Jobs an instance started in its busiest run-minute since the previous read, over its per-minute limit. */
class StartsSeries implements PerMinuteCell, Written {
  private readonly recent = new RecentTimes();
  /** The most starts any run-minute ending since the previous read held. */
  private busiestSinceRead = 0;

  constructor(
    private readonly handle: Gauge,
    private readonly labels: Labels,
    private readonly limitPerMinute: number,
    private readonly now: () => number,
  ) {
    handle.set(labels, 0);
  }

  count(at: number): void {
    this.recent.push(at, () => {});
    // The minute up to a start holds the most starts of any minute ending near it.
    const inMinute = this.recent.times.length - this.recent.head;
    if (inMinute > this.busiestSinceRead) this.busiestSinceRead = inMinute;
    this.recent.compact([]);
  }

  write(): void {
    const windowStart = this.now() - MINUTE_MS;
    const { times, head } = this.recent;
    let started = 0;
    for (let i = times.length - 1; i >= head && times[i]! > windowStart; i--) started++;
    this.handle.set(this.labels, Math.max(started, this.busiestSinceRead) / this.limitPerMinute);
    this.busiestSinceRead = 0;
  }
}

/**
 * A `phasebench engine`'s own metrics (SERVICE_METRICS) on `registry`, read from `stats` (the
 * worker's) at each scrape. The runs it hosts are a LiveMetrics on the same registry.
 */
export function registerEngineMetrics(registry: Registry, stats: () => EngineStats): void {
  registerConsumerMetrics(registry, () => stats().consumer);
  gaugeOf(registry, SERVICE_METRICS.runsHosted, (gauge) => gauge.set(stats().hosting.length));
  counterOf(registry, SERVICE_METRICS.runsEnded, (counter) => {
    const { runsCompleted, runsHandedOver } = stats();
    counter.inc({ outcome: 'completed' }, runsCompleted);
    counter.inc({ outcome: 'handedOver' }, runsHandedOver);
  });
}

/** A `phasebench fleet`'s own metrics (SERVICE_METRICS) on `registry`, read from `stats` at each scrape. */
export function registerFleetMetrics(registry: Registry, stats: () => FleetStats): void {
  registerConsumerMetrics(registry, () => stats().consumer);
  counterOf(registry, SERVICE_METRICS.pushesReceived, (counter) => counter.inc(stats().pushesReceived));
  counterOf(registry, SERVICE_METRICS.acknowledgementsSent, (counter) => counter.inc(stats().acksSent));
  gaugeOf(registry, SERVICE_METRICS.acknowledgementsWaiting, (gauge) => gauge.set(stats().waiting));
}

function registerConsumerMetrics(registry: Registry, counts: () => ConsumerCounts): void {
  counterOf(registry, SERVICE_METRICS.messagesHandled, (counter) => counter.inc(counts().handled));
  counterOf(registry, SERVICE_METRICS.handlerRetries, (counter) => counter.inc(counts().retried));
  counterOf(registry, SERVICE_METRICS.deadLetters, (counter) => {
    const { deadLettered } = counts();
    // Every category from the start (at 0), so rates have a baseline.
    for (const category of DEAD_LETTER_CATEGORIES) counter.inc({ category }, deadLettered[category]);
  });
}

/**
 * A counter whose values are a worker's running totals: `read` sets them, from 0, before each
 * read of the registry. The totals only grow, so what a scrape sees only grows.
 */
function counterOf(registry: Registry, metric: MetricDefinition, read: (counter: Counter) => void): void {
  new Counter({
    name: metric.name,
    help: metric.help,
    labelNames: metric.labels,
    registers: [registry],
    collect() {
      this.reset();
      read(this);
    },
  });
}

function gaugeOf(registry: Registry, metric: MetricDefinition, read: (gauge: Gauge) => void): void {
  new Gauge({
    name: metric.name,
    help: metric.help,
    labelNames: metric.labels,
    registers: [registry],
    collect() {
      read(this);
    },
  });
}

/** What `/healthz` reports: `ok` decides 200 or 503; anything else is shown as it is. */
export interface Health {
  ok: boolean;
  [detail: string]: unknown;
}

export interface MetricsServerOptions {
  /** Default 127.0.0.1: loopback unless asked otherwise (0.0.0.0 inside a container). */
  host?: string;
  /** 0 lets the system pick a free port (see MetricsServer.port). */
  port: number;
  registry: Registry;
  /** Asked on every GET /healthz. A rejection counts as not ok. */
  health: () => Health | Promise<Health>;
}

export interface MetricsServer {
  /** `http://<host>:<port>`, without a trailing slash. */
  url: string;
  port: number;
  /** How many times `/metrics` has been served so far. */
  readonly scrapes: number;
  /**
   * Resolves true once `/metrics` has been served after this call (a scrape has the values as
   * they are now), or false after `timeoutMs`: for a last scrape before closing.
   */
  scraped(timeoutMs: number): Promise<boolean>;
  /** Stops listening and ends open connections (a scraper keeps its connection alive). */
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` (the registry in its text format) and `GET /healthz` (JSON: 200 when
 * ok, 503 when not) on node:http; anything else is a 404 (or a 405 for another method) in JSON.
 * @throws PhasebenchError METRICS_SERVER_NOT_STARTED when it cannot listen (a port in use)
 */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const host = options.host ?? '127.0.0.1';
  const waiting = new Set<() => void>();
  let scrapes = 0;
  const server = createServer((request, response) => {
    void answer(options, request, response).then((served) => {
      if (!served) return;
      scrapes++;
      for (const wake of waiting) wake();
      waiting.clear();
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (cause) {
    throw new PhasebenchError(
      'METRICS_SERVER_NOT_STARTED',
      `cannot serve /metrics on ${host}:${options.port}: ${(cause as Error).message}`,
      { cause },
    );
  }
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    get scrapes() {
      return scrapes;
    },
    scraped: (timeoutMs) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(wake);
          resolve(false);
        }, timeoutMs);
        const wake = () => {
          clearTimeout(timer);
          resolve(true);
        };
        waiting.add(wake);
      }),
    close: () =>
      new Promise((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** Answers one request; resolves true when it served the metrics. */
async function answer(
  options: MetricsServerOptions,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<boolean> {
  const path = new URL(request.url ?? '/', 'http://metrics').pathname;
  const route = path === '/metrics' || path === '/healthz' ? path : null;
  if (route === null) return json(response, 404, { error: 'not found', path });
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    return json(response, 405, { error: 'method not allowed', method: request.method });
  }
  if (route === '/healthz') {
    let health: Health;
    try {
      health = await options.health();
    } catch (error) {
      health = { ok: false, error: (error as Error).message };
    }
    return json(response, health.ok ? 200 : 503, health);
  }
  try {
    const text = await options.registry.metrics();
    response.writeHead(200, { 'content-type': options.registry.contentType });
    response.end(request.method === 'HEAD' ? undefined : text);
    return request.method === 'GET';
  } catch (error) {
    return json(response, 500, { error: `cannot collect the metrics: ${(error as Error).message}` });
  }
}

function json(response: ServerResponse, status: number, body: unknown): false {
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  response.end(JSON.stringify(body));
  return false;
}
