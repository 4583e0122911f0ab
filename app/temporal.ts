/**
 * Resolving the Temporal server: TEMPORAL_ADDRESS when set, otherwise the
 * embedded dev server (finding or building the CLI first). Then the namespace
 * and pinflow's search attributes are ensured.
 */
import { Connection } from '@temporalio/client';
import type { PinflowConfig } from './config';
import { devServerDbFile, startDevServer, waitForTemporal, type DevServer } from './dev-server';
import { ensureNamespace, ensureSearchAttributes } from './namespace';
import { findConfiguredTemporalCli } from './temporal-cli';

export interface TemporalHandle {
  address: string;
  uiUrl: string;
  /** Set when pinflow started the server itself. */
  devServer: DevServer | undefined;
  stop(): Promise<void>;
}

export async function resolveTemporal(config: PinflowConfig, log: (line: string) => void = () => undefined): Promise<TemporalHandle> {
  let devServer: DevServer | undefined;
  let address = config.temporal.address;
  let uiUrl = config.temporal.uiUrl;
  if (address) {
    log(`using the Temporal server at ${address} (TEMPORAL_ADDRESS)`);
    await waitForTemporal(address, { timeoutMs: 30_000 });
  } else {
    const cli = await findConfiguredTemporalCli(config, log);
    log(`starting the embedded Temporal dev server (${cli.path}, found via ${cli.source})`);
    devServer = await startDevServer({
      cliPath: cli.path,
      dbFile: devServerDbFile(config.dataDir),
      port: config.temporal.devServerPort,
      uiPort: config.temporal.devServerUiPort,
      namespaces: config.temporal.namespace === 'default' ? [] : [config.temporal.namespace],
      // Encrypted payloads: the embedded UI decodes them through the API's codec endpoint.
      ...(config.encryption.keys ? { uiCodecEndpoint: `http://${config.api.host === '0.0.0.0' ? 'localhost' : config.api.host}:${config.api.port}/codec` } : {}),
    });
    address = devServer.address;
    uiUrl = config.temporal.uiUrl;
  }
  const conn = await Connection.connect({ address });
  try {
    await ensureNamespace(conn, config.temporal.namespace);
    await ensureSearchAttributes(conn, config.temporal.namespace, { metadataKeys: config.temporal.searchableMetadata });
  } finally {
    await conn.close();
  }
  const server = devServer;
  return { address, uiUrl, devServer: server, stop: async () => server?.stop() };
}
