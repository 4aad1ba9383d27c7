/**
 * The committed dashboards and provisioning files are what the generator makes; their PromQL
 * names only metrics defined in harness/metrics/names.ts, every metric family has a panel, and
 * every query runs — and finds data — on a simulated run backfilled into a real Prometheus.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { backfillRun, LocalPrometheus } from '../metrics/backfill.ts';
import {
  HTTP_METRICS,
  METRIC_DEFINITIONS,
  METRICS,
  type MetricDefinition,
  PROCESS_METRICS,
  SERVICE_METRICS,
  seriesNames,
  serviceSeriesNames,
} from '../metrics/names.ts';
import { runScenario } from '../run/scenario-run.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import {
  compareDashboard,
  generatedFiles,
  PROMETHEUS,
  REPO_ROOT,
  rolloutDashboard,
  servicesDashboard,
} from './build.ts';
import {
  committedDashboards,
  dashboardKind,
  interpolate,
  metricNamesIn,
  queriesOf,
  regexEscape,
  variableQueries,
} from './queries.ts';

/** The run dashboards: a run's families, picked by run, plan and BES instance. */
const dashboards = [rolloutDashboard(), compareDashboard()];
const services = servicesDashboard();

/** Every query and variable selector of a dashboard names only `known` series, and at least one. */
function expectOnlyKnownNames(dashboard: ReturnType<typeof servicesDashboard>, known: Set<string>): void {
  for (const q of queriesOf(dashboard)) {
    const names = metricNamesIn(q.expr);
    expect(names.length, `${q.where}: ${q.expr}`).toBeGreaterThan(0);
    for (const name of names) expect(known, `${q.dashboard} / ${q.where}: ${q.expr}`).toContain(name);
  }
  for (const query of variableQueries(dashboard)) {
    const selector = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
    expect(selector, query).toBeDefined();
    for (const name of metricNamesIn(selector!)) expect(known, query).toContain(name);
  }
}

describe('generated dashboards', () => {
  it('are committed exactly as the generator makes them (npm run dashboards)', () => {
    for (const [path, text] of generatedFiles())
      expect(readFileSync(join(REPO_ROOT, path), 'utf8'), path).toBe(text);
  });

  it('name only metrics defined in names.ts, and chart every metric family', () => {
    const known = new Set(seriesNames());
    expect(dashboards.flatMap(queriesOf).length).toBeGreaterThan(20);
    for (const dashboard of dashboards) expectOnlyKnownNames(dashboard, known);
    const rollout = queriesOf(rolloutDashboard())
      .map((q) => q.expr)
      .join('\n');
    for (const metric of METRIC_DEFINITIONS) expect(rollout, metric.name).toContain(metric.name);
    for (const name of Object.values(PROCESS_METRICS)) expect(rollout).toContain(name);
  });

  it('the services dashboard charts every service, admin API and process family, per target, and only those', () => {
    expectOnlyKnownNames(services, new Set(serviceSeriesNames()));
    // A run family there would mean the wrong dashboard: runs are picked by run, not by job.
    const runNames = new Set(METRIC_DEFINITIONS.map((m) => m.name));
    const queries = queriesOf(services);
    for (const q of queries)
      for (const name of metricNamesIn(q.expr))
        expect(runNames.has(name.replace(/_(bucket|sum|count)$/, '')), q.expr).toBe(false);
    /** The panels whose queries select `name` (a histogram by its buckets). */
    const chartedBy = (name: string) =>
      queries.filter((q) => metricNamesIn(q.expr).some((n) => n === name || n === `${name}_bucket`));
    const serviceFamilies: MetricDefinition[] = [
      ...Object.values(SERVICE_METRICS),
      ...Object.values(HTTP_METRICS),
    ];
    for (const { name } of serviceFamilies) {
      const charted = chartedBy(name);
      expect(charted.length, name).toBeGreaterThan(0);
      // Per scrape target: which service and replica is Prometheus's job and instance.
      for (const q of charted) {
        expect(q.expr, q.where).toMatch(/by \(job, instance\b/);
        expect(q.expr, q.where).toContain('job=~"$job",instance=~"$instance"');
      }
    }
    // Rates for counters, current values for gauges, quantiles for histograms.
    for (const metric of serviceFamilies)
      for (const q of chartedBy(metric.name))
        if (metric.type === 'counter') expect(q.expr, metric.name).toContain(`rate(${metric.name}{`);
        else if (metric.type === 'histogram')
          expect(q.expr, metric.name).toMatch(/^histogram_quantile\(0\.\d+, /);
        else expect(q.expr, metric.name).not.toMatch(/rate\(/);
    for (const name of Object.values(PROCESS_METRICS)) {
      const charted = chartedBy(name);
      expect(charted.length, name).toBeGreaterThan(0);
      for (const q of charted) expect(q.expr, q.where).toMatch(/^(sum|max) by \(job\) /);
    }
  });

  it('the names check can fail: a run family is not a service name', () => {
    const known = new Set(serviceSeriesNames());
    expect(known.has(METRICS.events.name)).toBe(false);
    expect(known).toContain(`${HTTP_METRICS.requestDuration.name}_bucket`);
    expect(known).toContain(SERVICE_METRICS.deadLetters.name);
  });

  it('writes a selected value as Grafana does: a PromQL string holding a regex that matches only the value', () => {
    for (const value of ['127.0.0.1:9464', 'plan+b(2)|x', 'back\\slash', 'flagship-10k/phased/s1/live-2']) {
      // PromQL's double-quoted strings unescape as JSON's do for these characters.
      const regex = new RegExp(`^(?:${JSON.parse(`"${regexEscape(value)}"`)})$`);
      expect(regex.test(value), value).toBe(true);
      expect(regex.test(value.replace(/[.+|\\]/g, 'x')) && /[.+|\\]/.test(value), value).toBe(false);
    }
  });

  it('catches a name that is not defined', () => {
    expect(
      metricNamesIn('sum by (plan, le) (rate(phasebench_typo_total{run=~"$run"}[$__rate_interval]))'),
    ).toEqual(['phasebench_typo_total']);
    expect(
      metricNamesIn('histogram_quantile(0.95, sum by (plan, le) (increase(a_bucket{x="y"}[$__range])))'),
    ).toEqual(['a_bucket']);
  });

  it('run dashboards have run, plan and BES instance variables and phase annotations; the services dashboard job and instance; all on the provisioned datasource', () => {
    for (const dashboard of dashboards) {
      expect(dashboardKind(dashboard)).toBe('run');
      expect((dashboard.templating?.list ?? []).map((v) => v.name)).toEqual(['run', 'plan', 'bes_instance']);
      expect(dashboard.annotations?.list?.map((a) => a.name)).toContain('Phase starts');
    }
    expect(dashboardKind(services)).toBe('services');
    expect(services.title).toBe('phasebench / services');
    const variables = services.templating?.list ?? [];
    expect(variables.map((v) => v.name)).toEqual(['job', 'instance']);
    for (const v of variables) expect(v).toMatchObject({ multi: true, includeAll: true, allValue: '.*' });
    // Phases belong to runs; the services dashboard has only Grafana's built-in annotation.
    expect(queriesOf(services).map((q) => q.where)).not.toContain('Phase starts');
    for (const dashboard of [...dashboards, services])
      for (const panel of (dashboard.panels ?? []) as Array<{ type: string; datasource?: unknown }>)
        if (panel.type !== 'row') expect(panel.datasource).toEqual(PROMETHEUS);
    const datasources = parse(
      readFileSync(join(REPO_ROOT, 'deploy/grafana/provisioning/datasources/phasebench.yaml'), 'utf8'),
    ) as { datasources: Array<{ uid: string; type: string }> };
    expect(datasources.datasources).toContainEqual(
      expect.objectContaining({ uid: PROMETHEUS.uid, type: 'prometheus' }),
    );
  });

  it('are all provisioned: Grafana loads every dashboards/*.json from the folder docker-compose.yml mounts', () => {
    expect(committedDashboards(REPO_ROOT, 'run').map((d) => d.file)).toEqual([
      'phasebench-compare.json',
      'phasebench-rollout.json',
    ]);
    expect(committedDashboards(REPO_ROOT, 'services').map((d) => d.file)).toEqual([
      'phasebench-services.json',
    ]);
    const provider = parse(
      readFileSync(join(REPO_ROOT, 'deploy/grafana/provisioning/dashboards/phasebench.yaml'), 'utf8'),
    ) as { providers: Array<{ type: string; options: { path: string } }> };
    expect(provider.providers).toHaveLength(1);
    expect(provider.providers[0]!.type).toBe('file');
    const compose = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
    expect(compose).toContain(`- ./dashboards:${provider.providers[0]!.options.path}:ro`);
    expect(compose).toContain(
      '- ./deploy/grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards:ro',
    );
  });
});

describe('dashboard queries on a backfilled run in a real Prometheus', () => {
  const root = mkdtempSync(join(tmpdir(), 'phasebench-dashboards-'));
  const runDir = join(root, 'dash-run');
  let prometheus: LocalPrometheus | undefined;
  let firstS = 0;
  let lastS = 0;

  beforeAll(async () => {
    const scenario = tinyScenario({
      name: 'dashboards',
      seed: 2,
      instances: 2,
      horizon: '6h',
      fleet: quietFleet(80, {
        softwareVersions: { '4.5': 0.8, '3.8': 0.2 },
        coverage: { alwaysOnlineShare: 0.5 },
      }),
      throttle: { inProcessJobs: 5, jobsPerMinutePerService: 10 },
      plans: {
        phased: { kind: 'phased', into: { newInstances: { srpIdBase: 30 } }, size: 20, every: '5m' },
      },
    });
    await runScenario(scenario, { outDir: runDir });
    const tsdb = join(root, 'tsdb');
    const result = await backfillRun(runDir, { tsdb, now: new Date() });
    firstS = result.firstSampleMs / 1000;
    lastS = result.lastSampleMs / 1000;
    prometheus = new LocalPrometheus({ port: await LocalPrometheus.freePort(), tsdb });
    await prometheus.up();
  });
  afterAll(async () => {
    await prometheus?.down();
    rmSync(root, { recursive: true, force: true });
  });

  /** Grafana's substitutions for one run, all plans and instances, the whole run as the range. */
  function substitute(expr: string): string {
    return interpolate(expr, {
      run: 'dash-run',
      plan: '.*',
      bes_instance: '.*',
      __rate_interval: '4m',
      __range: `${lastS - firstS + 60}s`,
    });
  }

  it('runs every panel and annotation query and finds data for every phasebench metric', async () => {
    const live = new Set<string>(Object.values(PROCESS_METRICS));
    for (const q of dashboards.flatMap(queriesOf)) {
      const expr = substitute(q.expr);
      const result = q.instant
        ? await prometheus!.query(expr, lastS)
        : await prometheus!.queryRange(expr, firstS, lastS);
      // Process metrics exist only for live services, which a backfilled run has none of.
      if (metricNamesIn(q.expr).some((n) => live.has(n))) continue;
      expect(result.length, `${q.dashboard} / ${q.where}: ${expr}`).toBeGreaterThan(0);
    }
    for (const dashboard of dashboards)
      for (const query of variableQueries(dashboard)) {
        const [, selector, label] = /^label_values\((.*),\s*(\w+)\)$/.exec(query)!;
        const values = await prometheus!.query(`count by (${label}) (${substitute(selector!)})`, lastS);
        expect(values.length, query).toBeGreaterThan(0);
      }
  });
});
