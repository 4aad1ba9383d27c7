import type { Distribution } from '../scenario/schema.ts';
import type { Rng } from './random.ts';

/** One draw from a distribution (unit is the caller's: ms, bytes, kbps). Never negative. */
export function sample(dist: Distribution, rng: Rng): number {
  switch (dist.kind) {
    case 'constant':
      return dist.value;
    case 'exponential':
      return -dist.mean * Math.log(1 - rng.next());
    case 'lognormal':
      return dist.median * Math.exp(dist.sigma * standardNormal(rng));
    case 'uniform':
      return dist.min + (dist.max - dist.min) * rng.next();
    case 'empirical':
      return dist.values[pickIndex(dist.weights, dist.values.length, rng)]!;
  }
}

/** The distribution's mean, for stationary coverage and for preview arithmetic. */
export function mean(dist: Distribution): number {
  switch (dist.kind) {
    case 'constant':
      return dist.value;
    case 'exponential':
      return dist.mean;
    case 'lognormal':
      return dist.median * Math.exp((dist.sigma * dist.sigma) / 2);
    case 'uniform':
      return (dist.min + dist.max) / 2;
    case 'empirical': {
      const weights = dist.weights ?? dist.values.map(() => 1);
      const total = weights.reduce((a, b) => a + b, 0);
      return dist.values.reduce((acc, v, i) => acc + (v * weights[i]!) / total, 0);
    }
  }
}

/** The smallest value the distribution can produce (0 for unbounded-below shapes). */
export function minimum(dist: Distribution): number {
  switch (dist.kind) {
    case 'constant':
      return dist.value;
    case 'uniform':
      return dist.min;
    case 'empirical':
      return Math.min(...dist.values);
    default:
      return 0;
  }
}

/** Box-Muller; one of the pair is discarded so each draw consumes exactly two uniforms. */
function standardNormal(rng: Rng): number {
  const u1 = 1 - rng.next();
  const u2 = rng.next();
  return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
}

/** Index drawn with the given weights (uniform when none). */
export function pickIndex(weights: readonly number[] | undefined, count: number, rng: Rng): number {
  if (!weights) return Math.min(count - 1, Math.floor(rng.next() * count));
  const total = weights.reduce((a, b) => a + b, 0);
  let target = rng.next() * total;
  for (let i = 0; i < count; i++) {
    target -= weights[i]!;
    if (target < 0) return i;
  }
  return count - 1;
}
