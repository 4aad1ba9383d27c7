/**
 * The comparison as files: a Markdown summary for people (PR comments, CI job summaries), JUnit
 * XML for CI test views (one testsuite per plan, one testcase per threshold result) and the
 * result itself as JSON. Rendering is pure; `writeReports` is the only part touching the disk.
 */
import { access, mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import type { Builder as JUnitBuilder } from 'junit-report-builder';
import { KEY_CHART_FILE } from '../report/files.ts';
import { type CompareResult, failedCount, type PlanComparison, type Verdict } from './compare.ts';
import type { ThresholdResult } from './evaluate.ts';
import { formatChange, formatPValue, formatShiftMs, formatValue } from './format.ts';
import { LATENCY_SERIES_NAMES, PHASE_METRIC_NAMES, type PhaseMetricName } from './metrics.ts';

export const PASSED_MARK = '✅';
export const FAILED_MARK = '❌';

// The package's typings declare an ES default export, but its CommonJS entry assigns the builder
// to module.exports; require gives the builder the same way under tsx, vitest and plain Node.
const junit: JUnitBuilder = createRequire(import.meta.url)('junit-report-builder');

const PHASE_COLUMN_TITLES: Record<PhaseMetricName, string> = {
  convergence: 'Convergence',
  peak_queue: 'Peak queue',
  p95_delivery: 'p95 delivery',
};

/** `keyChart`: where the candidate's key-chart.png is, relative to the Markdown file, if it has one. */
export function renderMarkdown(result: CompareResult, keyChart?: string): string {
  const lines: string[] = [];
  lines.push(`# phasebench compare: ${headline(result)}`, '');
  lines.push('| | Summary | Scenario | Seed |', '|:--|:--|:--|--:|');
  for (const [role, ref] of [
    ['Baseline', result.baseline],
    ['Candidate', result.candidate],
  ] as const) {
    lines.push(row([role, code(ref.path), escapeCell(ref.scenario), String(ref.seed)]));
  }
  lines.push('');
  if (keyChart) lines.push(`![Candidate: push queue depth over time per plan](${encodeURI(keyChart)})`, '');

  for (const plan of result.plans) lines.push(...planSection(plan, result.thresholds), '');

  const compared = new Set(result.plans.map((plan) => plan.plan));
  const unmatched = result.thresholds.filter((threshold) => !compared.has(threshold.plan));
  if (unmatched.length > 0) {
    lines.push(
      '## Thresholds on plans not present in both summaries',
      '',
      ...thresholdTable(unmatched, true),
      '',
    );
  }
  if (result.baselineOnlyPlans.length > 0 || result.candidateOnlyPlans.length > 0) {
    lines.push(
      '## Plans not compared',
      '',
      `- Only in the baseline: ${planNames(result.baselineOnlyPlans)}`,
      `- Only in the candidate: ${planNames(result.candidateOnlyPlans)}`,
      '',
    );
  }
  return lines.join('\n');
}

function planSection(plan: PlanComparison, thresholds: readonly ThresholdResult[]): string[] {
  const planResults = thresholds.filter((threshold) => threshold.plan === plan.plan);
  const planFailed = planResults.some((threshold) => !threshold.passed);
  const lines = [`## Plan \`${plan.plan}\` ${planFailed ? FAILED_MARK : PASSED_MARK}`, ''];

  lines.push('| Metric | Baseline | Candidate | Change | Verdict |', '|:--|--:|--:|--:|:-:|');
  for (const metric of plan.metrics) {
    lines.push(
      row([
        metric.metric,
        formatValue(metric.baseline, metric.unit),
        formatValue(metric.candidate, metric.unit),
        formatChange(metric.baseline, metric.candidate, metric.unit),
        mark(metric.verdict),
      ]),
    );
  }

  if (plan.phases.length > 0) {
    lines.push('', '### Phases', '', 'Each cell: baseline → candidate.', '');
    lines.push(
      row(['Phase', ...PHASE_METRIC_NAMES.map((metric) => PHASE_COLUMN_TITLES[metric]), 'Verdict']),
      `|--:|${PHASE_METRIC_NAMES.map(() => '--:|').join('')}:-:|`,
    );
    for (const phase of plan.phases) {
      const cells = PHASE_METRIC_NAMES.map((metric) => {
        const { baseline, candidate, unit } = phase.values[metric];
        return `${formatValue(baseline, unit)} → ${formatValue(candidate, unit)}`;
      });
      lines.push(row([String(phase.phase), ...cells, mark(phase.verdict)]));
    }
  }

  lines.push('', '### Thresholds', '', ...thresholdTable(planResults, false));

  lines.push('', '### Latency distributions (two-sample Kolmogorov–Smirnov)', '');
  lines.push('| Series | Samples (baseline / candidate) | D | p | Δp50 | Δp95 | Δp99 | Verdict |');
  lines.push('|:--|--:|--:|--:|--:|--:|--:|:--|');
  for (const series of LATENCY_SERIES_NAMES) {
    const comparison = plan.latency[series];
    lines.push(
      row([
        series,
        `${count(comparison.baselineCount)} / ${count(comparison.candidateCount)}`,
        comparison.d.toFixed(3),
        formatPValue(comparison.pValue).replace(/^p=/, ''),
        ...comparison.percentiles.map((percentile) => formatShiftMs(percentile.shiftMs)),
        comparison.verdict,
      ]),
    );
  }
  return lines;
}

function thresholdTable(results: readonly ThresholdResult[], withPlan: boolean): string[] {
  if (results.length === 0) return ['No thresholds apply to this plan.'];
  const header = [
    ...(withPlan ? ['Plan'] : []),
    'Threshold',
    'Checked',
    'Baseline',
    'Candidate',
    'Limit',
    'Verdict',
    'Detail',
  ];
  const numeric = new Set(['Baseline', 'Candidate', 'Limit']);
  const alignments = header.map((title) =>
    title === 'Verdict' ? ':-:|' : numeric.has(title) ? '--:|' : ':--|',
  );
  const lines = [row(header), `|${alignments.join('')}`];
  for (const result of results) {
    lines.push(
      row([
        ...(withPlan ? [code(result.plan)] : []),
        code(result.threshold),
        result.metric,
        formatValue(result.baselineValue, result.unit),
        formatValue(result.candidateValue, result.unit),
        formatValue(result.limit, result.unit),
        result.passed ? PASSED_MARK : FAILED_MARK,
        escapeCell(result.message),
      ]),
    );
  }
  return lines;
}

/** JUnit XML: one testsuite per plan, one testcase per threshold result; failures carry the message. */
export function renderJUnit(result: CompareResult): string {
  const builder = junit.newBuilder().name('phasebench compare');
  const suites = [
    ...new Set([...result.plans.map((plan) => plan.plan), ...result.thresholds.map((t) => t.plan)]),
  ];
  for (const plan of suites) {
    const suite = builder.testSuite().name(plan);
    for (const threshold of result.thresholds.filter((t) => t.plan === plan)) {
      const testCase = suite
        .testCase()
        .className(`phasebench.compare.${plan}`)
        .name(
          threshold.phase === undefined
            ? threshold.threshold
            : `${threshold.threshold} (phase ${threshold.phase})`,
        )
        .property('baseline', formatValue(threshold.baselineValue, threshold.unit))
        .property('candidate', formatValue(threshold.candidateValue, threshold.unit))
        .property('limit', formatValue(threshold.limit, threshold.unit));
      if (threshold.error) testCase.error(threshold.message, 'ThresholdNotCheckable');
      else if (!threshold.passed) testCase.failure(threshold.message, 'ThresholdFailed');
      else testCase.standardOutput(threshold.message);
    }
  }
  return builder.build();
}

export interface ReportPaths {
  markdown: string;
  junit: string;
  json: string;
}

/**
 * Writes `compare.md`, `junit.xml` and `compare.json` into `outDir`; `markdownPath` and `junitPath`
 * send those two elsewhere. Returns the absolute paths written.
 */
export async function writeReports(
  result: CompareResult,
  options: { outDir: string; markdownPath?: string | undefined; junitPath?: string | undefined },
): Promise<ReportPaths> {
  const paths: ReportPaths = {
    markdown: resolve(options.markdownPath ?? join(options.outDir, 'compare.md')),
    junit: resolve(options.junitPath ?? join(options.outDir, 'junit.xml')),
    json: resolve(join(options.outDir, 'compare.json')),
  };
  const keyChart = join(dirname(result.candidate.path), KEY_CHART_FILE);
  const linked = (await exists(keyChart)) ? relative(dirname(paths.markdown), keyChart) : undefined;
  await Promise.all([
    writeText(paths.markdown, renderMarkdown(result, linked)),
    writeText(paths.junit, renderJUnit(result)),
    writeText(paths.json, `${JSON.stringify(result, null, 2)}\n`),
  ]);
  return paths;
}

/** '✅ all 14 thresholds passed' or '❌ 2 of 14 thresholds failed'. */
export function headline(result: CompareResult): string {
  const total = result.thresholds.length;
  const failed = failedCount(result);
  return failed === 0
    ? `${PASSED_MARK} all ${total} threshold${total === 1 ? '' : 's'} passed`
    : `${FAILED_MARK} ${failed} of ${total} threshold${total === 1 ? '' : 's'} failed`;
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function writeText(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, text, 'utf8');
}

function mark(verdict: Verdict): string {
  if (verdict === null) return '';
  return verdict === 'passed' ? PASSED_MARK : FAILED_MARK;
}

function row(cells: readonly string[]): string {
  return `| ${cells.join(' | ')} |`;
}

function code(text: string): string {
  return `\`${escapeCell(text)}\``;
}

/** A pipe would end the cell; a newline would end the row. */
function escapeCell(text: string): string {
  return text.replaceAll('|', '\\|').replaceAll(/\r?\n/g, ' ');
}

function planNames(plans: readonly string[]): string {
  return plans.length === 0 ? 'none' : plans.map(code).join(', ');
}

function count(value: number): string {
  return formatValue(value, 'count');
}
