import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_COMMANDS_PER_BATCH, MAX_USERS_PER_COMMAND } from './commands.ts';
import { batchSupply, checkBounds, checkTarget, type HttpLoadParameters, isLoopbackHost } from './load.ts';
import { validateCommandBatch } from './validate.ts';

describe('isLoopbackHost', () => {
  it.each(['localhost', 'api.localhost', '127.0.0.1', '127.1.2.3', '[::1]', '::1', '[::ffff:127.0.0.1]'])(
    '%s is loopback',
    (host) => expect(isLoopbackHost(host)).toBe(true),
  );
  it.each(['10.0.0.1', '192.0.2.7', '0.0.0.0', '[::]', 'example.com', 'localhost.example.com', '128.0.0.1'])(
    '%s is not',
    (host) => expect(isLoopbackHost(host)).toBe(false),
  );
});

describe('checkTarget', () => {
  it('takes a loopback URL, refuses others unless allowed, and refuses what is not http', () => {
    expect(checkTarget('http://127.0.0.1:8080', false).port).toBe('8080');
    expect(() => checkTarget('http://192.0.2.7:8080', false)).toThrow(
      expect.objectContaining({ code: 'HOST_NOT_LOOPBACK', exitCode: 2 }),
    );
    expect(checkTarget('http://192.0.2.7:8080', true).hostname).toBe('192.0.2.7');
    expect(() => checkTarget('ftp://127.0.0.1', false)).toThrow(
      expect.objectContaining({ code: 'URL_INVALID' }),
    );
    expect(() => checkTarget('127.0.0.1:8080/x y', false)).toThrow(
      expect.objectContaining({ code: 'URL_INVALID', exitCode: 2 }),
    );
  });
});

describe('checkBounds', () => {
  const fine: HttpLoadParameters = {
    url: 'http://127.0.0.1:8080',
    connections: 10,
    durationSeconds: 10,
    run: 'r',
    commandsPerBatch: 3,
    usersPerCommand: 10,
  };
  it.each<[string, Partial<HttpLoadParameters>, RegExp]>([
    ['connections', { connections: 0 }, /--connections/],
    ['connections', { connections: 1000 }, /--connections/],
    ['duration', { durationSeconds: 3600 }, /--duration/],
    ['amount', { amount: 5_000_000 }, /--amount/],
    ['amount below connections', { amount: 5 }, /--amount \(5\) must be at least --connections \(10\)/],
    ['commands', { commandsPerBatch: MAX_COMMANDS_PER_BATCH + 1 }, /--commands/],
    ['users', { usersPerCommand: 1.5 }, /--users/],
  ])('refuses %s out of bounds', (_name, change, message) => {
    expect(() => checkBounds(fine)).not.toThrow();
    expect(() => checkBounds({ ...fine, ...change })).toThrow(message);
  });
});

describe('batchSupply', () => {
  it('every batch it makes is valid, for any size within the limits', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: MAX_USERS_PER_COMMAND }),
        fc.integer({ min: 1, max: 30 }),
        (commandsPerBatch, usersPerCommand, batches) => {
          const next = batchSupply({ run: 'load/r1', commandsPerBatch, usersPerCommand });
          for (let i = 0; i < batches; i++) {
            const validation = validateCommandBatch(next());
            expect(validation.ok ? [] : validation.issues).toEqual([]);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('is deterministic and walks through the command types', () => {
    const a = batchSupply({ run: 'r', commandsPerBatch: 4, usersPerCommand: 2 });
    const b = batchSupply({ run: 'r', commandsPerBatch: 4, usersPerCommand: 2 });
    const first = a();
    expect(first).toEqual(b());
    expect(first.commands.map((c) => c.type)).toEqual([
      'moveUsers',
      'changeItPolicy',
      'activateDevices',
      'moveUsers',
    ]);
    expect(a()).not.toEqual(first);
  });
});
