import type { Distribution, Scenario } from '../scenario/schema.ts';
import { mean, pickIndex, sample } from './distributions.ts';
import type { AccountProblem } from './events.ts';
import type { RandomSource, StreamTable } from './random.ts';

export interface User {
  index: number;
  id: string;
  mailbox: string;
  smtpAddress: string;
  /** False when the account's configuration-database record is missing (an orphaned account). */
  hasConfigRecord: boolean;
  instance: string;
  itPolicy: string;
}

export interface Device {
  index: number;
  pin: string;
  user: number;
  softwareVersion: number;
  /** The SRP id the device currently holds (from its last service books). */
  srpId: string;
  bandwidthKbps: number;
  rttMs: number;
  linkProfile: string;
  wirelessBackup: boolean;
  /** Null for devices that never leave coverage. */
  coverage: CoverageTimeline | null;
  /** How long after it first needs one the user re-cradles the device. */
  recradleDelayMs: number;
}

export interface Fleet {
  users: User[];
  devices: Device[];
  /** Users per instance id, in scenario order. */
  instanceUsers: Map<string, number[]>;
  /** Accounts the generator deliberately damaged: the ground truth preview must find. */
  plantedProblems: Map<number, AccountProblem>;
  /** The devices' figures the engine reads for every push, by device index. */
  figures: DeviceFigures;
}

/**
 * The same values as the device objects' fields, one typed array per field, written as the
 * devices are made. A run first touches most devices when their push reaches the relay, in
 * dispatch order (one stream per instance); read from the objects, each touch missed the cache
 * for the object and for each boxed number in it, where a typed array holds eight devices to a line.
 */
export interface DeviceFigures {
  softwareVersion: Float64Array;
  bandwidthKbps: Float64Array;
  rttMs: Float64Array;
  /** 1 for a device that leaves coverage now and then (it has a coverage timeline). */
  roams: Uint8Array;
  /** Each device's coverage timeline (null for one always in coverage), the object's own. */
  coverage: Array<CoverageTimeline | null>;
}

const PROBLEMS: readonly AccountProblem[] = [
  'mailboxNotFound',
  'duplicateSmtpAddress',
  'orphanedConfigRecord',
];

// Ids are memoised: the engine names devices and users in almost every event it emits.
const pins: string[] = [];
const userIds: string[] = [];

/** The device PIN for user index i: 8 hex digits, as BlackBerry PINs are. */
export function pinOf(index: number): string {
  let pin = pins[index];
  if (pin === undefined) pins[index] = pin = (0x20000000 + index).toString(16).toUpperCase();
  return pin;
}

export function userIdOf(index: number): string {
  let id = userIds[index];
  if (id === undefined) userIds[index] = id = `u${String(index).padStart(6, '0')}`;
  return id;
}

/** The index pinOf was given: parsed digit by digit, as this runs for most events of a replay. */
export function deviceIndexOf(pin: string): number {
  let value = 0;
  for (let i = 0; i < pin.length; i++) {
    const c = pin.charCodeAt(i);
    // 0-9, A-F, a-f
    value = value * 16 + (c <= 57 ? c - 48 : (c | 32) - 87);
  }
  return value - 0x20000000;
}

/** The index userIdOf was given. */
export function userIndexOf(userId: string): number {
  let value = 0;
  for (let i = 1; i < userId.length; i++) value = value * 10 + (userId.charCodeAt(i) - 48);
  return value;
}

/**
 * Generates users and devices from the scenario's fleet spec. Each user draws from its own
 * stream, so user i is the same in every plan and does not depend on how many users follow it.
 */
export function generateFleet(scenario: Scenario, random: RandomSource): Fleet {
  const spec = scenario.fleet;
  const instances = scenario.domain.instances;
  const counts = usersPerInstance(scenario);
  const versions = Object.keys(spec.softwareVersions);
  const versionWeights = Object.values(spec.softwareVersions);
  const linkWeights = spec.link.map((l) => l.share);
  const users: User[] = new Array(spec.users);
  const devices: Device[] = new Array(spec.users);
  const instanceUsers = new Map<string, number[]>();
  const plantedProblems = new Map<number, AccountProblem>();
  const figures: DeviceFigures = {
    softwareVersion: new Float64Array(spec.users),
    bandwidthKbps: new Float64Array(spec.users),
    rttMs: new Float64Array(spec.users),
    roams: new Uint8Array(spec.users),
    coverage: new Array(spec.users).fill(null),
  };
  // Devices' coverage streams (`device:<pin>:coverage`) in one table: a timeline draws from its
  // stream whenever the run reaches past its last flip, long after the fleet was generated.
  const coverageStreams = random.streams(spec.users, 'device:', pinOf, ':coverage');
  // Every PIN and user id first, each in a tight loop: a run reads them in device order (the PIN's
  // digits for the device's work stream and its DeviceConverged, the id's for its JobQueued), and
  // made one per device among the device's other objects, each sat on a cache line of its own.
  for (let i = 0; i < spec.users; i++) pinOf(i);
  for (let i = 0; i < spec.users; i++) userIdOf(i);

  let index = 0;
  instances.forEach((inst, k) => {
    const members: number[] = [];
    instanceUsers.set(inst.id, members);
    for (let n = 0; n < counts[k]!; n++, index++) {
      const rng = random.stream(`user:${index}`);
      const id = userIdOf(index);
      // One flat string for both fields, joined rather than concatenated: V8 keeps a concatenation
      // of 13 characters or more as a rope, which the account check's Set first copied into a
      // flat string to hash (some 20 ms of each run over 100,000 users, more than joining costs here).
      const address = [id, '@corp.example'].join('');
      const user: User = {
        index,
        id,
        mailbox: address,
        smtpAddress: address,
        hasConfigRecord: true,
        instance: inst.id,
        itPolicy: 'Default',
      };
      if (rng.next() < spec.problemAccountShare) {
        const problem = PROBLEMS[Math.floor(rng.next() * PROBLEMS.length)]!;
        if (problem === 'duplicateSmtpAddress' && index === 0) {
          user.mailbox = ''; // nobody before user 0 to collide with
          plantedProblems.set(index, 'mailboxNotFound');
        } else {
          plant(user, problem, users);
          plantedProblems.set(index, problem);
        }
      }
      const link = spec.link[pickIndex(linkWeights, spec.link.length, rng)]!;
      const software = Number(versions[pickIndex(versionWeights, versions.length, rng)]);
      const alwaysOnline = rng.next() < spec.coverage.alwaysOnlineShare;
      const device: Device = {
        index,
        pin: pinOf(index),
        user: index,
        softwareVersion: software,
        srpId: inst.srpId,
        bandwidthKbps: Math.max(1, sample(link.bandwidthKbps, rng)),
        rttMs: sample(link.rttMs, rng),
        linkProfile: link.name,
        wirelessBackup: rng.next() < spec.wirelessBackupShare,
        coverage: null,
        recradleDelayMs: sample(spec.recradleDelay, rng),
      };
      if (!alwaysOnline) {
        device.coverage = new CoverageTimeline(
          spec.coverage.online,
          spec.coverage.offline,
          coverageStreams,
          index,
        );
      }
      users[index] = user;
      devices[index] = device;
      figures.softwareVersion[index] = device.softwareVersion;
      figures.bandwidthKbps[index] = device.bandwidthKbps;
      figures.rttMs[index] = device.rttMs;
      figures.roams[index] = alwaysOnline ? 0 : 1;
      figures.coverage[index] = device.coverage;
      members.push(index);
    }
  });
  return { users, devices, instanceUsers, plantedProblems, figures };
}

function plant(user: User, problem: AccountProblem, earlier: User[]): void {
  switch (problem) {
    case 'mailboxNotFound':
      user.mailbox = '';
      return;
    case 'duplicateSmtpAddress':
      user.smtpAddress = earlier[user.index - 1]!.smtpAddress;
      return;
    case 'orphanedConfigRecord':
      user.hasConfigRecord = false;
      return;
  }
}

/** Users on each instance: explicit counts first, the rest spread evenly over the others. */
export function usersPerInstance(scenario: Scenario): number[] {
  const instances = scenario.domain.instances;
  const explicit = instances.reduce((n, i) => n + (i.users ?? 0), 0);
  const open = instances.filter((i) => i.users === undefined).length;
  const rest = scenario.fleet.users - explicit;
  let given = 0;
  let openSeen = 0;
  return instances.map((inst) => {
    if (inst.users !== undefined) return inst.users;
    openSeen++;
    const share = openSeen === open ? rest - given : Math.floor(rest / open);
    given += share;
    return share;
  });
}

/**
 * What the move tool's account check finds wrong with each account: the same function serves
 * preview and the real move, so preview predicts exactly the accounts a move will leave behind.
 */
export function findAccountProblems(users: readonly User[]): Map<number, AccountProblem> {
  const found = new Map<number, AccountProblem>();
  const seenSmtp = new Set<string>();
  for (const user of users) {
    // One hash lookup per account: the set grew iff the address was new.
    const seen = seenSmtp.size;
    seenSmtp.add(user.smtpAddress);
    const duplicate = seenSmtp.size === seen;
    if (user.mailbox === '') found.set(user.index, 'mailboxNotFound');
    else if (!user.hasConfigRecord) found.set(user.index, 'orphanedConfigRecord');
    else if (duplicate) found.set(user.index, 'duplicateSmtpAddress');
  }
  return found;
}

/**
 * A device's alternating in/out-of-coverage stretches, drawn lazily from the device's own
 * stream. The sequence of stretches is fixed by the stream, so asking about any time, in any
 * order, gives the same answer: it memoises a deterministic function, it is not mutable state.
 */
export class CoverageTimeline {
  /** Times at which coverage flips, ascending; before the first flip the device is `startsOnline`. */
  private readonly flips: number[] = [];
  private readonly startsOnline: boolean;

  /** `streams.at(device)` is the device's coverage stream. */
  constructor(
    private readonly online: Distribution,
    private readonly offline: Distribution,
    private readonly streams: StreamTable,
    private readonly device: number,
  ) {
    // Start in the stationary state: offline with probability meanOff / (meanOn + meanOff).
    const meanOn = mean(online);
    const meanOff = mean(offline);
    const rng = streams.at(device);
    this.startsOnline = rng.next() >= meanOff / (meanOn + meanOff);
    const first = sample(this.startsOnline ? online : offline, rng) * rng.next();
    this.flips.push(first);
  }

  isOnline(at: number): boolean {
    this.extendPast(at);
    const flipsSoFar = upperBound(this.flips, at);
    return (flipsSoFar % 2 === 0) === this.startsOnline;
  }

  /** The first instant >= `at` at which the device is in coverage. */
  nextOnlineAt(at: number): number {
    if (this.isOnline(at)) return at;
    return this.flips[upperBound(this.flips, at)]!;
  }

  private extendPast(at: number): void {
    while (this.flips[this.flips.length - 1]! <= at) {
      const onlineNext = (this.flips.length % 2 === 0) === this.startsOnline;
      const stretch = Math.max(
        1,
        sample(onlineNext ? this.online : this.offline, this.streams.at(this.device)),
      );
      this.flips.push(this.flips[this.flips.length - 1]! + stretch);
    }
  }
}

/** Number of entries <= value in an ascending array. */
function upperBound(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]! <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
