/**
 * Live mode's Kafka topics (DESIGN section 4) and the kafkajs client the harness talks to them
 * with. Topics are created on purpose, with explicit partition counts: the project's broker has
 * auto-creation off, because an auto-created topic silently gets the broker's default count.
 */
import { type Admin, Kafka, logLevel } from 'kafkajs';
import { PhasebenchError } from '../errors.ts';

export type TopicRole = 'commands' | 'pushes' | 'deviceEvents' | 'events' | 'dlq';

export interface TopicSpec {
  name: string;
  /** How many consumers of one group can share the topic's work. */
  partitions: number;
  /** 1 on the project's single-node broker. */
  replicationFactor: number;
  /** Topic-level settings, e.g. `{ 'retention.ms': '86400000' }`. */
  configs?: Readonly<Record<string, string>>;
}

export type LiveTopics = Readonly<Record<TopicRole, TopicSpec>>;

/** Partitions of the work topics: as many engine or fleet workers as this can consume at once. */
const WORKER_PARTITIONS = 6;

export const DEFAULT_TOPICS: LiveTopics = {
  /** Move user, change IT policy, activate device; key: user id. */
  commands: { name: 'phasebench.commands', partitions: WORKER_PARTITIONS, replicationFactor: 1 },
  /** Work dispatched to devices; key: device id. */
  pushes: { name: 'phasebench.pushes', partitions: WORKER_PARTITIONS, replicationFactor: 1 },
  /** Acknowledgements, coverage changes, activation messages; key: device id. */
  deviceEvents: { name: 'phasebench.device-events', partitions: WORKER_PARTITIONS, replicationFactor: 1 },
  /**
   * The event log. One partition: a log's hash and its projections need one total order, and
   * Kafka orders only within a partition (see harness/log/kafka.ts for more partitions).
   */
  events: { name: 'phasebench.events', partitions: 1, replicationFactor: 1 },
  /** Messages that failed validation, with the reason. */
  dlq: { name: 'phasebench.dlq', partitions: 1, replicationFactor: 1 },
};

/**
 * The topics with names and counts overridden: `prefix` goes before every name (e.g. a test's
 * own namespace), `topics` replaces fields per role.
 */
export function liveTopics(
  options: { prefix?: string; topics?: Partial<Record<TopicRole, Partial<TopicSpec>>> } = {},
): LiveTopics {
  const { prefix = '', topics = {} } = options;
  const resolve = (role: TopicRole): TopicSpec => {
    const spec = { ...DEFAULT_TOPICS[role], ...topics[role] };
    return { ...spec, name: prefix + spec.name };
  };
  return {
    commands: resolve('commands'),
    pushes: resolve('pushes'),
    deviceEvents: resolve('deviceEvents'),
    events: resolve('events'),
    dlq: resolve('dlq'),
  };
}

/**
 * A kafkajs client with the harness's defaults. kafkajs logs nothing by default here: its
 * failures reach callers as PhasebenchErrors with kafkajs's error as the cause, and it logs
 * retriable hiccups (a coordinator still loading) as errors. Pass `logLevel` to see them.
 */
export function kafkaClient(options: { brokers: string[]; clientId?: string; logLevel?: logLevel }): Kafka {
  return new Kafka({
    clientId: options.clientId ?? 'phasebench',
    brokers: options.brokers,
    logLevel: options.logLevel ?? logLevel.NOTHING,
  });
}

export type KafkaSetupErrorCode =
  /** scripts/kafka.sh could not start a broker (no jars, no Java, port taken, timeout). */
  | 'KAFKA_BROKER_NOT_STARTED'
  /** scripts/kafka.sh could not stop the broker. */
  | 'KAFKA_BROKER_NOT_STOPPED'
  /** The brokers refused or failed topic creation, or could not be reached. */
  | 'KAFKA_TOPICS_NOT_CREATED'
  /** A topic exists with another partition count than its spec asks for. */
  | 'KAFKA_TOPIC_MISMATCH';

/** Setting up live mode's Kafka (broker, topics) failed. */
export class KafkaSetupError extends PhasebenchError {
  override name = 'KafkaSetupError';
  declare readonly code: KafkaSetupErrorCode;

  constructor(
    code: KafkaSetupErrorCode,
    message: string,
    details: { retriable?: boolean; cause?: unknown } = {},
  ) {
    super(code, message, { retriable: details.retriable ?? false, cause: details.cause });
  }
}

/**
 * kafkajs's own verdict on whether an error may go away by itself. When kafkajs has already
 * retried and given up it reports "not retriable"; the error it gave up on says whether a later
 * attempt (the broker back up, a leader elected) can succeed, so that one decides.
 */
export function isRetriableKafkaError(error: unknown): boolean {
  if (error instanceof Error && error.name === 'KafkaJSNumberOfRetriesExceeded') {
    return isRetriableKafkaError(error.cause);
  }
  return (error as { retriable?: unknown } | null)?.retriable === true;
}

/**
 * Creates the topics that do not exist yet, waiting for their partition leaders. Idempotent:
 * existing topics are kept, but one with another partition count is an error, because keys
 * would then land on other partitions than the spec (and any reader) assumes.
 * @throws KafkaSetupError KAFKA_TOPICS_NOT_CREATED, KAFKA_TOPIC_MISMATCH
 */
export async function createTopics(
  admin: Admin,
  topics: readonly TopicSpec[] = Object.values(DEFAULT_TOPICS),
): Promise<void> {
  const names = topics.map((topic) => topic.name).join(', ');
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((topic) => !existing.has(topic.name));
    if (missing.length > 0) {
      // Returns false instead of creating when another process created one meanwhile.
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic: topic.name,
          numPartitions: topic.partitions,
          replicationFactor: topic.replicationFactor,
          configEntries: Object.entries(topic.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }
  } catch (cause) {
    throw new KafkaSetupError('KAFKA_TOPICS_NOT_CREATED', `could not create the Kafka topics ${names}`, {
      retriable: isRetriableKafkaError(cause),
      cause,
    });
  }

  let metadata: Awaited<ReturnType<Admin['fetchTopicMetadata']>>;
  try {
    metadata = await admin.fetchTopicMetadata({ topics: topics.map((topic) => topic.name) });
  } catch (cause) {
    throw new KafkaSetupError('KAFKA_TOPICS_NOT_CREATED', `could not check the Kafka topics ${names}`, {
      retriable: isRetriableKafkaError(cause),
      cause,
    });
  }
  const mismatches = topics.flatMap((topic) => {
    const partitions = metadata.topics.find((found) => found.name === topic.name)?.partitions.length;
    return partitions === topic.partitions
      ? []
      : [`${topic.name} has ${partitions ?? 'no'} partitions, not ${topic.partitions}`];
  });
  if (mismatches.length > 0) {
    throw new KafkaSetupError(
      'KAFKA_TOPIC_MISMATCH',
      `existing Kafka topics differ from their spec: ${mismatches.join('; ')} (delete them or change the spec)`,
    );
  }
}
