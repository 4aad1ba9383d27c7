/**
 * The push engine and its fleet as one decider over virtual time.
 *
 * `decide(state, command, at, ctx)` returns the facts a command produces and the commands those
 * facts set in motion (a push dispatched now reaches the relay after its processing time). It
 * applies each fact with `evolve` as it emits it, so a command that produces many facts sees
 * each one's effect in order, and the state is always the fold of `evolve` over the log.
 * `evolve` is the only code that changes state, and it does so in place: 100k devices are too
 * many to copy per event, and nothing else holds a reference to the state.
 *
 * Nothing here reads a clock or Math.random: time arrives with the command, draws come from
 * ctx.random streams keyed by device, so the same inputs always produce the same facts.
 *
 * The state is laid out for a million devices: per-device and per-job fields live in typed
 * arrays indexed by device and job number (one allocation per field, not one object per entity),
 * and instances are addressed by their position in `instances` once an event has named them.
 */
import type { Plan, Scenario } from '../scenario/schema.ts';
import { sample } from './distributions.ts';
import {
  type DomainEvent,
  type EventData,
  type EventType,
  PUSH_KINDS,
  type PushKind,
  type QueuedPush,
  type StrandedReason,
} from './events.ts';
import {
  type Device,
  deviceIndexOf,
  type Fleet,
  findAccountProblems,
  pinOf,
  userIdOf,
  userIndexOf,
} from './fleet.ts';
import { NumberedNames } from './numbered.ts';
import type { RandomSource, Rng, StreamTable } from './random.ts';
import { jobsForMinute, MINUTE_MS, SlidingWindow, slotOffsets } from './throttle.ts';

export type Command =
  | { type: 'StartRun' }
  | { type: 'StartPhase'; phase: number }
  | { type: 'CheckGate'; phase: number }
  | { type: 'StartCollapse' }
  | { type: 'ResumeService' }
  | { type: 'DetectMove'; user: number }
  | { type: 'ChangeItPolicy' }
  | { type: 'QueueItPolicyJobs' }
  | { type: 'RequestActivation'; user: number }
  | { type: 'FinishHandshake'; user: number }
  /** `due`: the instant the minute was planned for; live, the command may run a little later. */
  | { type: 'PlanMinute'; instance: string; due: number }
  | { type: 'DispatchSlot'; instance: string; deferred: boolean }
  | { type: 'ReachRelay'; push: number }
  | { type: 'RelayDeliver'; push: number }
  | { type: 'RelayDrop'; push: number }
  | { type: 'Acknowledge'; push: number }
  | { type: 'Resend'; push: number }
  | { type: 'Cradle'; device: number }
  /** A commanded plan's move of one user, from outside the run (a moveUser command message). */
  | { type: 'MoveUser'; user: number; to: string; phase: number }
  | { type: 'FinishRun'; reason: 'drained' | 'horizon' };

export interface Scheduled {
  at: number;
  command: Command;
}

export interface DecideContext {
  random: RandomSource;
}

export interface Decision {
  events: DomainEvent[];
  scheduled: Scheduled[];
}

/** A time field with no value (times on a run's timeline are never negative). */
const NONE = -1;

// Push statuses: small integers, compared on every command that touches a push.
const QUEUED = 0;
const PROCESSING = 1;
const DELIVERED = 2;
const HELD_AT_RELAY = 3;
const AWAITING_RETRY = 4;
const AWAITING_CRADLE = 5;
const ACKNOWLEDGED = 6;
const EXPIRED = 7;
type PushStatus =
  | typeof QUEUED
  | typeof PROCESSING
  | typeof DELIVERED
  | typeof HELD_AT_RELAY
  | typeof AWAITING_RETRY
  | typeof AWAITING_CRADLE
  | typeof ACKNOWLEDGED
  | typeof EXPIRED;

/**
 * Pushes by push number, one typed array per field: a burst queues a push per device, and as
 * objects they outlived the young generation and were copied into old space by every scavenge.
 */
class PushTable {
  count = 0;
  job: Int32Array;
  device: Int32Array;
  /** Position of the push's kind in PUSH_KINDS. */
  kind: Uint8Array;
  bytes: Float64Array;
  queuedAt: Float64Array;
  status: Uint8Array;
  firstDispatchAt: Float64Array;
  attempts: Int32Array;
  /** Left the Policy Service's hands (acknowledged, parked or expired) at least once. */
  released: Uint8Array;
  /** The device's next push, in the order they were queued; -1 for its last. */
  nextOfDevice: Int32Array;

  constructor(capacity: number) {
    this.job = new Int32Array(capacity);
    this.device = new Int32Array(capacity);
    this.kind = new Uint8Array(capacity);
    this.bytes = new Float64Array(capacity);
    this.queuedAt = new Float64Array(capacity);
    this.status = new Uint8Array(capacity);
    this.firstDispatchAt = new Float64Array(capacity);
    this.attempts = new Int32Array(capacity);
    this.released = new Uint8Array(capacity);
    this.nextOfDevice = new Int32Array(capacity);
  }

  /** The push's kind, as its events name it. */
  kindOf(push: number): PushKind {
    return PUSH_KINDS[this.kind[push]!]!;
  }

  add(push: number, job: number, device: number, kind: PushKind, bytes: number, queuedAt: number): void {
    if (push >= this.job.length) this.grow(Math.max(push + 1, this.job.length * 2));
    this.job[push] = job;
    this.device[push] = device;
    this.kind[push] = PUSH_KINDS.indexOf(kind);
    this.bytes[push] = bytes;
    this.queuedAt[push] = queuedAt;
    this.status[push] = QUEUED;
    this.firstDispatchAt[push] = NONE;
    this.attempts[push] = 0;
    this.released[push] = 0;
    this.nextOfDevice[push] = -1;
    if (push >= this.count) this.count = push + 1;
  }

  private grow(capacity: number): void {
    this.job = grown(this.job, new Int32Array(capacity));
    this.device = grown(this.device, new Int32Array(capacity));
    this.kind = grown(this.kind, new Uint8Array(capacity));
    this.bytes = grown(this.bytes, new Float64Array(capacity));
    this.queuedAt = grown(this.queuedAt, new Float64Array(capacity));
    this.status = grown(this.status, new Uint8Array(capacity));
    this.firstDispatchAt = grown(this.firstDispatchAt, new Float64Array(capacity));
    this.attempts = grown(this.attempts, new Int32Array(capacity));
    this.released = grown(this.released, new Uint8Array(capacity));
    this.nextOfDevice = grown(this.nextOfDevice, new Int32Array(capacity));
  }
}

/**
 * Jobs by job number. A job's pushes are numbered consecutively from `firstPush`; the job is in
 * process until `open` (pushes the Policy Service still has in hand) reaches 0.
 */
class JobTable {
  count = 0;
  /** Position of the job's instance in `EngineState.instances`. */
  instance: Int32Array;
  user: Int32Array;
  firstPush: Int32Array;
  pushCount: Int32Array;
  open: Int32Array;
  queuedAt: Float64Array;
  bypass: Uint8Array;
  completed: Uint8Array;

  constructor(capacity: number) {
    this.instance = new Int32Array(capacity);
    this.user = new Int32Array(capacity);
    this.firstPush = new Int32Array(capacity);
    this.pushCount = new Int32Array(capacity);
    this.open = new Int32Array(capacity);
    this.queuedAt = new Float64Array(capacity);
    this.bypass = new Uint8Array(capacity);
    this.completed = new Uint8Array(capacity);
  }

  add(
    job: number,
    instance: number,
    user: number,
    firstPush: number,
    pushCount: number,
    queuedAt: number,
    bypass: boolean,
  ): void {
    if (job >= this.instance.length) this.grow(Math.max(job + 1, this.instance.length * 2));
    this.instance[job] = instance;
    this.user[job] = user;
    this.firstPush[job] = firstPush;
    this.pushCount[job] = pushCount;
    this.open[job] = pushCount;
    this.queuedAt[job] = queuedAt;
    this.bypass[job] = bypass ? 1 : 0;
    this.completed[job] = 0;
    if (job >= this.count) this.count = job + 1;
  }

  private grow(capacity: number): void {
    this.instance = grown(this.instance, new Int32Array(capacity));
    this.user = grown(this.user, new Int32Array(capacity));
    this.firstPush = grown(this.firstPush, new Int32Array(capacity));
    this.pushCount = grown(this.pushCount, new Int32Array(capacity));
    this.open = grown(this.open, new Int32Array(capacity));
    this.queuedAt = grown(this.queuedAt, new Float64Array(capacity));
    this.bypass = grown(this.bypass, new Uint8Array(capacity));
    this.completed = grown(this.completed, new Uint8Array(capacity));
  }
}

function grown<T extends Int32Array | Float64Array | Uint8Array>(from: T, to: T): T {
  to.set(from);
  return to;
}

/** Devices by device (= user) index. Times are NONE when unset. */
class DeviceTable {
  /** The SRP id a device took from new service books; undefined while it holds the fleet's. */
  readonly srpIdTaken: Array<string | undefined>;
  /** Pushes neither acknowledged nor expired. */
  readonly open: Int32Array;
  readonly expired: Int32Array;
  /** Intended time of the change the device is converging to; NONE when it has none. */
  readonly since: Float64Array;
  readonly relayHeld: Int32Array;
  readonly cradleAt: Float64Array;
  readonly awaitingCradle: Int32Array;
  /** First and last push queued for the device (-1: none); the rest follow `nextOfDevice`. */
  readonly firstPush: Int32Array;
  readonly lastPush: Int32Array;
  readonly cutOff: Uint8Array;
  /** Counted once towards its phase's settled devices (converged or stranded). */
  readonly settled: Uint8Array;
  readonly stranded: Uint8Array;
  readonly phase: Int32Array;
  /** Each device's `device:<pin>:work` stream; made on the first draw. */
  rng: StreamTable | null = null;
  readonly coverageAnnouncedAt: Float64Array;
  readonly activationRequestedAt: Float64Array;

  constructor(private readonly fleetDevices: readonly Device[]) {
    const n = fleetDevices.length;
    this.srpIdTaken = new Array(n);
    this.open = new Int32Array(n);
    this.expired = new Int32Array(n);
    this.since = new Float64Array(n).fill(NONE);
    this.relayHeld = new Int32Array(n);
    this.cradleAt = new Float64Array(n).fill(NONE);
    this.awaitingCradle = new Int32Array(n);
    this.firstPush = new Int32Array(n).fill(-1);
    this.lastPush = new Int32Array(n).fill(-1);
    this.cutOff = new Uint8Array(n);
    this.settled = new Uint8Array(n);
    this.stranded = new Uint8Array(n);
    this.phase = new Int32Array(n);
    this.coverageAnnouncedAt = new Float64Array(n).fill(NONE);
    this.activationRequestedAt = new Float64Array(n).fill(NONE);
  }

  get length(): number {
    return this.open.length;
  }

  /** The SRP id the device holds now. */
  srpIdHeld(device: number): string {
    return this.srpIdTaken[device] ?? this.fleetDevices[device]!.srpId;
  }
}

interface PolicyServiceState {
  queue: number[];
  queueHead: number;
  inProcess: number;
  /** When the next minute will be planned; null while idle. */
  planTimer: number | null;
  minuteEndsAt: number;
  /** Slots of the current minute that could not start a job yet. */
  deferredSlots: number;
  window: SlidingWindow | null;
  activationQueue: number[];
  activationHead: number;
  activeActivations: number;
}

interface InstanceState {
  id: string;
  srpId: string;
  live: boolean;
  users: number;
  service: PolicyServiceState;
}

export interface PhaseState {
  phase: number;
  users: number;
  startedAt: number;
  movable: number;
  settled: number;
  converged: number;
  stranded: number;
  convergedEmitted: boolean;
}

export interface EngineState {
  now: number;
  scenario: Scenario;
  planName: string;
  plan: Plan;
  fleet: Fleet;
  /** Instances in the order they went live; `instanceIndex` finds one by id. */
  instances: InstanceState[];
  instanceIndex: Map<string, number>;
  /** Each user's instance id, and whether their move failed. */
  userInstance: string[];
  userMoveFailed: Uint8Array;
  devices: DeviceTable;
  jobs: JobTable;
  pushes: PushTable;
  /** Pushes not yet in a terminal state (acknowledged or expired). */
  pendingPushes: number;
  domainWindow: SlidingWindow | null;
  phases: PhaseState[];
  /** Source instances of a move plan, and the users it moves, in order. */
  sources: string[];
  moveOrder: number[];
  moveCursor: number;
  newInstances: number;
  disabledSrp: Set<string>;
  srpHolders: Map<string, number>;
  accountProblems: ReturnType<typeof findAccountProblems>;
  /** Acknowledgement times and latencies, in time order, for a p95 gate; null when no gate reads them. */
  acks: { at: number[]; latencyMs: number[] } | null;
  /** Users moved during a stop window, waiting for service to resume. */
  stoppedMoves: number[];
  /** Users moved whose jobs the Policy Service has not created yet: backlog a queue gate must see. */
  awaitingDetection: number;
  /** Users a commanded plan has moved so far, each counted once; null for other plans. */
  commanded: { users: Uint8Array; moves: number } | null;
  finished: boolean;
}

export function initialState(scenario: Scenario, planName: string, fleet: Fleet): EngineState {
  const plan = scenario.plans[planName];
  if (!plan) throw new Error(`no plan named ${planName}`);
  const throttle = scenario.domain.throttle;
  const sources = sourceInstances(scenario, plan);
  const moveOrder: number[] = [];
  for (const id of sources) for (const user of fleet.instanceUsers.get(id) ?? []) moveOrder.push(user);
  const users = fleet.users.length;
  const p95Gate = plan.kind === 'phased' && plan.gate?.kind === 'p95Below';
  return {
    now: 0,
    scenario,
    planName,
    plan,
    fleet,
    instances: [],
    instanceIndex: new Map(),
    userInstance: userInstances(fleet),
    userMoveFailed: new Uint8Array(users),
    devices: new DeviceTable(fleet.devices),
    // Most plans queue about one job per user.
    jobs: new JobTable(Math.max(16, users)),
    // Most plans queue one to three pushes per user.
    pushes: new PushTable(Math.max(16, users)),
    pendingPushes: 0,
    domainWindow:
      throttle.jobsPerMinuteDomain === null ? null : new SlidingWindow(throttle.jobsPerMinuteDomain),
    phases: [],
    sources,
    moveOrder,
    moveCursor: 0,
    newInstances: 0,
    disabledSrp: new Set(),
    srpHolders: new Map(),
    accountProblems: findAccountProblems(fleet.users),
    acks: p95Gate ? { at: [], latencyMs: [] } : null,
    stoppedMoves: [],
    awaitingDetection: 0,
    commanded: plan.kind === 'commanded' ? { users: new Uint8Array(users), moves: 0 } : null,
    finished: false,
  };
}

/** Each user's instance id, from the fleet's member lists (without visiting every user object). */
function userInstances(fleet: Fleet): string[] {
  const instanceOf = new Array<string>(fleet.users.length);
  for (const [id, members] of fleet.instanceUsers) for (const user of members) instanceOf[user] = id;
  for (let i = 0; i < instanceOf.length; i++) instanceOf[i] ??= fleet.users[i]!.instance;
  return instanceOf;
}

/** The instances a plan moves users out of (or, for an IT policy change, pushes to). */
export function sourceInstances(scenario: Scenario, plan: Plan): string[] {
  const all = scenario.domain.instances.map((i) => i.id);
  switch (plan.kind) {
    case 'collapse':
    case 'bigBang':
    case 'phased':
      return plan.from ?? all.filter((id) => id !== plan.into);
    case 'itPolicyChange':
      return plan.instances ?? all;
    case 'activationStorm':
      return [];
    case 'commanded':
      return all;
  }
}

/**
 * An instance goes live with its own Policy Service (and its own throttle). One that was live
 * before keeps its place in the order and starts afresh.
 */
function goLive(state: EngineState, id: string, srpId: string, users: number): void {
  const instance = { id, srpId, live: true, users, service: newService(state.scenario) };
  const index = state.instanceIndex.get(id);
  if (index === undefined) {
    state.instanceIndex.set(id, state.instances.length);
    state.instances.push(instance);
  } else {
    state.instances[index] = instance;
  }
}

/** The instance with this id; it must have gone live. */
function instanceNamed(state: EngineState, id: string): InstanceState {
  return state.instances[state.instanceIndex.get(id)!]!;
}

function newService(scenario: Scenario): PolicyServiceState {
  const perService = scenario.domain.throttle.jobsPerMinutePerService;
  return {
    queue: [],
    queueHead: 0,
    inProcess: 0,
    planTimer: null,
    minuteEndsAt: 0,
    deferredSlots: 0,
    window: perService === null ? null : new SlidingWindow(perService),
    activationQueue: [],
    activationHead: 0,
    activeActivations: 0,
  };
}

/** Jobs waiting at one Policy Service: throttled jobs plus activations waiting for a slot. */
export function queueDepth(service: PolicyServiceState): number {
  return service.queue.length - service.queueHead + service.activationQueue.length - service.activationHead;
}

export function domainQueueDepth(state: EngineState): number {
  let depth = 0;
  for (const inst of state.instances) depth += queueDepth(inst.service);
  return depth;
}

/** Pushes not yet in a terminal state (acknowledged or expired). */
export function pendingPushes(state: EngineState): number {
  return state.pendingPushes;
}

function isTerminal(status: PushStatus): boolean {
  return status === ACKNOWLEDGED || status === EXPIRED;
}

// ---------------------------------------------------------------------------------------------
// evolve: the only code that changes state.

export function evolve(state: EngineState, e: DomainEvent): EngineState {
  state.now = e.at;
  switch (e.type) {
    // The hottest facts first: V8 tests string cases in order.
    case 'JobQueued': {
      const device = userIndexOf(e.data.user);
      const queued = e.data.pushes;
      const job = e.data.job;
      const pushes = state.pushes;
      const firstPush = queued.length > 0 ? queued[0]!.push : pushes.count;
      const instance = state.instanceIndex.get(e.data.instance)!;
      state.jobs.add(job, instance, device, firstPush, queued.length, e.at, e.data.bypassThrottle);
      const devices = state.devices;
      for (let i = 0; i < queued.length; i++) {
        const p = queued[i]!;
        const push = p.push;
        if (push !== firstPush + i) throw new Error(`job ${job}: its pushes are not numbered in sequence`);
        if (push >= pushes.count || isTerminal(pushes.status[push] as PushStatus)) state.pendingPushes++;
        pushes.add(push, job, device, p.kind, p.bytes, e.at);
        const last = devices.lastPush[device]!;
        if (last === -1) devices.firstPush[device] = push;
        else pushes.nextOfDevice[last] = push;
        devices.lastPush[device] = push;
      }
      devices.open[device]! += queued.length;
      if (e.data.cause === 'itPolicy') joinPhase(state, device, e.at);
      if (e.data.cause === 'move') state.awaitingDetection--;
      const service = state.instances[instance]!.service;
      if (e.data.cause === 'activation') service.activeActivations--;
      if (!e.data.bypassThrottle) {
        service.queue.push(job);
        if (service.planTimer === null) service.planTimer = Math.max(e.at, service.minuteEndsAt);
      }
      break;
    }
    case 'PushDelivered': {
      const pushes = state.pushes;
      const push = e.data.push;
      if (pushes.status[push] === HELD_AT_RELAY) state.devices.relayHeld[pushes.device[push]!]!--;
      pushes.status[push] = DELIVERED;
      break;
    }
    case 'PushAcknowledged': {
      const pushes = state.pushes;
      const push = e.data.push;
      const device = pushes.device[push]!;
      const status = pushes.status[push] as PushStatus;
      const devices = state.devices;
      if (status === AWAITING_CRADLE) devices.awaitingCradle[device]!--;
      if (!isTerminal(status)) state.pendingPushes--;
      pushes.status[push] = ACKNOWLEDGED;
      devices.open[device]!--;
      release(state, push);
      if (state.acks) {
        state.acks.at.push(e.at);
        state.acks.latencyMs.push(e.at - pushes.queuedAt[push]!);
      }
      break;
    }
    case 'JobDispatched': {
      const jobs = state.jobs;
      const job = e.data.job;
      if (!jobs.bypass[job]) {
        const service = state.instances[jobs.instance[job]!]!.service;
        service.queueHead++;
        service.inProcess++;
        if (e.data.fromDeferredSlot) service.deferredSlots--;
        service.window?.record(e.at);
        state.domainWindow?.record(e.at);
        compactQueue(service);
      }
      const pushes = state.pushes;
      const end = jobs.firstPush[job]! + jobs.pushCount[job]!;
      for (let p = jobs.firstPush[job]!; p < end; p++) {
        pushes.status[p] = PROCESSING;
        pushes.firstDispatchAt[p] = e.at;
        pushes.attempts[p] = 1;
      }
      break;
    }
    case 'JobCompleted': {
      const jobs = state.jobs;
      const job = e.data.job;
      jobs.completed[job] = 1;
      if (!jobs.bypass[job]) state.instances[jobs.instance[job]!]!.service.inProcess--;
      break;
    }
    case 'DeviceConverged': {
      const device = deviceIndexOf(e.data.device);
      state.devices.since[device] = NONE;
      settle(state, device, true);
      break;
    }
    case 'ThrottleMinutePlanned': {
      const service = instanceNamed(state, e.data.instance).service;
      service.minuteEndsAt = e.at + MINUTE_MS;
      service.deferredSlots = 0;
      // Plan again next minute while there was work: slots lost to the in-process limit leave jobs behind.
      service.planTimer = e.data.queued > 0 ? e.at + MINUTE_MS : null;
      break;
    }
    case 'UserMoveRequested': {
      const commanded = state.commanded;
      if (commanded !== null) {
        commanded.users[userIndexOf(e.data.user)] = 1;
        commanded.moves++;
      }
      break;
    }
    case 'RunStarted':
    case 'ServiceStopped':
    case 'ItPolicyChanged':
    case 'DeviceCradled':
    case 'ActivationCompleted':
    case 'GateChecked':
      break;
    case 'RunCompleted':
      state.finished = true;
      break;
    case 'FleetProvisioned':
      for (const info of e.data.instances) {
        goLive(state, info.id, info.srpId, info.users);
        addHolders(state, info.srpId, info.users);
      }
      break;
    case 'InstanceProvisioned':
      goLive(state, e.data.instance, e.data.srpId, 0);
      if (e.data.newServer) state.newInstances++;
      break;
    case 'InstanceDecommissioned':
      instanceNamed(state, e.data.instance).live = false;
      break;
    case 'SrpConflictDetected':
      state.disabledSrp.add(e.data.srpId);
      break;
    case 'ServiceResumed':
      state.stoppedMoves = [];
      break;
    case 'PhaseStarted':
      state.phases.push({
        phase: e.data.phase,
        users: e.data.users,
        startedAt: e.at,
        movable: 0,
        settled: 0,
        converged: 0,
        stranded: 0,
        convergedEmitted: false,
      });
      state.moveCursor += state.plan.kind === 'activationStorm' ? 0 : e.data.users;
      break;
    case 'PhaseConverged':
      state.phases[e.data.phase - 1]!.convergedEmitted = true;
      break;
    case 'UserMoved': {
      const user = userIndexOf(e.data.user);
      instanceNamed(state, e.data.from).users--;
      instanceNamed(state, e.data.to).users++;
      state.userInstance[user] = e.data.to;
      joinPhase(state, user, e.at);
      if (isCollapse(state.plan)) state.stoppedMoves.push(user);
      state.awaitingDetection++;
      break;
    }
    case 'UserMoveFailed':
      state.userMoveFailed[userIndexOf(e.data.user)] = 1;
      break;
    case 'ActivationRequested': {
      const user = userIndexOf(e.data.user);
      state.devices.activationRequestedAt[user] = e.at;
      joinPhase(state, user, e.at);
      instanceNamed(state, e.data.instance).service.activationQueue.push(user);
      break;
    }
    case 'ActivationStarted': {
      const service = instanceNamed(state, e.data.instance).service;
      service.activationHead++;
      service.activeActivations++;
      break;
    }
    case 'ActivationFailed': {
      const service = instanceNamed(state, state.userInstance[userIndexOf(e.data.user)]!).service;
      // Too old: refused as it arrived (the tail). Expired: it was waiting at the head.
      if (e.data.reason === 'softwareTooOld') service.activationQueue.pop();
      else service.activationHead++;
      break;
    }
    case 'DispatchDeferred':
      instanceNamed(state, e.data.instance).service.deferredSlots++;
      break;
    case 'PushHeldAtRelay': {
      const pushes = state.pushes;
      const push = e.data.push;
      pushes.status[push] = HELD_AT_RELAY;
      state.devices.relayHeld[pushes.device[push]!]!++;
      release(state, push);
      break;
    }
    case 'PushRetryScheduled': {
      const pushes = state.pushes;
      const push = e.data.push;
      if (pushes.status[push] === HELD_AT_RELAY) state.devices.relayHeld[pushes.device[push]!]!--;
      pushes.status[push] = AWAITING_RETRY;
      release(state, push);
      break;
    }
    case 'PushResent': {
      const pushes = state.pushes;
      const push = e.data.push;
      pushes.status[push] = PROCESSING;
      pushes.attempts[push] = e.data.attempt;
      break;
    }
    case 'PushAwaitingCradle': {
      const pushes = state.pushes;
      const push = e.data.push;
      const device = pushes.device[push]!;
      pushes.status[push] = AWAITING_CRADLE;
      state.devices.cradleAt[device] = e.data.cradleAt;
      state.devices.awaitingCradle[device]!++;
      release(state, push);
      break;
    }
    case 'PushExpired': {
      const pushes = state.pushes;
      const push = e.data.push;
      const device = pushes.device[push]!;
      const status = pushes.status[push] as PushStatus;
      const devices = state.devices;
      if (status === HELD_AT_RELAY) devices.relayHeld[device]!--;
      if (!isTerminal(status)) state.pendingPushes--;
      pushes.status[push] = EXPIRED;
      devices.open[device]!--;
      devices.expired[device]!++;
      release(state, push);
      break;
    }
    case 'DeviceSrpChanged': {
      state.devices.srpIdTaken[deviceIndexOf(e.data.device)] = e.data.to;
      addHolders(state, e.data.from, -1);
      addHolders(state, e.data.to, 1);
      break;
    }
    case 'DeviceCoverageChanged':
      state.devices.coverageAnnouncedAt[deviceIndexOf(e.data.device)] = e.at;
      break;
    case 'DeviceCutOff': {
      const device = deviceIndexOf(e.data.device);
      const devices = state.devices;
      devices.cutOff[device] = 1;
      // Losing service is a change the device now waits on.
      if (devices.since[device] === NONE && !devices.settled[device]) devices.since[device] = e.at;
      break;
    }
    case 'DeviceStranded':
      if (e.data.reason !== 'migrationFailed' && e.data.reason !== 'pendingAtHorizon') {
        settle(state, deviceIndexOf(e.data.device), false);
      }
      break;
    default:
      return exhaustive(e);
  }
  return state;
}

function exhaustive(e: never): never {
  throw new Error(`unhandled event ${(e as DomainEvent).type}`);
}

function addHolders(state: EngineState, srpId: string, delta: number): void {
  state.srpHolders.set(srpId, (state.srpHolders.get(srpId) ?? 0) + delta);
}

function joinPhase(state: EngineState, device: number, at: number): void {
  const phase = state.phases[state.phases.length - 1];
  const devices = state.devices;
  devices.since[device] = at;
  if (!phase) return;
  devices.phase[device] = phase.phase;
  phase.movable++;
  // A device settled before it joined (cut off by an SRP conflict) still counts as settled here,
  // or a convergence gate would wait for it for ever.
  if (devices.settled[device]) {
    phase.settled++;
    if (devices.stranded[device]) phase.stranded++;
  }
}

function settle(state: EngineState, device: number, converged: boolean): void {
  const devices = state.devices;
  const phase = state.phases[devices.phase[device]! - 1];
  if (!devices.settled[device]) {
    devices.settled[device] = 1;
    if (phase) phase.settled++;
  }
  if (converged) {
    if (devices.stranded[device] && phase) phase.stranded--;
    devices.stranded[device] = 0;
    if (phase) phase.converged++;
  } else if (!devices.stranded[device]) {
    devices.stranded[device] = 1;
    if (phase) phase.stranded++;
  }
}

function release(state: EngineState, push: number): void {
  const pushes = state.pushes;
  if (pushes.released[push]) return;
  pushes.released[push] = 1;
  state.jobs.open[pushes.job[push]!]!--;
}

function compactQueue(service: PolicyServiceState): void {
  if (service.queueHead > 4096 && service.queueHead * 2 > service.queue.length) {
    service.queue = service.queue.slice(service.queueHead);
    service.queueHead = 0;
  }
}

/** A collapse moves everyone inside its stop window: their jobs wait for service to resume. */
function isCollapse(plan: Plan): boolean {
  return plan.kind === 'collapse' || plan.kind === 'bigBang';
}

// ---------------------------------------------------------------------------------------------
// decide

/**
 * Commands as numbers, for the run loop's heap: `argument * 16 + kind`. The commands every push
 * and job sets in motion carry one small integer (a push, a user, a device, an instance's
 * position and a flag), so the heap holds plain numbers instead of an object per scheduled
 * command; the rest (a phase start, a minute's plan, a commanded move) are kept aside by the
 * decider and their code names the slot they wait in.
 */
const CODE_KINDS = 16;
const REACH_RELAY = 0;
const ACKNOWLEDGE = 1;
/** Argument: instance position * 2 + 1 when the slot was deferred. */
const DISPATCH_SLOT = 2;
const RELAY_DELIVER = 3;
const RELAY_DROP = 4;
const RESEND = 5;
const DETECT_MOVE = 6;
const CRADLE = 7;
const FINISH_HANDSHAKE = 8;
const REQUEST_ACTIVATION = 9;
/** Argument: the slot of a command kept aside. */
const KEPT = 15;
/** Codes stay below 2^32, so `code >>> 4` recovers the argument. */
const MAX_ARGUMENT = 2 ** 28 - 1;

/**
 * Where a bound decide sends scheduled commands as numbers, and each fact as it is emitted: the
 * virtual-time run loop.
 */
export interface CodedDecisionSink {
  /** The command with this code to run at `at` (whole milliseconds). */
  scheduleCode(at: number, code: number): void;
  /** Each fact as it is emitted, already applied to the state. */
  store(event: DomainEvent): void;
}

/** A decide bound to one state whose commands travel as numbers (see createCodedDecide). */
export interface CodedDecide {
  /** Runs the command with this code at `at`: its facts go to the sink's store. */
  run(code: number, at: number): void;
  /** The code of a command from outside (the run's start, a commanded plan's moves, its end). */
  encode(command: Command): number;
}

/** Emits facts (applying each with evolve) and schedules the commands they set in motion. */
class Decider implements CodedDecide {
  events: DomainEvent[] = [];
  scheduled: Scheduled[] = [];
  at = 0;

  /** Commands kept aside while their code waits in the heap; `free` lists reusable slots. */
  private readonly kept: Array<Command | undefined> = [];
  private readonly free: number[] = [];

  constructor(
    readonly state: EngineState,
    readonly ctx: DecideContext,
    /** Where scheduled commands go straight away (a command to run at `at`); otherwise `scheduled`. */
    private readonly sink: ((at: number, command: Command) => void) | null = null,
    /** Where scheduled commands go as codes, and facts as they are emitted; takes precedence over `sink`. */
    private readonly codes: CodedDecisionSink | null = null,
  ) {}

  emit<T extends EventType>(type: T, key: string, data: EventData[T]): void {
    // One object shape for every fact, with room for the envelope the run loop stamps on it
    // (v, run, seq, id): stamping then fills fields instead of growing the object. Unstamped,
    // they are undefined, which JSON and equality checks treat as absent.
    const e = {
      type,
      key,
      at: this.at,
      data,
      v: undefined,
      run: undefined,
      seq: undefined,
      id: undefined,
    } as unknown as DomainEvent;
    evolve(this.state, e);
    if (this.codes !== null) this.codes.store(e);
    else this.events.push(e);
  }

  /** Virtual time is whole milliseconds: rounding up keeps causes before effects and 60 s windows exact. */
  schedule(at: number, command: Command): void {
    if (at < this.at) this.backwards(at, command.type);
    if (this.codes !== null) this.codes.scheduleCode(Math.ceil(at), this.keep(command));
    else this.scheduleCommand(Math.ceil(at), command);
  }

  /** Schedules a command of a kind with a numeric argument, as its code when the sink takes codes. */
  schedulePacked(at: number, kind: number, argument: number): void {
    if (at < this.at) this.backwards(at, this.decodePacked(kind, argument).type);
    if (this.codes !== null) this.codes.scheduleCode(Math.ceil(at), pack(kind, argument));
    else this.scheduleCommand(Math.ceil(at), this.decodePacked(kind, argument));
  }

  private scheduleCommand(at: number, command: Command): void {
    if (this.sink) this.sink(at, command);
    else this.scheduled.push({ at, command });
  }

  private backwards(at: number, type: Command['type']): never {
    throw new Error(`${type} scheduled at ${at}, before now (${this.at}): time would run backwards`);
  }

  run(code: number, at: number): void {
    this.at = at;
    const kind = code & (CODE_KINDS - 1);
    const argument = code >>> 4;
    if (kind === KEPT) {
      const command = this.kept[argument]!;
      this.kept[argument] = undefined;
      this.free.push(argument);
      if (!this.state.finished) handle(this, command);
    } else if (!this.state.finished) {
      runPacked(this, kind, argument);
    }
  }

  encode(command: Command): number {
    switch (command.type) {
      case 'ReachRelay':
        return pack(REACH_RELAY, command.push);
      case 'Acknowledge':
        return pack(ACKNOWLEDGE, command.push);
      case 'RelayDeliver':
        return pack(RELAY_DELIVER, command.push);
      case 'RelayDrop':
        return pack(RELAY_DROP, command.push);
      case 'Resend':
        return pack(RESEND, command.push);
      case 'DetectMove':
        return pack(DETECT_MOVE, command.user);
      case 'Cradle':
        return pack(CRADLE, command.device);
      case 'FinishHandshake':
        return pack(FINISH_HANDSHAKE, command.user);
      case 'RequestActivation':
        return pack(REQUEST_ACTIVATION, command.user);
      default:
        // DispatchSlot too: its instance may not have gone live yet.
        return this.keep(command);
    }
  }

  private decodePacked(kind: number, argument: number): Command {
    switch (kind) {
      case REACH_RELAY:
        return { type: 'ReachRelay', push: argument };
      case ACKNOWLEDGE:
        return { type: 'Acknowledge', push: argument };
      case DISPATCH_SLOT:
        return {
          type: 'DispatchSlot',
          instance: this.state.instances[argument >>> 1]!.id,
          deferred: (argument & 1) === 1,
        };
      case RELAY_DELIVER:
        return { type: 'RelayDeliver', push: argument };
      case RELAY_DROP:
        return { type: 'RelayDrop', push: argument };
      case RESEND:
        return { type: 'Resend', push: argument };
      case DETECT_MOVE:
        return { type: 'DetectMove', user: argument };
      case CRADLE:
        return { type: 'Cradle', device: argument };
      case FINISH_HANDSHAKE:
        return { type: 'FinishHandshake', user: argument };
      case REQUEST_ACTIVATION:
        return { type: 'RequestActivation', user: argument };
      default:
        throw new Error(`no command has code kind ${kind}`);
    }
  }

  private keep(command: Command): number {
    const slot = this.free.length > 0 ? this.free.pop()! : this.kept.length;
    this.kept[slot] = command;
    return pack(KEPT, slot);
  }

  get scenario(): Scenario {
    return this.state.scenario;
  }

  /** The device's work stream; draw from it at once (it is valid until the next deviceRng). */
  deviceRng(device: number): Rng {
    const devices = this.state.devices;
    devices.rng ??= this.ctx.random.streams(devices.length, 'device:', pinOf, ':work');
    return devices.rng.at(device);
  }
}

function pack(kind: number, argument: number): number {
  if (!(argument >= 0 && argument <= MAX_ARGUMENT))
    throw new Error(`command argument ${argument} out of range 0..${MAX_ARGUMENT}`);
  return argument * CODE_KINDS + kind;
}

export function decide(state: EngineState, command: Command, at: number, ctx: DecideContext): Decision {
  return createDecide(state, ctx)(command, at);
}

/**
 * A decide bound to one state, for live mode and tests: scheduled commands go straight to the
 * sink (a heap) and the events array is reused, so a decision is valid only until the next call
 * (the caller consumes it at once). Saves allocations on the hottest path.
 */
export function createDecide(
  state: EngineState,
  ctx: DecideContext,
  sink?: (at: number, command: Command) => void,
): (command: Command, at: number) => Decision {
  const d = new Decider(state, ctx, sink ?? null);
  return (command, at) => {
    if (sink) {
      if (d.events.length > 0) d.events.length = 0;
    } else {
      d.events = [];
      d.scheduled = [];
    }
    d.at = at;
    if (!state.finished) handle(d, command);
    return d;
  };
}

/**
 * A decide bound to one state for the virtual-time run loop: commands travel as numbers (see
 * CODE_KINDS), so scheduling one allocates nothing, and every fact goes to the sink's store as
 * it is emitted. The same decisions as createDecide's, command for command.
 */
export function createCodedDecide(
  state: EngineState,
  ctx: DecideContext,
  sink: CodedDecisionSink,
): CodedDecide {
  return new Decider(state, ctx, null, sink);
}

/** Job facts' keys, `job-<n>`. */
const JOB_KEYS = new NumberedNames('job-');

// The push kinds each kind of job carries, shared rather than built per job.
const MOVE_PUSHES: readonly PushKind[] = ['itPolicy', 'serviceBooks', 'dataSync'];
const MOVE_PUSHES_BEFORE_4: readonly PushKind[] = ['itPolicy', 'serviceBooks'];
const IT_POLICY_PUSHES: readonly PushKind[] = ['itPolicy'];
const ACTIVATION_PUSHES: readonly PushKind[] = ['activation', 'itPolicy', 'serviceBooks', 'dataSync'];

/** A switch on small integers; each case has a known target the JIT can inline. */
function runPacked(d: Decider, kind: number, argument: number): void {
  switch (kind) {
    // The hottest commands first.
    case REACH_RELAY:
      reachRelay(d, argument);
      return;
    case ACKNOWLEDGE:
      acknowledgeWireless(d, argument);
      return;
    case DISPATCH_SLOT:
      dispatchSlot(d, argument >>> 1, (argument & 1) === 1);
      return;
    case RELAY_DELIVER:
      relayDeliver(d, argument);
      return;
    case RELAY_DROP:
      relayDrop(d, argument);
      return;
    case RESEND:
      resend(d, argument);
      return;
    case DETECT_MOVE:
      detectMove(d, argument);
      return;
    case CRADLE:
      cradle(d, argument);
      return;
    case FINISH_HANDSHAKE:
      finishHandshake(d, argument);
      return;
    case REQUEST_ACTIVATION:
      requestActivation(d, argument);
      return;
    default:
      throw new Error(`no command has code kind ${kind}`);
  }
}

/** Commands that travel as a number with one argument; the rest have handlers below. */
type PackedCommand = Extract<
  Command,
  {
    type:
      | 'ReachRelay'
      | 'Acknowledge'
      | 'DispatchSlot'
      | 'RelayDeliver'
      | 'RelayDrop'
      | 'Resend'
      | 'DetectMove'
      | 'Cradle'
      | 'FinishHandshake'
      | 'RequestActivation';
  }
>;
type Handlers = {
  [K in Exclude<Command, PackedCommand>['type']]: (d: Decider, c: Extract<Command, { type: K }>) => void;
};

/** A switch rather than handlers[c.type]: each call then has a known target the JIT can inline. */
function handle(d: Decider, c: Command): void {
  switch (c.type) {
    // The hottest commands first.
    case 'ReachRelay':
      reachRelay(d, c.push);
      return;
    case 'Acknowledge':
      acknowledgeWireless(d, c.push);
      return;
    case 'DispatchSlot':
      dispatchSlot(d, d.state.instanceIndex.get(c.instance)!, c.deferred);
      return;
    case 'PlanMinute':
      handlers.PlanMinute(d, c);
      return;
    case 'DetectMove':
      detectMove(d, c.user);
      return;
    case 'RelayDeliver':
      relayDeliver(d, c.push);
      return;
    case 'RelayDrop':
      relayDrop(d, c.push);
      return;
    case 'Resend':
      resend(d, c.push);
      return;
    case 'Cradle':
      cradle(d, c.device);
      return;
    case 'RequestActivation':
      requestActivation(d, c.user);
      return;
    case 'FinishHandshake':
      finishHandshake(d, c.user);
      return;
    case 'StartRun':
      handlers.StartRun(d, c);
      return;
    case 'StartPhase':
      handlers.StartPhase(d, c);
      return;
    case 'CheckGate':
      handlers.CheckGate(d, c);
      return;
    case 'StartCollapse':
      handlers.StartCollapse(d, c);
      return;
    case 'ResumeService':
      handlers.ResumeService(d, c);
      return;
    case 'ChangeItPolicy':
      handlers.ChangeItPolicy(d, c);
      return;
    case 'QueueItPolicyJobs':
      handlers.QueueItPolicyJobs(d, c);
      return;
    case 'MoveUser':
      handlers.MoveUser(d, c);
      return;
    case 'FinishRun':
      handlers.FinishRun(d, c);
      return;
    default:
      throw new Error(`unknown command ${(c as Command).type}`);
  }
}

const handlers: Handlers = {
  StartRun(d) {
    const { state, scenario } = d;
    const plan = state.plan;
    d.emit('RunStarted', state.planName, {
      scenario: scenario.name,
      plan: state.planName,
      planKind: plan.kind,
      seed: scenario.seed,
      horizonMs: scenario.horizon,
      planSpec: plan,
      throttle: scenario.domain.throttle,
      slos: scenario.slos,
    });
    // Counted by number, named once per version: a fleet has a handful of versions, not 100k.
    const seen: number[] = [];
    const counts: number[] = [];
    let alwaysOnline = 0;
    const figures = state.fleet.figures;
    for (let i = 0; i < figures.softwareVersion.length; i++) {
      const version = figures.softwareVersion[i]!;
      const k = seen.indexOf(version);
      if (k === -1) {
        seen.push(version);
        counts.push(1);
      } else {
        counts[k]!++;
      }
      if (!figures.roams[i]) alwaysOnline++;
    }
    const versions: Record<string, number> = {};
    seen.forEach((v, k) => {
      versions[String(v)] = counts[k]!;
    });
    d.emit('FleetProvisioned', scenario.name, {
      users: state.fleet.users.length,
      devices: state.fleet.devices.length,
      instances: scenario.domain.instances.map((i) => ({
        id: i.id,
        srpId: i.srpId,
        users: state.fleet.instanceUsers.get(i.id)?.length ?? 0,
      })),
      softwareVersions: versions,
      problemAccounts: state.accountProblems.size,
      alwaysOnline,
    });
    switch (plan.kind) {
      case 'collapse':
      case 'bigBang':
        d.schedule(plan.at, { type: 'StartCollapse' });
        break;
      case 'phased':
        d.schedule(plan.at, { type: 'StartPhase', phase: 1 });
        break;
      case 'itPolicyChange':
        d.schedule(plan.at, { type: 'ChangeItPolicy' });
        break;
      case 'activationStorm':
        scheduleActivations(d, plan);
        break;
      case 'commanded':
        break; // the moves arrive as MoveUser commands
    }
  },

  StartCollapse(d) {
    const { state } = d;
    const plan = state.plan as Extract<Plan, { kind: 'collapse' | 'bigBang' }>;
    const users = state.moveOrder;
    d.emit('ServiceStopped', state.planName, { instances: state.sources, users: users.length });
    const targets = assignTargets(d, users);
    d.emit('PhaseStarted', 'phase-1', { phase: 1, users: users.length, into: distinct(targets) });
    users.forEach((user, i) => {
      moveUser(d, user, targets[i]!);
    });
    d.schedule(plan.at + plan.stopWindow, { type: 'ResumeService' });
    checkPhaseConverged(d, 1);
  },

  ResumeService(d) {
    const { state } = d;
    const moved = state.stoppedMoves;
    d.emit('ServiceResumed', state.planName, { instances: state.sources, users: moved.length });
    for (const id of state.sources) {
      const inst = instanceNamed(state, id);
      if (inst.live) d.emit('InstanceDecommissioned', id, { instance: id, srpId: inst.srpId });
    }
    for (const user of moved) scheduleDetection(d, user);
  },

  StartPhase(d, c) {
    const { state } = d;
    const plan = state.plan as Extract<Plan, { kind: 'phased' }>;
    const users = state.moveOrder.slice(state.moveCursor, state.moveCursor + plan.size);
    if (users.length === 0) return;
    const targets = assignTargets(d, users);
    d.emit('PhaseStarted', `phase-${c.phase}`, {
      phase: c.phase,
      users: users.length,
      into: distinct(targets),
    });
    users.forEach((user, i) => {
      moveUser(d, user, targets[i]!);
      if (!state.userMoveFailed[user]) scheduleDetection(d, user);
    });
    for (const id of state.sources) {
      const inst = instanceNamed(state, id);
      if (inst.live && inst.users === 0)
        d.emit('InstanceDecommissioned', id, { instance: id, srpId: inst.srpId });
    }
    if (state.moveCursor < state.moveOrder.length) {
      if (plan.gate)
        d.schedule(d.at + (plan.every ?? plan.gateCheckEvery), { type: 'CheckGate', phase: c.phase });
      else d.schedule(d.at + plan.every!, { type: 'StartPhase', phase: c.phase + 1 });
    }
    checkPhaseConverged(d, c.phase);
  },

  CheckGate(d, c) {
    const { state } = d;
    const plan = state.plan as Extract<Plan, { kind: 'phased' }>;
    const gate = plan.gate!;
    let passed: boolean;
    let value: number;
    switch (gate.kind) {
      case 'converged':
        passed = state.phases[c.phase - 1]!.convergedEmitted;
        value = state.phases[c.phase - 1]!.settled;
        break;
      case 'queueBelow':
        // Moved users not yet detected are queue that has not shown up yet.
        value = domainQueueDepth(state) + state.awaitingDetection;
        passed = value < gate.depth;
        break;
      case 'p95Below': {
        const p95 = recentP95(state, d.at - gate.window);
        if (p95 === null) {
          // No acknowledgement in the window is no evidence that delivery is fast: the gate opens
          // only when nothing is outstanding (no backlog, and the phase has settled).
          value = -1;
          passed =
            domainQueueDepth(state) + state.awaitingDetection === 0 &&
            state.phases[c.phase - 1]!.convergedEmitted;
        } else {
          value = p95;
          passed = p95 < gate.latency;
        }
        break;
      }
    }
    d.emit('GateChecked', `phase-${c.phase}`, { phase: c.phase, passed, value });
    if (passed) d.schedule(d.at, { type: 'StartPhase', phase: c.phase + 1 });
    else d.schedule(d.at + plan.gateCheckEvery, { type: 'CheckGate', phase: c.phase });
  },

  ChangeItPolicy(d) {
    const { state } = d;
    const users = state.moveOrder;
    d.emit('ItPolicyChanged', state.planName, { instances: state.sources, users: users.length });
    d.emit('PhaseStarted', 'phase-1', { phase: 1, users: users.length, into: state.sources });
    const delay = sample(d.scenario.domain.policyDetectionDelay, d.ctx.random.stream('plan:policyDetection'));
    d.schedule(d.at + delay, { type: 'QueueItPolicyJobs' });
  },

  QueueItPolicyJobs(d) {
    for (const user of d.state.moveOrder)
      queueJob(d, user, d.state.userInstance[user]!, IT_POLICY_PUSHES, 'itPolicy', false);
    checkPhaseConverged(d, 1);
  },

  PlanMinute(d, c) {
    const { state } = d;
    const index = state.instanceIndex.get(c.instance)!;
    const service = state.instances[index]!.service;
    if (service.planTimer !== c.due) return; // superseded by a newer plan
    const queued = service.queue.length - service.queueHead;
    // This service's place among the Policy Services with work queued, for sharing the domain budget.
    let busy = 0;
    let rank = 0;
    const instances = state.instances;
    for (let i = 0; i < instances.length; i++) {
      if (i === index) rank = busy;
      const other = instances[i]!.service;
      if (other.queue.length > other.queueHead) busy++;
    }
    const jobs = jobsForMinute(queued, busy, d.scenario.domain.throttle, rank, Math.floor(d.at / MINUTE_MS));
    d.emit('ThrottleMinutePlanned', c.instance, {
      instance: c.instance,
      minute: Math.floor(d.at / MINUTE_MS),
      jobs,
      queued,
      inProcess: service.inProcess,
    });
    for (const offset of slotOffsets(jobs)) d.schedulePacked(d.at + offset, DISPATCH_SLOT, index * 2);
    if (service.planTimer !== null)
      d.schedule(service.planTimer, { type: 'PlanMinute', instance: c.instance, due: service.planTimer });
  },

  MoveUser(d, c) {
    const { state } = d;
    const plan = state.plan;
    const commanded = state.commanded;
    if (plan.kind !== 'commanded' || commanded === null) return; // only a commanded plan takes moves
    const user = c.user;
    // An unknown user, one moved already (a command delivered twice), one already on the target,
    // or a move beyond those expected: nothing to do.
    if (!(user >= 0 && user < state.fleet.users.length) || commanded.users[user]) return;
    if (commanded.moves >= plan.moves || state.userInstance[user] === c.to) return;
    // Phases start in order; a move commanded for an earlier phase joins the newest one.
    while (state.phases.length < Math.max(1, c.phase)) {
      const phase = state.phases.length + 1;
      d.emit('PhaseStarted', `phase-${phase}`, { phase, users: 0, into: [c.to] });
      if (phase > 1) checkPhaseConverged(d, phase - 1);
    }
    const index = state.instanceIndex.get(c.to);
    if (index === undefined || !state.instances[index]!.live) {
      const spec = plan.newInstances;
      const srpId =
        spec.instances?.find((i) => i.id === c.to)?.srpId ?? String(spec.srpIdBase + state.newInstances + 1);
      provisionInstance(d, c.to, srpId);
    }
    moveUser(d, user, c.to);
    if (!state.userMoveFailed[user]) scheduleDetection(d, user);
    checkPhaseConverged(d, state.phases.length);
  },

  FinishRun(d, c) {
    const { state } = d;
    const devices = state.devices;
    for (let i = 0; i < devices.length; i++) {
      if (devices.since[i] === NONE || devices.settled[i]) continue;
      const pin = pinOf(i);
      d.emit('DeviceStranded', pin, { device: pin, user: userIdOf(i), reason: strandedReason(state, i) });
    }
    d.emit('RunCompleted', state.planName, { pendingPushes: pendingPushes(state), reason: c.reason });
  },
};

// ---------------------------------------------------------------------------------------------
// the commands that travel as numbers

function detectMove(d: Decider, user: number): void {
  const software = d.state.fleet.figures.softwareVersion[user]!;
  // D: a moved user gets new service books and IT policy; 4.0+ devices also a wireless data sync.
  const kinds = software >= 4 ? MOVE_PUSHES : MOVE_PUSHES_BEFORE_4;
  queueJob(d, user, d.state.userInstance[user]!, kinds, 'move', false);
}

function requestActivation(d: Decider, user: number): void {
  const { state } = d;
  if (state.phases.length === 0) d.emit('PhaseStarted', 'phase-1', { phase: 1, users: 0, into: [] });
  const instance = state.userInstance[user]!;
  const ids = { user: userIdOf(user), device: pinOf(user), instance };
  d.emit('ActivationRequested', ids.user, ids);
  if (state.fleet.figures.softwareVersion[user]! < 4) {
    // D: wireless enterprise activation needs device software 4.0+.
    d.emit('ActivationFailed', ids.user, { user: ids.user, device: ids.device, reason: 'softwareTooOld' });
    d.emit('DeviceStranded', ids.device, {
      device: ids.device,
      user: ids.user,
      reason: 'activationFailed',
    });
    checkPhaseConverged(d, 1);
    return;
  }
  startWaitingActivations(d, instance);
}

function finishHandshake(d: Decider, user: number): void {
  const instance = d.state.userInstance[user]!;
  const job = queueJob(d, user, instance, ACTIVATION_PUSHES, 'activation', true);
  dispatchJob(d, job, false);
  startWaitingActivations(d, instance);
}

function dispatchSlot(d: Decider, instanceIndex: number, deferred: boolean): void {
  const { state } = d;
  const instance = state.instances[instanceIndex]!;
  const service = instance.service;
  if (service.queue.length === service.queueHead) return;
  if (deferred && service.deferredSlots === 0) return; // the minute that owned it is over
  const inProcessLimit = d.scenario.domain.throttle.inProcessJobs;
  if (inProcessLimit !== null && service.inProcess >= inProcessLimit) {
    if (!deferred)
      d.emit('DispatchDeferred', instance.id, { instance: instance.id, reason: 'inProcess', retryAt: null });
    return;
  }
  const earliest = Math.max(
    service.window?.earliestStart(d.at) ?? d.at,
    state.domainWindow?.earliestStart(d.at) ?? d.at,
  );
  if (earliest > d.at) {
    if (!deferred)
      d.emit('DispatchDeferred', instance.id, { instance: instance.id, reason: 'window', retryAt: earliest });
    d.schedulePacked(earliest, DISPATCH_SLOT, instanceIndex * 2 + 1);
    return;
  }
  dispatchJob(d, service.queue[service.queueHead]!, deferred);
}

function reachRelay(d: Decider, push: number): void {
  const { state, scenario } = d;
  const pushes = state.pushes;
  if (pushes.status[push] !== PROCESSING) return;
  const devices = state.devices;
  const device = pushes.device[push]!;
  if (
    devices.cutOff[device] ||
    (state.disabledSrp.size > 0 &&
      state.disabledSrp.has(state.instances[state.jobs.instance[pushes.job[push]!]!]!.srpId))
  ) {
    retryOrExpire(d, push, 'deviceCutOff');
    return;
  }
  const kind = pushes.kindOf(push);
  const figures = state.fleet.figures;
  if (needsCradle(figures.softwareVersion[device]!, kind)) {
    const pin = pinOf(device);
    const first = devices.cradleAt[device] === NONE;
    const cradleAt = first
      ? Math.ceil(d.at + state.fleet.devices[device]!.recradleDelayMs)
      : devices.cradleAt[device]!;
    d.emit('PushAwaitingCradle', pin, { push, device: pin, kind, cradleAt });
    if (first) d.schedulePacked(cradleAt, CRADLE, device);
    afterRelease(d, push);
    return;
  }
  if (!figures.roams[device]) {
    deliver(d, push);
    return;
  }
  const coverage = figures.coverage[device]!;
  if (coverage.isOnline(d.at)) {
    deliver(d, push);
    return;
  }
  const pin = pinOf(device);
  const relay = scenario.engine.relay;
  if (devices.relayHeld[device]! >= relay.maxItems) {
    retryOrExpire(d, push, 'relayFull');
    return;
  }
  const back = coverage.nextOnlineAt(d.at);
  const deliverAt = back - d.at <= relay.maxHold ? back : null;
  d.emit('PushHeldAtRelay', pin, {
    push,
    device: pin,
    heldItems: devices.relayHeld[device]! + 1,
    deliverAt,
  });
  if (deliverAt === null) d.schedulePacked(d.at + relay.maxHold, RELAY_DROP, push);
  else d.schedulePacked(deliverAt, RELAY_DELIVER, push);
  afterRelease(d, push);
}

function relayDeliver(d: Decider, push: number): void {
  const pushes = d.state.pushes;
  if (pushes.status[push] !== HELD_AT_RELAY) return;
  const device = pushes.device[push]!;
  if (d.state.devices.coverageAnnouncedAt[device] !== d.at) {
    const pin = pinOf(device);
    d.emit('DeviceCoverageChanged', pin, { device: pin, online: true });
  }
  deliver(d, push);
}

function relayDrop(d: Decider, push: number): void {
  if (d.state.pushes.status[push] === HELD_AT_RELAY) retryOrExpire(d, push, 'relayExpired');
}

function acknowledgeWireless(d: Decider, push: number): void {
  if (d.state.pushes.status[push] !== DELIVERED) return;
  acknowledge(d, push, 'wireless');
  afterRelease(d, push);
}

function resend(d: Decider, push: number): void {
  const { state, scenario } = d;
  const pushes = state.pushes;
  if (pushes.status[push] !== AWAITING_RETRY) return;
  const device = pushes.device[push]!;
  const pin = pinOf(device);
  if (d.at >= pushes.firstDispatchAt[push]! + scenario.engine.pushExpiry) {
    d.emit('PushExpired', pin, {
      push,
      device: pin,
      kind: pushes.kindOf(push),
      queuedAt: pushes.queuedAt[push]!,
    });
    settleDevice(d, device);
    return;
  }
  d.emit('PushResent', pin, { push, device: pin, attempt: pushes.attempts[push]! + 1 });
  d.schedulePacked(d.at + sample(scenario.engine.serverProcessing, d.deviceRng(device)), REACH_RELAY, push);
}

function cradle(d: Decider, device: number): void {
  const { state } = d;
  const pin = pinOf(device);
  const pushes = state.pushes;
  d.emit('DeviceCradled', pin, { device: pin, user: userIdOf(device) });
  for (let p = state.devices.firstPush[device]!; p !== -1; p = pushes.nextOfDevice[p]!) {
    if (pushes.status[p] === AWAITING_CRADLE) acknowledge(d, p, 'cradle');
  }
  settleDevice(d, device);
}

// ---------------------------------------------------------------------------------------------
// shared steps

function scheduleActivations(d: Decider, plan: Extract<Plan, { kind: 'activationStorm' }>): void {
  const users = d.state.fleet.users.length;
  const n = Math.min(plan.activations, users);
  const rng = d.ctx.random.stream('plan:activations');
  // Poisson arrivals conditioned on n in the window are the order statistics of n uniforms:
  // normalised cumulative exponential gaps give them in order without a sort.
  const gaps: number[] = [];
  let total = 0;
  for (let i = 0; i <= n; i++) {
    const gap = plan.arrivals === 'poisson' ? -Math.log(1 - rng.next()) : 1;
    gaps.push(gap);
    total += gap;
  }
  let cumulative = 0;
  for (let i = 0; i < n; i++) {
    cumulative += gaps[i]!;
    const at =
      plan.at + (plan.arrivals === 'poisson' ? (cumulative / total) * plan.window : (i * plan.window) / n);
    d.schedulePacked(at, REQUEST_ACTIVATION, Math.floor((i * users) / n));
  }
}

function startWaitingActivations(d: Decider, instance: string): void {
  const { state, scenario } = d;
  const service = instanceNamed(state, instance).service;
  const limits = scenario.engine.activation;
  while (
    service.activeActivations < limits.concurrency &&
    service.activationHead < service.activationQueue.length
  ) {
    const user = service.activationQueue[service.activationHead]!;
    const ids = { user: userIdOf(user), device: pinOf(user), instance };
    const requestedAt = state.devices.activationRequestedAt[user]!;
    if (d.at - requestedAt > limits.passwordLifetime) {
      d.emit('ActivationFailed', ids.user, { user: ids.user, device: ids.device, reason: 'passwordExpired' });
      d.emit('DeviceStranded', ids.device, {
        device: ids.device,
        user: ids.user,
        reason: 'activationFailed',
      });
      checkPhaseConverged(d, 1);
      continue;
    }
    d.emit('ActivationStarted', ids.user, ids);
    d.schedulePacked(d.at + sample(limits.handshake, d.deviceRng(user)), FINISH_HANDSHAKE, user);
  }
}

/** Target instance per user: an existing instance, or new instances filled to capacity in order. */
function assignTargets(d: Decider, users: readonly number[]): string[] {
  const { state, scenario } = d;
  const plan = state.plan as Extract<Plan, { kind: 'collapse' | 'bigBang' | 'phased' }>;
  if (typeof plan.into === 'string') return users.map(() => plan.into as string);
  const spec = plan.into.newInstances;
  const capacity = scenario.domain.usersPerInstance;
  const targets: string[] = [];
  let current = state.newInstances > 0 ? newInstanceId(spec, state.newInstances) : null;
  let room = current ? capacity - instanceNamed(state, current).users : 0;
  for (let i = 0; i < users.length; i++) {
    if (room <= 0) {
      const k = state.newInstances + 1;
      current = newInstanceId(spec, k);
      provisionInstance(d, current, spec.instances?.[k - 1]?.srpId ?? String(spec.srpIdBase + k));
      room = capacity;
    }
    targets.push(current!);
    room--;
  }
  return targets;
}

function newInstanceId(spec: { instances?: Array<{ id: string }>; idPrefix: string }, k: number): string {
  return spec.instances?.[k - 1]?.id ?? `${spec.idPrefix}${String(k).padStart(2, '0')}`;
}

/**
 * A new server goes live with an SRP id. If any device still holds that id (an old instance's id
 * in quiet use), the relay sees two servers on one SRP id and disables it: every device on it
 * stops communicating.
 */
function provisionInstance(d: Decider, id: string, srpId: string): void {
  const { state } = d;
  const holding = state.srpHolders.get(srpId) ?? 0;
  const liveSharing = state.instances.filter((i) => i.live && i.srpId === srpId).map((i) => i.id);
  d.emit('InstanceProvisioned', id, { instance: id, srpId, newServer: true });
  if (holding <= 0 && liveSharing.length === 0) return;
  d.emit('SrpConflictDetected', `srp-${srpId}`, {
    srpId,
    instance: id,
    devicesHolding: Math.max(0, holding),
    heldBy: liveSharing,
  });
  const devices = state.devices;
  for (let i = 0; i < devices.length; i++) {
    if (devices.srpIdHeld(i) === srpId && !devices.cutOff[i]) {
      const pin = pinOf(i);
      d.emit('DeviceCutOff', pin, { device: pin, user: userIdOf(i), srpId });
      if (!devices.settled[i]) {
        d.emit('DeviceStranded', pin, { device: pin, user: userIdOf(i), reason: 'srpDisabled' });
      }
    }
  }
}

function moveUser(d: Decider, user: number, to: string): void {
  const { state } = d;
  const from = state.userInstance[user]!;
  const ids = { user: userIdOf(user), device: pinOf(user), from, to };
  d.emit('UserMoveRequested', ids.user, { ...ids, phase: state.phases.length });
  const problem = state.accountProblems.get(user);
  if (problem) {
    d.emit('UserMoveFailed', ids.user, { ...ids, reason: problem });
    d.emit('DeviceStranded', ids.device, { device: ids.device, user: ids.user, reason: 'migrationFailed' });
  } else {
    d.emit('UserMoved', ids.user, ids);
  }
}

/** The next poll of the mailbox-move detector at or after now (polls run from time 0). */
function scheduleDetection(d: Decider, user: number): void {
  const poll = d.scenario.domain.moveDetectionPoll;
  const at = poll > 0 ? Math.ceil(d.at / poll) * poll : d.at;
  d.schedulePacked(at, DETECT_MOVE, user);
}

function queueJob(
  d: Decider,
  user: number,
  instance: string,
  kinds: readonly PushKind[],
  cause: EventData['JobQueued']['cause'],
  bypassThrottle: boolean,
): number {
  const { state, scenario } = d;
  const rng = d.deviceRng(user);
  const job = state.jobs.count;
  const firstPush = state.pushes.count;
  // A loop rather than kinds.map: no closure per job (a burst queues 100,000 in one command).
  const pushes: QueuedPush[] = [];
  for (let i = 0; i < kinds.length; i++) {
    const kind = kinds[i]!;
    pushes.push({ push: firstPush + i, kind, bytes: Math.round(sample(scenario.pushes[kind], rng)) });
  }
  const service = instanceNamed(state, instance).service;
  const wasIdle = service.planTimer === null;
  d.emit('JobQueued', JOB_KEYS.of(job), {
    job,
    user: userIdOf(user),
    device: pinOf(user),
    instance,
    pushes,
    bypassThrottle,
    cause,
  });
  if (!bypassThrottle && wasIdle) {
    d.schedule(service.planTimer!, { type: 'PlanMinute', instance, due: service.planTimer! });
  }
  return job;
}

function dispatchJob(d: Decider, job: number, fromDeferredSlot: boolean): void {
  const { state, scenario } = d;
  const jobs = state.jobs;
  d.emit('JobDispatched', JOB_KEYS.of(job), {
    job,
    instance: state.instances[jobs.instance[job]!]!.id,
    queuedAt: jobs.queuedAt[job]!,
    fromDeferredSlot,
  });
  // The server prepares a job's pushes one after another.
  const rng = d.deviceRng(jobs.user[job]!);
  let ready = d.at;
  const end = jobs.firstPush[job]! + jobs.pushCount[job]!;
  for (let push = jobs.firstPush[job]!; push < end; push++) {
    ready += sample(scenario.engine.serverProcessing, rng);
    d.schedulePacked(ready, REACH_RELAY, push);
  }
}

/** Wireless transfer: one round trip per 64 KB packet (D: packets are capped at 64 KB) plus serialisation time. */
export function transferMs(bytes: number, bandwidthKbps: number, rttMs: number): number {
  const packets = Math.max(1, Math.ceil(bytes / 65_536));
  return packets * rttMs + (bytes * 8) / bandwidthKbps;
}

function deliver(d: Decider, push: number): void {
  const pushes = d.state.pushes;
  const figures = d.state.fleet.figures;
  const device = pushes.device[push]!;
  const pin = pinOf(device);
  const rttMs = figures.rttMs[device]!;
  // The acknowledgement travels back over the same link: half a round trip.
  const ackAt = Math.ceil(
    d.at + transferMs(pushes.bytes[push]!, figures.bandwidthKbps[device]!, rttMs) + rttMs / 2,
  );
  d.emit('PushDelivered', pin, { push, device: pin, ackAt });
  d.schedulePacked(ackAt, ACKNOWLEDGE, push);
}

function acknowledge(d: Decider, push: number, via: 'wireless' | 'cradle'): void {
  const { state } = d;
  const pushes = state.pushes;
  const device = pushes.device[push]!;
  const pin = pinOf(device);
  const kind = pushes.kindOf(push);
  d.emit('PushAcknowledged', pin, {
    push,
    device: pin,
    kind,
    queuedAt: pushes.queuedAt[push]!,
    via,
  });
  if (kind === 'serviceBooks') {
    // New service books carry the instance's SRP id: from now on the device uses it.
    const held = state.devices.srpIdHeld(device);
    const srpId = state.instances[state.jobs.instance[pushes.job[push]!]!]!.srpId;
    if (held !== srpId) d.emit('DeviceSrpChanged', pin, { device: pin, from: held, to: srpId });
  }
}

function retryOrExpire(d: Decider, push: number, reason: EventData['PushRetryScheduled']['reason']): void {
  const { scenario } = d;
  const pushes = d.state.pushes;
  const device = pushes.device[push]!;
  const pin = pinOf(device);
  const expireAt = pushes.firstDispatchAt[push]! + scenario.engine.pushExpiry;
  if (d.at >= expireAt) {
    // The relay gave it back after the server had already given up on it: it expires now.
    d.emit('PushExpired', pin, {
      push,
      device: pin,
      kind: pushes.kindOf(push),
      queuedAt: pushes.queuedAt[push]!,
    });
    afterRelease(d, push);
    return;
  }
  const retryAt = Math.min(d.at + scenario.engine.resendInterval, expireAt);
  d.emit('PushRetryScheduled', pin, { push, device: pin, retryAt, reason });
  d.schedulePacked(retryAt, RESEND, push);
  if (reason === 'deviceCutOff' && !d.state.devices.stranded[device]) {
    d.emit('DeviceStranded', pin, { device: pin, user: userIdOf(device), reason: 'srpDisabled' });
  }
  afterRelease(d, push);
}

/** After a push leaves the Policy Service's hands: complete its job, maybe settle its device. */
function afterRelease(d: Decider, push: number): void {
  const { state } = d;
  const jobs = state.jobs;
  const pushes = state.pushes;
  const job = pushes.job[push]!;
  if (jobs.open[job] === 0 && !jobs.completed[job]) {
    let parked = 0;
    const end = jobs.firstPush[job]! + jobs.pushCount[job]!;
    for (let p = jobs.firstPush[job]!; p < end; p++) {
      const s = pushes.status[p];
      if (s === HELD_AT_RELAY || s === AWAITING_RETRY || s === AWAITING_CRADLE) parked++;
    }
    const instance = state.instances[jobs.instance[job]!]!;
    d.emit('JobCompleted', JOB_KEYS.of(job), { job, instance: instance.id, parked });
    if (!jobs.bypass[job] && instance.service.deferredSlots > 0)
      d.schedulePacked(d.at, DISPATCH_SLOT, jobs.instance[job]! * 2 + 1);
  }
  settleDevice(d, pushes.device[push]!);
}

/** A device with nothing left in flight has converged (all acknowledged) or is stranded. */
function settleDevice(d: Decider, device: number): void {
  const devices = d.state.devices;
  const since = devices.since[device]!;
  if (since === NONE) return;
  const pin = pinOf(device);
  const user = userIdOf(device);
  const open = devices.open[device]!;
  if (open === 0) {
    if (devices.expired[device] === 0 && !devices.cutOff[device]) {
      d.emit('DeviceConverged', pin, { device: pin, user, since });
      const requestedAt = devices.activationRequestedAt[device]!;
      if (requestedAt !== NONE) {
        d.emit('ActivationCompleted', user, { user, device: pin, requestedAt });
      }
    } else if (!devices.stranded[device]) {
      d.emit('DeviceStranded', pin, {
        device: pin,
        user,
        reason: devices.cutOff[device] ? 'srpDisabled' : 'expired',
      });
    }
  } else if (!devices.stranded[device] && open === devices.awaitingCradle[device]) {
    d.emit('DeviceStranded', pin, { device: pin, user, reason: 'needsCradle' });
  }
  checkPhaseConverged(d, devices.phase[device]!);
}

function checkPhaseConverged(d: Decider, phaseNumber: number): void {
  const phase = d.state.phases[phaseNumber - 1];
  if (!phase || phase.convergedEmitted) return;
  const plan = d.state.plan;
  const share = plan.kind === 'phased' && plan.gate?.kind === 'converged' ? plan.gate.share : 1;
  if (phase.settled < Math.ceil(share * phase.movable)) return;
  if (
    plan.kind === 'activationStorm' &&
    phase.movable < Math.min(plan.activations, d.state.fleet.users.length)
  ) {
    return; // more activations are still to arrive
  }
  if (
    plan.kind === 'commanded' &&
    phaseNumber === d.state.phases.length &&
    d.state.commanded!.moves < plan.moves
  ) {
    return; // the newest phase may still be commanded more moves
  }
  d.emit('PhaseConverged', `phase-${phase.phase}`, {
    phase: phase.phase,
    // A commanded phase learns its size as its moves arrive.
    users: plan.kind === 'commanded' ? phase.movable : phase.users,
    converged: phase.converged,
    stranded: phase.stranded,
    startedAt: phase.startedAt,
  });
}

/** D: service books and data need 4.0+ over the air; IT policy needs 3.6+ (Java devices). */
export function needsCradle(softwareVersion: number, kind: PushKind): boolean {
  if (kind === 'itPolicy') return softwareVersion < 3.6;
  if (kind === 'serviceBooks' || kind === 'dataSync') return softwareVersion < 4;
  return false;
}

function strandedReason(state: EngineState, device: number): StrandedReason {
  const devices = state.devices;
  if (devices.cutOff[device]) return 'srpDisabled';
  if (devices.awaitingCradle[device]! > 0) return 'needsCradle';
  if (devices.relayHeld[device]! > 0) return 'outOfCoverage';
  const pushes = state.pushes;
  for (let p = devices.firstPush[device]!; p !== -1; p = pushes.nextOfDevice[p]!) {
    if (pushes.status[p] === AWAITING_RETRY) return 'outOfCoverage';
  }
  return 'pendingAtHorizon';
}

/** p95 latency of the acknowledgements since `since`, or null when there were none. */
function recentP95(state: EngineState, since: number): number | null {
  const acks = state.acks!;
  let lo = 0;
  let hi = acks.at.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (acks.at[mid]! < since) lo = mid + 1;
    else hi = mid;
  }
  const window = acks.latencyMs.slice(lo).sort((a, b) => a - b);
  if (window.length === 0) return null;
  return window[Math.min(window.length - 1, Math.floor(0.95 * window.length))]!;
}

function distinct(values: readonly string[]): string[] {
  return [...new Set(values)];
}
