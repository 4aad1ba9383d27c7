import { defineScenario } from '../harness/scenario/define.ts';

/**
 * Moves commanded by a load generator. `commanded` waits, live, for 1,000 moveUser commands
 * (what scenarios/k6/kafka-phased-vs-burst.ts sends by default: users u000000-u000999 of BES01A,
 * four phases of 250, each onto its own new instance BESNEW1-4). `phased` is the same move
 * planned by phasebench itself, for comparison: phases of 250 every 50 minutes, which is k6's
 * default 10 s between phases at `--time-scale 300`.
 *
 *   npx phasebench live scenarios/k6-moves.ts --plan commanded --time-scale 300
 *   (it prints the k6 command line with the run's id and timeline)
 */
export default defineScenario({
  name: 'k6-moves',
  description: '1,000 users moved in phases of 250: commanded by k6 live, or planned by phasebench.',
  seed: 5,
  horizon: '8h',
  domain: {
    instances: [
      { id: 'BES01A', srpId: 1, users: 1000 },
      { id: 'BES01B', srpId: 2, users: 1000 },
    ],
  },
  fleet: { users: 2000 },
  plans: {
    phased: {
      kind: 'phased',
      description: 'phasebench plans the moves: 250 users every 50 minutes',
      from: ['BES01A'],
      into: { newInstances: {} },
      size: 250,
      every: '50m',
    },
    commanded: {
      kind: 'commanded',
      description: 'k6 commands the moves (scenarios/k6/kafka-phased-vs-burst.ts)',
      moves: 1000,
    },
  },
  slos: { p95Delivery: '30m' },
});
