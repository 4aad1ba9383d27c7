/**
 * Benchmark: an IT policy burst to N devices (default 100,000) on N/2,000 instances, measured
 * three ways in one process, next to a bare discrete-event loop that runs the same number of
 * events through the same binary heap with no-op handlers:
 *
 *   bare loop        pop an event, schedule the next (hold model), nothing else
 *   simulator        the engine deciding and evolving, envelopes stamped: no projection, no log
 *   full pipeline    simulator + projection + SHA-256 of the log + gzip log file (what `run` does)
 *
 * It prints figures and ratios; it asserts nothing (the machine is shared and noisy). Ratios are of
 * events per wall-clock second; each stage's CPU time (all threads, the collector's helpers included)
 * and the load average are printed beside them, to tell a slower stage from a busier machine. The simulator
 * and pipeline stages start from a collected heap, so neither pays for the garbage of what ran
 * before it (generating the fleet, the stage before).
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

let started = now();
// Warm the JIT on a small run so the first measured stage is not paying for compilation.
bareLoop(200_000, 1000);
simulatePlan(burstScenario(2000), 'burst');

// The fleet is generated once, outside the timed stages: building it produces no events.
started = now();
const random = new SeededRandom(scenario.seed);
const fleet = generateFleet(scenario, random);
log(`fleet generated in ${((now() - started) / 1000).toFixed(2)} s`);

const stages: Stage[] = [];

log('simulator only…');
collectGarbage();
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

// The bare loop allocates nothing, so it gets no collection first: the collector's background
// sweeping would compete with it for the CPU.
log('bare loop…');
const bareRun = bareLoop(core.events, 1000);
const bare: Stage = {
  stage: 'bare loop',
  events: core.events,
  wallMs: bareRun.wallMs,
  cpuMs: bareRun.cpuMs,
  eventsPerSecond: (core.events / bareRun.wallMs) * 1000,
  peakRssMb: rssMb(),
};

const result = {
  devices,
  instances: scenario.domain.instances.length,
  makespanMs: full.metrics.makespanMs,
  pushDeliveryP95Ms: full.metrics.pushDelivery.p95Ms,
  logBytes,
  commandsProcessed: core.commandsProcessed,
  /** The machine's 1-minute load average when the stages had run. */
  loadAverage: loadavg()[0]!,
  stages: [bare, ...stages].map((s) => ({ ...s, ratioToBare: s.eventsPerSecond / bare.eventsPerSecond })),
};

if (args.json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  const table = new Table({
    head: ['stage', 'events', 'wall', 'CPU', 'events/s', 'vs bare loop', 'peak RSS'],
  });
  for (const s of result.stages) {
    table.push([
      s.stage,
      s.events.toLocaleString('en-US'),
      `${(s.wallMs / 1000).toFixed(2)} s`,
      `${(s.cpuMs / 1000).toFixed(2)} s`,
      Math.round(s.eventsPerSecond).toLocaleString('en-US'),
      `${(s.ratioToBare * 100).toFixed(1)}%`,
      `${s.peakRssMb} MB`,
    ]);
  }
  console.log(table.toString());
  console.log(
    `makespan ${(result.makespanMs / 60_000).toFixed(1)} min (throttle bound ${((devices - 1) / 300).toFixed(1)} min), ` +
      `log ${(logBytes / 1e6).toFixed(1)} MB gzip, peak RSS is the process peak so far, ` +
      `load average ${result.loadAverage.toFixed(1)} on ${availableParallelism()} cores.`,
  );
}
