/**
 * Statistical comparison of two latency distributions stored as HDR histograms.
 *
 * The two-sample Kolmogorov–Smirnov statistic D is the largest gap between the two empirical
 * distribution functions. Summaries keep histograms, not samples, so the functions are evaluated at
 * each recorded bucket's value (its highest equivalent value): values the histogram cannot tell
 * apart count as ties. Binning only merges values, so D computed this way is never larger than D
 * of the raw samples and the test errs towards "no difference".
 *
 * The p-value is the asymptotic one (Kolmogorov distribution with Stephens' small-sample
 * correction, as in Numerical Recipes). With the sample sizes of a rollout (thousands to millions
 * of pushes) even a tiny D is significant, so the report shows D and the percentile shifts next
 * to p: they say how large the difference is, p only says whether it is noise.
 */
import { build, decodeFromCompressedBase64, type Histogram, JsHistogram } from 'hdr-histogram-js';
import { formatPValue } from './format.ts';

/** One recorded bucket of a histogram: every sample equivalent to `valueMs`, and how many. */
export interface HistogramBucket {
  valueMs: number;
  count: number;
}

export interface PercentileShift {
  percentile: 50 | 95 | 99;
  /** Null when the histogram is empty. */
  baselineMs: number | null;
  candidateMs: number | null;
  /** candidate - baseline. */
  shiftMs: number | null;
}

export interface LatencyComparison {
  baselineCount: number;
  candidateCount: number;
  /** Kolmogorov–Smirnov statistic, 0 (same distribution) ..1 (disjoint). */
  d: number;
  /** Asymptotic p-value of D; 1 when either histogram is empty. */
  pValue: number;
  /** Significance level p was tested against. */
  alpha: number;
  significant: boolean;
  percentiles: PercentileShift[];
  /** 'distributions differ (p=…)', 'no significant difference (p=…)' or why no test was made. */
  verdict: string;
}

/** The default significance level. */
export const DEFAULT_ALPHA = 0.05;

const PERCENTILES = [50, 95, 99] as const;

export function decodeHistogram(encoded: string): Histogram {
  // An empty string is how an empty histogram may be written; decoding it would throw.
  if (encoded.trim() === '') return build();
  return decodeFromCompressedBase64(encoded);
}

/** Recorded buckets in increasing value order. */
export function histogramBuckets(histogram: Histogram): HistogramBucket[] {
  if (!(histogram instanceof JsHistogram)) {
    throw new TypeError('expected a JavaScript HDR histogram; WebAssembly histograms cannot be iterated');
  }
  const buckets: HistogramBucket[] = [];
  const iterator = histogram.recordedValuesIterator;
  iterator.reset();
  while (iterator.hasNext()) {
    const bucket = iterator.next();
    buckets.push({ valueMs: bucket.valueIteratedTo, count: bucket.countAtValueIteratedTo });
  }
  return buckets;
}

/**
 * The two-sample KS statistic over bucket lists sorted by value. 0 when either sample is empty:
 * there is no distribution to differ from.
 */
export function ksStatistic(a: readonly HistogramBucket[], b: readonly HistogramBucket[]): number {
  const totalA = total(a);
  const totalB = total(b);
  if (totalA === 0 || totalB === 0) return 0;
  let i = 0;
  let j = 0;
  let cumulativeA = 0;
  let cumulativeB = 0;
  let d = 0;
  while (i < a.length || j < b.length) {
    const valueA = a[i]?.valueMs ?? Number.POSITIVE_INFINITY;
    const valueB = b[j]?.valueMs ?? Number.POSITIVE_INFINITY;
    const value = Math.min(valueA, valueB);
    // Step both functions past every bucket at this value before measuring: ties move together.
    while (i < a.length && a[i]!.valueMs === value) cumulativeA += a[i++]!.count;
    while (j < b.length && b[j]!.valueMs === value) cumulativeB += b[j++]!.count;
    d = Math.max(d, Math.abs(cumulativeA / totalA - cumulativeB / totalB));
  }
  return d;
}

/** Asymptotic p-value of D for samples of sizes n and m. */
export function ksPValue(d: number, n: number, m: number): number {
  if (n === 0 || m === 0) return 1;
  const effective = Math.sqrt((n * m) / (n + m));
  return kolmogorovSurvival((effective + 0.12 + 0.11 / effective) * d);
}

/**
 * Q_KS(λ) = P(K > λ) of the Kolmogorov distribution: 2 Σ (-1)^(j-1) exp(-2 j² λ²). That series
 * converges slowly for small λ, where the Jacobi-theta form of the CDF is used instead
 * (Numerical Recipes 3rd ed., §6.14).
 */
export function kolmogorovSurvival(lambda: number): number {
  if (lambda <= 0) return 1;
  if (lambda < 1.18) {
    const y = Math.exp(-(Math.PI * Math.PI) / (8 * lambda * lambda));
    // Below λ ≈ 0.1 the CDF underflows to 0 (and π²/λ² to infinity for subnormal λ).
    if (y === 0) return 1;
    const cdf = (Math.sqrt(2 * Math.PI) / lambda) * (y + y ** 9 + y ** 25 + y ** 49);
    return clamp01(1 - cdf);
  }
  const x = Math.exp(-2 * lambda * lambda);
  return clamp01(2 * (x - x ** 4 + x ** 9 - x ** 16));
}

/** Compares two encoded histograms (hdr-histogram-js compressed base64), baseline first. */
export function compareLatencyHistograms(
  baselineEncoded: string,
  candidateEncoded: string,
  alpha = DEFAULT_ALPHA,
): LatencyComparison {
  const baseline = decodeHistogram(baselineEncoded);
  const candidate = decodeHistogram(candidateEncoded);
  const baselineCount = baseline.totalCount;
  const candidateCount = candidate.totalCount;
  const d = ksStatistic(histogramBuckets(baseline), histogramBuckets(candidate));
  const pValue = ksPValue(d, baselineCount, candidateCount);
  const empty = baselineCount === 0 || candidateCount === 0;
  const significant = !empty && pValue < alpha;
  return {
    baselineCount,
    candidateCount,
    d,
    pValue,
    alpha,
    significant,
    percentiles: PERCENTILES.map((percentile) => {
      const baselineMs = baselineCount === 0 ? null : baseline.getValueAtPercentile(percentile);
      const candidateMs = candidateCount === 0 ? null : candidate.getValueAtPercentile(percentile);
      const shiftMs = baselineMs === null || candidateMs === null ? null : candidateMs - baselineMs;
      return { percentile, baselineMs, candidateMs, shiftMs };
    }),
    verdict: empty
      ? `not compared: the ${baselineCount === 0 ? 'baseline' : 'candidate'} recorded no samples`
      : significant
        ? `distributions differ (${formatPValue(pValue)})`
        : `no significant difference (${formatPValue(pValue)})`,
  };
}

function total(buckets: readonly HistogramBucket[]): number {
  let sum = 0;
  for (const bucket of buckets) sum += bucket.count;
  return sum;
}

function clamp01(value: number): number {
  return Math.min(1, Math.max(0, value));
}
