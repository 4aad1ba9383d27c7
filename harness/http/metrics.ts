/**
 * The admin API's Prometheus metrics. Their names are defined with every other metric name in
 * harness/metrics/names.ts.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { HTTP_METRIC_NAMES } from '../metrics/names.ts';
import { COMMAND_TYPES, type CommandType } from './commands.ts';

export { HTTP_METRIC_NAMES };

/** Route label for requests no route matched, so probes of random URLs add no label values. */
export const UNMATCHED_ROUTE = 'unmatched';

/** Seconds; the admin API answers in well under a millisecond to a few hundred milliseconds. */
const DURATION_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * The admin API's metrics on one registry. Label sets are few (route patterns, methods, status
 * codes, command types), so each labelled child is looked up once and kept: resolving labels on
 * every request measured as a visible share of a request's CPU.
 */
export class HttpMetrics {
  readonly #requests: Counter<'route' | 'method' | 'status'>;
  readonly #requestDurationSeconds: Histogram<'route' | 'method'>;
  readonly #commandsAccepted: Counter<'type'>;
  readonly #requestChildren = new Map<string, Counter.Internal>();
  readonly #durationChildren = new Map<string, Histogram.Internal<'route' | 'method'>>();
  readonly #commandChildren = new Map<CommandType, Counter.Internal>();

  /** Registers the metrics on `registry`: once per registry, as names are unique there. */
  constructor(registry: Registry) {
    this.#requests = new Counter({
      name: HTTP_METRIC_NAMES.requests,
      help: 'HTTP requests answered by the phasebench admin API, by route, method and status.',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    });
    this.#requestDurationSeconds = new Histogram({
      name: HTTP_METRIC_NAMES.requestDuration,
      help: 'Time the phasebench admin API took to answer a request, in seconds.',
      labelNames: ['route', 'method'],
      buckets: DURATION_BUCKETS_SECONDS,
      registers: [registry],
    });
    this.#commandsAccepted = new Counter({
      name: HTTP_METRIC_NAMES.commandsAccepted,
      help: 'Operator commands appended to the event log as CommandAccepted, by command type.',
      labelNames: ['type'],
      registers: [registry],
    });
    // Every type shows up as 0 from the start, so rate() works before the first command of a type.
    for (const type of COMMAND_TYPES) {
      const child = this.#commandsAccepted.labels({ type });
      child.inc(0);
      this.#commandChildren.set(type, child);
    }
  }

  /** One answered request. `route` is the route pattern (or UNMATCHED_ROUTE), never the raw URL. */
  requestAnswered(route: string, method: string, status: number, seconds: number): void {
    const key = `${route} ${method} ${status}`;
    let counter = this.#requestChildren.get(key);
    if (counter === undefined) {
      counter = this.#requests.labels({ route, method, status: String(status) });
      this.#requestChildren.set(key, counter);
    }
    counter.inc();
    const durationKey = `${route} ${method}`;
    let histogram = this.#durationChildren.get(durationKey);
    if (histogram === undefined) {
      histogram = this.#requestDurationSeconds.labels({ route, method });
      this.#durationChildren.set(durationKey, histogram);
    }
    histogram.observe(seconds);
  }

  commandAccepted(type: CommandType): void {
    this.#commandChildren.get(type)!.inc();
  }
}
