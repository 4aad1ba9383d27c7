/**
 * The admin API over real HTTP: a server listening on 127.0.0.1 (port 0) and requests with
 * fetch. Nothing that is refused (no token, wrong token, too large, invalid, rate limited) may
 * reach the event log; what is accepted is exactly the commands, in order, with increasing seq.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { event, type StoredEvent } from '../domain/events.ts';
import { FileEventLog } from '../log/file.ts';
import { MemoryEventLog } from '../log/memory.ts';
import type { EventLog } from '../log/port.ts';
import { invalidFrom, validBatchArb } from './batch-arbitraries.ts';
import { type CommandAccepted, type CommandBatchInput, isCommandAccepted } from './commands.ts';
import { HTTP_METRICS } from './metrics.ts';
import {
  type AdminServerOptions,
  type ApiErrorBody,
  buildServer,
  type CommandsAcceptedBody,
} from './server.ts';

const TOKEN = 'test-token-0123456789abcdef';
const GENEROUS = { max: 100_000, windowMs: 60_000 };

interface Running {
  app: FastifyInstance;
  url: string;
  log: MemoryEventLog;
  registry: Registry;
}

const running: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((app) => app.close()));
});

/** A server on a fresh memory log, a clock that ticks 7 ms per reading, logging off. */
async function start(overrides: Partial<AdminServerOptions> = {}): Promise<Running> {
  const log = (overrides.log as MemoryEventLog | undefined) ?? new MemoryEventLog();
  const registry = new Registry();
  let now = 0;
  const app = await buildServer({
    log,
    token: TOKEN,
    clock: { now: () => (now += 7) },
    registry,
    rateLimit: GENEROUS,
    logLevel: 'silent',
    ...overrides,
  });
  running.push(app);
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url, log, registry };
}

function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/commands`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function errorOf(response: Response): Promise<ApiErrorBody['error']> {
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as ApiErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(typeof body.error.code).toBe('string');
  expect(typeof body.error.message).toBe('string');
  return body.error;
}

const userIds = (from: number, n: number): string[] =>
  Array.from({ length: n }, (_, i) => `u${String(from + i).padStart(6, '0')}`);

const validBatch: CommandBatchInput = {
  run: 'flagship/phased-1000/s7',
  commands: [
    { type: 'moveUsers', users: userIds(0, 3), to: 'BESNEW1', phase: 2 },
    { type: 'changeItPolicy', instances: ['BES01A'], policy: 'lock-camera' },
    { type: 'changeItPolicy', policy: 'all-devices' },
    { type: 'activateDevices', users: userIds(10, 2), window: '15m' },
  ],
};

function facts(log: MemoryEventLog): CommandAccepted[] {
  return (log.events as readonly (StoredEvent | CommandAccepted)[]).filter(isCommandAccepted);
}

describe('POST /v1/commands refuses, and nothing refused reaches the log', () => {
  it('no token: 401 with WWW-Authenticate', async () => {
    const { url, log } = await start();
    const response = await fetch(`${url}/v1/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(validBatch),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toMatch(/^Bearer/);
    expect((await errorOf(response)).code).toBe('UNAUTHORIZED');
    expect(log.events).toHaveLength(0);
  });

  it.each([
    ['a different token of the same length', `Bearer ${TOKEN.replace(/.$/, 'X')}`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 8)}`],
    ['the token with more after it', `Bearer ${TOKEN}0`],
    ['another scheme', `Basic ${TOKEN}`],
    ['the token without a scheme', TOKEN],
  ])('wrong token (%s): 401', async (_label, authorization) => {
    const { url, log } = await start();
    const response = await post(url, validBatch, { authorization });
    expect(response.status).toBe(401);
    expect((await errorOf(response)).code).toBe('UNAUTHORIZED');
    expect(log.events).toHaveLength(0);
  });

  it('a body over the size limit: 413, even when it would be a valid batch', async () => {
    const { url, log } = await start({ bodyLimitBytes: 2048 });
    const big = { run: 'r1', commands: [{ type: 'moveUsers', users: userIds(0, 400), to: 'BESNEW1' }] };
    expect(JSON.stringify(big).length).toBeGreaterThan(2048);
    const response = await post(url, big);
    expect(response.status).toBe(413);
    const error = await errorOf(response);
    expect(error.code).toBe('BODY_TOO_LARGE');
    expect(error.message).toContain('2048 bytes');
    expect(log.events).toHaveLength(0);
    // The same batch cut to size is accepted: the limit, not the content, refused it.
    const small = { run: 'r1', commands: [{ type: 'moveUsers', users: userIds(0, 40), to: 'BESNEW1' }] };
    expect((await post(url, small)).status).toBe(202);
  });

  it('no token and a body over the limit: 401, the body of an unknown client is not read', async () => {
    const { url, log } = await start({ bodyLimitBytes: 2048 });
    const big = { run: 'r1', commands: [{ type: 'moveUsers', users: userIds(0, 400), to: 'BESNEW1' }] };
    const response = await post(url, big, { authorization: 'Bearer nope' });
    expect(response.status).toBe(401);
    expect(log.events).toHaveLength(0);
  });

  it('an invalid command: 400 naming the field, what was expected and what was found', async () => {
    const { url, log } = await start();
    const response = await post(url, {
      run: 'r1',
      commands: [{ type: 'moveUsers', users: ['u000001', 'alice'], to: 'BESNEW1' }],
    });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error).toEqual({
      code: 'INVALID_COMMAND',
      message: "commands[0].users[1]: expected a user id such as u000123, found 'alice'",
      field: 'commands[0].users[1]',
      issues: [
        { field: 'commands[0].users[1]', problem: "expected a user id such as u000123, found 'alice'" },
      ],
    });
    expect(log.events).toHaveLength(0);
  });

  it('one bad command refuses the whole batch, and every problem is listed', async () => {
    const { url, log } = await start();
    const response = await post(url, {
      run: 'r1',
      commands: [
        { type: 'changeItPolicy', policy: 'fine' },
        { type: 'activateDevices', users: ['u000001'], window: 'soon' },
        { type: 'moveUsers', users: ['u000002'], to: 'BESNEW1', phase: -1, urgent: true },
      ],
    });
    expect(response.status).toBe(400);
    const error = await errorOf(response);
    expect(error.field).toBe('commands[1].window');
    expect(error.message).toMatch(
      /^commands\[1\]\.window: expected a duration .*, found 'soon' \(and 2 more\)$/,
    );
    expect(error.issues?.map((issue) => issue.field)).toEqual([
      'commands[1].window',
      'commands[2].phase',
      'commands[2].urgent',
    ]);
    expect(log.events).toHaveLength(0);
  });

  it('malformed JSON: 400 on the body; another content type: 415', async () => {
    const { url, log } = await start();
    const malformed = await post(url, '{"run": "r1", "commands": [');
    expect(malformed.status).toBe(400);
    expect(await errorOf(malformed)).toMatchObject({ code: 'INVALID_JSON', field: '(body)' });
    const empty = await post(url, '');
    expect(empty.status).toBe(400);
    expect(await errorOf(empty)).toMatchObject({ code: 'INVALID_JSON', field: '(body)' });
    const text = await post(url, JSON.stringify(validBatch), { 'content-type': 'text/plain' });
    expect(text.status).toBe(415);
    expect((await errorOf(text)).code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(log.events).toHaveLength(0);
  });

  it('an append the log refuses is a 500 in the same JSON shape, and nothing is stored', async () => {
    const log = new MemoryEventLog();
    await log.close();
    const { url } = await start({ log });
    const response = await post(url, validBatch);
    expect(response.status).toBe(500);
    expect((await errorOf(response)).code).toBe('INTERNAL');
    expect(log.events).toHaveLength(0);
  });
});

describe('POST /v1/commands accepts', () => {
  it('a valid batch: 202 with the ids, and exactly those commands in the log with increasing seq', async () => {
    const { url, log } = await start();
    const response = await post(url, validBatch);
    expect(response.status).toBe(202);
    const body = (await response.json()) as CommandsAcceptedBody;
    const stored = facts(log);
    expect(log.events).toHaveLength(4);
    expect(body).toEqual({ run: validBatch.run, accepted: 4, ids: stored.map((fact) => fact.id) });
    expect(stored).toEqual([
      {
        v: 1,
        id: 'flagship/phased-1000/s7#c0',
        run: 'flagship/phased-1000/s7',
        seq: 0,
        type: 'CommandAccepted',
        key: 'BESNEW1',
        at: 7,
        data: { type: 'moveUsers', users: ['u000000', 'u000001', 'u000002'], to: 'BESNEW1', phase: 2 },
      },
      {
        v: 1,
        id: 'flagship/phased-1000/s7#c1',
        run: 'flagship/phased-1000/s7',
        seq: 1,
        type: 'CommandAccepted',
        key: 'BES01A',
        at: 7,
        data: { type: 'changeItPolicy', instances: ['BES01A'], policy: 'lock-camera' },
      },
      {
        v: 1,
        id: 'flagship/phased-1000/s7#c2',
        run: 'flagship/phased-1000/s7',
        seq: 2,
        type: 'CommandAccepted',
        key: '*',
        at: 7,
        data: { type: 'changeItPolicy', policy: 'all-devices' },
      },
      {
        v: 1,
        id: 'flagship/phased-1000/s7#c3',
        run: 'flagship/phased-1000/s7',
        seq: 3,
        type: 'CommandAccepted',
        key: 'u000010',
        at: 7,
        // Durations are stored in milliseconds.
        data: { type: 'activateDevices', users: ['u000010', 'u000011'], window: 900_000 },
      },
    ]);

    // The next batch continues the run's sequence, at a later time.
    const again = await post(url, { run: validBatch.run, commands: [validBatch.commands[1]] });
    expect(again.status).toBe(202);
    expect(((await again.json()) as CommandsAcceptedBody).ids).toEqual(['flagship/phased-1000/s7#c4']);
    expect(facts(log).map((fact) => [fact.seq, fact.at])).toEqual([
      [0, 7],
      [1, 7],
      [2, 7],
      [3, 7],
      [4, 14],
    ]);
  });

  it.each([
    ['memory', async () => new MemoryEventLog()],
    // The file adapter's reads and appends really wait on the disk, so requests interleave.
    [
      'file',
      async () => FileEventLog.create(join(mkdtempSync(join(tmpdir(), 'phasebench-http-')), 'log.ndjson.gz')),
    ],
  ])(
    'concurrent batches for one run get distinct seqs, increasing in log order (%s log)',
    async (_name, open) => {
      const log = await open();
      const { url } = await start({ log: log as MemoryEventLog });
      const batches = Array.from({ length: 25 }, (_, i) => ({
        run: 'r-concurrent',
        commands: Array.from({ length: 1 + (i % 3) }, (_, j) => ({
          type: 'activateDevices',
          users: userIds(i * 10 + j, 1),
        })),
      }));
      const responses = await Promise.all(batches.map((batch) => post(url, batch)));
      expect(responses.map((r) => r.status)).toEqual(batches.map(() => 202));
      const ids = (
        await Promise.all(responses.map((r) => r.json() as Promise<CommandsAcceptedBody>))
      ).flatMap((body) => body.ids);
      const stored: CommandAccepted[] = [];
      for await (const fact of log.read()) if (isCommandAccepted(fact)) stored.push(fact);
      const total = batches.reduce((n, batch) => n + batch.commands.length, 0);
      expect(stored.map((fact) => fact.seq)).toEqual(Array.from({ length: total }, (_, i) => i));
      expect(new Set(ids)).toEqual(new Set(stored.map((fact) => fact.id)));
      await log.close();
    },
  );

  it("continues a run's sequence from what the log already holds", async () => {
    const log = new MemoryEventLog();
    const earlier = { ...event('RunCompleted', 'run', 0, { pendingPushes: 0, reason: 'drained' }) };
    await log.append([{ ...earlier, v: 1, run: 'r-existing', seq: 41, id: 'r-existing#41' } as StoredEvent]);
    const { url } = await start({ log });
    const response = await post(url, { run: 'r-existing', commands: [validBatch.commands[2]] });
    expect(((await response.json()) as CommandsAcceptedBody).ids).toEqual(['r-existing#c42']);
  });

  it('accepts the scheme in any case', async () => {
    const { url, log } = await start();
    const response = await post(url, validBatch, { authorization: `bearer ${TOKEN}` });
    expect(response.status).toBe(202);
    expect(log.events).toHaveLength(4);
  });
});

describe('rate limit', () => {
  it('answers 429 with Retry-After beyond the limit, per client, and stores nothing more', async () => {
    const { url, log } = await start({ rateLimit: { max: 3, windowMs: 60_000 } });
    const one = { run: 'r1', commands: [validBatch.commands[2]] };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(url, one)).status);
    expect(statuses).toEqual([202, 202, 202]);
    const limited = await post(url, one);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect((await errorOf(limited)).code).toBe('RATE_LIMITED');
    // Unauthenticated guesses count against the limit too, and so does reading status.
    expect((await post(url, one, { authorization: 'Bearer guess' })).status).toBe(429);
    expect((await fetch(`${url}/v1/runs/r1`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
      429,
    );
    expect(facts(log)).toHaveLength(3);
    // Health checks and scrapes are not limited.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/metrics`)).status).toBe(200);
  });
});

describe('GET /v1/runs/:id', () => {
  it('reflects the accepted commands; an unknown run is a 404 in JSON', async () => {
    const { url } = await start();
    const auth = { authorization: `Bearer ${TOKEN}` };
    await post(url, validBatch);
    await post(url, { run: validBatch.run, commands: [validBatch.commands[0]] });
    await post(url, { run: 'other', commands: [validBatch.commands[1]] });

    const response = await fetch(`${url}/v1/runs/${encodeURIComponent(validBatch.run)}`, { headers: auth });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      run: 'flagship/phased-1000/s7',
      events: 5,
      commandsAccepted: 5,
      byType: { moveUsers: 2, changeItPolicy: 2, activateDevices: 1 },
      lastAcceptedAt: 14,
    });

    const unknown = await fetch(`${url}/v1/runs/nobody`, { headers: auth });
    expect(unknown.status).toBe(404);
    expect(await errorOf(unknown)).toMatchObject({ code: 'RUN_NOT_FOUND' });

    expect((await fetch(`${url}/v1/runs/other`)).status).toBe(401);
  });
});

/** Prometheus text exposition, strictly: every line a HELP, a TYPE or a sample, or it throws. */
function parsePrometheusText(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  const name = '[a-zA-Z_:][a-zA-Z0-9_:]*';
  const sample = new RegExp(`^(${name})(?:\\{(.*)\\})? (\\S+)$`);
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (new RegExp(`^# HELP ${name} .*$`).test(line)) continue;
    if (new RegExp(`^# TYPE ${name} (counter|gauge|histogram|summary|untyped)$`).test(line)) continue;
    const match = sample.exec(line);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    const labels: string[] = [];
    const labelText = match[2] ?? '';
    const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
    let consumed = 0;
    for (let m = label.exec(labelText); m !== null; m = label.exec(labelText)) {
      labels.push(`${m[1]}=${m[2]}`);
      consumed = label.lastIndex;
    }
    if (consumed !== labelText.length) throw new Error(`bad labels: ${line}`);
    const value = Number(match[3]);
    if (Number.isNaN(value) && match[3] !== 'NaN') throw new Error(`bad value: ${line}`);
    samples.set(`${match[1]}{${labels.sort().join(',')}}`, value);
  }
  return samples;
}

describe('GET /metrics and /healthz', () => {
  it('/metrics is Prometheus text that counts requests by route and status, and commands by type', async () => {
    const { url } = await start();
    await post(url, validBatch);
    await post(url, validBatch);
    await post(url, { run: 'r1', commands: [] });
    await post(url, validBatch, { authorization: 'Bearer nope' });
    await fetch(`${url}/healthz`);
    await fetch(`${url}/no/such/route`);

    const response = await fetch(`${url}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await response.text();
    const samples = parsePrometheusText(text);
    const requests = (route: string, method: string, status: number) =>
      samples.get(`${HTTP_METRICS.requests.name}{method=${method},route=${route},status=${status}}`);
    expect(requests('/v1/commands', 'POST', 202)).toBe(2);
    expect(requests('/v1/commands', 'POST', 400)).toBe(1);
    expect(requests('/v1/commands', 'POST', 401)).toBe(1);
    expect(requests('/healthz', 'GET', 200)).toBe(1);
    expect(requests('unmatched', 'GET', 404)).toBe(1);
    expect(samples.get(`${HTTP_METRICS.requestDuration.name}_count{method=POST,route=/v1/commands}`)).toBe(4);
    expect(samples.get(`${HTTP_METRICS.commandsAccepted.name}{type=moveUsers}`)).toBe(2);
    expect(samples.get(`${HTTP_METRICS.commandsAccepted.name}{type=changeItPolicy}`)).toBe(4);
    expect(samples.get(`${HTTP_METRICS.commandsAccepted.name}{type=activateDevices}`)).toBe(2);

    // Prometheus's own checker accepts it (promtool comes with the Debian prometheus package).
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(promtool.error, 'promtool must be installed (apt-get install prometheus)').toBeUndefined();
    expect(promtool.stderr + promtool.stdout).toBe('');
    expect(promtool.status).toBe(0);
  });

  it('/healthz answers without a token', async () => {
    const { url } = await start();
    const response = await fetch(`${url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('an unknown route is a 404 in the same JSON shape', async () => {
    const { url } = await start();
    const response = await fetch(`${url}/v2/commands`, { method: 'POST' });
    expect(response.status).toBe(404);
    expect((await errorOf(response)).code).toBe('NOT_FOUND');
  });
});

describe('request log and shutdown', () => {
  it.each(['info', 'debug'] as const)(
    'logs each request as structured JSON at info, and never the token (level %s)',
    async (level) => {
      const stream = new PassThrough();
      const lines: string[] = [];
      stream.on('data', (chunk: Buffer) => lines.push(...chunk.toString('utf8').split('\n').filter(Boolean)));
      const { url, app } = await start({ logLevel: level, logStream: stream });
      await post(url, validBatch);
      await post(url, validBatch, { authorization: 'Bearer wrong-token-guess' });
      await app.close();
      const records = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
      const completed = records.filter((r) => r.msg === 'request completed');
      expect(completed.map((r) => (r.res as { statusCode: number }).statusCode)).toEqual([202, 401]);
      expect(completed.every((r) => r.level === 30 && typeof r.responseTime === 'number')).toBe(true);
      // One line per request: the request and its outcome together.
      expect(completed[0]).toMatchObject({ req: { method: 'POST', url: '/v1/commands' }, reqId: 'req-1' });
      expect(records.filter((r) => r.msg === 'incoming request')).toEqual([]);
      // Each accepted batch says which run and how many commands, at debug.
      const accepted = records.filter((r) => r.msg === 'commands accepted');
      if (level === 'debug') {
        expect(accepted).toEqual([expect.objectContaining({ level: 20, run: validBatch.run, accepted: 4 })]);
      } else {
        expect(accepted).toEqual([]);
      }
      const all = lines.join('\n');
      expect(all).not.toContain(TOKEN);
      expect(all).not.toContain('wrong-token-guess');
    },
  );

  it('close lets a request in flight finish, then refuses new connections', async () => {
    // An adapter whose append waits until released: the request is in flight during close().
    const memory = new MemoryEventLog();
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let appendStarted!: () => void;
    const appending = new Promise<void>((resolve) => {
      appendStarted = resolve;
    });
    const gated: EventLog = {
      append: async (events) => {
        appendStarted();
        await released;
        await memory.append(events);
      },
      read: (options) => memory.read(options),
      close: () => memory.close(),
    };
    const { url, app } = await start({ log: gated as MemoryEventLog });
    const inFlight = post(url, validBatch);
    await appending;
    const closed = app.close();
    release();
    const response = await inFlight;
    expect(response.status).toBe(202);
    await closed;
    expect(memory.events).toHaveLength(4);
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });

  it('refuses to build without a token', async () => {
    await expect(
      buildServer({ log: new MemoryEventLog(), token: ' ', clock: { now: () => 0 } }),
    ).rejects.toMatchObject({
      code: 'TOKEN_MISSING',
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Property: whatever is wrong with a body, it never reaches the log and the answer is a 400 in
// JSON naming the field that is wrong.

describe('property: invalid bodies', () => {
  it('never reach the log and always get a 400 in JSON naming the field', async () => {
    const { url, log } = await start();
    await fc.assert(
      fc.asyncProperty(validBatchArb.chain(invalidFrom), async (invalid) => {
        const response = await post(url, invalid.body);
        expect(response.status).toBe(400);
        const error = await errorOf(response);
        expect(error.code).toBe(invalid.code);
        expect(error.field).toBe(invalid.field);
        expect(error.message.length).toBeGreaterThan(0);
        if (invalid.code === 'INVALID_COMMAND') {
          expect(error.message).toMatch(/^.+: expected .+, found .+$/);
          expect(error.message.startsWith(`${invalid.field}: `)).toBe(true);
        }
        expect(log.events).toHaveLength(0);
      }),
      { numRuns: 200 },
    );
    // The same server still accepts a valid batch afterwards.
    expect((await post(url, validBatch)).status).toBe(202);
  });
});
