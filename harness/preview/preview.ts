/**
 * Preview (the `besmigration -p` idea): what a plan would run into, found without running the
 * simulation or pushing anything. Per plan:
 *   - the accounts the move tool's check rejects (the same `findAccountProblems` the move uses, so
 *     preview names exactly the users a real move leaves behind);
 *   - SRP reuse conflicts: a new instance given an SRP id that devices hold at the start (the relay
 *     would disable it and every device on it would stop communicating);
 *   - devices whose software cannot take the plan's pushes over the air and must be cradled
 *     (or, for an activation storm, cannot activate wirelessly);
 *   - a lower bound on the makespan from the schedule, the move detector's poll and throttle
 *     arithmetic, and the servers and SRP credentials the plan adds.
 *
 * The new-instance and batch arithmetic mirrors the engine's (`assignTargets`, `StartPhase`,
 * `scheduleActivations`); the tests hold the two together by running plans and comparing.
 */
import { minimum } from '../domain/distributions.ts';
import { needsCradle, sourceInstances } from '../domain/engine.ts';
import type { AccountProblem, PushKind } from '../domain/events.ts';
import { type Fleet, findAccountProblems, generateFleet, userIdOf } from '../domain/fleet.ts';
import { MINUTE_MS, throttleLowerBoundMs } from '../domain/throttle.ts';
import type { Plan, Scenario, Throttle } from '../scenario/schema.ts';
import { SeededRandom } from '../sim/random.ts';

export interface ProblemAccount {
  user: string;
  instance: string;
  reason: AccountProblem;
}

export interface SrpReuseConflict {
  /** The new instance that would be provisioned with the reused SRP id. */
  instance: string;
  srpId: string;
  /** Devices holding the SRP id at the start. */
  devicesHolding: number;
  /** Instances already using the SRP id (existing ones, or new ones the plan provisions earlier). */
  heldBy: string[];
}

/** Devices of one software version that cannot take some of the plan's work over the air. */
export interface CradleGroup {
  softwareVersion: number;
  devices: number;
  /** What they cannot take wirelessly: push kinds, or `activation` (wireless enterprise activation). */
  cannotTake: PushKind[];
}

export interface NewInstancePreview {
  id: string;
  srpId: string;
  /** Users the plan assigns to it (including accounts whose move will fail). */
  users: number;
}

/**
 * The makespan cannot be shorter than `makespanMs` = `scheduleMs` + `detectionMs` + `throttleMs`:
 * the jobs of the binding batch (and every later one) cannot be queued before the schedule and
 * the detector allow, and then cannot start faster than the throttles let them.
 */
export interface DurationBound {
  makespanMs: number;
  /** From the plan's start until the binding batch starts: stop window, or (phase - 1) x interval. */
  scheduleMs: number;
  /** Until the Policy Service notices the batch: the mailbox-move poll or the policy detection delay. */
  detectionMs: number;
  /** Throttle arithmetic for the jobs of the binding batch and every later one. */
  throttleMs: number;
  /** The batch (phase) that binds, 1-based; 0 when the plan has no throttled work. */
  bindingPhase: number;
  phases: number;
  /** Throttled jobs per Policy Service over the whole plan (activations bypass the throttle). */
  jobsByService: Record<string, number>;
  /** What the bound leaves out, in words. */
  note: string;
}

export interface PlanPreview {
  plan: string;
  kind: Plan['kind'];
  description: string;
  /** Instances the plan moves users out of (or pushes a policy to). */
  sources: string[];
  /** An existing instance id, 'new instances', or null for plans that move nobody. */
  target: string | null;
  /** Users the plan touches: moves, policy pushes or activations. */
  users: number;
  /** Null when the plan moves nobody (the account check only runs on a move). */
  problemAccounts: {
    total: number;
    byReason: Partial<Record<AccountProblem, number>>;
    accounts: ProblemAccount[];
  } | null;
  srpConflicts: SrpReuseConflict[];
  cradle: {
    /** 'recradle' for moves and policy changes, 'wiredActivation' for activation storms. */
    need: 'recradle' | 'wiredActivation';
    devices: number;
    byVersion: CradleGroup[];
  };
  newInstances: NewInstancePreview[];
  servers: { added: number };
  srpCredentials: { added: number };
  lowerBound: DurationBound;
}

export interface ScenarioPreview {
  schema: 'phasebench.preview/1';
  scenario: string;
  seed: number;
  users: number;
  throttle: Scenario['domain']['throttle'];
  plans: PlanPreview[];
  /** SRP reuse conflicts over every previewed plan. */
  srpConflicts: number;
}

export interface PreviewOptions {
  /** Plans to preview; default every plan of the scenario. */
  plans?: string[];
  /** The fleet, when the caller already generated it; default generated from the scenario's seed. */
  fleet?: Fleet;
}

export function previewScenario(scenario: Scenario, options: PreviewOptions = {}): ScenarioPreview {
  const plans = options.plans ?? Object.keys(scenario.plans);
  for (const plan of plans) {
    if (!(plan in scenario.plans)) {
      throw new Error(
        `scenario ${scenario.name} has no plan named '${plan}' (plans: ${Object.keys(scenario.plans).join(', ')})`,
      );
    }
  }
  // The same generator and seed as a run, so preview sees the very fleet a run would.
  const fleet = options.fleet ?? generateFleet(scenario, new SeededRandom(scenario.seed));
  const problems = findAccountProblems(fleet.users);
  const previews = plans.map((plan) => previewPlanWith(scenario, plan, fleet, problems));
  return {
    schema: 'phasebench.preview/1',
    scenario: scenario.name,
    seed: scenario.seed,
    users: fleet.users.length,
    throttle: scenario.domain.throttle,
    plans: previews,
    srpConflicts: previews.reduce((n, p) => n + p.srpConflicts.length, 0),
  };
}

export function previewPlan(scenario: Scenario, planName: string, fleet: Fleet): PlanPreview {
  return previewPlanWith(scenario, planName, fleet, findAccountProblems(fleet.users));
}

type MovePlan = Extract<Plan, { kind: 'collapse' | 'bigBang' | 'phased' }>;

function previewPlanWith(
  scenario: Scenario,
  planName: string,
  fleet: Fleet,
  problems: ReadonlyMap<number, AccountProblem>,
): PlanPreview {
  const plan = scenario.plans[planName];
  if (!plan) throw new Error(`no plan named ${planName}`);
  const sources = sourceInstances(scenario, plan);
  const base = { plan: planName, kind: plan.kind, description: plan.description ?? '', sources };
  switch (plan.kind) {
    case 'collapse':
    case 'bigBang':
    case 'phased':
      return { ...base, ...previewMove(scenario, plan, fleet, problems, sources) };
    case 'itPolicyChange':
      return { ...base, ...previewPolicyChange(scenario, fleet, sources) };
    case 'activationStorm':
      return { ...base, ...previewActivations(plan, fleet) };
    case 'commanded':
      return { ...base, ...previewCommanded(plan, fleet) };
  }
}

type PlanFindings = Omit<PlanPreview, 'plan' | 'kind' | 'description' | 'sources'>;

function previewMove(
  scenario: Scenario,
  plan: MovePlan,
  fleet: Fleet,
  problems: ReadonlyMap<number, AccountProblem>,
  sources: readonly string[],
): PlanFindings {
  const moveOrder = sources.flatMap((id) => fleet.instanceUsers.get(id) ?? []);
  const batchSize = plan.kind === 'phased' ? plan.size : Math.max(1, moveOrder.length);
  const batches: number[][] = [];
  for (let i = 0; i < moveOrder.length; i += batchSize) batches.push(moveOrder.slice(i, i + batchSize));

  const accounts: ProblemAccount[] = [];
  const byReason: Partial<Record<AccountProblem, number>> = {};
  for (const user of moveOrder) {
    const reason = problems.get(user);
    if (!reason) continue;
    accounts.push({ user: userIdOf(user), instance: fleet.users[user]!.instance, reason });
    byReason[reason] = (byReason[reason] ?? 0) + 1;
  }

  const placement = placeUsers(scenario, plan, batches, problems);
  const srpConflicts = findSrpConflicts(scenario, fleet, placement.newInstances);
  const initialSrp = new Set(scenario.domain.instances.map((i) => i.srpId));
  const newSrp = new Set(placement.newInstances.map((i) => i.srpId).filter((id) => !initialSrp.has(id)));

  // Accounts that fail stay where they are and get no pushes.
  const moved = moveOrder.filter((user) => !problems.has(user));
  const cradle = cradleGroups(fleet, moved, (version) =>
    (version >= 4 ? MOVE_PUSHES_4 : MOVE_PUSHES).filter((kind) => needsCradle(version, kind)),
  );

  // Batch k starts at (k - 1) x spacing after the plan starts; a collapse's moves wait for the stop window.
  const poll = scenario.domain.moveDetectionPoll;
  const spacing = plan.kind === 'phased' ? (plan.every ?? plan.gateCheckEvery) : 0;
  const scheduled = batches.map((_, k) => {
    const startAt = plan.at + k * spacing;
    const movedAt = plan.kind === 'phased' ? startAt : plan.at + plan.stopWindow;
    const queuedAt = poll > 0 ? Math.ceil(movedAt / poll) * poll : movedAt;
    return { scheduleMs: movedAt - plan.at, detectionMs: queuedAt - movedAt, startMs: startAt - plan.at };
  });
  const lowerBound = boundOver(scenario, scheduled, placement.jobsByBatch, batches.length, moveNote(plan));
  return {
    target: typeof plan.into === 'string' ? plan.into : 'new instances',
    users: moveOrder.length,
    problemAccounts: { total: accounts.length, byReason, accounts },
    srpConflicts,
    cradle,
    newInstances: placement.newInstances,
    servers: { added: placement.newInstances.length },
    srpCredentials: { added: newSrp.size },
    lowerBound,
  };
}

// D: a moved user gets new service books and IT policy; 4.0+ devices also a wireless data sync.
const MOVE_PUSHES: readonly PushKind[] = ['itPolicy', 'serviceBooks'];
const MOVE_PUSHES_4: readonly PushKind[] = ['itPolicy', 'serviceBooks', 'dataSync'];

function moveNote(plan: MovePlan): string {
  if (plan.kind !== 'phased')
    return 'stop window, move detection and throttle; push transfer time not included';
  if (plan.gate && plan.every === undefined)
    return 'gated phases: assumes every gate passes at its first check (one check interval apart)';
  if (plan.gate) return 'gated phases: assumes every gate passes at its first check';
  return 'fixed phases, move detection and throttle; push transfer time not included';
}

interface Placement {
  newInstances: NewInstancePreview[];
  /** Per batch: throttled jobs per target instance (successful moves only). */
  jobsByBatch: Array<Map<string, number>>;
}

/**
 * Target instance per moved user, batch by batch, as the engine assigns them: an existing
 * instance, or new instances filled to `usersPerInstance` in order, where a later batch first
 * fills the room the accounts that actually moved left on the last instance.
 */
function placeUsers(
  scenario: Scenario,
  plan: MovePlan,
  batches: readonly number[][],
  problems: ReadonlyMap<number, AccountProblem>,
): Placement {
  const jobsByBatch = batches.map(() => new Map<string, number>());
  if (typeof plan.into === 'string') {
    const into = plan.into;
    batches.forEach((batch, b) => {
      const jobs = batch.filter((user) => !problems.has(user)).length;
      if (jobs > 0) jobsByBatch[b]!.set(into, jobs);
    });
    return { newInstances: [], jobsByBatch };
  }
  const spec = plan.into.newInstances;
  const capacity = scenario.domain.usersPerInstance;
  const newInstances: NewInstancePreview[] = [];
  let movedOntoCurrent = 0;
  batches.forEach((batch, b) => {
    let room = newInstances.length > 0 ? capacity - movedOntoCurrent : 0;
    for (const user of batch) {
      if (room <= 0) {
        const k = newInstances.length + 1;
        newInstances.push({
          id: spec.instances?.[k - 1]?.id ?? `${spec.idPrefix}${String(k).padStart(2, '0')}`,
          srpId: spec.instances?.[k - 1]?.srpId ?? String(spec.srpIdBase + k),
          users: 0,
        });
        movedOntoCurrent = 0;
        room = capacity;
      }
      const current = newInstances[newInstances.length - 1]!;
      current.users++;
      room--;
      if (!problems.has(user)) {
        movedOntoCurrent++;
        const jobs = jobsByBatch[b]!;
        jobs.set(current.id, (jobs.get(current.id) ?? 0) + 1);
      }
    }
  });
  return { newInstances, jobsByBatch };
}

/**
 * A new instance whose SRP id devices hold at the start, or that another instance (existing, or
 * provisioned earlier by the same plan) already uses: two servers on one SRP id.
 */
function findSrpConflicts(
  scenario: Scenario,
  fleet: Fleet,
  newInstances: readonly NewInstancePreview[],
): SrpReuseConflict[] {
  const holders = new Map<string, number>();
  for (const device of fleet.devices) holders.set(device.srpId, (holders.get(device.srpId) ?? 0) + 1);
  const users = new Map<string, string[]>();
  for (const inst of scenario.domain.instances)
    users.set(inst.srpId, [...(users.get(inst.srpId) ?? []), inst.id]);
  const conflicts: SrpReuseConflict[] = [];
  for (const inst of newInstances) {
    const devicesHolding = holders.get(inst.srpId) ?? 0;
    const heldBy = users.get(inst.srpId) ?? [];
    if (devicesHolding > 0 || heldBy.length > 0) {
      conflicts.push({ instance: inst.id, srpId: inst.srpId, devicesHolding, heldBy });
    }
    users.set(inst.srpId, [...heldBy, inst.id]);
  }
  return conflicts;
}

function previewPolicyChange(scenario: Scenario, fleet: Fleet, sources: readonly string[]): PlanFindings {
  const jobs = new Map<string, number>();
  const users: number[] = [];
  for (const id of sources) {
    const members = fleet.instanceUsers.get(id) ?? [];
    users.push(...members);
    if (members.length > 0) jobs.set(id, members.length);
  }
  const cradle = cradleGroups(fleet, users, (version) =>
    needsCradle(version, 'itPolicy') ? ['itPolicy'] : [],
  );
  const detectionMs = minimum(scenario.domain.policyDetectionDelay);
  const lowerBound = boundOver(
    scenario,
    users.length > 0 ? [{ scheduleMs: 0, detectionMs, startMs: 0 }] : [],
    users.length > 0 ? [jobs] : [],
    users.length > 0 ? 1 : 0,
    'policy detection delay (its minimum) and throttle; push transfer time not included',
  );
  // Policy pushes skip the move tool: no account check, no new servers.
  return {
    target: null,
    users: users.length,
    problemAccounts: null,
    srpConflicts: [],
    cradle,
    newInstances: [],
    servers: { added: 0 },
    srpCredentials: { added: 0 },
    lowerBound,
  };
}

function previewActivations(plan: Extract<Plan, { kind: 'activationStorm' }>, fleet: Fleet): PlanFindings {
  const total = fleet.users.length;
  const n = Math.min(plan.activations, total);
  // The engine activates users spread evenly over the fleet: user floor(i * total / n) for i < n.
  const users = Array.from({ length: n }, (_, i) => Math.floor((i * total) / n));
  // D: wireless enterprise activation needs device software 4.0+.
  const cradle = cradleGroups(fleet, users, (version) => (version < 4 ? ['activation'] : []));
  // Evenly spaced arrivals: the last comes (n - 1) / n of the window after the first.
  const spreadMs = plan.arrivals === 'uniform' && n > 1 ? Math.floor(((n - 1) * plan.window) / n) : 0;
  return {
    target: null,
    users: n,
    problemAccounts: null,
    srpConflicts: [],
    cradle: { ...cradle, need: 'wiredActivation' },
    newInstances: [],
    servers: { added: 0 },
    srpCredentials: { added: 0 },
    lowerBound: {
      makespanMs: spreadMs,
      scheduleMs: spreadMs,
      detectionMs: 0,
      throttleMs: 0,
      bindingPhase: 0,
      phases: n > 0 ? 1 : 0,
      jobsByService: {},
      note:
        plan.arrivals === 'uniform'
          ? 'activations bypass the throttle: the bound is the arrival spread'
          : 'activations bypass the throttle and Poisson arrivals may bunch: no useful bound',
    },
  };
}

/** Which users a commanded plan moves, and where, is only known as the commands arrive. */
function previewCommanded(plan: Extract<Plan, { kind: 'commanded' }>, fleet: Fleet): PlanFindings {
  return {
    target: 'commanded',
    users: plan.moves,
    problemAccounts: null,
    srpConflicts: [],
    cradle: cradleGroups(fleet, [], () => []),
    newInstances: [],
    servers: { added: 0 },
    srpCredentials: { added: 0 },
    lowerBound: {
      makespanMs: 0,
      scheduleMs: 0,
      detectionMs: 0,
      throttleMs: 0,
      bindingPhase: 0,
      phases: 0,
      jobsByService: {},
      note: 'the moves arrive as commands (k6, the admin API): no bound before they are known',
    },
  };
}

function cradleGroups(
  fleet: Fleet,
  users: readonly number[],
  cannotTake: (softwareVersion: number) => PushKind[],
): PlanPreview['cradle'] {
  const byVersion = new Map<number, CradleGroup>();
  let devices = 0;
  for (const user of users) {
    const version = fleet.devices[user]!.softwareVersion;
    const kinds = cannotTake(version);
    if (kinds.length === 0) continue;
    devices++;
    const group = byVersion.get(version);
    if (group) group.devices++;
    else byVersion.set(version, { softwareVersion: version, devices: 1, cannotTake: kinds });
  }
  return {
    need: 'recradle',
    devices,
    byVersion: [...byVersion.values()].sort((a, b) => a.softwareVersion - b.softwareVersion),
  };
}

/**
 * The binding batch: jobs of batch k and later cannot be queued before batch k's schedule and
 * detection allow, and then need at least the throttle bound to start. A batch whose remaining
 * jobs are all failed moves still counts up to its start (the failures are server work then).
 */
/**
 * Throttle arithmetic for jobs queued at once, one Policy Service at a time: each spreads its own
 * minute's jobs evenly, at most min(per-service, domain) of them (`throttleLowerBoundMs` of that
 * service alone). Across services only the sliding window holds: the (kD + 1)-th job of the domain
 * starts at least k minutes after the first. `throttleLowerBoundMs` over every service at once would
 * claim (total - 1) / D minutes, but services do not coordinate (D): each starts its share of the
 * domain budget at the same offsets within its minute, so jobs bunch and finish up to (services - 1)
 * / D minutes sooner than that.
 * Whole milliseconds, as virtual time is: rounding cannot lift the bound above an integer makespan.
 */
function throttleBoundMs(jobsByService: readonly number[], throttle: Throttle): number {
  let bound = 0;
  for (const jobs of jobsByService) bound = Math.max(bound, throttleLowerBoundMs([jobs], throttle));
  const total = jobsByService.reduce((a, b) => a + b, 0);
  const domain = throttle.jobsPerMinuteDomain;
  if (domain !== null && total > 0) bound = Math.max(bound, Math.floor((total - 1) / domain) * MINUTE_MS);
  return Math.round(bound);
}

function boundOver(
  scenario: Scenario,
  scheduled: ReadonlyArray<{ scheduleMs: number; detectionMs: number; startMs: number }>,
  jobsByBatch: ReadonlyArray<ReadonlyMap<string, number>>,
  phases: number,
  note: string,
): DurationBound {
  const throttle = scenario.domain.throttle;
  const remaining = new Map<string, number>();
  let best: Omit<DurationBound, 'phases' | 'jobsByService' | 'note'> = {
    makespanMs: 0,
    scheduleMs: 0,
    detectionMs: 0,
    throttleMs: 0,
    bindingPhase: 0,
  };
  for (let k = scheduled.length - 1; k >= 0; k--) {
    for (const [service, jobs] of jobsByBatch[k]!)
      remaining.set(service, (remaining.get(service) ?? 0) + jobs);
    const at = scheduled[k]!;
    const throttleMs = throttleBoundMs([...remaining.values()], throttle);
    const candidate =
      remaining.size > 0
        ? {
            makespanMs: at.scheduleMs + at.detectionMs + throttleMs,
            scheduleMs: at.scheduleMs,
            detectionMs: at.detectionMs,
            throttleMs,
            bindingPhase: k + 1,
          }
        : {
            makespanMs: at.startMs,
            scheduleMs: at.startMs,
            detectionMs: 0,
            throttleMs: 0,
            bindingPhase: k + 1,
          };
    if (candidate.makespanMs > best.makespanMs) best = candidate;
  }
  return {
    ...best,
    phases,
    jobsByService: Object.fromEntries([...remaining].sort(([a], [b]) => a.localeCompare(b))),
    note,
  };
}
