import { describe, expect, it } from 'vitest';
import { evaluateThresholds, type ThresholdResult } from './evaluate.ts';
import { HOUR_MS, MINUTE_MS, runSummary, spread } from './test-summaries.ts';
import { parseThresholds } from './thresholds.ts';

function evaluate(
  thresholds: string[],
  baseline: ReturnType<typeof runSummary>,
  candidate: ReturnType<typeof runSummary>,
): ThresholdResult[] {
  return evaluateThresholds(parseThresholds(thresholds), baseline, candidate);
}

describe('evaluateThresholds: relative limits', () => {
  const baseline = runSummary({ 'phased-500': { makespanMs: 8 * HOUR_MS, peakQueue: 1_000 } });

  it('passes a candidate within +10% of the baseline and reports the scaled limit', () => {
    const candidate = runSummary({ 'phased-500': { makespanMs: 8.5 * HOUR_MS } });
    const [result] = evaluate(['makespan < +10%'], baseline, candidate);
    expect(result).toMatchObject({
      threshold: 'makespan < +10%',
      plan: 'phased-500',
      metric: 'makespan',
      baselineValue: 8 * HOUR_MS,
      candidateValue: 8.5 * HOUR_MS,
      limit: (8 * 60 + 48) * MINUTE_MS,
      passed: true,
      error: false,
    });
    expect(result?.message).toBe('makespan 8h 30m is < 8h 48m (baseline 8h 00m +10%)');
  });

  it('fails a candidate beyond +10% of the baseline', () => {
    const candidate = runSummary({ 'phased-500': { makespanMs: 9 * HOUR_MS } });
    const [result] = evaluate(['makespan < +10%'], baseline, candidate);
    expect(result?.passed).toBe(false);
    expect(result?.error).toBe(false);
    expect(result?.message).toBe('makespan 9h 00m is not < 8h 48m (baseline 8h 00m +10%)');
  });

  it('puts the limit exactly at baseline * (100 + p) / 100, so a candidate at the limit passes <=', () => {
    const candidate = runSummary({ 'phased-500': { peakQueue: 1_100 } });
    const [atLimit] = evaluate(['peak_queue <= +10%'], baseline, candidate);
    expect(atLimit?.limit).toBe(1_100);
    expect(atLimit?.passed).toBe(true);
    const [strict] = evaluate(['peak_queue < +10%'], baseline, candidate);
    expect(strict?.passed).toBe(false);
  });

  it('reads a negative change as a floor below the baseline', () => {
    const base = runSummary({ p: { convergedShare: 1 } });
    expect(
      evaluate(['converged_share >= -1%'], base, runSummary({ p: { convergedShare: 0.995 } }))[0]?.passed,
    ).toBe(true);
    expect(
      evaluate(['converged_share >= -1%'], base, runSummary({ p: { convergedShare: 0.98 } }))[0]?.passed,
    ).toBe(false);
  });

  it('passes "<= +0%" when both runs have none and fails when the candidate has more', () => {
    const none = runSummary({ p: { stranded: 0, srpConflicts: 0 } });
    expect(evaluate(['stranded <= +0%', 'srp_conflicts <= +0%'], none, none).map((r) => r.passed)).toEqual([
      true,
      true,
    ]);
    const worse = runSummary({ p: { stranded: 3, srpConflicts: 1 } });
    const results = evaluate(['stranded <= +0%', 'srp_conflicts <= +0%'], none, worse);
    expect(results.map((r) => [r.candidateValue, r.passed])).toEqual([
      [3, false],
      [1, false],
    ]);
  });

  it('compares latency percentiles read from the histograms', () => {
    const base = runSummary({ p: { pushDeliveryMs: spread(100, 1_000, 10_000) } });
    const slower = runSummary({ p: { pushDeliveryMs: spread(100, 1_000, 20_000) } });
    const [result] = evaluate(['p95(push_delivery) <= +10%'], base, slower);
    expect(result?.baselineValue).toBeGreaterThan(9_000);
    expect(result?.candidateValue).toBeGreaterThan(18_000);
    expect(result?.passed).toBe(false);
  });
});

describe('evaluateThresholds: absolute limits', () => {
  const summary = runSummary({ p: { makespanMs: 7 * HOUR_MS, stranded: 0, userMinutesWithoutService: 50 } });

  it('checks durations, counts and user-minutes against the written value', () => {
    const results = evaluate(
      ['makespan < 9h', 'makespan < 6h', 'stranded == 0', 'user_minutes_without_service <= 40'],
      summary,
      summary,
    );
    expect(results.map((r) => [r.metric, r.limit, r.passed])).toEqual([
      ['makespan', 9 * HOUR_MS, true],
      ['makespan', 6 * HOUR_MS, false],
      ['stranded', 0, true],
      ['user_minutes_without_service', 40, false],
    ]);
  });

  it('supports > and >= as well as < and <=', () => {
    const results = evaluate(['makespan > 7h', 'makespan >= 7h'], summary, summary);
    expect(results.map((r) => r.passed)).toEqual([false, true]);
  });
});

describe('evaluateThresholds: plans', () => {
  const baseline = runSummary({
    'big-bang': { makespanMs: 2 * HOUR_MS },
    'phased-500': { makespanMs: 8 * HOUR_MS },
  });
  const candidate = runSummary({
    'big-bang': { makespanMs: 2 * HOUR_MS },
    'phased-500': { makespanMs: 10 * HOUR_MS },
    'phased-1000': { makespanMs: 5 * HOUR_MS },
  });

  it('applies a plan-less threshold to every plan in both summaries, and only those', () => {
    const results = evaluate(['makespan < 9h'], baseline, candidate);
    expect(results.map((r) => [r.plan, r.passed])).toEqual([
      ['big-bang', true],
      ['phased-500', false],
    ]);
  });

  it('applies a threshold with a plan prefix to that plan only', () => {
    const results = evaluate(['big-bang: makespan < 3h'], baseline, candidate);
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ plan: 'big-bang', passed: true });
  });

  it('checks an absolute threshold on a plan only the candidate has', () => {
    const [result] = evaluate(['phased-1000: makespan < 6h'], baseline, candidate);
    expect(result).toMatchObject({
      plan: 'phased-1000',
      baselineValue: null,
      candidateValue: 5 * HOUR_MS,
      passed: true,
    });
  });

  it('makes a relative threshold on a plan the baseline lacks an error result', () => {
    const [result] = evaluate(['phased-1000: makespan < +10%'], baseline, candidate);
    expect(result).toMatchObject({ plan: 'phased-1000', passed: false, error: true });
    expect(result?.message).toContain("no plan 'phased-1000' in the baseline");
  });

  it('makes a threshold naming a missing plan a failed error result that lists the plans', () => {
    const [result] = evaluate(['phased-5000: makespan < 9h'], baseline, candidate);
    expect(result).toMatchObject({ plan: 'phased-5000', passed: false, error: true, candidateValue: null });
    expect(result?.message).toBe(
      "cannot check: no plan 'phased-5000' in the candidate " +
        '(baseline plans: big-bang, phased-500; candidate plans: big-bang, phased-500, phased-1000)',
    );
  });

  it('fails a plan-less threshold when no plan is in both summaries instead of passing on nothing', () => {
    const other = runSummary({ 'collapse-all': {} });
    const [result] = evaluate(['makespan < 9h'], baseline, other);
    expect(result).toMatchObject({ plan: '*', passed: false, error: true });
    expect(result?.message).toContain('no plan is present in both summaries');
  });
});

describe('evaluateThresholds: phases', () => {
  const baseline = runSummary({
    p: {
      phases: [
        { phase: 1, convergenceMs: 20 * MINUTE_MS, peakQueue: 400 },
        { phase: 2, convergenceMs: 25 * MINUTE_MS, peakQueue: 600 },
      ],
    },
  });
  const candidate = runSummary({
    p: {
      phases: [
        { phase: 1, convergenceMs: 22 * MINUTE_MS, peakQueue: 500 },
        { phase: 2, convergenceMs: 35 * MINUTE_MS, peakQueue: 600 },
        { phase: 3, convergenceMs: null, peakQueue: 100, p95DeliveryMs: null },
      ],
    },
  });

  it('checks phase[*] once per candidate phase, by phase number', () => {
    const results = evaluate(['phase[*].convergence < 30m'], baseline, candidate);
    expect(results.map((r) => [r.phase, r.metric, r.candidateValue, r.passed])).toEqual([
      [1, 'phase[1].convergence', 22 * MINUTE_MS, true],
      [2, 'phase[2].convergence', 35 * MINUTE_MS, false],
      [3, 'phase[3].convergence', null, false],
    ]);
  });

  it('fails a phase that never converged, saying so', () => {
    const [result] = evaluate(['phase[3].convergence < 30m'], baseline, candidate);
    expect(result).toMatchObject({ phase: 3, passed: false, error: false });
    expect(result?.message).toBe(
      'phase[3].convergence has no value: the phase never converged before the horizon; required < 30m 00s',
    );
  });

  it('checks one phase relative to the same phase of the baseline', () => {
    const [result] = evaluate(['phase[1].peak_queue <= +10%'], baseline, candidate);
    expect(result).toMatchObject({
      phase: 1,
      baselineValue: 400,
      candidateValue: 500,
      limit: 440,
      passed: false,
    });
  });

  it('makes a relative phase threshold on a phase the baseline lacks an error result', () => {
    const [result] = evaluate(['phase[3].peak_queue <= +10%'], baseline, candidate);
    expect(result).toMatchObject({ phase: 3, passed: false, error: true });
    expect(result?.message).toBe(
      "cannot check: plan 'p' has no phase 3 in the baseline to be relative to (phases: 1, 2)",
    );
  });

  it('makes a threshold on a phase that does not exist an error result', () => {
    const [result] = evaluate(['phase[7].convergence < 30m'], baseline, candidate);
    expect(result).toMatchObject({ plan: 'p', passed: false, error: true });
    expect(result?.phase).toBeUndefined();
    expect(result?.message).toBe("cannot check: plan 'p' has no phase 7 in the candidate (phases: 1, 2, 3)");
  });

  it('makes phase[*] on a plan without phases an error result', () => {
    const noPhases = runSummary({ p: { phases: [] } });
    const [result] = evaluate(['phase[*].convergence < 30m'], noPhases, noPhases);
    expect(result).toMatchObject({ passed: false, error: true });
    expect(result?.message).toContain('has no phases in the candidate');
  });
});
