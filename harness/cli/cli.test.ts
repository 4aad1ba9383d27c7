/**
 * The phasebench binary as a user meets it: bad input gives one readable paragraph and a
 * non-zero exit, never a bare stack trace; good input prints the comparison and writes results.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const BIN = resolve(import.meta.dirname, '../../bin/phasebench.js');
const dir = mkdtempSync(join(tmpdir(), 'phasebench-cli-'));

function phasebench(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', PHASEBENCH_DEBUG: '' },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function scenarioFile(name: string, body: string): string {
  const path = join(dir, `${name}.ts`);
  writeFileSync(path, body);
  return path;
}

const valid = {
  name: 'cli-small',
  seed: 5,
  horizon: '1d',
  domain: {
    instances: [
      { id: 'BES01A', srpId: 1 },
      { id: 'BES01B', srpId: 2 },
    ],
  },
  fleet: { users: 120 },
  plans: {
    collapse: { kind: 'collapse', into: 'BES01A' },
    phased: { kind: 'phased', into: { newInstances: {} }, size: 20, every: '10m' },
  },
};

function withChange(change: (s: Record<string, unknown>) => void): string {
  const copy = structuredClone(valid) as unknown as Record<string, unknown>;
  change(copy);
  return `export default ${JSON.stringify(copy)};\n`;
}

/** One paragraph: a few lines, the error code up front, no stack frames. */
function expectReadableError(stderr: string): void {
  expect(stderr).toMatch(/^\[[A-Z_]+\] /);
  expect(stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(stderr.trim().split('\n').length).toBeLessThanOrEqual(12);
}

describe('phasebench run with bad input', () => {
  it('a missing field names it', () => {
    const file = scenarioFile(
      'missing',
      withChange((s) => delete (s.fleet as Record<string, unknown>).users),
    );
    const r = phasebench('run', file, '--out', join(dir, 'out-missing'));
    expect(r.status).toBe(2);
    expectReadableError(r.stderr);
    expect(r.stderr).toContain('fleet.users');
    expect(r.stderr).toContain(file);
  });

  it('a wrong type names the field, what was expected and what was found', () => {
    const file = scenarioFile(
      'wrong-type',
      withChange((s) => ((s.fleet as Record<string, unknown>).users = 'ten')),
    );
    const r = phasebench('run', file);
    expect(r.status).toBe(2);
    expectReadableError(r.stderr);
    expect(r.stderr).toMatch(/fleet\.users: expected a number, found 'ten'/);
  });

  it('a negative phase size names the plan field', () => {
    const file = scenarioFile(
      'negative-size',
      withChange((s) => ((s.plans as Record<string, Record<string, unknown>>).phased!.size = -5)),
    );
    const r = phasebench('run', file);
    expect(r.status).toBe(2);
    expectReadableError(r.stderr);
    expect(r.stderr).toContain('plans.phased.size');
    expect(r.stderr).toContain('-5');
  });

  it('an unknown plan kind lists the kinds there are', () => {
    const file = scenarioFile(
      'unknown-kind',
      withChange((s) => ((s.plans as Record<string, Record<string, unknown>>).collapse!.kind = 'yolo')),
    );
    const r = phasebench('run', file);
    expect(r.status).toBe(2);
    expectReadableError(r.stderr);
    expect(r.stderr).toContain("found 'yolo'");
    expect(r.stderr).toContain("'phased'");
  });

  it('a scenario file that throws names the file and the error', () => {
    const file = scenarioFile('throws', "throw new RangeError('fleet spec exploded');\nexport default {};\n");
    const r = phasebench('run', file);
    expect(r.status).toBe(2);
    expectReadableError(r.stderr);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toContain('fleet spec exploded');
  });

  it('a results folder that cannot be written fails with exit 1 and names it', () => {
    const file = scenarioFile('valid', `export default ${JSON.stringify(valid)};\n`);
    const blocker = join(dir, 'a-regular-file');
    writeFileSync(blocker, 'not a folder');
    const out = join(blocker, 'results');
    const r = phasebench('run', file, '--out', out);
    expect(r.status).toBe(1);
    expectReadableError(r.stderr);
    expect(r.stderr).toContain(out);
  });

  it('a commanded plan asked for in virtual time says to run it live (exit 2)', () => {
    const file = scenarioFile(
      'commanded',
      withChange((s) => {
        s.plans = { commanded: { kind: 'commanded', moves: 10 } };
      }),
    );
    const r = phasebench('run', file, '--plans', 'commanded', '--out', join(dir, 'commanded-out'));
    expect(r.status).toBe(2);
    expectReadableError(r.stderr);
    expect(r.stderr).toContain("plan 'commanded' of scenario cli-small is commanded");
    expect(r.stderr).toContain('phasebench live');
    expect(existsSync(join(dir, 'commanded-out', 'summary.json'))).toBe(false);
  });

  it('no Kafka at --brokers: live and engine name the address, exit 1, and write no results', () => {
    // Port 1 on loopback: nothing listens there, so every connection is refused.
    const out = join(dir, 'unreachable-out');
    for (const args of [
      ['live', 'scenarios/flagship.ts', '--plan', 'phased-1000', '--out', out],
      ['engine'],
    ]) {
      const r = phasebench(...args, '--brokers', '127.0.0.1:1');
      expect(r.status, args[0]).toBe(1);
      expectReadableError(r.stderr);
      expect(r.stderr).toContain('[KAFKA_UNREACHABLE] cannot reach Kafka at 127.0.0.1:1');
      expect(r.stderr).toContain('npm run kafka:up');
    }
    expect(existsSync(out)).toBe(false);
  }, 60_000);

  it('an unknown option is a usage error (exit 2) with a pointer to --help', () => {
    const r = phasebench('run', 'scenarios/flagship.ts', '--bogus');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("unknown option '--bogus'");
    expect(r.stderr).toContain('--help');
  });
});

describe('phasebench run, replay and --help', () => {
  it('runs a scenario, prints the comparison, and replay rebuilds the same summary from the logs', () => {
    const file = scenarioFile('ok', `export default ${JSON.stringify(valid)};\n`);
    const out = join(dir, 'out-ok');
    const r = phasebench('run', file, '--out', out, '--no-progress');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('makespan (server side)');
    expect(r.stdout).toMatch(/Finishes first: (collapse|phased)/);
    for (const f of [
      'summary.json',
      'scenario.json',
      'comparison.md',
      'events/collapse.ndjson.gz',
      'events/phased.ndjson.gz',
    ]) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(Object.keys(summary.plans)).toEqual(['collapse', 'phased']);

    const replay = phasebench('replay', out);
    expect(replay.status).toBe(0);
    expect(replay.stdout).toContain('every number matches summary.json');
  });

  it('every command has --help', () => {
    for (const command of [
      'run',
      'sweep',
      'preview',
      'replay',
      'compare',
      'report',
      'export-metrics',
      'backfill',
      'serve',
      'http-load',
    ]) {
      const r = phasebench(command, '--help');
      expect(r.status, command).toBe(0);
      expect(r.stdout, command).toContain(`Usage: phasebench ${command}`);
    }
  });
});
