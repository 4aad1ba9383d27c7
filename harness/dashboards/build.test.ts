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
import { METRIC_DEFINITIONS, PROCESS_METRICS, seriesNames } from '../metrics/names.ts';
import { runScenario } from '../run/scenario-run.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';
import { compareDashboard, generatedFiles, PROMETHEUS, REPO_ROOT, rolloutDashboard } from './build.ts';
import { interpolate, metricNamesIn, queriesOf, variableQueries } from './queries.ts';

const dashboards = [rolloutDashboard(), compareDashboard()];

describe('generated dashboards', () => {
  it('are committed exactly as the generator makes them (npm run dashboards)', () => {
    for (const [path, text] of generatedFiles())
      expect(readFileSync(join(REPO_ROOT, path), 'utf8'), path).toBe(text);
  });

  it('name only metrics defined in names.ts, and chart every metric family', () => {
    const known = new Set(seriesNames());
    const queries = dashboards.flatMap(queriesOf);
    expect(queries.length).toBeGreaterThan(20);
    for (const q of queries) {
      const names = metricNamesIn(q.expr);
      expect(names.length, `${q.where}: ${q.expr}`).toBeGreaterThan(0);
      for (const name of names) expect(known, `${q.dashboard} / ${q.where}: ${q.expr}`).toContain(name);
    }
    for (const dashboard of dashboards)
      for (const query of variableQueries(dashboard)) {
        const selector = /^label_values\((.*),\s*\w+\)$/.exec(query)?.[1];
        expect(selector, query).toBeDefined();
        for (const name of metricNamesIn(selector!)) expect(known).toContain(name);
      }
    const rollout = queriesOf(rolloutDashboard())
      .map((q) => q.expr)
      .join('\n');
    for (const metric of METRIC_DEFINITIONS) expect(rollout, metric.name).toContain(metric.name);
    for (const name of Object.values(PROCESS_METRICS)) expect(rollout).toContain(name);
  });

  it('catches a name that is not defined', () => {
    expect(
      metricNamesIn('sum by (plan, le) (rate(phasebench_typo_total{run=~"$run"}[$__rate_interval]))'),
    ).toEqual(['phasebench_typo_total']);
    expect(
      metricNamesIn('histogram_quantile(0.95, sum by (plan, le) (increase(a_bucket{x="y"}[$__range])))'),
    ).toEqual(['a_bucket']);
  });

  it('have run, plan and BES instance variables and phase annotations, on the provisioned datasource', () => {
    for (const dashboard of dashboards) {
      expect((dashboard.templating?.list ?? []).map((v) => v.name)).toEqual(['run', 'plan', 'bes_instance']);
      expect(dashboard.annotations?.list?.map((a) => a.name)).toContain('Phase starts');
      for (const panel of (dashboard.panels ?? []) as Array<{ type: string; datasource?: unknown }>)
        if (panel.type !== 'row') expect(panel.datasource).toEqual(PROMETHEUS);
    }
    const datasources = parse(
      readFileSync(join(REPO_ROOT, 'deploy/grafana/provisioning/datasources/phasebench.yaml'), 'utf8'),
    ) as { datasources: Array<{ uid: string; type: string }> };
    expect(datasources.datasources).toContainEqual(
      expect.objectContaining({ uid: PROMETHEUS.uid, type: 'prometheus' }),
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
