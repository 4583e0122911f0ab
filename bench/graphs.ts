/** The benchmark's graphs, shared by bench/run.ts and bench/interp-profile.ts. */

export const CONTROL_STEPS = 200;
export const CONTROL_RPC_EVERY = 40;

/** A graph of `n` sequential rpc steps calling bench.noop, returning the last output. */
export function sequentialGraph(n: number) {
  const steps: unknown[] = Array.from({ length: n }, (_, i) => ({ id: `s${i}`, type: 'rpc', rpc: 'bench.noop', input: { i: `${i}` }, next: i === n - 1 ? 'done' : `s${i + 1}` }));
  steps.push({ id: 'done', type: 'return', output: `steps.s${n - 1}` });
  return { entry: 's0', steps };
}

/** 200 control steps (an assign, then an `if` on it, alternating) with an rpc step after every 40: 205 steps. */
export function controlGraph() {
  const steps: Array<Record<string, unknown>> = [];
  const id = (k: number) => `c${k}`;
  let rpc = 0;
  for (let k = 0; k < CONTROL_STEPS; k++) {
    const after = (k + 1) % CONTROL_RPC_EVERY === 0 ? `r${rpc}` : k === CONTROL_STEPS - 1 ? 'done' : id(k + 1);
    if (k % 2 === 0) steps.push({ id: id(k), type: 'assign', set: { x: k === 0 ? '1' : 'vars.x + 1' }, next: after });
    else steps.push({ id: id(k), type: 'if', condition: 'vars.x % 2 = 0', then: after, else: after });
    if ((k + 1) % CONTROL_RPC_EVERY === 0) {
      steps.push({ id: `r${rpc}`, type: 'rpc', rpc: 'bench.noop', input: { i: `${k}` }, next: k === CONTROL_STEPS - 1 ? 'done' : id(k + 1) });
      rpc++;
    }
  }
  steps.push({ id: 'done', type: 'return', output: { x: 'vars.x' } });
  return { entry: 'c0', steps };
}
