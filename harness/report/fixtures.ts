/**
 * A small real scenario for the report's tests: three plans over 120 users on two instances,
 * slow enough throttles that queues build, some problem accounts (stranded users), and a plan
 * that reuses an SRP id devices still hold (an SRP conflict). Runs in well under a second.
 */
import type { Scenario } from '../scenario/schema.ts';
import { quietFleet, tinyScenario } from '../testing/scenarios.ts';

const MINUTE_MS = 60_000;

export function reportScenario(): Scenario {
  const scenario = tinyScenario({
    name: 'report-tiny',
    seed: 7,
    horizon: '2d',
    instances: 2,
    fleet: quietFleet(120, { problemAccountShare: 0.05, coverage: { alwaysOnlineShare: 0.8 } }),
    throttle: { jobsPerMinutePerService: 6, jobsPerMinuteDomain: 10 },
    domain: { usersPerInstance: 60, moveDetectionPoll: '5m' },
    plans: {
      bigBang: {
        kind: 'bigBang',
        description: 'everyone in one 10-minute stop window',
        into: { newInstances: { srpIdBase: 20 } },
        stopWindow: '10m',
      },
      'phased-30': {
        kind: 'phased',
        description: '30 users every 20 minutes',
        into: { newInstances: { srpIdBase: 30 } },
        size: 30,
        every: '20m',
      },
      'srp-reuse': {
        kind: 'phased',
        description: 'BES01B first, then BES01A onto a new server on SRP id 2 while devices hold it',
        from: ['BES01B', 'BES01A'],
        into: {
          newInstances: {
            instances: [
              { id: 'NEW1', srpId: 40 },
              { id: 'NEW2', srpId: 2 },
            ],
          },
        },
        size: 60,
        every: '1m',
      },
    },
  });
  return {
    ...scenario,
    description:
      'Report test: 120 users on two instances, big bang against phases, and an SRP id reused too early.',
    slos: { makespan: 90 * MINUTE_MS, p95Delivery: 30 * MINUTE_MS, peakQueue: 80, strandedShare: 0.2 },
    sweep: { base: 'phased-30', sizes: [20, 60], intervals: [10 * MINUTE_MS, 30 * MINUTE_MS] },
  };
}
