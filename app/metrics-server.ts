/**
 * Where processes without the HTTP API expose metrics: a small `/metrics`
 * server for the standalone worker (PINFLOW_METRICS_PORT), and the Temporal
 * SDK runtime's own Prometheus exporter (PINFLOW_SDK_METRICS_ADDRESS). The
 * metrics themselves are observability/metrics.ts; the README's "Metrics"
 * section lists them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Runtime, type RuntimeOptions } from '@temporalio/worker';
import { metricsText } from '../observability/metrics';

/** A running metrics server: its URL and how to stop it. */
export interface MetricsServer {
  url: string;
  close(): Promise<void>;
}

/** Serve `GET /metrics` (Prometheus text format) on host:port; every other path is 404. */
export async function startMetricsServer(host: string, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    metricsText().then(
      ({ contentType, body }) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${addr.port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Install the Temporal SDK runtime (once per process, before any worker or
 * NativeConnection exists) with `options`, plus its Prometheus exporter on
 * `sdkAddress` when set. Returns false when the runtime was already installed
 * (the exporter could then not be added) and `sdkAddress` was asked for.
 */
/** Whether this process already has its Temporal runtime (installed, or created by a first connection). */
export function runtimeInstalled(): boolean {
  return Runtime._instance !== undefined;
}

export function installRuntime(sdkAddress: string | undefined, options: RuntimeOptions = {}, log: (line: string) => void = () => undefined): boolean {
  if (!sdkAddress && Object.keys(options).length === 0) return true;
  const telemetryOptions = { ...options.telemetryOptions, ...(sdkAddress ? { metrics: { prometheus: { bindAddress: sdkAddress } } } : {}) };
  try {
    Runtime.install({ ...options, ...(Object.keys(telemetryOptions).length ? { telemetryOptions } : {}) });
    if (sdkAddress) log(`Temporal SDK metrics on http://${sdkAddress}/metrics`);
    return true;
  } catch (err) {
    if (!sdkAddress) throw err;
    log(`Temporal SDK metrics not exported on ${sdkAddress}: ${(err as Error).message}`);
    return false;
  }
}
