/**
 * The rules that turn a plan's events into the metric families of names.ts, written once for
 * both places that expose them: the OpenMetrics export of simulated runs (openmetrics.ts, one
 * sample per virtual minute) and the live `/metrics` of harness/live/metrics.ts (prom-client,
 * scraped on the wall clock). This decides which series exist from the start (at 0, so rates
 * and panels have a baseline), what each event adds to which series, and every queue's level;
 * a FamilySink decides how values become samples.
 *
 * The events go through a PlanProjection first, which drops duplicates (at-least-once
 * transports) and counts the plan's users for the converged share.
 */
import type { PushKind, StoredEvent, StrandedReason } from '../domain/events.ts';
import { METRICS, type MetricDefinition, type PushOutcome, STRANDED_REASONS } from './names.ts';
import { PlanProjection } from './projection.ts';

export type Labels = Readonly<Record<string, string>>;

/** A counter's or a gauge's series. Counters only ever `add` a positive amount. */
export interface ScalarCell {
  add(delta: number): void;
  set(value: number): void;
}

/** A level that changes at run times (ms); its series carries the deepest it got in the minute up to each sample. */
export interface LevelCell {
  set(level: number, at: number): void;
}

/** Things that happen at run times (ms); its series carries how many happened in the minute up to each sample, over a per-minute limit. */
export interface PerMinuteCell {
  count(at: number): void;
}

/** A histogram's series: observations in the metric's unit. */
export interface HistogramCell {
  observe(value: number): void;
}

/**
 * Where a FamilyProjection's series go. Each method is called once per series, in the order the
 * series come to exist; `labels` are the series' full labels (run and plan included).
 */
export interface FamilySink {
  /** Called with each new (not duplicate) event's run time before the event is applied. */
  beforeEvent(at: number): void;
  scalar(metric: MetricDefinition, labels: Labels): ScalarCell;
  level(metric: MetricDefinition, labels: Labels): LevelCell;
  perMinute(metric: MetricDefinition, labels: Labels, limitPerMinute: number): PerMinuteCell;
  histogram(metric: MetricDefinition, labels: Labels): HistogramCell;
}

interface InstanceSeries {
  queue: LevelCell;
  jobsDispatched: ScalarCell;
  /** Absent when the per-service limit is off. */
  utilisation: PerMinuteCell | null;
  level: number;
}

interface KindSeries {
  queued: ScalarCell;
  acknowledged: ScalarCell;
  expired: ScalarCell;
  resends: ScalarCell;
  delivery: HistogramCell;
}

interface DeviceState {
  stranded: StrandedReason | null;
  converged: boolean;
}

/** Folds one plan's events, in log order, into a sink's series. */
export class FamilyProjection {
  /** The plan projection over the same events: duplicates, the plan's users, summary.json's numbers. */
  readonly projection = new PlanProjection();
  private plan = '';
  private throttleLimit: number | null = null;

  private readonly instances = new Map<string, InstanceSeries>();
  private readonly kinds = new Map<PushKind, KindSeries>();
  private readonly stranded = new Map<StrandedReason, ScalarCell>();
  private domainQueue: LevelCell | null = null;
  private domainLevel = 0;
  private convergedShare: ScalarCell | null = null;
  private currentPhase: ScalarCell | null = null;
  private userMigration: HistogramCell | null = null;
  private events: ScalarCell | null = null;

  private readonly jobs = new Map<number, { instance: string; bypass: boolean }>();
  private readonly pushKinds = new Map<number, PushKind>();
  private readonly activationInstance = new Map<string, string>();
  private readonly devices = new Map<string, DeviceState>();
  private converged = 0;
  /** The converged and in-scope users of the share the sink was last given. */
  private shareConverged = 0;
  private shareUsers = 0;

  /** @param run the `run` label of every series */
  constructor(
    private readonly run: string,
    private readonly sink: FamilySink,
  ) {}

  /** Users whose device has converged so far. */
  get usersConverged(): number {
    return this.converged;
  }

  /** Applies one event; returns false for a duplicate, which changes nothing. */
  apply(e: StoredEvent): boolean {
    if (!this.projection.apply(e)) return false;
    // The plan labels every series, including any the sink creates before this event.
    if (e.type === 'RunStarted') this.plan = e.data.plan;
    this.sink.beforeEvent(e.at);
    switch (e.type) {
      case 'RunStarted':
        this.throttleLimit = e.data.throttle.jobsPerMinutePerService;
        this.domainQueue = this.sink.level(METRICS.domainQueueDepth, this.labels({}));
        this.convergedShare = this.sink.scalar(METRICS.convergedShare, this.labels({}));
        this.currentPhase = this.sink.scalar(METRICS.currentPhase, this.labels({}));
        for (const reason of STRANDED_REASONS)
          this.stranded.set(reason, this.sink.scalar(METRICS.strandedUsers, this.labels({ reason })));
        this.userMigration = this.sink.histogram(METRICS.userMigration, this.labels({}));
        break;
      case 'FleetProvisioned':
        for (const instance of e.data.instances) this.instance(instance.id);
        break;
      case 'InstanceProvisioned':
        this.instance(e.data.instance);
        break;
      case 'PhaseStarted':
        this.currentPhase?.set(e.data.phase);
        break;
      case 'ActivationRequested':
        this.activationInstance.set(e.data.device, e.data.instance);
        this.addQueue(e.data.instance, 1, e.at);
        break;
      case 'ActivationStarted':
        this.addQueue(e.data.instance, -1, e.at);
        break;
      case 'ActivationFailed': {
        const instance = this.activationInstance.get(e.data.device);
        if (instance) this.addQueue(instance, -1, e.at);
        break;
      }
      case 'JobQueued':
        this.jobs.set(e.data.job, { instance: e.data.instance, bypass: e.data.bypassThrottle });
        for (const push of e.data.pushes) {
          this.pushKinds.set(push.push, push.kind);
          this.kind(push.kind).queued.add(1);
        }
        if (!e.data.bypassThrottle) this.addQueue(e.data.instance, 1, e.at);
        break;
      case 'JobDispatched': {
        const job = this.jobs.get(e.data.job);
        if (!job || job.bypass) break;
        const instance = this.addQueue(job.instance, -1, e.at);
        instance.jobsDispatched.add(1);
        instance.utilisation?.count(e.at);
        break;
      }
      case 'PushResent': {
        const kind = this.pushKinds.get(e.data.push);
        if (kind) this.kind(kind).resends.add(1);
        break;
      }
      case 'PushAcknowledged': {
        const kind = this.kind(e.data.kind);
        kind.acknowledged.add(1);
        kind.delivery.observe(Math.max(1, Math.round(e.at - e.data.queuedAt)) / 1000);
        break;
      }
      case 'PushExpired':
        this.kind(e.data.kind).expired.add(1);
        break;
      case 'DeviceConverged': {
        const device = this.device(e.data.device);
        this.userMigration?.observe(Math.max(1, Math.round(e.at - e.data.since)) / 1000);
        if (!device.converged) {
          if (device.stranded !== null) this.stranded.get(device.stranded)?.add(-1);
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
          if (device.stranded !== null) this.stranded.get(device.stranded)?.add(-1);
          this.stranded.get(e.data.reason)?.add(1);
        }
        device.stranded = e.data.reason;
        break;
      }
      default:
        break;
    }
    // The plan's users so far: the share dips when a phase brings more users than have converged.
    const users = this.projection.usersInScope;
    if (this.convergedShare && (users !== this.shareUsers || this.converged !== this.shareConverged)) {
      this.shareUsers = users;
      this.shareConverged = this.converged;
      this.convergedShare.set(users ? this.converged / users : 0);
    }
    // After the switch, so RunStarted has set the plan label first.
    this.events ??= this.sink.scalar(METRICS.events, this.labels({}));
    this.events.add(1);
    return true;
  }

  private instance(id: string): InstanceSeries {
    let series = this.instances.get(id);
    if (!series) {
      const labels = this.labels({ bes_instance: id });
      series = {
        queue: this.sink.level(METRICS.queueDepth, labels),
        jobsDispatched: this.sink.scalar(METRICS.jobsDispatched, labels),
        utilisation:
          this.throttleLimit === null
            ? null
            : this.sink.perMinute(METRICS.throttleUtilisation, labels, this.throttleLimit),
        level: 0,
      };
      this.instances.set(id, series);
    }
    return series;
  }

  private kind(kind: PushKind): KindSeries {
    let series = this.kinds.get(kind);
    if (!series) {
      const labels = this.labels({ kind });
      const outcome = (o: PushOutcome) => this.sink.scalar(METRICS.pushes, this.labels({ kind, outcome: o }));
      // In the order the series are created: exports list a family's series that way.
      const queued = this.sink.scalar(METRICS.pushesQueued, labels);
      const acknowledged = outcome('acknowledged');
      const expired = outcome('expired');
      series = {
        queued,
        acknowledged,
        expired,
        resends: this.sink.scalar(METRICS.pushResends, labels),
        delivery: this.sink.histogram(METRICS.pushDelivery, labels),
      };
      this.kinds.set(kind, series);
    }
    return series;
  }

  private addQueue(id: string, delta: number, at: number): InstanceSeries {
    const instance = this.instance(id);
    instance.level += delta;
    instance.queue.set(instance.level, at);
    this.domainLevel += delta;
    this.domainQueue?.set(this.domainLevel, at);
    return instance;
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
}
