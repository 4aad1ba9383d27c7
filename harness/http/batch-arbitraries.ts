/**
 * fast-check arbitraries for command batches, for the tests of the admin API and of its
 * validation: valid batches, and corruptions of a valid batch together with the field an answer
 * must name. Test support only; nothing in the product imports it.
 */
import fc from 'fast-check';
import { type CommandBatchInput, type CommandInput, MAX_COMMANDS_PER_BATCH } from './commands.ts';

const userId = fc.integer({ min: 0, max: 999_999 }).map((n) => `u${String(n).padStart(6, '0')}`);
const users = fc.uniqueArray(userId, { minLength: 1, maxLength: 5 });
const instance = fc.constantFrom('BES01A', 'BES01B', 'BESNEW1');
const validCommand: fc.Arbitrary<CommandInput> = fc.oneof(
  fc.record(
    { type: fc.constant('moveUsers' as const), users, to: instance, phase: fc.nat(20) },
    { requiredKeys: ['type', 'users', 'to'] },
  ),
  fc.record(
    {
      type: fc.constant('changeItPolicy' as const),
      instances: fc.uniqueArray(instance, { minLength: 1, maxLength: 3 }),
      policy: fc.string({ minLength: 1, maxLength: 20 }),
    },
    { requiredKeys: ['type', 'policy'] },
  ),
  fc.record(
    {
      type: fc.constant('activateDevices' as const),
      users,
      window: fc.constantFrom<string | number>('15m', '2h', 60_000, 0),
    },
    { requiredKeys: ['type', 'users'] },
  ),
);
export const validBatchArb = fc.record({
  run: fc.constantFrom('r1', 'flagship/phased-1000/s7'),
  commands: fc.array(validCommand, { minLength: 1, maxLength: 4 }),
});

export interface Invalid {
  body: string;
  field: string;
  code: 'INVALID_COMMAND' | 'INVALID_JSON';
}

type Mutable = Record<string, unknown>;
const notAUserId = fc.string({ maxLength: 12 }).filter((s) => !/^u\d{6,}$/.test(s));
const notAnObject = fc.oneof(
  fc.integer(),
  fc.string(),
  fc.constant(null),
  fc.array(fc.integer()),
  fc.boolean(),
);

/** One corruption of a valid batch, and the field the answer must name. */
export function invalidFrom(batch: CommandBatchInput): fc.Arbitrary<Invalid> {
  const json = (value: unknown, field: string): Invalid => ({
    body: JSON.stringify(value),
    field,
    code: 'INVALID_COMMAND',
  });
  const copy = () => structuredClone(batch) as unknown as { run: unknown; commands: Mutable[] };
  const index = fc.nat(batch.commands.length - 1);
  const withUsers = batch.commands.map((c, i) => ('users' in c ? i : -1)).filter((i) => i >= 0);
  const options: fc.Arbitrary<Invalid>[] = [
    notAnObject.map((value) => json(value, '(body)')),
    fc.oneof(fc.integer(), fc.constant(null), fc.constant(''), fc.constant('bad run id')).map((run) => {
      const b = copy();
      b.run = run;
      return json(b, 'run');
    }),
    fc
      .oneof(
        notAnObject.filter((v) => !Array.isArray(v)),
        fc.constant([]),
      )
      .map((commands) => {
        const b = copy();
        b.commands = commands as never;
        return json(b, 'commands');
      }),
    fc.constant(null).map(() => {
      const b = copy();
      b.commands = Array.from(
        { length: MAX_COMMANDS_PER_BATCH + 1 },
        (_, i) => b.commands[i % b.commands.length]!,
      );
      return json(b, 'commands');
    }),
    fc.tuple(index, notAnObject).map(([i, value]) => {
      const b = copy();
      b.commands[i] = value as never;
      return json(b, `commands[${i}]`);
    }),
    fc.tuple(index, fc.oneof(fc.string(), fc.integer())).map(([i, type]) => {
      const b = copy();
      if (['moveUsers', 'changeItPolicy', 'activateDevices'].includes(String(type)))
        b.commands[i]!.type = 'x';
      else b.commands[i]!.type = type;
      return json(b, `commands[${i}].type`);
    }),
    fc
      .tuple(index, fc.constantFrom('priority', 'user', 'target', 'Type'), fc.jsonValue())
      .map(([i, key, value]) => {
        const b = copy();
        b.commands[i]![key] = value ?? 0;
        return json(b, `commands[${i}].${key}`);
      }),
    index.map((i) => {
      const b = copy();
      const command = b.commands[i]!;
      const required =
        command.type === 'changeItPolicy' ? 'policy' : command.type === 'moveUsers' ? 'to' : 'users';
      delete command[required];
      return json(b, `commands[${i}].${required}`);
    }),
  ];
  if (withUsers.length > 0) {
    const userCommand = fc.constantFrom(...withUsers);
    options.push(
      fc.tuple(userCommand, fc.nat(), notAUserId).map(([i, at, bad]) => {
        const b = copy();
        const list = b.commands[i]!.users as string[];
        const j = at % list.length;
        list[j] = bad;
        return json(b, `commands[${i}].users[${j}]`);
      }),
      userCommand.map((i) => {
        const b = copy();
        const list = b.commands[i]!.users as string[];
        list.push(list[0]!);
        return json(b, `commands[${i}].users[${list.length - 1}]`);
      }),
      userCommand.map((i) => {
        const b = copy();
        b.commands[i]!.users = [];
        return json(b, `commands[${i}].users`);
      }),
    );
  }
  // Text that is not JSON at all: a valid batch cut short.
  const text = JSON.stringify(batch);
  options.push(
    fc.integer({ min: 1, max: text.length - 1 }).map((cut) => ({
      body: text.slice(0, cut),
      field: '(body)',
      code: 'INVALID_JSON' as const,
    })),
  );
  return fc.oneof(...options);
}
