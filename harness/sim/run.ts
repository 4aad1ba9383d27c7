/**
 * The virtual-time run loop: a discrete-event scheduler that feeds commands to the engine in
 * time order, stamps each resulting fact with its envelope, and hands it to the listeners (the
 * projection, the hasher, the progress bar). Hours of rollout run in seconds, and the same
 * scenario and seed always give the same log.
 */
import { type CodedDecisionSink, type Command, createCodedDecide, initialState } from '../domain/engine.ts';
import { type DomainEvent, EVENT_SCHEMA_VERSION, type StoredEvent } from '../domain/events.ts';
import { type Fleet, generateFleet } from '../domain/fleet.ts';
import { NumberedNames } from '../domain/numbered.ts';
import type { RandomSource } from '../domain/random.ts';
import { EventHasher, serializeTrustedEvent } from '../log/codec.ts';
import { PlanProjection } from '../metrics/projection.ts';
import type { PlanMetrics, PlanRuntime } from '../metrics/summary.ts';
import type { Scenario } from '../scenario/schema.ts';
import { TimeHeap } from './heap.ts';
import { SeededRandom } from './random.ts';

export interface RunOptions {
  /** The fleet, when several plans share one (generate it once per scenario). */
  fleet?: Fleet;
  random?: RandomSource;
  /** Keep every event in memory (`events` of the result); needed to write the log. Default true. */
  keepEvents?: boolean;
  /** Called for every stored event, in order. */
  onEvent?: (event: StoredEvent) => void;
  /** Called with every event's canonical NDJSON line (no newline), in order: the log writer. */
  onLine?: (line: string) => void;

  /**
   * Commands from outside the run, each at its time: a commanded plan's MoveUser commands (live,
   * they arrive on the commands topic instead).
   */
  commands?: ReadonlyArray<{ at: number; command: Command }>;
  /** Called now and then with the virtual time reached, for progress bars. */
  onProgress?: (virtualMs: number, horizonMs: number) => void;
  /**
   * Called at every scheduler step with the number of commands in the heap just before the step
   * takes one out: how big a heap the run keeps, for the bench's bare event loop. A run without it
   * pays one test of an unset local per step.
   */
  onHeapSize?: (commands: number) => void;
  /** Wall clock for the runtime figures; injected so the loop itself never reads the clock. */
  wallClock?: () => number;
}

export interface PlanRun {
  plan: string;
  runId: string;
  events: StoredEvent[];
  metrics: PlanMetrics;
  runtime: PlanRuntime;
  /** Scheduler items processed (heap pops), for comparison with a bare event loop. */
  commandsProcessed: number;
}

export function runId(scenario: Scenario, plan: string): string {
  return `${scenario.name}/${plan}/s${scenario.seed}`;
}

/** Runs one plan: the events, the summary metrics (the projection) and the log hash. */
export function runPlan(scenario: Scenario, planName: string, options: RunOptions = {}): PlanRun {
  const run = execute(scenario, planName, options, true);
  return { ...run, metrics: run.metrics! };
}

/**
 * Runs one plan without projecting or hashing: only the simulator and its event envelopes.
 * For benchmarks that measure the simulator on its own.
 */
export function simulatePlan(
  scenario: Scenario,
  planName: string,
  options: RunOptions = {},
): { events: number; commandsProcessed: number; runtime: PlanRuntime } {
  const run = execute(scenario, planName, { ...options, keepEvents: false }, false);
  return {
    events: run.events.length === 0 ? run.eventCount : run.events.length,
    commandsProcessed: run.commandsProcessed,
    runtime: run.runtime,
  };
}

/**
 * The engine's sink for one run: scheduled commands go into the heap as the engine's numeric
 * codes; each fact is stored as the engine emits it (so a burst of facts is never held all at
 * once): stamped with its envelope, then serialised, hashed, projected and kept as the options ask.
 */
class Recorder implements CodedDecisionSink {
  readonly heap = new TimeHeap<number>();
  readonly events: StoredEvent[] = [];
  readonly projection: PlanProjection | null;
  readonly hasher: EventHasher | null;
  seq = 0;
  private readonly ids: NumberedNames;
  private readonly keep: boolean;
  private readonly onEvent: ((event: StoredEvent) => void) | undefined;
  private readonly onLine: ((line: string) => void) | undefined;

  constructor(
    private readonly run: string,
    options: RunOptions,
    project: boolean,
  ) {
    this.ids = new NumberedNames(`${run}#`);
    this.keep = options.keepEvents ?? true;
    this.projection = project ? new PlanProjection() : null;
    this.hasher = project ? new EventHasher() : null;
    this.onEvent = options.onEvent;
    this.onLine = options.onLine;
  }

  scheduleCode(at: number, code: number): void {
    this.heap.push(at, code);
  }

  store(e: DomainEvent): void {
    // The envelope is stamped onto the domain event itself: one object per fact, not two.
    const stored = e as StoredEvent;
    stored.v = EVENT_SCHEMA_VERSION;
    stored.run = this.run;
    stored.seq = this.seq;
    stored.id = this.ids.of(this.seq);
    this.seq++;
    if (this.hasher || this.onLine) {
      const line = serializeTrustedEvent(stored);
      this.hasher?.updateLine(line);
      this.onLine?.(line);
    }
    this.projection?.apply(stored);
    this.onEvent?.(stored);
    if (this.keep) this.events.push(stored);
  }
}

function execute(
  scenario: Scenario,
  planName: string,
  options: RunOptions,
  project: boolean,
): Omit<PlanRun, 'metrics'> & { metrics: PlanMetrics | null; eventCount: number } {
  const random = options.random ?? new SeededRandom(scenario.seed);
  const fleet = options.fleet ?? generateFleet(scenario, random);
  const wallClock = options.wallClock ?? (() => 0);
  const startedWall = wallClock();
  const state = initialState(scenario, planName, fleet);
  const run = runId(scenario, planName);
  const recorder = new Recorder(run, options, project);
  const decide = createCodedDecide(state, { random }, recorder);
  const heap = recorder.heap;

  heap.push(0, decide.encode({ type: 'StartRun' }));
  for (const { at, command } of options.commands ?? []) heap.push(Math.ceil(at), decide.encode(command));
  const horizon = scenario.horizon;
  const onHeapSize = options.onHeapSize;
  let processed = 0;
  while (heap.size > 0) {
    const at = heap.peekTime()!;
    if (at > horizon) break;
    if (onHeapSize !== undefined) onHeapSize(heap.size);
    const code = heap.pop()!;
    processed++;
    decide.run(code, at);
    if (options.onProgress && (processed & 0x1fff) === 0) options.onProgress(at, horizon);
  }
  const reason = heap.size > 0 ? 'horizon' : 'drained';
  const finish: Command = { type: 'FinishRun', reason };
  decide.run(decide.encode(finish), reason === 'horizon' ? horizon : state.now);
  options.onProgress?.(horizon, horizon);

  const wallMs = wallClock() - startedWall;
  const { events, projection, hasher, seq } = recorder;
  return {
    plan: planName,
    runId: run,
    events,
    metrics: projection && hasher ? projection.result(hasher.digest()) : null,
    runtime: { wallMs, eventsPerSecond: wallMs > 0 ? Math.round((seq / wallMs) * 1000) : 0 },
    commandsProcessed: processed,
    eventCount: seq,
  };
}
