import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { EventHasher, parseEventLine, serializeEvent, sha256OfEvents } from './codec.ts';
import { exampleRunEvents, storedEventArbitrary } from './contract.ts';

describe('serializeEvent', () => {
  it('writes the envelope keys in canonical order whatever order the event was built in', () => {
    const [built] = exampleRunEvents('run-1', 1);
    const reversed = Object.fromEntries(Object.entries(built!).reverse()) as StoredEvent;
    expect(Object.keys(reversed)[0]).toBe('id'); // the input really is in another order

    const line = serializeEvent(reversed);
    expect(Object.keys(JSON.parse(line))).toEqual(['v', 'id', 'run', 'seq', 'type', 'key', 'at', 'data']);
    expect(line).toBe(serializeEvent(built!));
  });

  it('writes one line: newlines and separators inside strings are escaped', () => {
    const [built] = exampleRunEvents('run\n1\r\u2028', 1);
    expect(serializeEvent(built!)).not.toMatch(/[\n\r]/);
  });

  it('rejects an envelope JSON cannot carry with EVENT_NOT_SERIALISABLE', () => {
    const [built] = exampleRunEvents('run-1', 1);
    expect(() => serializeEvent({ ...built!, at: Number.NaN })).toThrow(
      expect.objectContaining({ code: 'EVENT_NOT_SERIALISABLE', message: expect.stringContaining('"at"') }),
    );
  });

  it('property: parse(serialize(event)) equals the event and serialises to the same bytes', () => {
    fc.assert(
      fc.property(storedEventArbitrary, (event) => {
        const line = serializeEvent(event);
        const parsed = parseEventLine(line, 1);
        expect(parsed).toEqual(event);
        expect(serializeEvent(parsed)).toBe(line);
      }),
      { numRuns: 300 },
    );
  });
});

describe('parseEventLine', () => {
  it('names the line when it is not JSON', () => {
    expect(() => parseEventLine('{"v":1,', 7, 'results/r1/events.ndjson.gz')).toThrow(
      expect.objectContaining({
        code: 'LOG_CORRUPT',
        line: 7,
        message: expect.stringMatching(/results\/r1\/events\.ndjson\.gz, line 7: invalid JSON/),
      }),
    );
  });

  it('names the line and the field when the JSON is not an event', () => {
    const [built] = exampleRunEvents('run-1', 1);
    const { at: _dropped, ...withoutAt } = built!;
    expect(() => parseEventLine(JSON.stringify(withoutAt), 3)).toThrow(
      expect.objectContaining({ code: 'LOG_CORRUPT', message: expect.stringMatching(/line 3: .*"at"/) }),
    );
  });
});

/** A small fixed log, built with keys out of canonical order, and its canonical NDJSON by hand. */
const fixedEvents: StoredEvent[] = [
  {
    type: 'UserMoved',
    key: 'u1',
    at: 0,
    data: { user: 'u1', device: 'p1', from: 'BES01B', to: 'BES01A' },
    v: 1,
    run: 'r',
    seq: 0,
    id: 'r:0',
  },
  {
    data: { device: 'p1', online: false },
    at: 1500.25,
    key: 'p1',
    type: 'DeviceCoverageChanged',
    id: 'r:1',
    seq: 1,
    run: 'r',
    v: 1,
  },
  {
    id: 'r:2',
    v: 1,
    run: 'r',
    seq: 2,
    type: 'RunCompleted',
    key: 'r',
    at: 90000,
    data: { pendingPushes: 0, reason: 'drained' },
  },
];
const fixedNdjson =
  '{"v":1,"id":"r:0","run":"r","seq":0,"type":"UserMoved","key":"u1","at":0,"data":{"user":"u1","device":"p1","from":"BES01B","to":"BES01A"}}\n' +
  '{"v":1,"id":"r:1","run":"r","seq":1,"type":"DeviceCoverageChanged","key":"p1","at":1500.25,"data":{"device":"p1","online":false}}\n' +
  '{"v":1,"id":"r:2","run":"r","seq":2,"type":"RunCompleted","key":"r","at":90000,"data":{"pendingPushes":0,"reason":"drained"}}\n';

describe('sha256OfEvents', () => {
  it('hashes the canonical NDJSON text, one newline-terminated line per event', () => {
    expect(fixedEvents.map((event) => serializeEvent(event) + '\n').join('')).toBe(fixedNdjson);
    expect(sha256OfEvents(fixedEvents)).toBe(createHash('sha256').update(fixedNdjson).digest('hex'));
  });

  it('is stable: this fixed list always gives this hash', () => {
    // Pinned (checked with sha256sum): a change here changes every stored run hash, so it must be deliberate.
    const pinned = 'c647ccbe0b42bdd96d5dde4b92b0b24a796dfee3119138a0e8b6ca1a6d810e45';
    expect(sha256OfEvents(fixedEvents)).toBe(pinned);
    expect(sha256OfEvents(fixedEvents)).toBe(pinned);
  });

  it('differs when the order of events differs', () => {
    expect(sha256OfEvents([...fixedEvents].reverse())).not.toBe(sha256OfEvents(fixedEvents));
  });

  it('EventHasher fed one event at a time gives the same hash', () => {
    const hasher = new EventHasher();
    for (const event of fixedEvents) hasher.update(event);
    expect(hasher.digest()).toBe(sha256OfEvents(fixedEvents));
    expect(hasher.digest()).toBe(sha256OfEvents(fixedEvents));
    expect(() => hasher.update(fixedEvents[0]!)).toThrow(/after digest/);
  });

  it('of no events is the hash of empty text', () => {
    expect(sha256OfEvents([])).toBe(createHash('sha256').digest('hex'));
  });
});
