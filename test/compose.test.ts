/**
 * Static checks of the production stack in docker-compose.temporal.yml, the
 * scripts and the dynamic config it mounts, and the Dockerfile it builds.
 * No Docker engine is needed: the files are parsed and checked against the
 * repo. If `docker compose` (or `docker-compose`) is available, its `config`
 * validates the compose file as well. test/package.test.ts runs the
 * Dockerfile's npm steps (pack, the image project, the install) for real.
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
  build?: string | { context?: string; dockerfile?: string; target?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  restart?: string;
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

function buildContext(svc: Service): { context: string; dockerfile: string; target: string | undefined } | undefined {
  if (svc.build === undefined) return undefined;
  if (typeof svc.build === 'string') return { context: svc.build, dockerfile: 'Dockerfile', target: undefined };
  return { context: svc.build.context ?? '.', dockerfile: svc.build.dockerfile ?? 'Dockerfile', target: svc.build.target };
}

function listOf(v: string | string[] | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);
}

/** Bind mounts as { source, target } (the short form `src:dst[:mode]` or the long form). */
function mountsOf(svc: Service): Array<{ source: string | undefined; target: string | undefined }> {
  return (svc.volumes ?? []).map((v) => (typeof v === 'string' ? { source: v.split(':')[0], target: v.split(':')[1] } : { source: v.source, target: v.target }));
}

/**
 * Where the image installs the package (Dockerfile: WORKDIR /app, pinflow a
 * dependency of /app), and the package's own files below it.
 */
const IMAGE_APP = '/app';
const INSTALLED = 'node_modules/pinflow/';

/** Map a path of the installed package in the image (node_modules/pinflow/dist/x/y.js, relative to /app or absolute) to its source (x/y.ts). */
function sourceOf(imagePath: string): string {
  const relative = imagePath.startsWith(`${IMAGE_APP}/`) ? imagePath.slice(IMAGE_APP.length + 1) : imagePath;
  assert.ok(relative.startsWith(INSTALLED), `${imagePath} is not a file of the installed package (${IMAGE_APP}/${INSTALLED}...)`);
  const m = /^dist\/(.+)\.js$/.exec(relative.slice(INSTALLED.length));
  assert.ok(m, `${imagePath} is not a path under dist/ ending in .js`);
  return `${m[1]}.ts`;
}

interface Stage {
  from: string;
  name: string | undefined;
  /** Each instruction on one line (continuations joined), comments dropped. */
  lines: string[];
}

/** The Dockerfile's stages, in order. */
function stagesOf(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
    if (from) stages.push({ from: from[1]!, name: from[2], lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

describe('docker-compose.temporal.yml', function () {
  const root = findRepoRoot();
  let compose: ComposeFile;

  const svc = (name: string): Service => {
    const s = compose.services[name];
    assert.ok(s, `service ${name} is defined`);
    return s;
  };

  /** The script a one-shot service runs: its entrypoint names a file under a bind mount of the repo. */
  const scriptOf = (name: string): { path: string; text: string } => {
    const s = svc(name);
    const script = listOf(s.entrypoint).find((a) => a.endsWith('.sh'));
    assert.ok(script, `${name} runs a script`);
    const mount = mountsOf(s).find((m) => m.target && script.startsWith(`${m.target}/`));
    assert.ok(mount?.source, `${name}: ${script} lies under a bind mount`);
    const path = resolve(root, mount.source, script.slice(mount.target!.length + 1));
    assert.ok(existsSync(path), `${path} exists`);
    return { path, text: readFileSync(path, 'utf8') };
  };

  before(function () {
    const file = join(root, COMPOSE_FILE);
    assert.ok(existsSync(file), `${COMPOSE_FILE} exists at the repo root`);
    compose = parse(readFileSync(file, 'utf8')) as ComposeFile;
    assert.ok(compose && typeof compose.services === 'object', 'compose file has services');
  });

  it('lists the required services', function () {
    for (const name of ['temporal-db', 'temporal-schema', 'temporal', 'temporal-namespace', 'temporal-ui', 'projection-db', 'pinflow-worker', 'pinflow-api']) {
      assert.ok(compose.services[name], `service ${name} is defined`);
    }
  });

  it('persists Temporal to Postgres and starts Temporal only once that Postgres is healthy and its schema is set up', function () {
    const temporal = svc('temporal');
    const env = envOf(temporal);
    assert.equal(env.DB, 'postgres12');
    const seeds = env.POSTGRES_SEEDS;
    assert.ok(seeds, 'POSTGRES_SEEDS is set');
    const db = svc(seeds);
    assert.match(db.image ?? '', /^postgres(:|$)/, `${seeds} runs a postgres image`);
    assert.equal(dependsOn(temporal)[seeds], 'service_healthy', `temporal waits for ${seeds} to be healthy`);
    assert.ok(db.healthcheck?.test, `${seeds} has a healthcheck`);
    assert.equal(dependsOn(temporal)['temporal-schema'], 'service_completed_successfully', 'temporal waits for the schema job to finish');
    // The schema job and the server talk to the same Postgres as the same user.
    const schemaEnv = envOf(svc('temporal-schema'));
    assert.equal(schemaEnv.SQL_HOST, seeds);
    assert.equal(schemaEnv.SQL_PORT ?? '5432', env.DB_PORT ?? '5432');
    assert.equal(schemaEnv.SQL_USER, env.POSTGRES_USER);
    assert.equal(schemaEnv.SQL_PASSWORD, env.POSTGRES_PWD);
    assert.equal(envOf(db).POSTGRES_USER, env.POSTGRES_USER);
    assert.equal(envOf(db).POSTGRES_PASSWORD, env.POSTGRES_PWD);
  });

  it('runs Temporal\'s production server image, and the admin tools of the same server version for the one-shot jobs', function () {
    const server = /^temporalio\/server:(1\.29\.\d+)$/.exec(svc('temporal').image ?? '');
    assert.ok(server, `temporal runs temporalio/server:1.29.x, not ${svc('temporal').image}`);
    for (const job of ['temporal-schema', 'temporal-namespace']) {
      const image = svc(job).image ?? '';
      assert.ok(image.startsWith(`temporalio/admin-tools:${server[1]}`), `${job} runs temporalio/admin-tools:${server[1]}…, not ${image}`);
      assert.equal(svc(job).restart, 'no', `${job} runs once per \`up\` and is not restarted`);
    }
  });

  it('sets up both of Temporal\'s databases with temporal-sql-tool on the postgres12 plugin, idempotently', function () {
    assert.equal(dependsOn(svc('temporal-schema'))['temporal-db'], 'service_healthy', 'the schema job waits for its Postgres');
    assert.equal(envOf(svc('temporal-schema')).SQL_PLUGIN, 'postgres12');
    const { text } = scriptOf('temporal-schema');
    assert.match(text, /^set -eu$/m, 'the script stops at the first failure');
    // One function, called for each database with its versioned schema directory.
    for (const step of [/temporal-sql-tool --db "\$\{db\}" create-database/, /temporal-sql-tool --db "\$\{db\}" setup-schema -v 0\.0/, /temporal-sql-tool --db "\$\{db\}" update-schema -d "\$\{versioned\}"/]) {
      assert.match(text, step);
    }
    assert.match(text, /SCHEMA_DIR="\$\{TEMPORAL_SCHEMA_DIR:-\/etc\/temporal\/schema\/postgresql\/v12\}"/);
    assert.match(text, /^setup "\$\{DB\}" "\$\{SCHEMA_DIR\}\/temporal\/versioned"$/m);
    assert.match(text, /^setup "\$\{VISIBILITY_DB\}" "\$\{SCHEMA_DIR\}\/visibility\/versioned"$/m);
    assert.match(text, /DB="\$\{TEMPORAL_DB:-temporal\}"/);
    assert.match(text, /VISIBILITY_DB="\$\{TEMPORAL_VISIBILITY_DB:-temporal_visibility\}"/);
  });

  it('creates the default namespace with a 90-day retention, tolerating one that exists, before pinflow starts', function () {
    const job = svc('temporal-namespace');
    assert.equal(dependsOn(job).temporal, 'service_healthy', 'the namespace job waits for the server');
    const env = envOf(job);
    assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.equal(env.PINFLOW_NAMESPACE, 'default');
    assert.equal(env.PINFLOW_NAMESPACE_RETENTION, '90d');
    const { text } = scriptOf('temporal-namespace');
    assert.match(text, /temporal operator namespace create --namespace "\$\{NAMESPACE\}" --retention "\$\{RETENTION\}"/);
    assert.match(text, /grep -qi 'already exists'/, 'an existing namespace is not a failure');
    assert.match(text, /RETENTION="\$\{PINFLOW_NAMESPACE_RETENTION:-90d\}"/);
    for (const name of ['pinflow-worker', 'pinflow-api']) {
      assert.equal(envOf(svc(name)).TEMPORAL_NAMESPACE, env.PINFLOW_NAMESPACE, `${name} uses the namespace the job creates`);
      assert.equal(dependsOn(svc(name))['temporal-namespace'], 'service_completed_successfully', `${name} starts once the namespace exists`);
    }
  });

  it('sets no development image or flag', function () {
    const text = readFileSync(join(root, COMPOSE_FILE), 'utf8');
    for (const [name, s] of Object.entries(compose.services)) {
      assert.doesNotMatch(s.image ?? '', /auto-setup|temporalio\/temporal|temporalite/, `${name} runs no development image`);
      const env = envOf(s);
      // The auto-setup image's switches, the UI's development CORS origin, the dev server.
      for (const key of ['AUTO_SETUP', 'SKIP_SCHEMA_SETUP', 'SKIP_DB_CREATE', 'SKIP_DEFAULT_NAMESPACE_CREATION', 'DEFAULT_NAMESPACE', 'SKIP_ADD_CUSTOM_SEARCH_ATTRIBUTES', 'TEMPORAL_CORS_ORIGINS']) {
        assert.equal(env[key], undefined, `${name} sets ${key}`);
      }
      assert.doesNotMatch(JSON.stringify(s), /start-dev|development/, `${name} mentions a development setting`);
    }
    assert.doesNotMatch(text.replace(/^\s*#.*$/gm, ''), /auto-setup|development-sql|start-dev/, 'nothing outside comments names a development setup');
  });

  it('mounts a dynamic config that exists, enables Temporal Updates, and holds no testing-only setting', function () {
    const temporal = svc('temporal');
    const env = envOf(temporal);
    const target = '/etc/temporal/config/dynamicconfig';
    const mount = mountsOf(temporal).find((v) => v.target === target);
    assert.ok(mount?.source, `a host directory is mounted at ${target}`);

    const configPath = env.DYNAMIC_CONFIG_FILE_PATH;
    assert.ok(configPath, 'DYNAMIC_CONFIG_FILE_PATH is set');
    const prefix = 'config/dynamicconfig/';
    assert.ok(configPath.startsWith(prefix), `DYNAMIC_CONFIG_FILE_PATH lies under ${prefix}`);
    assert.doesNotMatch(configPath, /development|dev\b/, 'the dynamic config is not a development one');

    const onDisk = resolve(root, mount.source, configPath.slice(prefix.length));
    assert.ok(existsSync(onDisk), `${onDisk} exists`);
    const config = parse(readFileSync(onDisk, 'utf8')) as Record<string, { value: unknown }[]>;
    for (const key of ['frontend.enableUpdateWorkflowExecution', 'frontend.enableUpdateWorkflowExecutionAsyncAccepted']) {
      assert.ok(Array.isArray(config[key]), `${key} is set`);
      assert.equal(config[key]?.[0]?.value, true, `${key} is true`);
    }
    // Temporal documents it as a testing aid: "This should not be turned on in production."
    assert.equal(config['system.forceSearchAttributesCacheRefreshOnRead'], undefined);
  });

  it('builds the pinflow worker and API from the repo\'s Dockerfile and points them at Temporal and the projection database', function () {
    const projectionEnv = envOf(svc('projection-db'));
    const stages = stagesOf(readFileSync(join(root, 'Dockerfile'), 'utf8'));
    for (const name of ['pinflow-worker', 'pinflow-api']) {
      const s = svc(name);
      const build = buildContext(s);
      assert.ok(build, `${name} has a build section`);
      assert.equal(build.context, '.', `${name} builds from the repo root`);
      assert.ok(existsSync(join(root, build.context, build.dockerfile)), `${build.dockerfile} exists`);
      assert.equal(build.target, 'demo', `${name} builds the demo target (the production image plus the example RPCs)`);
      assert.ok(stages.some((st) => st.name === build.target), `the Dockerfile has a stage named ${build.target}`);

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
        if (source.startsWith('.') || source.startsWith('/') || source.startsWith('~')) {
          assert.ok(existsSync(resolve(root, source)), `${name} bind-mounts ${source}, which exists`);
          continue;
        }
        assert.ok(declared.has(source), `${name} uses volume ${source}, which is declared`);
      }
    }
  });

  it('runs worker and API commands that the installed package holds', function () {
    const expected: Record<string, string> = {
      'pinflow-worker': 'node_modules/pinflow/dist/app/worker-main.js',
      'pinflow-api': 'node_modules/pinflow/dist/app/api-main.js',
    };
    const files = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { files: string[] }).files;
    for (const [name, script] of Object.entries(expected)) {
      const cmd = commandOf(svc(name));
      assert.deepEqual(cmd, ['node', script], `${name} command`);
      const source = sourceOf(script);
      assert.ok(existsSync(join(root, source)), `${name} runs ${script}, built from ${source}, which exists`);
      assert.ok(files.includes('dist/app/'), 'the package ships dist/app/');
    }
  });

  it('loads a worker RPC module that the demo image adds beside the installed library', function () {
    const rpcModule = envOf(svc('pinflow-worker')).PINFLOW_RPC_MODULE;
    assert.ok(rpcModule, 'PINFLOW_RPC_MODULE is set');
    assert.equal(envOf(svc('pinflow-api')).PINFLOW_RPC_MODULE, rpcModule, 'the API loads the same module');
    const source = sourceOf(rpcModule);
    assert.equal(source, 'examples/order-fulfilment/rpcs.ts');
    assert.ok(existsSync(join(root, source)), `${source} exists`);
    const demo = stagesOf(readFileSync(join(root, 'Dockerfile'), 'utf8')).find((st) => st.name === 'demo');
    assert.ok(demo, 'the Dockerfile has a demo stage');
    const dir = rpcModule.slice(0, rpcModule.lastIndexOf('/') + 1);
    assert.ok(
      demo.lines.some((l) => l === `COPY --from=builder /src/dist/examples/order-fulfilment/ ${dir}`),
      `the demo stage copies the compiled example to ${dir}:\n${demo.lines.join('\n')}`,
    );
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

describe('Dockerfile: the image holds the packed package and its CLI, not the repository', function () {
  const root = findRepoRoot();
  let stages: Stage[];
  const stage = (name: string): Stage => {
    const st = stages.find((s) => s.name === name);
    assert.ok(st, `the Dockerfile has a stage named ${name}`);
    return st;
  };

  before(function () {
    stages = stagesOf(readFileSync(join(root, 'Dockerfile'), 'utf8'));
  });

  it('builds, packs, and writes the npm project the image installs, in the builder stage (the steps test/package.test.ts runs)', function () {
    const builder = stage('builder');
    assert.ok(builder.lines.includes('RUN npm ci --no-audit --no-fund'), 'the builder installs from the lock file');
    const run = builder.lines.find((l) => l.startsWith('RUN npm run build'));
    assert.ok(run, 'the builder runs npm run build');
    const steps = run.replace(/^RUN\s+/, '').split(/\s*&&\s*/);
    assert.deepEqual(steps, ['npm run build', 'mkdir /image', 'npm pack --ignore-scripts --pack-destination /image', 'node dist/scripts/image-project.js /image']);
    assert.ok(existsSync(join(root, 'scripts', 'image-project.ts')), 'scripts/image-project.ts exists');
  });

  it('installs only what the builder packed, with production dependencies, and runs as node with the CLI on PATH', function () {
    const prod = stage('pinflow');
    assert.match(prod.from, /^node:(2[0-9])(\.|-|$)/, 'a Node.js 20+ base image');
    assert.ok(prod.lines.includes('WORKDIR /app'));
    const copies = prod.lines.filter((l) => l.startsWith('COPY') || l.startsWith('ADD'));
    assert.deepEqual(copies, ['COPY --from=builder /image/ /app/'], 'the tarball and its npm project are all it copies');
    assert.ok(prod.lines.some((l) => /^RUN npm install --omit=dev\b/.test(l)), 'npm install --omit=dev');
    assert.ok(prod.lines.includes('ENV NODE_ENV=production'));
    assert.ok(prod.lines.includes('USER node'), 'the process is not root');
    // The package's bin, linked by npm into /app/node_modules/.bin, is the `pinflow` command.
    assert.ok(prod.lines.some((l) => /^ENV PATH=\/app\/node_modules\/\.bin:\$PATH$/.test(l)), 'node_modules/.bin on PATH');
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin?: Record<string, string> };
    assert.equal(manifest.bin?.pinflow, 'dist/cli/pinflow.js');
    assert.ok(existsSync(join(root, 'cli', 'pinflow.ts')));
    const cmd = prod.lines.find((l) => l.startsWith('CMD'));
    assert.equal(cmd, 'CMD ["node", "node_modules/pinflow/dist/app/worker-main.js"]');
    assert.ok(existsSync(join(root, sourceOf('node_modules/pinflow/dist/app/worker-main.js'))));
  });

  it('builds the production image by default; the demo adds only the compiled example', function () {
    const last = stages.at(-1)!;
    assert.equal(last.from, 'pinflow', 'the last stage (the default target) is the production image');
    assert.deepEqual(last.lines, [], 'and adds nothing to it');
    const demo = stage('demo');
    assert.equal(demo.from, 'pinflow');
    const copies = demo.lines.filter((l) => l.startsWith('COPY') || l.startsWith('ADD'));
    assert.deepEqual(copies, ['COPY --from=builder /src/dist/examples/order-fulfilment/ /app/node_modules/pinflow/dist/examples/order-fulfilment/']);
  });

  it('copies no test, benchmark or source into an image stage, and keeps node_modules and dist out of the build context', function () {
    for (const st of stages.filter((s) => s.name !== 'builder')) {
      for (const l of st.lines.filter((x) => x.startsWith('COPY') || x.startsWith('ADD'))) {
        assert.doesNotMatch(l, /\b(test|bench|scripts)\b|\.ts\b/, `stage ${st.name ?? st.from}: ${l}`);
      }
    }
    const ignored = readFileSync(join(root, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(entry), `.dockerignore has ${entry}`);
  });
});
