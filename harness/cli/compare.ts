/**
 * `phasebench compare <baseline> <candidate>`: checks a candidate run against a baseline run with
 * thresholds, compares the latency distributions, writes Markdown + JUnit + JSON reports and exits
 * non-zero on a regression. `runCompare` does the work and returns what to print and the exit code,
 * so tests call it without spawning a process; the commander action only prints and exits.
 */
import Table from 'cli-table3';
import { Command } from 'commander';
import pc from 'picocolors';
import {
  type CompareResult,
  compareSummaries,
  type PlanComparison,
  type Verdict,
} from '../compare/compare.ts';
import type { ThresholdResult } from '../compare/evaluate.ts';
import { formatChange, formatShiftMs, formatValue } from '../compare/format.ts';
import { loadSummary } from '../compare/load.ts';
import { LATENCY_SERIES_NAMES, PHASE_METRIC_NAMES } from '../compare/metrics.ts';
import { FAILED_MARK, headline, PASSED_MARK, type ReportPaths, writeReports } from '../compare/report.ts';
import { DEFAULT_THRESHOLDS, parseThresholds } from '../compare/thresholds.ts';
import { formatError, PhasebenchError, ResultsError } from '../errors.ts';

export interface CompareOptions {
  /** A summary.json, or a results folder holding one. */
  baseline: string;
  candidate: string;
  /** Threshold expressions; empty or absent: DEFAULT_THRESHOLDS. */
  thresholds?: readonly string[] | undefined;
  /** Folder for compare.md, junit.xml and compare.json. */
  outDir: string;
  /** Write the JUnit XML here instead of `<outDir>/junit.xml`. */
  junitPath?: string | undefined;
  /** Write the Markdown here instead of `<outDir>/compare.md`. */
  markdownPath?: string | undefined;
  /** Print the result as JSON instead of tables. */
  json?: boolean | undefined;
  /** ANSI colours in the printed tables. Default false. */
  color?: boolean | undefined;
}

export interface CompareRun {
  /** 0: every threshold passed. 1: a threshold failed (or the reports could not be written). 2: bad input. */
  exitCode: 0 | 1 | 2;
  /** Null when the input could not be used. */
  result: CompareResult | null;
  reports: ReportPaths | null;
  /** What the command prints on stdout and stderr. */
  stdout: string;
  stderr: string;
}

export async function runCompare(options: CompareOptions): Promise<CompareRun> {
  const expressions = options.thresholds?.length ? options.thresholds : DEFAULT_THRESHOLDS;
  let result: CompareResult;
  try {
    const thresholds = parseThresholds(expressions);
    const [baseline, candidate] = await Promise.all([
      loadSummary(options.baseline, 'baseline'),
      loadSummary(options.candidate, 'candidate'),
    ]);
    result = compareSummaries(baseline, candidate, thresholds);
  } catch (err) {
    if (err instanceof PhasebenchError && err.exitCode === 2) return failedRun(2, err);
    throw err;
  }

  let reports: ReportPaths;
  try {
    reports = await writeReports(result, options);
  } catch (cause) {
    const err = new ResultsError(`cannot write the comparison reports under ${options.outDir}`, {
      target: options.outDir,
      cause,
    });
    return { ...failedRun(1, err), result };
  }

  const stdout = options.json
    ? `${JSON.stringify(result, null, 2)}\n`
    : renderTerminal(result, reports, pc.createColors(options.color ?? false));
  return { exitCode: result.passed ? 0 : 1, result, reports, stdout, stderr: '' };
}

function failedRun(exitCode: 1 | 2, err: unknown): CompareRun {
  return { exitCode, result: null, reports: null, stdout: '', stderr: `${formatError(err)}\n` };
}

type Colors = ReturnType<typeof pc.createColors>;

/** The printed comparison: per plan a metric table, its thresholds and latency tests, then the verdict. */
export function renderTerminal(result: CompareResult, reports: ReportPaths | null, colors: Colors): string {
  const blocks: string[] = [
    `${colors.bold('phasebench compare')}  ${colors.dim('baseline')} ${result.baseline.path}\n` +
      `                    ${colors.dim('candidate')} ${result.candidate.path}`,
  ];
  for (const plan of result.plans) blocks.push(planBlock(plan, result.thresholds, colors));

  const compared = new Set(result.plans.map((plan) => plan.plan));
  const unmatched = result.thresholds.filter((threshold) => !compared.has(threshold.plan));
  if (unmatched.length > 0) {
    blocks.push(
      `${colors.bold('Thresholds on plans not present in both summaries')}\n${thresholdTable(unmatched, colors)}`,
    );
  }
  if (result.baselineOnlyPlans.length > 0 || result.candidateOnlyPlans.length > 0) {
    blocks.push(
      colors.yellow(
        `Not compared: only in the baseline: ${result.baselineOnlyPlans.join(', ') || 'none'}; ` +
          `only in the candidate: ${result.candidateOnlyPlans.join(', ') || 'none'}`,
      ),
    );
  }

  const verdict = headline(result);
  const lines = [result.passed ? colors.green(verdict) : colors.red(colors.bold(verdict))];
  if (reports !== null) {
    lines.push(
      colors.dim(`Reports: ${reports.markdown}\n         ${reports.junit}\n         ${reports.json}`),
    );
  }
  blocks.push(lines.join('\n'));
  return `${blocks.join('\n\n')}\n`;
}

function planBlock(plan: PlanComparison, thresholds: readonly ThresholdResult[], colors: Colors): string {
  const planResults = thresholds.filter((threshold) => threshold.plan === plan.plan);
  const failed = planResults.some((threshold) => !threshold.passed);

  const metrics = newTable(['Metric', 'Baseline', 'Candidate', 'Change', 'Verdict'], colors);
  for (const row of plan.metrics) {
    metrics.push([
      row.verdict === 'failed' ? colors.red(row.metric) : row.metric,
      formatValue(row.baseline, row.unit),
      formatValue(row.candidate, row.unit),
      formatChange(row.baseline, row.candidate, row.unit),
      verdictMark(row.verdict),
    ]);
  }
  const lines = [
    `${colors.bold(`Plan ${plan.plan}`)} ${failed ? FAILED_MARK : PASSED_MARK}`,
    metrics.toString(),
  ];

  if (plan.phases.length > 0) {
    const phases = newTable(
      ['Phase', ...PHASE_METRIC_NAMES.map((metric) => `${metric} (base → cand)`), 'Verdict'],
      colors,
    );
    for (const phase of plan.phases) {
      phases.push([
        String(phase.phase),
        ...PHASE_METRIC_NAMES.map((metric) => {
          const { baseline, candidate, unit } = phase.values[metric];
          return `${formatValue(baseline, unit)} → ${formatValue(candidate, unit)}`;
        }),
        verdictMark(phase.verdict),
      ]);
    }
    lines.push(phases.toString());
  }

  lines.push(colors.bold('Thresholds'), thresholdTable(planResults, colors));
  lines.push(`${colors.bold('Latency distributions')} ${colors.dim('(two-sample Kolmogorov–Smirnov)')}`);
  for (const series of LATENCY_SERIES_NAMES) {
    const comparison = plan.latency[series];
    const shifts = comparison.percentiles
      .map((p) => `p${p.percentile} ${formatShiftMs(p.shiftMs)}`)
      .join(', ');
    const verdict = comparison.significant ? colors.yellow(comparison.verdict) : comparison.verdict;
    lines.push(`  ${series}: ${verdict}; D=${comparison.d.toFixed(3)}; ${shifts}`);
  }
  return lines.join('\n');
}

function thresholdTable(results: readonly ThresholdResult[], colors: Colors): string {
  if (results.length === 0) return colors.dim('No thresholds apply to this plan.');
  const table = newTable(['Threshold', 'Checked', 'Baseline', 'Candidate', 'Limit', 'Verdict'], colors, 2);
  for (const result of results) {
    table.push([
      result.threshold,
      result.metric,
      formatValue(result.baselineValue, result.unit),
      formatValue(result.candidateValue, result.unit),
      formatValue(result.limit, result.unit),
      result.passed ? PASSED_MARK : FAILED_MARK,
    ]);
  }
  const failures = results
    .filter((result) => !result.passed)
    .map((result) => colors.red(`  ${FAILED_MARK} ${result.threshold}: ${result.message}`));
  return [table.toString(), ...failures].join('\n');
}

/** Text columns first (`textColumns` of them), then right-aligned values, then a centred verdict. */
function newTable(head: string[], colors: Colors, textColumns = 1): Table.Table {
  return new Table({
    head: head.map((title) => colors.bold(title)),
    // cli-table3 colours head and border itself unless told not to; colours come from `colors` only.
    style: { head: [], border: [], compact: true },
    colAligns: head.map((_, i) => (i < textColumns ? 'left' : i === head.length - 1 ? 'center' : 'right')),
  });
}

function verdictMark(verdict: Verdict): string {
  if (verdict === null) return '';
  return verdict === 'passed' ? PASSED_MARK : FAILED_MARK;
}

/** `results/compare-20261122-025504`: the wall clock is fine here, this is the CLI layer. */
export function defaultOutDir(now: Date): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, '')
    .replaceAll('-', '')
    .replaceAll(':', '')
    .replace('T', '-');
  return `results/compare-${stamp}`;
}

const HELP_AFTER = `
Exit codes:
  0  every threshold passed
  1  a threshold failed, or could not be checked (unknown plan or phase)
  2  a summary is missing or invalid, or a threshold does not parse

Thresholds ([plan:] metric op value):
  metrics    makespan, convergence, p50|p95|p99|max(push_delivery), p50|p95|p99|max(user_migration),
             peak_queue, stranded, srp_conflicts, user_minutes_without_service,
             converged_share, phase[N].convergence|peak_queue|p95_delivery (N or *)
  op         < <= > >= ==
  value      absolute: 15m, 90s, 2h or milliseconds for durations, plain numbers otherwise
             relative to the baseline: +10% (candidate op baseline*1.10), -5%
  A threshold without a plan applies to every plan present in both summaries.

Default thresholds (when no -t is given):
${DEFAULT_THRESHOLDS.map((threshold) => `  ${threshold}`).join('\n')}

The latency histograms of each plan are also compared with a two-sample Kolmogorov-Smirnov test
(alpha 0.05); it is reported but never fails the command.

Examples:
  $ phasebench compare results/baselines/flagship results/flagship-1234
  $ phasebench compare base/summary.json cand/summary.json -t 'p95(push_delivery) < 15m' -t 'stranded == 0'
  $ phasebench compare base cand -t 'phased-500: makespan < 9h' 'phase[*].convergence < 30m'
  $ phasebench compare base cand --junit reports/compare.xml --markdown "$GITHUB_STEP_SUMMARY"
  $ phasebench compare base cand --json > compare.json
`;

export function compareCommand(): Command {
  return new Command('compare')
    .description('Check a candidate run against a baseline run: thresholds, latency distributions, reports.')
    .argument('<baseline>', 'baseline summary.json, or the results folder holding it')
    .argument('<candidate>', 'candidate summary.json, or the results folder holding it')
    .option(
      '-t, --threshold <expr...>',
      'threshold to check, e.g. "makespan < +10%" (repeatable; replaces the defaults; quote each one)',
    )
    .option(
      '--out <dir>',
      'folder for compare.md, junit.xml and compare.json (default: results/compare-<timestamp>)',
    )
    .option('--json', 'print the machine-readable result instead of tables')
    .option('--junit <file>', 'write the JUnit XML here instead of <out>/junit.xml')
    .option('--markdown <file>', 'write the Markdown summary here instead of <out>/compare.md')
    .addHelpText('after', HELP_AFTER)
    .action(
      async (
        baseline: string,
        candidate: string,
        flags: { threshold?: string[]; out?: string; json?: boolean; junit?: string; markdown?: string },
      ) => {
        const run = await runCompare({
          baseline,
          candidate,
          thresholds: flags.threshold,
          outDir: flags.out ?? defaultOutDir(new Date()),
          junitPath: flags.junit,
          markdownPath: flags.markdown,
          json: flags.json,
          color: pc.isColorSupported && process.stdout.isTTY === true,
        });
        process.stdout.write(run.stdout);
        process.stderr.write(run.stderr);
        process.exitCode = run.exitCode;
      },
    );
}
