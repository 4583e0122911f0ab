/**
 * The npm project the container image installs pinflow into (Dockerfile):
 * `node dist/scripts/image-project.js <dir>` after `npm pack --pack-destination <dir>`
 * writes `<dir>/package.json` and, as a seed, `<dir>/package-lock.json`.
 *
 * Its dependencies are what a user's deployment has: the packed pinflow, the
 * `@temporalio/*` peers and zod, each at the version this repository's lock
 * file tests. The seed is the repository's own lock file: `npm install` keeps
 * every version it pins that still fits, so the image runs the dependency
 * versions the test suite ran, not whatever the registry serves on the day
 * the image is built.
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../db/paths';

interface Manifest {
  name: string;
  version: string;
  peerDependencies?: Record<string, string>;
}

export interface ImageProject {
  name: string;
  version: string;
  private: true;
  description: string;
  dependencies: Record<string, string>;
}

const manifestOf = (root: string) => JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;

/** The file `npm pack` writes for this package. */
export function tarballName(root: string = projectRoot()): string {
  const { name, version } = manifestOf(root);
  return `${name}-${version}.tgz`;
}

/** The image project's package.json, for the tarball beside it. */
export function imageProject(root: string = projectRoot()): ImageProject {
  const manifest = manifestOf(root);
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
  const locked = (name: string): string => {
    const version = lock.packages[`node_modules/${name}`]?.version;
    if (!version) throw new Error(`package-lock.json has no ${name}: run npm install`);
    return version;
  };
  const dependencies: Record<string, string> = { [manifest.name]: `file:${tarballName(root)}` };
  // The peers a user installs beside pinflow, and zod for the schemas of their RPC modules.
  for (const peer of Object.keys(manifest.peerDependencies ?? {}).sort()) dependencies[peer] = locked(peer);
  dependencies.zod = locked('zod');
  return {
    name: `${manifest.name}-image`,
    version: manifest.version,
    private: true,
    description: `The container image's install of ${manifest.name} ${manifest.version} (scripts/image-project.ts)`,
    dependencies,
  };
}

function main(): void {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: node dist/scripts/image-project.js <dir with the packed tarball>');
  const tarball = join(dir, tarballName());
  if (!existsSync(tarball)) throw new Error(`no ${tarball}: run npm pack --pack-destination ${dir} first`);
  const project = imageProject();
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(project, null, 2)}\n`);
  copyFileSync(join(projectRoot(), 'package-lock.json'), join(dir, 'package-lock.json'));
  console.log(`image project written to ${dir}: ${Object.entries(project.dependencies).map(([n, v]) => `${n}@${v}`).join(', ')}`);
}

if (require.main === module) main();
