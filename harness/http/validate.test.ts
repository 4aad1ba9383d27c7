/**
 * The two steps of validateCommandBatch (validate.ts) against zod alone, over bodies as they
 * arrive by HTTP (through JSON): the compiled JSON Schema with its completing checks must accept
 * exactly what zod accepts, and give the same batch. Step 2 is zod itself, so a body the compiled
 * check refuses is judged right in any case; what must never happen is the compiled check
 * accepting a body zod refuses, or refusing a valid body (which would only be slow, but would
 * go unnoticed).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { invalidFrom, validBatchArb } from './batch-arbitraries.ts';
import { commandBatchSchema, MAX_POLICY_CHARS } from './commands.ts';
import { passesCompiledCheck, validateCommandBatch } from './validate.ts';

/** The value as an HTTP body delivers it: what JSON can carry (NaN and Infinity become null). */
const overJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value) ?? 'null');

/** Values at the places where JSON Schema and zod could part ways. */
const edgeWindow = fc.oneof(
  fc.constantFrom('15m', '2h', '7d', '90s', '1.5h', '', '15x', '-5m', 'm', ' 5m', '1e3', 'Infinity'),
  fc.string({ maxLength: 6 }),
  fc.double({ min: -10, max: 1e12 }),
  fc.integer({ min: -5, max: 1_000_000 }),
);
const edgePhase = fc.oneof(
  fc.nat(),
  fc.integer({ min: -5, max: -1 }),
  fc.double({ min: -1, max: 1e16 }),
  fc.constantFrom(2 ** 53 - 1, 2 ** 53, 2 ** 60, -0),
  fc.string({ maxLength: 3 }),
);
/** Around the policy limit, in characters of two UTF-16 code units and of one (both count characters). */
const edgePolicy = fc.oneof(
  fc.string({
    unit: fc.constantFrom('a', '😀', 'é'),
    minLength: MAX_POLICY_CHARS / 2 - 2,
    maxLength: MAX_POLICY_CHARS + 2,
  }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constant(''),
);
const edgeUsers = fc.array(fc.constantFrom('u000001', 'u000002', 'u1234567', 'u12345', 'x000001'), {
  minLength: 0,
  maxLength: 4,
});

/** A valid batch with one command's field replaced by an edge value. */
const edgeBatch = validBatchArb.chain((batch) =>
  fc
    .tuple(
      fc.nat(batch.commands.length - 1),
      fc.oneof(
        edgeWindow.map((window) => ({ field: 'window', value: window as unknown })),
        edgePhase.map((phase) => ({ field: 'phase', value: phase as unknown })),
        edgePolicy.map((policy) => ({ field: 'policy', value: policy as unknown })),
        edgeUsers.map((users) => ({ field: 'users', value: users as unknown })),
      ),
    )
    .map(([index, { field, value }]) => {
      const copy = structuredClone(batch) as { run: string; commands: Record<string, unknown>[] };
      copy.commands[index]![field] = value;
      return copy;
    }),
);

/** The same value with the keys of every object in it in reverse order, as another client might write them. */
function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, inner]) => [key, reversedKeys(inner)]),
  );
}

const anyBody = fc.oneof(
  validBatchArb,
  edgeBatch,
  validBatchArb.chain(invalidFrom).map((invalid) => {
    try {
      return JSON.parse(invalid.body) as unknown;
    } catch {
      return invalid.body; // text cut short: a JSON string in a real request, refused all the same
    }
  }),
);
const body = fc
  .tuple(anyBody, fc.boolean())
  .map(([value, reverse]) => (reverse ? reversedKeys(value) : value));

describe('validateCommandBatch', () => {
  it('accepts exactly what zod accepts, with the same batch in the same key order, and takes the compiled path for every valid body', () => {
    let valid = 0;
    let refused = 0;
    fc.assert(
      fc.property(body.map(overJson), (input) => {
        const zod = commandBatchSchema.safeParse(input);
        const ours = validateCommandBatch(input);
        expect(ours.ok).toBe(zod.success);
        if (ours.ok && zod.success) {
          valid++;
          // The same bytes: stored facts keep their payload's key order.
          expect(JSON.stringify(ours.batch)).toBe(JSON.stringify(zod.data));
          expect(passesCompiledCheck(input)).toBe(true);
        } else {
          refused++;
        }
      }),
      { numRuns: 3000 },
    );
    // Both kinds were drawn in numbers, so the property said something about each.
    expect(valid).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });

  it('converts text windows to milliseconds without changing the body it was given', () => {
    const input = {
      run: 'r1',
      commands: [
        { type: 'activateDevices', users: ['u000001'], window: '15m' },
        { type: 'moveUsers', users: ['u000002'], to: 'BESNEW1' },
      ],
    };
    const before = structuredClone(input);
    const result = validateCommandBatch(input);
    expect(result).toEqual({
      ok: true,
      batch: {
        run: 'r1',
        commands: [
          { type: 'activateDevices', users: ['u000001'], window: 900_000 },
          { type: 'moveUsers', users: ['u000002'], to: 'BESNEW1' },
        ],
      },
    });
    expect(input).toEqual(before);
  });

  it('refuses what only the completing checks catch, naming the field as zod does', () => {
    const refusal = (command: Record<string, unknown>) => {
      const result = validateCommandBatch({ run: 'r1', commands: [command] });
      return result.ok ? undefined : result.issues[0]!.field;
    };
    expect(refusal({ type: 'moveUsers', users: ['u000001', 'u000001'], to: 'B1' })).toBe(
      'commands[0].users[1]',
    );
    expect(refusal({ type: 'activateDevices', users: ['u000001'], window: '15x' })).toBe(
      'commands[0].window',
    );
  });
});
