import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareLatencyHistograms,
  decodeHistogram,
  histogramBuckets,
  kolmogorovSurvival,
  ksPValue,
  ksStatistic,
} from './stats.ts';
import { encodeHistogram, spread } from './test-summaries.ts';

/** Buckets of the histogram a run would write for these latencies: encoded, then decoded. */
function bucketsOf(valuesMs: readonly number[]) {
  return histogramBuckets(decodeHistogram(encodeHistogram(valuesMs)));
}

/** D straight from the definition, over raw samples: max |F_a(x) - F_b(x)| at every sample value. */
function ksOfSamples(a: readonly number[], b: readonly number[]): number {
  const cdf = (sample: readonly number[], x: number) => sample.filter((v) => v <= x).length / sample.length;
  return Math.max(...[...a, ...b].map((x) => Math.abs(cdf(a, x) - cdf(b, x))));
}

// Up to an hour in milliseconds: the range push and migration latencies live in.
const latencies = fc.array(fc.integer({ min: 1, max: 3_600_000 }), { minLength: 1, maxLength: 150 });

describe('ksStatistic over HDR histogram buckets (properties)', () => {
  it('is 0 for a histogram compared with itself', () => {
    fc.assert(
      fc.property(latencies, (sample) => {
        const buckets = bucketsOf(sample);
        expect(ksStatistic(buckets, buckets)).toBe(0);
      }),
    );
  });

  it('is symmetric', () => {
    fc.assert(
      fc.property(latencies, latencies, (a, b) => {
        expect(ksStatistic(bucketsOf(a), bucketsOf(b))).toBe(ksStatistic(bucketsOf(b), bucketsOf(a)));
      }),
    );
  });

  it('lies between 0 and 1', () => {
    fc.assert(
      fc.property(latencies, latencies, (a, b) => {
        const d = ksStatistic(bucketsOf(a), bucketsOf(b));
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(1);
      }),
    );
  });

  it('is 1 when every value of one sample is shifted up by a large constant', () => {
    const shiftMs = 100 * 3_600_000;
    fc.assert(
      fc.property(latencies, (sample) => {
        const shifted = sample.map((value) => value + shiftMs);
        expect(ksStatistic(bucketsOf(sample), bucketsOf(shifted))).toBe(1);
      }),
    );
  });

  it('equals D of the raw samples where the histogram records values exactly (below 2048)', () => {
    const exact = fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 80 });
    fc.assert(
      fc.property(exact, exact, (a, b) => {
        expect(ksStatistic(bucketsOf(a), bucketsOf(b))).toBeCloseTo(ksOfSamples(a, b), 12);
      }),
    );
  });

  it('never exceeds D of the raw samples: merging values into buckets only hides differences', () => {
    fc.assert(
      fc.property(latencies, latencies, (a, b) => {
        expect(ksStatistic(bucketsOf(a), bucketsOf(b))).toBeLessThanOrEqual(ksOfSamples(a, b) + 1e-12);
      }),
    );
  });
});

describe('the asymptotic p-value', () => {
  it('matches tabulated values of the Kolmogorov distribution', () => {
    // Critical values: P(K > 1.3581) = 0.05, P(K > 1.6276) = 0.01, P(K > 1.2238) = 0.10.
    expect(kolmogorovSurvival(1.3581)).toBeCloseTo(0.05, 4);
    expect(kolmogorovSurvival(1.6276)).toBeCloseTo(0.01, 4);
    expect(kolmogorovSurvival(1.2238)).toBeCloseTo(0.1, 4);
    expect(kolmogorovSurvival(0.5)).toBeCloseTo(0.9639, 4);
  });

  it('is continuous where the two series meet', () => {
    expect(kolmogorovSurvival(1.18 - 1e-9)).toBeCloseTo(kolmogorovSurvival(1.18), 8);
  });

  it('decreases as lambda grows and stays within [0, 1]', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 5, noNaN: true }),
        fc.double({ min: 0, max: 5, noNaN: true }),
        (x, y) => {
          const [low, high] = x <= y ? [x, y] : [y, x];
          expect(kolmogorovSurvival(low)).toBeGreaterThanOrEqual(kolmogorovSurvival(high));
          expect(kolmogorovSurvival(low)).toBeLessThanOrEqual(1);
          expect(kolmogorovSurvival(high)).toBeGreaterThanOrEqual(0);
        },
      ),
    );
  });

  it('is 1 for D = 0 and for an empty sample', () => {
    expect(ksPValue(0, 100, 100)).toBe(1);
    expect(ksPValue(0.9, 0, 100)).toBe(1);
  });
});

describe('compareLatencyHistograms', () => {
  it('says distributions differ when the candidate is clearly slower, with the percentile shifts', () => {
    const baseline = spread(1_000, 1_000, 60_000);
    const candidate = baseline.map((value) => value + 30_000);
    const comparison = compareLatencyHistograms(encodeHistogram(baseline), encodeHistogram(candidate));
    expect(comparison.baselineCount).toBe(1_000);
    expect(comparison.candidateCount).toBe(1_000);
    expect(comparison.d).toBeGreaterThan(0.45);
    expect(comparison.pValue).toBeLessThan(1e-10);
    expect(comparison.significant).toBe(true);
    expect(comparison.verdict).toMatch(/^distributions differ \(p[=<]/);
    for (const shift of comparison.percentiles) {
      // HDR keeps 3 significant digits: ±0.1% of ~90 s.
      expect(shift.shiftMs).toBeGreaterThan(29_800);
      expect(shift.shiftMs).toBeLessThan(30_200);
    }
    expect(comparison.percentiles.map((shift) => shift.percentile)).toEqual([50, 95, 99]);
  });

  it('finds no significant difference between two samples of the same distribution', () => {
    const baseline = spread(500, 1_000, 60_000);
    const candidate = spread(480, 1_050, 60_050);
    const comparison = compareLatencyHistograms(encodeHistogram(baseline), encodeHistogram(candidate));
    expect(comparison.significant).toBe(false);
    expect(comparison.pValue).toBeGreaterThan(0.5);
    expect(comparison.verdict).toBe(`no significant difference (p=${comparison.pValue.toFixed(3)})`);
  });

  it('does not test when a side recorded nothing', () => {
    const comparison = compareLatencyHistograms(encodeHistogram([]), encodeHistogram([1_000, 2_000]));
    expect(comparison.significant).toBe(false);
    expect(comparison.pValue).toBe(1);
    expect(comparison.verdict).toBe('not compared: the baseline recorded no samples');
    expect(comparison.percentiles[0]).toEqual({
      percentile: 50,
      baselineMs: null,
      candidateMs: 1_000,
      shiftMs: null,
    });
  });

  it('reads an empty string as an empty histogram', () => {
    expect(compareLatencyHistograms('', '').baselineCount).toBe(0);
  });
});
