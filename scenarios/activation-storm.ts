import { defineScenario } from '../harness/scenario/define.ts';

/**
 * 3,000 enterprise activations in one morning (a device refresh). Activations bypass the
 * Policy Service throttle, so what limits them is the activation concurrency per instance.
 */
export default defineScenario({
  name: 'activation-storm',
  description: '3,000 enterprise activations over two hours: Poisson arrivals against an even schedule.',
  seed: 11,
  horizon: '3d',
  domain: {
    instances: [
      { id: 'BES01A', srpId: 1 },
      { id: 'BES01B', srpId: 2 },
    ],
  },
  fleet: { users: 4000 },
  plans: {
    poisson: { kind: 'activationStorm', activations: 3000, window: '2h', arrivals: 'poisson' },
    uniform: { kind: 'activationStorm', activations: 3000, window: '2h', arrivals: 'uniform' },
  },
  slos: { p95Delivery: '20m' },
});
