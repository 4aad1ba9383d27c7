/**
 * The project's own Kafka broker (scripts/kafka.sh) for tests and tools: start it, get its
 * bootstrap address, stop it. The script does the work (jars, KRaft storage, waiting until the
 * broker answers); this only runs it and turns its failures into errors that say why.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { KafkaSetupError } from './kafka-config.ts';

const run = promisify(execFile);

const SCRIPT = fileURLToPath(new URL('../../scripts/kafka.sh', import.meta.url));

/** The port scripts/kafka.sh (and `npm run kafka:up`) uses by default. */
export const DEFAULT_BROKER_PORT = 19092;

/** The port of the tests' broker: not the default, so tests never stop a broker somebody else started. */
export const TEST_BROKER_PORT = 19192;

/** The script waits up to 60 s for the broker; formatting storage and the JVMs come on top. */
const SCRIPT_TIMEOUT_MS = 120_000;

export interface KafkaBroker {
  /** `127.0.0.1:<port>`, for kafkaClient({ brokers: [bootstrap] }). */
  bootstrap: string;
  port: number;
  /** False when a broker already ran on the port: stopBroker then leaves it running. */
  startedHere: boolean;
}

/**
 * Starts a single-node broker on 127.0.0.1:`port` with empty storage, or finds the one already
 * running there, and resolves once it answers.
 * @throws KafkaSetupError KAFKA_BROKER_NOT_STARTED with the script's explanation (jars not
 *   fetched, no Java, the broker's log tail).
 */
export async function startBroker(options: { port?: number } = {}): Promise<KafkaBroker> {
  const port = options.port ?? DEFAULT_BROKER_PORT;
  const broker = { bootstrap: `127.0.0.1:${port}`, port };
  if (await isRunning(port)) return { ...broker, startedHere: false };
  try {
    await runScript('up', port);
  } catch (cause) {
    throw new KafkaSetupError(
      'KAFKA_BROKER_NOT_STARTED',
      `could not start the Kafka broker on ${broker.bootstrap} with scripts/kafka.sh up:\n${scriptOutput(cause)}`,
      { cause },
    );
  }
  return { ...broker, startedHere: true };
}

/**
 * Stops the broker and removes its data, if this process started it (`startedHere`).
 * @throws KafkaSetupError KAFKA_BROKER_NOT_STOPPED
 */
export async function stopBroker(broker: KafkaBroker): Promise<void> {
  if (!broker.startedHere) return;
  try {
    await runScript('down', broker.port);
  } catch (cause) {
    throw new KafkaSetupError(
      'KAFKA_BROKER_NOT_STOPPED',
      `could not stop the Kafka broker on ${broker.bootstrap} with scripts/kafka.sh down:\n${scriptOutput(cause)}`,
      { cause },
    );
  }
}

/**
 * Stops the broker but keeps its storage: an outage, for fault tests. resumeBroker ends it.
 * @throws KafkaSetupError KAFKA_BROKER_NOT_STOPPED
 */
export async function pauseBroker(broker: KafkaBroker): Promise<void> {
  try {
    await runScript('pause', broker.port);
  } catch (cause) {
    throw new KafkaSetupError(
      'KAFKA_BROKER_NOT_STOPPED',
      `could not pause the Kafka broker on ${broker.bootstrap} with scripts/kafka.sh pause:\n${scriptOutput(cause)}`,
      { cause },
    );
  }
}

/**
 * Starts a paused broker again on the storage it kept, and resolves once it answers.
 * @throws KafkaSetupError KAFKA_BROKER_NOT_STARTED
 */
export async function resumeBroker(broker: KafkaBroker): Promise<void> {
  try {
    await runScript('resume', broker.port);
  } catch (cause) {
    throw new KafkaSetupError(
      'KAFKA_BROKER_NOT_STARTED',
      `could not resume the Kafka broker on ${broker.bootstrap} with scripts/kafka.sh resume:\n${scriptOutput(cause)}`,
      { cause },
    );
  }
}

async function isRunning(port: number): Promise<boolean> {
  try {
    await runScript('status', port);
    return true;
  } catch {
    // Exit code 3: not running. Any other failure (a broken script) is for `up` to report.
    return false;
  }
}

function runScript(
  command: 'up' | 'down' | 'pause' | 'resume' | 'status',
  port: number,
): Promise<{ stdout: string }> {
  return run('bash', [SCRIPT, command], {
    env: { ...process.env, KAFKA_PORT: String(port) },
    timeout: SCRIPT_TIMEOUT_MS,
  });
}

/** What the script said before failing: its own reason and the broker's log tail. */
function scriptOutput(error: unknown): string {
  const { stderr, stdout } = error as { stderr?: unknown; stdout?: unknown };
  const said = [stderr, stdout].filter(
    (text): text is string => typeof text === 'string' && text.trim() !== '',
  );
  return said.length > 0 ? said.join('\n').trim() : String(error);
}
