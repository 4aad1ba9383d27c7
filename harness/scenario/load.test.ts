import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { formatError, PhasebenchError, ScenarioError } from '../errors.ts';
import { defineScenario } from './define.ts';
import { loadScenario, parseScenario } from './load.ts';

const dir = mkdtempSync(join(tmpdir(), 'phasebench-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Tests break scenarios on purpose, so a draft is deliberately untyped.
// biome-ignore lint/suspicious/noExplicitAny: see above
type Draft = Record<string, any>;

/** Every test starts from this plain object and breaks one thing. */
function minimal(): Draft {
  return {
    name: 'mini',
    domain: { instances: [{ id: 'BES01A', srpId: 'S1' }] },
    fleet: { users: 10 },
    plans: { phased: { kind: 'phased', into: { newInstances: {} }, size: 5, every: '15m' } },
  };
}

/** Writes a scenario file; each test uses its own name because ESM caches imports by URL. */
function writeScenario(name: string, source: string): string {
  const file = join(dir, `${name}.ts`);
  writeFileSync(file, source);
  return file;
}

function writeScenarioObject(name: string, scenario: unknown): string {
  return writeScenario(name, `export default ${JSON.stringify(scenario, null, 2)};\n`);
}

async function loadError(file: string): Promise<ScenarioError> {
  try {
    await loadScenario(file);
  } catch (err) {
    if (err instanceof ScenarioError) return err;
    throw err;
  }
  throw new Error(`expected ${file} to be rejected`);
}

function parseError(input: unknown): ScenarioError {
  try {
    parseScenario(input, 'inline.ts');
  } catch (err) {
    if (err instanceof ScenarioError) return err;
    throw err;
  }
  throw new Error('expected the scenario to be rejected');
}

async function invalidFileError(name: string, change: (scenario: Draft) => void) {
  const scenario = minimal();
  change(scenario);
  const file = writeScenarioObject(name, scenario);
  const err = await loadError(file);
  expect(err.code).toBe('SCENARIO_INVALID');
  expect(err.message).toContain(file);
  return err;
}

describe('loadScenario', () => {
  it('loads a minimal valid scenario and fills in the defaults', async () => {
    const scenario = await loadScenario(writeScenarioObject('valid', minimal()));

    expect(scenario.name).toBe('mini');
    expect(scenario.seed).toBe(1);
    expect(scenario.horizon).toBe(7 * 24 * 3_600_000);
    expect(scenario.domain.throttle).toEqual({
      inProcessJobs: 30,
      jobsPerMinutePerService: 100,
      jobsPerMinuteDomain: 300,
    });
    expect(scenario.domain.instances[0]).toEqual({ id: 'BES01A', srpId: 'S1', softwareVersion: '4.1.7' });
    expect(scenario.fleet.coverage.alwaysOnlineShare).toBe(0.6);
    expect(scenario.plans.phased).toMatchObject({ kind: 'phased', size: 5, gateCheckEvery: 60_000, at: 0 });
  });

  it('accepts a file written with defineScenario, which returns its argument unchanged', () => {
    const input = minimal() as Parameters<typeof defineScenario>[0];
    expect(defineScenario(input)).toBe(input);
  });

  it('names a missing required field', async () => {
    const err = await invalidFileError('no-users', (s) => {
      delete s.fleet.users;
    });
    expect(err.message).toContain('fleet.users: expected a number, found nothing');
    expect(err.issues).toEqual([{ path: 'fleet.users', problem: 'expected a number, found nothing' }]);
  });

  it('names a field of the wrong type with the expected type and the value found', async () => {
    const err = await invalidFileError('users-ten', (s) => {
      s.fleet.users = 'ten';
    });
    expect(err.message).toContain("fleet.users: expected a number, found 'ten'");
  });

  it('names a negative phase size by plan name', async () => {
    const err = await invalidFileError('negative-size', (s) => {
      s.plans = { slowMove: { ...s.plans.phased, size: -3 } };
    });
    expect(err.message).toContain('plans.slowMove.size: expected a number > 0, found -3');
  });

  it('lists the allowed plan kinds and the one found', async () => {
    const err = await invalidFileError('unknown-kind', (s) => {
      s.plans.phased.kind = 'foo';
    });
    expect(err.message).toContain(
      "plans.phased.kind: expected one of 'collapse' | 'bigBang' | 'phased' | 'itPolicyChange' | " +
        "'activationStorm' | 'commanded', found 'foo'",
    );
  });

  it('names the file and the thrown message when the file throws on import', async () => {
    const file = writeScenario('throws', "throw new Error('boom from scenario');\nexport default {};\n");
    const err = await loadError(file);
    expect(err.code).toBe('SCENARIO_LOAD_FAILED');
    expect(err.message).toContain(file);
    expect(err.message).toContain('boom from scenario');
    expect((err.cause as Error).message).toBe('boom from scenario');
  });

  it('says a file does not exist and lists the scenarios that do', async () => {
    const project = mkdtempSync(join(dir, 'project-'));
    mkdirSync(join(project, 'scenarios'));
    for (const name of ['flagship.ts', 'burst.ts', 'flagship.test.ts', 'notes.md']) {
      writeFileSync(join(project, 'scenarios', name), 'export default {};\n');
    }
    const cwd = process.cwd();
    process.chdir(project);
    try {
      const err = await loadError('scenarios/flagshp.ts');
      expect(err.code).toBe('SCENARIO_LOAD_FAILED');
      expect(err.message).toContain('scenarios/flagshp.ts does not exist');
      expect(err.message).toContain('Scenarios in scenarios: scenarios/burst.ts, scenarios/flagship.ts.');
      expect(err.message).not.toContain('flagship.test.ts');
    } finally {
      process.chdir(cwd);
    }
  });

  it('rejects a file without a default export', async () => {
    const file = writeScenario('named-only', `export const scenario = ${JSON.stringify(minimal())};\n`);
    const err = await loadError(file);
    expect(err.code).toBe('SCENARIO_LOAD_FAILED');
    expect(err.message).toContain(`${file} has no default export (it exports only scenario)`);
  });

  it('rejects a default export that is not an object', async () => {
    const file = writeScenario('default-number', 'export default 42;\n');
    const err = await loadError(file);
    expect(err.code).toBe('SCENARIO_INVALID');
    expect(err.message).toContain(`${file} default-exports 42, expected a scenario object`);
  });

  it("parses '15m' to 900000 ms and '7d' to a week", async () => {
    const scenario = minimal();
    scenario.horizon = '7d';
    const loaded = await loadScenario(writeScenarioObject('durations', scenario));
    expect(loaded.plans.phased).toMatchObject({ every: 900_000 });
    expect(loaded.horizon).toBe(7 * 86_400_000);
  });

  it("names the field when a duration such as 'soon' does not parse", async () => {
    const err = await invalidFileError('duration-soon', (s) => {
      s.plans.phased.every = 'soon';
    });
    expect(err.message).toContain(
      "plans.phased.every: expected a duration (milliseconds, or a string such as '15m'), found 'soon'",
    );
  });

  it('reports an empty duration string instead of crashing in ms()', () => {
    const scenario = minimal();
    scenario.engine = { resendInterval: '' };
    expect(parseError(scenario).message).toContain('engine.resendInterval: expected a duration');
  });

  it('reports unknown keys where they are', async () => {
    const err = await invalidFileError('unknown-key', (s) => {
      s.plan = { oops: true };
      s.fleet.userz = 10;
    });
    expect(err.message).toContain('\n  plan: unknown key, found { oops: true }');
    expect(err.message).toContain('\n  fleet.userz: unknown key, found 10');
  });
});

describe('parseScenario messages', () => {
  it('uses brackets for array indices and for names that are not identifiers', () => {
    const scenario = minimal();
    scenario.domain.instances.push({ id: 'BES02A', srpId: 'S2' }, { id: 'not an id', srpId: 'S3' });
    scenario.plans['phased-2k'] = { ...scenario.plans.phased, size: 0 };
    const err = parseError(scenario);
    expect(err.message).toContain('\n  domain.instances[2].id: expected an instance id such as BES01A');
    expect(err.message).toContain("found 'not an id'");
    expect(err.message).toContain("\n  plans['phased-2k'].size: expected a number > 0, found 0");
  });

  it('reports the failing field inside a union alternative rather than "invalid input"', () => {
    const scenario = minimal();
    scenario.fleet.coverage = { online: { kind: 'uniform', min: 'a', max: 5 } };
    scenario.domain.throttle = { inProcessJobs: 'lots' };
    const err = parseError(scenario);
    expect(err.message).toContain(
      'fleet.coverage.online.min: expected a duration (milliseconds, or a string',
    );
    expect(err.message).toContain(
      "domain.throttle.inProcessJobs: expected a number, null or false, found 'lots'",
    );
    expect(err.message).not.toContain('Invalid input');
  });

  it('shortens long values', () => {
    const scenario = minimal();
    scenario.fleet.users = 'x'.repeat(500);
    const line = parseError(scenario).message.split('\n')[1]!;
    expect(line).toMatch(/^ {2}fleet\.users: expected a number, found 'x+'\.\.\. \d+ more characters$/);
    expect(line.length).toBeLessThan(120);
  });

  it('starts with the source and counts the problems, one line each', () => {
    const scenario = minimal();
    scenario.fleet.users = -1;
    scenario.name = 'Not A Slug';
    const err = parseError(scenario);
    const [head, ...lines] = err.message.split('\n');
    expect(head).toBe(`Scenario inline.ts is invalid (${lines.length} problems):`);
    expect(lines).toContain("  name: expected a lower-case slug such as flagship-10k, found 'Not A Slug'");
    expect(err.issues).toHaveLength(lines.length);
    expect(err.exitCode).toBe(2);
    expect(err.retriable).toBe(false);
    expect(err).toBeInstanceOf(PhasebenchError);
  });

  it('rejects any fleet.users that is not a positive integer, naming fleet.users', () => {
    fc.assert(
      fc.property(
        fc
          .jsonValue()
          .filter((users) => !(typeof users === 'number' && Number.isInteger(users) && users > 0)),
        (users) => {
          const scenario = minimal();
          scenario.fleet.users = users;
          const err = parseError(scenario);
          expect(err.message).toContain('\n  fleet.users: ');
          expect(err.issues.some((issue) => issue.path === 'fleet.users')).toBe(true);
        },
      ),
    );
  });
});

describe('formatError', () => {
  it('prints the code and message of our errors, with the stack only in debug mode', () => {
    const err = parseError({ ...minimal(), fleet: { users: 'ten' } });
    const text = formatError(err, { debug: false });
    expect(text).toBe(
      "[SCENARIO_INVALID] Scenario inline.ts is invalid (1 problem):\n  fleet.users: expected a number, found 'ten'",
    );
    expect(formatError(err, { debug: true })).toContain('at parseScenario');
  });

  it('prints other errors as a one-liner with their cause, not a stack', () => {
    const cause = Object.assign(new Error('EACCES: permission denied, open results/x'), { code: 'EACCES' });
    const text = formatError(new TypeError('cannot write summary', { cause }), { debug: false });
    expect(text.split('\n')).toEqual([
      'TypeError: cannot write summary',
      '  caused by: Error: EACCES: permission denied, open results/x',
      '  (set PHASEBENCH_DEBUG=1 to see the stack)',
    ]);
  });

  it('does not repeat a cause the message already quotes', async () => {
    const file = writeScenario('throws-again', "throw new RangeError('bad range');\n");
    const text = formatError(await loadError(file), { debug: false });
    expect(text).toBe(
      `[SCENARIO_LOAD_FAILED] Scenario file ${file} could not be loaded: importing it threw RangeError: bad range`,
    );
  });
});
