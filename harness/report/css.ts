/** The report's only stylesheet, inlined into the page (no fonts or files to fetch). */
export const REPORT_CSS = `
:root {
  --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --paper: #ffffff; --wash: #f6f8fa;
  --meets: #1a7f37; --meets-bg: #dafbe1; --misses: #cf222e; --misses-bg: #ffebe9;
  font-family: system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', Arial, sans-serif;
  color: var(--ink); background: var(--wash); line-height: 1.45;
}
* { box-sizing: border-box; }
body { margin: 0; }
main { max-width: 1208px; margin: 0 auto; padding: 24px 24px 40px; }
h1 { font-size: 28px; margin: 2px 0 4px; }
h2 { font-size: 18px; margin: 0 0 8px; }
h3 { font-size: 17px; margin: 0; }
code { font-family: ui-monospace, 'DejaVu Sans Mono', monospace; font-size: 0.92em; }
.top { margin-bottom: 16px; }
.eyebrow { margin: 0; color: var(--muted); font-size: 13px; text-transform: uppercase; letter-spacing: 0.04em; }
.description { margin: 0 0 6px; font-size: 16px; }
.slos { margin: 0; color: var(--muted); font-size: 14px; }
.tag { display: inline-block; background: var(--ink); color: #fff; border-radius: 4px; padding: 0 6px; font-size: 12px; font-weight: 700; margin-right: 4px; }

.answers { display: grid; grid-template-columns: 1.5fr 1fr 1fr; gap: 14px; margin: 8px 0 12px; }
.answer { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 14px 18px; }
.answer h2 { font-size: 13px; text-transform: uppercase; letter-spacing: 0.05em; color: var(--muted); margin: 0 0 4px; }
.answer .plan { font-size: 26px; font-weight: 800; margin: 0 0 2px; padding-left: 10px; line-height: 1.15; word-break: break-word; }
.answer .detail { margin: 2px 0 8px; color: var(--muted); }
.answer .setting { margin: 4px 0; font-size: 16px; }
.answer .figures { margin: 0 0 8px; font-size: 15px; }
.answer--recommended { border: 2px solid var(--meets); background: linear-gradient(180deg, #f0fff4, #ffffff 70%); }
.answer--recommended h2 { color: var(--meets); }
.answer--recommended .plan { font-size: 34px; }
.tradeoffs { margin: 10px 0 0; padding: 8px 0 0 18px; border-top: 1px solid var(--line); font-size: 14px; }
.tradeoffs li { margin: 2px 0; }
.answer--none { border: 2px solid var(--misses); }
.answer--none .detail { color: var(--misses); font-weight: 700; font-size: 17px; }
.notes { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 8px 16px; margin-bottom: 12px; font-size: 14px; }
.notes p { margin: 4px 0; }

.chip { display: inline-block; margin: 0; padding: 2px 10px; border-radius: 999px; font-size: 13px; font-weight: 700; }
.chip--meets { color: var(--meets); background: var(--meets-bg); }
.chip--misses { color: var(--misses); background: var(--misses-bg); }
.chip--none { color: var(--muted); background: var(--wash); }

.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 14px; margin-bottom: 16px; }
.card { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px 14px; }
.card--recommended { box-shadow: 0 0 0 2px var(--meets); }
.card .kind { font-size: 12px; font-weight: 400; color: var(--muted); }
.badges { margin: 4px 0 6px; min-height: 20px; }
.badge { display: inline-block; font-size: 11px; font-weight: 700; border-radius: 4px; padding: 1px 6px; margin: 0 4px 2px 0; background: var(--wash); border: 1px solid var(--line); color: var(--muted); }
.badge--recommended { background: var(--meets); border-color: var(--meets); color: #fff; }
dl { margin: 0 0 10px; }
.card .row { display: flex; justify-content: space-between; gap: 8px; padding: 3px 0; border-bottom: 1px solid #eef1f4; font-size: 14px; }
.card dt { color: var(--muted); }
.card dd { margin: 0; font-weight: 600; text-align: right; white-space: nowrap; }
.row--misses dd { color: var(--misses); }
.mark { display: inline-block; width: 1.2em; text-align: center; margin-left: 4px; font-weight: 800; }
.mark--meets { color: var(--meets); }
.mark--misses { color: var(--misses); }

.chart { margin: 0 0 16px; background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 6px; overflow: hidden; }
.chart svg { display: block; width: 100%; height: auto; }
.chart figcaption { font-size: 13px; color: var(--muted); padding: 2px 10px 6px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; align-items: start; }
.pair > * { min-width: 0; }
.panel { background: var(--paper); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; margin-bottom: 16px; }
.hint { color: var(--muted); font-size: 13px; margin: 0 0 8px; }
.none { font-weight: 600; color: var(--meets); }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eef1f4; vertical-align: top; }
th { color: var(--muted); font-weight: 600; border-bottom: 1px solid var(--line); }
.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.recommended td { background: var(--meets-bg); font-weight: 700; }
tr.reference td { color: var(--muted); }
.facts { display: grid; grid-template-columns: 120px 1fr; gap: 2px 12px; font-size: 14px; margin-bottom: 10px; }
.facts div { display: contents; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; }
.source { font-weight: 700; text-align: center; }
footer { color: var(--muted); font-size: 12px; margin-top: 8px; }
@media (max-width: 900px) {
  .answers, .pair { grid-template-columns: 1fr; }
}
@media print {
  body { background: #fff; }
  .chart, .card, .panel, .answer { break-inside: avoid; }
}
`;
