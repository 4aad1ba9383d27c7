/**
 * OpenTelemetry traces from a plan's events: one span per sampled user migration (from
 * UserMoveRequested until the device converged, or was found stranded), with a child span per
 * push of the move (from JobQueued until PushAcknowledged or PushExpired). Dispatch, delivery,
 * relay holds, retries, resends and cradle waits are span events.
 *
 * Spans are built after the fact from the log, so their times are the events' times: run start
 * epoch + virtual ms in simulation, or, live, start + (scaled) ms / timeScale, i.e. wall time.
 * Sampling hashes the user id (no Math.random): the same users are traced in every run and
 * every plan, so their traces compare side by side.
 */
import { context, type HrTime, type Span, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { StoredEvent } from '../domain/events.ts';

export interface TraceRunOptions {
  /** Where spans go: a tracer of a provider the caller owns (and flushes). */
  tracer: Tracer;
  /** Wall time (epoch ms) of the run's time 0. */
  startEpochMs: number;
  /**
   * Live runs: events' `at` is wall time scaled by this factor, so wall = start + at / timeScale.
   * Default 1 (simulation: `at` is virtual ms and spans sit at start + virtual ms).
   */
  timeScale?: number;
  /** Share of user migrations traced, 0..1, chosen by hashing the user id. Default 1. */
  sampleRatio?: number;
}

export interface TraceRunResult {
  /** User moves in the log. */
  migrations: number;
  /** User moves traced (migration spans). */
  sampledMigrations: number;
  pushSpans: number;
}

/** Attribute keys; `phasebench.` namespaced as OpenTelemetry asks for custom attributes. */
export const TRACE_ATTRIBUTES = {
  run: 'phasebench.run',
  plan: 'phasebench.plan',
  user: 'phasebench.user',
  device: 'phasebench.device',
  from: 'phasebench.from',
  to: 'phasebench.to',
  phase: 'phasebench.phase',
  outcome: 'phasebench.outcome',
  strandedReason: 'phasebench.stranded_reason',
  push: 'phasebench.push.id',
  pushKind: 'phasebench.push.kind',
  pushBytes: 'phasebench.push.bytes',
  via: 'phasebench.push.via',
  job: 'phasebench.job',
  instance: 'phasebench.bes_instance',
} as const;

export const MIGRATION_SPAN = 'user migration';

/** A push span's name: `push itPolicy`, `push serviceBooks`, ... */
export function pushSpanName(kind: string): string {
  return `push ${kind}`;
}

/**
 * Whether a user's migration is traced at `ratio`: FNV-1a (32-bit) of the id, as a fraction of
 * 2^32, below the ratio. Deterministic, and nested: a user traced at 0.1 is traced at 0.5.
 */
export function isUserSampled(user: string, ratio: number): boolean {
  if (ratio >= 1) return true;
  if (ratio <= 0) return false;
  let hash = 0x811c9dc5;
  for (let i = 0; i < user.length; i++) {
    hash ^= user.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash / 2 ** 32 < ratio;
}

interface Migration {
  span: Span;
  strandedAt: number | null;
  strandedReason: string | null;
}

/** Builds the spans of one plan's events (in log order); every span is ended when it returns. */
export async function traceRun(
  events: Iterable<StoredEvent> | AsyncIterable<StoredEvent>,
  options: TraceRunOptions,
): Promise<TraceRunResult> {
  const { tracer, startEpochMs } = options;
  const timeScale = options.timeScale ?? 1;
  const ratio = options.sampleRatio ?? 1;
  const at = (ms: number): HrTime => toHrTime(startEpochMs + ms / timeScale);

  const seen = new Set<string>();
  const migrations = new Map<string, Migration>();
  const pushes = new Map<number, Span>();
  const jobPushes = new Map<number, number[]>();
  const result: TraceRunResult = { migrations: 0, sampledMigrations: 0, pushSpans: 0 };
  let plan = '';
  let lastAt = 0;

  for await (const e of events) {
    // At-least-once transports may deliver an event twice; it happened once.
    if (seen.has(e.id)) continue;
    seen.add(e.id);
    lastAt = Math.max(lastAt, e.at);
    switch (e.type) {
      case 'RunStarted':
        plan = e.data.plan;
        break;
      case 'UserMoveRequested': {
        result.migrations++;
        if (!isUserSampled(e.data.user, ratio)) break;
        result.sampledMigrations++;
        const span = tracer.startSpan(
          MIGRATION_SPAN,
          {
            root: true,
            startTime: at(e.at),
            attributes: {
              [TRACE_ATTRIBUTES.run]: e.run,
              [TRACE_ATTRIBUTES.plan]: plan,
              [TRACE_ATTRIBUTES.user]: e.data.user,
              [TRACE_ATTRIBUTES.device]: e.data.device,
              [TRACE_ATTRIBUTES.from]: e.data.from,
              [TRACE_ATTRIBUTES.to]: e.data.to,
              [TRACE_ATTRIBUTES.phase]: e.data.phase,
            },
          },
          context.active(),
        );
        migrations.set(e.data.device, { span, strandedAt: null, strandedReason: null });
        break;
      }
      case 'UserMoved':
        migrations.get(e.data.device)?.span.addEvent('moved', at(e.at));
        break;
      case 'UserMoveFailed':
        migrations.get(e.data.device)?.span.addEvent('move failed', { reason: e.data.reason }, at(e.at));
        break;
      case 'DeviceCutOff':
        migrations.get(e.data.device)?.span.addEvent('cut off', { srp_id: e.data.srpId }, at(e.at));
        break;
      case 'JobQueued': {
        const migration = migrations.get(e.data.device);
        if (!migration || e.data.cause !== 'move') break;
        const parent = trace.setSpan(context.active(), migration.span);
        const ids: number[] = [];
        for (const push of e.data.pushes) {
          const span = tracer.startSpan(
            pushSpanName(push.kind),
            {
              startTime: at(e.at),
              attributes: {
                [TRACE_ATTRIBUTES.push]: push.push,
                [TRACE_ATTRIBUTES.pushKind]: push.kind,
                [TRACE_ATTRIBUTES.pushBytes]: push.bytes,
                [TRACE_ATTRIBUTES.job]: e.data.job,
                [TRACE_ATTRIBUTES.instance]: e.data.instance,
                [TRACE_ATTRIBUTES.device]: e.data.device,
              },
            },
            parent,
          );
          pushes.set(push.push, span);
          ids.push(push.push);
          result.pushSpans++;
        }
        jobPushes.set(e.data.job, ids);
        break;
      }
      case 'JobDispatched':
        for (const push of jobPushes.get(e.data.job) ?? [])
          pushes.get(push)?.addEvent('dispatched', { instance: e.data.instance }, at(e.at));
        jobPushes.delete(e.data.job);
        break;
      case 'PushHeldAtRelay':
        pushes.get(e.data.push)?.addEvent('held at relay', { held_items: e.data.heldItems }, at(e.at));
        break;
      case 'PushRetryScheduled':
        pushes.get(e.data.push)?.addEvent('retry scheduled', { reason: e.data.reason }, at(e.at));
        break;
      case 'PushResent':
        pushes.get(e.data.push)?.addEvent('resent', { attempt: e.data.attempt }, at(e.at));
        break;
      case 'PushAwaitingCradle':
        pushes.get(e.data.push)?.addEvent('awaiting cradle', at(e.at));
        break;
      case 'PushDelivered':
        pushes.get(e.data.push)?.addEvent('delivered', at(e.at));
        break;
      case 'PushAcknowledged': {
        const span = pushes.get(e.data.push);
        if (!span) break;
        span.setAttributes({
          [TRACE_ATTRIBUTES.outcome]: 'acknowledged',
          [TRACE_ATTRIBUTES.via]: e.data.via,
        });
        span.end(at(e.at));
        pushes.delete(e.data.push);
        break;
      }
      case 'PushExpired': {
        const span = pushes.get(e.data.push);
        if (!span) break;
        span.setAttribute(TRACE_ATTRIBUTES.outcome, 'expired');
        span.setStatus({ code: SpanStatusCode.ERROR, message: 'expired: the server gave up' });
        span.end(at(e.at));
        pushes.delete(e.data.push);
        break;
      }
      case 'DeviceStranded': {
        const migration = migrations.get(e.data.device);
        if (!migration) break;
        migration.span.addEvent('stranded', { reason: e.data.reason }, at(e.at));
        migration.strandedAt = e.at;
        migration.strandedReason = e.data.reason;
        break;
      }
      case 'DeviceConverged': {
        const migration = migrations.get(e.data.device);
        if (!migration) break;
        migration.span.setAttribute(TRACE_ATTRIBUTES.outcome, 'converged');
        migration.span.end(at(e.at));
        migrations.delete(e.data.device);
        break;
      }
      default:
        break;
    }
  }

  // What the log leaves open: pushes still pending, and migrations that ended stranded (at the
  // last time they were found stranded) or are still under way at the end of the log.
  for (const span of pushes.values()) {
    span.setAttribute(TRACE_ATTRIBUTES.outcome, 'pending');
    span.end(at(lastAt));
  }
  for (const migration of migrations.values()) {
    const { span, strandedAt, strandedReason } = migration;
    if (strandedAt !== null) {
      span.setAttributes({
        [TRACE_ATTRIBUTES.outcome]: 'stranded',
        [TRACE_ATTRIBUTES.strandedReason]: strandedReason ?? '',
      });
      span.setStatus({ code: SpanStatusCode.ERROR, message: `stranded: ${strandedReason}` });
      span.end(at(strandedAt));
    } else {
      span.setAttribute(TRACE_ATTRIBUTES.outcome, 'pending');
      span.end(at(lastAt));
    }
  }
  return result;
}

/** Epoch ms as OpenTelemetry HrTime. A plain number would be misread as a performance.now() offset when it lies before the process started. */
export function toHrTime(epochMs: number): HrTime {
  let seconds = Math.floor(epochMs / 1000);
  let nanos = Math.round((epochMs - seconds * 1000) * 1e6);
  if (nanos >= 1e9) {
    seconds++;
    nanos -= 1e9;
  }
  return [seconds, nanos];
}
