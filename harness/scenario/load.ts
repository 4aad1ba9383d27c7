/**
 * Loads a scenario file and validates it against the schema. Every failure becomes a
 * ScenarioError whose message names the file and, for validation, lists one line per problem:
 * the field (`plans.phased.size`), what the schema expected and what the file actually holds.
 */

import { existsSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { tsImport } from 'tsx/esm/api';
import type { z } from 'zod';
import { ScenarioError, type ScenarioIssue } from '../errors.ts';
import { formatIssuePath, type IssuePath, showValue, valueAtPath } from '../validation/render.ts';
import { type Scenario, scenarioSchema } from './schema.ts';

type Issue = z.core.$ZodIssue;
type Path = IssuePath;

/** Suggestions listed when a scenario file does not exist. */
const MAX_SUGGESTIONS = 12;
/** Values quoted in messages are cut to this many characters. */
const MAX_VALUE_CHARS = 80;

/**
 * Imports a scenario file (TypeScript, run under tsx) and parses its default export.
 * @param path absolute, or relative to the working directory
 * @throws ScenarioError SCENARIO_LOAD_FAILED when the file is missing, throws on import or has no
 *   default export; SCENARIO_INVALID when the default export is not a valid scenario.
 */
export async function loadScenario(path: string): Promise<Scenario> {
  const file = resolve(path);
  const source = displayPath(file);
  if (!isFile(file)) {
    const problem = existsSync(file) ? 'is not a file' : 'does not exist';
    throw new ScenarioError('SCENARIO_LOAD_FAILED', `Scenario file ${source} ${problem}. ${suggestions()}`, {
      source,
    });
  }

  let module: Record<string, unknown>;
  try {
    // tsImport compiles the file wherever it lives: outside a "type": "module" package a .ts file
    // would otherwise be taken for CommonJS and fail with a confusing require() cycle error.
    // Each call loads the file afresh, so an edited scenario is seen by the next load.
    module = unwrapCommonJs(await tsImport(pathToFileURL(file).href, import.meta.url));
  } catch (err) {
    throw new ScenarioError(
      'SCENARIO_LOAD_FAILED',
      `Scenario file ${source} could not be loaded: importing it threw ${describeThrown(err)}`,
      { source, cause: err },
    );
  }

  if (!('default' in module) || module.default === undefined) {
    const named = Object.keys(module).filter((key) => key !== 'default');
    const has = named.length > 0 ? ` (it exports only ${named.join(', ')})` : '';
    throw new ScenarioError(
      'SCENARIO_LOAD_FAILED',
      `Scenario file ${source} has no default export${has}; a scenario file ends with ` +
        '`export default defineScenario({ ... })`.',
      { source },
    );
  }
  const input = module.default;
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ScenarioError(
      'SCENARIO_INVALID',
      `Scenario file ${source} default-exports ${show(input)}, expected a scenario object ` +
        '(`export default defineScenario({ ... })`).',
      { source, issues: [{ path: formatPath([]), problem: `expected an object, found ${show(input)}` }] },
    );
  }
  return parseScenario(input, source);
}

/**
 * A file compiled as CommonJS arrives as { default: module.exports, ...named }, where
 * module.exports carries the __esModule marker and the real `export default` one level down.
 */
function unwrapCommonJs(module: Record<string, unknown>): Record<string, unknown> {
  const inner = module.default as Record<string, unknown> | undefined;
  if (inner && typeof inner === 'object' && inner.__esModule === true) return inner;
  return module;
}

/**
 * Validates a scenario object and fills in its defaults.
 * @param source names the scenario in error messages (a file path, or '<inline>')
 * @throws ScenarioError SCENARIO_INVALID listing every problem found
 */
export function parseScenario(input: unknown, source = '<inline>'): Scenario {
  let result: ReturnType<typeof scenarioSchema.safeParse>;
  try {
    result = scenarioSchema.safeParse(input);
  } catch (err) {
    // safeParse reports bad values as issues; a throw means the input itself misbehaved (a getter).
    throw new ScenarioError(
      'SCENARIO_INVALID',
      `Scenario ${source} could not be validated: ${describeThrown(err)}`,
      { source, cause: err },
    );
  }
  if (result.success) return result.data;

  const seen = new Set<string>();
  const issues = result.error.issues
    .flatMap((issue) => describeIssue(issue, [], input))
    .filter((issue) => {
      // A plan naming the same unknown instance in `from` and `into` yields the same issue twice.
      const line = `${issue.path}: ${issue.problem}`;
      if (seen.has(line)) return false;
      seen.add(line);
      return true;
    });
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  const message = [
    `Scenario ${source} is invalid (${count}):`,
    ...issues.map((issue) => `  ${issue.path}: ${issue.problem}`),
  ].join('\n');
  throw new ScenarioError('SCENARIO_INVALID', message, { source, issues });
}

function describeIssue(issue: Issue, prefix: Path, input: unknown): ScenarioIssue[] {
  const path = [...prefix, ...issue.path];
  const found = valueAt(input, path);
  switch (issue.code) {
    case 'unrecognized_keys':
      // One line per key, at the key's own path, so the line says where the stray key sits.
      return issue.keys.map((key) => ({
        path: formatPath([...path, key]),
        problem: `unknown key, found ${show(valueAt(found, [key]))}`,
      }));
    case 'invalid_union': {
      // When one alternative matched the shape and failed inside it (a distribution object with a
      // bad `min`), its issues say more than "none of the alternatives matched".
      const branch = deepestBranch(issue);
      if (branch) return branch.flatMap((inner) => describeIssue(inner, path, input));
      break;
    }
    case 'invalid_key': {
      const key = path.at(-1);
      const expected = issue.issues[0] ? expectation(issue.issues[0]) : undefined;
      return [
        { path: formatPath(path), problem: `invalid key, ${expected ?? 'not allowed'}, found ${show(key)}` },
      ];
    }
  }
  const expected = expectation(issue);
  return [
    { path: formatPath(path), problem: expected ? `${expected}, found ${show(found)}` : issue.message },
  ];
}

/** "expected …" for an issue, without the found part, or undefined if the issue is not of that kind. */
function expectation(issue: Issue): string | undefined {
  const authored = authoredExpectation(issue.message);
  if (authored && issue.code !== 'invalid_union') return authored;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${typeName(issue.expected)}`;
    case 'too_small':
      return `expected ${bound(issue.origin, issue.minimum, issue.inclusive, issue.exact, 'at least', '>')}`;
    case 'too_big':
      return `expected ${bound(issue.origin, issue.maximum, issue.inclusive, issue.exact, 'at most', '<')}`;
    case 'not_multiple_of':
      return `expected a multiple of ${issue.divisor}`;
    case 'invalid_value':
      return `expected ${oneOf(issue.values)}`;
    case 'invalid_format':
      return issue.pattern
        ? `expected a string matching ${issue.pattern}`
        : `expected a valid ${issue.format}`;
    case 'invalid_union': {
      if (issue.errors.length === 0) {
        // An unknown discriminator (plan `kind`) lists the allowed values as `options`.
        return 'options' in issue && issue.options ? `expected ${oneOf(issue.options)}` : undefined;
      }
      if (authored) return authored;
      const alternatives = issue.errors
        .map((branch) => (branch[0] ? expectation(branch[0]) : undefined))
        .filter((text): text is string => text !== undefined)
        .map((text) => text.replace(/^expected /, ''));
      return alternatives.length > 0 ? `expected ${orList([...new Set(alternatives)])}` : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * The schema's own messages read "expected X, found Y" (zod's defaults start with a capital).
 * Keep the X and re-render the found value from the input, so every line shortens it alike.
 */
function authoredExpectation(message: string): string | undefined {
  if (!message.startsWith('expected ')) return undefined;
  const found = message.indexOf(', found ');
  return found === -1 ? message : message.slice(0, found);
}

/** The union alternative that failed deepest inside the value, if any failed below its top. */
function deepestBranch(issue: Extract<Issue, { code: 'invalid_union' }>): Issue[] | undefined {
  let best: Issue[] | undefined;
  let bestDepth = 0;
  for (const branch of issue.errors) {
    const branchDepth = Math.max(0, ...branch.map(depth));
    if (branchDepth > bestDepth) {
      best = branch;
      bestDepth = branchDepth;
    }
  }
  return best;
}

function depth(issue: Issue): number {
  const nested = issue.code === 'invalid_union' ? Math.max(0, ...issue.errors.flat().map(depth)) : 0;
  return issue.path.length + nested;
}

function typeName(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'record':
    case 'object':
      return 'an object';
    case 'array':
      return 'an array';
    case 'null':
      return 'null';
    case 'undefined':
      return 'nothing';
    default:
      return `a ${expected}`;
  }
}

function bound(
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  exact: boolean | undefined,
  words: 'at least' | 'at most',
  operator: '>' | '<',
): string {
  const n = Number(limit);
  const qualifier = exact ? 'exactly' : words;
  switch (origin) {
    case 'array':
    case 'set':
      return `${qualifier} ${n} ${n === 1 ? 'item' : 'items'}`;
    case 'string':
      return `${qualifier} ${n} ${n === 1 ? 'character' : 'characters'}`;
    default:
      if (exact) return `${typeName(origin)} equal to ${n}`;
      return `${typeName(origin === 'int' ? 'int' : 'number')} ${operator}${inclusive ? '=' : ''} ${n}`;
  }
}

function oneOf(values: readonly unknown[]): string {
  return values.length === 1 ? show(values[0]) : `one of ${values.map(show).join(' | ')}`;
}

function orList(items: readonly string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items.at(-1)}`;
}

const formatPath = (path: IssuePath): string => formatIssuePath(path, '(scenario)');

const valueAt = valueAtPath;

const show = (value: unknown): string =>
  showValue(value, { depth: 2, maxArrayLength: 5, maxChars: MAX_VALUE_CHARS });

function describeThrown(err: unknown): string {
  const text = err instanceof Error ? `${err.name}: ${err.message}` : show(err);
  // Keep the message one paragraph even when the thrown text spans lines (syntax errors do).
  return text.replace(/\n/g, '\n  ');
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

function displayPath(file: string): string {
  const fromCwd = relative(process.cwd(), file);
  return fromCwd && !fromCwd.startsWith('..') && !isAbsolute(fromCwd) ? fromCwd : file;
}

/** Lists the scenarios a user probably meant: those in ./scenarios, else the project's own. */
function suggestions(): string {
  const local = resolve('scenarios');
  const dir = existsSync(local) ? local : fileURLToPath(new URL('../../scenarios/', import.meta.url));
  let names: string[] = [];
  try {
    names = readdirSync(dir)
      .filter((name) => name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts'))
      .sort();
  } catch {
    // No scenarios folder at all: say so below.
  }
  const shownDir = displayPath(dir);
  if (names.length === 0) return `No scenario files found in ${shownDir}.`;
  const listed = names.slice(0, MAX_SUGGESTIONS).map((name) => displayPath(join(dir, name)));
  const more = names.length > MAX_SUGGESTIONS ? `, and ${names.length - MAX_SUGGESTIONS} more` : '';
  return `Scenarios in ${shownDir}: ${listed.join(', ')}${more}.`;
}
