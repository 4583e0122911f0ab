/**
 * Static checks of the production-like stack in docker-compose.temporal.yml.
 * No Docker engine is needed: the file is parsed and checked against the repo.
 * If `docker compose` is available, `docker compose config -q` is run as well.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

const COMPOSE_FILE = 'docker-compose.temporal.yml';

function findRepoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'migrations'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the repo root above ${__dirname}`);
    dir = up;
  }
  return dir;
}

type Env = Record<string, string>;

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: string[] | Record<string, string | number | boolean | null>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  ports?: (string | number | { target?: number; published?: string | number })[];
  healthcheck?: { test?: string | string[] };
}

interface ComposeFile {
  services: Record<string, Service>;
  volumes?: Record<string, unknown> | null;
}

/** Normalise `environment` in list form (`K=V`) or map form to a map of strings. */
function envOf(svc: Service): Env {
  const env: Env = {};
  const raw = svc.environment;
  if (Array.isArray(raw)) {
    for (const entry of raw) {
      const i = entry.indexOf('=');
      if (i === -1) env[entry] = '';
      else env[entry.slice(0, i)] = entry.slice(i + 1);
    }
  } else if (raw) {
    for (const [k, v] of Object.entries(raw)) env[k] = v === null || v === undefined ? '' : String(v);
  }
  return env;
}

function dependsOn(svc: Service): Record<string, string | undefined> {
  const raw = svc.depends_on;
  if (!raw) return {};
  if (Array.isArray(raw)) return Object.fromEntries(raw.map((name) => [name, undefined]));
  return Object.fromEntries(Object.entries(raw).map(([name, v]) => [name, v?.condition]));
}

function commandOf(svc: Service): string[] {
  const c = svc.command;
  if (c === undefined) return [];
  return Array.isArray(c) ? c : c.split(/\s+/).filter(Boolean);
}

function buildContext(svc: Service): { context: string; dockerfile: string } | undefined {
  if (svc.build === undefined) return undefined;
  if (typeof svc.build === 'string') return { context: svc.build, dockerfile: 'Dockerfile' };
  return { context: svc.build.context ?? '.', dockerfile: svc.build.dockerfile ?? 'Dockerfile' };
}

/** Map a path the TypeScript build emits (dist/x/y.js) to its source (x/y.ts). */
function sourceOf(distPath: string): string {
  const m = /^(?:\.\/)?dist\/(.+)\.js$/.exec(distPath);
  assert.ok(m, `${distPath} is not a path under dist/ ending in .js`);
  return `${m[1]}.ts`;
}

describe('docker-compose.temporal.yml', function () {
  const root = findRepoRoot();
  let compose: ComposeFile;

  const svc = (name: string): Service => {
    const s = compose.services[name];
    assert.ok(s, `service ${name} is defined`);
    return s;
  };

  before(function () {
    const file = join(root, COMPOSE_FILE);
    assert.ok(existsSync(file), `${COMPOSE_FILE} exists at the repo root`);
    compose = parse(readFileSync(file, 'utf8')) as ComposeFile;
    assert.ok(compose && typeof compose.services === 'object', 'compose file has services');
  });

  it('lists the required services', function () {
    for (const name of ['temporal', 'temporal-ui', 'temporal-db', 'projection-db', 'pinflow-worker', 'pinflow-api']) {
      assert.ok(compose.services[name], `service ${name} is defined`);
    }
  });

  it('persists Temporal to Postgres and starts Temporal only once that Postgres is healthy', function () {
    const temporal = svc('temporal');
    const env = envOf(temporal);
    assert.equal(env.DB, 'postgres12');
    const seeds = env.POSTGRES_SEEDS;
    assert.ok(seeds, 'POSTGRES_SEEDS is set');
    const db = svc(seeds);
    assert.match(db.image ?? '', /^postgres(:|$)/, `${seeds} runs a postgres image`);
    assert.equal(dependsOn(temporal)[seeds], 'service_healthy', `temporal waits for ${seeds} to be healthy`);
    assert.ok(db.healthcheck?.test, `${seeds} has a healthcheck`);
  });

  it('mounts a dynamic config that exists and enables Temporal Updates', function () {
    const temporal = svc('temporal');
    const env = envOf(temporal);
    const target = '/etc/temporal/config/dynamicconfig';
    const mount = (temporal.volumes ?? [])
      .map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : v))
      .find((v) => v.target === target);
    assert.ok(mount?.source, `a host directory is mounted at ${target}`);

    const configPath = env.DYNAMIC_CONFIG_FILE_PATH;
    assert.ok(configPath, 'DYNAMIC_CONFIG_FILE_PATH is set');
    const prefix = 'config/dynamicconfig/';
    assert.ok(configPath.startsWith(prefix), `DYNAMIC_CONFIG_FILE_PATH lies under ${prefix}`);

    const onDisk = resolve(root, mount.source, configPath.slice(prefix.length));
    assert.ok(existsSync(onDisk), `${onDisk} exists`);
    const config = parse(readFileSync(onDisk, 'utf8')) as Record<string, { value: unknown }[]>;
    for (const key of ['frontend.enableUpdateWorkflowExecution', 'frontend.enableUpdateWorkflowExecutionAsyncAccepted']) {
      assert.ok(Array.isArray(config[key]), `${key} is set`);
      assert.equal(config[key]?.[0]?.value, true, `${key} is true`);
    }
  });

  it('builds the pinflow worker and API from the repo and points them at Temporal and the projection database', function () {
    const projectionEnv = envOf(svc('projection-db'));
    for (const name of ['pinflow-worker', 'pinflow-api']) {
      const s = svc(name);
      const build = buildContext(s);
      assert.ok(build, `${name} has a build section`);
      assert.equal(build.context, '.', `${name} builds from the repo root`);
      assert.ok(existsSync(join(root, build.context, build.dockerfile)), `${build.dockerfile} exists`);

      const env = envOf(s);
      assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233', `${name} TEMPORAL_ADDRESS`);
      assert.ok(compose.services.temporal, 'the temporal service exists');
      assert.equal(env.NODE_ENV, 'production', `${name} NODE_ENV`);

      assert.ok(env.DATABASE_URL, `${name} DATABASE_URL is set`);
      const url = new URL(env.DATABASE_URL);
      assert.match(url.protocol, /^postgres(ql)?:$/);
      assert.equal(url.hostname, 'projection-db', `${name} DATABASE_URL host`);
      assert.equal(url.port || '5432', '5432');
      assert.equal(decodeURIComponent(url.username), projectionEnv.POSTGRES_USER, `${name} DATABASE_URL user`);
      assert.equal(decodeURIComponent(url.password), projectionEnv.POSTGRES_PASSWORD, `${name} DATABASE_URL password`);
      assert.equal(url.pathname.replace(/^\//, ''), projectionEnv.POSTGRES_DB, `${name} DATABASE_URL database`);

      const deps = dependsOn(s);
      assert.equal(deps.temporal, 'service_healthy', `${name} waits for temporal`);
      assert.equal(deps['projection-db'], 'service_healthy', `${name} waits for projection-db`);
    }
  });

  it('names only defined services in depends_on and declares every named volume it uses', function () {
    const declared = new Set(Object.keys(compose.volumes ?? {}));
    for (const [name, s] of Object.entries(compose.services)) {
      for (const dep of Object.keys(dependsOn(s))) {
        assert.ok(compose.services[dep], `${name} depends on ${dep}, which is defined`);
      }
      for (const v of s.volumes ?? []) {
        const source = typeof v === 'string' ? (v.includes(':') ? v.split(':')[0] : undefined) : v.type === 'volume' ? v.source : undefined;
        if (!source) continue;
        // Bind mounts are paths; named volumes are bare names.
        if (source.startsWith('.') || source.startsWith('/') || source.startsWith('~')) continue;
        assert.ok(declared.has(source), `${name} uses volume ${source}, which is declared`);
      }
    }
  });

  it('runs worker and API commands that the TypeScript build produces', function () {
    const expected: Record<string, string> = {
      'pinflow-worker': 'dist/app/worker-main.js',
      'pinflow-api': 'dist/app/api-main.js',
    };
    for (const [name, script] of Object.entries(expected)) {
      const cmd = commandOf(svc(name));
      assert.deepEqual(cmd, ['node', script], `${name} command`);
      const source = sourceOf(script);
      assert.ok(existsSync(join(root, source)), `${name} runs ${script}, built from ${source}, which exists`);
    }
  });

  it('loads a worker RPC module that the TypeScript build produces', function () {
    const rpcModule = envOf(svc('pinflow-worker')).PINFLOW_RPC_MODULE;
    assert.ok(rpcModule, 'PINFLOW_RPC_MODULE is set');
    const source = sourceOf(rpcModule);
    assert.equal(source, 'examples/order-fulfilment/rpcs.ts');
    assert.ok(existsSync(join(root, source)), `${source} exists`);
  });

  it('is accepted by Compose itself (`docker compose config`, or `docker-compose config`)', function () {
    this.timeout(60_000);
    // The Compose v2 plugin when the docker client has it, else the standalone
    // docker-compose (.ci/run installs Debian's). Neither needs a Docker engine for `config`.
    const candidates: Array<[string, string[]]> = [
      ['docker', ['compose']],
      ['docker-compose', []],
    ];
    const found = candidates.find(([cmd, pre]) => {
      const v = spawnSync(cmd, [...pre, 'version'], { cwd: root, encoding: 'utf8' });
      return !v.error && v.status === 0;
    });
    if (!found) {
      // Mocha's skip() takes no reason, so say why here.
      console.log('      skipped: neither `docker compose` nor `docker-compose` is installed, so Compose itself cannot validate the file here');
      this.skip();
    }
    const [cmd, pre] = found;
    const res = spawnSync(cmd, [...pre, '-f', COMPOSE_FILE, 'config', '-q'], { cwd: root, encoding: 'utf8' });
    assert.equal(res.status, 0, `${cmd} ${pre.join(' ')} config failed:\n${res.stderr}`);
  });
});
