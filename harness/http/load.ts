/**
 * Ingress load against the admin API with autocannon's programmatic API: valid command batches,
 * bounded in connections, time and count, loopback unless the caller allows otherwise. Used by
 * `phasebench http-load` and by bench/http.bench.ts, so both send the same requests.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import type { CommandBatchInput, CommandInput } from './commands.ts';
import { MAX_COMMANDS_PER_BATCH, MAX_USERS_PER_COMMAND } from './commands.ts';
import { HttpAdminError } from './errors.ts';

export const LOAD_BOUNDS = {
  connections: { min: 1, max: 256 },
  /** Seconds. */
  durationSeconds: { min: 1, max: 600 },
  /** Requests in total. */
  amount: { min: 1, max: 1_000_000 },
  commandsPerBatch: { min: 1, max: MAX_COMMANDS_PER_BATCH },
  usersPerCommand: { min: 1, max: MAX_USERS_PER_COMMAND },
  batchPool: { min: 1, max: 10_000 },
  /** Requests in flight on one connection. */
  pipelining: { min: 1, max: 64 },
} as const;

export interface HttpLoadParameters {
  /** The admin API's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  connections: number;
  /** The run stops after this many seconds even when `amount` has not been reached. */
  durationSeconds: number;
  /** Requests in total; the run stops at whichever of amount and duration comes first. */
  amount?: number;
  /** The run id the batches are submitted for. */
  run: string;
  commandsPerBatch: number;
  usersPerCommand: number;
  /**
   * Send this many batches, built before the run, over and over in turn, instead of a fresh
   * batch per request. The load generator then only writes prepared bytes, so it measures the
   * server rather than itself (the bench uses it). Omitted: a fresh batch per request.
   */
  batchPool?: number;
  /** Requests sent on a connection before its first answer is back; default 1. */
  pipelining?: number;
}

/** What http-load.json holds: the parameters and autocannon's result as it reported it. */
export interface HttpLoadRecord {
  schema: 'phasebench.http-load/1';
  parameters: HttpLoadParameters;
  result: autocannon.Result;
}

/** Users the generated commands draw from (u000000 to u099999), like a 100,000-user fleet. */
const FLEET_USERS = 100_000;
const TARGET_INSTANCES = ['BESNEW1', 'BESNEW2', 'BESNEW3', 'BESNEW4', 'BESNEW5'];
const SOURCE_INSTANCES = ['BES01A', 'BES01B', 'BES01C', 'BES01D', 'BES01E'];

/**
 * An endless supply of valid batches for one run: the command types in turn, users walking
 * through the fleet so consecutive commands name different users. Deterministic.
 */
export function batchSupply(options: {
  run: string;
  commandsPerBatch: number;
  usersPerCommand: number;
}): () => CommandBatchInput {
  let command = 0;
  let user = 0;
  const nextUsers = (): string[] =>
    Array.from({ length: options.usersPerCommand }, () => {
      const id = `u${String(user).padStart(6, '0')}`;
      user = (user + 1) % FLEET_USERS;
      return id;
    });
  const nextCommand = (): CommandInput => {
    const n = command++;
    switch (n % 3) {
      case 0:
        return {
          type: 'moveUsers',
          users: nextUsers(),
          to: TARGET_INSTANCES[n % TARGET_INSTANCES.length]!,
          phase: Math.floor(n / 300),
        };
      case 1:
        return {
          type: 'changeItPolicy',
          instances: [SOURCE_INSTANCES[n % SOURCE_INSTANCES.length]!],
          policy: `load-policy-${n}`,
        };
      default:
        return { type: 'activateDevices', users: nextUsers(), window: '15m' };
    }
  };
  return () => ({
    run: options.run,
    commands: Array.from({ length: options.commandsPerBatch }, nextCommand),
  });
}

/** True for localhost, 127.0.0.0/8 and ::1: addresses that never leave the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || host === '::ffff:127.0.0.1' || /^::ffff:7f/.test(host);
  return false;
}

/**
 * Checks a target URL: http(s), and loopback unless `allowRemote`.
 * @throws HttpAdminError URL_INVALID or HOST_NOT_LOOPBACK (exit code 2)
 */
export function checkTarget(url: string, allowRemote: boolean): URL {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new HttpAdminError(
      'URL_INVALID',
      `--url '${url}' is not a URL; expected e.g. http://127.0.0.1:8080`,
    );
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new HttpAdminError('URL_INVALID', `--url '${url}' is not http or https`);
  }
  if (!allowRemote && !isLoopbackHost(target.hostname)) {
    throw new HttpAdminError(
      'HOST_NOT_LOOPBACK',
      `${target.hostname} is not a loopback address; load is only sent to this machine unless you ` +
        'add --allow-remote (and only to servers you are allowed to load)',
    );
  }
  return target;
}

/**
 * @throws HttpAdminError LOAD_OUT_OF_BOUNDS (exit code 2) naming the first parameter out of bounds
 */
export function checkBounds(parameters: HttpLoadParameters): void {
  const check = (
    name: string,
    flag: string,
    value: number | undefined,
    bounds: { min: number; max: number },
  ) => {
    if (value === undefined) return;
    if (!Number.isInteger(value) || value < bounds.min || value > bounds.max) {
      throw new HttpAdminError(
        'LOAD_OUT_OF_BOUNDS',
        `${flag} must be an integer from ${bounds.min} to ${bounds.max.toLocaleString('en-US')} (${name}), found ${value}`,
      );
    }
  };
  check('concurrent connections', '--connections', parameters.connections, LOAD_BOUNDS.connections);
  check('seconds', '--duration', parameters.durationSeconds, LOAD_BOUNDS.durationSeconds);
  check('requests in total', '--amount', parameters.amount, LOAD_BOUNDS.amount);
  check('commands in each request', '--commands', parameters.commandsPerBatch, LOAD_BOUNDS.commandsPerBatch);
  check('users in each command', '--users', parameters.usersPerCommand, LOAD_BOUNDS.usersPerCommand);
  check('batches prepared', 'batchPool', parameters.batchPool, LOAD_BOUNDS.batchPool);
  check('requests in flight per connection', 'pipelining', parameters.pipelining, LOAD_BOUNDS.pipelining);
  if (parameters.amount !== undefined && parameters.amount < parameters.connections) {
    throw new HttpAdminError(
      'LOAD_OUT_OF_BOUNDS',
      `--amount (${parameters.amount}) must be at least --connections (${parameters.connections}): ` +
        'every connection sends at least one request',
    );
  }
}

export interface LoadRunHooks {
  /** Called with the instance once it runs, e.g. to attach autocannon.track for a progress bar. */
  onStart?: (instance: autocannon.Instance) => void;
}

/**
 * Sends command batches to POST /v1/commands until the duration or the amount is reached.
 * Each request carries a fresh batch (the same sequence on every run). Resolves with
 * autocannon's result, its latency histogram untouched.
 */
export async function runHttpLoad(
  parameters: HttpLoadParameters,
  token: string,
  hooks: LoadRunHooks = {},
): Promise<autocannon.Result> {
  checkBounds(parameters);
  const nextBatch = batchSupply(parameters);
  const endpoint = new URL('/v1/commands', parameters.url);
  const requests: autocannon.Request[] =
    parameters.batchPool === undefined
      ? [{ setupRequest: (request) => ({ ...request, body: JSON.stringify(nextBatch()) }) }]
      : Array.from({ length: parameters.batchPool }, () => ({ body: JSON.stringify(nextBatch()) }));
  return new Promise((resolvePromise, reject) => {
    const instance = autocannon(
      {
        url: endpoint.href,
        connections: parameters.connections,
        duration: parameters.durationSeconds,
        // maxOverallRequests (unlike amount) keeps the duration in force: whichever comes first.
        ...(parameters.amount === undefined ? {} : { maxOverallRequests: parameters.amount }),
        ...(parameters.pipelining === undefined ? {} : { pipelining: parameters.pipelining }),
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        requests,
      },
      (error, result) => (error ? reject(error) : resolvePromise(result)),
    );
    hooks.onStart?.(instance);
  });
}

/** results/http-load-<UTC timestamp>, like a run's folder: sortable, never overwriting. */
export function defaultHttpLoadDir(startedAt: Date, root = 'results'): string {
  return resolve(root, `http-load-${utcStamp(startedAt)}`);
}

/** 20250314T093000: the results folders' timestamp (UTC, to the second). */
export function utcStamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '');
}

export const HTTP_LOAD_FILE = 'http-load.json';
