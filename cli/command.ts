/**
 * What every command module shares: the action wrapper that records the
 * exit code, the API client built from the global options, and `--by`'s default.
 */
import { userInfo } from 'node:os';
import { Command } from 'commander';
import { UsageError } from './exit';
import { ApiClient } from './http';

/** The exit code the last action asked for (the entry exits with it). */
export const outcome = { exitCode: 0 };

/** A commander action that returns its exit code (undefined: 0). */
export function act<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      outcome.exitCode = (await fn(...args)) ?? 0;
    } catch (err) {
      const cmd = args[args.length - 1];
      if (err instanceof UsageError && cmd instanceof Command) err.usage = `${pathOf(cmd)} ${cmd.usage()}`;
      throw err;
    }
  };
}

/** The API client for a command: `--api` / `--key-file` (global options), else the environment. */
export function apiOf(cmd: Command): ApiClient {
  const o = cmd.optsWithGlobals<{ api?: string; keyFile?: string }>();
  return new ApiClient({ ...(o.api !== undefined ? { api: o.api } : {}), ...(o.keyFile !== undefined ? { keyFile: o.keyFile } : {}) });
}

/** Who acts, when `--by` is not given: `cli:<OS user>`. */
export const defaultBy = (): string => `cli:${userInfo().username}`;

/** Adds `--json` (print the API's answer as JSON instead of a table). */
export function jsonOption(cmd: Command): Command {
  return cmd.option('--json', 'print JSON instead of a table');
}

/** A command's path from the program: `pinflow runs ls`. */
export function pathOf(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}
