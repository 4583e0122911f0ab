/** The benchmark's RPCs: handlers that do no work, so what is measured is the orchestration. */
import { z } from 'zod';
import { defineRpc } from '../rpc/registry';

/** The one handler both the `bench.noop` RPC and the baseline's activity run. */
export const noopHandler = (_input: { i: number }): { ok: boolean } => ({ ok: true });

export const noop = defineRpc('bench.noop', {
  input: z.object({ i: z.number() }),
  output: z.object({ ok: z.boolean() }),
  handler: noopHandler,
});

/** Called right after a wait resumes: when it ran, by correlation key. */
const marked = new Map<string, (at: number) => void>();
export function whenMarked(key: string): Promise<number> {
  return new Promise((resolve) => marked.set(key, resolve));
}
export const mark = defineRpc('bench.mark', {
  input: z.object({ k: z.string() }),
  output: z.object({ ok: z.boolean() }),
  handler: ({ k }) => {
    marked.get(k)?.(Date.now());
    marked.delete(k);
    return { ok: true };
  },
});

/** The RPC the deploy scenario's runs call after their wait; its check-deploy removes it from the manifest. */
export const deployed = defineRpc('bench.deployed', {
  input: z.object({ k: z.string() }),
  output: z.object({ ok: z.boolean() }),
  handler: () => ({ ok: true }),
});

export const benchRpcs = [noop, mark, deployed];
