/**
 * How compare shows values to people: the Markdown report, the JUnit messages and the terminal
 * table all format through here so a value reads the same everywhere.
 */
import type { MetricUnit } from './metrics.ts';

const SECOND_MS = 1_000;
const MINUTE_MS = 60 * SECOND_MS;

const countFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });

/** '850ms', '12.3s', '14m 32s', '2h 05m'. */
export function formatDurationMs(valueMs: number): string {
  const sign = valueMs < 0 ? '-' : '';
  const abs = Math.abs(valueMs);
  if (abs < 999.5) return `${sign}${Math.round(abs)}ms`;
  // Thresholds chosen on the rounded value so 59.97 s shows as '1m 00s', not '60.0s'.
  if (abs < 59_950) return `${sign}${(abs / SECOND_MS).toFixed(1)}s`;
  const totalSeconds = Math.round(abs / SECOND_MS);
  if (totalSeconds < 3_570) return `${sign}${Math.floor(totalSeconds / 60)}m ${pad2(totalSeconds % 60)}s`;
  const totalMinutes = Math.round(abs / MINUTE_MS);
  return `${sign}${Math.floor(totalMinutes / 60)}h ${pad2(totalMinutes % 60)}m`;
}

export function formatValue(value: number | null, unit: MetricUnit): string {
  if (value === null) return '—';
  switch (unit) {
    case 'ms':
      return formatDurationMs(value);
    case 'count':
    case 'user-minutes':
      return countFormat.format(value);
    case 'fraction':
      return `${(value * 100).toFixed(2)}%`;
  }
}

/**
 * The candidate against the baseline: a percentage of the baseline, or for a zero baseline
 * (where a percentage means nothing) the absolute difference. Fractions change in percentage
 * points, so '+1.20 pp' is not mistaken for a relative change.
 */
export function formatChange(baseline: number | null, candidate: number | null, unit: MetricUnit): string {
  if (baseline === null || candidate === null) return '—';
  const delta = candidate - baseline;
  if (delta === 0) return '±0';
  if (unit === 'fraction') return `${delta > 0 ? '+' : ''}${(delta * 100).toFixed(2)} pp`;
  if (baseline === 0) return `${delta > 0 ? '+' : ''}${formatValue(delta, unit)}`;
  const percent = (delta / baseline) * 100;
  return `${percent > 0 ? '+' : ''}${percent.toFixed(1)}%`;
}

/** A difference of a duration with its sign: '+30.0s', '-2m 05s', '±0'. */
export function formatShiftMs(shiftMs: number | null): string {
  if (shiftMs === null) return '—';
  if (shiftMs === 0) return '±0';
  return `${shiftMs > 0 ? '+' : ''}${formatDurationMs(shiftMs)}`;
}

/** 'p=0.034', 'p=1.2e-7'; below what a double can tell apart from 0, 'p<1e-15'. */
export function formatPValue(pValue: number): string {
  if (pValue < 1e-15) return 'p<1e-15';
  if (pValue < 0.001) return `p=${pValue.toExponential(1)}`;
  return `p=${pValue.toFixed(3)}`;
}

function pad2(value: number): string {
  return String(value).padStart(2, '0');
}
