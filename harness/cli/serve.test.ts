/**
 * `phasebench serve` as an operator meets it: no token, no server; a running server answers and
 * stops cleanly on SIGTERM or SIGINT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningServer, serveCommand, startServe } from './serve.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const SERVE = resolve(import.meta.dirname, 'serve.ts');
const TOKEN = 'serve-test-token';

const servers: RunningServer[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

const options = {
  port: 0,
  host: '127.0.0.1',
  rateLimit: 0,
  bodyLimit: 1024 * 1024,
  logLevel: 'silent' as const,
};

describe('phasebench serve', () => {
  it.each([
    ['unset', {}],
    ['empty', { PHASEBENCH_SERVE_TEST_TOKEN: '  ' }],
  ])('refuses to start when the token variable is %s (exit code 2)', async (_label, env) => {
    await expect(
      startServe({ ...options, tokenEnv: 'PHASEBENCH_SERVE_TEST_TOKEN' }, env as NodeJS.ProcessEnv),
    ).rejects.toMatchObject({
      code: 'TOKEN_MISSING',
      exitCode: 2,
      message: expect.stringContaining('PHASEBENCH_SERVE_TEST_TOKEN'),
    });
  });

  it('the command itself refuses without a token', async () => {
    delete process.env.PHASEBENCH_SERVE_TEST_UNSET;
    await expect(
      serveCommand()
        .exitOverride()
        .parseAsync(['--port', '0', '--token-env', 'PHASEBENCH_SERVE_TEST_UNSET'], { from: 'user' }),
    ).rejects.toMatchObject({ code: 'TOKEN_MISSING', exitCode: 2 });
  });

  it('an address in use is LISTEN_FAILED (exit code 1)', async () => {
    const env = { PHASEBENCH_TOKEN: TOKEN };
    const first = await startServe({ ...options, tokenEnv: 'PHASEBENCH_TOKEN' }, env);
    servers.push(first);
    const port = Number(new URL(first.url).port);
    await expect(startServe({ ...options, port, tokenEnv: 'PHASEBENCH_TOKEN' }, env)).rejects.toMatchObject({
      code: 'LISTEN_FAILED',
      exitCode: 1,
    });
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('answers, then stops cleanly on %s', async (signal) => {
    const script =
      `const { serveCommand } = await import(${JSON.stringify(SERVE)});\n` +
      "await serveCommand().parseAsync(['--port', '0', '--log-level', 'warn'], { from: 'user' });";
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: ROOT,
      env: { ...process.env, PHASEBENCH_TOKEN: TOKEN },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
    const url = await new Promise<string>((resolveUrl, reject) => {
      child.stderr!.on('data', () => {
        const match = /admin API on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (match) resolveUrl(match[1]!);
      });
      void exited.then((code) => reject(new Error(`serve exited (${code}) before listening:\n${stderr}`)));
    });

    const accepted = await fetch(`${url}/v1/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        run: 'r1',
        commands: [{ type: 'moveUsers', users: ['u000001'], to: 'BESNEW1' }],
      }),
    });
    expect(accepted.status).toBe(202);
    const status = await fetch(`${url}/v1/runs/r1`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await status.json()).toMatchObject({ commandsAccepted: 1, byType: { moveUsers: 1 } });
    const metrics = await (await fetch(`${url}/metrics`)).text();
    expect(metrics).toContain('phasebench_commands_accepted_total{type="moveUsers"} 1');

    child.kill(signal);
    expect(await exited).toBe(0);
    expect(stderr).toContain(`${signal}: finishing requests in flight`);
    expect(stderr).toContain('admin API stopped');
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});
