/**
 * How runs are shown in a terminal and in Markdown. Display only reads summaries.
 */
import Table from 'cli-table3';
import pc from 'picocolors';
import { formatDurationMs } from '../compare/format.ts';
import { checkSlos, meetsSlos } from '../metrics/slo.ts';
import type { PlanMetrics, RunSummary } from '../metrics/summary.ts';

export const formatMs = formatDurationMs;

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** A percentile, or a dash when nothing was measured (0 ms would read as instant). */
function latency(stats: PlanMetrics['pushDelivery'], key: 'p50Ms' | 'p95Ms' | 'p99Ms'): string {
  return stats.count === 0 ? '— (none)' : formatMs(stats[key]);
}

interface Row {
  label: string;
  value: (m: PlanMetrics) => string;
  /** For highlighting the best plan: lower is better when defined. */
  score?: (m: PlanMetrics) => number;
}

const ROWS: Row[] = [
  { label: 'makespan (server side)', value: (m) => formatMs(m.makespanMs), score: (m) => m.makespanMs },
  { label: 'full convergence', value: (m) => formatMs(m.convergenceMs) },
  { label: 'push delivery p50', value: (m) => latency(m.pushDelivery, 'p50Ms') },
  {
    label: 'push delivery p95',
    value: (m) => latency(m.pushDelivery, 'p95Ms'),
    score: (m) => (m.pushDelivery.count ? m.pushDelivery.p95Ms : Number.POSITIVE_INFINITY),
  },
  { label: 'push delivery p99', value: (m) => latency(m.pushDelivery, 'p99Ms') },
  { label: 'user migration p95', value: (m) => latency(m.userMigration, 'p95Ms') },
  {
    label: 'peak queue (domain)',
    value: (m) => count.format(m.peakQueue.domain),
    score: (m) => m.peakQueue.domain,
  },
  { label: 'peak jobs / minute', value: (m) => count.format(m.jobsPerMinute.peakDomain) },
  {
    label: 'converged',
    value: (m) =>
      `${count.format(m.usersConverged)} / ${count.format(m.users)} (${(m.convergedShare * 100).toFixed(1)}%)`,
  },
  { label: 'stranded', value: (m) => count.format(m.stranded.total), score: (m) => m.stranded.total },
  {
    label: 'SRP conflicts',
    value: (m) => String(m.srpConflicts.length),
    score: (m) => m.srpConflicts.length,
  },
  {
    label: 'servers peak (added)',
    value: (m) => `${m.servers.peak} (+${m.servers.added})`,
    score: (m) => m.servers.peak,
  },
  {
    label: 'SRP credentials peak (added)',
    value: (m) => `${m.srpCredentials.peak} (+${m.srpCredentials.added})`,
  },
  {
    label: 'user-hours without service',
    value: (m) => count.format(m.userMinutesWithoutService / 60),
    score: (m) => m.userMinutesWithoutService,
  },
  { label: 'phases', value: (m) => String(m.phases.length) },
  { label: 'events', value: (m) => count.format(m.events) },
];

/** The table's rows: the fixed ones, with one indented row per stranded reason after 'stranded'. */
function rowsFor(metrics: readonly PlanMetrics[]): Row[] {
  const reasons = [...new Set(metrics.flatMap((m) => Object.keys(m.stranded.byReason)))].sort() as Array<
    keyof PlanMetrics['stranded']['byReason']
  >;
  return ROWS.flatMap((row) =>
    row.label === 'stranded'
      ? [
          row,
          ...reasons.map((r) => ({
            label: `  ${r}`,
            value: (m: PlanMetrics) => count.format(m.stranded.byReason[r] ?? 0),
          })),
        ]
      : [row],
  );
}

export function comparisonTable(summary: RunSummary, color = pc.isColorSupported): string {
  const plans = Object.keys(summary.plans);
  const metrics = plans.map((p) => summary.plans[p]!.metrics);
  const paint = color
    ? pc
    : { bold: (s: string) => s, green: (s: string) => s, red: (s: string) => s, dim: (s: string) => s };
  const table = new Table({
    head: ['', ...plans].map((h) => paint.bold(h)),
    style: { head: [], border: [] },
    // No rule between rows: a long table stays on one screen.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const row of rowsFor(metrics)) {
    let best = -1;
    if (row.score && metrics.length > 1) {
      const scores = metrics.map(row.score);
      const min = Math.min(...scores);
      if (scores.some((s) => s !== min)) best = scores.indexOf(min);
    }
    table.push([
      row.label,
      ...metrics.map((m, i) => (i === best ? paint.green(row.value(m)) : row.value(m))),
    ]);
  }
  const runtimes = plans.map((p) => summary.plans[p]!.runtime);
  if (runtimes.every((r) => r !== undefined)) {
    table.push([
      paint.dim('wall time (events/s)'),
      ...runtimes.map((r) => paint.dim(`${formatMs(r!.wallMs)} (${count.format(r!.eventsPerSecond)})`)),
    ]);
  }
  const sloRow = metrics.map((m) => {
    const checks = checkSlos(summary.slos, m);
    if (checks.length === 0) return '—';
    const failed = checks.filter((c) => !c.met).map((c) => c.name);
    return failed.length === 0 ? paint.green('meets all') : paint.red(`misses ${failed.join(', ')}`);
  });
  table.push([paint.bold('SLOs'), ...sloRow]);
  return table.toString();
}

/** One or two sentences a planner can act on: who finishes first, who is gentler, who meets the SLOs. */
export function verdict(summary: RunSummary): string {
  const entries = Object.entries(summary.plans).map(([plan, p]) => ({ plan, m: p.metrics }));
  if (entries.length === 0) return 'No plans ran.';
  const fastest = [...entries].sort((a, b) => a.m.makespanMs - b.m.makespanMs)[0]!;
  const gentlest = [...entries].sort((a, b) => a.m.peakQueue.domain - b.m.peakQueue.domain)[0]!;
  const lines = [
    `Finishes first: ${fastest.plan} (${formatMs(fastest.m.makespanMs)}).`,
    `Gentlest on the queue: ${gentlest.plan} (peak ${count.format(gentlest.m.peakQueue.domain)} jobs, p95 delivery ${formatMs(gentlest.m.pushDelivery.p95Ms)}).`,
  ];
  const meeting = entries.filter((e) => meetsSlos(summary.slos, e.m));
  if (Object.keys(summary.slos).length > 0) {
    if (meeting.length === 0) lines.push('No plan meets every SLO.');
    else {
      const best = meeting.sort((a, b) => a.m.makespanMs - b.m.makespanMs)[0]!;
      lines.push(`Recommended: ${best.plan}, the fastest plan that meets every SLO.`);
    }
  }
  return lines.join('\n');
}

export function comparisonMarkdown(summary: RunSummary): string {
  const plans = Object.keys(summary.plans);
  const metrics = plans.map((p) => summary.plans[p]!.metrics);
  const lines = [
    `# ${summary.scenario} (seed ${summary.seed})`,
    '',
    `| metric | ${plans.join(' | ')} |`,
    `|---|${plans.map(() => '---').join('|')}|`,
    ...rowsFor(metrics).map((row) => `| ${row.label.trim()} | ${metrics.map(row.value).join(' | ')} |`),
    '',
    verdict(summary),
    '',
    '## Assumptions',
    '',
    '| setting | default | source | note |',
    '|---|---|---|---|',
    ...summary.assumptions.map((a) => `| ${a.key} | ${a.value} | ${a.source} | ${a.note} |`),
    '',
    'Sources: D = documented by RIM/BlackBerry, T = third-party copy of a RIM KB article, E = estimate.',
    '',
  ];
  return lines.join('\n');
}
