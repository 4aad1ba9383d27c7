/**
 * The part of k6/x/kafka that scenarios/k6 uses, as xk6-kafka v1 (github.com/mostafa/xk6-kafka)
 * declares it. scripts/k6.sh builds k6 with phasebench's own subset of that API
 * (scripts/k6/kafka), which implements exactly these names with the same meaning; a k6 built
 * with xk6-kafka itself runs the scripts unchanged.
 */
declare module 'k6/x/kafka' {
  /** Partitions by the key as Java's (and kafkajs's default) partitioner does. */
  export const BALANCER_MURMUR2: 'balancer_murmur2';
  /** A value serialised as its UTF-8 bytes. */
  export const SCHEMA_TYPE_STRING: 'STRING';

  export interface WriterConfig {
    /** `host:port` of the bootstrap brokers. */
    brokers: string[];
    /** The topic every message goes to; it must exist (the writer does not create it). */
    topic: string;
    /** How keys map to partitions. Default: least bytes (ignores the key). */
    balancer?: typeof BALANCER_MURMUR2;
    /** Acknowledgements produce() waits for: -1 every in-sync replica, 1 the leader, 0 none (default). */
    requiredAcks?: -1 | 0 | 1;
  }

  export interface Message {
    /** From SchemaRegistry.serialize; messages with one key share a partition. */
    key?: Uint8Array;
    /** From SchemaRegistry.serialize. */
    value: Uint8Array;
    /** Kafka headers; each value is sent as its text. */
    headers?: Record<string, string>;
  }

  export interface ProduceConfig {
    messages: Message[];
  }

  /** Produces to one topic. Create it in the init context; produce in VU code. */
  export class Writer {
    constructor(config: WriterConfig);
    /** Returns once the broker has the messages (as `requiredAcks` asks); throws when any failed. */
    produce(config: ProduceConfig): void;
    close(): void;
  }

  export interface Container {
    data: string;
    schemaType: typeof SCHEMA_TYPE_STRING;
  }

  /** Serialisation; without a config it talks to no registry server. */
  export class SchemaRegistry {
    constructor();
    serialize(container: Container): Uint8Array;
  }
}
