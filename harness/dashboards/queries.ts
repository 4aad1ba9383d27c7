/**
 * The PromQL inside the generated dashboards, for the tests that run it against a real
 * Prometheus: on a backfilled simulated run (build.test.ts), on a live run
 * (harness/live/prometheus-live.test.ts) and on the live services that ran one
 * (harness/cli/services-prometheus.test.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Dashboard } from '@grafana/grafana-foundation-sdk/dashboard';

export interface DashboardQuery {
  /** The dashboard's uid. */
  dashboard: string;
  /** The panel's title, or the annotation's name. */
  where: string;
  expr: string;
  /** An instant query (a bar gauge's value at the end of the range), else a range query. */
  instant: boolean;
}

interface PanelJson {
  title?: string;
  targets?: Array<{ expr?: string; instant?: boolean }>;
  /** A collapsed row holds its panels. */
  panels?: PanelJson[];
}

/** Every PromQL expression of a dashboard's panels (rows included) and annotations. */
export function queriesOf(dashboard: Dashboard): DashboardQuery[] {
  const found: DashboardQuery[] = [];
  const uid = dashboard.uid ?? '';
  const visit = (panels: readonly PanelJson[]): void => {
    for (const panel of panels) {
      for (const target of panel.targets ?? [])
        if (target.expr)
          found.push({
            dashboard: uid,
            where: panel.title ?? '',
            expr: target.expr,
            instant: !!target.instant,
          });
      visit(panel.panels ?? []);
    }
  };
  visit((dashboard.panels ?? []) as PanelJson[]);
  for (const annotation of dashboard.annotations?.list ?? [])
    if (annotation.expr)
      found.push({ dashboard: uid, where: annotation.name, expr: annotation.expr, instant: false });
  return found;
}

/** The template variables' queries, in order (`label_values(<selector>, <label>)`). */
export function variableQueries(dashboard: Dashboard): string[] {
  return (dashboard.templating?.list ?? []).map((v) => String(v.query));
}

/**
 * What a dashboard charts: the families of runs, picked by a `run` variable (`run`: rollout,
 * compare), or the live services' own, picked by Prometheus's `job` (`services`). The
 * generator tags each dashboard with its kind.
 */
export type DashboardKind = 'run' | 'services';

export function dashboardKind(dashboard: Dashboard): DashboardKind {
  return dashboard.tags?.includes('services') ? 'services' : 'run';
}

/**
 * The dashboards of one kind as committed in `<root>/dashboards/*.json`, by file name. The run
 * dashboards by default: a live run's Prometheus checks those; the services dashboard needs the
 * services scraped (harness/cli/services-prometheus.test.ts).
 */
export function committedDashboards(
  root: string,
  kind: DashboardKind = 'run',
): Array<{ file: string; dashboard: Dashboard }> {
  const folder = join(root, 'dashboards');
  return readdirSync(folder)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ file, dashboard: JSON.parse(readFileSync(join(folder, file), 'utf8')) as Dashboard }))
    .filter(({ dashboard }) => dashboardKind(dashboard) === kind);
}

/**
 * An expression with Grafana's variables (`$run`, `$__rate_interval`, …) replaced by `values`
 * (keys without the `$`), as Grafana sends it to Prometheus.
 * @throws Error naming a variable `values` has no value for
 */
export function interpolate(expr: string, values: Readonly<Record<string, string>>): string {
  return expr.replace(/\$(\w+)/g, (_, name: string) => {
    const value = values[name];
    if (value === undefined) throw new Error(`no value for $${name} in ${expr}`);
    return value;
  });
}

/**
 * A value as Grafana's Prometheus datasource writes a selected value into a `=~"…"` matcher: a
 * regex matching only itself, its backslashes doubled again for the PromQL string around it
 * (`127.0.0.1:9464` becomes `127\\.0\\.0\\.1:9464` in the query text, the regex `127\.0\.0\.1:9464`).
 */
export function regexEscape(value: string): string {
  return value.replace(/\\/g, '\\\\\\\\').replace(/[\^$*+?.()|[\]{}]/g, '\\\\$&');
}

const PROMQL_WORDS = new Set([
  'sum',
  'max',
  'min',
  'avg',
  'count',
  'rate',
  'increase',
  'histogram_quantile',
  'max_over_time',
  'last_over_time',
  'changes',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
]);

/** The metric names an expression selects: identifiers outside strings, matchers, ranges and groupings that are not PromQL words. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  return (bare.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((id) => !PROMQL_WORDS.has(id));
}
