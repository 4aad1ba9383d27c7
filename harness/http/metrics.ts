/**
 * The admin API's Prometheus metrics. They are defined (name, type, help, labels, buckets) with
 * every other metric in harness/metrics/names.ts (HTTP_METRICS).
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import { HTTP_METRICS } from '../metrics/names.ts';
import { COMMAND_TYPES, type CommandType } from './commands.ts';

export { HTTP_METRICS };

/** Route label for requests no route matched, so probes of random URLs add no label values. */
export const UNMATCHED_ROUTE = 'unmatched';

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
    const { requests, requestDuration, commandsAccepted } = HTTP_METRICS;
    this.#requests = new Counter({
      name: requests.name,
      help: requests.help,
      labelNames: requests.labels,
      registers: [registry],
    });
    this.#requestDurationSeconds = new Histogram({
      name: requestDuration.name,
      help: requestDuration.help,
      labelNames: requestDuration.labels,
      buckets: [...requestDuration.buckets],
      registers: [registry],
    });
    this.#commandsAccepted = new Counter({
      name: commandsAccepted.name,
      help: commandsAccepted.help,
      labelNames: commandsAccepted.labels,
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
