/**
 * Finding (or building) the Temporal CLI, which carries the dev server.
 *
 * Order: explicit path → PATH → project cache (`.pinflow/bin`) → machine cache
 * (`~/.cache/pinflow/bin`) → `go install` into the machine cache → a binary the
 * Temporal SDK downloaded earlier → a clear error with install instructions.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import type { PinflowConfig } from './config';

/**
 * Tags that `go install` accepts. Later tags carry a `replace` directive and
 * are refused, so we try the newest that works, then older ones.
 */
export const TEMPORAL_CLI_GO_TAGS = ['v1.5.1', 'v1.5.0', 'v1.4.1'] as const;
const GO_PACKAGE = 'github.com/temporalio/cli/cmd/temporal';

export interface FindCliOptions {
  explicitPath?: string | undefined;
  /** Project-local cache, e.g. `<project>/.pinflow/bin`. */
  projectBinDir: string;
  /** Machine-wide cache, e.g. `~/.cache/pinflow/bin`; `go install` writes here. */
  cacheBinDir: string;
  /** Build with Go when nothing is found. @default true */
  allowBuild?: boolean;
  log?: (line: string) => void;
}

export interface FoundCli {
  path: string;
  source: 'explicit' | 'path' | 'project-cache' | 'cache' | 'go-install' | 'sdk-download';
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && isExecutable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** A CLI the Temporal SDK's ephemeral-server download left in the temp dir. */
function sdkDownloaded(): string | undefined {
  try {
    const hits = readdirSync(tmpdir())
      .filter((f) => /^temporal-(cli|sdk-typescript)-/.test(f))
      .map((f) => join(tmpdir(), f))
      .filter(isExecutable)
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    return hits[0];
  } catch {
    return undefined;
  }
}

function goInstall(cacheBinDir: string, log: (l: string) => void): Promise<string | undefined> {
  const go = onPath('go') ?? (isExecutable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined);
  if (!go) return Promise.resolve(undefined);
  mkdirSync(cacheBinDir, { recursive: true });
  const tryTag = async (i: number): Promise<string | undefined> => {
    const tag = TEMPORAL_CLI_GO_TAGS[i];
    if (!tag) return undefined;
    log(`building the Temporal CLI with: go install ${GO_PACKAGE}@${tag} (first build takes minutes; cached afterwards)`);
    const code = await new Promise<number>((resolveCode) => {
      const child = spawn(go, ['install', `${GO_PACKAGE}@${tag}`], {
        env: { ...process.env, GOBIN: cacheBinDir },
        stdio: ['ignore', 'inherit', 'inherit'],
      });
      child.on('error', () => resolveCode(-1));
      child.on('exit', (c) => resolveCode(c ?? -1));
    });
    const bin = join(cacheBinDir, 'temporal');
    if (code === 0 && isExecutable(bin)) return bin;
    log(`go install of ${tag} failed (exit ${code})`);
    return tryTag(i + 1);
  };
  return tryTag(0);
}

/** Locate the Temporal CLI, building it if needed. Throws TEMPORAL_CLI_NOT_FOUND with instructions. */
export async function findTemporalCli(opts: FindCliOptions): Promise<FoundCli> {
  const log = opts.log ?? (() => undefined);
  if (opts.explicitPath) {
    if (isExecutable(opts.explicitPath)) return { path: opts.explicitPath, source: 'explicit' };
    throw new PinflowError(
      ERROR_CODES.TEMPORAL_CLI_NOT_FOUND,
      `PINFLOW_TEMPORAL_CLI=${opts.explicitPath} is not an executable file`,
      { path: opts.explicitPath },
    );
  }
  const fromPath = onPath('temporal');
  if (fromPath) return { path: fromPath, source: 'path' };
  const projectBin = join(opts.projectBinDir, 'temporal');
  if (isExecutable(projectBin)) return { path: projectBin, source: 'project-cache' };
  const cacheBin = join(opts.cacheBinDir, 'temporal');
  if (isExecutable(cacheBin)) return { path: cacheBin, source: 'cache' };
  if (opts.allowBuild !== false) {
    const built = await goInstall(opts.cacheBinDir, log);
    if (built) return { path: built, source: 'go-install' };
  }
  const sdk = sdkDownloaded();
  if (sdk) return { path: sdk, source: 'sdk-download' };
  throw new PinflowError(
    ERROR_CODES.TEMPORAL_CLI_NOT_FOUND,
    'the Temporal CLI (which runs the embedded dev server) was not found on PATH, in ' +
      `${opts.projectBinDir} or ${opts.cacheBinDir}, and could not be built. Either install Go and run ` +
      `\`GOBIN=${opts.cacheBinDir} go install ${GO_PACKAGE}@${TEMPORAL_CLI_GO_TAGS[0]}\`, install the CLI ` +
      '(https://docs.temporal.io/cli, e.g. `brew install temporal`), set PINFLOW_TEMPORAL_CLI to its path, ' +
      'or set TEMPORAL_ADDRESS to use a Temporal server you already run.',
    { searched: ['PATH', opts.projectBinDir, opts.cacheBinDir, tmpdir()] },
  );
}

/** The lookup with the configured locations: PINFLOW_TEMPORAL_CLI, `<dataDir>/bin`, `<cacheDir>/bin`. */
export function findConfiguredTemporalCli(config: PinflowConfig, log?: (line: string) => void): Promise<FoundCli> {
  return findTemporalCli({
    explicitPath: config.temporal.cliPath,
    projectBinDir: join(config.dataDir, 'bin'),
    cacheBinDir: join(config.cacheDir, 'bin'),
    ...(log ? { log } : {}),
  });
}

/** `temporal --version` output, for logs and health. */
export function cliVersion(path: string): string | undefined {
  const res = spawnSync(path, ['--version'], { encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : undefined;
}
