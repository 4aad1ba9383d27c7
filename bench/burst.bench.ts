/**
 * Benchmark: an IT policy burst to N devices (default 100,000) on N/2,000 instances, measured
 * three ways in one process, next to a bare discrete-event loop that runs the same number of
 * events through the same binary heap with no-op handlers:
 *
 *   bare loop        pop an event, schedule the next (hold model), nothing else
 *   simulator        the engine deciding and evolving, envelopes stamped: no projection, no log
 *   full pipeline    simulator + projection + SHA-256 of the log + gzip log file (what `run` does)
 *
 * The bare loop runs as a hold model with a fixed number of events in the heap, two ways (each
 * twice, alternating, keeping its faster run):
 *
 *   matched          as many as the simulator's heap holds on average (measured below): the same
 *                    number of events through the same heap at the same size. The headline, and
 *                    what "vs bare loop" divides by.
 *   1,000 live       the figure earlier versions of this bench compared with, kept for continuity.
 *
 * The simulator's heap occupancy (its size at each step, mean and max) comes from one more run of
 * the same scenario, seed and fleet after the measured stages, which is the same run step for
 * step; the measured runs carry no instrumentation. A 100,000-device burst holds fewer than 1,000
 * (the throttle lets 300 jobs a minute out), so the matched loop is a little faster than the
 * 1,000-live one. Both loops run as many heap steps as the simulator logs events, about twice the
 * simulator's own steps (most steps emit two facts or more).
 *
 * It prints figures and ratios; it asserts nothing (the machine is shared and noisy). Ratios are of
 * events per wall-clock second; each stage's CPU time (all threads, the collector's helpers included)
 * and the load average are printed beside them, to tell a slower stage from a busier machine. The simulator
 * and pipeline stages start after a full collection, so neither pays for the garbage of what ran
 * before it (generating the fleet, the stage before). A full collection also throws away the
 * optimised code of whatever was warmed before it (its embedded objects die), so the simulator and
 * each bare loop are warmed after it, right before they are measured, on smaller runs of their own
 * (the simulator starts with its warm-up runs' young garbage, which dies at its first scavenge).
 * The pipeline stage is not warmed again, as before.
 *
 *   npm run bench                         100,000 devices
 *   npm run bench -- --devices 1000000    the million-device run
 *   npm run bench -- --json               machine-readable figures on stdout
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import Table from 'cli-table3';
import { generateFleet } from '../harness/domain/fleet.ts';
import { StreamingLogWriter } from '../harness/results/log-writer.ts';
import { parseScenario } from '../harness/scenario/load.ts';
import type { Scenario } from '../harness/scenario/schema.ts';
import { TimeHeap } from '../harness/sim/heap.ts';
import { SeededRandom } from '../harness/sim/random.ts';
import { runPlan, simulatePlan } from '../harness/sim/run.ts';

const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: '100000' },
    json: { type: 'boolean', default: false },
  },
});
const devices = Number(args.devices);
if (!Number.isInteger(devices) || devices <= 0) {
  console.error(`--devices expects a positive integer, found '${args.devices}'`);
  process.exit(2);
}

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
  `IT policy burst: ${devices.toLocaleString('en-US')} devices on ${scenario.domain.instances.length} instances`,
);

// The fleet is generated once, outside the timed stages: building it produces no events.
let started = now();
const random = new SeededRandom(scenario.seed);
const fleet = generateFleet(scenario, random);
log(`fleet generated in ${((now() - started) / 1000).toFixed(2)} s`);

const stages: Stage[] = [];

log('simulator only…');
collectGarbage();
// Big enough that every hot function of the engine is optimised before the measured run starts,
// and twice: the first run's last fact (its RunCompleted, the first evolve ever sees) throws
// away evolve's optimised code, which the measured run then recompiled as it went.
// Called as the measured run is (fleet and random passed in), so its code sees the same shapes.
const warmUp = burstScenario(Math.min(devices, 20_000));
for (let i = 0; i < 2; i++) {
  const warmRandom = new SeededRandom(warmUp.seed);
  simulatePlan(warmUp, 'burst', { fleet: generateFleet(warmUp, warmRandom), random: warmRandom });
}
started = now();
let startedCpu = cpuMs();
const core = simulatePlan(scenario, 'burst', { fleet, random });
let wall = now() - started;
stages.push({
  stage: 'simulator',
  events: core.events,
  wallMs: wall,
  cpuMs: cpuMs() - startedCpu,
  eventsPerSecond: (core.events / wall) * 1000,
  peakRssMb: rssMb(),
});

log('full pipeline (projection, hash, gzip log)…');
collectGarbage();
const dir = mkdtempSync(join(tmpdir(), 'phasebench-bench-'));
const logPath = join(dir, 'burst.ndjson.gz');
started = now();
startedCpu = cpuMs();
const writer = new StreamingLogWriter(logPath);
const full = runPlan(scenario, 'burst', {
  fleet,
  random,
  keepEvents: false,
  onLine: (line) => writer.writeLine(line),
});
writer.close();
wall = now() - started;
const fullCpu = cpuMs() - startedCpu;
const logBytes = statSync(logPath).size;
rmSync(dir, { recursive: true, force: true });
stages.push({
  stage: 'full pipeline',
  events: full.metrics.events,
  wallMs: wall,
  cpuMs: fullCpu,
  eventsPerSecond: (full.metrics.events / wall) * 1000,
  peakRssMb: rssMb(),
});

// The simulator's heap size at every step: the same run again (same scenario, seed and fleet, so
// the same steps), counted outside the measured stages.
let steps = 0;
let heldSum = 0;
let heldMax = 0;
simulatePlan(scenario, 'burst', {
  fleet,
  random,
  onHeapSize: (commands) => {
    steps++;
    heldSum += commands;
    if (commands > heldMax) heldMax = commands;
  },
});
const heapOccupancy = { steps, mean: heldSum / steps, max: heldMax };
const matchedLive = Math.max(1, Math.round(heapOccupancy.mean));

// The bare loop allocates nothing, so it gets no collection first: the collector's background
// sweeping would compete with it for the CPU.
function bareStage(live: number, stage: string): Stage {
  bareLoop(200_000, live);
  const run = bareLoop(core.events, live);
  return {
    stage,
    events: core.events,
    wallMs: run.wallMs,
    cpuMs: run.cpuMs,
    eventsPerSecond: (core.events / run.wallMs) * 1000,
    peakRssMb: rssMb(),
  };
}
log('bare loops…');
// Each loop runs twice, alternating, and keeps its faster run: whichever ran first was slowed by
// the collector's background work left by the runs before it (by up to 10% in trials).
const matchedStage = `bare loop, ${matchedLive.toLocaleString('en-US')} live (matched)`;
const bareRuns = [0, 1].flatMap(() => [
  bareStage(matchedLive, matchedStage),
  bareStage(1000, 'bare loop, 1,000 live'),
]);
const faster = (a: Stage, b: Stage): Stage => (a.wallMs <= b.wallMs ? a : b);
const bare = faster(bareRuns[0]!, bareRuns[2]!);
const bare1000 = faster(bareRuns[1]!, bareRuns[3]!);

const result = {
  devices,
  instances: scenario.domain.instances.length,
  makespanMs: full.metrics.makespanMs,
  pushDeliveryP95Ms: full.metrics.pushDelivery.p95Ms,
  logBytes,
  commandsProcessed: core.commandsProcessed,
  /** Commands in the simulator's heap at each step (before it takes one out). */
  heapOccupancy,
  /** The 1-minute load average when the stages had run. */
  loadAverage: loadavg()[0]!,
  /** ratioToBare: to the matched bare loop (the headline); ratioToBare1000: to the 1,000-live one. */
  stages: [bare, bare1000, ...stages].map((s) => ({
    ...s,
    ratioToBare: s.eventsPerSecond / bare.eventsPerSecond,
    ratioToBare1000: s.eventsPerSecond / bare1000.eventsPerSecond,
  })),
};

if (args.json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  const table = new Table({
    head: ['stage', 'events', 'wall', 'CPU', 'events/s', 'vs bare loop', 'vs 1,000 live', 'peak RSS'],
  });
  for (const s of result.stages) {
    table.push([
      s.stage,
      s.events.toLocaleString('en-US'),
      `${(s.wallMs / 1000).toFixed(2)} s`,
      `${(s.cpuMs / 1000).toFixed(2)} s`,
      Math.round(s.eventsPerSecond).toLocaleString('en-US'),
      `${(s.ratioToBare * 100).toFixed(1)}%`,
      `${(s.ratioToBare1000 * 100).toFixed(1)}%`,
      `${s.peakRssMb} MB`,
    ]);
  }
  console.log(table.toString());
  console.log(
    `simulator heap: ${heapOccupancy.mean.toFixed(1)} commands on average, ${heapOccupancy.max.toLocaleString('en-US')} at most, ` +
      `over ${heapOccupancy.steps.toLocaleString('en-US')} steps; "vs bare loop" is to the hold model with ` +
      `${matchedLive.toLocaleString('en-US')} live (the same heap at the same size), the headline.`,
  );
  console.log(
    `makespan ${(result.makespanMs / 60_000).toFixed(1)} min (throttle bound ${((devices - 1) / 300).toFixed(1)} min), ` +
      `log ${(logBytes / 1e6).toFixed(1)} MB gzip, peak RSS is the process peak so far, ` +
      `load average ${result.loadAverage.toFixed(1)} on ${availableParallelism()} cores.`,
  );
}
