/**
 * The plan projection: folds a run's stored events into the metrics of `summary.json`.
 * The same code runs while a simulation emits events, over a log file in `phasebench replay`,
 * and over `phasebench.events` live, so the numbers are identical wherever they are computed.
 * Duplicate deliveries (at-least-once transports) are ignored by event id.
 */
import * as hdr from 'hdr-histogram-js';
import type { StoredEvent, StrandedReason } from '../domain/events.ts';
import type { LatencyStats, PhaseSummary, PlanMetrics } from './summary.ts';

const MINUTE_MS = 60_000;
/** Timelines longer than this are downsampled so summaries stay small. */
const MAX_TIMELINE_POINTS = 1_500;

type Histogram = ReturnType<typeof hdr.build>;

function newHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3 });
}

export function latencyStats(h: Histogram): LatencyStats {
  const count = h.totalCount;
  return {
    count,
    minMs: count ? h.minNonZeroValue : 0,
    p50Ms: count ? h.getValueAtPercentile(50) : 0,
    p95Ms: count ? h.getValueAtPercentile(95) : 0,
    p99Ms: count ? h.getValueAtPercentile(99) : 0,
    maxMs: count ? h.maxValue : 0,
    meanMs: count ? Math.round(h.mean) : 0,
    histogram: hdr.encodeIntoCompressedBase64(h),
  };
}

/** Starts within any (t - 60 s, t]: the same window the throttle guarantees. */
class SlidingCount {
  private readonly times: number[] = [];
  private head = 0;
  max = 0;

  add(at: number): void {
    this.times.push(at);
    while (this.times[this.head]! + MINUTE_MS <= at) this.head++;
    const inWindow = this.times.length - this.head;
    if (inWindow > this.max) this.max = inWindow;
    if (this.head > 8192) {
      this.times.splice(0, this.head);
      this.head = 0;
    }
  }
}

interface PhaseTrack {
  summary: PhaseSummary;
  histogram: Histogram;
}

interface DeviceTrack {
  phase: number;
  outOfServiceSince: number | null;
  firstSettledAt: number | null;
  stranded: StrandedReason | null;
  converged: boolean;
  inScope: boolean;
}

export class PlanProjection {
  private plan = '';
  private planKind = '';
  /** Seqs already applied, one bit each (a projection folds one run's log). */
  private seen = new Uint8Array(1 << 16);
  private events = 0;
  private planStartedAt: number | null = null;
  private endedAt = 0;
  private pendingAtEnd = false;
  private lastServerWorkAt: number | null = null;

  private readonly delivery = newHistogram();
  private readonly migration = newHistogram();
  private readonly devices = new Map<string, DeviceTrack>();
  private scope = 0;
  private converged = 0;

  private readonly jobs = new Map<number, { instance: string; bypass: boolean }>();
  private readonly queue = new Map<string, number>();
  private readonly peakQueue = new Map<string, number>();
  private domainQueue = 0;
  private peakDomainQueue = 0;

  private readonly jobsByMinute = new Map<number, number>();
  private readonly jobsByInstanceMinute = new Map<string, Map<number, number>>();
  private readonly slidingDomain = new SlidingCount();
  private readonly slidingByInstance = new Map<string, SlidingCount>();
  private dispatched = 0;
  private firstDispatchAt: number | null = null;
  private lastDispatchAt = 0;

  private pushes = { queued: 0, acknowledged: 0, expired: 0, pending: 0, resent: 0 };
  private readonly srpConflicts: PlanMetrics['srpConflicts'] = [];
  private cutOff = 0;

  private servers = { initial: 0, live: 0, peak: 0, added: 0 };
  private readonly initialSrp = new Set<string>();
  private readonly liveBySrp = new Map<string, number>();
  private readonly holdersBySrp = new Map<string, number>();
  private srpInUse = 0;
  private srpPeak = 0;
  private readonly srpEverUsed = new Set<string>();

  private userMsWithoutService = 0;
  private readonly phases: PhaseTrack[] = [];
  private readonly instanceOfActivation = new Map<string, string>();

  private nextSampleAt = 0;
  private readonly timelineQueue: number[] = [];
  private readonly timelineConverged: number[] = [];

  /** Users the plan has reached so far (moved, cut off, sent a policy, activating): the converged share's denominator. */
  get usersInScope(): number {
    return this.scope;
  }

  /** Applies one event; returns false when it was a duplicate (already applied). */
  apply(e: StoredEvent): boolean {
    if (this.alreadyApplied(e.seq)) return false;
    this.events++;
    this.sampleUntil(e.at);
    switch (e.type) {
      case 'RunStarted':
        this.plan = e.data.plan;
        this.planKind = e.data.planKind;
        break;
      case 'FleetProvisioned':
        for (const inst of e.data.instances) {
          this.servers.initial++;
          this.initialSrp.add(inst.srpId);
          this.changeLive(inst.srpId, 1);
          this.changeHolders(inst.srpId, inst.users);
        }
        this.servers.live = this.servers.peak = this.servers.initial;
        break;
      case 'InstanceProvisioned':
        if (e.data.newServer) this.servers.added++;
        this.servers.live++;
        this.servers.peak = Math.max(this.servers.peak, this.servers.live);
        this.changeLive(e.data.srpId, 1);
        break;
      case 'InstanceDecommissioned':
        this.servers.live--;
        this.changeLive(e.data.srpId, -1);
        break;
      case 'ServiceStopped':
      case 'ItPolicyChanged':
        this.markPlanStart(e.at);
        break;
      case 'PhaseStarted':
        this.markPlanStart(e.at);
        this.phases.push({
          summary: {
            phase: e.data.phase,
            users: e.data.users,
            startedAt: e.at,
            convergedAt: null,
            convergenceMs: null,
            converged: 0,
            stranded: 0,
            peakQueue: this.domainQueue,
            p95DeliveryMs: null,
          },
          histogram: newHistogram(),
        });
        break;
      case 'PhaseConverged': {
        const phase = this.phases[e.data.phase - 1];
        if (phase) {
          phase.summary.convergedAt = e.at;
          phase.summary.convergenceMs = e.at - phase.summary.startedAt;
          // A commanded phase's size is known only once it has converged.
          phase.summary.users = e.data.users;
          phase.summary.converged = e.data.converged;
          phase.summary.stranded = e.data.stranded;
        }
        break;
      }
      case 'UserMoveRequested': {
        const device = this.device(e.data.device);
        this.enterScope(device, e.data.phase);
        device.outOfServiceSince = e.at;
        break;
      }
      case 'UserMoveFailed': {
        this.lastServerWorkAt = e.at;
        const device = this.device(e.data.device);
        // A collapse retires the old instance, so a user left behind stays without service;
        // a phased move leaves the old instance running for them.
        if (this.planKind !== 'collapse' && this.planKind !== 'bigBang') device.outOfServiceSince = null;
        break;
      }
      case 'ActivationRequested': {
        this.markPlanStart(e.at);
        const device = this.device(e.data.device);
        this.enterScope(device, this.phases.length);
        device.outOfServiceSince = e.at;
        this.addQueue(e.data.instance, 1);
        this.instanceOfActivation.set(e.data.device, e.data.instance);
        break;
      }
      case 'ActivationStarted':
        this.addQueue(e.data.instance, -1);
        break;
      case 'ActivationFailed': {
        this.lastServerWorkAt = e.at;
        const instance = this.instanceOfActivation.get(e.data.device);
        if (instance) this.addQueue(instance, -1);
        this.settle(e.data.device, e.at);
        break;
      }
      case 'JobQueued': {
        this.jobs.set(e.data.job, { instance: e.data.instance, bypass: e.data.bypassThrottle });
        this.pushes.queued += e.data.pushes.length;
        if (e.data.cause === 'itPolicy') this.enterScope(this.device(e.data.device), this.phases.length);
        if (!e.data.bypassThrottle) this.addQueue(e.data.instance, 1);
        break;
      }
      case 'JobDispatched': {
        const job = this.jobs.get(e.data.job);
        if (!job || job.bypass) break;
        this.addQueue(job.instance, -1);
        this.countDispatch(job.instance, e.at);
        break;
      }
      case 'JobCompleted':
        this.lastServerWorkAt = e.at;
        break;
      case 'PushResent':
        this.pushes.resent++;
        break;
      case 'PushAcknowledged': {
        this.pushes.acknowledged++;
        const latency = Math.max(1, Math.round(e.at - e.data.queuedAt));
        this.delivery.recordValue(latency);
        const phase = this.phases[this.device(e.data.device).phase - 1];
        phase?.histogram.recordValue(latency);
        break;
      }
      case 'PushExpired':
        this.pushes.expired++;
        this.settle(e.data.device, e.at);
        break;
      case 'DeviceSrpChanged':
        this.changeHolders(e.data.from, -1);
        this.changeHolders(e.data.to, 1);
        break;
      case 'SrpConflictDetected':
        this.srpConflicts.push({
          srpId: e.data.srpId,
          instance: e.data.instance,
          at: e.at,
          devicesHolding: e.data.devicesHolding,
        });
        break;
      case 'DeviceCutOff': {
        this.cutOff++;
        const device = this.device(e.data.device);
        // A device the plan cut off is one the plan affected, even if the plan never moved it.
        this.enterScope(device, device.phase);
        device.outOfServiceSince ??= e.at;
        break;
      }
      case 'DeviceConverged': {
        const device = this.device(e.data.device);
        this.migration.recordValue(Math.max(1, Math.round(e.at - e.data.since)));
        if (device.outOfServiceSince !== null) {
          this.userMsWithoutService += e.at - device.outOfServiceSince;
          device.outOfServiceSince = null;
        }
        if (!device.converged) {
          device.converged = true;
          this.converged++;
        }
        device.stranded = null;
        this.settle(e.data.device, e.at);
        break;
      }
      case 'DeviceStranded': {
        const device = this.device(e.data.device);
        device.stranded = e.data.reason;
        if (e.data.reason === 'pendingAtHorizon') this.pendingAtEnd = true;
        else this.settle(e.data.device, e.at);
        break;
      }
      case 'RunCompleted':
        this.endedAt = e.at;
        this.pushes.pending = e.data.pendingPushes;
        break;
      default:
        break;
    }
    return true;
  }

  result(logSha256: string): PlanMetrics {
    let userMs = this.userMsWithoutService;
    const byReason: Partial<Record<StrandedReason, number>> = {};
    let strandedTotal = 0;
    let lastSettled = this.planStartedAt ?? 0;
    for (const device of this.devices.values()) {
      if (device.outOfServiceSince !== null) userMs += this.endedAt - device.outOfServiceSince;
      if (device.stranded !== null && !device.converged) {
        byReason[device.stranded] = (byReason[device.stranded] ?? 0) + 1;
        strandedTotal++;
      }
      if (device.firstSettledAt !== null && device.firstSettledAt > lastSettled)
        lastSettled = device.firstSettledAt;
    }
    const start = this.planStartedAt ?? 0;
    const convergenceMs = this.pendingAtEnd ? this.endedAt - start : lastSettled - start;
    const makespanMs = this.lastServerWorkAt === null ? 0 : this.lastServerWorkAt - start;
    const phases = this.phases.map((p) => ({
      ...p.summary,
      p95DeliveryMs: p.histogram.totalCount ? p.histogram.getValueAtPercentile(95) : null,
    }));
    const peakByInstance: Record<string, number> = {};
    for (const [instance, minutes] of this.jobsByInstanceMinute)
      peakByInstance[instance] = Math.max(...minutes.values());
    const slidingByInstance: Record<string, number> = {};
    for (const [instance, sliding] of this.slidingByInstance) slidingByInstance[instance] = sliding.max;
    const activeMinutes =
      this.firstDispatchAt === null
        ? 0
        : Math.floor(this.lastDispatchAt / MINUTE_MS) - Math.floor(this.firstDispatchAt / MINUTE_MS) + 1;
    return {
      plan: this.plan,
      planKind: this.planKind,
      makespanMs: Math.round(makespanMs),
      convergenceMs: Math.round(convergenceMs),
      users: this.scope,
      usersConverged: this.converged,
      convergedShare: this.scope ? this.converged / this.scope : 0,
      pushDelivery: latencyStats(this.delivery),
      userMigration: latencyStats(this.migration),
      peakQueue: { domain: this.peakDomainQueue, byInstance: Object.fromEntries(this.peakQueue) },
      jobsPerMinute: {
        peakDomain: this.jobsByMinute.size ? Math.max(...this.jobsByMinute.values()) : 0,
        meanDomain: activeMinutes ? round2(this.dispatched / activeMinutes) : 0,
        peakByInstance,
      },
      maxJobsInAnyMinute: { domain: this.slidingDomain.max, byInstance: slidingByInstance },
      pushes: { ...this.pushes },
      stranded: { total: strandedTotal, byReason },
      srpConflicts: this.srpConflicts,
      devicesCutOff: this.cutOff,
      servers: { initial: this.servers.initial, peak: this.servers.peak, added: this.servers.added },
      srpCredentials: {
        initial: this.initialSrp.size,
        peak: this.srpPeak,
        added: [...this.srpEverUsed].filter((s) => !this.initialSrp.has(s)).length,
      },
      userMinutesWithoutService: Math.round(userMs / MINUTE_MS),
      phases,
      events: this.events,
      timeline: this.timeline(),
      logSha256,
    };
  }

  private timeline(): PlanMetrics['timeline'] {
    const n = this.timelineQueue.length;
    const step = Math.max(1, Math.ceil(n / MAX_TIMELINE_POINTS));
    const minute: number[] = [];
    const queue: number[] = [];
    const convergedShare: number[] = [];
    for (let i = 0; i < n; i += step) {
      let peak = 0;
      for (let j = i; j < Math.min(n, i + step); j++) peak = Math.max(peak, this.timelineQueue[j]!);
      minute.push(i);
      queue.push(peak);
      const last = this.timelineConverged[Math.min(n, i + step) - 1]!;
      convergedShare.push(this.scope ? round4(last / this.scope) : 0);
    }
    return { minute, queue, convergedShare };
  }

  private alreadyApplied(seq: number): boolean {
    const byte = seq >>> 3;
    if (byte >= this.seen.length) {
      const grown = new Uint8Array(Math.max(this.seen.length * 2, byte + 1));
      grown.set(this.seen);
      this.seen = grown;
    }
    const bit = 1 << (seq & 7);
    if (this.seen[byte]! & bit) return true;
    this.seen[byte]! |= bit;
    return false;
  }

  /** Records the state as it stood at each whole minute before `at`. */
  private sampleUntil(at: number): void {
    while (this.nextSampleAt <= at) {
      this.timelineQueue.push(this.domainQueue);
      this.timelineConverged.push(this.converged);
      this.nextSampleAt += MINUTE_MS;
    }
  }

  private markPlanStart(at: number): void {
    this.planStartedAt ??= at;
  }

  private device(pin: string): DeviceTrack {
    let device = this.devices.get(pin);
    if (!device) {
      device = {
        phase: 0,
        outOfServiceSince: null,
        firstSettledAt: null,
        stranded: null,
        converged: false,
        inScope: false,
      };
      this.devices.set(pin, device);
    }
    return device;
  }

  private enterScope(device: DeviceTrack, phase: number): void {
    if (!device.inScope) {
      device.inScope = true;
      this.scope++;
    }
    device.phase = phase;
  }

  private settle(pin: string, at: number): void {
    const device = this.device(pin);
    device.firstSettledAt ??= at;
  }

  private addQueue(instance: string, delta: number): void {
    const depth = (this.queue.get(instance) ?? 0) + delta;
    this.queue.set(instance, depth);
    if (depth > (this.peakQueue.get(instance) ?? 0)) this.peakQueue.set(instance, depth);
    this.domainQueue += delta;
    if (this.domainQueue > this.peakDomainQueue) this.peakDomainQueue = this.domainQueue;
    const phase = this.phases[this.phases.length - 1];
    if (phase && this.domainQueue > phase.summary.peakQueue) phase.summary.peakQueue = this.domainQueue;
  }

  private countDispatch(instance: string, at: number): void {
    const minute = Math.floor(at / MINUTE_MS);
    this.jobsByMinute.set(minute, (this.jobsByMinute.get(minute) ?? 0) + 1);
    let byMinute = this.jobsByInstanceMinute.get(instance);
    if (!byMinute) {
      byMinute = new Map();
      this.jobsByInstanceMinute.set(instance, byMinute);
    }
    byMinute.set(minute, (byMinute.get(minute) ?? 0) + 1);
    this.slidingDomain.add(at);
    let sliding = this.slidingByInstance.get(instance);
    if (!sliding) {
      sliding = new SlidingCount();
      this.slidingByInstance.set(instance, sliding);
    }
    sliding.add(at);
    this.dispatched++;
    this.firstDispatchAt ??= at;
    this.lastDispatchAt = at;
  }

  private changeLive(srpId: string, delta: number): void {
    const before = this.srpActive(srpId);
    this.liveBySrp.set(srpId, (this.liveBySrp.get(srpId) ?? 0) + delta);
    this.srpTransition(srpId, before);
  }

  private changeHolders(srpId: string, delta: number): void {
    const before = this.srpActive(srpId);
    this.holdersBySrp.set(srpId, (this.holdersBySrp.get(srpId) ?? 0) + delta);
    this.srpTransition(srpId, before);
  }

  /** An SRP id is in use while a live server uses it or any device still holds it (quiet use). */
  private srpActive(srpId: string): boolean {
    return (this.liveBySrp.get(srpId) ?? 0) > 0 || (this.holdersBySrp.get(srpId) ?? 0) > 0;
  }

  private srpTransition(srpId: string, before: boolean): void {
    const after = this.srpActive(srpId);
    if (after) this.srpEverUsed.add(srpId);
    if (after === before) return;
    this.srpInUse += after ? 1 : -1;
    if (this.srpInUse > this.srpPeak) this.srpPeak = this.srpInUse;
  }
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function round4(x: number): number {
  return Math.round(x * 10_000) / 10_000;
}
