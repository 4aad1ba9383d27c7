/**
 * `phasebench sweep <scenario>`: runs every size x interval x gate variant of a phased plan (and
 * the scenario's other plans as reference points) over one fleet, prints a table with the Pareto
 * frontier marked and recommends the fastest variant that meets the SLOs. Display only reads the
 * sweep result; the progress bar only listens to the runs.
 */

import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import { Command, InvalidArgumentError } from 'commander';
import pc from 'picocolors';
import type { SloCheck } from '../metrics/slo.ts';
import { writeJson } from '../results/store.ts';
import { duration, type Gate } from '../scenario/schema.ts';
import {
  DEFAULT_P95_WINDOW_MS,
  defaultSweepDir,
  formatGate,
  formatInterval,
  runSweep,
  type SweepEntry,
  type SweepResult,
  writeSweep,
} from '../sweep/sweep.ts';
import { formatMs } from './output.ts';
import { parseSeed, scenarioFromArgs } from './run.ts';

type Colors = ReturnType<typeof pc.createColors>;

const count = new Intl.NumberFormat('en-US');

// ---------------------------------------------------------------------------------------------
// Option parsing: each parser throws InvalidArgumentError, which commander reports (exit 2).

function items(value: string): string[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((s) => s === ''))
    throw new InvalidArgumentError('expected a comma-separated list without empty items.');
  return parts;
}

export function parseSizes(value: string): number[] {
  return items(value).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n <= 0)
      throw new InvalidArgumentError(`expected positive whole phase sizes, found '${s}'.`);
    return n;
  });
}

function parseDuration(text: string, what: string): number {
  const parsed = duration.safeParse(text);
  if (!parsed.success)
    throw new InvalidArgumentError(`expected ${what} such as '15m' or '2h', found '${text}'.`);
  return parsed.data;
}

/** '15m,30m'; 'none' means no fixed interval (the gate alone paces the phases). */
export function parseIntervals(value: string): Array<number | null> {
  return items(value).map((s) => {
    if (s === 'none') return null;
    const ms = parseDuration(s, 'an interval');
    if (ms <= 0) throw new InvalidArgumentError(`expected an interval above zero, found '${s}'.`);
    return ms;
  });
}

/** 'none', 'queueBelow:100', 'converged' or 'converged:0.95', 'p95Below:20m' or 'p95Below:20m/30m'. */
export function parseGates(value: string): Array<Gate | null> {
  return items(value).map(parseGate);
}

export function parseGate(text: string): Gate | null {
  const [kind, arg] = splitOnce(text, ':');
  switch (kind) {
    case 'none':
      if (arg !== undefined) break;
      return null;
    case 'queueBelow': {
      const depth = Number(arg);
      if (arg === undefined || arg === '' || !Number.isInteger(depth) || depth < 0) {
        throw new InvalidArgumentError(
          `queueBelow needs a whole queue depth, e.g. queueBelow:100; found '${text}'.`,
        );
      }
      return { kind: 'queueBelow', depth };
    }
    case 'converged': {
      const share = arg === undefined ? 1 : Number(arg);
      if (arg === '' || !(share > 0 && share <= 1)) {
        throw new InvalidArgumentError(
          `converged takes a share in (0, 1], e.g. converged:0.95; found '${text}'.`,
        );
      }
      return { kind: 'converged', share };
    }
    case 'p95Below': {
      if (arg === undefined || arg === '') {
        throw new InvalidArgumentError(`p95Below needs a latency, e.g. p95Below:20m; found '${text}'.`);
      }
      const [latency, window] = splitOnce(arg, '/');
      return {
        kind: 'p95Below',
        latency: parseDuration(latency, 'a p95 latency'),
        window: window === undefined ? DEFAULT_P95_WINDOW_MS : parseDuration(window, 'a window'),
      };
    }
  }
  throw new InvalidArgumentError(
    `unknown gate '${text}': expected none, queueBelow:<depth>, converged[:<share>] or p95Below:<latency>[/<window>].`,
  );
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

// ---------------------------------------------------------------------------------------------
// Display.

export const SLO_LABELS: Record<SloCheck['name'], string> = {
  makespan: 'makespan',
  p95Delivery: 'p95 delivery',
  peakQueue: 'peak queue',
  strandedShare: 'stranded share',
};

export function sloValue(name: SloCheck['name'], value: number): string {
  if (!Number.isFinite(value)) return 'nothing delivered';
  if (name === 'strandedShare') return `${(value * 100).toFixed(1)}%`;
  return name === 'peakQueue' ? count.format(value) : formatMs(value);
}

/** One row per entry (variants in sweep order, then references); ★ marks the Pareto frontier. */
export function sweepTable(result: SweepResult, colors: Colors = pc.createColors(false)): string {
  const recommended = result.recommendation.kind === 'meetsSlos' ? result.recommendation.entry : null;
  const table = new Table({
    head: [
      'variant (size/interval/gate)',
      'makespan',
      'p95 delivery',
      'peak queue',
      'stranded',
      'servers +',
      'SLOs',
      'Pareto',
    ].map((h) => colors.bold(h)),
    style: { head: [], border: [], compact: true },
    colAligns: ['left', 'right', 'right', 'right', 'right', 'right', 'left', 'center'],
  });
  for (const entry of result.entries) {
    const m = entry.metrics;
    let label =
      entry.kind === 'reference' ? colors.dim(`${entry.name} (${entry.plan.kind}, reference)`) : entry.name;
    if (entry.name === recommended && entry.kind === 'variant')
      label = colors.green(colors.bold(`${entry.name} ◀ recommended`));
    table.push([
      label,
      formatMs(m.makespanMs),
      formatMs(m.pushDelivery.p95Ms),
      count.format(m.peakQueue.domain),
      count.format(m.stranded.total),
      count.format(m.servers.added),
      sloCell(entry, colors),
      entry.onFrontier ? colors.cyan('★') : '',
    ]);
  }
  return table.toString();
}

function sloCell(entry: SweepEntry, colors: Colors): string {
  if (entry.slos.length === 0) return '—';
  const missed = entry.slos.filter((c) => !c.met).map((c) => c.name);
  return missed.length === 0 ? colors.green('meets all') : colors.red(`misses ${missed.join(', ')}`);
}

/** The frontier and the recommendation in sentences a planner can act on. */
export function sweepVerdict(result: SweepResult, colors: Colors = pc.createColors(false)): string {
  const byName = new Map(result.entries.map((e) => [e.name, e]));
  const lines = [
    `Pareto frontier (makespan, p95 delivery, peak queue; all minimised): ${result.frontier.length} of ` +
      `${result.entries.length}: ${result.frontier.join(', ')}.`,
  ];
  const limits =
    result.entries[0]?.slos.map((c) => `${SLO_LABELS[c.name]} ≤ ${sloValue(c.name, c.limit)}`) ?? [];
  const r = result.recommendation;
  if (r.kind === 'meetsSlos') {
    const m = byName.get(r.entry)!.metrics;
    const figures = `makespan ${formatMs(m.makespanMs)}, p95 delivery ${formatMs(m.pushDelivery.p95Ms)}, peak queue ${count.format(m.peakQueue.domain)}`;
    lines.push(
      colors.green(
        r.noSlos
          ? `Recommended: ${r.entry}, the fastest variant (the scenario sets no SLOs): ${figures}.`
          : `Recommended: ${r.entry}, the fastest variant that meets every SLO (${limits.join(', ')}): ${figures}.`,
      ),
    );
    if (m.srpConflicts.length > 0) {
      // The SLOs say nothing about devices cut off; a plan that silences them should not pass unremarked.
      lines.push(
        colors.yellow(
          `  Warning: it causes ${m.srpConflicts.length} SRP conflict(s) and cuts off ${count.format(m.devicesCutOff)} device(s); the SLOs do not cover that.`,
        ),
      );
    }
    if (r.fasterReference) {
      const ref = byName.get(r.fasterReference)!.metrics;
      lines.push(
        `  The reference plan ${r.fasterReference} also meets every SLO and is faster (makespan ${formatMs(ref.makespanMs)}).`,
      );
    }
  } else if (r.closest === null) {
    lines.push(colors.red('No variant ran, so there is nothing to recommend.'));
  } else {
    lines.push(colors.red(colors.bold(`No variant meets every SLO (${limits.join(', ')}).`)));
    for (const s of r.bySlo) {
      lines.push(
        `  ${SLO_LABELS[s.name]} ≤ ${sloValue(s.name, s.limit)}: met by ${s.metBy} of ${result.entries.filter((e) => e.kind === 'variant').length}; ` +
          `best ${sloValue(s.name, s.best)} (${s.bestEntry}).`,
      );
    }
    const misses = r.closest.misses
      .map(
        (c) =>
          `${SLO_LABELS[c.name]} by ${(c.overshoot * 100).toFixed(1)}% (${sloValue(c.name, c.value)} against ${sloValue(c.name, c.limit)})`,
      )
      .join(' and ');
    lines.push(colors.yellow(`Closest: ${r.closest.entry}, which misses ${misses}.`));
  }
  if (result.skipped.length > 0) {
    lines.push(colors.dim(`Skipped (neither an interval nor a gate): ${result.skipped.join(', ')}.`));
  }
  return lines.join('\n');
}

export function renderSweep(result: SweepResult, colors: Colors = pc.createColors(false)): string {
  const variants = result.entries.filter((e) => e.kind === 'variant').length;
  const header =
    `${colors.bold(result.scenario)} — sweep of ${result.base} (seed ${result.seed}): ${variants} variant(s) ` +
    `of sizes ${result.axes.sizes.join(', ')} × intervals ${result.axes.intervals.map((i) => (i === null ? 'none' : formatInterval(i))).join(', ')} × gates ${result.axes.gates.map(formatGate).join(', ')}`;
  return `${header}\n${sweepTable(result, colors)}\n${sweepVerdict(result, colors)}\n`;
}

// ---------------------------------------------------------------------------------------------
// The command.

/** A bar over the runs on stderr, for a person at a terminal only. */
class SweepProgress {
  private readonly bar: cliProgress.SingleBar | null;

  constructor(enabled: boolean) {
    this.bar =
      enabled && process.stderr.isTTY
        ? new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: 'sweep |{bar}| {value}/{total} runs · {run} · virtual {virtual}',
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          )
        : null;
  }

  startRun(name: string, index: number, total: number): void {
    if (index === 0) this.bar?.start(total, 0, { run: name, virtual: '0s' });
    else this.bar?.update(index, { run: name, virtual: '0s' });
  }

  update(virtualMs: number): void {
    this.bar?.update({ virtual: formatMs(virtualMs) });
  }

  stop(total: number): void {
    if (total > 0) this.bar?.update(total);
    this.bar?.stop();
  }
}

interface SweepCommandOptions {
  base?: string;
  sizes?: number[];
  intervals?: Array<number | null>;
  gates?: Array<Gate | null>;
  seed?: number;
  out?: string;
  write: boolean;
  json?: boolean;
  progress: boolean;
  references: boolean;
}

export function sweepCommand(): Command {
  return new Command('sweep')
    .description(
      'Run every size / interval / gate variant of a phased plan over one fleet: table, Pareto frontier, and the fastest variant that meets the SLOs',
    )
    .argument('<scenario>', 'scenario file (TypeScript), e.g. scenarios/flagship.ts')
    .option('-b, --base <plan>', "the phased plan to vary (default: the scenario's sweep.base)")
    .option('--sizes <list>', 'phase sizes, e.g. 250,500,1000', parseSizes)
    .option(
      '--intervals <list>',
      "phase intervals, e.g. 15m,30m ('none': the gate alone paces)",
      parseIntervals,
    )
    .option('--gates <list>', 'gates, e.g. none,queueBelow:100,converged:0.95,p95Below:20m', parseGates)
    .option('-s, --seed <n>', "override the scenario's seed", parseSeed)
    .option('-o, --out <dir>', 'folder for sweep.json (default: results/<scenario>-sweep-<timestamp>)')
    .option('--no-write', 'do not write sweep.json')
    .option('--json', 'print sweep.json to stdout instead of the table')
    .option('--no-references', "do not run the scenario's other plans as reference points")
    .option('--no-progress', 'no progress bar')
    .addHelpText(
      'after',
      `
Each variant is the base plan with one size, one interval and one gate (every combination; a
variant with neither an interval nor a gate is skipped). With both, the next phase starts no
sooner than the interval and only once the gate passes. Axes not given on the command line come
from the scenario's sweep section, else from the base plan itself.

The Pareto frontier (★) holds the runs no other run beats on makespan, p95 delivery and peak
queue at once. The recommendation is the fastest variant meeting every SLO in the scenario.

Exit codes: 0 (also when no variant meets the SLOs), 2 for a bad scenario, option, or a base plan
that is not phased.

Examples:
  $ phasebench sweep scenarios/flagship.ts
  $ phasebench sweep scenarios/flagship.ts --sizes 250,500,1000 --intervals 15m,30m
  $ phasebench sweep scenarios/flagship.ts --gates none,queueBelow:100,converged:0.95,p95Below:20m
  $ phasebench sweep scenarios/bes01-collapse.ts --base phased --json --no-write > sweep.json`,
    )
    .action(async (path: string, options: SweepCommandOptions) => {
      const scenario = await scenarioFromArgs(path, options);
      const progress = new SweepProgress(options.progress && !options.json);
      let total = 0;
      let result: SweepResult;
      try {
        result = await runSweep(scenario, {
          base: options.base,
          sizes: options.sizes,
          intervals: options.intervals,
          gates: options.gates,
          references: options.references,
          onRunStart: (name, index, runs) => {
            total = runs;
            progress.startRun(name, index, runs);
          },
          onProgress: (_name, at) => progress.update(at),
        });
      } finally {
        // Give the terminal its cursor back even when a run throws.
        progress.stop(total);
      }
      const outDir = options.out ?? defaultSweepDir(scenario, new Date());
      const written = options.write ? await writeSweep(outDir, result) : null;
      // The report names the scenario and its description, as a run's folder does.
      if (written) await writeJson(outDir, 'scenario.json', scenario);
      // The chart renderer takes a second or two to load: only a sweep that writes a report loads it.
      const report = written ? await (await import('../report/write.ts')).writeReport(outDir) : null;
      if (options.json) {
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const colors = pc.createColors(pc.isColorSupported && process.stdout.isTTY === true);
      process.stdout.write(renderSweep(result, colors));
      if (written) process.stdout.write(`${colors.dim(`Sweep: ${written}`)}\n`);
      if (report) process.stdout.write(`${colors.dim(`Report: ${report.html}`)}\n`);
    });
}
