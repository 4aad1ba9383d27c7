/**
 * ECharts options to SVG text (server-side rendering: no DOM, no browser) and SVG to PNG.
 */
import { Resvg } from '@resvg/resvg-js';
import type { EChartsOption } from 'echarts';
import * as echarts from 'echarts';

export interface ChartSize {
  width: number;
  height: number;
}

/**
 * One chart as a standalone SVG element. `id` (a chart name such as 'queue-depth') replaces
 * ECharts' per-process instance prefix in ids and classes, so several charts share a page
 * without clashing and the same input always gives the same text. `label` is what a screen
 * reader announces.
 */
export function renderChartSvg(option: EChartsOption, size: ChartSize, id: string, label: string): string {
  const chart = echarts.init(null, null, {
    renderer: 'svg',
    ssr: true,
    width: size.width,
    height: size.height,
  });
  let svg: string;
  try {
    chart.setOption(option);
    svg = chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
  const prefix = id.replace(/[^a-zA-Z0-9-]/g, '-');
  // ECharts numbers instances, classes, patterns and clip paths with process-wide counters;
  // number them again per chart, in order of appearance.
  const renumbered = new Map<string, string>();
  const perKind = new Map<string, number>();
  return svg
    .replace(/\bzr\d+-([a-z]+-?)(\d+)/g, (token: string, kind: string) => {
      let name = renumbered.get(token);
      if (name === undefined) {
        const n = perKind.get(kind) ?? 0;
        perKind.set(kind, n + 1);
        name = `${prefix}-${kind}${n}`;
        renumbered.set(token, name);
      }
      return name;
    })
    .replace(/^<svg /, `<svg role="img" aria-label="${escapeAttribute(label)}" `)
    .replace(/(<svg[^>]*>)/, `$1<title>${escapeText(label)}</title>`);
}

/** A PNG of an SVG, at `zoom` times its size; text uses the system's sans-serif fonts. */
export function renderPng(svg: string, zoom = 2): Buffer {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: zoom },
    background: '#ffffff',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}

export function escapeText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

export function escapeAttribute(text: string): string {
  return escapeText(text).replaceAll('"', '&quot;');
}
