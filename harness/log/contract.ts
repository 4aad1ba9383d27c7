/**
 * The one contract every EventLog adapter must meet, written against the port only, so memory
 * (the reference), file and Kafka run the same checks. Call it from an adapter's test file.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type DomainEvent,
  EVENT_SCHEMA_VERSION,
  event,
  PUSH_KINDS,
  type StoredEvent,
} from '../domain/events.ts';
import { serializeEvent, sha256OfEvents } from './codec.ts';
import type { EventLog } from './port.ts';

/** A fresh, empty log for one test, and how to dispose of it. */
export interface EventLogUnderTest {
  log: EventLog;
  /** For persistent adapters: a new handle on the same stored events, after `log` is closed. */
  reopen?: () => Promise<EventLog>;
  /** Releases everything the factory created (closing `log` if the test did not). */
  cleanup: () => Promise<void>;
}

export interface EventLogContractOptions {
  /** Runs of the round-trip property; each creates a fresh log. Default 50. */
  propertyRuns?: number;
}

export function eventLogContract(
  name: string,
  factory: () => Promise<EventLogUnderTest>,
  options: EventLogContractOptions = {},
): void {
  const propertyRuns = options.propertyRuns ?? 50;

  /** Runs `check` on a fresh log and always cleans up, also when the check fails. */
  async function withFreshLog(check: (subject: EventLogUnderTest) => Promise<void>): Promise<void> {
    const subject = await factory();
    try {
      await check(subject);
    } finally {
      await subject.cleanup();
    }
  }

  /** Where the adapter can reopen: close, reopen, and expect the same events again. */
  async function expectSameAfterReopen(subject: EventLogUnderTest, expected: StoredEvent[]): Promise<void> {
    if (subject.reopen === undefined) return;
    await subject.log.close();
    const reopened = await subject.reopen();
    try {
      expect(await readAll(reopened.read())).toEqual(expected);
    } finally {
      await reopened.close();
    }
  }

  describe(`EventLog contract: ${name}`, () => {
    it('reads back appended events in append order (also after reopening, if the adapter persists)', async () => {
      await withFreshLog(async (subject) => {
        const events = exampleRunEvents('run-1', 12);
        await subject.log.append(events);
        expect(await readAll(subject.log.read())).toEqual(events);
        await expectSameAfterReopen(subject, events);
      });
    });

    it('keeps append order across several appends', async () => {
      await withFreshLog(async (subject) => {
        const events = exampleRunEvents('run-1', 30);
        await subject.log.append(events.slice(0, 1));
        await subject.log.append(events.slice(1, 17));
        await subject.log.append([]);
        await subject.log.append(events.slice(17));
        expect(await readAll(subject.log.read())).toEqual(events);
      });
    });

    it('reads what was appended so far and keeps accepting appends', async () => {
      await withFreshLog(async (subject) => {
        const events = exampleRunEvents('run-1', 10);
        await subject.log.append(events.slice(0, 4));
        expect(await readAll(subject.log.read())).toEqual(events.slice(0, 4));
        await subject.log.append(events.slice(4));
        expect(await readAll(subject.log.read())).toEqual(events);
      });
    });

    it('read({ run }) returns only that run, in order', async () => {
      await withFreshLog(async (subject) => {
        const first = exampleRunEvents('run-a', 6);
        const second = exampleRunEvents('run-b', 6);
        const interleaved = first.flatMap((event, index) => [event, second[index]!]);
        await subject.log.append(interleaved);
        expect(await readAll(subject.log.read({ run: 'run-a' }))).toEqual(first);
        expect(await readAll(subject.log.read({ run: 'run-b' }))).toEqual(second);
        expect(await readAll(subject.log.read({ run: 'run-c' }))).toEqual([]);
        expect(await readAll(subject.log.read())).toEqual(interleaved);
      });
    });

    it('reads nothing from an empty log', async () => {
      await withFreshLog(async (subject) => {
        expect(await readAll(subject.log.read())).toEqual([]);
        expect(await readAll(subject.log.read({ run: 'run-1' }))).toEqual([]);
        await expectSameAfterReopen(subject, []);
      });
    });

    it('rejects appending after close with LOG_CLOSED', async () => {
      await withFreshLog(async (subject) => {
        const [first, second] = exampleRunEvents('run-1', 2);
        await subject.log.append([first!]);
        await subject.log.close();
        await expect(subject.log.append([second!])).rejects.toMatchObject({ code: 'LOG_CLOSED' });
      });
    });

    it('round-trips events byte-identically through the codec', async () => {
      await withFreshLog(async (subject) => {
        const events = [...exampleRunEvents('run-1', 20), ...exampleRunEvents('run-ü-😀', 5)];
        await subject.log.append(events);
        const read = await readAll(subject.log.read());
        expect(read.map(serializeEvent)).toEqual(events.map(serializeEvent));
        expect(sha256OfEvents(read)).toBe(sha256OfEvents(events));
      });
    });

    it('property: any appended sequence reads back equal, with the same hash', async () => {
      const batchesOfEvents = fc.array(fc.array(storedEventArbitrary, { maxLength: 15 }), { maxLength: 4 });
      await fc.assert(
        fc.asyncProperty(batchesOfEvents, async (batches) => {
          await withFreshLog(async (subject) => {
            for (const batch of batches) await subject.log.append(batch);
            const appended = batches.flat();
            const read = await readAll(subject.log.read());
            expect(read).toEqual(appended);
            expect(sha256OfEvents(read)).toBe(sha256OfEvents(appended));
            const ofRunA = appended.filter((event) => event.run === 'run-a');
            expect(await readAll(subject.log.read({ run: 'run-a' }))).toEqual(ofRunA);
            await expectSameAfterReopen(subject, appended);
          });
        }),
        { numRuns: propertyRuns },
      );
    });
  });
}

/** Collects an async iterable (Array.fromAsync arrives with Node 22). */
export async function readAll<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}

/** `count` plausible events of one run, cycling through several event types, seq from 0. */
export function exampleRunEvents(run: string, count: number): StoredEvent[] {
  const events: StoredEvent[] = [];
  for (let seq = 0; seq < count; seq++) {
    const user = `user-${seq % 7}`;
    const device = `pin-${(0x2a000000 + seq).toString(16)}`;
    const at = seq * 1250.5;
    const domainEvents: DomainEvent[] = [
      event('UserMoveRequested', user, at, { user, device, from: 'BES01B', to: 'BES01A', phase: seq % 3 }),
      event('JobQueued', `job-${seq}`, at, {
        job: seq,
        user,
        device,
        instance: 'BES01A',
        pushes: [
          { push: seq * 2, kind: 'itPolicy', bytes: 1200 },
          { push: seq * 2 + 1, kind: 'serviceBooks', bytes: 4096 },
        ],
        bypassThrottle: seq % 5 === 0,
        cause: 'move',
      }),
      event('PushAcknowledged', `push-${seq}`, at, {
        push: seq,
        device,
        kind: PUSH_KINDS[seq % PUSH_KINDS.length]!,
        queuedAt: at - 300,
        via: seq % 4 === 0 ? 'cradle' : 'wireless',
      }),
      event('DeviceCoverageChanged', device, at, { device, online: seq % 2 === 0 }),
      event('RunCompleted', run, at, { pendingPushes: seq, reason: 'drained' }),
    ];
    const domainEvent = domainEvents[seq % domainEvents.length]!;
    events.push({ ...domainEvent, v: EVENT_SCHEMA_VERSION, run, seq, id: `${run}:${seq}` });
  }
  return events;
}

/**
 * Strings that stress a line-based, UTF-8 store: any code point, lone surrogates (JSON escapes
 * them), line and paragraph separators, quotes, backslashes and NUL.
 */
const unicodeText = fc.string({
  maxLength: 12,
  unit: fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
    fc.integer({ min: 0xd800, max: 0xdfff }).map((codeUnit) => String.fromCharCode(codeUnit)),
    fc.constantFrom('\n', '\r', '\u2028', '\u2029', '"', '\\', '\u0000', 'é', '😀'),
  ),
});

/** Milliseconds: integers and fractions, up to the largest double. -0 does not survive JSON. */
const instantMs = fc.oneof(fc.nat(), fc.double({ min: 0, noNaN: true, noDefaultInfinity: true }));

/** Arbitrary JSON, normalised through JSON itself (turning -0 into 0) as a stored payload would be. */
const storedJson = fc.jsonValue().map((value) => JSON.parse(JSON.stringify(value)) as unknown);

const domainEventArbitrary: fc.Arbitrary<DomainEvent> = fc.oneof(
  fc
    .record({
      key: unicodeText,
      at: instantMs,
      planSpec: storedJson,
      seed: fc.integer(),
      scenario: unicodeText,
    })
    .map(({ key, at, planSpec, seed, scenario }) =>
      event('RunStarted', key, at, {
        scenario,
        plan: 'phased',
        planKind: 'phased',
        seed,
        horizonMs: 8 * 3_600_000,
        planSpec,
        throttle: { inProcessJobs: 30, jobsPerMinutePerService: 100, jobsPerMinuteDomain: null },
        slos: { p95Delivery: 60_000 },
      }),
    ),
  fc
    .record({ key: unicodeText, at: instantMs, user: unicodeText, device: unicodeText, from: unicodeText })
    .map(({ key, at, user, device, from }) =>
      event('UserMoved', key, at, { user, device, from, to: 'BES01A' }),
    ),
  fc
    .record({
      key: unicodeText,
      at: instantMs,
      push: fc.nat(),
      device: unicodeText,
      kind: fc.constantFrom(...PUSH_KINDS),
      queuedAt: instantMs,
      via: fc.constantFrom('wireless' as const, 'cradle' as const),
    })
    .map(({ key, at, ...data }) => event('PushAcknowledged', key, at, data)),
  fc
    .record({ key: unicodeText, at: instantMs, device: unicodeText, online: fc.boolean() })
    .map(({ key, at, device, online }) => event('DeviceCoverageChanged', key, at, { device, online })),
  fc
    .record({
      key: unicodeText,
      at: instantMs,
      job: fc.nat(),
      user: unicodeText,
      device: unicodeText,
      instance: unicodeText,
      pushes: fc.array(
        fc.record({ push: fc.nat(), kind: fc.constantFrom(...PUSH_KINDS), bytes: fc.nat({ max: 1 << 20 }) }),
        { maxLength: 5 },
      ),
      bypassThrottle: fc.boolean(),
      cause: fc.constantFrom('move' as const, 'itPolicy' as const, 'activation' as const),
    })
    .map(({ key, at, ...data }) => event('JobQueued', key, at, data)),
);

/** Any stored event of a few types, with random envelope, keys, times and unicode payloads. */
export const storedEventArbitrary: fc.Arbitrary<StoredEvent> = fc
  .record({
    domainEvent: domainEventArbitrary,
    v: fc.constantFrom(EVENT_SCHEMA_VERSION, 2),
    // Mostly a few known runs, so read({ run }) has something to filter.
    run: fc.oneof(fc.constantFrom('run-a', 'run-b'), unicodeText),
    seq: fc.nat(),
    id: unicodeText,
  })
  .map(({ domainEvent, ...envelope }) => ({ ...domainEvent, ...envelope }));
