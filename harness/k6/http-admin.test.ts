/**
 * k6 (the binary scripts/k6.sh builds) runs scenarios/k6/http-admin.ts against a real admin API
 * started here on 127.0.0.1 with an in-memory event log: what k6 counts as accepted is what the
 * log holds, and a threshold that cannot be met makes k6 exit 99.
 *
 * The first run builds k6 when it is not built yet (minutes). Without Go or the module proxy
 * every test here fails and says why; none skips.
 */
import type { FastifyInstance } from 'fastify';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../domain/events.ts';
import { type CommandAccepted, isCommandAccepted } from '../http/commands.ts';
import { buildServer } from '../http/server.ts';
import { MemoryEventLog } from '../log/memory.ts';
import { WallClock } from '../sim/clock.ts';
import { counterTotal, K6_THRESHOLDS_FAILED, k6Binary, runK6 } from './k6.ts';

const TOKEN = 'k6-test-token-0123456789abcdef';
const SCRIPT = 'http-admin.ts';
const RUN = 'k6-test/http-admin';

let app: FastifyInstance | undefined;
let baseUrl: string;
let log: MemoryEventLog;

/** Why k6 or the server could not start: every test then fails with it (never skips). */
let setupFailure: unknown;

beforeAll(async () => {
  try {
    await k6Binary();
    log = new MemoryEventLog();
    app = await buildServer({
      log,
      token: TOKEN,
      clock: new WallClock(1),
      registry: new Registry(),
      rateLimit: false,
      logLevel: 'silent',
    });
    baseUrl = await app.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    setupFailure = error;
  }
}, 900_000);

beforeEach(() => {
  if (setupFailure !== undefined) throw setupFailure;
});

afterAll(async () => {
  await app?.close();
});

function accepted(run: string): CommandAccepted[] {
  return (log.events as readonly (StoredEvent | CommandAccepted)[])
    .filter(isCommandAccepted)
    .filter((fact) => fact.run === run);
}

describe('k6 http-admin.ts against the admin API', () => {
  it('every command k6 saw accepted is in the event log, and the thresholds pass', async () => {
    const k6 = await runK6({
      script: SCRIPT,
      env: {
        BASE_URL: baseUrl,
        PHASEBENCH_TOKEN: TOKEN,
        RUN,
        RATE: '20',
        DURATION: '2s',
        USERS_PER_COMMAND: '5',
      },
    });

    expect(k6.exitCode, k6.stderr).toBe(0);
    const acceptedByK6 = counterTotal(k6.summary, 'phasebench_commands_accepted');
    expect(acceptedByK6).toBeGreaterThan(0);
    const facts = accepted(RUN);
    expect(facts).toHaveLength(acceptedByK6);
    // Each request named users of its own: no user was moved twice.
    const users = facts.flatMap((fact) => (fact.data.type === 'moveUsers' ? fact.data.users : []));
    expect(users).toHaveLength(5 * acceptedByK6);
    expect(new Set(users).size).toBe(users.length);
    expect(k6.summary.metrics.checks?.fails).toBe(0);
    expect(k6.summary.metrics.http_req_failed?.passes).toBe(0);
  });

  it('a threshold that cannot be met makes k6 exit 99', async () => {
    const k6 = await runK6({
      script: SCRIPT,
      env: {
        BASE_URL: baseUrl,
        PHASEBENCH_TOKEN: TOKEN,
        RUN: `${RUN}-impossible`,
        RATE: '5',
        DURATION: '1s',
        // No request is answered in less than no time.
        P95_MS: '0',
      },
    });

    expect(k6.exitCode, k6.stderr).toBe(K6_THRESHOLDS_FAILED);
    expect(k6.summary.metrics.http_req_duration?.thresholds).toEqual({ 'p(95)<0': true });
    // The requests themselves succeeded: only the threshold failed.
    expect(k6.summary.metrics.checks?.fails).toBe(0);
  });

  it('refuses a server that is not on loopback before sending anything', async () => {
    const k6 = await runK6({
      script: SCRIPT,
      env: { BASE_URL: 'http://192.0.2.1:8080', PHASEBENCH_TOKEN: TOKEN, DURATION: '1s' },
    }).catch((error: unknown) => error);

    // k6 fails in the init context, before any scenario runs: no summary is written.
    expect(k6).toMatchObject({ code: 'K6_NO_SUMMARY' });
    expect(String((k6 as Error).message)).toMatch(/192\.0\.2\.1:8080 is not a loopback address/);
  });
});
