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
import { HTTP_METRICS, METRICS, PROCESS_METRICS, SERVICE_METRICS } from '../metrics/names.ts';

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

/** A variable whose values a Prometheus query lists; `multi` also offers All (any value). */
function variable(name: string, label: string, expr: string, multi: boolean): QueryVariableBuilder {
  return new QueryVariableBuilder(name)
    .label(label)
    .datasource(PROMETHEUS)
    .query(expr)
    .definition(expr)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc)
    .multi(multi)
    .includeAll(multi)
    .allValue('.*');
}

function runVariables(): QueryVariableBuilder[] {
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

function common(
  uid: string,
  title: string,
  description: string,
  kind: 'run' | 'services',
  from: string,
): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(['phasebench', kind])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .time({ from, to: 'now' })
    .timezone('utc')
    .refresh('1m');
}

/** A run dashboard: the runs' families, picked by run, plan and BES instance. */
function base(uid: string, title: string, description: string): DashboardBuilder {
  return common(uid, title, description, 'run', 'now-2d')
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

const JOB_INSTANCE = 'job=~"$job",instance=~"$instance"';

/** The services' variables: Prometheus's scrape job (engine, fleet, admin, driver) and target. */
function serviceVariables(): QueryVariableBuilder[] {
  // A Node.js heap metric: every phasebench process has it, Prometheus's own self-scrape does not.
  return [
    variable('job', 'job', `label_values(${PROCESS_METRICS.heapUsedBytes}, job)`, true),
    variable(
      'instance',
      'instance',
      `label_values(${PROCESS_METRICS.heapUsedBytes}{job=~"$job"}, instance)`,
      true,
    ),
  ];
}

/** A counter's rate per scrape target (and by `labels`), per second or per minute. */
function targetRate(
  metric: string,
  labels: readonly string[] = [],
  every: 'second' | 'minute' = 'second',
): string {
  const expr = `sum by (${['job', 'instance', ...labels].join(', ')}) (rate(${metric}{${JOB_INSTANCE}}[$__rate_interval]))`;
  return every === 'minute' ? perMinute(expr) : expr;
}

function targetLegend(labels: readonly string[] = []): string {
  return ['{{job}} {{instance}}', ...labels.map((l) => `{{${l}}}`)].join(' ');
}

/**
 * The live services' own figures, per scrape target: the engine's hosted runs, the fleet's
 * answers, both consumers, the admin API (`phasebench serve`) and every process. The runs
 * themselves are on the run dashboards.
 */
export function servicesDashboard(): Dashboard {
  const S = SERVICE_METRICS;
  return common(
    'phasebench-services',
    'phasebench / services',
    'The live services themselves (phasebench engine, fleet, serve and the live driver): what each scrape target handled, answered and used.',
    'services',
    'now-1h',
  )
    .variables(serviceVariables())
    .withRow(new RowBuilder('Engine'))
    .withPanel(
      timeseries('Hosted runs', S.runsHosted.help, 'none')
        .lineInterpolation(LineInterpolation.StepAfter)
        .withTarget(query(`sum by (job, instance) (${S.runsHosted.name}{${JOB_INSTANCE}})`, targetLegend())),
    )
    .withPanel(
      timeseries('Runs ended per minute', S.runsEnded.help, 'short').withTarget(
        query(targetRate(S.runsEnded.name, ['outcome'], 'minute'), targetLegend(['outcome'])),
      ),
    )
    .withRow(new RowBuilder('Fleet'))
    .withPanel(
      timeseries('Pushes received per second', S.pushesReceived.help, 'short').withTarget(
        query(targetRate(S.pushesReceived.name), targetLegend()),
      ),
    )
    .withPanel(
      timeseries('Acknowledgements sent per second', S.acknowledgementsSent.help, 'short').withTarget(
        query(targetRate(S.acknowledgementsSent.name), targetLegend()),
      ),
    )
    .withPanel(
      timeseries('Acknowledgements waiting', S.acknowledgementsWaiting.help, 'short').withTarget(
        query(`sum by (job, instance) (${S.acknowledgementsWaiting.name}{${JOB_INSTANCE}})`, targetLegend()),
      ),
    )
    .withRow(new RowBuilder('Consumers (engine and fleet)'))
    .withPanel(
      timeseries('Messages handled per second', S.messagesHandled.help, 'short').withTarget(
        query(targetRate(S.messagesHandled.name), targetLegend()),
      ),
    )
    .withPanel(
      timeseries('Handler retries per minute', S.handlerRetries.help, 'short').withTarget(
        query(targetRate(S.handlerRetries.name, [], 'minute'), targetLegend()),
      ),
    )
    .withPanel(
      timeseries('Dead letters per minute by category', S.deadLetters.help, 'short').withTarget(
        query(targetRate(S.deadLetters.name, ['category'], 'minute'), targetLegend(['category'])),
      ),
    )
    .withRow(new RowBuilder('Admin API (phasebench serve)'))
    .withPanel(
      timeseries(
        'Requests per second',
        'HTTP requests the admin API answered, by route pattern, method and status code.',
        'reqps',
      ).withTarget(
        query(
          targetRate(HTTP_METRICS.requests.name, ['route', 'method', 'status']),
          targetLegend(['method', 'route', 'status']),
        ),
      ),
    )
    .withPanel(
      timeseries(
        'Request duration',
        'Time from receiving a request to sending its answer, by route pattern and method.',
        's',
      ).targets(
        quantiles(
          HTTP_METRICS.requestDuration.name,
          JOB_INSTANCE,
          'job, instance, route, method',
          targetLegend(['method', 'route']),
        ),
      ),
    )
    .withPanel(
      timeseries(
        'Commands accepted per minute',
        'Commands the admin API appended to the event log as CommandAccepted, by command type.',
        'short',
      ).withTarget(
        query(targetRate(HTTP_METRICS.commandsAccepted.name, ['type'], 'minute'), targetLegend(['type'])),
      ),
    )
    .withRow(new RowBuilder('Processes'))
    .withPanel(
      timeseries(
        'CPU per job',
        'CPU seconds per second of each job, all its targets together.',
        'short',
      ).withTarget(
        query(
          `sum by (job) (rate(${PROCESS_METRICS.cpuSeconds}{${JOB_INSTANCE}}[$__rate_interval]))`,
          '{{job}}',
        ),
      ),
    )
    .withPanel(
      timeseries('Event loop lag p99 per job', 'The worst target of each job.', 's').withTarget(
        query(`max by (job) (${PROCESS_METRICS.eventLoopLagP99Seconds}{${JOB_INSTANCE}})`, '{{job}}'),
      ),
    )
    .withPanel(
      timeseries(
        'Memory per job',
        'Resident memory and used V8 heap of each job, all its targets together.',
        'bytes',
      ).targets([
        query(`sum by (job) (${PROCESS_METRICS.residentMemoryBytes}{${JOB_INSTANCE}})`, 'rss {{job}}', 'A'),
        query(`sum by (job) (${PROCESS_METRICS.heapUsedBytes}{${JOB_INSTANCE}})`, 'heap {{job}}', 'B'),
      ]),
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
    ['dashboards/phasebench-services.json', json(servicesDashboard())],
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
