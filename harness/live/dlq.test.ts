/**
 * Dead letters without a broker: what a letter keeps of a rejected message, in which encoding,
 * and that every letter is itself a valid `deadLetter` message within the DLQ's size limit.
 * The writer against a real broker is in consumer.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deadLetterFor, keptBytes, MAX_KEPT_KEY_BYTES, MAX_KEPT_VALUE_BYTES, rawBytes } from './dlq.ts';
import { DEAD_LETTER_CATEGORIES, decodeMessage, formatReason, MESSAGE_BYTE_LIMITS } from './messages.ts';

function rejected(value: Buffer | null, key: Buffer | null = Buffer.from('u000123'), headers = {}) {
  return {
    topic: 'phasebench.commands',
    partition: 4,
    message: { offset: '9007199254740993', timestamp: '1767225600000', key, value, headers },
  };
}

describe('rawBytes', () => {
  it('keeps UTF-8 as text and anything else as base64', () => {
    expect(rawBytes(Buffer.from('{"v":1,"user":"üser"}'), 100)).toEqual({
      encoding: 'utf8',
      data: '{"v":1,"user":"üser"}',
      bytes: 22,
      truncated: false,
    });
    expect(rawBytes(Buffer.from([0xff, 0xfe, 0x00]), 100)).toEqual({
      encoding: 'base64',
      data: '//4A',
      bytes: 3,
      truncated: false,
    });
    expect(rawBytes(null, 100)).toBeNull();
    expect(rawBytes(Buffer.alloc(0), 100)).toEqual({
      encoding: 'utf8',
      data: '',
      bytes: 0,
      truncated: false,
    });
  });

  it('uses base64 for UTF-8 that JSON would escape into something longer', () => {
    const controls = Buffer.alloc(300, 0x01);
    const kept = rawBytes(controls, 1000)!;
    expect(kept.encoding).toBe('base64');
    expect(keptBytes(kept)).toEqual(controls);
  });

  it('cuts to the first maxBytes and says how many there were', () => {
    const value = Buffer.from('x'.repeat(100));
    expect(rawBytes(value, 10)).toEqual({
      encoding: 'utf8',
      data: 'x'.repeat(10),
      bytes: 100,
      truncated: true,
    });
  });
});

describe('deadLetterFor', () => {
  it('records where the message was, its bytes, the reason and who rejected it', () => {
    const record = deadLetterFor(
      rejected(Buffer.from('{"v":1,'), Buffer.from('u000123'), { run: Buffer.from('run-1'), other: 'x' }),
      { category: 'notJson', reason: 'not JSON: Unexpected end of JSON input' },
      'phasebench-engine',
      1_767_225_600_123,
    );
    expect(record.letter).toEqual({
      v: 1,
      type: 'deadLetter',
      topic: 'phasebench.commands',
      partition: 4,
      offset: '9007199254740993',
      timestamp: '1767225600000',
      key: { encoding: 'utf8', data: 'u000123', bytes: 7, truncated: false },
      value: { encoding: 'utf8', data: '{"v":1,', bytes: 7, truncated: false },
      category: 'notJson',
      reason: 'not JSON: Unexpected end of JSON input',
      group: 'phasebench-engine',
      detectedAt: 1_767_225_600_123,
    });
    expect(record.key).toEqual(Buffer.from('u000123'));
    expect(record.headers).toEqual({ v: '1', run: Buffer.from('run-1') });
  });

  it('keeps a tombstone as null', () => {
    const record = deadLetterFor(
      rejected(null, null),
      { category: 'empty', reason: 'empty message' },
      'g',
      0,
    );
    expect(record.letter).toMatchObject({ key: null, value: null });
    expect(record.key).toBeNull();
  });

  it('makes every letter a valid dead letter within the DLQ limit, keeping a prefix of the bytes', () => {
    const bytes = (max: number) =>
      fc.oneof(
        { arbitrary: fc.uint8Array({ maxLength: 512 }), weight: 8 },
        {
          arbitrary: fc.string({ unit: 'binary', maxLength: 512 }).map((s) => new TextEncoder().encode(s)),
          weight: 8,
        },
        // Worst cases for size: as long as kept, or longer, of bytes JSON must escape.
        {
          arbitrary: fc.constantFrom(0x00, 0x22, 0x41, 0xff).map((byte) => new Uint8Array(max).fill(byte)),
          weight: 1,
        },
        {
          arbitrary: fc.integer({ min: max, max: 2 * max }).map((n) => new Uint8Array(n).fill(0x5c)),
          weight: 1,
        },
      );
    fc.assert(
      fc.property(
        fc.option(bytes(MAX_KEPT_KEY_BYTES), { nil: null }),
        fc.option(bytes(MAX_KEPT_VALUE_BYTES), { nil: null }),
        fc.constantFrom(...DEAD_LETTER_CATEGORIES),
        fc.string({ unit: 'binary', maxLength: 3000 }),
        (key, value, category, detail) => {
          const keyBuffer = key === null ? null : Buffer.from(key);
          const valueBuffer = value === null ? null : Buffer.from(value);
          const reason = formatReason(category, detail);
          const record = deadLetterFor(rejected(valueBuffer, keyBuffer), { category, reason }, 'group-1', 42);
          const serialised = Buffer.from(JSON.stringify(record.letter));
          expect(serialised.length).toBeLessThanOrEqual(MESSAGE_BYTE_LIMITS.dlq);
          expect(decodeMessage('dlq', serialised)).toEqual({ ok: true, value: record.letter });
          for (const [original, kept, max] of [
            [keyBuffer, record.letter.key, MAX_KEPT_KEY_BYTES],
            [valueBuffer, record.letter.value, MAX_KEPT_VALUE_BYTES],
          ] as const) {
            if (original === null) {
              expect(kept).toBeNull();
              continue;
            }
            expect(kept).toMatchObject({ bytes: original.length, truncated: original.length > max });
            // Buffer#equals: toEqual walks a 64 KiB buffer element by element.
            expect(keptBytes(kept!).equals(original.subarray(0, max))).toBe(true);
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
