/**
 * One Kafka broker for every test file of a vitest run, for when several files need it: add
 * `globalSetup: ['harness/live/vitest.global-setup.ts']` to vitest.config.ts. Test files read the
 * address with `inject('kafkaBootstrap')`; harness/log/kafka.test.ts starts its own broker when
 * this setup is not configured.
 */
import type { TestProject } from 'vitest/node';
import { startBroker, stopBroker, TEST_BROKER_PORT } from './broker.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `127.0.0.1:<port>` of the broker the global setup started; undefined without it. */
    kafkaBootstrap: string | undefined;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const broker = await startBroker({ port: TEST_BROKER_PORT });
  project.provide('kafkaBootstrap', broker.bootstrap);
  return () => stopBroker(broker);
}
