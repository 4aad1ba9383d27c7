/**
 * `phasebench http-load` against a real admin API on 127.0.0.1: a short, bounded run stores
 * autocannon's result; bad targets and tokens are refused before any load is sent.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { type CommandAccepted, isCommandAccepted } from '../http/commands.ts';
import type { HttpLoadRecord } from '../http/load.ts';
import { buildServer } from '../http/server.ts';
import { MemoryEventLog } from '../log/memory.ts';
import { httpLoadCommand } from './http-load.ts';

const TOKEN = 'http-load-test-token';
const dir = mkdtempSync(join(tmpdir(), 'phasebench-http-load-'));
const log = new MemoryEventLog();
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  process.env.PHASEBENCH_HTTP_LOAD_TEST_TOKEN = TOKEN;
  process.env.PHASEBENCH_HTTP_LOAD_TEST_WRONG = 'not-the-token';
  let now = 0;
  app = await buildServer({
    log,
    token: TOKEN,
    clock: { now: () => now++ },
    rateLimit: false,
    logLevel: 'silent',
  });
  url = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app.close();
});

function httpLoad(...args: string[]): Promise<unknown> {
  return httpLoadCommand()
    .exitOverride()
    .parseAsync([...args, '--token-env', 'PHASEBENCH_HTTP_LOAD_TEST_TOKEN', '--no-progress'], {
      from: 'user',
    });
}

describe('phasebench http-load', () => {
  it('drives the API for about a second with 2 connections and stores the result', async () => {
    const out = join(dir, 'run');
    await httpLoad('--url', url, '--duration', '1', '--connections', '2', '--run', 'load/test', '--out', out);

    const record = JSON.parse(readFileSync(join(out, 'http-load.json'), 'utf8')) as HttpLoadRecord;
    expect(record.schema).toBe('phasebench.http-load/1');
    expect(record.parameters).toEqual({
      url,
      connections: 2,
      durationSeconds: 1,
      run: 'load/test',
      commandsPerBatch: 3,
      usersPerCommand: 10,
    });
    expect(JSON.stringify(record)).not.toContain(TOKEN);
    const { result } = record;
    expect(result.requests.total).toBeGreaterThan(0);
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result['2xx']).toBe(result.requests.total);
    // autocannon's latency histogram object, as it reports it.
    for (const key of ['p50', 'p97_5', 'p99', 'mean', 'max', 'totalCount'] as const) {
      expect(typeof (result.latency as unknown as Record<string, unknown>)[key]).toBe('number');
    }

    // Every answered request was a batch of 3 commands that the server stored.
    const stored = (log.events as readonly (StoredEvent | CommandAccepted)[]).filter(isCommandAccepted);
    expect(stored.length % 3).toBe(0);
    expect(stored.length).toBeGreaterThanOrEqual(result['2xx'] * 3);
    expect(new Set(stored.map((fact) => fact.run))).toEqual(new Set(['load/test']));
  });

  it('stops at --amount', async () => {
    const out = join(dir, 'amount');
    await httpLoad('--url', url, '--amount', '20', '--connections', '2', '--duration', '30', '--out', out);
    const { result } = JSON.parse(readFileSync(join(out, 'http-load.json'), 'utf8')) as HttpLoadRecord;
    expect(result['2xx']).toBe(20);
  });

  it('refuses a token the server rejects, before sending load', async () => {
    const before = log.events.length;
    const out = join(dir, 'wrong-token');
    await expect(
      httpLoadCommand()
        .exitOverride()
        .parseAsync(['--url', url, '--token-env', 'PHASEBENCH_HTTP_LOAD_TEST_WRONG', '--out', out], {
          from: 'user',
        }),
    ).rejects.toMatchObject({ code: 'TOKEN_REJECTED', exitCode: 2 });
    expect(log.events.length).toBe(before);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a host beyond this machine unless --allow-remote', async () => {
    const out = join(dir, 'remote');
    await expect(httpLoad('--url', 'http://192.0.2.10:8080', '--out', out)).rejects.toMatchObject({
      code: 'HOST_NOT_LOOPBACK',
      exitCode: 2,
    });
    expect(existsSync(out)).toBe(false);
  });

  it('says so when the server is not there', async () => {
    const gone = await buildServer({
      log: new MemoryEventLog(),
      token: TOKEN,
      clock: { now: () => 0 },
      logLevel: 'silent',
    });
    const goneUrl = await gone.listen({ port: 0, host: '127.0.0.1' });
    await gone.close();
    await expect(httpLoad('--url', goneUrl, '--out', join(dir, 'gone'))).rejects.toMatchObject({
      code: 'SERVER_UNREACHABLE',
      exitCode: 1,
    });
  });

  it('refuses bounds beyond its limits', async () => {
    await expect(httpLoad('--url', url, '--connections', '5000')).rejects.toMatchObject({
      code: 'commander.invalidArgument',
    });
    await expect(httpLoad('--url', url, '--connections', '10', '--amount', '3')).rejects.toMatchObject({
      code: 'LOAD_OUT_OF_BOUNDS',
      exitCode: 2,
    });
  });
});
