/**
 * Every Prometheus metric phasebench exposes, defined once: the live `/metrics` endpoints
 * (prom-client), the OpenMetrics export of simulated runs (openmetrics.ts) and the Grafana
 * dashboards (harness/dashboards/) all take their names, types, help and labels from here.
 *
 * Conventions (https://prometheus.io/docs/practices/naming/): base units (`_seconds`, ratios
 * 0..1 as `_ratio`), counters end in `_total`, and no user, device or push ids as labels — a
 * label value set must stay small (plans, BES instances, push kinds, reasons).
 *
 * The BES instance label is `bes_instance`, not `instance`: Prometheus attaches its own
 * `instance` label (the scrape target) to every scraped series, and a metric's own `instance`
 * label would be renamed to `exported_instance` on scrape.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PushKind, StrandedReason } from '../domain/events.ts';

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** A label every phasebench series may carry. */
export type MetricLabel =
  | 'run'
  | 'plan'
  | 'bes_instance'
  | 'kind'
  | 'outcome'
  | 'reason'
  | 'category'
  // The HTTP admin API's labels.
  | 'route'
  | 'method'
  | 'status'
  | 'type';

export interface MetricDefinition {
  /** The name as scraped: counters include `_total`; histograms are the base of `_bucket` / `_sum` / `_count`. */
  readonly name: string;
  readonly type: MetricType;
  readonly help: string;
  readonly labels: readonly MetricLabel[];
  /** Histogram bucket upper bounds in the metric's unit; `+Inf` is implied. */
  readonly buckets?: readonly number[];
  /** OpenMetrics `# UNIT`: only when the name ends with it. */
  readonly unit?: 'seconds' | 'ratio';
}

const MINUTE = 60;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Push delivery runs from about a second (an online device, no queue) through hours (a throttled
 * queue, a device out of coverage) to days (a relay holding items up to 7 days, a re-cradle).
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  1,
  5,
  15,
  30,
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  4 * HOUR,
  8 * HOUR,
  DAY,
  3 * DAY,
  7 * DAY,
];

export const METRICS = {
  queueDepth: {
    name: 'phasebench_queue_depth_jobs',
    type: 'gauge',
    help: "Push jobs waiting in a BES instance's Policy Service queue: the deepest it got in the minute up to the sample.",
    labels: ['run', 'plan', 'bes_instance'],
  },
  domainQueueDepth: {
    name: 'phasebench_domain_queue_depth_jobs',
    type: 'gauge',
    help: 'Push jobs waiting in all Policy Service queues of the domain: the deepest it got in the minute up to the sample.',
    labels: ['run', 'plan'],
  },
  jobsDispatched: {
    name: 'phasebench_jobs_dispatched_total',
    type: 'counter',
    help: 'Throttled push jobs a Policy Service started processing (activation and resends bypass the throttle and are not counted).',
    labels: ['run', 'plan', 'bes_instance'],
  },
  throttleUtilisation: {
    name: 'phasebench_throttle_utilisation_ratio',
    type: 'gauge',
    help: 'Jobs a Policy Service started in the minute up to the sample, divided by its jobs-per-minute limit (absent when the limit is off).',
    labels: ['run', 'plan', 'bes_instance'],
    unit: 'ratio',
  },
  pushesQueued: {
    name: 'phasebench_pushes_queued_total',
    type: 'counter',
    help: 'Pushes (IT policy, service books, data sync, PIN key, activation) put in a job for a device.',
    labels: ['run', 'plan', 'kind'],
  },
  pushes: {
    name: 'phasebench_pushes_total',
    type: 'counter',
    help: 'Pushes that reached an outcome: acknowledged by the device, or expired (the server gave up).',
    labels: ['run', 'plan', 'kind', 'outcome'],
  },
  pushResends: {
    name: 'phasebench_push_resends_total',
    type: 'counter',
    help: 'Unacknowledged pushes the server sent again.',
    labels: ['run', 'plan', 'kind'],
  },
  pushDelivery: {
    name: 'phasebench_push_delivery_seconds',
    type: 'histogram',
    help: 'Push delivery latency: from the intended send time (queued) until the device acknowledged.',
    labels: ['run', 'plan', 'kind'],
    buckets: LATENCY_BUCKETS_SECONDS,
    unit: 'seconds',
  },
  userMigration: {
    name: 'phasebench_user_migration_seconds',
    type: 'histogram',
    help: "User migration time: from the move (or the change the device waits on) until the user's device converged.",
    labels: ['run', 'plan'],
    buckets: LATENCY_BUCKETS_SECONDS,
    unit: 'seconds',
  },
  convergedShare: {
    name: 'phasebench_users_converged_ratio',
    type: 'gauge',
    help: "Share of the plan's users whose device has converged (every push acknowledged).",
    labels: ['run', 'plan'],
    unit: 'ratio',
  },
  strandedUsers: {
    name: 'phasebench_stranded_users',
    type: 'gauge',
    help: 'Users whose device cannot converge for now, by reason (a stranded device may still converge later).',
    labels: ['run', 'plan', 'reason'],
  },
  currentPhase: {
    name: 'phasebench_current_phase',
    type: 'gauge',
    help: 'The number of the rollout phase started last (0 before the first).',
    labels: ['run', 'plan'],
  },
  events: {
    name: 'phasebench_events_total',
    type: 'counter',
    help: 'Events (facts) the run has emitted; its rate is events per second.',
    labels: ['run', 'plan'],
  },
} as const satisfies Record<string, MetricDefinition>;

export type MetricKey = keyof typeof METRICS;

/** The families in a fixed order: exports and dashboards list them this way. */
export const METRIC_DEFINITIONS: readonly MetricDefinition[] = Object.values(METRICS);

/**
 * The live services' own metrics (registered by harness/live/metrics.ts): what a `phasebench
 * engine` or `phasebench fleet` process has done since it started, read from its worker at each
 * scrape. No run label: which service and replica is Prometheus's `job` and `instance`. An
 * engine also exposes the METRICS families of the runs it hosts.
 */
export const SERVICE_METRICS = {
  messagesHandled: {
    name: 'phasebench_consumer_messages_handled_total',
    type: 'counter',
    help: "Valid messages the service's consumer handed to its handler, which accepted them (commands and device events for an engine, pushes for a fleet).",
    labels: [],
  },
  handlerRetries: {
    name: 'phasebench_consumer_handler_retries_total',
    type: 'counter',
    help: 'Handler attempts that failed retriably (a broker restarting) and were tried again.',
    labels: [],
  },
  deadLetters: {
    name: 'phasebench_dead_letters_total',
    type: 'counter',
    help: 'Messages the service stored on the dead-letter topic, by category (empty, oversized, notJson, unknownType, schema, handler).',
    labels: ['category'],
  },
  runsHosted: {
    name: 'phasebench_engine_hosted_runs',
    type: 'gauge',
    help: 'Live runs the engine worker hosts now.',
    labels: [],
  },
  runsEnded: {
    name: 'phasebench_engine_runs_ended_total',
    type: 'counter',
    help: "Runs the engine worker stopped hosting, by outcome: completed, or handedOver to the partition's next owner.",
    labels: ['outcome'],
  },
  pushesReceived: {
    name: 'phasebench_fleet_pushes_received_total',
    type: 'counter',
    help: 'Pushes the fleet worker received for its devices (a push sent again is received again).',
    labels: [],
  },
  acknowledgementsSent: {
    name: 'phasebench_fleet_acknowledgements_sent_total',
    type: 'counter',
    help: "Devices' acknowledgements the fleet worker sent to the device-events topic.",
    labels: [],
  },
  acknowledgementsWaiting: {
    name: 'phasebench_fleet_acknowledgements_waiting',
    type: 'gauge',
    help: "Acknowledgements waiting for their push's transfer to the device to end.",
    labels: [],
  },
} as const satisfies Record<string, MetricDefinition>;

/**
 * The HTTP admin API's own metrics (registered by harness/http/metrics.ts). `route` is the route
 * pattern (never the raw URL), so label values stay few.
 */
export const HTTP_METRICS = {
  requests: {
    name: 'phasebench_http_requests_total',
    type: 'counter',
    help: 'HTTP requests answered by the phasebench admin API, by route, method and status.',
    labels: ['route', 'method', 'status'],
  },
  requestDuration: {
    name: 'phasebench_http_request_duration_seconds',
    type: 'histogram',
    help: 'Time the phasebench admin API took to answer a request, in seconds.',
    labels: ['route', 'method'],
    // Well under a millisecond to a few hundred milliseconds.
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  },
  commandsAccepted: {
    name: 'phasebench_commands_accepted_total',
    type: 'counter',
    help: 'Operator commands appended to the event log as CommandAccepted, by command type.',
    labels: ['type'],
  },
} as const satisfies Record<string, MetricDefinition>;

export const PUSH_OUTCOMES = ['acknowledged', 'expired'] as const;
export type PushOutcome = (typeof PUSH_OUTCOMES)[number];

const strandedReasons: Record<StrandedReason, true> = {
  migrationFailed: true,
  needsCradle: true,
  srpDisabled: true,
  softwareTooOld: true,
  expired: true,
  outOfCoverage: true,
  activationFailed: true,
  pendingAtHorizon: true,
};
/** Every stranded reason, so a series exists (at 0) for each from the start. */
export const STRANDED_REASONS = Object.keys(strandedReasons) as readonly StrandedReason[];

/** Re-exported so label values of `kind` are named in one place for dashboards. */
export type { PushKind };

/**
 * prom-client's default process and Node.js metrics the dashboards chart for live services.
 * They are defined by prom-client (collectDefaultMetrics), listed here so dashboards import them
 * like every other name; names.test.ts checks a registry really exposes each.
 */
export const PROCESS_METRICS = {
  cpuSeconds: 'process_cpu_seconds_total',
  residentMemoryBytes: 'process_resident_memory_bytes',
  heapUsedBytes: 'nodejs_heap_size_used_bytes',
  eventLoopLagP99Seconds: 'nodejs_eventloop_lag_p99_seconds',
} as const;

/** Every series name a query may use: counters and gauges as named, histograms with their suffixes. */
export function seriesNames(): string[] {
  return [...METRIC_DEFINITIONS.flatMap(seriesOf), ...Object.values(PROCESS_METRICS)];
}

/**
 * Every series name of the live services' own families (SERVICE_METRICS, HTTP_METRICS) and
 * of PROCESS_METRICS: what the services dashboard may query.
 */
export function serviceSeriesNames(): string[] {
  const families: MetricDefinition[] = [...Object.values(SERVICE_METRICS), ...Object.values(HTTP_METRICS)];
  return [...families.flatMap(seriesOf), ...Object.values(PROCESS_METRICS)];
}

function seriesOf(metric: { name: string; type: MetricType }): string[] {
  return metric.type === 'histogram'
    ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`]
    : [metric.name];
}

type LabelsOf<D> = D extends { labels: readonly (infer L extends string)[] } ? L : never;
type HandleOf<D> = D extends { type: 'counter' }
  ? Counter<LabelsOf<D>>
  : D extends { type: 'gauge' }
    ? Gauge<LabelsOf<D>>
    : Histogram<LabelsOf<D>>;

/** Typed prom-client instruments, one per family of METRICS. */
export type MetricHandles = { [K in MetricKey]: HandleOf<(typeof METRICS)[K]> };

export interface LiveRegistry {
  registry: Registry;
  metrics: MetricHandles;
}

/**
 * A prom-client Registry with every phasebench family and (by default) prom-client's process
 * and Node.js metrics, for a live service's `/metrics`; `promtool check metrics` finds nothing
 * to report in it.
 * @param options.defaultLabels labels added to every series, e.g. `{ service: 'engine' }`
 * @param options.processMetrics default true
 */
export function buildRegistry(
  options: { defaultLabels?: Record<string, string>; processMetrics?: boolean } = {},
): LiveRegistry {
  const registry = (options.processMetrics ?? true) ? processRegistry() : new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  const metrics = {} as Record<MetricKey, unknown>;
  for (const [key, definition] of Object.entries(METRICS) as Array<[MetricKey, MetricDefinition]>) {
    const config = {
      name: definition.name,
      help: definition.help,
      labelNames: definition.labels,
      registers: [registry],
    };
    metrics[key] =
      definition.type === 'counter'
        ? new Counter(config)
        : definition.type === 'gauge'
          ? new Gauge(config)
          : new Histogram({ ...config, buckets: [...(definition.buckets ?? [])] });
  }
  return { registry, metrics: metrics as MetricHandles };
}

/**
 * A prom-client Registry with prom-client's process and Node.js metrics (PROCESS_METRICS among
 * them) and nothing else yet, for any phasebench `/metrics`: `promtool check metrics` finds
 * nothing to report in it.
 */
export function processRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named like counters, which `promtool check metrics` reports; the same counts stay
  // exposed by type (sum(nodejs_active_handles) is the total).
  for (const name of MISNAMED_PROCESS_GAUGES) registry.removeSingleMetric(name);
  return registry;
}

/** prom-client's default gauges whose names end in `_total`. */
const MISNAMED_PROCESS_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
] as const;
