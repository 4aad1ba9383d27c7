/**
 * Validation of a command batch with answers a client can act on: each problem names the field
 * (`commands[0].users[1]`), what was expected there and what the body actually holds. The
 * wording follows the scenario loader's (harness/scenario/load.ts), whose renderer is private.
 *
 * The zod schema (commandBatchSchema) is the one definition of a valid batch. A body is checked
 * in two steps:
 *   1. the same schema as JSON Schema, made from it by zod (z.toJSONSchema) and compiled by ajv:
 *      a valid body passes this, with the checks after it, in under half of zod's time (3.1
 *      against 6.7 µs for the HTTP bench's body of 3 commands of 10 users; 0.38 against 0.88 ms
 *      for 10 commands of 1,000 users; one process, a quiet machine);
 *   2. zod itself, for every body the compiled check refuses, so the answer names the field in
 *      the words above. Zod's verdict is the one that counts.
 * What the JSON Schema does not say, or says differently, is checked after it (completeBatch).
 * A property test (validate.test.ts) checks that both steps accept the same bodies and produce
 * the same batch.
 */

import { Ajv, type ValidateFunction } from 'ajv';
import { z } from 'zod';
import { duration } from '../scenario/schema.ts';
import { formatIssuePath, type IssuePath, showValue, valueAtPath } from '../validation/render.ts';
import {
  type Command,
  type CommandBatch,
  type CommandBatchInput,
  commandBatchSchema,
  commandSchema,
} from './commands.ts';

type Issue = z.core.$ZodIssue;
type Path = IssuePath;

/** One problem in a request body. `field` is '(body)' when the body as a whole is wrong. */
export interface FieldIssue {
  field: string;
  problem: string;
}

export type BatchValidation = { ok: true; batch: CommandBatch } | { ok: false; issues: FieldIssue[] };

/** Problems reported per request; a body with more is wrong enough that more lines do not help. */
export const MAX_ISSUES = 20;
/** Values quoted in messages are cut to this many characters. */
const MAX_VALUE_CHARS = 60;
export const BODY_FIELD = '(body)';

/** Built at the first body, not when the module loads: every CLI command imports this one. */
let compiledCheck: ValidateFunction<CommandBatchInput> | undefined;

/** Step 1 alone: true when the compiled JSON Schema accepts the body. Exported for the tests. */
export function passesCompiledCheck(input: unknown): input is CommandBatchInput {
  compiledCheck ??= new Ajv({
    // Patterns as zod matches them: without the 'u' flag.
    unicodeRegExp: false,
  }).compile<CommandBatchInput>(
    z.toJSONSchema(commandBatchSchema, {
      target: 'draft-7',
      io: 'input',
      // A duration's text form is a transform: the JSON Schema takes any string there.
      unrepresentable: 'any',
    }),
  );
  return compiledCheck(input);
}

/**
 * Each command type's fields in the schema's order, the order zod's output has them in. Stored
 * facts keep their payload's key order (harness/log/codec.ts), so a command is stored the same
 * way whatever order the client wrote its fields in.
 */
const FIELDS_IN_ORDER = new Map<string, readonly string[]>(
  commandSchema.options.map((option) => [option.shape.type.value, Object.keys(option.shape)]),
);

/**
 * The rest of step 1, for a body the compiled JSON Schema accepted: what the JSON Schema does not
 * say, or says differently, checked here; then the batch as zod would output it, key order
 * included. Undefined when one of these checks fails, and zod describes the problem.
 * - A command's users are distinct (zod: a refinement; JSON Schema's uniqueItems measured at
 *   three times the rest of the compiled check).
 * - An activation window given as text is a duration, in milliseconds once parsed.
 * The body's own objects are not changed.
 */
function completeBatch(batch: CommandBatchInput): CommandBatch | undefined {
  const commands: Command[] = [];
  for (const command of batch.commands) {
    if (command.type !== 'changeItPolicy' && new Set(command.users).size !== command.users.length) {
      return undefined;
    }
    const output: Record<string, unknown> = {};
    for (const field of FIELDS_IN_ORDER.get(command.type)!) {
      if (Object.hasOwn(command, field)) output[field] = command[field as keyof typeof command];
    }
    if (command.type === 'activateDevices' && typeof command.window === 'string') {
      const window = duration.safeParse(command.window);
      if (!window.success) return undefined;
      output.window = window.data;
    }
    commands.push(output as Command);
  }
  return { run: batch.run, commands };
}

export function validateCommandBatch(input: unknown): BatchValidation {
  if (passesCompiledCheck(input)) {
    const batch = completeBatch(input);
    if (batch !== undefined) return { ok: true, batch };
  }
  const result = commandBatchSchema.safeParse(input);
  if (result.success) return { ok: true, batch: result.data };
  const issues = result.error.issues.flatMap((issue) => describeIssue(issue, [], input)).slice(0, MAX_ISSUES);
  return { ok: false, issues };
}

function describeIssue(issue: Issue, prefix: Path, input: unknown): FieldIssue[] {
  const path = [...prefix, ...issue.path];
  const found = valueAt(input, path);
  switch (issue.code) {
    case 'unrecognized_keys':
      // At the key's own path: the field to remove is the one named.
      return issue.keys.map((key) => ({
        field: formatPath([...path, key]),
        problem: `expected no such field, found ${show(valueAt(found, [key]))}`,
      }));
    case 'invalid_union': {
      // An alternative that matched the shape and failed inside says more than "no alternative".
      const branch = issue.errors.find((inner) => inner.some((i) => i.path.length > 0));
      if (branch) return branch.flatMap((inner) => describeIssue(inner, path, input));
      break;
    }
  }
  const expected = expectation(issue);
  return [
    {
      field: formatPath(path),
      problem: expected ? `${expected}, found ${show(found)}` : `${issue.message}, found ${show(found)}`,
    },
  ];
}

function expectation(issue: Issue): string | undefined {
  // The schema's own messages start with "expected"; zod's defaults start with a capital.
  if (issue.message.startsWith('expected ')) {
    const cut = issue.message.indexOf(', found ');
    return cut === -1 ? issue.message : issue.message.slice(0, cut);
  }
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${typeName(issue.expected)}`;
    case 'too_small':
      return `expected ${bound(issue.origin, issue.minimum, issue.inclusive, 'at least', '>')}`;
    case 'too_big':
      return `expected ${bound(issue.origin, issue.maximum, issue.inclusive, 'at most', '<')}`;
    case 'invalid_value':
      return `expected ${oneOf(issue.values)}`;
    case 'invalid_union':
      return 'options' in issue && Array.isArray(issue.options)
        ? `expected ${oneOf(issue.options)}`
        : undefined;
    default:
      return undefined;
  }
}

function typeName(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'object':
    case 'array':
      return `an ${expected}`;
    default:
      return `a ${expected}`;
  }
}

function bound(
  origin: string,
  limit: number | bigint,
  inclusive: boolean | undefined,
  words: 'at least' | 'at most',
  operator: '>' | '<',
): string {
  const n = Number(limit);
  switch (origin) {
    case 'array':
      return `${words} ${n} ${n === 1 ? 'item' : 'items'}`;
    case 'string':
      return `${words} ${n} ${n === 1 ? 'character' : 'characters'}`;
    default:
      return `a number ${operator}${inclusive ? '=' : ''} ${n}`;
  }
}

function oneOf(values: readonly unknown[]): string {
  return values.length === 1 ? show(values[0]) : `one of ${values.map(show).join(' | ')}`;
}

export const formatPath = (path: IssuePath): string => formatIssuePath(path, BODY_FIELD);

const valueAt = valueAtPath;

const show = (value: unknown): string =>
  showValue(value, { depth: 1, maxArrayLength: 3, maxChars: MAX_VALUE_CHARS });
