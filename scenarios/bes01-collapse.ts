import { defineScenario } from '../harness/scenario/define.ts';

/**
 * The seed article's case: Redirector instances BES01B..D collapse into BES01A (SRP ids 1-4),
 * against a phased move onto new instances, and a phased move that wrongly reuses SRP id 2
 * while devices still hold it (the relay disables the id and every device on it goes quiet).
 */
export default defineScenario({
  name: 'bes01-collapse',
  description:
    'Collapse BES01B-D into BES01A, against a phased move onto new instances (and one that reuses an old SRP id).',
  seed: 7,
  horizon: '7d',
  domain: {
    instances: [
      { id: 'BES01A', srpId: 1, users: 500 },
      { id: 'BES01B', srpId: 2, users: 500 },
      { id: 'BES01C', srpId: 3, users: 500 },
      { id: 'BES01D', srpId: 4, users: 500 },
    ],
  },
  fleet: { users: 2000, problemAccountShare: 0.02 },
  plans: {
    collapse: {
      kind: 'collapse',
      description: 'all users of BES01B-D move into BES01A in one stop window',
      from: ['BES01B', 'BES01C', 'BES01D'],
      into: 'BES01A',
      stopWindow: '45m',
    },
    phased: {
      kind: 'phased',
      description: '250 users every 20 minutes onto new instances with fresh SRP ids',
      from: ['BES01B', 'BES01C', 'BES01D'],
      into: { newInstances: { idPrefix: 'BES02', srpIdBase: 20 } },
      size: 250,
      every: '20m',
    },
    'phased-reusing-srp': {
      kind: 'phased',
      description: 'the same phases, but the new instance reuses SRP id 2 while BES01B devices still hold it',
      from: ['BES01C', 'BES01D', 'BES01B'],
      into: { newInstances: { instances: [{ id: 'BES02A', srpId: 2 }] } },
      size: 250,
      every: '20m',
    },
  },
  slos: { p95Delivery: '30m', peakQueue: 1000, strandedShare: 0.05 },
});
