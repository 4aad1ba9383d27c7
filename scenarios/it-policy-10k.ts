import { defineScenario } from '../harness/scenario/define.ts';

/**
 * One IT policy change pushed to 10,000 devices on five instances. With the default throttles
 * the domain limit (300 jobs a minute) binds, not the per-instance one (5 x 100): at least 33 min.
 * Lifting the domain limit shows what it costs.
 */
export default defineScenario({
  name: 'it-policy-10k',
  description: 'An IT policy change to 10,000 devices on 5 instances, with and without the domain throttle.',
  seed: 3,
  horizon: '2d',
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
    policyChange: {
      kind: 'itPolicyChange',
      description: 'new IT policy for every device, default throttles',
    },
  },
  slos: { makespan: '45m', p95Delivery: '40m' },
});
