/**
 * Benchmark: an IT policy burst to N devices (default 100,000) on N/2,000 instances, measured in
 * one process next to a bare discrete-event loop that runs the same number of events through the
 * same binary heap with no-op handlers:
 *
 *   bare loop        pop an event, schedule the next (hold model), nothing else
 *   simulator        the engine deciding and evolving, envelopes stamped: no projection, no log
 *   full pipeline    simulator + projection + SHA-256 of the log + gzip log file (what `run` does)
 *
 * The bare loop runs as a hold model with a fixed number of events in the heap, two ways:
 *
 *   matched          as many as the simulator's heap holds on average (measured below): the same
 *                    number of events through the same heap at the same size. The headline, and
 *                    what "vs bare loop" divides by.
 *   1,000 live       the figure earlier versions of this bench compared with, kept for continuity.
 *
 * The simulator and the bare loops are measured in rounds (`--rounds`, 5), each the same steps:
 * a fresh fleet, a full collection, the simulator's warm-up runs, the measured simulator run, then
 * each bare loop twice, alternating, keeping its faster run (whichever ran first was slowed by the
 * collector's background work left by the run before it). A round's ratio is its simulator's
 * events/s over its own bare loop's, so a round that the machine slowed down is compared with a
 * bare loop measured moments later; the headline is the median of the rounds' ratios, with their
 * range. Each round generates its fleet again (from a fresh SeededRandom of the scenario's seed,
 * outside the measured run): a run extends its roaming devices' coverage timelines as it reads
 * them (a 100,000-device burst takes them from about 40,000 to 97,000 flips), so a second run on
 * the same fleet would do less work than the first. Every round logs the same events.
 *
 * The simulator's heap occupancy (its size at each step, mean and max) comes from one more run of
 * the same scenario, seed and a fleet of its own before the rounds, which is the measured run step
 * for step; the measured runs carry no instrumentation. A 100,000-device burst holds fewer than
 * 1,000 (the throttle lets 300 jobs a minute out), so the matched loop is a little faster than the
 * 1,000-live one. Both loops run as many heap steps as the simulator logs events, about twice the
 * simulator's own steps (most steps emit two facts or more).
 *
 * It prints figures and ratios; it asserts nothing (the machine is shared and noisy). Ratios are of
 * events per wall-clock second; each stage's CPU time (all threads, the collector's helpers
 * included) and the load average are printed beside them, to tell a slower stage from a busier
 * machine. The simulator and pipeline stages start after a full collection, so neither pays for
 * the garbage of what ran before it (generating the fleet, the stage before). A full collection
 * also throws away the optimised code of whatever was warmed before it (its embedded objects die),
 * so the simulator and each bare loop are warmed after it, right before they are measured, on
 * smaller runs of their own (the simulator starts with its warm-up runs' young garbage, which dies
 * at its first scavenge). The full pipeline runs once, after the rounds, on the last round's fleet,
 * and is not warmed again; its ratio is to the median of the rounds' matched bare loops.
 *
 *   npm run bench                                  100,000 devices, 5 rounds
 *   npm run bench -- --rounds 9                    more rounds
 *   npm run bench -- --devices 1000000 --rounds 1  the million-device run
 *   npm run bench -- --json                        machine-readable figures on stdout
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Table from 'cli-table3';
import { type Fleet, generateFleet } from '../harness/domain/fleet.ts';
import { StreamingLogWriter } from '../harness/results/log-writer.ts';
import { parseScenario } from '../harness/scenario/load.ts';
import type { Scenario } from '../harness/scenario/schema.ts';
import { TimeHeap } from '../harness/sim/heap.ts';
import { SeededRandom } from '../harness/sim/random.ts';
import { runPlan, simulatePlan } from '../harness/sim/run.ts';
import { benchArgs, positiveInteger } from './args.ts';
import { medianOf } from './median.ts';

const args = benchArgs(
  'npm run bench --',
  'The simulator on an IT policy burst against a bare discrete-event loop holding as many events, in ' +
    'rounds (the median of their ratios is the headline), then the full pipeline once.',
  {
    devices: { type: 'string', default: '100000', help: 'devices in the burst', value: 'n' },
    rounds: { type: 'string', default: '5', help: 'rounds of the simulator and the bare loops', value: 'n' },
    json: { type: 'boolean', default: false, help: 'the figures as JSON on stdout' },
  },
);
const devices = positiveInteger('devices', args.devices);
const rounds = positiveInteger('rounds', args.rounds);

const now = (): number => performance.now();
// A full collection on demand: the flag exposes gc() to contexts created after it is set.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;
const rssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);
/** CPU time of the whole process so far (ms), every thread included. */
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

function burstScenario(n: number): Scenario {
  const instances = Array.from({ length: Math.ceil(n / 2000) }, (_, i) => ({
    id: `BES${String(i + 1).padStart(3, '0')}`,
    srpId: i + 1,
  }));
  return parseScenario(
    {
      name: `bench-burst-${n}`,
      seed: 1,
      // The domain limit (300 a minute) sets the pace: leave room for the whole burst plus a day of tails.
      horizon: Math.ceil(n / 300) * 60_000 + 86_400_000,
      domain: { instances },
      fleet: { users: n },
      plans: { burst: { kind: 'itPolicyChange', description: 'new IT policy for every device' } },
    },
    'bench/burst.bench.ts',
  );
}

/** The hold model: `live` events in the heap; each pop schedules one more. No work per event. */
function bareLoop(events: number, live: number): { wallMs: number; cpuMs: number } {
  const heap = new TimeHeap<number>();
  let x = 12345;
  const next = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % 60_000;
  };
  for (let i = 0; i < live; i++) heap.push(next(), i);
  const started = now();
  const startedCpu = cpuMs();
  for (let i = 0; i < events; i++) {
    const at = heap.peekTime()!;
    const item = heap.pop()!;
    heap.push(at + next(), item);
  }
  return { wallMs: now() - started, cpuMs: cpuMs() - startedCpu };
}

interface Stage {
  stage: string;
  events: number;
  wallMs: number;
  cpuMs: number;
  eventsPerSecond: number;
  peakRssMb: number;
}

const log = (line: string): void => {
  if (!args.json) console.error(line);
};

const scenario = burstScenario(devices);
log(
  `IT policy burst: ${devices.toLocaleString('en-US')} devices on ${scenario.domain.instances.length} instances, ${rounds} round${rounds === 1 ? '' : 's'}`,
);

/**
 * The scenario's fleet and randomness, made as `run` makes them: the same for every call. Outside
 * the measured stages (building the fleet produces no events).
 */
function freshInputs(): { fleet: Fleet; random: SeededRandom; generatedMs: number } {
  const started = now();
  const random = new SeededRandom(scenario.seed);
  const fleet = generateFleet(scenario, random);
  return { fleet, random, generatedMs: now() - started };
}

// The simulator's heap size at every step, on a run of its own before the rounds: the bare loops
// of every round hold as many events as it does on average.
let inputs = freshInputs();
log(`fleet generated in ${(inputs.generatedMs / 1000).toFixed(2)} s`);
let steps = 0;
let heldSum = 0;
let heldMax = 0;
simulatePlan(scenario, 'burst', {
  fleet: inputs.fleet,
  random: inputs.random,
  onHeapSize: (commands) => {
    steps++;
    heldSum += commands;
    if (commands > heldMax) heldMax = commands;
  },
});
const heapOccupancy = { steps, mean: heldSum / steps, max: heldMax };
const matchedLive = Math.max(1, Math.round(heapOccupancy.mean));
const matchedStage = `bare loop, ${matchedLive.toLocaleString('en-US')} live (matched)`;

// Big enough that every hot function of the engine is optimised before the measured run starts,
// and twice: the first run's last fact (its RunCompleted, the first evolve ever sees) throws
// away evolve's optimised code, which the measured run then recompiled as it went.
// Called as the measured run is (fleet and random passed in), so its code sees the same shapes.
const warmUp = burstScenario(Math.min(devices, 20_000));

function simulatorStage(fleet: Fleet, random: SeededRandom): Stage & { commandsProcessed: number } {
  collectGarbage();
  for (let i = 0; i < 2; i++) {
    const warmRandom = new SeededRandom(warmUp.seed);
    simulatePlan(warmUp, 'burst', { fleet: generateFleet(warmUp, warmRandom), random: warmRandom });
  }
  const started = now();
  const startedCpu = cpuMs();
  const run = simulatePlan(scenario, 'burst', { fleet, random });
  const wallMs = now() - started;
  return {
    stage: 'simulator',
    events: run.events,
    commandsProcessed: run.commandsProcessed,
    wallMs,
    cpuMs: cpuMs() - startedCpu,
    eventsPerSecond: (run.events / wallMs) * 1000,
    peakRssMb: rssMb(),
  };
}

// The bare loop allocates nothing, so it gets no collection first: the collector's background
// sweeping would compete with it for the CPU.
function bareStage(events: number, live: number, stage: string): Stage {
  bareLoop(200_000, live);
  const run = bareLoop(events, live);
  return {
    stage,
    events,
    wallMs: run.wallMs,
    cpuMs: run.cpuMs,
    eventsPerSecond: (events / run.wallMs) * 1000,
    peakRssMb: rssMb(),
  };
}

interface Round {
  round: number;
  fleetGeneratedMs: number;
  simulator: Stage & { commandsProcessed: number };
  /** The faster of the round's two matched bare runs, and of its two 1,000-live runs. */
  bare: Stage;
  bare1000: Stage;
  /** Every bare run of the round, in the order they ran. */
  bareRuns: Stage[];
  /** Simulator events/s over the round's matched bare loop's (the headline's samples). */
  ratioToBare: number;
  ratioToBare1000: number;
  /** The 1-minute load average when the round had run. */
  loadAverage: number;
}

const faster = (a: Stage, b: Stage): Stage => (a.wallMs <= b.wallMs ? a : b);
const roundResults: Round[] = [];
for (let r = 1; r <= rounds; r++) {
  if (r > 1) inputs = freshInputs();
  log(`round ${r}: simulator…`);
  const simulator = simulatorStage(inputs.fleet, inputs.random);
  log(`round ${r}: bare loops…`);
  const bareRuns = [0, 1].flatMap(() => [
    bareStage(simulator.events, matchedLive, matchedStage),
    bareStage(simulator.events, 1000, 'bare loop, 1,000 live'),
  ]);
  const bare = faster(bareRuns[0]!, bareRuns[2]!);
  const bare1000 = faster(bareRuns[1]!, bareRuns[3]!);
  roundResults.push({
    round: r,
    fleetGeneratedMs: inputs.generatedMs,
    simulator,
    bare,
    bare1000,
    bareRuns,
    ratioToBare: simulator.eventsPerSecond / bare.eventsPerSecond,
    ratioToBare1000: simulator.eventsPerSecond / bare1000.eventsPerSecond,
    loadAverage: loadavg()[0]!,
  });
}

const spread = (values: readonly number[]) => ({
  median: medianOf(values),
  min: Math.min(...values),
  max: Math.max(...values),
});

log('full pipeline (projection, hash, gzip log)…');
collectGarbage();
const dir = mkdtempSync(join(tmpdir(), 'phasebench-bench-'));
const logPath = join(dir, 'burst.ndjson.gz');
const started = now();
const startedCpu = cpuMs();
const writer = new StreamingLogWriter(logPath);
const full = runPlan(scenario, 'burst', {
  fleet: inputs.fleet,
  random: inputs.random,
  keepEvents: false,
  onLine: (line) => writer.writeLine(line),
});
writer.close();
const fullWall = now() - started;
const fullCpu = cpuMs() - startedCpu;
const logBytes = statSync(logPath).size;
rmSync(dir, { recursive: true, force: true });
const bareMedianEventsPerSecond = medianOf(roundResults.map((r) => r.bare.eventsPerSecond));
const bare1000MedianEventsPerSecond = medianOf(roundResults.map((r) => r.bare1000.eventsPerSecond));
const fullEventsPerSecond = (full.metrics.events / fullWall) * 1000;
const pipeline = {
  stage: 'full pipeline',
  events: full.metrics.events,
  wallMs: fullWall,
  cpuMs: fullCpu,
  eventsPerSecond: fullEventsPerSecond,
  peakRssMb: rssMb(),
  /** To the median of the rounds' matched bare loops, and of their 1,000-live ones. */
  ratioToBare: fullEventsPerSecond / bareMedianEventsPerSecond,
  ratioToBare1000: fullEventsPerSecond / bare1000MedianEventsPerSecond,
};

const result = {
  devices,
  instances: scenario.domain.instances.length,
  makespanMs: full.metrics.makespanMs,
  pushDeliveryP95Ms: full.metrics.pushDelivery.p95Ms,
  logBytes,
  /** Commands in the simulator's heap at each step (before it takes one out). */
  heapOccupancy,
  /** The headline: the rounds' simulator/bare ratios, to the matched loop and to the 1,000-live one. */
  ratioToBare: spread(roundResults.map((r) => r.ratioToBare)),
  ratioToBare1000: spread(roundResults.map((r) => r.ratioToBare1000)),
  rounds: roundResults,
  pipeline,
  /** The 1-minute load average when everything had run. */
  loadAverage: loadavg()[0]!,
};

if (args.json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const perSecond = (rate: number): string => Math.round(rate).toLocaleString('en-US');
  const percent = (ratio: number): string => `${(ratio * 100).toFixed(1)}%`;
  const roundTable = new Table({
    head: [
      'round',
      'events',
      'simulator wall',
      'CPU',
      'events/s',
      `bare, ${matchedLive.toLocaleString('en-US')} live`,
      'vs bare loop',
      'bare, 1,000 live',
      'vs 1,000 live',
      'load',
    ],
  });
  for (const r of roundResults) {
    roundTable.push([
      r.round,
      r.simulator.events.toLocaleString('en-US'),
      seconds(r.simulator.wallMs),
      seconds(r.simulator.cpuMs),
      perSecond(r.simulator.eventsPerSecond),
      perSecond(r.bare.eventsPerSecond),
      percent(r.ratioToBare),
      perSecond(r.bare1000.eventsPerSecond),
      percent(r.ratioToBare1000),
      r.loadAverage.toFixed(1),
    ]);
  }
  console.log(roundTable.toString());
  const pipelineTable = new Table({
    head: ['stage', 'events', 'wall', 'CPU', 'events/s', 'vs bare loop', 'vs 1,000 live', 'peak RSS'],
  });
  pipelineTable.push([
    pipeline.stage,
    pipeline.events.toLocaleString('en-US'),
    seconds(pipeline.wallMs),
    seconds(pipeline.cpuMs),
    perSecond(pipeline.eventsPerSecond),
    percent(pipeline.ratioToBare),
    percent(pipeline.ratioToBare1000),
    `${pipeline.peakRssMb} MB`,
  ]);
  console.log(pipelineTable.toString());
  const { ratioToBare, ratioToBare1000 } = result;
  const sameEvents = roundResults.every((r) => r.simulator.events === roundResults[0]!.simulator.events);
  console.log(
    `simulator vs bare loop: median ${percent(ratioToBare.median)} of ${rounds} round${rounds === 1 ? '' : 's'} ` +
      `(${percent(ratioToBare.min)}-${percent(ratioToBare.max)}); vs 1,000 live: median ${percent(ratioToBare1000.median)} ` +
      `(${percent(ratioToBare1000.min)}-${percent(ratioToBare1000.max)}).${sameEvents ? '' : ' The rounds logged different numbers of events!'}`,
  );
  console.log(
    `simulator heap: ${heapOccupancy.mean.toFixed(1)} commands on average, ${heapOccupancy.max.toLocaleString('en-US')} at most, ` +
      `over ${heapOccupancy.steps.toLocaleString('en-US')} steps; "vs bare loop" is to the hold model with ` +
      `${matchedLive.toLocaleString('en-US')} live (the same heap at the same size), the headline.`,
  );
  console.log(
    `makespan ${(result.makespanMs / 60_000).toFixed(1)} min (throttle bound ${((devices - 1) / 300).toFixed(1)} min), ` +
      `log ${(logBytes / 1e6).toFixed(1)} MB gzip, peak RSS ${rssMb()} MB (process), ` +
      `load average ${result.loadAverage.toFixed(1)} on ${availableParallelism()} cores.`,
  );
}
