/**
 * Every fact of a run, one versioned schema. Events are past tense; `at` is milliseconds since
 * the run started (virtual time in simulation, scaled wall time live). `key` is the entity the
 * fact is about (a user, device, push, job, instance or phase id) and is the Kafka message key.
 */

export const EVENT_SCHEMA_VERSION = 1;

export type PushKind = 'itPolicy' | 'serviceBooks' | 'dataSync' | 'pinKey' | 'activation';
export const PUSH_KINDS: readonly PushKind[] = [
  'itPolicy',
  'serviceBooks',
  'dataSync',
  'pinKey',
  'activation',
];

/** Why a user cannot be (or was not) brought onto the target. */
export type StrandedReason =
  | 'migrationFailed'
  | 'needsCradle'
  | 'srpDisabled'
  | 'softwareTooOld'
  | 'expired'
  | 'outOfCoverage'
  | 'activationFailed'
  | 'pendingAtHorizon';

export type AccountProblem = 'mailboxNotFound' | 'duplicateSmtpAddress' | 'orphanedConfigRecord';

export interface QueuedPush {
  push: number;
  kind: PushKind;
  bytes: number;
}

export interface InstanceInfo {
  id: string;
  srpId: string;
  users: number;
}

/** Payloads by event type. */
export interface EventData {
  RunStarted: {
    scenario: string;
    plan: string;
    planKind: string;
    seed: number;
    horizonMs: number;
    /** The resolved plan (durations in ms), so a log alone says what was run. */
    planSpec: unknown;
    throttle: {
      inProcessJobs: number | null;
      jobsPerMinutePerService: number | null;
      jobsPerMinuteDomain: number | null;
    };
    slos: { makespan?: number; p95Delivery?: number; peakQueue?: number; strandedShare?: number };
  };
  FleetProvisioned: {
    users: number;
    devices: number;
    instances: InstanceInfo[];
    softwareVersions: Record<string, number>;
    problemAccounts: number;
    alwaysOnline: number;
  };
  InstanceProvisioned: { instance: string; srpId: string; newServer: boolean };
  InstanceDecommissioned: { instance: string; srpId: string };
  ServiceStopped: { instances: string[]; users: number };
  ServiceResumed: { instances: string[]; users: number };
  PhaseStarted: { phase: number; users: number; into: string[] };
  PhaseConverged: { phase: number; users: number; converged: number; stranded: number; startedAt: number };
  UserMoveRequested: { user: string; device: string; from: string; to: string; phase: number };
  UserMoved: { user: string; device: string; from: string; to: string };
  UserMoveFailed: { user: string; device: string; from: string; to: string; reason: AccountProblem };
  ItPolicyChanged: { instances: string[]; users: number };
  ActivationRequested: { user: string; device: string; instance: string };
  ActivationStarted: { user: string; device: string; instance: string };
  ActivationCompleted: { user: string; device: string; requestedAt: number };
  ActivationFailed: { user: string; device: string; reason: 'passwordExpired' | 'softwareTooOld' };
  JobQueued: {
    job: number;
    user: string;
    device: string;
    instance: string;
    pushes: QueuedPush[];
    /** Activation and administrator resends bypass the Policy Service throttle (D). */
    bypassThrottle: boolean;
    cause: 'move' | 'itPolicy' | 'activation';
  };
  ThrottleMinutePlanned: {
    instance: string;
    minute: number;
    jobs: number;
    queued: number;
    inProcess: number;
  };
  JobDispatched: { job: number; instance: string; queuedAt: number; fromDeferredSlot: boolean };
  /** A planned slot could not start a job: in-process limit reached, or a 60 s window is full until retryAt. */
  DispatchDeferred: { instance: string; reason: 'inProcess' | 'window'; retryAt: number | null };
  /** value: the measured backlog, settled count or p95 (ms); -1 when a p95 window held no acknowledgement. */
  GateChecked: { phase: number; passed: boolean; value: number };
  JobCompleted: { job: number; instance: string; parked: number };
  PushHeldAtRelay: { push: number; device: string; heldItems: number; deliverAt: number | null };
  PushRetryScheduled: {
    push: number;
    device: string;
    retryAt: number;
    reason: 'relayFull' | 'relayExpired' | 'deviceCutOff';
  };
  PushResent: { push: number; device: string; attempt: number };
  PushAwaitingCradle: { push: number; device: string; kind: PushKind; cradleAt: number };
  /** The push reached the device; its acknowledgement reaches the server at ackAt. */
  PushDelivered: { push: number; device: string; ackAt: number };
  PushAcknowledged: {
    push: number;
    device: string;
    kind: PushKind;
    queuedAt: number;
    via: 'wireless' | 'cradle';
  };
  PushExpired: { push: number; device: string; kind: PushKind; queuedAt: number };
  DeviceCoverageChanged: { device: string; online: boolean };
  DeviceSrpChanged: { device: string; from: string; to: string };
  DeviceCradled: { device: string; user: string };
  DeviceConverged: { device: string; user: string; since: number };
  /** The device cannot converge wirelessly for now: counted as stranded (it may still converge later). */
  DeviceStranded: { device: string; user: string; reason: StrandedReason };
  SrpConflictDetected: { srpId: string; instance: string; devicesHolding: number; heldBy: string[] };
  DeviceCutOff: { device: string; user: string; srpId: string };
  RunCompleted: { pendingPushes: number; reason: 'drained' | 'horizon' };
}

export type EventType = keyof EventData;

/** A domain event before it is stored: what decide returns. */
export type DomainEvent = {
  [T in EventType]: { type: T; key: string; at: number; data: EventData[T] };
}[EventType];

export type EventOf<T extends EventType> = Extract<DomainEvent, { type: T }>;

/** A stored event: the domain event plus its envelope. `id` is unique across runs. */
export type StoredEvent = DomainEvent & {
  v: number;
  run: string;
  seq: number;
  id: string;
};

export const EVENT_TYPES: readonly EventType[] = [
  'RunStarted',
  'FleetProvisioned',
  'InstanceProvisioned',
  'InstanceDecommissioned',
  'ServiceStopped',
  'ServiceResumed',
  'PhaseStarted',
  'PhaseConverged',
  'UserMoveRequested',
  'UserMoved',
  'UserMoveFailed',
  'ItPolicyChanged',
  'ActivationRequested',
  'ActivationStarted',
  'ActivationCompleted',
  'ActivationFailed',
  'JobQueued',
  'ThrottleMinutePlanned',
  'JobDispatched',
  'DispatchDeferred',
  'GateChecked',
  'JobCompleted',
  'PushHeldAtRelay',
  'PushRetryScheduled',
  'PushResent',
  'PushAwaitingCradle',
  'PushDelivered',
  'PushAcknowledged',
  'PushExpired',
  'DeviceCoverageChanged',
  'DeviceSrpChanged',
  'DeviceCradled',
  'DeviceConverged',
  'DeviceStranded',
  'SrpConflictDetected',
  'DeviceCutOff',
  'RunCompleted',
];

export function event<T extends EventType>(type: T, key: string, at: number, data: EventData[T]): EventOf<T> {
  return { type, key, at, data } as EventOf<T>;
}
