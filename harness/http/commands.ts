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
