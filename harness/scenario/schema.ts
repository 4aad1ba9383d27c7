/**
 * The scenario schema: the one place a scenario's shape, defaults and units are defined.
 * Durations are accepted as milliseconds or as strings ('15m', '7d'); after parsing every
 * duration is a number of milliseconds. Defaults come from ../../shared/domain-facts.md and
 * each is listed in `ASSUMPTIONS` with its provenance so reports can print them.
 */
import ms from 'ms';
import { z } from 'zod';

const durationString = z.string().transform((text, ctx) => {
  // ms() throws on an empty string instead of returning NaN.
  const value = text === '' ? Number.NaN : ms(text as ms.StringValue);
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as '90s', '15m', '4h' or '7d', found '${text}'`,
    });
    return z.NEVER;
  }
  return value;
});

/** A duration in milliseconds, given as a number of ms or a string like '15m'. */
export const duration = z.union([z.number().nonnegative().finite(), durationString], {
  error: (issue) =>
    `expected a duration (milliseconds, or a string such as '15m'), found ${describe(issue.input)}`,
});

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `'${value}'`;
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/** Builds the distribution schema for values of one unit (durations, bytes, kbps). */
function distributionOf<T extends z.ZodType<number, unknown>>(value: T) {
  const spec = z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('constant'), value }).strict(),
    z.object({ kind: z.literal('exponential'), mean: value }).strict(),
    z.object({ kind: z.literal('lognormal'), median: value, sigma: z.number().positive().max(5) }).strict(),
    z
      .object({ kind: z.literal('uniform'), min: value, max: value })
      .strict()
      .refine((d) => (d as unknown as { min: number }).min <= (d as unknown as { max: number }).max, {
        message: 'uniform needs min <= max',
        path: ['max'],
      }),
    z
      .object({
        kind: z.literal('empirical'),
        values: z.array(value).min(1),
        weights: z.array(z.number().nonnegative()).optional(),
      })
      .strict()
      .refine(
        (d) => {
          const e = d as unknown as { values: number[]; weights?: number[] };
          return !e.weights || e.weights.length === e.values.length;
        },
        {
          message: 'empirical weights must have one entry per value',
          path: ['weights'],
        },
      ),
  ]);
  // A bare value is shorthand for a constant.
  return z.union([value.transform((v) => ({ kind: 'constant' as const, value: v })), spec]);
}

const nonNegative = z.number().nonnegative().finite();
export const durationDistribution = distributionOf(duration);
export const numberDistribution = distributionOf(nonNegative);
export type Distribution = z.output<typeof numberDistribution>;

const instanceId = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]{0,31}$/, 'expected an instance id such as BES01A (letters, digits, - or _)');
const srpId = z.union([z.string().min(1), z.number().int().nonnegative()]).transform(String);

const instance = z
  .object({
    id: instanceId,
    srpId,
    softwareVersion: z.string().default('4.1.7'),
    /** Users on this instance at the start. When omitted, the fleet's users are spread evenly. */
    users: z.number().int().nonnegative().optional(),
  })
  .strict();

/** A limit that can be switched off with `null` or `false`. */
const limit = (fallback: number) =>
  z
    .union([z.number().int().positive(), z.null(), z.literal(false)])
    .default(fallback)
    .transform((v) => (v === false ? null : v));

export const throttleSchema = z
  .object({
    /** PolicyThrottlingInProcessJobs: jobs in process at once per Policy Service. */
    inProcessJobs: limit(30),
    /** PolicyThrottlingMaxBESJobs: jobs started per minute per Policy Service. */
    jobsPerMinutePerService: limit(100),
    /** PolicyThrottlingMaxDomainJobs: jobs started per minute across the domain. */
    jobsPerMinuteDomain: limit(300),
  })
  .strict()
  .prefault({});

const newInstances = z
  .object({
    /** Explicit new instances; SRP ids here that devices still hold are SRP reuse conflicts. */
    instances: z.array(instance.omit({ users: true })).optional(),
    /** Otherwise instances are created as needed: `${idPrefix}${n}` with SRP ids from srpIdBase. */
    idPrefix: z.string().default('BESNEW'),
    srpIdBase: z.number().int().nonnegative().default(1000),
    softwareVersion: z.string().default('5.0.3'),
  })
  .strict();

/** Where moved users go: an existing instance id, or new instances created for the plan. */
const target = z.union([instanceId, z.object({ newInstances: newInstances.prefault({}) }).strict()]);

const gate = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('converged'),
      /** Share of the phase's movable users whose devices must have converged. */
      share: z.number().gt(0).max(1).default(1),
    })
    .strict(),
  z
    .object({
      kind: z.literal('queueBelow'),
      /** The next phase starts once the backlog is below this (so at least 1). */
      depth: z
        .number()
        .int()
        .min(1, 'expected a depth of at least 1: the gate opens when the backlog is below it'),
    })
    .strict(),
  z
    .object({ kind: z.literal('p95Below'), latency: duration, window: duration.default(15 * 60_000) })
    .strict(),
]);
export type Gate = z.output<typeof gate>;

const collapse = z
  .object({
    kind: z.enum(['collapse', 'bigBang']),
    description: z.string().optional(),
    /** Source instances whose users all move at once; default: every instance but the target. */
    from: z.array(instanceId).optional(),
    into: target,
    at: duration.default(0),
    /** Service is stopped for the moved users for this long while accounts are moved. */
    stopWindow: duration.default(30 * 60_000),
  })
  .strict();

const phased = z
  .object({
    kind: z.literal('phased'),
    description: z.string().optional(),
    from: z.array(instanceId).optional(),
    into: target,
    size: z.number().int().positive(),
    every: duration.optional(),
    gate: gate.optional(),
    /** With a gate: how often the gate is checked. */
    gateCheckEvery: duration.default(60_000),
    at: duration.default(0),
  })
  .strict()
  .refine((p) => p.every !== undefined || p.gate !== undefined, {
    message: "a phased plan needs 'every' (fixed interval), 'gate' (closed loop) or both",
    path: ['every'],
  });

const itPolicyChange = z
  .object({
    kind: z.literal('itPolicyChange'),
    description: z.string().optional(),
    at: duration.default(0),
    /** Instances whose users get the new policy; default all. */
    instances: z.array(instanceId).optional(),
  })
  .strict();

const activationStorm = z
  .object({
    kind: z.literal('activationStorm'),
    description: z.string().optional(),
    activations: z.number().int().positive(),
    window: duration,
    arrivals: z.enum(['uniform', 'poisson']).default('poisson'),
    at: duration.default(0),
  })
  .strict();

/**
 * Moves commanded from outside the run, one `moveUser` command per user (k6 or the HTTP admin API
 * producing onto the commands topic, live). Each command names the user, the target instance and
 * its phase; a target the domain does not have is provisioned as a new server, with its SRP id
 * from `newInstances`. A user is moved once: a command for a user already moved (delivered twice),
 * or onto the instance the user is on, moves nobody and does not count. Live, the run waits until `moves` users have been commanded and have
 * settled, or until the horizon. In virtual time the moves come with the run (RunOptions.commands).
 */
const commanded = z
  .object({
    kind: z.literal('commanded'),
    description: z.string().optional(),
    /** Users the run expects to be commanded to move. */
    moves: z.number().int().positive(),
    /** SRP ids for target instances the commands name that the domain does not have yet. */
    newInstances: newInstances.prefault({}),
  })
  .strict();

export const planSchema = z.discriminatedUnion('kind', [
  collapse,
  phased,
  itPolicyChange,
  activationStorm,
  commanded,
]);
export type Plan = z.output<typeof planSchema>;
export type PhasedPlan = Extract<Plan, { kind: 'phased' }>;
export type CollapsePlan = Extract<Plan, { kind: 'collapse' | 'bigBang' }>;

const pushSize = (fallback: z.input<typeof numberDistribution>) =>
  numberDistribution.default(fallback as never);

const linkProfile = z
  .object({
    name: z.string(),
    share: z.number().nonnegative(),
    bandwidthKbps: numberDistribution,
    rttMs: numberDistribution,
  })
  .strict();

export const scenarioSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'expected a lower-case slug such as flagship-10k'),
    description: z.string().default(''),
    seed: z.number().int().nonnegative().default(1),
    /** Virtual time after which the run stops; work still open then is reported as pending. */
    horizon: duration.default(7 * 24 * 3_600_000),
    domain: z
      .object({
        instances: z.array(instance).min(1),
        throttle: throttleSchema,
        /** Users a new instance takes (E: about 2,000 per BES instance). */
        usersPerInstance: z.number().int().positive().default(2000),
        /**
         * The Policy Service notices moved mailboxes on a poll (D: a move is detected within 15 min),
         * so every user moved since the last poll becomes a job at the same instant. 0 = at once.
         */
        moveDetectionPoll: duration.default(15 * 60_000),
        /** How long before a changed IT policy becomes jobs (0 with database notification; polling: 5 min). */
        policyDetectionDelay: durationDistribution.default({ kind: 'constant', value: 0 }),
      })
      .strict(),
    fleet: z
      .object({
        users: z.number().int().positive().max(5_000_000),
        /** Device software version mix, weights by version. */
        softwareVersions: z.record(z.string().regex(/^\d+(\.\d+)*$/), z.number().nonnegative()).default({
          '4.5': 0.55,
          '4.2': 0.3,
          '4.0': 0.07,
          '3.8': 0.06,
          '3.6': 0.02,
        }),
        coverage: z
          .object({
            /** Share of devices that never leave coverage. */
            alwaysOnlineShare: z.number().min(0).max(1).default(0.6),
            online: durationDistribution.default({ kind: 'exponential', mean: 6 * 3_600_000 }),
            offline: durationDistribution.default({ kind: 'lognormal', median: 20 * 60_000, sigma: 1.2 }),
          })
          .strict()
          .prefault({}),
        link: z
          .array(linkProfile)
          .min(1)
          .default([
            {
              name: 'GPRS',
              share: 0.25,
              bandwidthKbps: { kind: 'uniform', min: 30, max: 50 },
              rttMs: { kind: 'uniform', min: 500, max: 1000 },
            },
            {
              name: 'EDGE',
              share: 0.45,
              bandwidthKbps: { kind: 'uniform', min: 100, max: 200 },
              rttMs: { kind: 'uniform', min: 300, max: 500 },
            },
            {
              name: 'UMTS',
              share: 0.2,
              bandwidthKbps: { kind: 'uniform', min: 200, max: 350 },
              rttMs: { kind: 'uniform', min: 150, max: 250 },
            },
            {
              name: 'HSDPA',
              share: 0.1,
              bandwidthKbps: { kind: 'uniform', min: 500, max: 1500 },
              rttMs: { kind: 'constant', value: 100 },
            },
          ]),
        /** Share of accounts with a defect that makes their move fail (planted, found by preview). */
        problemAccountShare: z.number().min(0).max(1).default(0.01),
        wirelessBackupShare: z.number().min(0).max(1).default(0.3),
        /** How long until a user re-cradles a device that needs it (E); may exceed the horizon. */
        recradleDelay: durationDistribution.default({ kind: 'lognormal', median: 2 * 86_400_000, sigma: 1 }),
      })
      .strict(),
    pushes: z
      .object({
        itPolicy: pushSize({ kind: 'uniform', min: 2_048, max: 15_360 }),
        serviceBooks: pushSize({ kind: 'uniform', min: 10_240, max: 61_440 }),
        dataSync: pushSize({ kind: 'lognormal', median: 150_000, sigma: 0.8 }),
        pinKey: pushSize({ kind: 'constant', value: 512 }),
        activation: pushSize({ kind: 'constant', value: 4_096 }),
      })
      .strict()
      .prefault({}),
    engine: z
      .object({
        /** Server time to prepare one push (E). */
        serverProcessing: durationDistribution.default({ kind: 'lognormal', median: 800, sigma: 0.5 }),
        /** The BES resends data without delivery confirmation after this long (D: 4 h in BES 5.0). */
        resendInterval: duration.default(4 * 3_600_000),
        /** Unacknowledged items are purged after this long (T: 7 days). */
        pushExpiry: duration.default(7 * 86_400_000),
        relay: z
          .object({
            /** Undelivered items the relay queues per device (T: 5). */
            maxItems: z.number().int().nonnegative().default(5),
            /** How long the relay holds them (T: 7 days). */
            maxHold: duration.default(7 * 86_400_000),
          })
          .strict()
          .prefault({}),
        activation: z
          .object({
            /** Email round trip, key generation and key exchange before pushes start (E: 2-15 min). */
            handshake: durationDistribution.default({ kind: 'lognormal', median: 4 * 60_000, sigma: 0.7 }),
            /** Activations processed at once per instance (E: Administration Service job throttling, 25). */
            concurrency: z.number().int().positive().default(25),
            /** Activation password lifetime (D: 48 h by default). */
            passwordLifetime: duration.default(48 * 3_600_000),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    plans: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]*$/, 'expected a plan name'), planSchema),
    /** Plans compared in the headline table; default: every plan, the first is the reference. */
    compare: z.array(z.string()).optional(),
    slos: z
      .object({
        makespan: duration.optional(),
        p95Delivery: duration.optional(),
        peakQueue: z.number().int().nonnegative().optional(),
        /** Largest share of the plan's users left stranded at the end (0 to 1). */
        strandedShare: z.number().min(0).max(1).optional(),
      })
      .strict()
      .prefault({}),
    sweep: z
      .object({
        /** A phased plan of this scenario whose size / interval / gate the sweep varies. */
        base: z.string(),
        sizes: z.array(z.number().int().positive()).min(1).optional(),
        intervals: z.array(duration).min(1).optional(),
        gates: z.array(gate.nullable()).min(1).optional(),
      })
      .strict()
      .optional(),
    thresholds: z.array(z.string()).default([]),
  })
  .strict()
  .superRefine((s, ctx) => {
    const ids = new Set<string>();
    s.domain.instances.forEach((inst, i) => {
      if (ids.has(inst.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['domain', 'instances', i, 'id'],
          message: `duplicate instance id ${inst.id}`,
        });
      }
      ids.add(inst.id);
    });
    const assigned = s.domain.instances.reduce((n, inst) => n + (inst.users ?? 0), 0);
    // Only when fleet.users itself is valid: otherwise its own issue says what is wrong.
    if (Number.isInteger(s.fleet.users) && s.fleet.users > 0 && assigned > s.fleet.users) {
      ctx.addIssue({
        code: 'custom',
        path: ['domain', 'instances'],
        message: `instances list ${assigned} users but the fleet has only ${s.fleet.users}`,
      });
    }
    if (Object.keys(s.plans).length === 0) {
      ctx.addIssue({ code: 'custom', path: ['plans'], message: 'expected at least one plan' });
    }
    for (const [name, plan] of Object.entries(s.plans)) {
      const refs = [
        ...('from' in plan && plan.from ? plan.from : []),
        ...('into' in plan && typeof plan.into === 'string' ? [plan.into] : []),
        ...(plan.kind === 'itPolicyChange' && plan.instances ? plan.instances : []),
      ];
      for (const ref of refs) {
        if (!ids.has(ref)) {
          ctx.addIssue({
            code: 'custom',
            path: ['plans', name],
            message: `plan refers to instance ${ref}, which is not in domain.instances`,
          });
        }
      }
    }
    for (const name of s.compare ?? []) {
      if (!(name in s.plans)) {
        ctx.addIssue({ code: 'custom', path: ['compare'], message: `no plan named ${name}` });
      }
    }
    if (s.sweep) {
      const base = s.plans[s.sweep.base];
      if (base?.kind !== 'phased') {
        ctx.addIssue({
          code: 'custom',
          path: ['sweep', 'base'],
          message: `expected the name of a phased plan, found '${s.sweep.base}'`,
        });
      }
    }
  });

export type ScenarioInput = z.input<typeof scenarioSchema>;
export type Scenario = z.output<typeof scenarioSchema>;
export type Throttle = Scenario['domain']['throttle'];
export type InstanceSpec = Scenario['domain']['instances'][number];

/** Every default above that is an assumption or a documented number, for reports. */
export const ASSUMPTIONS: ReadonlyArray<{
  key: string;
  value: string;
  source: 'D' | 'T' | 'E';
  note: string;
}> = [
  {
    key: 'domain.throttle.inProcessJobs',
    value: '30',
    source: 'D',
    note: 'PolicyThrottlingInProcessJobs, BES 5.0 SP3 admin guide',
  },
  {
    key: 'domain.throttle.jobsPerMinutePerService',
    value: '100',
    source: 'D',
    note: "PolicyThrottlingMaxBESJobs; a minute's jobs spread evenly over it",
  },
  {
    key: 'domain.throttle.jobsPerMinuteDomain',
    value: '300',
    source: 'D',
    note: 'PolicyThrottlingMaxDomainJobs',
  },
  { key: 'domain.usersPerInstance', value: '2000', source: 'E', note: 'users per BES instance' },
  {
    key: 'domain.moveDetectionPoll',
    value: '15 min',
    source: 'D',
    note: 'a mailbox move is detected within 15 min (BES 5.0 SP3); modelled as a poll',
  },
  {
    key: 'domain.policyDetectionDelay',
    value: '0',
    source: 'D',
    note: 'database notification on; 5-minute polling timer otherwise',
  },
  {
    key: 'engine.resendInterval',
    value: '4 h',
    source: 'D',
    note: 'data without delivery confirmation resent after 4 h (BES 5.0)',
  },
  {
    key: 'engine.pushExpiry',
    value: '7 d',
    source: 'T',
    note: 'unacknowledged items purged after 7 days (KB01868)',
  },
  {
    key: 'engine.relay.maxItems',
    value: '5',
    source: 'T',
    note: 'relay queues up to 5 undelivered items per device',
  },
  { key: 'engine.relay.maxHold', value: '7 d', source: 'T', note: 'relay holds them up to 7 days' },
  {
    key: 'engine.serverProcessing',
    value: 'lognormal median 800 ms',
    source: 'E',
    note: 'server time to prepare one push',
  },
  {
    key: 'engine.activation.handshake',
    value: 'lognormal median 4 min',
    source: 'E',
    note: 'activation usually under 15 min',
  },
  {
    key: 'engine.activation.concurrency',
    value: '25',
    source: 'E',
    note: 'Administration Service job throttling (documented for application tasks)',
  },
  {
    key: 'engine.activation.passwordLifetime',
    value: '48 h',
    source: 'D',
    note: 'activation password expiry default',
  },
  {
    key: 'fleet.softwareVersions',
    value: '4.5/4.2/4.0/3.8/3.6',
    source: 'E',
    note: 'below 4.0 cannot take service books wirelessly; below 3.6 no wireless IT policy',
  },
  {
    key: 'fleet.link',
    value: 'GPRS/EDGE/UMTS/HSDPA',
    source: 'E',
    note: 'era networks: bandwidth and RTT ranges',
  },
  {
    key: 'fleet.recradleDelay',
    value: 'lognormal median 2 d',
    source: 'E',
    note: 'time until a user re-cradles',
  },
  { key: 'pushes.itPolicy', value: '2-15 KB', source: 'E', note: 'IT policy compressed size' },
  { key: 'pushes.serviceBooks', value: '10-60 KB', source: 'E', note: '10-20 records of 1-3 KB' },
  {
    key: 'pushes.*',
    value: '64 KB packets',
    source: 'D',
    note: 'wireless packets are capped at 64 KB; one RTT per packet',
  },
];
