/**
 * What may travel on live mode's topics (DESIGN section 4): one zod schema per message, the single
 * source in code. asyncapi.yaml at the repository root documents the same topics, message names
 * and fields for people and tools; messages.test.ts fails when the two drift apart.
 *
 * Every message value is one UTF-8 JSON object of at most MESSAGE_BYTE_LIMITS[topic] bytes,
 * tagged by `type` and versioned by `v`. Unknown fields are rejected, so a misspelt field is an
 * error rather than a silently ignored one. `at`, `queuedAt` and `intendedAt` are milliseconds
 * since the run started (scaled wall time live), as in the event log.
 *
 * decodeMessage never throws on what a topic holds: it returns the message or a reason that names
 * what was wrong, which the consumer (consumer.ts) writes to the dead-letter topic.
 */

import { z } from 'zod';
import {
  EVENT_SCHEMA_VERSION,
  EVENT_TYPES,
  type EventData,
  type EventType,
  PUSH_KINDS,
  type PushKind,
  type StoredEvent,
} from '../domain/events.ts';
import { formatIssuePath, type IssuePath, showValue, valueAtPath } from '../validation/render.ts';
import type { TopicRole } from './kafka-config.ts';

/**
 * `v` of commands, pushes, device events and dead letters. Events carry the event log's own
 * version, EVENT_SCHEMA_VERSION.
 */
export const MESSAGE_SCHEMA_VERSION = 1;

/** The Kafka header naming the message's run; the payload's `run` decides, the header is a hint. */
export const RUN_HEADER = 'run';
/** The Kafka header with the payload's schema version (`v`) as decimal text. */
export const VERSION_HEADER = 'v';

/**
 * Bytes of one message value. Commands, pushes and device events are small (one user, one push);
 * a value far bigger is a bug or an attack, and the broker would accept up to 1 MiB. A dead
 * letter holds a whole rejected value (base64 at worst: 4/3 of it), so its topic allows twice as
 * much.
 */
export const MESSAGE_BYTE_LIMITS: Readonly<Record<TopicRole, number>> = {
  commands: 64 * 1024,
  pushes: 64 * 1024,
  deviceEvents: 64 * 1024,
  events: 64 * 1024,
  dlq: 128 * 1024,
};

// Identifier formats. A key that differs only in case would hash to another partition, so
// these are exact, not forgiving.
/** Users as the fleet generator names them (userIdOf): `u` and at least six digits. */
const userId = z.string().regex(/^u\d{6,}$/, 'expected a user id such as u000123');
/** BlackBerry PINs as the fleet generator writes them (pinOf): 8 upper-case hex digits. */
const devicePin = z
  .string()
  .regex(/^[0-9A-F]{8}$/, 'expected a device PIN such as 2000002A (8 upper-case hex digits)');
/** The scenario schema's instance id rule. */
const instanceId = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'expected an instance id such as BES01A (letters, digits, - or _)');
/** Run ids as the simulator writes them (`flagship/phased-1000/s7`) or any other slug. */
const runId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/, 'expected a run id such as flagship/phased-1000/s7');
/** Milliseconds since the run started. */
const runMs = z.number().nonnegative();
const count = z.number().int().nonnegative();
const pushKind = z.enum(PUSH_KINDS as [PushKind, ...PushKind[]]);
const messageVersion = z.literal(MESSAGE_SCHEMA_VERSION);

// --- phasebench.commands (key: user id) -------------------------------------------------------

export const moveUserMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('moveUser'),
  run: runId,
  user: userId,
  /** The instance the user moves onto. */
  to: instanceId,
  /** The phase of the rollout this move belongs to, for per-phase convergence. */
  phase: count,
  at: runMs,
});

export const changeItPolicyMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('changeItPolicy'),
  run: runId,
  user: userId,
  /** The IT policy's name. */
  policy: z.string().min(1).max(128),
  at: runMs,
});

export const activateDeviceMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('activateDevice'),
  run: runId,
  user: userId,
  device: devicePin,
  at: runMs,
});

/**
 * Starts a run of a scenario's plan on the engine worker that owns the message's partition. The
 * run's timeline starts at `startedAt` (epoch ms) and runs `timeScale` times faster than the wall
 * clock; every worker maps wall time onto it the same way, so a worker that takes the run over
 * after a crash continues the same timeline. `scenario` is the resolved scenario (as in a run's
 * scenario.json); the engine validates it with the scenario schema and dead-letters it when bad.
 * Key: the run id, so a run's commands share one partition and one owner.
 */
export const startRunMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('startRun'),
  run: runId,
  plan: z.string().min(1).max(128),
  scenario: z.record(z.string(), z.unknown()),
  startedAt: z.number().int().nonnegative(),
  timeScale: z.number().positive().max(1_000_000),
});

/** The run's timeline as wall time sees it: run ms = (epoch ms - startedAt) × timeScale. */
const runClock = z.strictObject({
  startedAt: z.number().int().nonnegative(),
  timeScale: z.number().positive().max(1_000_000),
});

// --- phasebench.pushes (key: device PIN) ------------------------------------------------------

export const pushMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('push'),
  run: runId,
  push: count,
  job: count,
  device: devicePin,
  kind: pushKind,
  bytes: count,
  queuedAt: runMs,
  /** When the push should have been sent: latency is measured from here (no coordinated omission). */
  intendedAt: runMs,
  /** When the device's acknowledgement reaches the server on the run's timeline (the transfer's end). */
  ackAt: runMs,
  /** How the fleet turns `ackAt` into wall time. */
  clock: runClock,
});

// --- phasebench.device-events (key: device PIN) -----------------------------------------------

export const acknowledgedMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('acknowledged'),
  run: runId,
  push: count,
  device: devicePin,
  at: runMs,
});

export const coverageChangedMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('coverageChanged'),
  run: runId,
  device: devicePin,
  online: z.boolean(),
  at: runMs,
});

export const activationMessageMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('activationMessage'),
  run: runId,
  device: devicePin,
  user: userId,
  at: runMs,
});

// --- phasebench.events (key: the event's key; the StoredEvent envelope of harness/log/codec.ts) -

const instanceIds = z.array(instanceId);
const accountProblem = z.enum(['mailboxNotFound', 'duplicateSmtpAddress', 'orphanedConfigRecord']);
const strandedReason = z.enum([
  'migrationFailed',
  'needsCradle',
  'srpDisabled',
  'softwareTooOld',
  'expired',
  'outOfCoverage',
  'activationFailed',
  'pendingAtHorizon',
]);
/**
 * `schema` or null. A union, not .nullable(): zod reports a failed .nullable() as the inner
 * type's failure, and the reason should say that null was also fine.
 */
function orNull<T extends z.ZodType>(schema: T) {
  return z.union([schema, z.null()]);
}
const limit = orNull(z.number().nonnegative());

/**
 * `data` of every event type. The annotation makes tsc check each schema against EventData, and
 * the mapped type makes it name every type.
 */
export const EVENT_DATA_SCHEMAS: { readonly [T in EventType]: z.ZodType<EventData[T]> } = {
  RunStarted: z.strictObject({
    scenario: z.string(),
    plan: z.string(),
    planKind: z.string(),
    seed: z.number().int(),
    horizonMs: runMs,
    planSpec: z.unknown(),
    throttle: z.strictObject({
      inProcessJobs: limit,
      jobsPerMinutePerService: limit,
      jobsPerMinuteDomain: limit,
    }),
    slos: z.strictObject({
      makespan: z.number().optional(),
      p95Delivery: z.number().optional(),
      peakQueue: z.number().optional(),
      strandedShare: z.number().optional(),
    }),
  }),
  FleetProvisioned: z.strictObject({
    users: count,
    devices: count,
    instances: z.array(z.strictObject({ id: instanceId, srpId: z.string(), users: count })),
    softwareVersions: z.record(z.string(), count),
    problemAccounts: count,
    alwaysOnline: count,
  }),
  InstanceProvisioned: z.strictObject({ instance: instanceId, srpId: z.string(), newServer: z.boolean() }),
  InstanceDecommissioned: z.strictObject({ instance: instanceId, srpId: z.string() }),
  ServiceStopped: z.strictObject({ instances: instanceIds, users: count }),
  ServiceResumed: z.strictObject({ instances: instanceIds, users: count }),
  PhaseStarted: z.strictObject({ phase: count, users: count, into: instanceIds }),
  PhaseConverged: z.strictObject({
    phase: count,
    users: count,
    converged: count,
    stranded: count,
    startedAt: runMs,
  }),
  UserMoveRequested: z.strictObject({
    user: userId,
    device: devicePin,
    from: instanceId,
    to: instanceId,
    phase: count,
  }),
  UserMoved: z.strictObject({ user: userId, device: devicePin, from: instanceId, to: instanceId }),
  UserMoveFailed: z.strictObject({
    user: userId,
    device: devicePin,
    from: instanceId,
    to: instanceId,
    reason: accountProblem,
  }),
  ItPolicyChanged: z.strictObject({ instances: instanceIds, users: count }),
  ActivationRequested: z.strictObject({ user: userId, device: devicePin, instance: instanceId }),
  ActivationStarted: z.strictObject({ user: userId, device: devicePin, instance: instanceId }),
  ActivationCompleted: z.strictObject({ user: userId, device: devicePin, requestedAt: runMs }),
  ActivationFailed: z.strictObject({
    user: userId,
    device: devicePin,
    reason: z.enum(['passwordExpired', 'softwareTooOld']),
  }),
  JobQueued: z.strictObject({
    job: count,
    user: userId,
    device: devicePin,
    instance: instanceId,
    pushes: z.array(z.strictObject({ push: count, kind: pushKind, bytes: count })),
    bypassThrottle: z.boolean(),
    cause: z.enum(['move', 'itPolicy', 'activation']),
  }),
  ThrottleMinutePlanned: z.strictObject({
    instance: instanceId,
    minute: count,
    jobs: count,
    queued: count,
    inProcess: count,
  }),
  JobDispatched: z.strictObject({
    job: count,
    instance: instanceId,
    queuedAt: runMs,
    fromDeferredSlot: z.boolean(),
  }),
  DispatchDeferred: z.strictObject({
    instance: instanceId,
    reason: z.enum(['inProcess', 'window']),
    retryAt: orNull(runMs),
  }),
  GateChecked: z.strictObject({ phase: count, passed: z.boolean(), value: z.number() }),
  JobCompleted: z.strictObject({ job: count, instance: instanceId, parked: count }),
  PushHeldAtRelay: z.strictObject({
    push: count,
    device: devicePin,
    heldItems: count,
    deliverAt: orNull(runMs),
  }),
  PushRetryScheduled: z.strictObject({
    push: count,
    device: devicePin,
    retryAt: runMs,
    reason: z.enum(['relayFull', 'relayExpired', 'deviceCutOff']),
  }),
  PushResent: z.strictObject({ push: count, device: devicePin, attempt: count }),
  PushAwaitingCradle: z.strictObject({ push: count, device: devicePin, kind: pushKind, cradleAt: runMs }),
  PushDelivered: z.strictObject({ push: count, device: devicePin, ackAt: runMs }),
  PushAcknowledged: z.strictObject({
    push: count,
    device: devicePin,
    kind: pushKind,
    queuedAt: runMs,
    via: z.enum(['wireless', 'cradle']),
  }),
  PushExpired: z.strictObject({ push: count, device: devicePin, kind: pushKind, queuedAt: runMs }),
  DeviceCoverageChanged: z.strictObject({ device: devicePin, online: z.boolean() }),
  DeviceSrpChanged: z.strictObject({ device: devicePin, from: z.string(), to: z.string() }),
  DeviceCradled: z.strictObject({ device: devicePin, user: userId }),
  DeviceConverged: z.strictObject({ device: devicePin, user: userId, since: runMs }),
  DeviceStranded: z.strictObject({ device: devicePin, user: userId, reason: strandedReason }),
  SrpConflictDetected: z.strictObject({
    srpId: z.string(),
    instance: instanceId,
    devicesHolding: count,
    heldBy: instanceIds,
  }),
  DeviceCutOff: z.strictObject({ device: devicePin, user: userId, srpId: z.string() }),
  RunCompleted: z.strictObject({ pendingPushes: count, reason: z.enum(['drained', 'horizon']) }),
};

/** The StoredEvent envelope (codec.ts) around one event type's `data`. */
function storedEventMessage<T extends EventType>(type: T) {
  return z.strictObject({
    v: z.literal(EVENT_SCHEMA_VERSION),
    id: z.string().min(1),
    run: runId,
    seq: count,
    type: z.literal(type),
    /** The entity the fact is about (a user, device, push, job, instance or phase id). */
    key: z.string(),
    at: runMs,
    data: EVENT_DATA_SCHEMAS[type],
  });
}

const eventMessages = Object.fromEntries(EVENT_TYPES.map((type) => [type, storedEventMessage(type)])) as {
  readonly [T in EventType]: ReturnType<typeof storedEventMessage<T>>;
};

// --- phasebench.dlq (key: the rejected message's key) -----------------------------------------

/** Bytes of a rejected message's key or value, as text when they are UTF-8 and base64 otherwise. */
export const rawBytesSchema = z.strictObject({
  encoding: z.enum(['utf8', 'base64']),
  data: z.string(),
  /** Bytes of the original, which may be more than `data` holds when `truncated`. */
  bytes: count,
  /** True when `data` holds only the first bytes of an oversized original. */
  truncated: z.boolean(),
});
export type RawBytes = z.output<typeof rawBytesSchema>;

export const REJECTION_CATEGORIES = ['empty', 'oversized', 'notJson', 'unknownType', 'schema'] as const;
/** Why decodeMessage rejected a message. */
export type RejectionCategory = (typeof REJECTION_CATEGORIES)[number];
/** Why a message went to the dead-letter topic: rejected, or its handler failed for good. */
export type DeadLetterCategory = RejectionCategory | 'handler';
export const DEAD_LETTER_CATEGORIES: readonly DeadLetterCategory[] = [...REJECTION_CATEGORIES, 'handler'];

/** How each category's reason text begins: `<prefix>: <what was wrong>` ('empty message' alone). */
export const REASON_PREFIXES: Readonly<Record<DeadLetterCategory, string>> = {
  empty: 'empty message',
  oversized: 'oversized',
  notJson: 'not JSON',
  unknownType: 'unknown type',
  schema: 'schema',
  handler: 'handler',
};

/** Characters of a reason; the rest is cut (a reason explains, the value itself is in the letter). */
export const MAX_REASON_CHARS = 1000;

export const deadLetterMessage = z.strictObject({
  v: messageVersion,
  type: z.literal('deadLetter'),
  /** Where the rejected message was: topic name, partition and offset (int64 as decimal text). */
  topic: z.string().min(1),
  partition: count,
  offset: z.string().regex(/^\d+$/, 'expected an offset (decimal digits)'),
  /** The rejected message's Kafka timestamp, epoch ms as decimal text. */
  timestamp: z.string().regex(/^-?\d+$/, 'expected a timestamp (decimal digits)'),
  key: orNull(rawBytesSchema),
  value: orNull(rawBytesSchema),
  category: z.enum(DEAD_LETTER_CATEGORIES as [DeadLetterCategory, ...DeadLetterCategory[]]),
  reason: z.string().min(1).max(MAX_REASON_CHARS),
  /** The consumer group that rejected it. */
  group: z.string().min(1),
  /** Epoch ms (wall clock) when it was rejected. */
  detectedAt: z.number().int().nonnegative(),
});

// --- the topics' messages ---------------------------------------------------------------------

/** Each topic's messages by `type`. asyncapi.yaml names the same messages in each channel. */
export const TOPIC_MESSAGES = {
  commands: {
    startRun: startRunMessage,
    moveUser: moveUserMessage,
    changeItPolicy: changeItPolicyMessage,
    activateDevice: activateDeviceMessage,
  },
  pushes: { push: pushMessage },
  deviceEvents: {
    acknowledged: acknowledgedMessage,
    coverageChanged: coverageChangedMessage,
    activationMessage: activationMessageMessage,
  },
  events: eventMessages,
  dlq: { deadLetter: deadLetterMessage },
} as const satisfies Record<TopicRole, Record<string, z.ZodObject>>;

type TopicMessages = typeof TOPIC_MESSAGES;

export type CommandMessage = z.output<TopicMessages['commands'][keyof TopicMessages['commands']]>;
export type MoveUserMessage = z.output<typeof moveUserMessage>;
export type PushMessage = z.output<typeof pushMessage>;
export type DeviceEventMessage = z.output<TopicMessages['deviceEvents'][keyof TopicMessages['deviceEvents']]>;
export type DeadLetter = z.output<typeof deadLetterMessage>;

/** The messages a topic holds; the events topic holds the event log's StoredEvents. */
export interface MessageByTopic {
  commands: CommandMessage;
  pushes: PushMessage;
  deviceEvents: DeviceEventMessage;
  events: StoredEvent;
  dlq: DeadLetter;
}

export type Decoded<T> = { ok: true; value: T } | { ok: false; category: RejectionCategory; reason: string };

const utf8 = new TextDecoder('utf-8', { fatal: true });
/** Values quoted in reasons are cut to this many characters. */
const MAX_FOUND_CHARS = 60;

/**
 * The message in `raw` (a Kafka message value) if it is one of `topic`'s messages, else why not:
 * - `empty message` (no value, or 0 bytes),
 * - `oversized: N bytes > LIMIT` (MESSAGE_BYTE_LIMITS),
 * - `not JSON: …` (not UTF-8, or not parseable),
 * - `unknown type: '…' …` (a `type` the topic does not carry),
 * - `schema: <field path>: expected …, found …` (the first problem, and how many more).
 * Never throws.
 */
export function decodeMessage<R extends TopicRole>(topic: R, raw: Buffer | null): Decoded<MessageByTopic[R]> {
  if (raw === null || raw.length === 0) {
    return reject('empty', raw === null ? 'no value (null, a tombstone)' : '0 bytes');
  }
  const limit = MESSAGE_BYTE_LIMITS[topic];
  if (raw.length > limit) return reject('oversized', `${raw.length} bytes > ${limit}`);

  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    return reject('notJson', 'not valid UTF-8 text');
  }
  let input: unknown;
  try {
    input = JSON.parse(text);
  } catch (error) {
    return reject('notJson', error instanceof Error ? error.message : String(error));
  }

  const messages: Readonly<Record<string, z.ZodObject>> = TOPIC_MESSAGES[topic];
  const types = Object.keys(messages);
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return reject('schema', `${ROOT_FIELD}: expected an object, found ${show(input)}`);
  }
  const type = (input as { type?: unknown }).type;
  if (typeof type !== 'string') {
    return reject('schema', `type: expected ${typeChoices(types)}, found ${show(type)}`);
  }
  const schema = Object.hasOwn(messages, type) ? messages[type] : undefined;
  if (schema === undefined) return reject('unknownType', `${show(type)} (expected ${typeChoices(types)})`);

  const result = schema.safeParse(input);
  if (result.success) return { ok: true, value: result.data as MessageByTopic[R] };
  const [first, ...more] = result.error.issues;
  const problem = first === undefined ? 'rejected' : describeIssue(first, input);
  const andMore =
    more.length === 0 ? '' : ` (and ${more.length} more ${more.length === 1 ? 'problem' : 'problems'})`;
  return reject('schema', problem + andMore);
}

/** The category of a dead letter's reason, from its prefix; undefined for any other text. */
export function reasonCategory(reason: string): DeadLetterCategory | undefined {
  return DEAD_LETTER_CATEGORIES.find((category) => {
    const prefix = REASON_PREFIXES[category];
    return reason === prefix || reason.startsWith(`${prefix}: `);
  });
}

/** `<prefix>: <detail>`, one line, at most MAX_REASON_CHARS. */
export function formatReason(category: DeadLetterCategory, detail: string): string {
  const reason = `${REASON_PREFIXES[category]}: ${detail.replace(/\s+/g, ' ').trim()}`;
  return reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS - 1)}…` : reason;
}

function reject(category: RejectionCategory, detail: string): Decoded<never> {
  return { ok: false, category, reason: formatReason(category, detail) };
}

function typeChoices(types: readonly string[]): string {
  // The events topic has dozens; naming them all would bury the one found.
  if (types.length > 8) return `one of the ${types.length} types of harness/domain/events.ts`;
  return `one of ${types.map((type) => `'${type}'`).join(' | ')}`;
}

// --- reading zod issues -----------------------------------------------------------------------
// The same wording as the scenario loader and the HTTP admin API (field, expected, found); their
// renderers are private to them, and this one needs only a message's first problem.

type Issue = z.core.$ZodIssue;
type Path = IssuePath;

const ROOT_FIELD = '(message)';

/** The issue as `<path>: expected …, found …`; `prefix` is the path of the union it came from. */
function describeIssue(issue: Issue, input: unknown, prefix: Path = []): string {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    return `${formatPath([...path, key])}: unknown field, found ${show(valueAt(valueAt(input, path), [key]))}`;
  }
  if (issue.code === 'invalid_union') {
    // An alternative that matched the shape and failed inside (a dead letter's `value` object
    // with a bad field) says more than the union does.
    const inner = issue.errors.find((branch) => branch.some((branchIssue) => branchIssue.path.length > 0));
    if (inner?.[0] !== undefined) return describeIssue(inner[0], input, path);
    // Otherwise each alternative failed at the top (a number | null field): name them all.
    const expected = issue.errors
      .map((branch) => (branch[0] === undefined ? undefined : expectation(branch[0])))
      .filter((text): text is string => text !== undefined)
      .map((text) => text.replace(/^expected /, ''));
    if (expected.length > 0) {
      return `${formatPath(path)}: expected ${expected.join(' or ')}, found ${show(valueAt(input, path))}`;
    }
  }
  const expected = expectation(issue) ?? issue.message;
  return `${formatPath(path)}: ${expected}, found ${show(valueAt(input, path))}`;
}

function expectation(issue: Issue): string | undefined {
  if (issue.message.startsWith('expected ')) return issue.message;
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${typeName(issue.expected)}`;
    case 'too_small':
      return `expected ${bound(issue.origin, issue.minimum, issue.inclusive, 'at least', '>')}`;
    case 'too_big':
      return `expected ${bound(issue.origin, issue.maximum, issue.inclusive, 'at most', '<')}`;
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? show(issue.values[0]) : `one of ${issue.values.map(show).join(' | ')}`}`;
    case 'invalid_format':
      return issue.pattern
        ? `expected a string matching ${issue.pattern}`
        : `expected a valid ${issue.format}`;
    default:
      return undefined;
  }
}

function typeName(expected: string): string {
  switch (expected) {
    case 'int':
      return 'an integer';
    case 'object':
    case 'record':
      return 'an object';
    case 'array':
      return 'an array';
    case 'null':
      return 'null';
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
      return `${origin === 'int' ? 'an integer' : 'a number'} ${operator}${inclusive ? '=' : ''} ${n}`;
  }
}

const formatPath = (path: IssuePath): string => formatIssuePath(path, ROOT_FIELD);

const valueAt = valueAtPath;

const show = (value: unknown): string =>
  showValue(value, { depth: 1, maxArrayLength: 3, maxChars: MAX_FOUND_CHARS });
