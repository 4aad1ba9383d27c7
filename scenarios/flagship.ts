import { defineScenario } from '../harness/scenario/define.ts';

/**
 * The flagship: 10,000 users on five BES 4.1 instances move to new BES 5.0 instances.
 * Big bang (everyone in one stop window) against throttled phases, fixed and closed-loop.
 */
export default defineScenario({
  name: 'flagship-10k',
  description:
    '10,000 users move from five BES 4.1 instances onto new BES 5.0 instances: big bang against phased moves.',
  seed: 42,
  horizon: '3d',
  domain: {
    instances: [
      { id: 'BES01A', srpId: 1 },
      { id: 'BES01B', srpId: 2 },
      { id: 'BES01C', srpId: 3 },
      { id: 'BES01D', srpId: 4 },
      { id: 'BES01E', srpId: 5 },
    ],
  },
  fleet: { users: 10_000 },
  plans: {
    bigBang: {
      kind: 'bigBang',
      description: 'every user moves in one 30-minute stop window',
      from: ['BES01A', 'BES01B', 'BES01C', 'BES01D', 'BES01E'],
      into: { newInstances: { idPrefix: 'BES50', srpIdBase: 100 } },
      stopWindow: '30m',
    },
    'phased-1000': {
      kind: 'phased',
      description: '1,000 users every 30 minutes',
      into: { newInstances: { idPrefix: 'BES50', srpIdBase: 100 } },
      size: 1000,
      every: '30m',
    },
    'gated-1000': {
      kind: 'phased',
      description: '1,000 users at a time, the next phase once the push queue is below 100',
      into: { newInstances: { idPrefix: 'BES50', srpIdBase: 100 } },
      size: 1000,
      gate: { kind: 'queueBelow', depth: 100 },
    },
  },
  slos: { makespan: '6h', p95Delivery: '30m', peakQueue: 2500, strandedShare: 0.1 },
  sweep: {
    base: 'phased-1000',
    sizes: [250, 500, 1000, 2000, 5000],
    intervals: ['15m', '30m', '60m'],
  },
  thresholds: ['p95(push_delivery) < +10%', 'makespan < +10%', 'peak_queue < +10%'],
});
