/**
 * validateCommandBatch takes a path around zod for plainly valid batches (parsePlainBatch). The
 * two must never disagree: on generated bodies, valid and not, near every bound of the schema,
 * the plain path accepts only what the schema accepts, parses it to the same value with the same
 * key order, and validateCommandBatch accepts exactly what the schema accepts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  commandBatchSchema,
  MAX_COMMANDS_PER_BATCH,
  MAX_INSTANCES_PER_COMMAND,
  MAX_POLICY_CHARS,
  MAX_USERS_PER_COMMAND,
  parsePlainBatch,
} from './commands.ts';
import { validateCommandBatch } from './validate.ts';

const userId = fc.integer({ min: 0, max: 9_999_999 }).map((n) => `u${String(n).padStart(6, '0')}`);
const manyUsers = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `u${String(i).padStart(6, '0')}`);
const nonJson = fc.constantFrom<unknown>(undefined, Number.NaN, Number.POSITIVE_INFINITY, -0);
const anyValue = fc.oneof(fc.jsonValue(), nonJson);

const userIdish = fc.oneof(
  { weight: 30, arbitrary: userId },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>('u12345', 'U000001', 'u000001 ', '', 'u00000a', 42, null),
  },
);
const users = fc.oneof(
  { weight: 12, arbitrary: fc.uniqueArray(userId, { minLength: 1, maxLength: 6 }) },
  { weight: 2, arbitrary: fc.array(userIdish, { maxLength: 6 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      manyUsers(MAX_USERS_PER_COMMAND),
      manyUsers(MAX_USERS_PER_COMMAND + 1),
      ['u000001', 'u000002', 'u000001'],
      [],
      'u000001',
      {},
    ),
  },
);
const instanceId = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom('BES01A', 'BESNEW1', 'a', `B${'x'.repeat(31)}`, 'B_1-x') },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(`B${'x'.repeat(32)}`, '1BES', 'BES 01', '', 'BÉS', 7, null),
  },
);
const instances = fc.oneof(
  { weight: 8, arbitrary: fc.array(instanceId, { minLength: 1, maxLength: 3 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      Array.from({ length: MAX_INSTANCES_PER_COMMAND }, () => 'BES01A'),
      Array.from({ length: MAX_INSTANCES_PER_COMMAND + 1 }, () => 'BES01A'),
      [],
      'BES01A',
    ),
  },
);
const phase = fc.oneof(
  { weight: 8, arbitrary: fc.nat(50) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(-1, 1.5, 2 ** 53, 2 ** 53 - 1, -0, Number.NaN, '1', null),
  },
);
const window = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom<unknown>('15m', '2h', '90s', '7d', 0, 60_000, 1.5) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      '',
      ' ',
      'abc',
      '-5m',
      '1e3',
      -1,
      Number.POSITIVE_INFINITY,
      null,
      true,
    ),
  },
);
const policy = fc.oneof(
  { weight: 8, arbitrary: fc.string({ minLength: 1, maxLength: 20 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom<unknown>(
      '',
      'p'.repeat(MAX_POLICY_CHARS),
      'p'.repeat(MAX_POLICY_CHARS + 1),
      5,
    ),
  },
);
/** Mostly the type the fields belong to; sometimes another command's, or no command's. */
const typed = (type: string) =>
  fc.oneof(
    { weight: 12, arbitrary: fc.constant(type) },
    {
      weight: 1,
      arbitrary: fc.constantFrom<unknown>(
        'moveUsers',
        'changeItPolicy',
        'activateDevices',
        'MoveUsers',
        1,
        null,
      ),
    },
  );

/** Sometimes a required key missing, an extra key, or a key that holds undefined. */
function withOddities<T extends Record<string, unknown>>(base: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 20, arbitrary: base },
    {
      weight: 1,
      arbitrary: fc
        .tuple(base, fc.constantFrom('extra', 'Type', '__proto__', 'users'), anyValue)
        .map(([value, key, extra]) => {
          const copy: Record<string, unknown> = { ...value };
          Object.defineProperty(copy, key, {
            value: extra,
            enumerable: true,
            writable: true,
            configurable: true,
          });
          return copy;
        }),
    },
    {
      weight: 1,
      arbitrary: fc.tuple(base, fc.nat()).map(([value, at]) => {
        const keys = Object.keys(value);
        const copy: Record<string, unknown> = { ...value };
        if (keys.length > 0) delete copy[keys[at % keys.length]!];
        return copy;
      }),
    },
  );
}

const command = withOddities(
  fc.oneof(
    fc.record(
      { type: typed('moveUsers'), users, to: instanceId, phase },
      { requiredKeys: ['type', 'users', 'to'], noNullPrototype: true },
    ),
    fc.record(
      { type: typed('changeItPolicy'), instances, policy },
      { requiredKeys: ['type', 'policy'], noNullPrototype: true },
    ),
    fc.record(
      { type: typed('activateDevices'), users, window },
      { requiredKeys: ['type', 'users'], noNullPrototype: true },
    ),
  ),
);
const run = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('r1', 'flagship/phased-1000/s7', 'a._/-b', 'x'.repeat(200)) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>('x'.repeat(201), '/r', '', 'a b', 3, null) },
);
const commands = fc.oneof(
  { weight: 12, arbitrary: fc.array(command, { minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constant([]) },
  {
    weight: 1,
    arbitrary: command.chain((one) =>
      fc.constantFrom<unknown>(
        Array.from({ length: MAX_COMMANDS_PER_BATCH }, () => one),
        Array.from({ length: MAX_COMMANDS_PER_BATCH + 1 }, () => one),
        one,
      ),
    ),
  },
);
const body = fc.oneof(
  { weight: 10, arbitrary: withOddities(fc.record({ run, commands }, { noNullPrototype: true })) },
  { weight: 1, arbitrary: anyValue },
);

describe('validateCommandBatch: the plain path and the schema agree', () => {
  it('the plain path accepts only what the schema accepts, with the same value and key order', () => {
    let plainlyAccepted = 0;
    let schemaAccepted = 0;
    fc.assert(
      fc.property(body, (input) => {
        const schema = commandBatchSchema.safeParse(input);
        const plain = parsePlainBatch(input);
        if (schema.success) schemaAccepted++;
        if (plain !== undefined) {
          plainlyAccepted++;
          expect(schema.success).toBe(true);
          expect(plain).toStrictEqual(schema.data);
          expect(JSON.stringify(plain)).toBe(JSON.stringify(schema.data));
        }
        const validation = validateCommandBatch(input);
        expect(validation.ok).toBe(schema.success);
        if (validation.ok) expect(validation.batch).toStrictEqual(schema.data);
      }),
      { numRuns: 3000 },
    );
    // The generator reaches both answers often, or the agreement above says little; and the plain
    // path takes nearly every valid body, or it saves nothing (it leaves a key holding undefined,
    // which JSON cannot say, to the schema).
    expect(schemaAccepted).toBeGreaterThan(500);
    expect(plainlyAccepted).toBeGreaterThan(0.9 * schemaAccepted);
  });

  it('bodies as JSON.parse makes them take the plain path when valid', () => {
    const valid = fc.record({
      run: fc.constantFrom('r1', 'flagship/phased-1000/s7'),
      commands: fc.array(
        fc.oneof(
          fc.record({
            type: fc.constant('moveUsers'),
            users: fc.uniqueArray(userId, { minLength: 1, maxLength: 10 }),
            to: fc.constant('BESNEW1'),
            phase: fc.nat(9),
          }),
          fc.record({
            type: fc.constant('changeItPolicy'),
            policy: fc.string({ minLength: 1, maxLength: 9 }),
          }),
          fc.record({
            type: fc.constant('activateDevices'),
            users: fc.uniqueArray(userId, { minLength: 1, maxLength: 10 }),
            window: fc.constant('15m'),
          }),
        ),
        { minLength: 1, maxLength: 5 },
      ),
    });
    fc.assert(
      fc.property(valid, (batch) => {
        expect(parsePlainBatch(JSON.parse(JSON.stringify(batch)))).toBeDefined();
      }),
    );
  });

  it('leaves to the schema what only it should judge', () => {
    const base = { run: 'r1', commands: [{ type: 'changeItPolicy', policy: 'p' }] };
    const nullPrototype = Object.assign(Object.create(null) as object, base);
    const holey: string[] = new Array(3);
    holey[0] = 'u000001';
    holey[2] = 'u000002';
    const sparse = { run: 'r1', commands: [{ type: 'moveUsers', users: holey, to: 'B1' }] };
    const ownProto = JSON.parse(
      '{"run":"r1","commands":[{"type":"changeItPolicy","policy":"p","__proto__":{}}]}',
    );
    for (const input of [nullPrototype, sparse, ownProto]) {
      expect(parsePlainBatch(input)).toBeUndefined();
      expect(validateCommandBatch(input).ok).toBe(commandBatchSchema.safeParse(input).success);
    }
  });
});
