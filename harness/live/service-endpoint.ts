/**
 * The HTTP side of a live service: `GET /healthz` (200 with the service's figures while it is
 * healthy, 503 when not) and `GET /metrics` (Prometheus text from the service's registry).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface ServiceEndpointOptions {
  host?: string;
  /** 0 picks a free port. */
  port: number;
  service: string;
  health: () => { ok: boolean } & Record<string, unknown>;
  /** Default: a registry with the process metrics only. */
  registry?: Registry;
}

export interface ServiceEndpoint {
  url: string;
  port: number;
  close(): Promise<void>;
}

export async function startServiceEndpoint(options: ServiceEndpointOptions): Promise<ServiceEndpoint> {
  const registry = options.registry ?? defaultRegistry();
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string): void => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    if (request.method !== 'GET') {
      reply(405, 'application/json', JSON.stringify({ error: `method ${request.method} not allowed` }));
    } else if (path === '/healthz') {
      const health = options.health();
      reply(
        health.ok ? 200 : 503,
        'application/json',
        JSON.stringify({ service: options.service, ...health }),
      );
    } else if (path === '/metrics') {
      registry.metrics().then(
        (text) => reply(200, registry.contentType, text),
        (error: unknown) => reply(500, 'application/json', JSON.stringify({ error: String(error) })),
      );
    } else {
      reply(404, 'application/json', JSON.stringify({ error: `no route ${path}; try /healthz or /metrics` }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function defaultRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
