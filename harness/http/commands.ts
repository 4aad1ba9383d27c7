/**
 * Operator commands as the HTTP admin API accepts them, and the `CommandAccepted` fact each
 * accepted command becomes in the event log.
 *
 * A request body is one batch for one run: `{ run, commands: [...] }`. Each command is a tagged
 * object (`type`); durations are milliseconds or strings such as '15m' (the scenario schema's
 * `duration`), and are milliseconds once parsed. Unknown keys are rejected, so a misspelt field
 * is an error rather than a silently ignored option.
 *
 * CommandAccepted lives here and not in the domain's EventData union on purpose while live mode
 * is being built; it uses the same envelope (v, id, run, seq, type, key, at, data) and the same
 * canonical codec, so joining the union later is adding one entry to EventData and EVENT_TYPES.
 */
import { z } from 'zod';
import { EVENT_SCHEMA_VERSION, type StoredEvent } from '../domain/events.ts';
import { duration } from '../scenario/schema.ts';

/** Commands in one request body. A bigger rollout is several requests. */
export const MAX_COMMANDS_PER_BATCH = 100;
/** Users named by one command (a phase of 1,000 users is one command). */
export const MAX_USERS_PER_COMMAND = 1000;
/** Instances named by one changeItPolicy command. */
export const MAX_INSTANCES_PER_COMMAND = 100;
/** Characters of an IT policy name. */
export const MAX_POLICY_CHARS = 128;

/** Users are `u` and at least six digits, as the fleet generator names them (u000123). */
export const USER_ID_PATTERN = /^u\d{6,}$/;
// The scenario schema's instance id rule; it is not exported there, so it is repeated here.
const INSTANCE_ID_PATTERN = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;
/** Run ids as the simulator writes them (`flagship/phased-1000/s7`) or any other slug. */
const RUN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;

const userId = z.string().regex(USER_ID_PATTERN, 'expected a user id such as u000123');
const instanceId = z
  .string()
  .regex(INSTANCE_ID_PATTERN, 'expected an instance id such as BES01A (letters, digits, - or _)');

/** A list of distinct users: naming a user twice in one command is almost certainly a mistake. */
const users = z
  .array(userId)
  .min(1)
  .max(MAX_USERS_PER_COMMAND)
  .superRefine((ids, ctx) => {
    if (new Set(ids).size === ids.length) return;
    const firstAt = new Map<string, number>();
    ids.forEach((id, index) => {
      const first = firstAt.get(id);
      if (first === undefined) firstAt.set(id, index);
      else
        ctx.addIssue({
          code: 'custom',
          path: [index],
          message: `expected each user once (first at [${first}])`,
        });
    });
  });

export const moveUsersCommand = z
  .object({
    type: z.literal('moveUsers'),
    users,
    /** The instance the users move onto. */
    to: instanceId,
    /** The phase of the rollout this move belongs to, for per-phase convergence. */
    phase: z.number().int().nonnegative().optional(),
  })
  .strict();

export const changeItPolicyCommand = z
  .object({
    type: z.literal('changeItPolicy'),
    /** The instances whose users get the new policy; omitted: every instance in the domain. */
    instances: z.array(instanceId).min(1).max(MAX_INSTANCES_PER_COMMAND).optional(),
    policy: z.string().min(1).max(MAX_POLICY_CHARS),
  })
  .strict();

export const activateDevicesCommand = z
  .object({
    type: z.literal('activateDevices'),
    users,
    /** Activations are spread over this long (ms once parsed); omitted: all at once. */
    window: duration.optional(),
  })
  .strict();

export const commandSchema = z.discriminatedUnion('type', [
  moveUsersCommand,
  changeItPolicyCommand,
  activateDevicesCommand,
]);
export type Command = z.output<typeof commandSchema>;
export type CommandInput = z.input<typeof commandSchema>;
export type CommandType = Command['type'];
export const COMMAND_TYPES: readonly CommandType[] = ['moveUsers', 'changeItPolicy', 'activateDevices'];

export const commandBatchSchema = z
  .object({
    run: z.string().regex(RUN_ID_PATTERN, 'expected a run id such as flagship/phased-1000/s7'),
    commands: z.array(commandSchema).min(1).max(MAX_COMMANDS_PER_BATCH),
  })
  .strict();
export type CommandBatch = z.output<typeof commandBatchSchema>;
export type CommandBatchInput = z.input<typeof commandBatchSchema>;

/**
 * commandBatchSchema's common case without zod: a batch that is plainly valid, parsed to what the
 * schema gives for it (the same values, in the same key order). Anything else, wrong or only
 * unusual (an object that is not plain, a key holding undefined), is undefined: the caller then
 * asks the schema, which refuses or accepts it and names every problem. Zod builds a context and
 * a result object for every value it checks; on the bench's batch that was the largest single
 * cost of a request, about 30 µs of CPU.
 *
 * The rules are the schema's, with its constants and patterns; validate.test.ts checks, on
 * generated bodies valid and not, that this never accepts what the schema refuses nor parses
 * anything differently. A field added to the schema is refused here until it is added here too,
 * which costs speed, never correctness.
 */
export function parsePlainBatch(input: unknown): CommandBatch | undefined {
  if (!isPlainObject(input) || !hasOnlyKeys(input, BATCH_KEYS)) return undefined;
  const { run, commands } = input;
  if (typeof run !== 'string' || !RUN_ID_PATTERN.test(run)) return undefined;
  if (!isPlainArray(commands) || commands.length < 1 || commands.length > MAX_COMMANDS_PER_BATCH) {
    return undefined;
  }
  const parsed: Command[] = [];
  for (const command of commands) {
    const one = parsePlainCommand(command);
    if (one === undefined) return undefined;
    parsed.push(one);
  }
  return { run, commands: parsed };
}

const BATCH_KEYS = ['run', 'commands'];
const MOVE_USERS_KEYS = ['type', 'users', 'to', 'phase'];
const CHANGE_IT_POLICY_KEYS = ['type', 'instances', 'policy'];
const ACTIVATE_DEVICES_KEYS = ['type', 'users', 'window'];

function parsePlainCommand(value: unknown): Command | undefined {
  if (!isPlainObject(value)) return undefined;
  switch (value.type) {
    case 'moveUsers': {
      if (!hasOnlyKeys(value, MOVE_USERS_KEYS)) return undefined;
      const users = plainUsers(value.users);
      const { to, phase } = value;
      if (users === undefined || !isInstanceId(to)) return undefined;
      if (phase === undefined) return { type: 'moveUsers', users, to };
      if (!Number.isSafeInteger(phase) || (phase as number) < 0) return undefined;
      return { type: 'moveUsers', users, to, phase: phase as number };
    }
    case 'changeItPolicy': {
      if (!hasOnlyKeys(value, CHANGE_IT_POLICY_KEYS)) return undefined;
      const { instances, policy } = value;
      if (typeof policy !== 'string' || policy.length < 1 || policy.length > MAX_POLICY_CHARS) {
        return undefined;
      }
      if (instances === undefined) return { type: 'changeItPolicy', policy };
      if (!isPlainArray(instances) || instances.length < 1 || instances.length > MAX_INSTANCES_PER_COMMAND) {
        return undefined;
      }
      for (const id of instances) if (!isInstanceId(id)) return undefined;
      return { type: 'changeItPolicy', instances: instances.slice() as string[], policy };
    }
    case 'activateDevices': {
      if (!hasOnlyKeys(value, ACTIVATE_DEVICES_KEYS)) return undefined;
      const users = plainUsers(value.users);
      if (users === undefined) return undefined;
      if (value.window === undefined) return { type: 'activateDevices', users };
      // The schema's own duration: '15m' means what it means in a scenario file.
      const window = duration.safeParse(value.window);
      return window.success ? { type: 'activateDevices', users, window: window.data } : undefined;
    }
    default:
      return undefined;
  }
}

/** A copy of a list of distinct user ids within the bounds, or undefined. */
function plainUsers(value: unknown): string[] | undefined {
  if (!isPlainArray(value) || value.length < 1 || value.length > MAX_USERS_PER_COMMAND) return undefined;
  for (const id of value) if (typeof id !== 'string' || !USER_ID_PATTERN.test(id)) return undefined;
  return new Set(value).size === value.length ? (value.slice() as string[]) : undefined;
}

function isInstanceId(value: unknown): value is string {
  return typeof value === 'string' && INSTANCE_ID_PATTERN.test(value);
}

/** An object as JSON.parse makes them; a null-prototype or class instance is left to the schema. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** An array as JSON.parse makes them (holes read as undefined below, and are refused). */
function isPlainArray(value: unknown): value is unknown[] {
  return Array.isArray(value) && Object.getPrototypeOf(value) === Array.prototype;
}

/** Every key (own or inherited, as the strict schema sees them) is allowed and holds a value. */
function hasOnlyKeys(value: Record<string, unknown>, allowed: readonly string[]): boolean {
  for (const key in value) if (!allowed.includes(key) || value[key] === undefined) return false;
  return true;
}

export const COMMAND_ACCEPTED = 'CommandAccepted';

/**
 * The stored fact for one accepted command: the event envelope with `data` = the parsed command
 * (durations in ms). `at` is wall milliseconds since the server started; `seq` continues the
 * run's sequence in the log; `id` is `<run>#c<seq>`, unique across runs.
 */
export interface CommandAccepted {
  v: number;
  id: string;
  run: string;
  seq: number;
  type: typeof COMMAND_ACCEPTED;
  key: string;
  at: number;
  data: Command;
}

/** key of a changeItPolicy that reaches more than one instance. */
export const ALL_INSTANCES_KEY = '*';

/**
 * The entity a command is about, used as the envelope key (and the Kafka message key):
 * - moveUsers: the target instance, whose Policy Service and throttle live on one partition owner;
 * - changeItPolicy: its instance when it names exactly one, otherwise `*` (several or all);
 * - activateDevices: its first user; the engine fans the command out per user.
 */
export function commandKey(command: Command): string {
  switch (command.type) {
    case 'moveUsers':
      return command.to;
    case 'changeItPolicy':
      return command.instances?.length === 1 ? command.instances[0]! : ALL_INSTANCES_KEY;
    case 'activateDevices':
      return command.users[0]!;
  }
}

/** The facts for one accepted batch: one per command, in order, seq from `firstSeq`, all at `at`. */
export function commandsAccepted(batch: CommandBatch, firstSeq: number, at: number): CommandAccepted[] {
  return batch.commands.map((command, index) => {
    const seq = firstSeq + index;
    return {
      v: EVENT_SCHEMA_VERSION,
      id: `${batch.run}#c${seq}`,
      run: batch.run,
      seq,
      type: COMMAND_ACCEPTED,
      key: commandKey(command),
      at,
      data: command,
    };
  });
}

/**
 * The facts as the EventLog port types its events. The port's StoredEvent is the domain's union,
 * which does not list CommandAccepted yet; the envelope is the same, so every adapter stores these
 * unchanged. This is the one place that bridges the two; it goes away when the union gains the type.
 */
export function asStoredEvents(facts: readonly CommandAccepted[]): readonly StoredEvent[] {
  return facts as unknown as readonly StoredEvent[];
}

/** Reads a CommandAccepted back from a log that holds domain events too. */
export function isCommandAccepted(event: StoredEvent | CommandAccepted): event is CommandAccepted {
  return (event.type as string) === COMMAND_ACCEPTED;
}
