/**
 * Thresholds for `phasebench compare`, in a k6-like syntax.
 *
 * Grammar (spaces are allowed between any two tokens):
 *
 *   threshold     := [plan ':'] target op value
 *   plan          := [A-Za-z][A-Za-z0-9_-]*            a plan name as scenarios spell it
 *   target        := run-metric | 'phase' '[' (integer | '*') ']' '.' phase-metric
 *   run-metric    := 'makespan' | 'convergence' | 'peak_queue' | 'stranded' | 'srp_conflicts'
 *                  | 'user_minutes_without_service' | 'converged_share'
 *                  | aggregate '(' series ')'
 *   aggregate     := 'p50' | 'p95' | 'p99' | 'max'
 *   series        := 'push_delivery' | 'user_migration'
 *   phase-metric  := 'convergence' | 'peak_queue' | 'p95_delivery'
 *   op            := '<' | '<=' | '>' | '>=' | '=='
 *   value         := sign number '%'                    relative to the baseline
 *                  | number [duration-unit]             absolute
 *   sign          := '+' | '-'
 *   duration-unit := any unit the `ms` package reads: ms, s, m, h, d, ...
 *
 * Meaning:
 * - Without a plan the threshold applies to every plan present in both summaries; with one, only
 *   to that plan (which must exist).
 * - `phase[2]` is the phase whose `phase` number is 2 in summary.json; `phase[*]` is every phase of
 *   the candidate.
 * - A relative value compares the candidate with the baseline scaled by the percentage:
 *   `makespan < +10%` holds when candidate < baseline * 1.10; `converged_share >= -1%` when
 *   candidate >= baseline * 0.99. The sign is required so a relative limit never reads as an
 *   absolute one.
 * - An absolute value of a duration metric is '15m', '90s', '2h' or a plain number of
 *   milliseconds. Counts, `converged_share` (a fraction 0..1) and `user_minutes_without_service`
 *   take plain numbers.
 *
 * Examples: `p95(push_delivery) < 15m`, `makespan < +10%`, `stranded == 0`,
 * `phase[*].convergence < 30m`, `phased-500: makespan < 9h`.
 */
import ms from 'ms';
import { PhasebenchError } from '../errors.ts';
import {
  isPhaseMetricName,
  isRunMetricName,
  LATENCY_AGGREGATES,
  LATENCY_SERIES_NAMES,
  type MetricUnit,
  PHASE_METRIC_NAMES,
  type PhaseMetricName,
  phaseMetric,
  RUN_METRIC_NAMES,
  type RunMetricName,
  runMetric,
} from './metrics.ts';

export type ComparisonOp = '<' | '<=' | '>' | '>=' | '==';

export type ThresholdTarget =
  | { scope: 'run'; metric: RunMetricName }
  | { scope: 'phase'; phase: number | '*'; metric: PhaseMetricName };

export type ThresholdLimit =
  /** In the metric's unit: milliseconds for durations. */
  | { kind: 'absolute'; value: number }
  /** The limit is baseline * (100 + percent) / 100. */
  | { kind: 'relative'; percent: number };

export interface Threshold {
  /** The expression as written, trimmed; results and reports quote it. */
  source: string;
  /** Null: every plan present in both summaries. */
  plan: string | null;
  target: ThresholdTarget;
  op: ComparisonOp;
  limit: ThresholdLimit;
}

/** A threshold expression that does not follow the grammar above. Input error: exit code 2. */
export class ThresholdSyntaxError extends PhasebenchError {
  override name = 'ThresholdSyntaxError';
  declare readonly code: 'THRESHOLD_SYNTAX';

  constructor(
    readonly source: string,
    /** 0-based offset into `source` where the parser stopped. */
    readonly position: number,
    /** What the grammar allows at `position`. */
    readonly expected: string,
    /** What is there instead. */
    readonly found: string,
  ) {
    super(
      'THRESHOLD_SYNTAX',
      `invalid threshold at column ${position + 1}: expected ${expected}, found ${found}.\n` +
        `  ${source}\n  ${' '.repeat(position)}^`,
      { exitCode: 2, retriable: false },
    );
  }
}

const PLAN_NAME = /[A-Za-z][A-Za-z0-9_-]*/y;
const WORD = /[A-Za-z0-9_]+/y;
const NUMBER = /\d+(?:\.\d+)?|\.\d+/y;
const UNIT = /[A-Za-z]+/y;
const OPS: readonly ComparisonOp[] = ['<=', '>=', '==', '<', '>'];

const RUN_METRIC_LIST = RUN_METRIC_NAMES.join(', ');
const EXPECTED_METRIC = `a metric (${RUN_METRIC_LIST}) or phase[N].metric`;
const EXPECTED_PHASE_METRIC = `a phase metric (${PHASE_METRIC_NAMES.join(', ')})`;
const EXPECTED_OP = 'a comparison (<, <=, >, >=, ==)';

/**
 * Checked when none are given: each relative to the baseline, so they suit any scenario, and each
 * with '<=' / '>=' so a metric that is 0 in both runs (no stranded users, no SRP conflicts) passes.
 */
export const DEFAULT_THRESHOLDS: readonly string[] = [
  'makespan <= +10%',
  'p95(push_delivery) <= +10%',
  'p95(user_migration) <= +10%',
  'peak_queue <= +10%',
  'stranded <= +0%',
  'srp_conflicts <= +0%',
  'user_minutes_without_service <= +10%',
  'converged_share >= -1%',
];

export function parseThreshold(text: string): Threshold {
  return new ThresholdParser(text.trim()).parse();
}

/** Parses every expression; the first bad one throws. */
export function parseThresholds(texts: readonly string[]): Threshold[] {
  return texts.map(parseThreshold);
}

/** `makespan`, `p95(push_delivery)`, `phase[2].convergence`, `phase[*].convergence`. */
export function formatTarget(target: ThresholdTarget): string {
  return target.scope === 'run' ? target.metric : `phase[${target.phase}].${target.metric}`;
}

export function targetUnit(target: ThresholdTarget): MetricUnit {
  return target.scope === 'run' ? runMetric(target.metric).unit : phaseMetric(target.metric).unit;
}

class ThresholdParser {
  private position = 0;

  constructor(private readonly source: string) {}

  parse(): Threshold {
    const plan = this.planPrefix();
    this.skipSpaces();
    const target = this.target();
    this.skipSpaces();
    const op = this.op();
    this.skipSpaces();
    const limit = this.value(target);
    this.skipSpaces();
    if (this.position < this.source.length) this.fail('the end of the threshold');
    return { source: this.source, plan, target, op, limit };
  }

  private planPrefix(): string | null {
    const start = this.position;
    const name = this.match(PLAN_NAME);
    this.skipSpaces();
    if (name !== null && this.source[this.position] === ':') {
      this.position += 1;
      return name;
    }
    // Not a plan after all: the word was the metric.
    this.position = start;
    return null;
  }

  private target(): ThresholdTarget {
    const start = this.position;
    const word = this.match(WORD);
    if (word === null) this.fail(EXPECTED_METRIC);
    this.skipSpaces();
    const next = this.source[this.position];
    if (word === 'phase' && next === '[') return this.phaseTarget();
    if (next === '(') return { scope: 'run', metric: this.aggregateMetric(word, start) };
    if (isRunMetricName(word)) return { scope: 'run', metric: word };
    if (isPhaseMetricName(word) && !isRunMetricName(word)) {
      this.fail(
        `${EXPECTED_METRIC}; '${word}' is a phase metric, write phase[N].${word} or phase[*].${word}`,
        start,
      );
    }
    this.fail(EXPECTED_METRIC, start);
  }

  private aggregateMetric(aggregate: string, start: number): RunMetricName {
    if (!(LATENCY_AGGREGATES as readonly string[]).includes(aggregate)) {
      this.fail(`a latency aggregate (${LATENCY_AGGREGATES.join(', ')})`, start);
    }
    this.position += 1; // '('
    this.skipSpaces();
    const seriesStart = this.position;
    const series = this.match(WORD);
    if (series === null || !(LATENCY_SERIES_NAMES as readonly string[]).includes(series)) {
      this.fail(`a latency series (${LATENCY_SERIES_NAMES.join(', ')})`, seriesStart);
    }
    this.skipSpaces();
    this.expect(')');
    const name = `${aggregate}(${series})`;
    if (!isRunMetricName(name)) this.fail(EXPECTED_METRIC, start);
    return name;
  }

  private phaseTarget(): ThresholdTarget {
    this.position += 1; // '['
    this.skipSpaces();
    let phase: number | '*';
    if (this.source[this.position] === '*') {
      this.position += 1;
      phase = '*';
    } else {
      const digits = this.match(/\d+/y);
      if (digits === null) this.fail("a phase number or '*'");
      phase = Number(digits);
    }
    this.skipSpaces();
    this.expect(']');
    this.skipSpaces();
    this.expect('.');
    this.skipSpaces();
    const start = this.position;
    const metric = this.match(WORD);
    if (metric === null || !isPhaseMetricName(metric)) this.fail(EXPECTED_PHASE_METRIC, start);
    return { scope: 'phase', phase, metric };
  }

  private op(): ComparisonOp {
    for (const op of OPS) {
      if (this.source.startsWith(op, this.position)) {
        this.position += op.length;
        return op;
      }
    }
    this.fail(EXPECTED_OP);
  }

  private value(target: ThresholdTarget): ThresholdLimit {
    const unit = targetUnit(target);
    const sign = this.source[this.position];
    const signed = sign === '+' || sign === '-';
    if (signed) this.position += 1;
    const numberStart = this.position;
    const digits = this.match(NUMBER);
    if (digits === null) {
      this.fail(
        unit === 'ms'
          ? 'a duration (15m, 90s, 2h), milliseconds or a change (+10%)'
          : 'a number or a change (+10%)',
      );
    }
    const amount = Number(digits);

    if (this.source[this.position] === '%') {
      if (!signed) {
        this.fail("a sign before a relative change: '+N%' or '-N%' (relative to the baseline)", numberStart);
      }
      this.position += 1;
      return { kind: 'relative', percent: sign === '-' ? -amount : amount };
    }
    if (signed) this.fail("'%' after a signed value: '+N%' or '-N%' is a change relative to the baseline");

    const numberEnd = this.position;
    // '15 m' reads like '15m', as it does for the ms package; a count takes no unit, so a word
    // after it is trailing text, not a unit.
    if (unit === 'ms') this.skipSpaces();
    const unitStart = this.position;
    const unitText = this.match(UNIT);
    if (unitText === null) {
      this.position = numberEnd;
      return { kind: 'absolute', value: amount };
    }
    if (unit !== 'ms') {
      this.fail(`a plain number for ${formatTarget(target)} (a ${unit}), without a unit`, unitStart);
    }
    const valueMs = ms(`${digits}${unitText}` as ms.StringValue) as number | undefined;
    if (valueMs === undefined || !Number.isFinite(valueMs)) {
      this.fail('a duration unit such as ms, s, m, h or d', unitStart);
    }
    return { kind: 'absolute', value: valueMs };
  }

  private expect(char: string): void {
    if (this.source[this.position] !== char) this.fail(`'${char}'`);
    this.position += 1;
  }

  private match(pattern: RegExp): string | null {
    pattern.lastIndex = this.position;
    const found = pattern.exec(this.source);
    if (found === null) return null;
    this.position += found[0].length;
    return found[0];
  }

  private skipSpaces(): void {
    while (this.position < this.source.length && /\s/.test(this.source[this.position] ?? ''))
      this.position += 1;
  }

  private fail(expected: string, at = this.position): never {
    throw new ThresholdSyntaxError(this.source, at, expected, describeFound(this.source, at));
  }
}

function describeFound(source: string, at: number): string {
  if (at >= source.length) return 'the end of the input';
  const token = /^\S+/.exec(source.slice(at))?.[0] ?? source.slice(at);
  return `'${token.length > 24 ? `${token.slice(0, 24)}…` : token}'`;
}
