/**
 * Environment configuration and the Temporal CLI lookup order. No Temporal
 * server or Go toolchain is needed: the lookup is pointed at temp dirs.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PinflowError } from '../graph/errors';
import { loadConfig } from '../app/config';
import { findTemporalCli } from '../app/temporal-cli';

function expectPinflowError(code: string, ...fragments: (string | RegExp)[]) {
  return (err: unknown): true => {
    assert.ok(err instanceof PinflowError, `expected PinflowError, got ${String(err)}`);
    assert.equal(err.code, code);
    for (const f of fragments) {
      if (typeof f === 'string') assert.ok(err.message.includes(f), `message lacks ${JSON.stringify(f)}: ${err.message}`);
      else assert.match(err.message, f);
    }
    return true;
  };
}

describe('configuration and the Temporal CLI lookup', () => {
  describe('loadConfig', () => {
    it('logs default to JSON at info and tracing to off; LOG_LEVEL, LOG_FORMAT and the OTLP endpoint are validated', () => {
      const c = loadConfig({});
      assert.deepEqual(c.log, { level: 'info', format: 'json' });
      assert.deepEqual(c.tracing, { otlpEndpoint: undefined, serviceName: undefined });
      const set = loadConfig({ LOG_LEVEL: 'debug', LOG_FORMAT: 'pretty', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SERVICE_NAME: 'orders' });
      assert.deepEqual(set.log, { level: 'debug', format: 'pretty' });
      assert.deepEqual(set.tracing, { otlpEndpoint: 'http://collector:4318', serviceName: 'orders' });
      assert.throws(() => loadConfig({ LOG_LEVEL: 'loud' }), expectPinflowError('CONFIG_INVALID', 'LOG_LEVEL="loud"', 'trace'));
      assert.throws(() => loadConfig({ LOG_FORMAT: 'xml' }), expectPinflowError('CONFIG_INVALID', 'LOG_FORMAT="xml"'));
      assert.throws(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }), expectPinflowError('CONFIG_INVALID', 'OTEL_EXPORTER_OTLP_ENDPOINT'));
    });

    it('falls back to the documented defaults for an empty environment', () => {
      const c = loadConfig({});
      assert.equal(c.temporal.address, undefined);
      assert.equal(c.temporal.namespace, 'default');
      assert.equal(c.temporal.devServerPort, 7233);
      assert.equal(c.temporal.devServerUiPort, 8233);
      assert.equal(c.temporal.uiUrl, 'http://localhost:8233');
      assert.equal(c.temporal.cliPath, undefined);
      assert.equal(c.api.port, 8080);
      assert.equal(c.api.host, '127.0.0.1');
      assert.equal(c.databaseUrl, undefined);
      assert.equal(c.rpcModule, undefined);
      assert.equal(c.publishExamples, true);
      assert.equal(c.production, false);
      assert.equal(c.events.ttlMaxMs, 7 * 24 * 3600 * 1000);
      assert.equal(c.events.streamMaxAttempts, 10);
      assert.ok(c.dataDir.endsWith('.pinflow'), `dataDir ${c.dataDir} does not end with .pinflow`);
    });

    it('reads the event ttl maximum as milliseconds or a duration, and refuses anything else naming the variable', () => {
      assert.equal(loadConfig({ PINFLOW_EVENT_TTL_MAX: '90000' }).events.ttlMaxMs, 90_000);
      assert.equal(loadConfig({ PINFLOW_EVENT_TTL_MAX: '12h' }).events.ttlMaxMs, 12 * 3600 * 1000);
      assert.throws(() => loadConfig({ PINFLOW_EVENT_TTL_MAX: 'a week' }), /PINFLOW_EVENT_TTL_MAX="a week"/);
    });

    it('reads the Temporal address, database URL, API port and UI URL, dropping the trailing slash', () => {
      const c = loadConfig({
        TEMPORAL_ADDRESS: 'temporal.example:7233',
        DATABASE_URL: 'postgres://pinflow@db.example:5432/pinflow',
        PINFLOW_API_PORT: '9090',
        TEMPORAL_UI_URL: 'http://ui.example:8080/',
      });
      assert.equal(c.temporal.address, 'temporal.example:7233');
      assert.equal(c.databaseUrl, 'postgres://pinflow@db.example:5432/pinflow');
      assert.equal(c.api.port, 9090);
      assert.equal(c.temporal.uiUrl, 'http://ui.example:8080');
    });

    it('derives the default UI URL from PINFLOW_TEMPORAL_UI_PORT and detects production', () => {
      const c = loadConfig({ PINFLOW_TEMPORAL_UI_PORT: '18233', NODE_ENV: 'production', PINFLOW_PUBLISH_EXAMPLES: 'false' });
      assert.equal(c.temporal.uiUrl, 'http://localhost:18233');
      assert.equal(c.production, true);
      assert.equal(c.publishExamples, false);
    });

    it('rejects a non-numeric API port, naming the variable and the value received', () => {
      assert.throws(() => loadConfig({ PINFLOW_API_PORT: 'eighty' }), expectPinflowError('CONFIG_INVALID', 'invalid environment: ', 'PINFLOW_API_PORT="eighty"'));
    });

    it('rejects an out-of-range Temporal port, naming the variable and the value received', () => {
      assert.throws(() => loadConfig({ PINFLOW_TEMPORAL_PORT: '70000' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_TEMPORAL_PORT="70000"'));
    });

    it('reads the run limits (expression steps, forEach items) with their defaults, and refuses values over the caps', () => {
      assert.deepEqual(loadConfig({}).limits, { maxSteps: 5_000, maxForEachItems: 1_000 });
      assert.deepEqual(loadConfig({ PINFLOW_EXPRESSION_MAX_STEPS: '20000', PINFLOW_FOREACH_MAX_ITEMS: '2000' }).limits, { maxSteps: 20_000, maxForEachItems: 2_000 });
      assert.throws(
        () => loadConfig({ PINFLOW_EXPRESSION_MAX_STEPS: '1000000' }),
        expectPinflowError('CONFIG_INVALID', 'PINFLOW_EXPRESSION_MAX_STEPS="1000000": must be at most 20000: above it one evaluation can reach the workflow-task deadline'),
      );
      assert.throws(() => loadConfig({ PINFLOW_FOREACH_MAX_ITEMS: '20000' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_FOREACH_MAX_ITEMS="20000": must be at most 2000'));
      assert.throws(() => loadConfig({ PINFLOW_EXPRESSION_MAX_STEPS: 'lots' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_EXPRESSION_MAX_STEPS="lots"'));
    });

    it('reads the reconciler interval (default 60 s, 0 turns it off) and concurrency, refusing bad values by name', () => {
      assert.deepEqual(loadConfig({}).reconcile, { intervalMs: 60_000, concurrency: 16 });
      assert.deepEqual(loadConfig({ PINFLOW_RECONCILE_INTERVAL_MS: '0', PINFLOW_RECONCILE_CONCURRENCY: '4' }).reconcile, { intervalMs: 0, concurrency: 4 });
      assert.equal(loadConfig({ PINFLOW_RECONCILE_INTERVAL_MS: '1000' }).reconcile.intervalMs, 1_000);
      assert.throws(() => loadConfig({ PINFLOW_RECONCILE_INTERVAL_MS: 'hourly' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_RECONCILE_INTERVAL_MS="hourly"'));
      assert.throws(() => loadConfig({ PINFLOW_RECONCILE_INTERVAL_MS: '-5' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_RECONCILE_INTERVAL_MS="-5"'));
      assert.throws(() => loadConfig({ PINFLOW_RECONCILE_INTERVAL_MS: '1.5' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_RECONCILE_INTERVAL_MS="1.5"'));
      assert.throws(
        () => loadConfig({ PINFLOW_RECONCILE_INTERVAL_MS: '10' }),
        expectPinflowError('CONFIG_INVALID', 'PINFLOW_RECONCILE_INTERVAL_MS="10": must be 0 (off) or at least 1000 ms'),
      );
      assert.throws(() => loadConfig({ PINFLOW_RECONCILE_CONCURRENCY: '0' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_RECONCILE_CONCURRENCY="0"'));
      assert.throws(() => loadConfig({ PINFLOW_RECONCILE_CONCURRENCY: '1000' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_RECONCILE_CONCURRENCY="1000"'));
    });

    it('rejects a publish-examples flag other than true/false, naming the variable and the value received', () => {
      assert.throws(() => loadConfig({ PINFLOW_PUBLISH_EXAMPLES: 'yes' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_PUBLISH_EXAMPLES="yes"'));
    });

    it('waits for the database forever by default, and reads the start-up and connect timeouts, refusing bad values by name', () => {
      assert.deepEqual(loadConfig({}).database, { startupTimeoutMs: 0, connectTimeoutMs: 10_000 });
      assert.deepEqual(loadConfig({ PINFLOW_DB_STARTUP_TIMEOUT_MS: '120000', PINFLOW_DB_CONNECT_TIMEOUT_MS: '2500' }).database, { startupTimeoutMs: 120_000, connectTimeoutMs: 2_500 });
      assert.throws(() => loadConfig({ PINFLOW_DB_STARTUP_TIMEOUT_MS: '-1' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_DB_STARTUP_TIMEOUT_MS="-1"'));
      assert.throws(() => loadConfig({ PINFLOW_DB_CONNECT_TIMEOUT_MS: 'soon' }), expectPinflowError('CONFIG_INVALID', 'PINFLOW_DB_CONNECT_TIMEOUT_MS="soon"'));
    });

    it('turns the worker metrics server and the SDK metrics off by default, and reads their port, host and address', () => {
      assert.deepEqual(loadConfig({}).metrics, { port: 0, host: '127.0.0.1', sdkAddress: undefined });
      assert.deepEqual(loadConfig({ PINFLOW_METRICS_PORT: '0' }).metrics.port, 0);
      assert.deepEqual(
        loadConfig({ PINFLOW_METRICS_PORT: '9100', PINFLOW_METRICS_HOST: '0.0.0.0', PINFLOW_SDK_METRICS_ADDRESS: '0.0.0.0:9464' }).metrics,
        { port: 9100, host: '0.0.0.0', sdkAddress: '0.0.0.0:9464' },
      );
      assert.equal(loadConfig({ PINFLOW_SDK_METRICS_ADDRESS: '[::1]:9464' }).metrics.sdkAddress, '[::1]:9464');
      assert.equal(loadConfig({ PINFLOW_SDK_METRICS_ADDRESS: 'worker-1.local:65535' }).metrics.sdkAddress, 'worker-1.local:65535');
    });

    for (const bad of ['metrics', '-1', '65536', '1.5', '9100abc', '0x']) {
      it(`rejects PINFLOW_METRICS_PORT=${JSON.stringify(bad)} with CONFIG_INVALID, naming the variable and the value`, () => {
        assert.throws(() => loadConfig({ PINFLOW_METRICS_PORT: bad }), expectPinflowError('CONFIG_INVALID', 'invalid environment: ', `PINFLOW_METRICS_PORT=${JSON.stringify(bad)}`));
      });
    }

    it('rejects an SDK metrics address that is not host:port with a port in range, naming the variable', () => {
      for (const bad of ['9464', 'localhost', ':9464', 'localhost:', 'localhost:0', 'localhost:99999', 'http://localhost:9464', 'a b:9464']) {
        assert.throws(
          () => loadConfig({ PINFLOW_SDK_METRICS_ADDRESS: bad }),
          expectPinflowError('CONFIG_INVALID', `PINFLOW_SDK_METRICS_ADDRESS=${JSON.stringify(bad)}`),
          `accepted ${JSON.stringify(bad)}`,
        );
      }
    });
  });

  describe('findTemporalCli', () => {
    const baseTmp = tmpdir(); // captured before any test points TMPDIR elsewhere
    const dirs: string[] = [];
    const tempDir = (label: string): string => {
      const d = mkdtempSync(join(baseTmp, `pinflow-cfg-${label}-`));
      dirs.push(d);
      return d;
    };
    const savedPath = process.env.PATH;
    const savedTmpdir = process.env.TMPDIR;

    /** Run `fn` with PATH (and TMPDIR) pointing at empty dirs, so no real CLI is found. */
    async function isolated<T>(fn: () => Promise<T>): Promise<T> {
      const emptyPath = tempDir('path');
      const emptyTmp = tempDir('tmp');
      process.env.PATH = emptyPath;
      process.env.TMPDIR = emptyTmp;
      try {
        return await fn();
      } finally {
        if (savedPath === undefined) delete process.env.PATH;
        else process.env.PATH = savedPath;
        if (savedTmpdir === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = savedTmpdir;
      }
    }

    function fakeCli(dir: string): string {
      mkdirSync(dir, { recursive: true });
      const p = join(dir, 'temporal');
      writeFileSync(p, '#!/bin/sh\necho "temporal version 0.0.0-test"\n');
      chmodSync(p, 0o755);
      return p;
    }

    after(() => {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    });

    it('refuses an explicit path that is not an executable file', async () => {
      const dir = tempDir('explicit');
      const p = join(dir, 'temporal');
      writeFileSync(p, '#!/bin/sh\n');
      chmodSync(p, 0o644);
      await assert.rejects(
        findTemporalCli({ explicitPath: p, projectBinDir: tempDir('proj'), cacheBinDir: tempDir('cache'), allowBuild: false }),
        expectPinflowError('TEMPORAL_CLI_NOT_FOUND', `PINFLOW_TEMPORAL_CLI=${p} is not an executable file`),
      );
    });

    it('uses an explicit path that is executable', async () => {
      const p = fakeCli(tempDir('explicit-ok'));
      assert.deepEqual(await findTemporalCli({ explicitPath: p, projectBinDir: tempDir('proj'), cacheBinDir: tempDir('cache') }), {
        path: p,
        source: 'explicit',
      });
    });

    it('explains how to install the CLI when it is found nowhere and building is off', () =>
      isolated(async () => {
        const projectBinDir = tempDir('proj');
        const cacheBinDir = tempDir('cache');
        await assert.rejects(
          findTemporalCli({ projectBinDir, cacheBinDir, allowBuild: false }),
          expectPinflowError(
            'TEMPORAL_CLI_NOT_FOUND',
            'the Temporal CLI (which runs the embedded dev server) was not found on PATH',
            `in ${projectBinDir} or ${cacheBinDir}`,
            `GOBIN=${cacheBinDir} go install github.com/temporalio/cli/cmd/temporal@v1.5.1`,
            'PINFLOW_TEMPORAL_CLI',
            'TEMPORAL_ADDRESS',
          ),
        );
      }));

    it('finds the CLI in the project cache when PATH lacks it', () =>
      isolated(async () => {
        const projectBinDir = tempDir('proj');
        const cacheBinDir = tempDir('cache');
        const p = fakeCli(projectBinDir);
        fakeCli(cacheBinDir);
        assert.deepEqual(await findTemporalCli({ projectBinDir, cacheBinDir, allowBuild: false }), { path: p, source: 'project-cache' });
      }));

    it('finds the CLI in the machine cache when PATH and the project cache lack it', () =>
      isolated(async () => {
        const projectBinDir = tempDir('proj');
        const cacheBinDir = tempDir('cache');
        const p = fakeCli(cacheBinDir);
        assert.deepEqual(await findTemporalCli({ projectBinDir, cacheBinDir, allowBuild: false }), { path: p, source: 'cache' });
      }));

    it('prefers a CLI on PATH over the caches', () =>
      isolated(async () => {
        const onPath = tempDir('onpath');
        const p = fakeCli(onPath);
        process.env.PATH = onPath; // restored by isolated()
        const projectBinDir = tempDir('proj');
        fakeCli(projectBinDir);
        assert.deepEqual(await findTemporalCli({ projectBinDir, cacheBinDir: tempDir('cache'), allowBuild: false }), { path: p, source: 'path' });
      }));
  });
});
