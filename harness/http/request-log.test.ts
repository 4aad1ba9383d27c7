import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchedLogDestination } from './request-log.ts';

const opened: number[] = [];
afterEach(() => {
  for (const fd of opened.splice(0)) closeSync(fd);
  vi.restoreAllMocks();
});

function logFile(): { path: string; fd: number } {
  const path = join(mkdtempSync(join(tmpdir(), 'phasebench-request-log-')), 'requests.log');
  const fd = openSync(path, 'w');
  opened.push(fd);
  return { path, fd };
}

describe('BatchedLogDestination', () => {
  it('writes pending lines together once the interval has passed, in order', async () => {
    const { path, fd } = logFile();
    const destination = new BatchedLogDestination(fd, 20);
    destination.write('{"n":1}\n');
    destination.write('{"n":2}\n');
    await nextTurn();
    expect(readFileSync(path, 'utf8')).toBe('');
    await sleep(60);
    expect(readFileSync(path, 'utf8')).toBe('{"n":1}\n{"n":2}\n');
    destination.write('{"n":3,"text":"é"}\n');
    await sleep(60);
    expect(readFileSync(path, 'utf8')).toBe('{"n":1}\n{"n":2}\n{"n":3,"text":"é"}\n');
  });

  it('writes at once when 16 KB are pending, without waiting for the interval', () => {
    const { path, fd } = logFile();
    const destination = new BatchedLogDestination(fd, 60_000);
    const line = `${'x'.repeat(1023)}\n`;
    for (let i = 0; i < 15; i++) destination.write(line);
    expect(readFileSync(path, 'utf8')).toBe('');
    destination.write(line);
    expect(readFileSync(path, 'utf8')).toHaveLength(16 * 1024);
    destination.flushSync();
  });

  it('flushSync writes what is pending at once', () => {
    const { path, fd } = logFile();
    const destination = new BatchedLogDestination(fd);
    destination.write('last words\n');
    destination.flushSync();
    expect(readFileSync(path, 'utf8')).toBe('last words\n');
  });

  it('a descriptor that fails stops the log with one notice, and never throws into a request', async () => {
    const { fd } = logFile();
    const destination = new BatchedLogDestination(fd);
    closeSync(opened.pop()!);
    const notices = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    destination.write('lost\n');
    expect(() => destination.flushSync()).not.toThrow();
    destination.write('also lost\n');
    await nextTurn();
    expect(notices).toHaveBeenCalledTimes(1);
    expect(String(notices.mock.calls[0]![0])).toMatch(/^request log stopped: cannot write to fd \d+: EBADF/);
  });
});
