/**
 * decodeMessage against every kind of bad input (never a throw, always a reason that says what
 * was wrong), the engine's own events against the events schema, and asyncapi.yaml against the
 * zod schemas: same topics, messages, fields and constraints, and examples both accept.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { EVENT_TYPES, type EventType } from '../domain/events.ts';
import { loadScenario } from '../scenario/load.ts';
import type { Scenario } from '../scenario/schema.ts';
import { runPlan } from '../sim/run.ts';
import { DEFAULT_TOPICS, type TopicRole } from './kafka-config.ts';
import {
  type CommandMessage,
  type DeadLetterCategory,
  decodeMessage,
  EVENT_DATA_SCHEMAS,
  MAX_REASON_CHARS,
  MESSAGE_BYTE_LIMITS,
  REJECTION_CATEGORIES,
  reasonCategory,
  TOPIC_MESSAGES,
} from './messages.ts';

const ROLES = Object.keys(DEFAULT_TOPICS) as TopicRole[];
const RUN = 'flagship/phased-1000/s7';

const moveUser = { v: 1, type: 'moveUser', run: RUN, user: 'u000123', to: 'BES05A', phase: 2, at: 3_600_000 };
const jobQueued = {
  v: 1,
  id: `${RUN}#21`,
  run: RUN,
  seq: 21,
  type: 'JobQueued',
  key: 'job-0',
  at: 115_881,
  data: {
    job: 0,
    user: 'u000001',
    device: '20000001',
    instance: 'BES01A',
    pushes: [{ push: 0, kind: 'itPolicy', bytes: 3290 }],
    bypassThrottle: false,
    cause: 'move',
  },
};

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value));
}

function reasonOf(topic: TopicRole, raw: Buffer | null): string {
  const decoded = decodeMessage(topic, raw);
  if (decoded.ok) throw new Error(`expected a rejection, got ${JSON.stringify(decoded.value)}`);
  expect(reasonCategory(decoded.reason)).toBe(decoded.category);
  return decoded.reason;
}

describe('decodeMessage', () => {
  it('returns a valid message as parsed, for every topic', () => {
    const valid: Record<TopicRole, object> = {
      commands: moveUser,
      pushes: {
        v: 1,
        type: 'push',
        run: RUN,
        push: 4711,
        job: 1201,
        device: '2000007B',
        kind: 'itPolicy',
        bytes: 2048,
        queuedAt: 3_600_500,
        intendedAt: 3_612_000,
        ackAt: 3_612_900,
        clock: { startedAt: 1_767_225_600_000, timeScale: 300 },
      },
      deviceEvents: { v: 1, type: 'coverageChanged', run: RUN, device: '2000007B', online: false, at: 5 },
      events: jobQueued,
      dlq: {
        v: 1,
        type: 'deadLetter',
        topic: 'phasebench.commands',
        partition: 3,
        offset: '1842',
        timestamp: '1767225600000',
        key: null,
        value: { encoding: 'base64', data: '//4=', bytes: 2, truncated: false },
        category: 'notJson',
        reason: 'not JSON: not valid UTF-8 text',
        group: 'phasebench-engine',
        detectedAt: 1_767_225_600_123,
      },
    };
    for (const role of ROLES)
      expect(decodeMessage(role, json(valid[role]))).toEqual({ ok: true, value: valid[role] });
  });

  it.each<[string, TopicRole, Buffer | null, string]>([
    ['no value', 'commands', null, 'empty message: no value (null, a tombstone)'],
    ['0 bytes', 'pushes', Buffer.alloc(0), 'empty message: 0 bytes'],
    [
      'one byte over the limit',
      'commands',
      Buffer.alloc(64 * 1024 + 1, 0x20),
      'oversized: 65537 bytes > 65536',
    ],
    [
      'bytes that are not UTF-8',
      'deviceEvents',
      Buffer.from([0x7b, 0xff, 0xfe, 0x7d]),
      'not JSON: not valid UTF-8 text',
    ],
    ['a JSON number', 'commands', Buffer.from('42'), 'schema: (message): expected an object, found 42'],
    ['an array', 'events', Buffer.from('[1,2]'), 'schema: (message): expected an object, found [ 1, 2 ]'],
    [
      'no type',
      'commands',
      json({ v: 1, user: 'u000123' }),
      "schema: type: expected one of 'startRun' | 'moveUser' | 'changeItPolicy' | 'activateDevice', found nothing",
    ],
    [
      'a type of another topic',
      'deviceEvents',
      json({ ...moveUser }),
      "unknown type: 'moveUser' (expected one of 'acknowledged' | 'coverageChanged' | 'activationMessage')",
    ],
    [
      'an unknown event type',
      'events',
      json({ ...jobQueued, type: 'JobLost' }),
      "unknown type: 'JobLost' (expected one of the 37 types of harness/domain/events.ts)",
    ],
    [
      'a type that is not a string',
      'pushes',
      json({ type: 7 }),
      "schema: type: expected one of 'push', found 7",
    ],
    [
      'a missing field',
      'commands',
      json({ ...moveUser, phase: undefined }),
      'schema: phase: expected a number, found nothing',
    ],
    [
      'a malformed id',
      'commands',
      json({ ...moveUser, user: 'bob' }),
      "schema: user: expected a user id such as u000123, found 'bob'",
    ],
    ['another schema version', 'commands', json({ ...moveUser, v: 2 }), 'schema: v: expected 1, found 2'],
    [
      'an unknown field',
      'commands',
      json({ ...moveUser, colour: 'red' }),
      "schema: colour: unknown field, found 'red'",
    ],
    [
      'a wrong value deep in an event',
      'events',
      json({ ...jobQueued, data: { ...jobQueued.data, pushes: [{ push: 0, kind: 'fax', bytes: 1 }] } }),
      "schema: data.pushes[0].kind: expected one of 'itPolicy' | 'serviceBooks' | 'dataSync' | 'pinKey' | 'activation', found 'fax'",
    ],
    [
      'a nullable field of the wrong type',
      'events',
      json({
        ...jobQueued,
        type: 'DispatchDeferred',
        data: { instance: 'BES01A', reason: 'window', retryAt: 'soon' },
      }),
      "schema: data.retryAt: expected a number or null, found 'soon'",
    ],
    [
      'a bad field inside a nullable object',
      'dlq',
      json({
        v: 1,
        type: 'deadLetter',
        topic: 'phasebench.commands',
        partition: 0,
        offset: '1',
        timestamp: '0',
        key: null,
        value: { encoding: 'hex', data: 'ff', bytes: 1, truncated: false },
        category: 'notJson',
        reason: 'not JSON: x',
        group: 'g',
        detectedAt: 0,
      }),
      "schema: value.encoding: expected one of 'utf8' | 'base64', found 'hex'",
    ],
    [
      'a negative time',
      'commands',
      json({ ...moveUser, at: -1 }),
      'schema: at: expected a number >= 0, found -1',
    ],
    [
      'several problems',
      'commands',
      json({ ...moveUser, user: 1, to: 2, at: 'x' }),
      'schema: user: expected a string, found 1 (and 2 more problems)',
    ],
    [
      'a __proto__ key',
      'commands',
      Buffer.from(`{"__proto__":{"polluted":true},${JSON.stringify(moveUser).slice(1)}`),
      'schema: __proto__: unknown field, found { polluted: true }',
    ],
  ])('rejects %s with a reason that says so', (_, topic, raw, reason) => {
    expect(reasonOf(topic, raw)).toBe(reason);
  });

  it("quotes JSON.parse's own explanation for text that is not JSON", () => {
    expect(reasonOf('commands', Buffer.from('{"v":1,'))).toMatch(/^not JSON: .*JSON/);
    expect(reasonOf('commands', Buffer.from('hello'))).toMatch(/^not JSON: Unexpected token/);
  });

  it('applies each topic its own size limit', () => {
    const padded = (bytes: number): Buffer => {
      const text = JSON.stringify({ ...moveUser, pad: '' });
      return Buffer.from(text.replace('"pad":""', `"pad":"${'x'.repeat(bytes - text.length)}"`));
    };
    expect(padded(MESSAGE_BYTE_LIMITS.commands)).toHaveLength(64 * 1024);
    // At the limit the size is fine and the schema speaks; one byte more and the size does.
    expect(reasonOf('commands', padded(MESSAGE_BYTE_LIMITS.commands))).toMatch(/^schema: pad: unknown field/);
    expect(reasonOf('commands', padded(MESSAGE_BYTE_LIMITS.commands + 1))).toBe(
      'oversized: 65537 bytes > 65536',
    );
    expect(reasonOf('dlq', padded(MESSAGE_BYTE_LIMITS.commands + 1))).toMatch(/^unknown type: 'moveUser'/);
  });

  it('survives arrays nested thousands deep without overflowing the stack', () => {
    const deep = `${'['.repeat(20_000)}${']'.repeat(20_000)}`;
    const raw = Buffer.from(`{"v":1,"type":"moveUser","run":${deep}}`);
    expect(reasonOf('commands', raw)).toMatch(/^schema: run: expected a string, found \[ \[/);
    // planSpec is free-form: any depth is accepted there.
    const event = {
      v: 1,
      id: `${RUN}#0`,
      run: RUN,
      seq: 0,
      type: 'RunStarted',
      key: 'x',
      at: 0,
      data: {
        scenario: 's',
        plan: 'p',
        planKind: 'phased',
        seed: 1,
        horizonMs: 1,
        planSpec: 'DEEP',
        throttle: { inProcessJobs: null, jobsPerMinutePerService: 100, jobsPerMinuteDomain: 300 },
        slos: {},
      },
    };
    const runStarted = decodeMessage('events', Buffer.from(JSON.stringify(event).replace('"DEEP"', deep)));
    expect(runStarted.ok).toBe(true);
  });

  it('never throws on arbitrary bytes: a message, or one reason line of a known category', () => {
    const bytes = fc.oneof(
      { arbitrary: fc.uint8Array({ maxLength: 256 }), weight: 10 },
      { arbitrary: fc.string({ unit: 'binary' }).map((text) => new TextEncoder().encode(text)), weight: 10 },
      // Around the size limit: a short random pattern repeated (64 KiB of random draws is slow).
      {
        arbitrary: fc
          .tuple(fc.integer({ min: -8, max: 8 }), fc.uint8Array({ minLength: 1, maxLength: 64 }))
          .map(([offset, pattern]) => Buffer.alloc(64 * 1024 + offset, pattern)),
        weight: 2,
      },
    );
    fc.assert(
      fc.property(fc.constantFrom(...ROLES), fc.option(bytes, { nil: null }), (topic, raw) => {
        const decoded = decodeMessage(topic, raw === null ? null : Buffer.from(raw));
        if (decoded.ok) return;
        expect(REJECTION_CATEGORIES).toContain(decoded.category);
        expect(reasonCategory(decoded.reason)).toBe(decoded.category);
        expect(decoded.reason.length).toBeLessThanOrEqual(MAX_REASON_CHARS);
        expect(decoded.reason).not.toMatch(/\n/);
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on arbitrary JSON, including values shaped like messages', () => {
    const nearMessage = fc
      .record({ type: fc.constantFrom(...ROLES.flatMap((role) => Object.keys(TOPIC_MESSAGES[role]))) })
      .chain(({ type }) => fc.dictionary(fc.string(), fc.jsonValue()).map((rest) => ({ ...rest, type })));
    fc.assert(
      fc.property(fc.constantFrom(...ROLES), fc.oneof(fc.jsonValue(), nearMessage), (topic, value) => {
        const decoded = decodeMessage(topic, Buffer.from(JSON.stringify(value) ?? 'null'));
        if (!decoded.ok) expect(reasonCategory(decoded.reason)).toBe(decoded.category);
      }),
      { numRuns: 500 },
    );
  });

  it('accepts any well-formed command and, without any one field, names that field', () => {
    const command = fc.oneof(
      fc.record({
        v: fc.constant(1),
        type: fc.constant('moveUser'),
        run: fc.constantFrom(RUN, 'run-1', 'a.b_c'),
        user: fc.nat(999_999).map((n) => `u${String(n).padStart(6, '0')}`),
        to: fc.constantFrom('BES01A', 'bes-2', 'X'),
        phase: fc.nat(),
        at: fc.double({ min: 0, max: 1e12, noNaN: true }),
      }),
      fc.record({
        v: fc.constant(1),
        type: fc.constant('activateDevice'),
        run: fc.constant(RUN),
        user: fc.constant('u000001'),
        device: fc.nat(0xffffffff).map((n) => n.toString(16).toUpperCase().padStart(8, '0')),
        at: fc.nat(),
      }),
    );
    fc.assert(
      fc.property(command, fc.nat(), (message, pick) => {
        expect(decodeMessage('commands', json(message))).toEqual({
          ok: true,
          value: message as CommandMessage,
        });
        const fields = Object.keys(message).filter((field) => field !== 'type');
        const missing = fields[pick % fields.length]!;
        const { [missing]: _, ...rest } = message as Record<string, unknown>;
        expect(reasonOf('commands', json(rest))).toMatch(
          new RegExp(`^schema: ${missing}: expected .*, found nothing`),
        );
      }),
    );
  });
});

describe("the engine's events", () => {
  /** A shipped scenario at a tenth of its size: every behaviour, a fraction of the events. */
  function scaledDown(scenario: Scenario, factor: number): Scenario {
    const down = (n: number): number => Math.ceil(n / factor);
    return {
      ...scenario,
      fleet: { ...scenario.fleet, users: down(scenario.fleet.users) },
      domain: {
        ...scenario.domain,
        instances: scenario.domain.instances.map((instance) => ({
          ...instance,
          users: instance.users === undefined ? undefined : down(instance.users),
        })),
      },
      plans: Object.fromEntries(
        Object.entries(scenario.plans).map(([name, plan]) => [
          name,
          'size' in plan && typeof plan.size === 'number' ? { ...plan, size: down(plan.size) } : plan,
        ]),
      ),
    } as Scenario;
  }

  it('are all valid phasebench.events messages, of every event type', async () => {
    const dir = fileURLToPath(new URL('../../scenarios/', import.meta.url));
    const files = readdirSync(dir).filter((name) => name.endsWith('.ts') && !name.includes('.test.'));
    const seen = new Set<string>();
    const rejected: string[] = [];
    for (const file of files) {
      const scenario = scaledDown(await loadScenario(`${dir}${file}`), 10);
      for (const plan of Object.keys(scenario.plans)) {
        runPlan(scenario, plan, {
          keepEvents: false,
          onLine: (line) => {
            const decoded = decodeMessage('events', Buffer.from(line));
            if (decoded.ok) seen.add(decoded.value.type);
            else if (rejected.length < 5) rejected.push(`${decoded.reason} in ${line.slice(0, 200)}`);
          },
        });
      }
    }
    expect(rejected).toEqual([]);
    expect([...EVENT_TYPES].filter((type) => !seen.has(type))).toEqual([]);
  });
});

// --- asyncapi.yaml ----------------------------------------------------------------------------

type Json = Record<string, unknown>;
const ASYNCAPI_PATH = fileURLToPath(new URL('../../asyncapi.yaml', import.meta.url));
const asyncapi = parse(readFileSync(ASYNCAPI_PATH, 'utf8')) as Json;

function at(document: Json, pointer: string): Json {
  expect(pointer, `a local $ref: ${pointer}`).toMatch(/^#\//);
  let node: unknown = document;
  for (const segment of pointer.slice(2).split('/')) node = (node as Json | undefined)?.[segment];
  expect(node, `${pointer} resolves`).toBeTypeOf('object');
  return node as Json;
}

/** Follows $refs (draft-07: a $ref's siblings do not count). */
function deref(node: Json): Json {
  let current = node;
  while (typeof current.$ref === 'string') current = at(asyncapi, current.$ref);
  return current;
}

const SAFE_BOUNDS = new Set([Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER]);
const CONSTRAINTS = [
  'type',
  'enum',
  'pattern',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
];

/**
 * What a schema accepts, without descriptions, examples or $refs: the part the YAML and zod
 * must agree on. A const stands for its type; zod's safe-integer bounds are implied by integer.
 */
function shape(node: unknown, document: Json = asyncapi): unknown {
  if (node === true || node === undefined) return {};
  let schema = node as Json;
  while (typeof schema.$ref === 'string') schema = at(document, schema.$ref);
  const alternatives = (schema.anyOf ?? schema.oneOf) as unknown[] | undefined;
  if (alternatives) {
    return { anyOf: alternatives.map((alternative) => shape(alternative, document)).sort(byJson) };
  }
  if (Array.isArray(schema.type)) {
    return { anyOf: schema.type.map((type) => shape({ ...schema, type }, document)).sort(byJson) };
  }
  if ('const' in schema) return { const: schema.const };
  const out: Json = {};
  for (const key of CONSTRAINTS) {
    const value = schema[key];
    if (value === undefined || SAFE_BOUNDS.has(value as number)) continue;
    out[key] = key === 'enum' ? [...(value as unknown[])].sort() : value;
  }
  if (schema.properties !== undefined) {
    const properties = schema.properties as Json;
    out.properties = Object.fromEntries(
      Object.keys(properties)
        .sort()
        .map((name) => [name, shape(properties[name], document)]),
    );
    out.required = [...((schema.required as string[] | undefined) ?? [])].sort();
  }
  if (schema.additionalProperties !== undefined) {
    out.additionalProperties =
      typeof schema.additionalProperties === 'boolean'
        ? schema.additionalProperties
        : shape(schema.additionalProperties, document);
  }
  if (schema.items !== undefined) out.items = shape(schema.items, document);
  return out;
}

function byJson(a: unknown, b: unknown): number {
  return JSON.stringify(a).localeCompare(JSON.stringify(b));
}

function zodShape(schema: z.ZodType): unknown {
  const jsonSchema = z.toJSONSchema(schema, { target: 'draft-7' }) as Json;
  return shape(jsonSchema, jsonSchema);
}

const channels = asyncapi.channels as Record<string, Json>;
function channelOf(role: TopicRole): Json {
  const channel = Object.values(channels).find(
    (candidate) => candidate.address === DEFAULT_TOPICS[role].name,
  );
  expect(channel, `a channel with address ${DEFAULT_TOPICS[role].name}`).toBeDefined();
  return channel!;
}

function messagesOf(role: TopicRole): [string, Json][] {
  return Object.entries(channelOf(role).messages as Record<string, Json>).map(([key, ref]) => [
    key,
    deref(ref),
  ]);
}

describe('asyncapi.yaml', () => {
  it('is an AsyncAPI 3.0.0 document: info, channels with an address and messages, operations on channels', () => {
    expect(asyncapi.asyncapi).toBe('3.0.0');
    expect(asyncapi.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    for (const [id, channel] of Object.entries(channels)) {
      expect(channel.address, id).toEqual(expect.any(String));
      expect(Object.keys(channel.messages as Json).length, id).toBeGreaterThan(0);
    }
    const operations = Object.entries(asyncapi.operations as Record<string, Json>);
    expect(operations.length).toBeGreaterThan(0);
    for (const [id, operation] of operations) {
      expect(['send', 'receive'], id).toContain(operation.action);
      expect((operation.channel as Json).$ref, id).toMatch(/^#\/channels\/[^/]+$/);
      at(asyncapi, (operation.channel as Json).$ref as string);
    }
    for (const role of ROLES) {
      const actions = operations
        .filter(([, operation]) => deref(operation.channel as Json) === channelOf(role))
        .map(([, operation]) => operation.action);
      expect(new Set(actions), `someone sends and receives on ${role}`).toEqual(new Set(['send', 'receive']));
    }
  });

  it("documents exactly live mode's topics, with their partition counts", () => {
    expect(
      Object.values(channels)
        .map((channel) => channel.address)
        .sort(),
    ).toEqual(ROLES.map((role) => DEFAULT_TOPICS[role].name).sort());
    for (const role of ROLES) {
      expect((channelOf(role).bindings as Json).kafka, role).toMatchObject({
        topic: DEFAULT_TOPICS[role].name,
        partitions: DEFAULT_TOPICS[role].partitions,
        replicas: DEFAULT_TOPICS[role].replicationFactor,
      });
    }
  });

  it('names the same messages on each topic as the zod schemas', () => {
    for (const role of ROLES) {
      const messages = messagesOf(role);
      expect(messages.map(([key]) => key).sort(), role).toEqual(Object.keys(TOPIC_MESSAGES[role]).sort());
      for (const [key, message] of messages) expect(message.name, `${role}: ${key}`).toBe(key);
    }
    expect(messagesOf('events').map(([key]) => key)).toEqual([...EVENT_TYPES]);
  });

  it('requires the same fields as the zod schemas, in every message and every event data', () => {
    for (const role of ROLES) {
      const schemas: Record<string, z.ZodObject> = TOPIC_MESSAGES[role];
      for (const [name, message] of messagesOf(role)) {
        const payload = deref(message.payload as Json);
        const zodJson = z.toJSONSchema(schemas[name]!, { target: 'draft-7' }) as Json;
        expect([...(payload.required as string[])].sort(), `${role}: ${name}`).toEqual(
          [...(zodJson.required as string[])].sort(),
        );
      }
    }
    for (const type of EVENT_TYPES) {
      const payload = deref(deref(messagesOf('events').find(([name]) => name === type)![1].payload as Json));
      const data = deref((payload.properties as Json).data as Json);
      const zodJson = z.toJSONSchema(EVENT_DATA_SCHEMAS[type as EventType], { target: 'draft-7' }) as Json;
      expect([...((data.required as string[]) ?? [])].sort(), `${type} data`).toEqual(
        [...((zodJson.required as string[]) ?? [])].sort(),
      );
    }
  });

  it('describes the same fields, types, patterns, enums and bounds as the zod schemas', () => {
    for (const role of ROLES) {
      const schemas: Record<string, z.ZodObject> = TOPIC_MESSAGES[role];
      for (const [name, message] of messagesOf(role)) {
        expect(shape(message.payload), `${role}: ${name}`).toEqual(zodShape(schemas[name]!));
      }
    }
  });

  it('holds only valid JSON Schema (draft-07, which AsyncAPI 3 schemas extend)', () => {
    const ajv = new Ajv({ strict: false });
    const schemas = (asyncapi.components as { schemas: Record<string, Json> }).schemas;
    for (const [name, schema] of Object.entries(schemas)) {
      expect(ajv.validateSchema(schema), `${name}: ${ajv.errorsText(ajv.errors)}`).toBe(true);
    }
  });

  it('gives examples that its own schemas and decodeMessage both accept', () => {
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addSchema(asyncapi, 'asyncapi.yaml');
    let examples = 0;
    for (const role of ROLES) {
      for (const [name, message] of messagesOf(role)) {
        const payloadRef = (message.payload as Json).$ref as string;
        const validate = ajv.getSchema(`asyncapi.yaml${payloadRef}`)!;
        for (const example of (message.examples as { payload: unknown }[] | undefined) ?? []) {
          examples++;
          expect(validate(example.payload), `${name}: ${ajv.errorsText(validate.errors)}`).toBe(true);
          expect(decodeMessage(role, json(example.payload)), name).toEqual({
            ok: true,
            value: example.payload,
          });
        }
      }
    }
    expect(examples).toBeGreaterThanOrEqual(EVENT_TYPES.length + 8);
  });

  it('lists every dead-letter category the code can write', () => {
    const deadLetter = deref(messagesOf('dlq')[0]![1].payload as Json);
    const categories = ((deadLetter.properties as Json).category as Json).enum as DeadLetterCategory[];
    expect(categories.sort()).toEqual([...REJECTION_CATEGORIES, 'handler'].sort());
    for (const category of categories) {
      expect((channelOf('dlq').description as string).includes(`\`${category}\``), category).toBe(true);
    }
  });
});
