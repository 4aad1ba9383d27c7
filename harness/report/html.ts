/**
 * The report page: one self-contained HTML document (inline CSS, inline SVG charts, no script,
 * no external request) that answers first which plan wins and why, then shows the evidence.
 */
import { formatMs } from '../cli/output.ts';
import { SLO_LABELS, sloValue } from '../cli/sweep.ts';
import { checkSlos, type SloCheck } from '../metrics/slo.ts';
import type { PlanMetrics } from '../metrics/summary.ts';
import { formatGate, formatInterval, type SweepEntry, type SweepResult } from '../sweep/sweep.ts';
import {
  type ChartPlan,
  convergedShareOption,
  deliveryPercentilesOption,
  frontierOption,
  type PlanStyle,
  planStyles,
  queueDepthOption,
  strandedOption,
} from './charts.ts';
import { REPORT_CSS } from './css.ts';
import { type ChartSize, escapeAttribute, escapeText, renderChartSvg } from './render.ts';
import { FINISHES_FIRST, GENTLEST, type HeadlineFact, RECOMMENDED, type ReportView } from './view.ts';

/** The chart names on the page, as in their `data-chart` attributes. */
export const CHART_NAMES = {
  queueDepth: 'queue-depth',
  convergedShare: 'converged-share',
  deliveryPercentiles: 'delivery-percentiles',
  stranded: 'stranded',
  frontier: 'frontier',
} as const;

export const KEY_CHART_SIZE: ChartSize = { width: 1160, height: 480 };
const HALF_SIZE: ChartSize = { width: 568, height: 400 };

const count = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

/** The plans of a view with their colours, in the order the view gives them. */
export function chartPlans(view: ReportView): ChartPlan[] {
  const styles = planStyles(
    view.plans.map((p) => p.name),
    view.recommended,
  );
  return view.plans.map((p) => ({ name: p.name, metrics: p.metrics, style: styles.get(p.name)! }));
}

/** The key chart's SVG: queue depth over time per plan with phase markers (also the PNG). */
export function keyChartSvg(view: ReportView, size: ChartSize = KEY_CHART_SIZE): string {
  return renderChartSvg(
    queueDepthOption(chartPlans(view), view.slos, size.width),
    size,
    CHART_NAMES.queueDepth,
    `Push queue depth over time for ${view.plans.map((p) => p.name).join(', ')}`,
  );
}

export function renderReportHtml(view: ReportView): string {
  const plans = chartPlans(view);
  const title = `${view.scenario.name}: ${view.kind === 'sweep' ? 'sweep report' : 'rollout report'}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeText(title)}</title>
<style>${REPORT_CSS}</style>
</head>
<body>
<main>
${header(view)}
${headline(view, plans)}
${cards(view, plans)}
${figure(
  CHART_NAMES.queueDepth,
  'wide',
  keyChartSvg(view),
  `Peak queue: ${plans.map((p) => `${p.name} ${count.format(p.metrics.peakQueue.domain)} jobs`).join('; ')}. ` +
    `Server side done after: ${plans.map((p) => `${p.name} ${formatMs(p.metrics.makespanMs)}`).join('; ')}.`,
)}
<div class="pair">
${figure(
  CHART_NAMES.convergedShare,
  'half',
  renderChartSvg(
    convergedShareOption(plans, HALF_SIZE.width),
    HALF_SIZE,
    CHART_NAMES.convergedShare,
    'Converged share over time per plan',
  ),
  `Finally converged: ${plans.map((p) => `${p.name} ${(p.metrics.convergedShare * 100).toFixed(1)}% after ${formatMs(p.metrics.convergenceMs)}`).join('; ')}.`,
)}
${figure(
  CHART_NAMES.deliveryPercentiles,
  'half',
  renderChartSvg(
    deliveryPercentilesOption(plans, view.slos, HALF_SIZE.width),
    HALF_SIZE,
    CHART_NAMES.deliveryPercentiles,
    'Push delivery latency by percentile per plan',
  ),
  `p50 / p95 / p99: ${plans.map((p) => `${p.name} ${latency(p.metrics, 'p50Ms')} / ${latency(p.metrics, 'p95Ms')} / ${latency(p.metrics, 'p99Ms')}`).join('; ')}.`,
)}
</div>
<div class="pair">
${figure(
  CHART_NAMES.stranded,
  'half',
  renderChartSvg(
    strandedOption(plans),
    { width: HALF_SIZE.width, height: Math.max(260, 150 + 56 * plans.length) },
    CHART_NAMES.stranded,
    'Stranded users by reason per plan',
  ),
  `Stranded: ${plans.map((p) => `${p.name} ${count.format(p.metrics.stranded.total)}`).join('; ')}.`,
)}
${srpConflicts(plans)}
</div>
${view.sweep ? sweepSection(view.sweep) : ''}
${scenarioSection(view)}
<footer>Drawn by <code>phasebench report</code> from ${view.kind === 'sweep' ? '<code>sweep.json</code>' : '<code>summary.json</code>'}. Every figure is a projection of the run's event log in virtual time.</footer>
</main>
</body>
</html>
`;
}

function header(view: ReportView): string {
  const sweep = view.sweep;
  const kind = sweep
    ? `Sweep of <code>${escapeText(sweep.base)}</code>: ${sweep.entries.filter((e) => e.kind === 'variant').length} variants`
    : `Run of ${view.plans.length} plan${view.plans.length === 1 ? '' : 's'} over one fleet`;
  const slos = sloTargets(view);
  return `<header class="top">
<p class="eyebrow">phasebench · ${kind} · seed ${view.scenario.seed}</p>
<h1>${escapeText(view.scenario.name)}</h1>
${view.scenario.description ? `<p class="description">${escapeText(view.scenario.description)}</p>` : ''}
${slos ? `<p class="slos"><span class="tag">SLOs</span> ${slos}</p>` : ''}
</header>`;
}

function sloTargets(view: ReportView): string {
  const probe = view.plans[0]?.metrics;
  if (!probe) return '';
  return checkSlos(view.slos, probe)
    .map(
      (c) => `${escapeText(SLO_LABELS[c.name])} ≤ <strong>${escapeText(sloValue(c.name, c.limit))}</strong>`,
    )
    .join(' · ');
}

const FACT_ORDER = [RECOMMENDED, FINISHES_FIRST, GENTLEST];

function headline(view: ReportView, plans: readonly ChartPlan[]): string {
  const facts = [...view.facts].sort((a, b) => FACT_ORDER.indexOf(a.label) - FACT_ORDER.indexOf(b.label));
  const tiles = facts.map((fact) => answerTile(fact, view, plans.find((p) => p.name === fact.plan) ?? null));
  const notes =
    view.notes.length > 0
      ? `<div class="notes">${view.notes.map((n) => `<p>${escapeText(n)}</p>`).join('')}</div>`
      : '';
  return `<section class="answers" data-headline aria-label="At a glance">
${tiles.join('\n')}
</section>
${notes}`;
}

function answerTile(fact: HeadlineFact, view: ReportView, plan: ChartPlan | null): string {
  const recommended = fact.label === RECOMMENDED;
  const cls = `answer${recommended ? (fact.plan ? ' answer--recommended' : ' answer--none') : ''}`;
  const swatch = plan ? ` style="${swatchStyle(plan.style)}"` : '';
  const setting = fact.setting
    ? `<p class="setting">Phases of <strong>${count.format(fact.setting.size)} users</strong>, ` +
      `every <strong>${escapeText(fact.setting.interval)}</strong>, gate <strong>${escapeText(fact.setting.gate)}</strong></p>`
    : '';
  const slo = plan ? sloChip(checkSlos(view.slos, plan.metrics)) : '';
  const m = plan?.metrics;
  const figures =
    recommended && m
      ? `<p class="figures">makespan <strong>${escapeText(formatMs(m.makespanMs))}</strong> · p95 delivery <strong>${escapeText(latency(m, 'p95Ms'))}</strong> · peak queue <strong>${count.format(m.peakQueue.domain)}</strong></p>`
      : '';
  return `<article class="${cls}">
<h2>${escapeText(fact.label)}</h2>
${fact.plan ? `<p class="plan"${swatch}>${escapeText(fact.plan)}</p>` : ''}
${setting}
<p class="detail">${escapeText(fact.detail)}</p>
${figures}
${slo}
${recommended && view.tradeoffs.length > 0 ? `<ul class="tradeoffs">${view.tradeoffs.map((t) => `<li>${escapeText(t)}</li>`).join('')}</ul>` : ''}
</article>`;
}

function swatchStyle(style: PlanStyle): string {
  const border = typeof style.dash === 'string' ? style.dash : 'dashed';
  return `border-left: 6px ${border} ${style.color}`;
}

function sloChip(checks: readonly SloCheck[]): string {
  if (checks.length === 0) return '<p class="chip chip--none">no SLOs set</p>';
  const missed = checks.filter((c) => !c.met);
  return missed.length === 0
    ? `<p class="chip chip--meets">✓ meets all ${checks.length} SLOs</p>`
    : `<p class="chip chip--misses">✗ misses ${missed.map((c) => escapeText(SLO_LABELS[c.name])).join(', ')}</p>`;
}

function latency(m: PlanMetrics, key: 'p50Ms' | 'p95Ms' | 'p99Ms'): string {
  return m.pushDelivery.count === 0 ? '— (none delivered)' : formatMs(m.pushDelivery[key]);
}

interface CardRow {
  label: string;
  value: (m: PlanMetrics) => string;
  slo?: SloCheck['name'];
}

const CARD_ROWS: CardRow[] = [
  { label: 'makespan', value: (m) => formatMs(m.makespanMs), slo: 'makespan' },
  { label: 'p95 delivery', value: (m) => latency(m, 'p95Ms'), slo: 'p95Delivery' },
  { label: 'peak queue', value: (m) => `${count.format(m.peakQueue.domain)} jobs`, slo: 'peakQueue' },
  {
    label: 'stranded',
    value: (m) =>
      `${count.format(m.stranded.total)} (${((m.users > 0 ? m.stranded.total / m.users : 0) * 100).toFixed(1)}%)`,
    slo: 'strandedShare',
  },
  { label: 'full convergence', value: (m) => formatMs(m.convergenceMs) },
  { label: 'servers (added)', value: (m) => `${m.servers.peak} (+${m.servers.added})` },
  { label: 'SRP credentials (added)', value: (m) => `${m.srpCredentials.peak} (+${m.srpCredentials.added})` },
  { label: 'SRP conflicts', value: (m) => String(m.srpConflicts.length) },
];

function cards(view: ReportView, plans: readonly ChartPlan[]): string {
  return `<section class="cards" aria-label="Plans">
${plans
  .map((p) => {
    const shown = view.plans.find((s) => s.name === p.name)!;
    const checks = checkSlos(view.slos, p.metrics);
    const rows = CARD_ROWS.map((row) => {
      const check = row.slo ? checks.find((c) => c.name === row.slo) : undefined;
      const mark = check
        ? check.met
          ? '<span class="mark mark--meets" title="meets its SLO">✓</span>'
          : `<span class="mark mark--misses" title="misses its SLO (${escapeAttribute(sloValue(check.name, check.limit))})">✗</span>`
        : '';
      return `<div class="row${check && !check.met ? ' row--misses' : ''}"><dt>${escapeText(row.label)}</dt><dd>${escapeText(row.value(p.metrics))}${mark}</dd></div>`;
    }).join('');
    const badges = shown.badges
      .map(
        (b) =>
          `<span class="badge${b === 'recommended' ? ' badge--recommended' : ''}">${escapeText(b)}</span>`,
      )
      .join('');
    return `<article class="card${p.name === view.recommended ? ' card--recommended' : ''}" data-plan="${escapeAttribute(p.name)}" style="${swatchStyle(p.style).replace('border-left', 'border-top')}">
<h3>${escapeText(p.name)} <span class="kind">${escapeText(p.metrics.planKind)}</span></h3>
<p class="badges">${badges}</p>
<dl>${rows}</dl>
${sloChip(checks)}
</article>`;
  })
  .join('\n')}
</section>`;
}

function figure(name: string, width: 'wide' | 'half', svg: string, summary: string): string {
  return `<figure class="chart chart--${width}" data-chart="${name}">
${svg}
<figcaption>${escapeText(summary)}</figcaption>
</figure>`;
}

function srpConflicts(plans: readonly ChartPlan[]): string {
  const rows = plans.flatMap((p) =>
    p.metrics.srpConflicts.map(
      (c) =>
        `<tr><td>${escapeText(p.name)}</td><td>${escapeText(c.srpId)}</td><td>${escapeText(c.instance)}</td><td>${escapeText(formatMs(c.at))}</td><td class="num">${count.format(c.devicesHolding)}</td></tr>`,
    ),
  );
  const body =
    rows.length === 0
      ? '<p class="none">None: no plan brought a server up on an SRP id that devices still held.</p>'
      : `<table><thead><tr><th>plan</th><th>SRP id</th><th>instance</th><th>at</th><th class="num">devices holding it</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
  return `<section class="panel" aria-labelledby="srp-title" data-section="srp-conflicts">
<h2 id="srp-title">SRP conflicts</h2>
<p class="hint">A new server on an SRP id that devices still hold gets the id disabled; every device on it stops communicating.</p>
${body}
</section>`;
}

function sweepSection(sweep: SweepResult): string {
  const recommended = sweep.recommendation.kind === 'meetsSlos' ? sweep.recommendation.entry : null;
  const rows = sweep.entries.map((e) => sweepRow(e, e.name === recommended)).join('');
  return `<section class="sweep" aria-label="Sweep">
${figure(
  CHART_NAMES.frontier,
  'wide',
  renderChartSvg(
    frontierOption(sweep),
    { width: 1160, height: 520 },
    CHART_NAMES.frontier,
    'Sweep runs by makespan and p95 delivery, sized and coloured by peak queue',
  ),
  `Pareto frontier (${sweep.frontier.length} of ${sweep.entries.length}): ${sweep.frontier.join(', ')}.`,
)}
<div class="panel">
<h2>Every run of the sweep</h2>
<table class="sweep-table"><thead><tr><th>run</th><th class="num">phase size</th><th>interval</th><th>gate</th><th class="num">makespan</th><th class="num">p95 delivery</th><th class="num">peak queue</th><th class="num">stranded</th><th>SLOs</th><th>Pareto</th></tr></thead>
<tbody>${rows}</tbody></table>
</div>
</section>`;
}

function sweepRow(e: SweepEntry, recommended: boolean): string {
  const m = e.metrics;
  const phased = e.plan.kind === 'phased' ? e.plan : null;
  const missed = e.slos.filter((c) => !c.met).map((c) => SLO_LABELS[c.name]);
  const slo =
    e.slos.length === 0
      ? '—'
      : missed.length === 0
        ? '<span class="mark--meets">✓ meets all</span>'
        : `<span class="mark--misses">✗ misses ${escapeText(missed.join(', '))}</span>`;
  const cls = [recommended ? 'recommended' : '', e.kind === 'reference' ? 'reference' : '']
    .filter(Boolean)
    .join(' ');
  return `<tr${cls ? ` class="${cls}"` : ''}><td>${escapeText(e.name)}${recommended ? ' <span class="badge badge--recommended">recommended</span>' : ''}${e.kind === 'reference' ? ` <span class="badge">reference ${escapeText(e.plan.kind)}</span>` : ''}</td>
<td class="num">${phased ? count.format(phased.size) : '—'}</td><td>${phased ? (phased.every === undefined ? 'none' : escapeText(formatInterval(phased.every))) : '—'}</td><td>${phased ? escapeText(formatGate(phased.gate ?? null)) : '—'}</td>
<td class="num">${escapeText(formatMs(m.makespanMs))}</td><td class="num">${escapeText(latency(m, 'p95Ms'))}</td><td class="num">${count.format(m.peakQueue.domain)}</td><td class="num">${count.format(m.stranded.total)}</td><td>${slo}</td><td>${e.onFrontier ? '★ frontier' : ''}</td></tr>`;
}

function scenarioSection(view: ReportView): string {
  const rows = view.assumptions
    .map(
      (a) =>
        `<tr><td><code>${escapeText(a.key)}</code></td><td>${escapeText(a.value)}</td><td class="source source--${escapeAttribute(a.source)}">${escapeText(a.source)}</td><td>${escapeText(a.note)}</td></tr>`,
    )
    .join('');
  return `<section class="panel scenario" aria-labelledby="scenario-title">
<h2 id="scenario-title">Scenario and assumptions</h2>
<dl class="facts">
<div><dt>scenario</dt><dd>${escapeText(view.scenario.name)}</dd></div>
<div><dt>seed</dt><dd>${view.scenario.seed}</dd></div>
<div><dt>description</dt><dd>${view.scenario.description ? escapeText(view.scenario.description) : '(no scenario.json beside the results)'}</dd></div>
</dl>
<table class="assumptions"><thead><tr><th>setting</th><th>default</th><th>source</th><th>note</th></tr></thead><tbody>${rows}</tbody></table>
<p class="hint">Sources: D = documented by RIM/BlackBerry, T = third-party copy of a RIM KB article, E = estimate.</p>
</section>`;
}
