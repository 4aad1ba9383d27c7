/**
 * Generates the Grafana dashboards (dashboards/*.json) and Grafana's provisioning files
 * (deploy/grafana/provisioning/) with the Grafana Foundation SDK. Metric names come from
 * harness/metrics/names.ts only, so a renamed metric cannot leave a panel behind.
 *
 *   npm run dashboards          (node --import tsx harness/dashboards/build.ts)
 *
 * The output is committed; build.test.ts fails when it is out of date with this file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PanelBuilder as BarGaugePanelBuilder } from '@grafana/grafana-foundation-sdk/bargauge';
import {
  BarGaugeDisplayMode,
  LegendDisplayMode,
  LegendPlacement,
  LineInterpolation,
  VizLegendOptionsBuilder,
  VizOrientation,
} from '@grafana/grafana-foundation-sdk/common';
import {
  AnnotationQueryBuilder,
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  type DataSourceRef,
  QueryVariableBuilder,
  RowBuilder,
  VariableRefresh,
  VariableSort,
} from '@grafana/grafana-foundation-sdk/dashboard';
import { DataqueryBuilder } from '@grafana/grafana-foundation-sdk/prometheus';
import { PanelBuilder as TimeseriesPanelBuilder } from '@grafana/grafana-foundation-sdk/timeseries';
import { stringify } from 'yaml';
import { METRICS, PROCESS_METRICS } from '../metrics/names.ts';

export const PROMETHEUS: DataSourceRef = { type: 'prometheus', uid: 'phasebench-prometheus' };
export const JAEGER: DataSourceRef = { type: 'jaeger', uid: 'phasebench-jaeger' };

const RUN_PLAN = 'run=~"$run",plan=~"$plan"';
const RUN_PLAN_INSTANCE = `${RUN_PLAN},bes_instance=~"$bes_instance"`;
/** Per-minute rates: `$__rate_interval` is at least 4 samples of the datasource's 60 s interval. */
const perMinute = (expr: string) => `60 * ${expr}`;

function query(expr: string, legend: string, refId = 'A'): DataqueryBuilder {
  return new DataqueryBuilder().datasource(PROMETHEUS).expr(expr).legendFormat(legend).refId(refId).range();
}

function instantQuery(expr: string, legend: string): DataqueryBuilder {
  return new DataqueryBuilder().datasource(PROMETHEUS).expr(expr).legendFormat(legend).refId('A').instant();
}

function timeseries(title: string, description: string, unit: string): TimeseriesPanelBuilder {
  return new TimeseriesPanelBuilder()
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .unit(unit)
    .min(0)
    .height(8)
    .span(12)
    .legend(
      new VizLegendOptionsBuilder()
        .showLegend(true)
        .displayMode(LegendDisplayMode.Table)
        .placement(LegendPlacement.Bottom)
        .calcs(['max', 'lastNotNull']),
    );
}

function bargauge(title: string, description: string, unit: string, expr: string): BarGaugePanelBuilder {
  return new BarGaugePanelBuilder()
    .title(title)
    .description(description)
    .datasource(PROMETHEUS)
    .unit(unit)
    .min(0)
    .height(6)
    .span(8)
    .orientation(VizOrientation.Horizontal)
    .displayMode(BarGaugeDisplayMode.Basic)
    .withTarget(instantQuery(expr, '{{plan}}'));
}

function quantiles(metric: string, selector: string, by: string, legend: string): DataqueryBuilder[] {
  return [0.5, 0.95].map((q, i) =>
    query(
      `histogram_quantile(${q}, sum by (${by}, le) (rate(${metric}_bucket{${selector}}[$__rate_interval])))`,
      `p${q * 100} ${legend}`,
      String.fromCharCode(65 + i),
    ),
  );
}

function runVariables(): QueryVariableBuilder[] {
  const variable = (name: string, label: string, expr: string, multi: boolean) =>
    new QueryVariableBuilder(name)
      .label(label)
      .datasource(PROMETHEUS)
      .query(expr)
      .definition(expr)
      .refresh(VariableRefresh.OnTimeRangeChanged)
      .sort(VariableSort.AlphabeticalAsc)
      .multi(multi)
      .includeAll(multi)
      .allValue('.*');
  return [
    variable('run', 'run', `label_values(${METRICS.events.name}, run)`, false),
    variable('plan', 'plan', `label_values(${METRICS.events.name}{run=~"$run"}, plan)`, true),
    variable(
      'bes_instance',
      'BES instance',
      `label_values(${METRICS.queueDepth.name}{${RUN_PLAN}}, bes_instance)`,
      true,
    ),
  ];
}

/** A mark where a plan started a phase (the current-phase gauge stepped up). */
function phaseAnnotation(): AnnotationQueryBuilder {
  return new AnnotationQueryBuilder()
    .name('Phase starts')
    .datasource(PROMETHEUS)
    .enable(true)
    .iconColor('purple')
    .expr(`changes(${METRICS.currentPhase.name}{${RUN_PLAN}}[1m]) > 0`)
    .step('1m')
    .titleFormat('{{plan}}: new phase')
    .tagKeys('plan');
}

function base(uid: string, title: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['phasebench'])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from: 'now-2d', to: 'now' })
    .timezone('utc')
    .refresh('1m')
    .variables(runVariables())
    .annotation(phaseAnnotation());
}

/** One run, one or more plans: a panel for every metric family. */
export function rolloutDashboard(): Dashboard {
  return base(
    'phasebench-rollout',
    'phasebench / rollout',
    'A phasebench run as it unfolds: live, or a simulated run backfilled with `phasebench backfill`.',
  )
    .withRow(new RowBuilder('Policy Service queues and throttle'))
    .withPanel(
      timeseries('Queue depth per BES instance', METRICS.queueDepth.help, 'short').withTarget(
        query(
          `max by (plan, bes_instance) (${METRICS.queueDepth.name}{${RUN_PLAN_INSTANCE}})`,
          '{{plan}} {{bes_instance}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Domain queue depth', METRICS.domainQueueDepth.help, 'short').withTarget(
        query(`max by (plan) (${METRICS.domainQueueDepth.name}{${RUN_PLAN}})`, '{{plan}}'),
      ),
    )
    .withPanel(
      timeseries('Jobs started per minute', METRICS.jobsDispatched.help, 'short').withTarget(
        query(
          perMinute(
            `sum by (plan, bes_instance) (rate(${METRICS.jobsDispatched.name}{${RUN_PLAN_INSTANCE}}[$__rate_interval]))`,
          ),
          '{{plan}} {{bes_instance}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Throttle utilisation', METRICS.throttleUtilisation.help, 'percentunit')
        .max(1)
        .withTarget(
          query(
            `max by (plan, bes_instance) (${METRICS.throttleUtilisation.name}{${RUN_PLAN_INSTANCE}})`,
            '{{plan}} {{bes_instance}}',
          ),
        ),
    )
    .withRow(new RowBuilder('Pushes'))
    .withPanel(
      timeseries('Pushes queued per minute', METRICS.pushesQueued.help, 'short').withTarget(
        query(
          perMinute(
            `sum by (plan, kind) (rate(${METRICS.pushesQueued.name}{${RUN_PLAN}}[$__rate_interval]))`,
          ),
          '{{plan}} {{kind}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Push outcomes per minute', METRICS.pushes.help, 'short').withTarget(
        query(
          perMinute(`sum by (plan, outcome) (rate(${METRICS.pushes.name}{${RUN_PLAN}}[$__rate_interval]))`),
          '{{plan}} {{outcome}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Push delivery latency', METRICS.pushDelivery.help, 's').targets(
        quantiles(METRICS.pushDelivery.name, RUN_PLAN, 'plan, kind', '{{plan}} {{kind}}'),
      ),
    )
    .withPanel(
      timeseries('Resends per minute', METRICS.pushResends.help, 'short').withTarget(
        query(
          perMinute(`sum by (plan, kind) (rate(${METRICS.pushResends.name}{${RUN_PLAN}}[$__rate_interval]))`),
          '{{plan}} {{kind}}',
        ),
      ),
    )
    .withRow(new RowBuilder('Users'))
    .withPanel(
      timeseries('Converged share', METRICS.convergedShare.help, 'percentunit')
        .max(1)
        .withTarget(query(`max by (plan) (${METRICS.convergedShare.name}{${RUN_PLAN}})`, '{{plan}}')),
    )
    .withPanel(
      timeseries('Stranded users by reason', METRICS.strandedUsers.help, 'short').withTarget(
        query(
          `sum by (plan, reason) (${METRICS.strandedUsers.name}{${RUN_PLAN}}) > 0`,
          '{{plan}} {{reason}}',
        ),
      ),
    )
    .withPanel(
      timeseries('User migration time', METRICS.userMigration.help, 's').targets(
        quantiles(METRICS.userMigration.name, RUN_PLAN, 'plan', '{{plan}}'),
      ),
    )
    .withPanel(
      timeseries('Current phase', METRICS.currentPhase.help, 'none')
        .lineInterpolation(LineInterpolation.StepAfter)
        .withTarget(query(`max by (plan) (${METRICS.currentPhase.name}{${RUN_PLAN}})`, '{{plan}}')),
    )
    .withRow(new RowBuilder('Run and processes'))
    .withPanel(
      timeseries('Events per second', METRICS.events.help, 'short').withTarget(
        query(`sum by (plan) (rate(${METRICS.events.name}{${RUN_PLAN}}[$__rate_interval]))`, '{{plan}}'),
      ),
    )
    .withPanel(
      timeseries(
        'Live services: CPU and event loop',
        'CPU seconds per second and event-loop lag p99 of the engine, fleet and driver processes (live mode only).',
        'short',
      ).targets([
        query(`rate(${PROCESS_METRICS.cpuSeconds}[$__rate_interval])`, 'cpu {{job}} {{instance}}', 'A'),
        query(PROCESS_METRICS.eventLoopLagP99Seconds, 'event loop lag p99 (s) {{job}} {{instance}}', 'B'),
      ]),
    )
    .withPanel(
      timeseries(
        'Live services: memory',
        'Resident memory and used V8 heap of the engine, fleet and driver processes (live mode only).',
        'bytes',
      ).targets([
        query(PROCESS_METRICS.residentMemoryBytes, 'rss {{job}} {{instance}}', 'A'),
        query(PROCESS_METRICS.heapUsedBytes, 'heap {{job}} {{instance}}', 'B'),
      ]),
    )
    .build();
}

/** Plans of one run side by side: headline numbers over the time range, then overlaid series. */
export function compareDashboard(): Dashboard {
  const over = (fn: string, metric: string, selector = RUN_PLAN) => `${fn}(${metric}{${selector}}[$__range])`;
  return base(
    'phasebench-compare',
    'phasebench / plan vs plan',
    'The plans of a run compared over the selected time range: set it to cover the run.',
  )
    .withRow(new RowBuilder('Over the time range'))
    .withPanel(
      bargauge(
        'Peak domain queue',
        METRICS.domainQueueDepth.help,
        'short',
        `max by (plan) (${over('max_over_time', METRICS.domainQueueDepth.name)})`,
      ),
    )
    .withPanel(
      bargauge(
        'Push delivery p95',
        METRICS.pushDelivery.help,
        's',
        `histogram_quantile(0.95, sum by (plan, le) (${over('increase', `${METRICS.pushDelivery.name}_bucket`)}))`,
      ),
    )
    .withPanel(
      bargauge(
        'User migration p95',
        METRICS.userMigration.help,
        's',
        `histogram_quantile(0.95, sum by (plan, le) (${over('increase', `${METRICS.userMigration.name}_bucket`)}))`,
      ),
    )
    .withPanel(
      bargauge(
        'Converged share at the end',
        METRICS.convergedShare.help,
        'percentunit',
        `max by (plan) (${over('last_over_time', METRICS.convergedShare.name)})`,
      ).max(1),
    )
    .withPanel(
      bargauge(
        'Stranded users at the end',
        METRICS.strandedUsers.help,
        'short',
        `sum by (plan) (${over('last_over_time', METRICS.strandedUsers.name)})`,
      ),
    )
    .withPanel(
      bargauge(
        'Pushes expired',
        METRICS.pushes.help,
        'short',
        `sum by (plan) (${over('increase', METRICS.pushes.name, `${RUN_PLAN},outcome="expired"`)})`,
      ),
    )
    .withRow(new RowBuilder('Plan against plan over time'))
    .withPanel(
      timeseries('Domain queue depth', METRICS.domainQueueDepth.help, 'short').withTarget(
        query(`max by (plan) (${METRICS.domainQueueDepth.name}{${RUN_PLAN}})`, '{{plan}}'),
      ),
    )
    .withPanel(
      timeseries('Converged share', METRICS.convergedShare.help, 'percentunit')
        .max(1)
        .withTarget(query(`max by (plan) (${METRICS.convergedShare.name}{${RUN_PLAN}})`, '{{plan}}')),
    )
    .withPanel(
      timeseries('Push delivery p95', METRICS.pushDelivery.help, 's').withTarget(
        query(
          `histogram_quantile(0.95, sum by (plan, le) (rate(${METRICS.pushDelivery.name}_bucket{${RUN_PLAN}}[$__rate_interval])))`,
          '{{plan}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Jobs started per minute (domain)', METRICS.jobsDispatched.help, 'short').withTarget(
        query(
          perMinute(`sum by (plan) (rate(${METRICS.jobsDispatched.name}{${RUN_PLAN}}[$__rate_interval]))`),
          '{{plan}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Busiest throttle', METRICS.throttleUtilisation.help, 'percentunit')
        .max(1)
        .withTarget(query(`max by (plan) (${METRICS.throttleUtilisation.name}{${RUN_PLAN}})`, '{{plan}}')),
    )
    .withPanel(
      timeseries('Stranded users', METRICS.strandedUsers.help, 'short').withTarget(
        query(`sum by (plan) (${METRICS.strandedUsers.name}{${RUN_PLAN}})`, '{{plan}}'),
      ),
    )
    .withPanel(
      timeseries('Resends per minute', METRICS.pushResends.help, 'short').withTarget(
        query(
          perMinute(`sum by (plan) (rate(${METRICS.pushResends.name}{${RUN_PLAN}}[$__rate_interval]))`),
          '{{plan}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Current phase', METRICS.currentPhase.help, 'none')
        .lineInterpolation(LineInterpolation.StepAfter)
        .withTarget(query(`max by (plan) (${METRICS.currentPhase.name}{${RUN_PLAN}})`, '{{plan}}')),
    )
    .build();
}

/** Grafana's provisioning: the Prometheus and Jaeger datasources (by the uids the dashboards use) and the dashboards folder. */
export function provisioning(): { datasources: unknown; dashboards: unknown } {
  return {
    datasources: {
      apiVersion: 1,
      datasources: [
        {
          name: 'Prometheus',
          uid: PROMETHEUS.uid,
          type: 'prometheus',
          access: 'proxy',
          url: 'http://prometheus:9090',
          isDefault: true,
          editable: false,
          // Backfilled runs have one sample a minute; $__rate_interval must span several.
          jsonData: { timeInterval: '60s' },
        },
        {
          name: 'Jaeger',
          uid: JAEGER.uid,
          type: 'jaeger',
          access: 'proxy',
          url: 'http://jaeger:16686',
          editable: false,
        },
      ],
    },
    dashboards: {
      apiVersion: 1,
      providers: [
        {
          name: 'phasebench',
          folder: 'phasebench',
          type: 'file',
          disableDeletion: true,
          allowUiUpdates: false,
          options: { path: '/var/lib/grafana/dashboards/phasebench' },
        },
      ],
    },
  };
}

/** Every generated file, by path relative to the repository root, with its exact contents. */
export function generatedFiles(): Map<string, string> {
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  const header = '# Generated by harness/dashboards/build.ts (npm run dashboards): do not edit.\n';
  const { datasources, dashboards } = provisioning();
  return new Map([
    ['dashboards/phasebench-rollout.json', json(rolloutDashboard())],
    ['dashboards/phasebench-compare.json', json(compareDashboard())],
    ['deploy/grafana/provisioning/datasources/phasebench.yaml', header + stringify(datasources)],
    ['deploy/grafana/provisioning/dashboards/phasebench.yaml', header + stringify(dashboards)],
  ]);
}

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export async function writeGeneratedFiles(root = REPO_ROOT): Promise<string[]> {
  const written: string[] = [];
  for (const [path, text] of generatedFiles()) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
    written.push(path);
  }
  return written;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const path of await writeGeneratedFiles()) console.log(`wrote ${path}`);
}
