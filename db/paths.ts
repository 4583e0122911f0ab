import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

/** The project root: the nearest ancestor holding package.json (works from src and dist). */
export function projectRoot(): string {
  if (cached) return cached;
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, 'migrations'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the pinflow project root above ${__dirname}`);
    dir = up;
  }
  cached = dir;
  return dir;
}
