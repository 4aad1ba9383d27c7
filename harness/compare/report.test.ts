import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type CompareResult, compareSummaries } from './compare.ts';
import { renderJUnit, renderMarkdown, writeReports } from './report.ts';
import { HOUR_MS, MINUTE_MS, runSummary, spread } from './test-summaries.ts';
import { parseThresholds } from './thresholds.ts';

/** big-bang unchanged; phased-500 slower (makespan and push latency) with phase 2 converging late. */
function regressedComparison(thresholds: string[]): CompareResult {
  const baseline = runSummary({
    'big-bang': { makespanMs: 2 * HOUR_MS },
    'phased-500': {
      makespanMs: 8 * HOUR_MS,
      pushDeliveryMs: spread(400, 1_000, 60_000),
      phases: [
        { phase: 1, convergenceMs: 20 * MINUTE_MS },
        { phase: 2, convergenceMs: 25 * MINUTE_MS },
      ],
    },
  });
  const candidate = runSummary({
    'big-bang': { makespanMs: 2 * HOUR_MS },
    'phased-500': {
      makespanMs: 9 * HOUR_MS,
      pushDeliveryMs: spread(400, 31_000, 90_000),
      phases: [
        { phase: 1, convergenceMs: 20 * MINUTE_MS },
        { phase: 2, convergenceMs: 40 * MINUTE_MS },
      ],
    },
  });
  return compareSummaries(
    { path: '/runs/base/summary.json', summary: baseline },
    { path: '/runs/cand/summary.json', summary: candidate },
    parseThresholds(thresholds),
  );
}

describe('renderJUnit', () => {
  const result = regressedComparison(['makespan < +10%', 'stranded == 0', 'nightly: makespan < 9h']);
  const xml = renderJUnit(result);

  it('has one testsuite per plan, the unknown plan of a threshold included', () => {
    const suites = [...xml.matchAll(/<testsuite name="([^"]+)"/g)].map((match) => match[1]);
    expect(suites).toEqual(['big-bang', 'phased-500', 'nightly']);
  });

  it('has one testcase per threshold result', () => {
    expect(xml.match(/<testcase /g)).toHaveLength(5);
  });

  it('marks the failing threshold with a failure that carries the message', () => {
    expect(xml).toContain(
      '<failure message="makespan 9h 00m is not &lt; 8h 48m (baseline 8h 00m +10%)" type="ThresholdFailed"/>',
    );
    expect(xml.match(/<failure /g)).toHaveLength(1);
  });

  it('marks a threshold that cannot be checked as an error', () => {
    expect(xml).toMatch(
      /<error message="cannot check: no plan 'nightly' in the candidate[^"]*" type="ThresholdNotCheckable"/,
    );
  });

  it('counts failures and errors on the root element', () => {
    expect(xml).toMatch(/<testsuites name="phasebench compare" tests="5" failures="1" errors="1"/);
  });
});

describe('renderMarkdown', () => {
  const result = regressedComparison(['makespan < +10%', 'phase[*].convergence < 30m']);
  const markdown = renderMarkdown(result);

  it('leads with the overall verdict', () => {
    expect(markdown.split('\n')[0]).toBe('# phasebench compare: ❌ 2 of 6 thresholds failed');
  });

  it('has a metric table per plan with baseline, candidate, change and verdict', () => {
    expect(markdown).toContain('## Plan `phased-500` ❌');
    expect(markdown).toContain('## Plan `big-bang` ✅');
    expect(markdown).toContain('| Metric | Baseline | Candidate | Change | Verdict |');
    expect(markdown).toContain('| makespan | 8h 00m | 9h 00m | +12.5% | ❌ |');
    expect(markdown).toContain('| makespan | 2h 00m | 2h 00m | ±0 | ✅ |');
    // No threshold looks at stranded: no verdict.
    expect(markdown).toContain('| stranded | 0 | 0 | ±0 |  |');
  });

  it('shows each phase as baseline → candidate with its verdict', () => {
    expect(markdown).toMatch(/\| 2 \| 25m 00s → 40m 00s \| [^\n]+ \| ❌ \|/);
    expect(markdown).toMatch(/\| 1 \| 20m 00s → 20m 00s \| [^\n]+ \| ✅ \|/);
  });

  it('lists the threshold results with their message', () => {
    expect(markdown).toContain(
      '| `makespan < +10%` | makespan | 8h 00m | 9h 00m | 8h 48m | ❌ | makespan 9h 00m is not < 8h 48m (baseline 8h 00m +10%) |',
    );
    expect(markdown).toContain('| `phase[*].convergence < 30m` | phase[2].convergence |');
  });

  it('reports the Kolmogorov–Smirnov comparison of the latency histograms', () => {
    expect(markdown).toContain('### Latency distributions (two-sample Kolmogorov–Smirnov)');
    expect(markdown).toMatch(
      /\| push_delivery \| 400 \/ 400 \| 0\.\d{3} \| [^|]+ \| \+30\.0s \| [^\n]*distributions differ/,
    );
    expect(markdown).toMatch(
      /\| user_migration \| 200 \/ 200 \| 0\.000 \| 1\.000 \| ±0 \| ±0 \| ±0 \| no significant difference/,
    );
  });
});

describe('writeReports', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes Markdown, JUnit and JSON into the output folder, creating it', async () => {
    dir = await mkdtemp(join(tmpdir(), 'phasebench-report-'));
    const result = regressedComparison(['makespan < +10%']);
    const paths = await writeReports(result, { outDir: join(dir, 'nested', 'out') });
    expect(paths.markdown).toBe(join(dir, 'nested', 'out', 'compare.md'));
    expect(await readFile(paths.markdown, 'utf8')).toBe(renderMarkdown(result));
    expect(await readFile(paths.junit, 'utf8')).toBe(renderJUnit(result));
    expect(JSON.parse(await readFile(paths.json, 'utf8'))).toEqual(result);
  });

  it('sends JUnit and Markdown to the given files instead', async () => {
    dir = await mkdtemp(join(tmpdir(), 'phasebench-report-'));
    const paths = await writeReports(regressedComparison(['makespan < +10%']), {
      outDir: join(dir, 'out'),
      junitPath: join(dir, 'ci', 'compare.xml'),
      markdownPath: join(dir, 'summary.md'),
    });
    expect(paths.junit).toBe(join(dir, 'ci', 'compare.xml'));
    expect(await readFile(join(dir, 'ci', 'compare.xml'), 'utf8')).toContain('<failure ');
    expect(await readFile(join(dir, 'summary.md'), 'utf8')).toContain(
      '| Metric | Baseline | Candidate | Change | Verdict |',
    );
  });
});
