/**
 * `phasebench preview <scenario>`: what each plan would run into, without running or pushing
 * anything (the `besmigration -p` idea). Display only reads the preview; `--strict` turns an SRP
 * reuse conflict into exit code 1 so CI can refuse a plan before anyone runs it.
 */
import Table from 'cli-table3';
import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import { PhasebenchError } from '../errors.ts';
import { type PlanPreview, previewScenario, type ScenarioPreview } from '../preview/preview.ts';
import { formatMs } from './output.ts';
import { parseSeed, scenarioFromArgs } from './run.ts';

type Colors = ReturnType<typeof pc.createColors>;

const count = new Intl.NumberFormat('en-US');

/** Problem accounts listed per plan when not told otherwise. */
export const DEFAULT_ACCOUNTS_LISTED = 20;

export interface RenderOptions {
  colors?: Colors;
  /** Problem accounts listed per plan; 0 lists every one. */
  accountsListed?: number;
}

/** The whole report: an overview across plans, then each plan's findings in detail. */
export function renderPreview(preview: ScenarioPreview, options: RenderOptions = {}): string {
  const colors = options.colors ?? pc.createColors(false);
  const listed = options.accountsListed ?? DEFAULT_ACCOUNTS_LISTED;
  const t = preview.throttle;
  const limit = (n: number | null) => (n === null ? 'off' : count.format(n));
  const blocks = [
    `${colors.bold(preview.scenario)} — preview of ${preview.plans.length} plan(s), ` +
      `${count.format(preview.users)} users, seed ${preview.seed}. Nothing is run or pushed.\n` +
      colors.dim(
        `Throttle: ${limit(t.inProcessJobs)} jobs in process and ${limit(t.jobsPerMinutePerService)} jobs/min ` +
          `per Policy Service, ${limit(t.jobsPerMinuteDomain)} jobs/min across the domain.`,
      ),
    overviewTable(preview.plans, colors),
    ...preview.plans.map((plan) => planDetail(plan, colors, listed)),
    conclusion(preview, colors),
  ];
  return `${blocks.join('\n\n')}\n`;
}

function overviewTable(plans: readonly PlanPreview[], colors: Colors): string {
  const table = newTable(['', ...plans.map((p) => p.plan)], colors);
  const row = (label: string, value: (p: PlanPreview) => string) => table.push([label, ...plans.map(value)]);
  row('kind', (p) => p.kind);
  row('users touched', (p) => count.format(p.users));
  row('problem accounts', (p) =>
    p.problemAccounts === null ? colors.dim('n/a') : warnIf(p.problemAccounts.total, colors),
  );
  row('SRP reuse conflicts', (p) =>
    p.srpConflicts.length === 0 ? '0' : colors.red(colors.bold(String(p.srpConflicts.length))),
  );
  row('devices to cradle', (p) => warnIf(p.cradle.devices, colors));
  row('new servers', (p) => count.format(p.servers.added));
  row('new SRP credentials', (p) => count.format(p.srpCredentials.added));
  row('makespan lower bound', (p) => formatMs(p.lowerBound.makespanMs));
  return table.toString();
}

function planDetail(plan: PlanPreview, colors: Colors, listed: number): string {
  const lines = [
    `${colors.bold(`Plan ${plan.plan}`)} (${plan.kind})${plan.description ? ` — ${plan.description}` : ''}`,
  ];
  lines.push(`  ${scope(plan)}`);

  if (plan.problemAccounts !== null) {
    const accounts = plan.problemAccounts;
    if (accounts.total === 0) {
      lines.push(`  Problem accounts: none; every account passes the move tool's check.`);
    } else {
      const reasons = Object.entries(accounts.byReason)
        .sort(([, a], [, b]) => b - a)
        .map(([reason, n]) => `${reason} ${n}`)
        .join(', ');
      lines.push(
        colors.yellow(
          `  Problem accounts: ${accounts.total} would fail the move and stay behind (${reasons}).`,
        ),
      );
      const shown = listed === 0 ? accounts.accounts : accounts.accounts.slice(0, listed);
      const table = newTable(['user', 'instance', 'reason'], colors);
      for (const a of shown) table.push([a.user, a.instance, a.reason]);
      lines.push(indent(table.toString()));
      if (shown.length < accounts.total) {
        lines.push(
          colors.dim(`  … and ${accounts.total - shown.length} more (--accounts 0 or --json lists all).`),
        );
      }
    }
  }

  if (plan.srpConflicts.length > 0) {
    lines.push(
      colors.red(
        colors.bold(
          `  SRP reuse conflicts: ${plan.srpConflicts.length}. The relay disables an SRP id two servers use at once, and every device on it stops communicating.`,
        ),
      ),
    );
    const table = newTable(['new instance', 'SRP id', 'devices holding it', 'already used by'], colors);
    for (const c of plan.srpConflicts) {
      table.push([c.instance, c.srpId, count.format(c.devicesHolding), c.heldBy.join(', ') || '—']);
    }
    lines.push(indent(table.toString()));
  } else if (plan.newInstances.length > 0) {
    lines.push(`  SRP reuse conflicts: none; no new instance reuses an SRP id in use.`);
  }

  lines.push(cradleLines(plan, colors));

  if (plan.newInstances.length > 0) {
    const table = newTable(['new instance', 'SRP id', 'users assigned'], colors);
    for (const inst of plan.newInstances) table.push([inst.id, inst.srpId, count.format(inst.users)]);
    lines.push(
      `  Needs ${plan.servers.added} new server(s) and ${plan.srpCredentials.added} new SRP credential(s):`,
      indent(table.toString()),
    );
  }

  lines.push(boundLines(plan, colors));
  return lines.join('\n');
}

function scope(plan: PlanPreview): string {
  const users = count.format(plan.users);
  switch (plan.kind) {
    case 'itPolicyChange':
      return `New IT policy for ${users} users on ${plan.sources.join(', ')}.`;
    case 'activationStorm':
      return `${users} enterprise activations.`;
    case 'commanded':
      return `Moves ${users} users as moveUser commands arrive (k6, the admin API): which users, and where, is up to the commands.`;
    default:
      return `Moves ${users} users from ${plan.sources.join(', ')} into ${plan.target}.`;
  }
}

function cradleLines(plan: PlanPreview, colors: Colors): string {
  const { cradle } = plan;
  const activation = cradle.need === 'wiredActivation';
  if (cradle.devices === 0) {
    return activation
      ? '  Every device activating runs 4.0+ and can activate wirelessly.'
      : '  No device needs cradling: every one can take the pushes over the air.';
  }
  const why = activation
    ? 'cannot activate wirelessly (needs 4.0+) and must be activated by cable'
    : 'must be re-cradled (service books and data need 4.0+ over the air, IT policy 3.6+)';
  const table = newTable(['software', 'devices', 'cannot take over the air'], colors);
  for (const g of cradle.byVersion) {
    table.push([String(g.softwareVersion), count.format(g.devices), g.cannotTake.join(', ')]);
  }
  return `${colors.yellow(`  ${count.format(cradle.devices)} device(s) ${why}:`)}\n${indent(table.toString())}`;
}

function boundLines(plan: PlanPreview, colors: Colors): string {
  const b = plan.lowerBound;
  const jobs = Object.entries(b.jobsByService)
    .map(([service, n]) => `${service} ${count.format(n)}`)
    .join(', ');
  const parts = [
    `schedule ${formatMs(b.scheduleMs)}`,
    `detection ${formatMs(b.detectionMs)}`,
    `throttle ${formatMs(b.throttleMs)}`,
  ];
  const lines = [
    `  Makespan lower bound: ${colors.bold(formatMs(b.makespanMs))} = ${parts.join(' + ')}` +
      (b.bindingPhase > 1 ? ` (binding: phase ${b.bindingPhase} of ${b.phases} onwards)` : ''),
  ];
  if (jobs) lines.push(`  Throttled jobs per Policy Service: ${jobs}.`);
  lines.push(colors.dim(`  (${b.note})`));
  return lines.join('\n');
}

function conclusion(preview: ScenarioPreview, colors: Colors): string {
  const conflicts = preview.plans.flatMap((p) =>
    p.srpConflicts.map(
      (c) =>
        `${p.plan}: ${c.instance} would reuse SRP id ${c.srpId}, held by ${count.format(c.devicesHolding)} device(s)` +
        (c.heldBy.length ? ` on ${c.heldBy.join(', ')}` : ''),
    ),
  );
  if (conflicts.length === 0) return colors.green('No SRP reuse conflicts.');
  return (
    colors.red(colors.bold(`SRP reuse conflicts: ${conflicts.length}.`)) +
    `\n${conflicts.map((c) => `  ${c}`).join('\n')}`
  );
}

function warnIf(n: number, colors: Colors): string {
  return n === 0 ? '0' : colors.yellow(count.format(n));
}

function newTable(head: string[], colors: Colors): Table.Table {
  return new Table({
    head: head.map((h) => colors.bold(h)),
    style: { head: [], border: [], compact: true },
  });
}

function indent(text: string): string {
  return text.replace(/^/gm, '  ');
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a non-negative integer.');
  return n;
}

/** Thrown after the report is printed when `--strict` finds an SRP reuse conflict. */
export class SrpConflictError extends PhasebenchError {
  override name = 'SrpConflictError';

  constructor(conflicts: number) {
    super(
      'PREVIEW_SRP_CONFLICT',
      `preview found ${conflicts} SRP reuse conflict(s); with --strict that fails the check (see the report above).`,
    );
  }
}

export function previewCommand(): Command {
  return new Command('preview')
    .description(
      'Evaluate plans without running or pushing anything: problem accounts, SRP reuse conflicts, devices to cradle, a lower bound on duration',
    )
    .argument('<scenario>', 'scenario file (TypeScript), e.g. scenarios/bes01-collapse.ts')
    .option('-p, --plans <names...>', 'preview only these plans (default: all)')
    .option(
      '-s, --seed <n>',
      "override the scenario's seed (the fleet, hence its problem accounts, follow it)",
      parseSeed,
    )
    .option('--json', 'print the preview as JSON (every problem account listed)')
    .option('--strict', 'exit 1 when any plan has an SRP reuse conflict (for CI)')
    .option(
      '--accounts <n>',
      `problem accounts listed per plan (default ${DEFAULT_ACCOUNTS_LISTED}; 0 lists all)`,
      parseCount,
    )
    .addHelpText(
      'after',
      `
Exit codes: 0 (also with conflicts unless --strict), 1 with --strict when an SRP reuse conflict is
found, 2 for a bad scenario or unknown plan.

Examples:
  $ phasebench preview scenarios/bes01-collapse.ts
  $ phasebench preview scenarios/bes01-collapse.ts --plans phased-reusing-srp --strict
  $ phasebench preview scenarios/flagship.ts --json > preview.json`,
    )
    .action(
      async (
        path: string,
        options: { plans?: string[]; seed?: number; json?: boolean; strict?: boolean; accounts?: number },
      ) => {
        const scenario = await scenarioFromArgs(path, options);
        const unknown = (options.plans ?? []).filter((p) => !(p in scenario.plans));
        if (unknown.length > 0) {
          throw new PhasebenchError(
            'PREVIEW_UNKNOWN_PLAN',
            `scenario ${scenario.name} has no plan named ${unknown.map((p) => `'${p}'`).join(', ')} ` +
              `(plans: ${Object.keys(scenario.plans).join(', ')}).`,
            { exitCode: 2 },
          );
        }
        const preview = previewScenario(scenario, { plans: options.plans });
        if (options.json) process.stdout.write(`${JSON.stringify(preview, null, 2)}\n`);
        else
          process.stdout.write(
            renderPreview(preview, {
              colors: pc.createColors(pc.isColorSupported && process.stdout.isTTY === true),
              accountsListed: options.accounts,
            }),
          );
        if (options.strict && preview.srpConflicts > 0) throw new SrpConflictError(preview.srpConflicts);
      },
    );
}
