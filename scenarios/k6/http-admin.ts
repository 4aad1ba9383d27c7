/**
 * HTTP load on the admin API (harness/http/server.ts): `POST /v1/commands` with the bearer token,
 * one moveUsers command per request (the body schema of harness/http/commands.ts), and
 * `GET /healthz` beside it. Arrival-rate scenarios, so the load is bounded in requests and time
 * and the rate does not sag when the server slows down.
 *
 * Every request names users no other request names (USERS_PER_COMMAND of them), so the accepted
 * commands in the server's event log equal `phasebench_commands_accepted` here. Checks: 202 with
 * `accepted` 1 and one id, 200 `{ status: 'ok' }`. Thresholds (k6 exits 99 when one fails): under
 * 1% failed requests, p95 of the requests under P95_MS, every check passing, nothing dropped.
 *
 * Against `phasebench serve` (its default rate limit is 1,200 requests a minute per client;
 * `--rate-limit 0` switches it off for load runs):
 *
 *   PHASEBENCH_TOKEN=secret npx phasebench serve --rate-limit 0 &
 *   PHASEBENCH_TOKEN=secret "$(bash scripts/k6.sh path)" run -e RATE=200 scenarios/k6/http-admin.ts
 *
 * Environment (-e NAME=value, or the process environment), with defaults:
 *   BASE_URL           the admin API, loopback only unless ALLOW_REMOTE=1 (http://127.0.0.1:8080)
 *   PHASEBENCH_TOKEN   the bearer token (required; the variable `phasebench serve` reads)
 *   RUN                the run id of the commands                (k6/http-admin)
 *   RATE               command requests per second               (10)
 *   DURATION           how long                                  (10s)
 *   USERS_PER_COMMAND  users named by each moveUsers command     (10, at most 1000)
 *   TO                 the instance the users move onto           (BESNEW1)
 *   P95_MS             threshold on the p95 request duration      (500)
 *   VUS / MAX_VUS      VUs pre-allocated / the most it may use    (10 / 100)
 *
 * Metrics to Prometheus, while the test runs, through remote write (Prometheus started with
 * --web.enable-remote-write-receiver):
 *
 *   K6_PROMETHEUS_RW_SERVER_URL=http://127.0.0.1:19090/api/v1/write \
 *   K6_PROMETHEUS_RW_TREND_STATS=p(95),p(99),max \
 *     "$(bash scripts/k6.sh path)" run -o experimental-prometheus-rw scenarios/k6/http-admin.ts
 *
 * The series are prefixed k6_ (k6_http_req_duration_p95, k6_phasebench_commands_accepted_total,
 * ...) and tagged with `scenario`.
 */
import { check } from 'k6';
import exec from 'k6/execution';
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import type { Options } from 'k6/options';

function text(name: string, fallback: string): string {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : value;
}

function whole(name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const value = Number(text(name, String(fallback)));
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, found '${__ENV[name]}'`);
  }
  return value;
}

function isLoopbackUrl(url: string): boolean {
  const match = /^https?:\/\/(\[[^\]]+\]|[^/:]+)/i.exec(url);
  if (match === null) throw new Error(`BASE_URL must be an http(s) URL, found '${url}'`);
  const host = match[1]!.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const baseUrl = text('BASE_URL', 'http://127.0.0.1:8080').replace(/\/+$/, '');
if (__ENV.ALLOW_REMOTE !== '1' && !isLoopbackUrl(baseUrl)) {
  throw new Error(`${baseUrl} is not a loopback address; set ALLOW_REMOTE=1 to load a remote server`);
}
const token = text('PHASEBENCH_TOKEN', '');
if (token === '') throw new Error('PHASEBENCH_TOKEN is not set: it must hold the admin API bearer token');
const run = text('RUN', 'k6/http-admin');
const rate = whole('RATE', 10, 1);
const duration = text('DURATION', '10s');
const usersPerCommand = whole('USERS_PER_COMMAND', 10, 1, 1000);
const to = text('TO', 'BESNEW1');
const p95Ms = Number(text('P95_MS', '500'));
const vus = whole('VUS', 10, 1);
const maxVus = Math.max(whole('MAX_VUS', 100, 1), vus);

export const options: Options = {
  scenarios: {
    commands: {
      executor: 'constant-arrival-rate',
      exec: 'submitCommands',
      rate,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: vus,
      maxVUs: maxVus,
    },
    healthz: {
      executor: 'constant-arrival-rate',
      exec: 'healthz',
      rate: 1,
      timeUnit: '1s',
      duration,
      preAllocatedVUs: 1,
      maxVUs: 2,
    },
  },
  thresholds: {
    http_req_failed: ['rate<0.01'],
    http_req_duration: [`p(95)<${p95Ms}`],
    checks: ['rate==1'],
    dropped_iterations: ['count==0'],
  },
};

/** Commands the server accepted (the `accepted` of its 202 answers). */
const commandsAccepted = new Counter('phasebench_commands_accepted');

const commandHeaders = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

export function submitCommands(): void {
  // Distinct users in every request of the test: iteration i names users i*n ... i*n + n - 1.
  const first = exec.scenario.iterationInTest * usersPerCommand;
  const users = Array.from({ length: usersPerCommand }, (_, i) => `u${String(first + i).padStart(6, '0')}`);
  const body = { run, commands: [{ type: 'moveUsers', users, to, phase: 1 }] };
  const response = http.post(`${baseUrl}/v1/commands`, JSON.stringify(body), {
    headers: commandHeaders,
    tags: { name: 'POST /v1/commands' },
  });
  const accepted = response.status === 202 ? (response.json('accepted') as number) : 0;
  check(response, {
    'commands: 202': (r) => r.status === 202,
    'commands: one accepted, one id': (r) =>
      r.status === 202 && accepted === 1 && (r.json('ids') as unknown[]).length === 1,
  });
  if (accepted > 0) commandsAccepted.add(accepted);
}

export function healthz(): void {
  const response = http.get(`${baseUrl}/healthz`, { tags: { name: 'GET /healthz' } });
  check(response, {
    'healthz: 200 ok': (r) => r.status === 200 && r.json('status') === 'ok',
  });
}
