/**
 * Traces built from a plan's log, checked against that log: one root span per sampled user
 * move, every push span a child of its user's migration span, and every span starting and
 * ending at its events' times (virtual ms after the run's start epoch).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanStatusCode } from '@opentelemetry/api';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventOf, StoredEvent } from '../domain/events.ts';
import { runPlan } from '../sim/run.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { exportRunTraces, sampleRatioFromEnv } from './otlp.ts';
import { TRACE_ATTRIBUTES as A, isUserSampled, MIGRATION_SPAN, toHrTime, traceRun } from './trace-run.ts';

const START = Date.parse('2026-03-01T08:00:00Z');

const scenario = tinyScenario({
  name: 'traces',
  seed: 11,
  instances: 3,
  horizon: '2d',
  fleet: quietFleet(90, {
    softwareVersions: { '4.5': 0.8, '3.8': 0.2 },
    coverage: { alwaysOnlineShare: 0.5 },
    problemAccountShare: 0.05,
  }),
  throttle: { inProcessJobs: 5, jobsPerMinutePerService: 10 },
  plans: { collapse: { kind: 'collapse', from: ['BES01B', 'BES01C'], into: 'BES01A', stopWindow: '10m' } },
});
const { events } = runPlan(scenario, 'collapse');

function ofType<T extends StoredEvent['type']>(type: T): EventOf<T>[] {
  return events.filter((e): e is StoredEvent & EventOf<T> => e.type === type);
}

function ms(time: [number, number]): number {
  return time[0] * 1000 + time[1] / 1e6;
}

async function spansOf(options: { sampleRatio?: number; timeScale?: number; input?: StoredEvent[] } = {}) {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    sampler: new AlwaysOnSampler(),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const result = await traceRun(options.input ?? events, {
    tracer: provider.getTracer('test'),
    startEpochMs: START,
    sampleRatio: options.sampleRatio,
    timeScale: options.timeScale,
  });
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return { result, spans };
}

const isMigration = (s: ReadableSpan) => s.name === MIGRATION_SPAN;

describe('traceRun', () => {
  it('makes one root span per user move and hangs every push span under its user’s migration span', async () => {
    const { result, spans } = await spansOf();
    const moves = ofType('UserMoveRequested');
    const migrations = spans.filter(isMigration);
    const pushSpans = spans.filter((s) => !isMigration(s));
    expect(result).toEqual({
      migrations: moves.length,
      sampledMigrations: moves.length,
      pushSpans: pushSpans.length,
    });
    expect(migrations).toHaveLength(moves.length);
    const movePushes = ofType('JobQueued')
      .filter((e) => e.data.cause === 'move')
      .flatMap((e) => e.data.pushes);
    expect(pushSpans).toHaveLength(movePushes.length);
    expect(pushSpans.length).toBeGreaterThan(moves.length);

    const migrationOf = new Map(migrations.map((s) => [s.attributes[A.device] as string, s]));
    for (const span of migrations) expect(span.parentSpanContext).toBeUndefined();
    const traces = new Set(migrations.map((s) => s.spanContext().traceId));
    expect(traces.size).toBe(migrations.length);
    for (const push of pushSpans) {
      const parent = migrationOf.get(push.attributes[A.device] as string)!;
      expect(push.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
      expect(push.spanContext().traceId).toBe(parent.spanContext().traceId);
    }
  });

  it('times every span by its events: start epoch + virtual ms', async () => {
    const { spans } = await spansOf();
    const moveAt = new Map(ofType('UserMoveRequested').map((e) => [e.data.device, e.at]));
    const converged = ofType('DeviceConverged');
    expect(converged.length).toBeGreaterThan(0);
    const byDevice = new Map(spans.filter(isMigration).map((s) => [s.attributes[A.device] as string, s]));
    for (const e of converged) {
      const span = byDevice.get(e.data.device)!;
      expect(span.attributes[A.outcome]).toBe('converged');
      expect(span.startTime).toEqual(toHrTime(START + moveAt.get(e.data.device)!));
      expect(span.endTime).toEqual(toHrTime(START + e.at));
      expect(ms(span.duration)).toBeCloseTo(e.at - moveAt.get(e.data.device)!, 6);
      expect(ms(span.duration)).toBeCloseTo(e.at - e.data.since, 6);
    }
    // Stranded for good: the span ends when the device was last found stranded, as an error.
    const stranded = spans.filter((s) => s.attributes[A.outcome] === 'stranded');
    expect(stranded.length).toBeGreaterThan(0);
    const lastStranded = new Map(ofType('DeviceStranded').map((e) => [e.data.device, e]));
    for (const span of stranded) {
      const e = lastStranded.get(span.attributes[A.device] as string)!;
      expect(span.endTime).toEqual(toHrTime(START + e.at));
      expect(span.attributes[A.strandedReason]).toBe(e.data.reason);
      expect(span.status.code).toBe(SpanStatusCode.ERROR);
    }

    const pushById = new Map(
      spans.filter((s) => !isMigration(s)).map((s) => [s.attributes[A.push] as number, s]),
    );
    const acks = ofType('PushAcknowledged');
    expect(acks.length).toBeGreaterThan(0);
    for (const e of acks) {
      const span = pushById.get(e.data.push);
      if (!span) continue; // a push of an IT policy job, not of a move
      expect(span.name).toBe(`push ${e.data.kind}`);
      expect(span.startTime).toEqual(toHrTime(START + e.data.queuedAt));
      expect(ms(span.duration)).toBeCloseTo(e.at - e.data.queuedAt, 6);
      expect(span.attributes[A.outcome]).toBe('acknowledged');
    }
    const dispatched = [...pushById.values()].filter((s) => s.events.some((ev) => ev.name === 'dispatched'));
    expect(dispatched.length).toBe(pushById.size);
  });

  it('samples users by a hash of their id: the same users every time, about the ratio, none at 0', async () => {
    const users = ofType('UserMoveRequested').map((e) => e.data.user);
    const first = await spansOf({ sampleRatio: 0.3 });
    const second = await spansOf({ sampleRatio: 0.3 });
    const traced = (spans: ReadableSpan[]) =>
      spans
        .filter(isMigration)
        .map((s) => s.attributes[A.user] as string)
        .sort();
    expect(traced(first.spans)).toEqual(traced(second.spans));
    expect(traced(first.spans)).toEqual(users.filter((u) => isUserSampled(u, 0.3)).sort());
    expect(first.result.sampledMigrations).toBeGreaterThan(users.length * 0.1);
    expect(first.result.sampledMigrations).toBeLessThan(users.length * 0.5);
    // Only traced users' pushes have spans, each under its migration.
    const tracedDevices = new Set(first.spans.filter(isMigration).map((s) => s.attributes[A.device]));
    for (const span of first.spans.filter((s) => !isMigration(s)))
      expect(tracedDevices).toContain(span.attributes[A.device]);
    // Nested: whoever is traced at 0.1 is traced at 0.3.
    for (const u of users.filter((u) => isUserSampled(u, 0.1))) expect(isUserSampled(u, 0.3)).toBe(true);
    expect((await spansOf({ sampleRatio: 0 })).spans).toEqual([]);
  });

  it('places live events at wall time: start + at / timeScale; a redelivered event changes nothing', async () => {
    const doubled = events.flatMap((e, i) => (i % 5 === 0 ? [e, e] : [e]));
    const { spans } = await spansOf({ timeScale: 60, input: doubled });
    const { spans: plain } = await spansOf({ timeScale: 60 });
    expect(spans.length).toBe(plain.length);
    const e = ofType('DeviceConverged')[0]!;
    const span = spans.find((s) => isMigration(s) && s.attributes[A.device] === e.data.device)!;
    expect(span.endTime).toEqual(toHrTime(START + e.at / 60));
    expect(span.events.filter((ev) => ev.name === 'moved')).toHaveLength(1);
  });
});

describe('OTLP export configured by OTEL_* variables', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('reads the share of users to trace from a traceidratio sampler', () => {
    expect(sampleRatioFromEnv({})).toBe(1);
    expect(sampleRatioFromEnv({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' })).toBe(
      0.25,
    );
    expect(
      sampleRatioFromEnv({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '7' }),
    ).toBe(1);
    expect(sampleRatioFromEnv({ OTEL_TRACES_SAMPLER: 'always_off' })).toBe(0);
  });

  it('sends every span over OTLP/HTTP to the endpoint and service name the environment names', async () => {
    const received: Array<{ path: string; body: OtlpTraces }> = [];
    const server = createServer((req, res) => {
      let text = '';
      req.on('data', (chunk: Buffer) => {
        text += chunk.toString();
      });
      req.on('end', () => {
        received.push({ path: req.url ?? '', body: JSON.parse(text) as OtlpTraces });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
      process.env.OTEL_SERVICE_NAME = 'phasebench-test';
      process.env.OTEL_TRACES_SAMPLER = 'traceidratio';
      process.env.OTEL_TRACES_SAMPLER_ARG = '0.5';
      const result = await exportRunTraces(events, { startEpochMs: START });
      expect(result.sampledMigrations).toBeLessThan(result.migrations);
      const spans = received.flatMap((r) =>
        r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)),
      );
      expect(received.every((r) => r.path === '/v1/traces')).toBe(true);
      expect(spans).toHaveLength(result.sampledMigrations + result.pushSpans);
      const services = received.flatMap((r) =>
        r.body.resourceSpans.map(
          (rs) => rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue,
        ),
      );
      expect(new Set(services)).toEqual(new Set(['phasebench-test']));
      const first = ofType('UserMoveRequested').find((e) => isUserSampled(e.data.user, 0.5))!;
      const span = spans.find(
        (s) =>
          s.name === MIGRATION_SPAN &&
          s.attributes.some((a) => a.key === A.user && a.value.stringValue === first.data.user),
      )!;
      expect(BigInt(span.startTimeUnixNano)).toBe(BigInt(START + first.at) * 1_000_000n);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

interface OtlpTraces {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> };
    scopeSpans: Array<{
      spans: Array<{
        name: string;
        startTimeUnixNano: string;
        attributes: Array<{ key: string; value: { stringValue?: string } }>;
      }>;
    }>;
  }>;
}
