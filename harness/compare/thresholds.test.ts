import { describe, expect, it } from 'vitest';
import {
  DEFAULT_THRESHOLDS,
  formatTarget,
  parseThreshold,
  parseThresholds,
  type Threshold,
  ThresholdSyntaxError,
} from './thresholds.ts';

function syntaxError(text: string): ThresholdSyntaxError {
  try {
    parseThreshold(text);
  } catch (err) {
    if (err instanceof ThresholdSyntaxError) return err;
    throw err;
  }
  throw new Error(`expected '${text}' to be rejected`);
}

describe('parseThreshold accepts the grammar', () => {
  const accepted: Array<[string, Omit<Threshold, 'source'>]> = [
    [
      'p95(push_delivery) < 15m',
      {
        plan: null,
        target: { scope: 'run', metric: 'p95(push_delivery)' },
        op: '<',
        limit: { kind: 'absolute', value: 900_000 },
      },
    ],
    [
      'p99(user_migration) <= 2h',
      {
        plan: null,
        target: { scope: 'run', metric: 'p99(user_migration)' },
        op: '<=',
        limit: { kind: 'absolute', value: 7_200_000 },
      },
    ],
    [
      'makespan < +10%',
      {
        plan: null,
        target: { scope: 'run', metric: 'makespan' },
        op: '<',
        limit: { kind: 'relative', percent: 10 },
      },
    ],
    [
      'converged_share >= -1.5%',
      {
        plan: null,
        target: { scope: 'run', metric: 'converged_share' },
        op: '>=',
        limit: { kind: 'relative', percent: -1.5 },
      },
    ],
    [
      'convergence < 12h',
      {
        plan: null,
        target: { scope: 'run', metric: 'convergence' },
        op: '<',
        limit: { kind: 'absolute', value: 43_200_000 },
      },
    ],
    [
      'peak_queue <= 2000',
      {
        plan: null,
        target: { scope: 'run', metric: 'peak_queue' },
        op: '<=',
        limit: { kind: 'absolute', value: 2000 },
      },
    ],
    [
      'stranded == 0',
      {
        plan: null,
        target: { scope: 'run', metric: 'stranded' },
        op: '==',
        limit: { kind: 'absolute', value: 0 },
      },
    ],
    [
      'srp_conflicts == 0',
      {
        plan: null,
        target: { scope: 'run', metric: 'srp_conflicts' },
        op: '==',
        limit: { kind: 'absolute', value: 0 },
      },
    ],
    [
      'user_minutes_without_service < +5%',
      {
        plan: null,
        target: { scope: 'run', metric: 'user_minutes_without_service' },
        op: '<',
        limit: { kind: 'relative', percent: 5 },
      },
    ],
    [
      'max(push_delivery) > 90s',
      {
        plan: null,
        target: { scope: 'run', metric: 'max(push_delivery)' },
        op: '>',
        limit: { kind: 'absolute', value: 90_000 },
      },
    ],
    [
      'phase[*].convergence < 30m',
      {
        plan: null,
        target: { scope: 'phase', phase: '*', metric: 'convergence' },
        op: '<',
        limit: { kind: 'absolute', value: 1_800_000 },
      },
    ],
    [
      'phase[2].convergence < 20m',
      {
        plan: null,
        target: { scope: 'phase', phase: 2, metric: 'convergence' },
        op: '<',
        limit: { kind: 'absolute', value: 1_200_000 },
      },
    ],
    [
      'phase[3].p95_delivery <= 250',
      {
        plan: null,
        target: { scope: 'phase', phase: 3, metric: 'p95_delivery' },
        op: '<=',
        limit: { kind: 'absolute', value: 250 },
      },
    ],
    [
      'phased-500: makespan < 9h',
      {
        plan: 'phased-500',
        target: { scope: 'run', metric: 'makespan' },
        op: '<',
        limit: { kind: 'absolute', value: 32_400_000 },
      },
    ],
    [
      'big_bang:phase[*].peak_queue<=+0%',
      {
        plan: 'big_bang',
        target: { scope: 'phase', phase: '*', metric: 'peak_queue' },
        op: '<=',
        limit: { kind: 'relative', percent: 0 },
      },
    ],
    [
      '  p50 ( push_delivery )  >=  1.5 s ',
      {
        plan: null,
        target: { scope: 'run', metric: 'p50(push_delivery)' },
        op: '>=',
        limit: { kind: 'absolute', value: 1500 },
      },
    ],
  ];

  it.each(accepted)('%s', (text, expected) => {
    expect(parseThreshold(text)).toEqual({ ...expected, source: text.trim() });
  });

  it('reads a plain number of a duration metric as milliseconds', () => {
    expect(parseThreshold('makespan < 5400000').limit).toEqual({ kind: 'absolute', value: 5_400_000 });
  });

  it('parses every default threshold', () => {
    expect(parseThresholds(DEFAULT_THRESHOLDS).map((threshold) => threshold.source)).toEqual(
      DEFAULT_THRESHOLDS,
    );
  });

  it('formats targets the way they are written', () => {
    expect(formatTarget(parseThreshold('phase[*].convergence < 30m').target)).toBe('phase[*].convergence');
    expect(formatTarget(parseThreshold('p95( push_delivery ) < 30m').target)).toBe('p95(push_delivery)');
  });
});

describe('parseThreshold rejects bad input with the position and what was expected', () => {
  it('an unknown metric, pointing at it and listing the metrics', () => {
    const err = syntaxError('latency < 5s');
    expect(err.position).toBe(0);
    expect(err.found).toBe("'latency'");
    expect(err.expected).toContain('makespan');
    expect(err.expected).toContain('p95(push_delivery)');
    expect(err.code).toBe('THRESHOLD_SYNTAX');
    expect(err.exitCode).toBe(2);
  });

  it('a phase metric used without a phase', () => {
    const err = syntaxError('p95_delivery < 5m');
    expect(err.position).toBe(0);
    expect(err.expected).toContain('phase[N].p95_delivery or phase[*].p95_delivery');
  });

  it('an unknown aggregate', () => {
    const err = syntaxError('p90(push_delivery) < 5s');
    expect(err.position).toBe(0);
    expect(err.expected).toBe('a latency aggregate (p50, p95, p99, max)');
  });

  it('an unknown latency series', () => {
    const err = syntaxError('p95(delivery) < 5s');
    expect(err.position).toBe(4);
    expect(err.expected).toBe('a latency series (push_delivery, user_migration)');
    expect(err.found).toBe("'delivery)'");
  });

  it('a missing closing parenthesis', () => {
    const err = syntaxError('p95(push_delivery < 5s');
    expect(err.position).toBe(18);
    expect(err.expected).toBe("')'");
  });

  it('a missing comparison', () => {
    const err = syntaxError('makespan 9h');
    expect(err.position).toBe(9);
    expect(err.expected).toBe('a comparison (<, <=, >, >=, ==)');
    expect(err.found).toBe("'9h'");
  });

  it("a single '=' is not a comparison", () => {
    expect(syntaxError('stranded = 0').expected).toBe('a comparison (<, <=, >, >=, ==)');
  });

  it('a missing value', () => {
    const err = syntaxError('makespan <');
    expect(err.position).toBe(10);
    expect(err.found).toBe('the end of the input');
    expect(err.expected).toContain('a duration');
  });

  it('an unknown duration unit, pointing at the unit', () => {
    const err = syntaxError('p95(push_delivery) < 15q');
    expect(err.position).toBe(23);
    expect(err.expected).toBe('a duration unit such as ms, s, m, h or d');
    expect(err.message).toContain("found 'q'");
  });

  it('a duration for a count', () => {
    const err = syntaxError('peak_queue <= 15m');
    expect(err.position).toBe(16);
    expect(err.expected).toBe('a plain number for peak_queue (a count), without a unit');
  });

  it('a relative change without a sign', () => {
    const err = syntaxError('makespan < 10%');
    expect(err.position).toBe(11);
    expect(err.expected).toContain("'+N%' or '-N%'");
  });

  it('a signed value that is not a percentage', () => {
    const err = syntaxError('stranded <= +3');
    expect(err.position).toBe(14);
    expect(err.expected).toContain("'%' after a signed value");
  });

  it('text after the value', () => {
    const err = syntaxError('stranded == 0 and more');
    expect(err.position).toBe(14);
    expect(err.expected).toBe('the end of the threshold');
    expect(err.found).toBe("'and'");
  });

  it('a phase that is neither a number nor *', () => {
    const err = syntaxError('phase[two].convergence < 30m');
    expect(err.position).toBe(6);
    expect(err.expected).toBe("a phase number or '*'");
  });

  it('an unknown phase metric', () => {
    const err = syntaxError('phase[1].makespan < 30m');
    expect(err.position).toBe(9);
    expect(err.expected).toBe('a phase metric (convergence, peak_queue, p95_delivery)');
  });

  it('an empty threshold', () => {
    const err = syntaxError('   ');
    expect(err.position).toBe(0);
    expect(err.found).toBe('the end of the input');
  });

  it('shows the expression with a caret under the position', () => {
    const err = syntaxError('makespan < 10%');
    expect(err.message).toBe(
      "invalid threshold at column 12: expected a sign before a relative change: '+N%' or '-N%' (relative to the baseline), found '10%'.\n" +
        '  makespan < 10%\n' +
        '             ^',
    );
  });

  it('parseThresholds stops at the first bad expression', () => {
    expect(() => parseThresholds(['stranded == 0', 'stranded =='])).toThrow(ThresholdSyntaxError);
  });
});
