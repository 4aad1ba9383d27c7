/**
 * How a validation problem names its place and shows what was found, the same way everywhere
 * input is checked: scenario files, the HTTP admin API and Kafka messages.
 */
import { inspect } from 'node:util';

export type IssuePath = readonly PropertyKey[];

export interface ShowLimits {
  /** How deep nested values are shown. */
  depth: number;
  /** Array items shown before '… more items'. */
  maxArrayLength: number;
  /** Longest text; longer is cut with an ellipsis. */
  maxChars: number;
}

/**
 * `plans.phased.size`, `domain.instances[2].id`, `plans['phased-2k']`; `root` names the value
 * itself (an empty path).
 */
export function formatIssuePath(path: IssuePath, root: string): string {
  if (path.length === 0) return root;
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment))
      text += text ? `.${segment}` : segment;
    else text += `[${showValue(String(segment), { depth: 1, maxArrayLength: 3, maxChars: 80 })}]`;
  }
  return text;
}

/** The value found at `path` in the input, or undefined where the path leads nowhere. */
export function valueAtPath(input: unknown, path: IssuePath): unknown {
  let value = input;
  for (const segment of path) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<PropertyKey, unknown>)[segment];
  }
  return value;
}

/**
 * A value as its author wrote it, shortened. inspect with a depth limit, not JSON.stringify: input
 * may nest thousands deep, and a recursive stringify would overflow the stack.
 */
export function showValue(value: unknown, limits: ShowLimits): string {
  if (value === undefined) return 'nothing';
  const text = inspect(value, {
    depth: limits.depth,
    breakLength: Number.POSITIVE_INFINITY,
    maxArrayLength: limits.maxArrayLength,
    maxStringLength: 40,
  });
  return text.length > limits.maxChars ? `${text.slice(0, limits.maxChars - 1)}…` : text;
}
