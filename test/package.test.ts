/**
 * The npm package as a user gets it: `npm pack` of the built repository (the
 * test command builds first), installed into a fresh project beside the
 * `@temporalio/*` peers and zod at the lock file's versions, then the
 * installed CLI, a plain JavaScript program that uses only the public entry
 * against this run's Temporal server and a Postgres database of its own, and a
 * TypeScript program type-checked against the installed declarations.
 *
 * The fresh project is made exactly as the Dockerfile makes the image's /app
 * (which cannot be built here: there is no Docker engine): `npm pack`, then
 * scripts/image-project.ts (its package.json, seeded with the repository's
 * lock file), then `npm install --omit=dev`. The seed keeps the install on the
 * tested versions and needs nothing but the npm cache that `npm ci` filled; a
 * dependency pinflow requires but does not declare is still missing, since npm
 * prunes what the project's dependencies do not reach.
 *
 * npm runs without the `npm_*` variables of the `npm test` that runs this
 * suite: they name the repository as the project, and an install there would
 * land in the repository's node_modules instead of the fresh project's.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { projectRoot } from '../db/paths';
import { imageProject, tarballName } from '../scripts/image-project';
import { prebuiltBundle, workflowBundleMetaPath, workflowBundlePath } from '../worker/bundle';
import { claimNamespace, createDatabase, temporalAddress } from './support/harness';

interface Manifest {
  name: string;
  version: string;
  private?: boolean;
  main?: string;
  types?: string;
  exports?: Record<string, string | Record<string, string>>;
  bin?: Record<string, string>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface Ran {
  code: number | null;
  /** stdout and stderr as they came. */
  out: string;
  stdout: string;
}

/** Run a command to its end (killed after `timeoutMs`), stdout and stderr together. */
function run(cmd: string, args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, stdout, out: signal ? `${out}\n(killed by ${signal} after ${opts.timeoutMs} ms)` : out });
    });
  });
}

/** This process's environment without what makes a child npm (or node) see the repository instead of the fresh project. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || ['INIT_CWD', 'NODE_PATH', 'NODE_ENV', 'NODE_OPTIONS'].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

const NPM_QUIET = ['--no-audit', '--no-fund', '--loglevel=error'];

/**
 * What a user writes: CommonJS, `pinflow`'s public entry, the Temporal
 * packages and zod they installed themselves. Two RPCs, a graph, a worker in
 * production mode (it must load the prebuilt bundle from node_modules/pinflow),
 * one run to completion, and a rerun from its second step (a replay of the
 * run's history by the installed interpreter). Prints one JSON line.
 */
const PROGRAM = String.raw`'use strict';
const { z } = require('zod');
const { Client, Connection } = require('@temporalio/client');
const { NativeConnection } = require('@temporalio/worker');
const { defineRpc, createWorker, Pinflow, ProjectionStore, connectPg, migrate } = require('pinflow');

const greet = defineRpc('package.greet', {
  input: z.object({ name: z.string() }),
  output: z.object({ greeting: z.string() }),
  handler: async ({ name }) => ({ greeting: 'hello, ' + name }),
});
const shout = defineRpc('package.shout', {
  input: z.object({ text: z.string() }),
  output: z.object({ text: z.string() }),
  handler: async ({ text }) => ({ text: text.toUpperCase() }),
});
const graph = {
  entry: 'greet',
  steps: [
    { id: 'greet', type: 'rpc', rpc: 'package.greet', input: { name: 'input.name' }, next: 'shout' },
    { id: 'shout', type: 'rpc', rpc: 'package.shout', input: { text: 'steps.greet.greeting' }, next: 'done' },
    { id: 'done', type: 'return', output: { text: 'steps.shout.text' } },
  ],
};

async function main() {
  const { TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, DATABASE_URL: databaseUrl } = process.env;
  const db = connectPg(databaseUrl);
  const migrations = await migrate(db);
  const store = new ProjectionStore(db);
  const connection = await Connection.connect({ address });
  const client = new Client({ connection, namespace });
  const pinflow = new Pinflow({ client, store, rpcs: [greet, shout] });
  const nativeConnection = await NativeConnection.connect({ address });
  const worker = await createWorker({ rpcs: [greet, shout], store, connection: nativeConnection, namespace, production: true });
  const running = worker.run();
  try {
    const published = await pinflow.publish('package-hello', graph);
    const started = await pinflow.start({ definition: 'package-hello', input: { name: 'package' } });
    const output = await pinflow.result(started.runId);
    const rerun = await pinflow.rerun(started.runId, { fromStep: 'shout', by: 'package-test' });
    const rerunOutput = await pinflow.result(rerun.runId);
    let status;
    // Polls the projection for up to 60 s (a busy machine): the condition, not a fixed wait.
    for (let i = 0; i < 600 && status !== 'COMPLETED'; i++) {
      status = (await pinflow.getRun(started.runId)).status;
      if (status !== 'COMPLETED') await new Promise((r) => setTimeout(r, 100));
    }
    let deepImport;
    try {
      require('pinflow/dist/client/pinflow');
      deepImport = 'allowed';
    } catch (err) {
      deepImport = err.code;
    }
    console.log(JSON.stringify({
      resolved: require.resolve('pinflow'),
      version: require('pinflow/package.json').version,
      deepImport,
      migrations: migrations.length,
      created: published.created,
      output,
      status,
      rerunOutput,
    }));
  } finally {
    worker.shutdown();
    await running;
    await nativeConnection.close();
    await connection.close();
    await db.close();
  }
}

main().then(() => process.exit(0), (err) => { console.error(err); process.exit(1); });
`;

/**
 * A TypeScript user's view: the types resolve through `exports` (node16) and
 * through `types` (node10), and they are real types, not `any`: the
 * `@ts-expect-error` lines fail the check if nothing is wrong there.
 */
const TYPED = `import { z } from 'zod';
import { defineRpc, createWorker, Pinflow, type PinflowOptions, type RpcDefinition, type StartOptions } from 'pinflow';

const greet = defineRpc('typed.greet', {
  input: z.object({ name: z.string() }),
  output: z.object({ greeting: z.string() }),
  handler: async ({ name }) => ({ greeting: 'hello, ' + name }),
});
export const rpcs: RpcDefinition[] = [greet];
export const options: Pick<PinflowOptions, 'rpcs'> = { rpcs };
export const start: StartOptions = { definition: 'typed', input: { name: 'x' } };
export type CreatedWorker = Awaited<ReturnType<typeof createWorker>>;
export type Client = InstanceType<typeof Pinflow>;

defineRpc('typed.bad', {
  input: z.object({}),
  output: z.object({ n: z.number() }),
  // @ts-expect-error the handler returns what the output schema accepts
  handler: async () => ({ n: 'not a number' }),
});
// @ts-expect-error an RPC name is a string
defineRpc(42, { input: z.object({}), output: z.object({}), handler: () => ({}) });
`;

describe('the npm package: packed, installed into a fresh project, run against Temporal and Postgres', function () {
  // npm on a busy machine, and with a cold cache in CI, can take minutes.
  this.timeout(600_000);
  const root = projectRoot();
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const locked = (name: string): string => {
    const v = lock.packages[`node_modules/${name}`]?.version;
    assert.ok(v, `package-lock.json has ${name}`);
    return v;
  };
  const peers = Object.keys(manifest.peerDependencies ?? {}).sort();
  let dir: string;
  let project: string;
  let packed: string[];
  let installed: Ran;

  before(async function () {
    dir = mkdtempSync(join(tmpdir(), 'pinflow-package-'));
    project = join(dir, 'app');
    mkdirSync(project);
    // The Dockerfile's steps. --ignore-scripts: no lifecycle script of the repository runs; the test command has built dist/ already.
    const pack = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', project, ...NPM_QUIET], { cwd: root, timeoutMs: 120_000 });
    assert.equal(pack.code, 0, `npm pack failed:\n${pack.out}`);
    const report = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    packed = report[0]!.files.map((f) => f.path).sort();
    assert.equal(report[0]!.filename, tarballName(root));
    const written = await run(process.execPath, [join(root, 'dist', 'scripts', 'image-project.js'), project], { cwd: root, timeoutMs: 60_000 });
    assert.equal(written.code, 0, `image-project failed:\n${written.out}`);
    installed = await run('npm', ['install', '--omit=dev', '--prefer-offline', ...NPM_QUIET], { cwd: project, timeoutMs: 540_000 });
  });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('packs the library with its types, the CLI, the worker and API mains, the workflow bundle, the console and the migrations, and nothing else', () => {
    for (const file of [
      'package.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/pinflow.js',
      'dist/app/worker-main.js',
      'dist/app/api-main.js',
      'dist/workflow-bundle.js',
      'dist/workflow-bundle.meta.json',
      'dist/workflows/index.js',
      'dist/console/index.html',
    ]) {
      assert.ok(packed.includes(file), `the package has ${file}`);
    }
    const migrations = readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.sql'));
    assert.ok(migrations.length > 0);
    for (const m of migrations) assert.ok(packed.includes(`migrations/${m}`), `the package has migrations/${m}`);
    // Nothing of the repository's own: tests, benchmarks, scripts, examples, sources, source maps.
    const stray = packed.filter(
      (p) =>
        /^(dist\/)?(test|bench|scripts|examples)\//.test(p) ||
        (p.endsWith('.ts') && !p.endsWith('.d.ts')) ||
        p.endsWith('.map') ||
        !/^(dist\/|migrations\/|package\.json$|README\.md$|LICENSE)/.test(p),
    );
    assert.deepEqual(stray, [], `files a user does not need:\n${stray.join('\n')}`);
    // Every compiled library file comes with its declarations.
    const js = packed.filter((p) => p.endsWith('.js') && !p.startsWith('dist/console/') && p !== 'dist/workflow-bundle.js');
    const untyped = js.filter((p) => !packed.includes(p.replace(/\.js$/, '.d.ts')));
    assert.deepEqual(untyped, [], 'every module has a .d.ts');
  });

  it('is a public package: one entry with its types, the CLI as bin, and the @temporalio packages as peers that the lock file satisfies', () => {
    assert.notEqual(manifest.private, true, 'the package is not private');
    assert.deepEqual(manifest.exports?.['.'], { types: './dist/index.d.ts', default: './dist/index.js' });
    assert.equal(manifest.main, 'dist/index.js');
    assert.equal(manifest.types, 'dist/index.d.ts');
    assert.equal(manifest.bin?.pinflow, 'dist/cli/pinflow.js');
    assert.deepEqual(peers, ['@temporalio/activity', '@temporalio/client', '@temporalio/common', '@temporalio/interceptors-opentelemetry', '@temporalio/proto', '@temporalio/worker', '@temporalio/workflow']);
    for (const p of peers) {
      assert.equal(manifest.dependencies?.[p], undefined, `${p} is a peer, not a dependency`);
      const range = manifest.peerDependencies![p]!;
      const version = locked(p);
      // A caret range from the version the repository is tested with (development keeps that exact version).
      assert.equal(range, `^${version}`, `${p}: peer range ${range} starts at the lock file's ${version}`);
      assert.equal(manifest.devDependencies?.[p], version, `${p} is a devDependency at exactly ${version}`);
    }
    const temporalDeps = Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@temporalio/'));
    assert.deepEqual(temporalDeps, [], 'no @temporalio package is a plain dependency');
  });

  it('records beside the prebuilt bundle the SDK version it embeds, and a worker of another version does not load it', () => {
    const meta = JSON.parse(readFileSync(workflowBundleMetaPath(), 'utf8')) as { sdk: string };
    assert.equal(meta.sdk, locked('@temporalio/workflow'), 'built with the lock file\'s @temporalio/workflow');
    assert.deepEqual(prebuiltBundle(locked('@temporalio/worker')), { usable: true, path: workflowBundlePath() });
    // A peer range lets a user's worker be another 1.x: it bundles the workflows at start instead (worker/worker.ts).
    assert.deepEqual(prebuiltBundle('1.99.0'), { usable: false, path: workflowBundlePath(), reason: 'sdk-mismatch', builtWith: meta.sdk, worker: '1.99.0' });
  });

  it('installs from the tarball into a fresh project, with the lock file\'s @temporalio versions as its peers', () => {
    // What the project asks for: pinflow from the tarball, each peer and zod at exactly the lock file's version.
    assert.deepEqual(imageProject(root).dependencies, {
      pinflow: `file:${tarballName(root)}`,
      ...Object.fromEntries(peers.map((p) => [p, locked(p)])),
      zod: locked('zod'),
    });
    assert.equal(installed.code, 0, `npm install failed:\n${installed.out}`);
    const at = (name: string) => JSON.parse(readFileSync(join(project, 'node_modules', name, 'package.json'), 'utf8')) as Manifest;
    assert.equal(at('pinflow').version, manifest.version);
    for (const p of peers) assert.equal(at(p).version, locked(p), `${p} installed at the lock file's version`);
    // The seed held: every package installed is at a version the repository's lock file has (the suite ran those).
    const repoVersions = new Set(Object.entries(lock.packages).map(([k, v]) => `${k.replace(/^.*node_modules\//, '')}@${v.version}`));
    const projectLock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    const drifted = Object.entries(projectLock.packages)
      .filter(([k]) => k.startsWith('node_modules/') && k !== 'node_modules/pinflow')
      .map(([k, v]) => `${k.replace(/^.*node_modules\//, '')}@${v.version}`)
      .filter((id) => !repoVersions.has(id));
    assert.deepEqual(drifted, [], 'packages at versions the repository never tested');
    // One copy of each SDK package: the peers, not copies nested under pinflow.
    const nested = existsSync(join(project, 'node_modules', 'pinflow', 'node_modules', '@temporalio'));
    assert.equal(nested, false, 'no @temporalio package nested under pinflow');
  });

  it('runs the installed CLI: `pinflow --help`', async () => {
    assert.equal(installed.code, 0, 'installed');
    const bin = join(project, 'node_modules', '.bin', 'pinflow');
    assert.ok(existsSync(bin), 'npm linked the pinflow bin');
    const help = await run(bin, ['--help'], { cwd: project, timeoutMs: 60_000 });
    assert.equal(help.code, 0, help.out);
    assert.match(help.out, /^Usage: pinflow /m);
    assert.match(help.out, /check-deploy/);
  });

  it('runs a program that imports only `pinflow`: publishes a graph, starts a worker on the prebuilt bundle, runs to completion and reruns', async function () {
    assert.equal(installed.code, 0, 'installed');
    const namespace = claimNamespace();
    const database = await createDatabase('package');
    try {
      writeFileSync(join(project, 'program.js'), PROGRAM);
      const ran = await run(process.execPath, ['program.js'], {
        cwd: project,
        env: cleanEnv({ TEMPORAL_ADDRESS: temporalAddress(), TEMPORAL_NAMESPACE: namespace, DATABASE_URL: database.url }),
        timeoutMs: 180_000,
      });
      assert.equal(ran.code, 0, `the program failed:\n${ran.out}`);
      const line = ran.stdout.split('\n').find((l) => l.startsWith('{"resolved"'));
      assert.ok(line, `the program printed its result:\n${ran.out}`);
      const result = JSON.parse(line) as Record<string, unknown>;
      assert.equal(result.resolved, join(project, 'node_modules', 'pinflow', 'dist', 'index.js'), 'pinflow came from the installed package');
      assert.equal(result.version, manifest.version, '`pinflow/package.json` is exported');
      assert.equal(result.deepImport, 'ERR_PACKAGE_PATH_NOT_EXPORTED', 'only the entry is exported');
      assert.equal(result.migrations, readdirSync(join(root, 'migrations')).filter((f) => f.endsWith('.sql')).length, 'every migration was found inside the package and applied');
      assert.equal(result.created, true);
      assert.deepEqual(result.output, { text: 'HELLO, PACKAGE' });
      assert.equal(result.status, 'COMPLETED', 'the projection shows the run completed');
      assert.deepEqual(result.rerunOutput, { text: 'HELLO, PACKAGE' });
      assert.doesNotMatch(ran.out, /bundling the workflows at start/, 'the worker loaded the prebuilt bundle');
    } finally {
      await database.drop();
    }
  });

  it('type-checks a TypeScript program against the installed declarations (node16 and node10 resolution)', async () => {
    assert.equal(installed.code, 0, 'installed');
    writeFileSync(join(project, 'typed.ts'), TYPED);
    const tsc = require.resolve('typescript/bin/tsc');
    const check = async (resolution: 'node16' | 'node10') => {
      const config = {
        compilerOptions: {
          target: 'ES2022',
          module: resolution === 'node16' ? 'node16' : 'commonjs',
          moduleResolution: resolution,
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          // A user's project has @types/node; this one borrows the repository's.
          typeRoots: [join(root, 'node_modules', '@types')],
          types: ['node'],
        },
        files: ['typed.ts'],
      };
      writeFileSync(join(project, `tsconfig.${resolution}.json`), JSON.stringify(config, null, 2));
      const checked = await run(process.execPath, [tsc, '-p', `tsconfig.${resolution}.json`], { cwd: project, timeoutMs: 180_000 });
      assert.equal(checked.code, 0, `tsc (${resolution}) failed:\n${checked.out}`);
    };
    await Promise.all([check('node16'), check('node10')]);
  });
});
