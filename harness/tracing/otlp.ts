/**
 * Where traces go outside tests: an OTLP/HTTP exporter configured, as every OpenTelemetry SDK
 * is, by the standard environment variables — OTEL_EXPORTER_OTLP_ENDPOINT (or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; default http://localhost:4318), OTEL_EXPORTER_OTLP_HEADERS,
 * OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG
 * (a `traceidratio` sampler's ratio becomes the share of users traced; `always_off` traces none).
 *
 * Simulated runs: `exportRunTraces` (for `phasebench run --trace`). Live services:
 * `startLiveTracing` (sdk-node) in `phasebench engine` / `fleet`.
 */
import { type Tracer, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import {
  detectResources,
  envDetector,
  type Resource,
  resourceFromAttributes,
} from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { StoredEvent } from '../domain/events.ts';
import { type TraceRunResult, traceRun } from './trace-run.ts';

export const TRACER_NAME = 'phasebench';

/** The share of users to trace from OTEL_TRACES_SAMPLER(_ARG); 1 when they say nothing about a ratio. */
export function sampleRatioFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const sampler = (env.OTEL_TRACES_SAMPLER ?? '').trim().toLowerCase();
  if (sampler === 'always_off' || sampler === 'parentbased_always_off') return 0;
  if (sampler === 'traceidratio' || sampler === 'parentbased_traceidratio') {
    const ratio = Number(env.OTEL_TRACES_SAMPLER_ARG ?? '1');
    return Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
  }
  return 1;
}

/** service.name `phasebench` (or `serviceName`), overridden by OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES. */
export function tracingResource(serviceName = 'phasebench'): Resource {
  return resourceFromAttributes({ [ATTR_SERVICE_NAME]: serviceName }).merge(
    detectResources({ detectors: [envDetector] }),
  );
}

export interface ExportRunTracesOptions {
  /** Wall time (epoch ms) of the run's virtual 0. */
  startEpochMs: number;
  /** Default sampleRatioFromEnv(). */
  sampleRatio?: number;
  /** Default an OTLP/HTTP exporter configured from OTEL_* variables. */
  exporter?: SpanExporter;
}

/**
 * Traces a simulated plan's events and sends them through OTLP; resolves when every span has
 * been exported (or the exporter gave up).
 */
export async function exportRunTraces(
  events: Iterable<StoredEvent> | AsyncIterable<StoredEvent>,
  options: ExportRunTracesOptions,
): Promise<TraceRunResult> {
  const provider = new BasicTracerProvider({
    resource: tracingResource(),
    // Users are sampled by traceRun (a hash of the user id); every span it starts is kept.
    sampler: new AlwaysOnSampler(),
    spanProcessors: [
      new BatchSpanProcessor(options.exporter ?? new OTLPTraceExporter(), { maxQueueSize: 65_536 }),
    ],
  });
  try {
    return await traceRun(events, {
      tracer: provider.getTracer(TRACER_NAME),
      startEpochMs: options.startEpochMs,
      sampleRatio: options.sampleRatio ?? sampleRatioFromEnv(),
    });
  } finally {
    await provider.forceFlush();
    await provider.shutdown();
  }
}

export interface LiveTracing {
  tracer: Tracer;
  shutdown: () => Promise<void>;
}

/**
 * Tracing for a live service process (`phasebench engine`, `fleet`, the driver): the
 * OpenTelemetry Node SDK with an OTLP/HTTP exporter from OTEL_* variables, registered globally.
 * Live spans use wall time (traceRun with the run's wall start and its time scale).
 */
export function startLiveTracing(serviceName: string): LiveTracing {
  const sdk = new NodeSDK({
    resource: tracingResource(serviceName),
    traceExporter: new OTLPTraceExporter(),
    instrumentations: [],
  });
  sdk.start();
  // sdk.start() registered its provider globally.
  return { tracer: trace.getTracer(TRACER_NAME), shutdown: () => sdk.shutdown() };
}
