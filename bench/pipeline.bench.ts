/**
 * Benchmark: end-to-end throughput of the live pipeline (a startRun command, the engine's pushes to
 * the fleet, the fleet's acknowledgements, every fact appended to the event log topic and read back
 * by the driver) next to Kafka's own producer benchmark, org.apache.kafka.tools.ProducerPerformance,
 * against the same broker in the same run.
 *
 *   ProducerPerformance   the Java producer, acks=all, on a fresh single-partition topic (as the
 *                         event log's): as many records as the run has events, each of the mean
 *                         size of the run's event messages
 *   pipeline              an IT policy change to N always-online devices (default 50,000) on
 *                         N/2,000 instances with every throttle off, at a time scale (default
 *                         100,000) that leaves the wall clock nothing to wait for, so the engine,
 *                         the fleet and the broker set the pace. The engine and the fleet run as
 *                         `phasebench engine` and `phasebench fleet` child processes, as deployed
 *                         (each gets a core's share of its own; the driver follows the log in this
 *                         process). They are started for the round on its own topics and carry a
 *                         small unmeasured run first (a fifth of the devices), as long-running
 *                         services would have, so the measured run does not pay their JIT warm-up.
 *                         `--in-process` runs both workers in the driver's process instead, as
 *                         `phasebench live` starts them by default: one thread does it all
 *
 * Each round (default 3) runs ProducerPerformance and then the pipeline, each on fresh topics, and
 * prints both figures and their ratio; the summary is the median of the rounds (the machine is
 * shared and noisy: compare medians, and runs alternated with the change you are measuring).
 *
 * The headline, "events/s": the run's log events (each once, by id) over the wall seconds from the
 * startRun command (its broker timestamp) to the last event the driver read back from the log
 * topic. Pushes and acknowledgements cross the broker too; they are counted apart and are not in
 * events/s. The target is at least 20,000 events/s.
 *
 * Why so many devices: the engine runs nothing later on the run's timeline before the answer to
 * each push has come back (run-host.ts), so a run advances at most by the shortest transfer time
 * (about 0.3 s of run time here) per round trip through the broker, whatever the time scale. A
 * dense run carries many events per round trip; a sparse one measures round trips, not throughput.
 *
 * Both are run once first, unmeasured, to warm the broker up (its JIT compiler is busy for its first
 * minute or so of load).
 *
 * CPU seconds per process (from /proc, Linux) are printed too: on a shared, noisy machine they vary
 * less than the wall clock. It prints figures and the ratio to ProducerPerformance's records/s; it
 * asserts nothing.
 *
 *   npm run bench:pipeline
 *   npm run bench:pipeline -- --devices 20000 --in-process --rounds 1
 *   npm run bench:pipeline -- --brokers 127.0.0.1:19092      a running broker (topics are deleted after)
 *   npm run bench:pipeline -- --json
 *   npm run bench:pipeline -- --cpu-prof .cache/prof     CPU profiles of the measured run: this process
 *                                                        (driver.cpuprofile) and each service (engine/, fleet/)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import type { Kafka } from 'kafkajs';
import { type KafkaBroker, startBroker, stopBroker } from '../harness/live/broker.ts';
import {
  createTopics,
  kafkaClient,
  type LiveTopics,
  liveTopics,
  type TopicSpec,
} from '../harness/live/kafka-config.ts';
import { liveRunId, runLive } from '../harness/live/run-live.ts';
import { serializeTrustedEvent } from '../harness/log/codec.ts';
import { parseScenario } from '../harness/scenario/load.ts';
import type { Scenario } from '../harness/scenario/schema.ts';
import { simulatePlan } from '../harness/sim/run.ts';
import { benchArgs, positiveInteger } from './args.ts';
import { medianOf } from './median.ts';

const args = benchArgs(
  'npm run bench:pipeline --',
  "An IT policy burst through the live pipeline on a real broker (engine and fleet services) against Kafka's " +
    'ProducerPerformance on the same broker, in rounds: events a second, records a second, their ratio.',
  {
    devices: { type: 'string', default: '50000', help: 'devices in the burst', value: 'n' },
    port: { type: 'string', default: '19892', help: "the bench's own broker's port", value: 'port' },
    brokers: {
      type: 'string',
      help: 'a running broker instead of starting one (topics are deleted after)',
      value: 'host:port',
    },
    'time-scale': {
      type: 'string',
      default: '100000',
      help: 'virtual ms per wall ms of the live run',
      value: 'x',
    },
    'in-process': { type: 'boolean', default: false, help: "engine and fleet in the driver's process" },
    rounds: {
      type: 'string',
      default: '3',
      help: 'rounds of ProducerPerformance and the pipeline',
      value: 'n',
    },
    json: { type: 'boolean', default: false, help: 'the figures as JSON on stdout' },
    'cpu-prof': { type: 'string', help: 'write CPU profiles of the measured run here', value: 'dir' },
    // Internal: the warm-up run's child process, on the topics with this prefix.
    'warm-up': { type: 'string' },
  },
);
const devices = positiveInteger('devices', args.devices);
const port = positiveInteger('port', args.port);
const timeScale = positiveInteger('time-scale', args['time-scale']);
const inProcess = args['in-process'];
const rounds = positiveInteger('rounds', args.rounds);

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const KAFKA_LIBS = `${ROOT}.cache/kafka/3.9.2/libs`;
const BIN = `${ROOT}bin/phasebench.js`;
const PLAN = 'policy';
const TARGET_EVENTS_PER_SECOND = 20_000;

const log = (line: string): void => {
  if (!args.json) console.error(line);
};

function pipelineScenario(n: number): Scenario {
  return parseScenario(
    {
      name: `bench-pipeline-${n}`,
      seed: 1,
      horizon: '1d',
      domain: {
        instances: Array.from({ length: Math.ceil(n / 2000) }, (_, i) => ({
          id: `BES${String(i + 1).padStart(3, '0')}`,
          srpId: i + 1,
        })),
        // Every job starts within the first minute: the pipeline, not the Policy Services' limits, sets the pace.
        throttle: { inProcessJobs: null, jobsPerMinutePerService: null, jobsPerMinuteDomain: null },
      },
      // Always in coverage: the run drains in about a minute of its own time, with no day-long tails.
      fleet: { users: n, coverage: { alwaysOnlineShare: 1 } },
      plans: { [PLAN]: { kind: 'itPolicyChange', description: 'new IT policy for every device' } },
    },
    'bench/pipeline.bench.ts',
  );
}

/** CPU time and peak RSS of another process, sampled from /proc (Linux; nothing elsewhere). */
class ProcessSampler {
  #cpuAtStart: number | undefined;
  #cpu: number | undefined;
  #peakRssKb: number | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(readonly pid: number) {
    this.#sample();
    this.#cpuAtStart = this.#cpu;
    this.#timer = setInterval(() => this.#sample(), 100);
  }

  /** Stops sampling: CPU seconds since the sampler started, and the peak RSS in MB. */
  stop(): { cpuSeconds: number | undefined; peakRssMb: number | undefined } {
    this.#sample();
    clearInterval(this.#timer);
    return {
      cpuSeconds:
        this.#cpu === undefined || this.#cpuAtStart === undefined ? undefined : this.#cpu - this.#cpuAtStart,
      peakRssMb: this.#peakRssKb === undefined ? undefined : Math.round(this.#peakRssKb / 1024),
    };
  }

  #sample(): void {
    try {
      // utime and stime, fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      this.#cpu = (Number(fields[11]) + Number(fields[12])) / 100;
      const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
      if (hwm !== null) this.#peakRssKb = Math.max(this.#peakRssKb ?? 0, Number(hwm[1]));
    } catch {
      // Not Linux, or the process has just exited: the last sample stands.
    }
  }
}

interface ProcessFigures {
  process: string;
  cpuSeconds: number | undefined;
  peakRssMb: number | undefined;
}

interface ProducerPerformanceResult {
  records: number;
  recordBytes: number;
  recordsPerSecond: number;
  megabytesPerSecond: number;
  avgLatencyMs: number;
  maxLatencyMs: number;
  /** records / records/s: the tool's own measured interval, without the JVM's start-up. */
  wallMs: number;
  /** The java process from spawn to exit. */
  processWallMs: number;
  java: ProcessFigures;
}

/** Runs ProducerPerformance and parses its final summary line. */
async function producerPerformance(
  bootstrap: string,
  topic: string,
  records: number,
  recordBytes: number,
): Promise<ProducerPerformanceResult> {
  const started = performance.now();
  const java = spawn(
    'java',
    [
      '-Xmx512m',
      '-cp',
      `${KAFKA_LIBS}/*`,
      'org.apache.kafka.tools.ProducerPerformance',
      '--topic',
      topic,
      '--num-records',
      String(records),
      '--record-size',
      String(recordBytes),
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${bootstrap}`,
      'acks=all',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const sampler = new ProcessSampler(java.pid!);
  let output = '';
  java.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  java.stderr.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    java.once('error', reject);
    java.once('exit', resolve);
  });
  const processWallMs = performance.now() - started;
  const figures = sampler.stop();
  // Every 5 s a progress line, then the summary, the last line of this form (with percentiles):
  // "300056 records sent, 75277.0 records/sec (23.19 MB/sec), 831.12 ms avg latency, 1060.00 ms max latency, 812 ms 50th, ..."
  const summary = [
    ...output.matchAll(
      /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency/g,
    ),
  ].at(-1);
  if (code !== 0 || summary === undefined || Number(summary[1]) !== records) {
    throw new Error(`ProducerPerformance exited with ${code} and no summary line:\n${output.slice(-2_000)}`);
  }
  const recordsPerSecond = Number(summary[2]);
  return {
    records: Number(summary[1]),
    recordBytes,
    recordsPerSecond,
    megabytesPerSecond: Number(summary[3]),
    avgLatencyMs: Number(summary[4]),
    maxLatencyMs: Number(summary[5]),
    wallMs: (Number(summary[1]) / recordsPerSecond) * 1000,
    processWallMs,
    java: { process: 'ProducerPerformance (java)', ...figures },
  };
}

/** A `phasebench engine` or `phasebench fleet` service on the bench's topics, once it says it runs. */
async function startService(
  name: 'engine' | 'fleet',
  bootstrap: string,
  prefix: string,
  cpuProfileDir: string | undefined,
): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      ...(cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}/${name}`]),
      ...[BIN, name, '--brokers', bootstrap, '--topic-prefix', prefix, '--metrics-port', '0'],
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString('utf8');
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (output.includes('running')) {
        clearInterval(timer);
        resolve();
      } else if (child.exitCode !== null) {
        clearInterval(timer);
        reject(new Error(`phasebench ${name} exited with ${child.exitCode}:\n${output}`));
      }
    }, 50);
  });
  return child;
}

async function stopService(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await exited;
}

async function messagesOn(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets(topic);
    return offsets.reduce((n, { high, low }) => n + Number(high) - Number(low), 0);
  } finally {
    await admin.disconnect();
  }
}

/** The broker timestamp (CreateTime, epoch ms) of the run's startRun command. */
async function startRunTimestamp(kafka: Kafka, topic: string, run: string): Promise<number> {
  const consumer = kafka.consumer({ groupId: `bench-pipeline-${randomUUID()}`, maxWaitTimeInMs: 100 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no startRun command of ${run} on ${topic}`)), 30_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          if (message.key?.toString() !== run) return;
          clearTimeout(timer);
          resolve(Number(message.timestamp));
        },
      });
    });
  } finally {
    await consumer.disconnect().catch(() => {});
  }
}

interface PipelineResult {
  workers: 'services' | 'in-process';
  runId: string;
  /** The run's log events, once each by id. */
  events: number;
  /** Log events read more than once (none unless a worker took the run over). */
  duplicateEvents: number;
  /** Messages on the event log, pushes and device-events topics, and dead letters. */
  logMessages: number;
  pushMessages: number;
  ackMessages: number;
  deadLetters: number;
  logBytes: number;
  /** startRun command (broker timestamp) to the last event read back. */
  wallMs: number;
  /** First to last event read back: the run in full flow, without hosting's set-up. */
  flowWallMs: number;
  processes: ProcessFigures[];
}

async function pipeline(
  kafka: Kafka,
  bootstrap: string,
  prefix: string,
  topics: LiveTopics,
  scenario: Scenario,
  brokerPid: number | undefined,
  options: { cpuProfileDir?: string; warmUp?: Scenario } = {},
): Promise<PipelineResult> {
  const { cpuProfileDir, warmUp } = options;
  const suffix = randomUUID();
  const run = liveRunId(scenario, PLAN, suffix);
  // The services join their groups before the command is sent: the clock starts on a ready pipeline.
  const services = inProcess
    ? []
    : [
        await startService('engine', bootstrap, prefix, cpuProfileDir),
        await startService('fleet', bootstrap, prefix, cpuProfileDir),
      ];
  if (warmUp !== undefined && !inProcess) {
    await runLive(warmUp, PLAN, {
      kafka,
      topics,
      timeScale,
      runSuffix: randomUUID(),
      inProcess: false,
      leadMs: 0,
      stallTimeoutMs: 60_000,
    });
  }
  // The topics hold the warm-up run's messages too: the measured run's are the difference.
  const countTopics = (): Promise<number[]> =>
    Promise.all(
      [topics.events, topics.pushes, topics.deviceEvents, topics.dlq].map((t) => messagesOn(kafka, t.name)),
    );
  const before = await countTopics();
  const profiler = cpuProfileDir === undefined ? undefined : await startProfiler();
  const samplers = services.map((child) => new ProcessSampler(child.pid!));
  const brokerSampler = brokerPid === undefined ? undefined : new ProcessSampler(brokerPid);
  const driverCpuAtStart = process.cpuUsage();
  // CPU is read when the run's last event arrives: the driver's projection of the summary after it
  // and the services' idling are not the pipeline's work.
  let cpuAtEnd:
    | {
        driver: NodeJS.CpuUsage;
        services: Array<{ cpuSeconds: number | undefined; peakRssMb: number | undefined }>;
        broker: { cpuSeconds: number | undefined; peakRssMb: number | undefined } | undefined;
      }
    | undefined;
  const readCpu = (): NonNullable<typeof cpuAtEnd> => ({
    driver: process.cpuUsage(driverCpuAtStart),
    services: samplers.map((s) => s.stop()),
    broker: brokerSampler?.stop(),
  });
  let firstEventAt = 0;
  let lastEventAt = 0;
  let live: Awaited<ReturnType<typeof runLive>>;
  try {
    live = await runLive(scenario, PLAN, {
      kafka,
      topics,
      timeScale,
      runSuffix: suffix,
      inProcess,
      // The run's time 0 is when the command is sent: nothing waits for a lead-in.
      leadMs: 0,
      stallTimeoutMs: 60_000,
      onEvent: (event) => {
        lastEventAt = Date.now();
        if (firstEventAt === 0) firstEventAt = lastEventAt;
        // The log is one partition in append order: the run's last fact is the last event read.
        if (event.type === 'RunCompleted') cpuAtEnd ??= readCpu();
      },
    });
  } finally {
    cpuAtEnd ??= readCpu();
    if (profiler !== undefined) await profiler.stop(`${cpuProfileDir}/driver.cpuprofile`);
    await Promise.allSettled(services.map(stopService));
  }
  const { driver, services: serviceFigures, broker } = cpuAtEnd;
  const startedAt = await startRunTimestamp(kafka, topics.commands.name, run);
  const [logMessages, pushMessages, ackMessages, deadLetters] = (await countTopics()).map(
    (n, i) => n - before[i]!,
  );
  let logBytes = 0;
  for (const event of live.events) logBytes += Buffer.byteLength(serializeTrustedEvent(event));
  return {
    workers: inProcess ? 'in-process' : 'services',
    runId: run,
    events: live.events.length,
    duplicateEvents: live.duplicateEvents,
    logMessages: logMessages!,
    pushMessages: pushMessages!,
    ackMessages: ackMessages!,
    deadLetters: deadLetters!,
    logBytes,
    wallMs: lastEventAt - startedAt,
    flowWallMs: lastEventAt - firstEventAt,
    processes: [
      {
        process: inProcess ? 'driver + engine + fleet (this process)' : 'driver (this process)',
        cpuSeconds: (driver.user + driver.system) / 1e6,
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      },
      ...(inProcess
        ? []
        : [
            { process: 'phasebench engine', ...serviceFigures[0]! },
            { process: 'phasebench fleet', ...serviceFigures[1]! },
          ]),
      ...(broker === undefined ? [] : [{ process: 'Kafka broker', ...broker }]),
    ],
  };
}

/** A CPU profile of this process (the inspector's, as node --cpu-prof writes), from now until stop(). */
async function startProfiler(): Promise<{ stop(path: string): Promise<void> }> {
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return {
    async stop(path) {
      const { profile } = await session.post('Profiler.stop');
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, JSON.stringify(profile));
      session.disconnect();
    },
  };
}

/**
 * The warm-up live run, in a child process of its own: run in this one, its garbage and the heap it
 * grew would be the measured run's to collect (measured: a tenth more CPU per event).
 */
async function warmUpInChild(bootstrap: string, prefix: string): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      ...['--warm-up', prefix, '--brokers', bootstrap],
      ...['--devices', String(devices), '--time-scale', String(timeScale)],
      ...(inProcess ? ['--in-process'] : []),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`the warm-up run exited with ${code}`);
}

if (args['warm-up'] !== undefined) {
  const bootstrap = args.brokers ?? '';
  const kafka = kafkaClient({ brokers: bootstrap.split(','), clientId: 'phasebench-bench-pipeline' });
  const prefix = args['warm-up'];
  await pipeline(kafka, bootstrap, prefix, liveTopics({ prefix }), pipelineScenario(devices), undefined);
} else {
  await main();
}

async function main(): Promise<void> {
  const scenario = pipelineScenario(devices);
  log(
    `IT policy change: ${devices.toLocaleString('en-US')} always-online devices on ` +
      `${scenario.domain.instances.length} instances, throttles off, time scale ${timeScale.toLocaleString('en-US')}, ` +
      `engine and fleet ${inProcess ? 'in the driver process' : 'as services'}`,
  );

  // The run in virtual time, to size ProducerPerformance's records like the run's events (the live
  // log is this one, with the live run id in each envelope) and to know how many pushes it sends.
  const sizingRun = liveRunId(scenario, PLAN, randomUUID());
  let expectedEvents = 0;
  let expectedPushes = 0;
  let expectedBytes = 0;
  simulatePlan(scenario, PLAN, {
    onEvent: (event) => {
      expectedEvents++;
      if (event.type === 'JobQueued') expectedPushes += event.data.pushes.length;
      expectedBytes += Buffer.byteLength(
        serializeTrustedEvent({ ...event, run: sizingRun, id: `${sizingRun}#${event.seq}` }),
      );
    },
  });
  const recordBytes = Math.round(expectedBytes / expectedEvents);
  log(
    `virtual time: ${expectedEvents.toLocaleString('en-US')} events of ${recordBytes} bytes on average, ` +
      `${expectedPushes.toLocaleString('en-US')} pushes`,
  );

  let broker: KafkaBroker | undefined;
  let bootstrap: string;
  if (args.brokers === undefined) {
    log(`starting a broker on 127.0.0.1:${port}…`);
    broker = await startBroker({ port });
    bootstrap = broker.bootstrap;
  } else {
    bootstrap = args.brokers;
  }
  // The project's own broker (scripts/kafka.sh) writes its pid: its CPU time is measured too.
  const brokerPid =
    broker === undefined
      ? undefined
      : Number(readFileSync(`${ROOT}.cache/kafka/broker-${broker.port}.pid`, 'utf8').trim()) || undefined;
  const kafka = kafkaClient({ brokers: bootstrap.split(','), clientId: 'phasebench-bench-pipeline' });
  const prefix = `bench-${randomUUID()}.`;
  const warmupPrefix = `${prefix}warmup.`;
  const warmupTopics = liveTopics({ prefix: warmupPrefix });
  const warmupPerfTopic: TopicSpec = { ...warmupTopics.events, name: `${warmupPrefix}producer-performance` };
  // Each round on topics of its own: no round reads or counts another's messages.
  const roundTopics = Array.from({ length: rounds }, (_, i) => {
    const topics = liveTopics({ prefix: `${prefix}r${i + 1}.` });
    return {
      prefix: `${prefix}r${i + 1}.`,
      topics,
      perf: { ...topics.events, name: `${prefix}r${i + 1}.producer-performance` },
    };
  });
  const allTopics = [
    ...Object.values(warmupTopics),
    warmupPerfTopic,
    ...roundTopics.flatMap((r) => [...Object.values(r.topics), r.perf]),
  ];
  // The services' own unmeasured run before each measured one (see the header).
  const serviceWarmUp = pipelineScenario(Math.max(2_000, Math.round(devices / 5)));

  const results: Array<{ perf: ProducerPerformanceResult; live: PipelineResult }> = [];
  try {
    const admin = kafka.admin();
    await admin.connect();
    await createTopics(admin, allTopics);
    await admin.disconnect();

    // A fresh broker's JIT compiler takes much of a core through its first minute or so of load
    // (measured: 17 s of broker CPU in a first live run, 4 s from the third on). Whichever
    // measurement came first would pay for it; the warm-up goes through every path the two use.
    log('warm-up, not measured: ProducerPerformance, then the same live run…');
    await producerPerformance(bootstrap, warmupPerfTopic.name, expectedEvents, recordBytes);
    await warmUpInChild(bootstrap, warmupPrefix);

    for (const [i, round] of roundTopics.entries()) {
      log(
        `round ${i + 1} of ${rounds}: ProducerPerformance, ${expectedEvents.toLocaleString('en-US')} records of ` +
          `${recordBytes} bytes, acks=all…`,
      );
      const perf = await producerPerformance(bootstrap, round.perf.name, expectedEvents, recordBytes);
      log(`round ${i + 1} of ${rounds}: live pipeline…`);
      const live = await pipeline(kafka, bootstrap, round.prefix, round.topics, scenario, brokerPid, {
        // One round's profiles: the first.
        ...(i === 0 && args['cpu-prof'] !== undefined ? { cpuProfileDir: args['cpu-prof'] } : {}),
        warmUp: serviceWarmUp,
      });
      results.push({ perf, live });
      log(
        `round ${i + 1}: ${Math.round(eventsPerSecondOf(live)).toLocaleString('en-US')} events/s, ` +
          `ProducerPerformance ${Math.round(perf.recordsPerSecond).toLocaleString('en-US')} records/s`,
      );
    }
  } finally {
    if (broker !== undefined) {
      await stopBroker(broker);
    } else {
      const admin = kafka.admin();
      await admin.connect();
      await admin.deleteTopics({ topics: allTopics.map((t) => t.name) }).catch(() => {});
      await admin.disconnect();
    }
  }

  const roundFigures = results.map(({ perf, live }) => {
    const eventsPerSecond = eventsPerSecondOf(live);
    const messages = live.logMessages + live.pushMessages + live.ackMessages;
    return {
      producerPerformance: perf,
      pipeline: {
        ...live,
        expectedEvents,
        expectedPushes,
        pushesResent: live.pushMessages - expectedPushes,
        eventsPerSecond,
        flowEventsPerSecond: (live.events / live.flowWallMs) * 1000,
        messages,
        messagesPerSecond: (messages / live.wallMs) * 1000,
        logMegabytesPerSecond: live.logBytes / 1e6 / (live.wallMs / 1000),
      },
      ratio: eventsPerSecond / perf.recordsPerSecond,
    };
  });
  const median = {
    eventsPerSecond: medianOf(roundFigures.map((r) => r.pipeline.eventsPerSecond)),
    producerPerformanceRecordsPerSecond: medianOf(
      roundFigures.map((r) => r.producerPerformance.recordsPerSecond),
    ),
    ratio: medianOf(roundFigures.map((r) => r.ratio)),
  };
  const result = {
    devices,
    instances: scenario.domain.instances.length,
    timeScale,
    workers: inProcess ? 'in-process' : 'services',
    targetEventsPerSecond: TARGET_EVENTS_PER_SECOND,
    rounds: roundFigures,
    median,
  };

  if (args.json) {
    console.log(JSON.stringify(result, null, 2));
    return;
  }
  const count = (n: number): string => Math.round(n).toLocaleString('en-US');
  const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
  const percent = (x: number): string => `${(x * 100).toFixed(1)}%`;
  for (const [i, { producerPerformance: perf, pipeline: live, ratio }] of roundFigures.entries()) {
    console.log(`round ${i + 1} of ${rounds}`);
    const throughput = new Table({
      head: ['measured', 'records', 'wall', 'records/s', 'MB/s', 'vs ProducerPerformance'],
    });
    throughput.push(
      [
        `ProducerPerformance, acks=all, ${recordBytes} B`,
        count(perf.records),
        `${seconds(perf.wallMs)} (java ${seconds(perf.processWallMs)})`,
        count(perf.recordsPerSecond),
        perf.megabytesPerSecond.toFixed(2),
        '100.0%',
      ],
      [
        'pipeline: log events (events/s)',
        count(live.events),
        seconds(live.wallMs),
        count(live.eventsPerSecond),
        live.logMegabytesPerSecond.toFixed(2),
        percent(ratio),
      ],
      [
        'pipeline: log events, first to last',
        count(live.events),
        seconds(live.flowWallMs),
        count(live.flowEventsPerSecond),
        '',
        percent(live.flowEventsPerSecond / perf.recordsPerSecond),
      ],
      [
        'pipeline: events + pushes + acks',
        count(live.messages),
        seconds(live.wallMs),
        count(live.messagesPerSecond),
        '',
        percent(live.messagesPerSecond / perf.recordsPerSecond),
      ],
    );
    const resources = new Table({ head: ['process', 'CPU', 'CPU per log event', 'peak RSS'] });
    for (const p of [...live.processes, perf.java]) {
      const isJava = p === perf.java;
      resources.push([
        p.process,
        p.cpuSeconds === undefined ? 'n/a' : `${p.cpuSeconds.toFixed(2)} s`,
        p.cpuSeconds === undefined || isJava ? '' : `${Math.round((p.cpuSeconds / live.events) * 1e6)} µs`,
        p.peakRssMb === undefined ? 'n/a' : `${p.peakRssMb} MB`,
      ]);
    }
    console.log(throughput.toString());
    console.log(resources.toString());
    console.log(
      `Crossed the broker: ${count(live.logMessages)} log messages (${count(live.events)} events, ` +
        `${count(live.duplicateEvents)} read twice; ${count(expectedEvents)} in virtual time), ` +
        `${count(live.pushMessages)} pushes (${count(live.pushesResent)} resent), ` +
        `${count(live.ackMessages)} acknowledgements, ${count(live.deadLetters)} dead letters, 1 startRun command. ` +
        `ProducerPerformance latency avg ${perf.avgLatencyMs.toFixed(0)} ms, max ${perf.maxLatencyMs.toFixed(0)} ms.`,
    );
  }
  const summary = new Table({
    head: ['round', 'pipeline events/s', 'ProducerPerformance records/s', 'ratio'],
  });
  for (const [i, r] of roundFigures.entries()) {
    summary.push([
      String(i + 1),
      count(r.pipeline.eventsPerSecond),
      count(r.producerPerformance.recordsPerSecond),
      percent(r.ratio),
    ]);
  }
  summary.push([
    'median',
    count(median.eventsPerSecond),
    count(median.producerPerformanceRecordsPerSecond),
    percent(median.ratio),
  ]);
  console.log(summary.toString());
  console.log(
    `Engine and fleet ${inProcess ? 'in the driver process' : 'as services (child processes)'}. ` +
      `events/s = the run's log events (each once) / wall seconds from the startRun command to the last event ` +
      `read back by the driver; the ratio is each round's events/s over its own ProducerPerformance records/s, ` +
      `and its median is the median of those ratios. Target at least ${count(TARGET_EVENTS_PER_SECOND)} events/s: ` +
      `${median.eventsPerSecond >= TARGET_EVENTS_PER_SECOND ? 'met' : 'not met'} by the median. ` +
      `CPU is measured while the run was live (ProducerPerformance: its whole life); peak RSS is each process's ` +
      `peak so far (this process also ran the run in virtual time).`,
  );
}

function eventsPerSecondOf(live: PipelineResult): number {
  return (live.events / live.wallMs) * 1000;
}
