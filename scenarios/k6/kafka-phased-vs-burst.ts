/**
 * A throttled phased move against a big-bang burst, as k6 scenarios producing `moveUser` commands
 * onto live mode's commands topic (DESIGN section 5; the message is moveUserMessage of
 * harness/live/messages.ts, keyed by user id, with the `run` and `v` headers).
 *
 * - PLAN=phased: USERS / PHASE_SIZE phases; phase n (1-based) is a constant-arrival-rate scenario
 *   starting at (n - 1) × PHASE_INTERVAL that sends its PHASE_SIZE users evenly over PHASE_SPREAD,
 *   onto instance `${TO}${n}` (each phase a new instance).
 * - PLAN=burst: one constant-arrival-rate scenario sending every user over BURST_SPREAD, all onto
 *   `${TO}1`, as phase 1 (the domain's big bang is one phase too).
 *
 * Each iteration moves exactly one user, so a scenario's iteration number names its user and every
 * user is sent once. The thresholds fail the run (k6 exits 99) when a message could not be written
 * or an iteration was dropped because no VU was free; `phasebench_move_commands` counts the
 * commands the broker acknowledged.
 *
 * Run it with the k6 that `npm run k6:build` builds, against a broker (`npm run kafka:up`) whose
 * topics exist (harness/live/kafka-config.ts creates them):
 *
 *   "$(bash scripts/k6.sh path)" run -e PLAN=phased scenarios/k6/kafka-phased-vs-burst.ts
 *   "$(bash scripts/k6.sh path)" run -e PLAN=burst -e USERS=5000 scenarios/k6/kafka-phased-vs-burst.ts
 *
 * Environment (-e NAME=value), with defaults:
 *   PLAN            phased | burst                                   (phased)
 *   BROKERS         comma-separated host:port, loopback only unless ALLOW_REMOTE=1 (127.0.0.1:19092)
 *   TOPIC           the commands topic                               (phasebench.commands)
 *   RUN             the run id in every message                      (k6/<PLAN>)
 *   USERS           users to move: u000000 ... (FIRST_USER onwards)  (1000)
 *   FIRST_USER      number of the first user                         (0)
 *   PHASE_SIZE      users per phase                                  (250)
 *   PHASE_INTERVAL  from one phase's start to the next's             (10s)
 *   PHASE_SPREAD    how long a phase takes to send its users         (5s)
 *   BURST_SPREAD    how long the burst takes to send every user      (1s)
 *   TAIL            how long each scenario stays open past its spread (2s): k6 ends an
 *                   arrival-rate scenario at its duration even if iterations that fell due
 *                   before then have not started yet (a busy machine), and does not count them
 *                   as dropped; the tail lets them start. Its own iterations send nothing.
 *   TO              instance id prefix of the target instances       (BESNEW)
 *   STARTED_AT      epoch ms when the run's timeline starts          (when setup() runs)
 *   TIME_SCALE      run ms per wall ms, as in a startRun message     (1)
 *   VUS / MAX_VUS   VUs a scenario pre-allocates / may grow to  (enough for 500 ms a message / twice that)
 * Durations are k6 durations ('500ms', '10s', '2m'). `at` in each message is
 * (now - STARTED_AT) × TIME_SCALE: milliseconds on the run's timeline, as live mode counts them.
 *
 * Metrics to Prometheus, while the test runs, through remote write (Prometheus started with
 * --web.enable-remote-write-receiver):
 *
 *   K6_PROMETHEUS_RW_SERVER_URL=http://127.0.0.1:19090/api/v1/write \
 *   K6_PROMETHEUS_RW_TREND_STATS=p(95),p(99),max \
 *     "$(bash scripts/k6.sh path)" run -o experimental-prometheus-rw scenarios/k6/kafka-phased-vs-burst.ts
 *
 * The series are prefixed k6_ (k6_kafka_writer_message_count_total, k6_phasebench_move_commands_total,
 * ...) and tagged with `scenario`, so each phase is its own series.
 */
import exec from 'k6/execution';
import { Counter } from 'k6/metrics';
import type { Options, Scenario } from 'k6/options';
import { BALANCER_MURMUR2, SCHEMA_TYPE_STRING, SchemaRegistry, Writer } from 'k6/x/kafka';

// Header names and the schema version of harness/live/messages.ts (RUN_HEADER, VERSION_HEADER,
// MESSAGE_SCHEMA_VERSION): k6 cannot import the harness's Node modules.
const RUN_HEADER = 'run';
const VERSION_HEADER = 'v';
const MESSAGE_SCHEMA_VERSION = 1;

type Plan = 'phased' | 'burst';

function text(name: string, fallback: string): string {
  const value = __ENV[name];
  return value === undefined || value === '' ? fallback : value;
}

function whole(name: string, fallback: number, min: number): number {
  const value = Number(text(name, String(fallback)));
  if (!Number.isInteger(value) || value < min) {
    throw new Error(`${name} must be a whole number of at least ${min}, found '${__ENV[name]}'`);
  }
  return value;
}

/** Milliseconds of a k6-style duration ('250ms', '10s', '2m', '1h'). */
function durationMs(name: string, fallback: string): number {
  const value = text(name, fallback);
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  if (match === null)
    throw new Error(`${name} must be a duration such as 500ms, 10s or 2m, found '${value}'`);
  const unitMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  const ms = Number(match[1]) * unitMs;
  if (ms < 1) throw new Error(`${name} must be at least 1ms, found '${value}'`);
  return Math.round(ms);
}

function isLoopback(hostPort: string): boolean {
  const host = hostPort
    .replace(/:\d+$/, '')
    .replace(/^\[(.*)\]$/, '$1')
    .toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

const plan = text('PLAN', 'phased') as Plan;
if (plan !== 'phased' && plan !== 'burst') throw new Error(`PLAN must be phased or burst, found '${plan}'`);

const brokers = text('BROKERS', '127.0.0.1:19092').split(',');
if (__ENV.ALLOW_REMOTE !== '1') {
  const remote = brokers.filter((broker) => !isLoopback(broker));
  if (remote.length > 0) {
    throw new Error(
      `${remote.join(', ')} is not a loopback address; set ALLOW_REMOTE=1 to load a remote broker`,
    );
  }
}

const topic = text('TOPIC', 'phasebench.commands');
const run = text('RUN', `k6/${plan}`);
const users = whole('USERS', 1000, 1);
const firstUser = whole('FIRST_USER', 0, 0);
const phaseSize = plan === 'burst' ? users : Math.min(whole('PHASE_SIZE', 250, 1), users);
const phaseIntervalMs = durationMs('PHASE_INTERVAL', '10s');
const phaseSpreadMs = durationMs('PHASE_SPREAD', '5s');
const burstSpreadMs = durationMs('BURST_SPREAD', '1s');
const tailMs = durationMs('TAIL', '2s');
const to = text('TO', 'BESNEW');
const timeScale = Number(text('TIME_SCALE', '1'));
if (!(timeScale > 0)) throw new Error(`TIME_SCALE must be a positive number, found '${__ENV.TIME_SCALE}'`);
const phases = Math.ceil(users / phaseSize);

/**
 * One scenario per phase: `rate` iterations per `timeUnit`, evenly spaced, the first `rate` of
 * them sending the phase's users over the spread. The scenario runs on for the tail, so that an
 * iteration due near the end of the spread still starts when k6 is behind (k6 stops starting
 * iterations once a scenario's duration is up, whether or not they were due); moveUser skips
 * every iteration past the phase's users.
 */
function moveScenarios(): Record<string, Scenario> {
  const scenarios: Record<string, Scenario> = {};
  for (let phase = 1; phase <= phases; phase++) {
    const size = Math.min(phaseSize, users - (phase - 1) * phaseSize);
    const spreadMs = plan === 'burst' ? burstSpreadMs : phaseSpreadMs;
    // An iteration that finds no free VU is dropped, and its user never sent: enough VUs for each
    // message to take 500 ms (a VU's first one connects its writer; a loaded machine is slow), plus a few.
    const vus = whole('VUS', Math.ceil((size * 500) / spreadMs) + 5, 1);
    const maxVus = Math.max(whole('MAX_VUS', 2 * vus, 1), vus);
    scenarios[plan === 'burst' ? 'burst' : `phase_${phase}`] = {
      executor: 'constant-arrival-rate',
      exec: 'moveUser',
      rate: size,
      timeUnit: `${spreadMs}ms`,
      duration: `${spreadMs + tailMs}ms`,
      startTime: `${(phase - 1) * phaseIntervalMs}ms`,
      preAllocatedVUs: vus,
      maxVUs: maxVus,
      gracefulStop: '10s',
      env: { PHASE: String(phase), PHASE_USERS: String(size) },
      tags: { plan, phase: String(phase) },
    };
  }
  return scenarios;
}

export const options: Options = {
  scenarios: moveScenarios(),
  thresholds: {
    // Every command reached the broker: nothing failed, nothing was dropped for want of a VU.
    kafka_writer_error_count: ['count==0'],
    dropped_iterations: ['count==0'],
    phasebench_move_commands: [`count==${users}`],
  },
};

/** Commands the broker acknowledged. */
const moveCommands = new Counter('phasebench_move_commands');

// One writer per VU (the init context runs per VU); the murmur2 balancer puts a user's commands on
// the partition the harness's kafkajs producers would choose.
const writer = new Writer({ brokers, topic, balancer: BALANCER_MURMUR2, requiredAcks: -1 });
const serde = new SchemaRegistry();

interface RunClock {
  /** Epoch ms when the run's timeline starts. */
  startedAt: number;
}

export function setup(): RunClock {
  const startedAt = __ENV.STARTED_AT === undefined ? Date.now() : whole('STARTED_AT', 0, 0);
  return { startedAt };
}

export function moveUser(clock: RunClock): void {
  const phase = Number(__ENV.PHASE);
  const index = exec.scenario.iterationInTest;
  // Iterations past the phase's users (k6 may start one at the end) would send users twice.
  if (index >= Number(__ENV.PHASE_USERS)) return;
  const user = `u${String(firstUser + (phase - 1) * phaseSize + index).padStart(6, '0')}`;
  const message = {
    v: MESSAGE_SCHEMA_VERSION,
    type: 'moveUser',
    run,
    user,
    to: plan === 'burst' ? `${to}1` : `${to}${phase}`,
    phase,
    at: Math.max(0, (Date.now() - clock.startedAt) * timeScale),
  };
  writer.produce({
    messages: [
      {
        key: serde.serialize({ data: user, schemaType: SCHEMA_TYPE_STRING }),
        value: serde.serialize({ data: JSON.stringify(message), schemaType: SCHEMA_TYPE_STRING }),
        headers: { [RUN_HEADER]: run, [VERSION_HEADER]: String(MESSAGE_SCHEMA_VERSION) },
      },
    ],
  });
  moveCommands.add(1);
}
