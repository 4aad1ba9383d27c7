import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { compareCommand, defaultOutDir, runCompare } from '../cli/compare.ts';
import type { RunSummary } from '../metrics/summary.ts';
import { HOUR_MS, runSummary } from './test-summaries.ts';
import { DEFAULT_THRESHOLDS } from './thresholds.ts';

let dir: string;
let baselinePath: string;
let candidateFolder: string;

async function writeSummary(path: string, summary: RunSummary | object): Promise<void> {
  await writeFile(path, JSON.stringify(summary), 'utf8');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'phasebench-compare-'));
  // The baseline given as a file, the candidate as a results folder holding summary.json.
  baselinePath = join(dir, 'baseline.json');
  candidateFolder = join(dir, 'flagship-1234');
  await mkdir(candidateFolder);
  await writeSummary(baselinePath, runSummary({ 'phased-500': { makespanMs: 8 * HOUR_MS, stranded: 0 } }));
  await writeSummary(
    join(candidateFolder, 'summary.json'),
    runSummary({ 'phased-500': { makespanMs: 9 * HOUR_MS, stranded: 0 } }),
  );
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('runCompare end to end', () => {
  it('exits 1 on a failing threshold and writes a JUnit file holding the failure', async () => {
    const outDir = join(dir, 'out');
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      thresholds: ['makespan < +10%', 'stranded == 0'],
      outDir,
    });
    expect(run.exitCode).toBe(1);
    expect(run.stderr).toBe('');
    expect(run.result?.passed).toBe(false);
    const junit = await readFile(join(outDir, 'junit.xml'), 'utf8');
    expect(junit).toContain('<failure message="makespan 9h 00m is not &lt; 8h 48m (baseline 8h 00m +10%)"');
    expect(junit).toContain('<testcase classname="phasebench.compare.phased-500" name="stranded == 0">');
    expect((await stat(join(outDir, 'compare.md'))).isFile()).toBe(true);
    expect(run.stdout).toContain('❌ 1 of 2 thresholds failed');
  });

  it('exits 0 when every threshold passes and prints the tables', async () => {
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      thresholds: ['makespan <= 9h'],
      outDir: join(dir, 'out'),
    });
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('Plan phased-500 ✅');
    expect(run.stdout).toMatch(/│ makespan\s+│\s+8h 00m │\s+9h 00m │\s+\+12\.5% │\s+✅\s+│/);
    expect(run.stdout).toContain('✅ all 1 threshold passed');
    // Not a TTY unless asked: no ANSI escapes.
    expect(run.stdout).not.toContain('\u001b[');
  });

  it('colours the output only when asked', async () => {
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      thresholds: ['makespan <= 9h'],
      outDir: join(dir, 'out'),
      color: true,
    });
    expect(run.stdout).toContain('\u001b[');
  });

  it('checks the default thresholds when none are given', async () => {
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      outDir: join(dir, 'out'),
    });
    expect(run.result?.thresholds.map((result) => result.threshold)).toEqual(DEFAULT_THRESHOLDS);
    // makespan grew 12.5% > 10%.
    expect(run.exitCode).toBe(1);
  });

  it('prints the machine-readable result with --json', async () => {
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      thresholds: ['stranded == 0'],
      outDir: join(dir, 'out'),
      json: true,
    });
    expect(JSON.parse(run.stdout)).toEqual(run.result);
    expect(run.result?.schema).toBe('phasebench.compare/1');
  });

  it('exits 2 with one paragraph naming the file when a summary is missing', async () => {
    const missing = join(dir, 'nope', 'summary.json');
    const run = await runCompare({ baseline: missing, candidate: candidateFolder, outDir: join(dir, 'out') });
    expect(run.exitCode).toBe(2);
    expect(run.result).toBeNull();
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(
      `[SUMMARY_NOT_FOUND] cannot use the baseline summary ${missing}: no such file or folder`,
    );
    expect(run.stderr.trim().split('\n\n')).toHaveLength(1);
    await expect(stat(join(dir, 'out'))).rejects.toThrow();
  });

  it('exits 2 when a results folder holds no summary.json', async () => {
    const empty = join(dir, 'empty-run');
    await mkdir(empty);
    const run = await runCompare({ baseline: baselinePath, candidate: empty, outDir: join(dir, 'out') });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain(
      `cannot use the candidate summary ${empty}: the folder holds no summary.json`,
    );
  });

  it('exits 2 naming the offending fields when a summary is not a phasebench summary', async () => {
    const broken = runSummary({ 'phased-500': {} }) as unknown as {
      plans: Record<string, { metrics: object }>;
    };
    broken.plans['phased-500']!.metrics = { ...broken.plans['phased-500']!.metrics, makespanMs: 'long' };
    await writeSummary(baselinePath, broken);
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      outDir: join(dir, 'out'),
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('[SUMMARY_INVALID]');
    expect(run.stderr).toContain('plans.phased-500.metrics.makespanMs');
  });

  it('exits 2 when a summary is not JSON', async () => {
    await writeFile(baselinePath, '{"schema": ', 'utf8');
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      outDir: join(dir, 'out'),
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('[SUMMARY_NOT_JSON]');
  });

  it('exits 2 showing where a threshold stops parsing', async () => {
    const run = await runCompare({
      baseline: baselinePath,
      candidate: candidateFolder,
      thresholds: ['makespan < 10%'],
      outDir: join(dir, 'out'),
    });
    expect(run.exitCode).toBe(2);
    expect(run.stderr).toContain('[THRESHOLD_SYNTAX] invalid threshold at column 12');
    expect(run.stderr).toContain('  makespan < 10%\n             ^');
  });
});

describe('compareCommand', () => {
  it('takes repeated -t options and exits with the comparison code', async () => {
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const previousExitCode = process.exitCode;
    try {
      const outDir = join(dir, 'cli-out');
      await compareCommand().parseAsync(
        [
          baselinePath,
          candidateFolder,
          '-t',
          'makespan <= 9h',
          '-t',
          'stranded == 1',
          '--out',
          outDir,
          '--json',
        ],
        { from: 'user' },
      );
      expect(process.exitCode).toBe(1);
      const printed = JSON.parse(String(stdout.mock.calls[0]?.[0]));
      expect(printed.thresholds.map((result: { threshold: string }) => result.threshold)).toEqual([
        'makespan <= 9h',
        'stranded == 1',
      ]);
      expect((await stat(join(outDir, 'junit.xml'))).isFile()).toBe(true);
    } finally {
      process.exitCode = previousExitCode;
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });

  it('documents the grammar, the defaults, the exit codes and examples in --help', () => {
    let help = '';
    const command = compareCommand().configureOutput({ writeOut: (text) => (help += text) });
    command.outputHelp();
    expect(help).toContain('Usage: compare [options] <baseline> <candidate>');
    expect(help).toContain('-t, --threshold <expr...>');
    for (const threshold of DEFAULT_THRESHOLDS) expect(help).toContain(`  ${threshold}`);
    expect(help).toContain('Exit codes:');
    expect(help).toContain("$ phasebench compare base cand -t 'phased-500: makespan < 9h'");
  });

  it('names the default output folder after the wall-clock time', () => {
    expect(defaultOutDir(new Date('2026-11-22T02:55:04.123Z'))).toBe('results/compare-20261122-025504');
  });
});
