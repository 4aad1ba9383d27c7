/**
 * scenarios/k6/kafka-phased-vs-burst.ts run from code: typed options in, the k6 run and the number
 * of moveUser commands the broker acknowledged out. A test that starts an engine on the same
 * topics (startRun with `startedAt` and `timeScale`) passes the same clock here, so the commands'
 * `at` land on that run's timeline.
 */
import { counterTotal, type K6Run, runK6 } from './k6.ts';

export const KAFKA_MOVES_SCRIPT = 'kafka-phased-vs-burst.ts';

/** The script's counter of commands the broker acknowledged. */
export const MOVE_COMMANDS_METRIC = 'phasebench_move_commands';

export interface KafkaMovesOptions {
  /** `host:port` of a loopback broker. */
  bootstrap: string;
  /** The commands topic; it must exist. */
  topic: string;
  plan: 'phased' | 'burst';
  /** The run id in every message. */
  run: string;
  /** Users u000000 (from `firstUser`) onwards, one command each. */
  users: number;
  firstUser?: number;
  /** Users per phase (phased). Default 250. */
  phaseSize?: number;
  /** From one phase's start to the next's, ms (phased). Default 10_000. */
  phaseIntervalMs?: number;
  /** How long a phase takes to send its users, ms (phased). Default 5_000. */
  phaseSpreadMs?: number;
  /** How long the burst takes to send every user, ms (burst). Default 1_000. */
  burstSpreadMs?: number;
  /** Instance id prefix: phase n moves onto `${to}${n}`, the burst onto `${to}1`. Default BESNEW. */
  to?: string;
  /** Epoch ms when the run's timeline starts; default when the script's setup() runs. */
  startedAt?: number;
  /** Run ms per wall ms. Default 1. */
  timeScale?: number;
  /** Kill k6 after this long, ms. Default 120_000. */
  timeoutMs?: number;
}

export interface KafkaMovesRun extends K6Run {
  /** moveUser commands the broker acknowledged. */
  produced: number;
}

export async function runKafkaMoves(options: KafkaMovesOptions): Promise<KafkaMovesRun> {
  const env: Record<string, string> = {
    PLAN: options.plan,
    BROKERS: options.bootstrap,
    TOPIC: options.topic,
    RUN: options.run,
    USERS: String(options.users),
  };
  const optional: Record<string, string | undefined> = {
    FIRST_USER: numberText(options.firstUser),
    PHASE_SIZE: numberText(options.phaseSize),
    PHASE_INTERVAL: msText(options.phaseIntervalMs),
    PHASE_SPREAD: msText(options.phaseSpreadMs),
    BURST_SPREAD: msText(options.burstSpreadMs),
    TO: options.to,
    STARTED_AT: numberText(options.startedAt),
    TIME_SCALE: numberText(options.timeScale),
  };
  for (const [name, value] of Object.entries(optional)) if (value !== undefined) env[name] = value;
  const run = await runK6({
    script: KAFKA_MOVES_SCRIPT,
    env,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  return { ...run, produced: counterTotal(run.summary, MOVE_COMMANDS_METRIC) };
}

function numberText(value: number | undefined): string | undefined {
  return value === undefined ? undefined : String(value);
}

function msText(value: number | undefined): string | undefined {
  return value === undefined ? undefined : `${value}ms`;
}
