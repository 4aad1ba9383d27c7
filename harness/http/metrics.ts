/**
 * The admin API's Prometheus metrics, defined once. Dashboards import the names from here until
 * the project's metric names module takes them over.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { COMMAND_TYPES, type CommandType } from './commands.ts';

export const HTTP_METRIC_NAMES = {
  /** Requests answered, by route pattern, method and status code. */
  requests: 'phasebench_http_requests_total',
  /** Time from receiving a request to sending its answer, by route pattern and method. */
  requestDuration: 'phasebench_http_request_duration_seconds',
  /** Commands appended to the event log as CommandAccepted, by command type. */
  commandsAccepted: 'phasebench_commands_accepted_total',
} as const;

/** Route label for requests no route matched, so probes of random URLs add no label values. */
export const UNMATCHED_ROUTE = 'unmatched';

/** Seconds; the admin API answers in well under a millisecond to a few hundred milliseconds. */
const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export interface HttpMetrics {
  requests: Counter<'route' | 'method' | 'status'>;
  requestDurationSeconds: Histogram<'route' | 'method'>;
  commandsAccepted: Counter<'type'>;
}

/** Registers the admin API's metrics on `registry`. Once per registry: names are unique there. */
export function registerHttpMetrics(registry: Registry): HttpMetrics {
  const metrics: HttpMetrics = {
    requests: new Counter({
      name: HTTP_METRIC_NAMES.requests,
      help: 'HTTP requests answered by the phasebench admin API, by route, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    }),
    requestDurationSeconds: new Histogram({
      name: HTTP_METRIC_NAMES.requestDuration,
      help: 'Time the phasebench admin API took to answer a request, in seconds.',
      labelNames: ['route', 'method'],
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    }),
    commandsAccepted: new Counter({
      name: HTTP_METRIC_NAMES.commandsAccepted,
      help: 'Operator commands appended to the event log as CommandAccepted, by command type.',
      labelNames: ['type'],
      registers: [registry],
    }),
  };
  // Every type shows up as 0 from the start, so rate() works before the first command of a type.
  for (const type of COMMAND_TYPES) metrics.commandsAccepted.inc({ type } satisfies { type: CommandType }, 0);
  return metrics;
}
