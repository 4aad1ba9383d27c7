/**
 * The benches' options: node:util's parseArgs, with what a user expects of a command around it.
 * `--help` (or `-h`) prints the usage and exits 0; an unknown option or a missing value prints
 * one line and the usage on stderr and exits 2, instead of a stack trace.
 */
import { parseArgs } from 'node:util';

export interface BenchOption {
  type: 'string' | 'boolean';
  default?: string | boolean;
  /** One line for --help. Options without one are internal (a child process's mode) and not listed. */
  help?: string;
  /** The value's name in --help: `--rounds <n>`. Default `value`. */
  value?: string;
}

type Values<O extends Record<string, BenchOption>> = {
  [K in keyof O]: O[K]['type'] extends 'boolean'
    ? boolean
    : O[K] extends { default: string }
      ? string
      : string | undefined;
};

/**
 * Parses process.argv against `options`.
 * @param command how the bench is run, e.g. `npm run bench:http --`
 * @param summary what it measures, in a sentence or two
 */
export function benchArgs<const O extends Record<string, BenchOption>>(
  command: string,
  summary: string,
  options: O,
): Values<O> {
  const usage = usageOf(command, summary, options);
  const config = Object.fromEntries(
    Object.entries(options).map(([name, option]) => [
      name,
      option.default === undefined ? { type: option.type } : { type: option.type, default: option.default },
    ]),
  ) as Record<string, { type: 'string' | 'boolean'; default?: string | boolean }>;
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ options: { ...config, help: { type: 'boolean', short: 'h' } } }));
  } catch (error) {
    console.error(`${(error as Error).message}\n\n${usage}`);
    process.exit(2);
  }
  if (values.help === true) {
    console.log(usage);
    process.exit(0);
  }
  return values as Values<O>;
}

function usageOf(command: string, summary: string, options: Record<string, BenchOption>): string {
  const listed = Object.entries(options).filter(([, option]) => option.help !== undefined);
  const flag = ([name, option]: [string, BenchOption]): string =>
    option.type === 'boolean' ? `--${name}` : `--${name} <${option.value ?? 'value'}>`;
  const width = Math.max(...listed.map((entry) => flag(entry).length), '-h, --help'.length);
  const lines = listed.map((entry) => {
    const [, option] = entry;
    const fallback =
      option.default === undefined || option.type === 'boolean' ? '' : ` (default ${option.default})`;
    return `  ${flag(entry).padEnd(width)}  ${option.help}${fallback}`;
  });
  return [
    `Usage: ${command} [options]`,
    '',
    summary,
    '',
    'Options:',
    ...lines,
    `  ${'-h, --help'.padEnd(width)}  print this and exit`,
  ].join('\n');
}

/** The value of --`name` as a whole number of at least 1, or a one-line error and exit 2. */
export function positiveInteger(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} expects a positive integer, found '${text}'`);
    process.exit(2);
  }
  return value;
}
