/**
 * A results folder's metrics into Prometheus: the plans' event logs folded into per-minute
 * series, written as OpenMetrics, and turned into TSDB blocks by promtool
 * (`promtool tsdb create-blocks-from openmetrics`), which a Prometheus started on that folder
 * serves as if the run had happened at the chosen wall time.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { PhasebenchError } from '../errors.ts';
import { readEventsFile } from '../log/file.ts';
import { eventsPath, readSummary } from '../results/store.ts';
import {
  defaultStartMs,
  type OpenMetricsStats,
  type PlanMinuteSeries,
  projectMinuteSeries,
  writeOpenMetricsFile,
} from './openmetrics.ts';

export interface ExportOptions {
  /** Plans to export; default every plan in summary.json. */
  plans?: string[];
  /** Wall time (epoch ms) of virtual time 0; default defaultStartMs(now, the run's span). */
  startMs?: number;
  /** The wall clock's reading, for the default start. */
  now: Date;
  /** The `run` label; default the results folder's name. */
  run?: string;
}

export interface ExportResult extends OpenMetricsStats {
  startMs: number;
  plans: PlanMinuteSeries[];
}

/** Folds the chosen plans' logs of a results folder into per-minute series. */
export async function projectRun(
  runDir: string,
  options: Pick<ExportOptions, 'plans' | 'run'> = {},
): Promise<PlanMinuteSeries[]> {
  const summary = await readSummary(runDir);
  const available = Object.keys(summary.plans);
  const plans = options.plans ?? available;
  const unknown = plans.filter((p) => !available.includes(p));
  if (unknown.length > 0) {
    throw new PhasebenchError(
      'PLAN_NOT_IN_RUN',
      `${runDir} has no plan named ${unknown.map((p) => `'${p}'`).join(', ')} (plans: ${available.join(', ')})`,
      { exitCode: 2 },
    );
  }
  const run = options.run ?? basename(resolve(runDir));
  const series: PlanMinuteSeries[] = [];
  for (const plan of plans)
    series.push(await projectMinuteSeries(readEventsFile(eventsPath(runDir, plan)), run));
  return series;
}

/** Writes a results folder's metrics as OpenMetrics text to `out` (a file, or '-' for stdout). */
export async function exportRunMetrics(
  runDir: string,
  out: string,
  options: ExportOptions,
): Promise<ExportResult> {
  const plans = await projectRun(runDir, options);
  const spanMs = Math.max(0, ...plans.map((p) => p.endMs));
  const startMs = options.startMs ?? defaultStartMs(options.now.getTime(), spanMs);
  const stats = await writeOpenMetricsFile(out, plans, { startMs });
  return { ...stats, startMs: stats.firstSampleMs, plans };
}

export interface BackfillOptions extends ExportOptions {
  /** The TSDB folder the blocks are written to (created if missing). */
  tsdb: string;
  /** The promtool binary; default $PROMTOOL or `promtool` on the PATH. */
  promtool?: string;
}

/**
 * Exports the run's metrics to a temporary OpenMetrics file and has promtool write TSDB blocks
 * from it into `options.tsdb`.
 * @throws PhasebenchError PROMTOOL_NOT_FOUND, PROMTOOL_FAILED
 */
export async function backfillRun(runDir: string, options: BackfillOptions): Promise<ExportResult> {
  const scratch = await mkdtemp(join(tmpdir(), 'phasebench-backfill-'));
  try {
    const file = join(scratch, 'metrics.om');
    const result = await exportRunMetrics(runDir, file, options);
    const spanHours = Math.ceil((result.lastSampleMs - result.firstSampleMs) / 3_600_000);
    await createBlocks(file, options.tsdb, {
      promtool: options.promtool ?? process.env.PROMTOOL ?? 'promtool',
      // promtool parses the whole file once per block, so blocks about as long as the run (it
      // rounds down to one of Prometheus's block ranges: 2h, 6h, 18h, 54h, 162h, ...).
      maxBlockDuration: `${Math.max(2, spanHours)}h`,
    });
    return result;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs `promtool tsdb create-blocks-from openmetrics <file> <tsdb>`. */
export async function createBlocks(
  file: string,
  tsdb: string,
  options: { promtool: string; maxBlockDuration?: string },
): Promise<void> {
  const args = ['tsdb', 'create-blocks-from', 'openmetrics', '--quiet'];
  if (options.maxBlockDuration) args.push(`--max-block-duration=${options.maxBlockDuration}`);
  args.push(file, tsdb);
  const { code, output, error } = await runTool(options.promtool, args);
  if (error) {
    throw new PhasebenchError(
      'PROMTOOL_NOT_FOUND',
      `cannot run ${options.promtool} (${error.message}): install Prometheus's promtool ` +
        `(Debian/Ubuntu: apt-get install prometheus) or set PROMTOOL to its path`,
      { cause: error },
    );
  }
  if (code !== 0) {
    throw new PhasebenchError(
      'PROMTOOL_FAILED',
      `${options.promtool} ${args.join(' ')} exited with ${code}: ${output.trim().split('\n').slice(-5).join(' | ')}`,
    );
  }
}

function runTool(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; output: string; error?: Error }> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', (error) => resolvePromise({ code: null, output, error }));
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

export interface PromSample {
  metric: Record<string, string>;
  /** The instant query's value, or the range query's values in time order. */
  values: number[];
}

/**
 * A Prometheus on 127.0.0.1 started and stopped by scripts/prometheus.sh, for tests and scripts
 * that backfill a run and query it over HTTP.
 */
export class LocalPrometheus {
  readonly url: string;
  private readonly env: NodeJS.ProcessEnv;

  /** @param options.port a free loopback port; options.tsdb the data folder to serve */
  constructor(options: { port: number; tsdb: string; config?: string }) {
    this.url = `http://127.0.0.1:${options.port}`;
    this.env = {
      ...process.env,
      PROMETHEUS_PORT: String(options.port),
      PROMETHEUS_TSDB: options.tsdb,
      ...(options.config ? { PROMETHEUS_CONFIG: options.config } : {}),
    };
  }

  /**
   * A Prometheus configuration that scrapes each job's target (`host:port`) every `intervalS`
   * seconds: what a test's own Prometheus needs to watch live processes.
   */
  static scrapeConfig(intervalS: number, jobs: Record<string, string>): string {
    const every = `${intervalS}s`;
    return stringify({
      global: { scrape_interval: every, scrape_timeout: every, evaluation_interval: every },
      scrape_configs: Object.entries(jobs).map(([job, target]) => ({
        job_name: job,
        static_configs: [{ targets: [target] }],
      })),
    });
  }

  /** A port free on 127.0.0.1 right now (the OS picks it), for a server of its own. */
  static freePort(): Promise<number> {
    return new Promise((resolvePort, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolvePort(port));
      });
    });
  }

  /** Starts it and waits until /-/ready answers. @throws PhasebenchError PROMETHEUS_FAILED */
  up(): Promise<void> {
    return this.script('up');
  }

  down(): Promise<void> {
    return this.script('down');
  }

  /** An instant query at `timeS` (epoch seconds). @throws PhasebenchError PROMQL_FAILED */
  async query(promql: string, timeS: number): Promise<PromSample[]> {
    const data = await this.api('query', { query: promql, time: String(timeS) });
    return data.result.map((r) => ({ metric: r.metric, values: [Number(r.value![1])] }));
  }

  /** A range query from `startS` to `endS` (epoch seconds). @throws PhasebenchError PROMQL_FAILED */
  async queryRange(promql: string, startS: number, endS: number, stepS = 60): Promise<PromSample[]> {
    const data = await this.api('query_range', {
      query: promql,
      start: String(startS),
      end: String(endS),
      step: String(stepS),
    });
    return data.result.map((r) => ({ metric: r.metric, values: (r.values ?? []).map((v) => Number(v[1])) }));
  }

  private async api(
    endpoint: string,
    params: Record<string, string>,
  ): Promise<{
    result: Array<{
      metric: Record<string, string>;
      value?: [number, string];
      values?: Array<[number, string]>;
    }>;
  }> {
    const response = await fetch(`${this.url}/api/v1/${endpoint}?${new URLSearchParams(params)}`);
    const body = (await response.json()) as { status: string; error?: string; data: never };
    if (body.status !== 'success')
      throw new PhasebenchError('PROMQL_FAILED', `${params.query}: ${body.error ?? response.statusText}`);
    return body.data;
  }

  private async script(command: 'up' | 'down'): Promise<void> {
    const script = resolve(import.meta.dirname, '../../scripts/prometheus.sh');
    const { code, output, error } = await runTool('bash', [script, command], this.env);
    if (error || code !== 0)
      throw new PhasebenchError(
        'PROMETHEUS_FAILED',
        `scripts/prometheus.sh ${command} failed (${error?.message ?? `exit ${code}`}): ${output.trim()}`,
      );
  }
}
