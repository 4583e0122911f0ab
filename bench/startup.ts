/**
 * The cost of a new workflow: replays the small histories of the replay
 * corpus (test/histories, the encrypted one left out: it needs the test key)
 * through one or more prebuilt workflow bundles and prints the CPU and wall
 * time per history. Every history replayed is a new workflow for the SDK (its
 * bundle's non-shared modules are evaluated again), and the histories are
 * short, so the figure is mostly that start-up. The bundles are measured in
 * interleaved rounds (A B A B …) so that the machine's load falls on each
 * alike; compare them side by side, not across runs.
 *
 *   node dist/bench/startup.js <rounds> <bundle.js> [<bundle.js> …]
 *
 * Each round replays the corpus `PINFLOW_STARTUP_COPIES` times (default 4)
 * through one replay worker, as a long-lived worker meets the same graphs
 * again (what it shares across workflows, it shares across those copies).
 *
 * With `--cpu-prof` the replay worker's workflow thread writes a profile of
 * its own. `PINFLOW_STARTUP_REUSE_V8=false` measures with a new V8 context
 * per workflow (the SDK's other executor).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { temporal } from '@temporalio/proto';
import { DefaultLogger, Runtime, Worker } from '@temporalio/worker';
import { projectRoot } from '../db/paths';

type History = temporal.api.history.v1.IHistory;

function corpus(): Array<{ workflowId: string; history: History }> {
  const dir = join(projectRoot(), 'test', 'histories');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json') && !f.includes('encrypted'))
    .sort()
    .map((f) => ({ workflowId: f, history: JSON.parse(readFileSync(join(dir, f), 'utf8')) as History }));
}

async function replayOnce(codePath: string, histories: Array<{ workflowId: string; history: History }>, reuseV8Context: boolean): Promise<{ cpu: number; wall: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath }, reuseV8Context, replayName: 'startup' }, histories)) {
    if (r.error) throw new Error(`${r.workflowId}: ${r.error.name}: ${r.error.message}`);
  }
  const d = process.cpuUsage(c0);
  return { cpu: (d.user + d.system) / 1000 / histories.length, wall: (performance.now() - t0) / histories.length };
}

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const [roundsArg, ...bundles] = process.argv.slice(2);
  const rounds = Number(roundsArg);
  if (!Number.isInteger(rounds) || rounds < 1 || bundles.length === 0) throw new Error('usage: startup.js <rounds> <bundle.js> [<bundle.js> …]');
  const reuse = process.env.PINFLOW_STARTUP_REUSE_V8 !== 'false';
  const copies = Number(process.env.PINFLOW_STARTUP_COPIES ?? 4);
  const histories = Array.from({ length: copies }, () => corpus()).flat();
  // One warm-up replay per bundle: the first workflow of a replay worker also pays the worker's own start.
  for (const b of bundles) await replayOnce(b, histories, reuse);
  const cpu = new Map<string, number[]>(bundles.map((b) => [b, []]));
  const wall = new Map<string, number[]>(bundles.map((b) => [b, []]));
  for (let r = 0; r < rounds; r++) {
    for (const b of bundles) {
      const m = await replayOnce(b, histories, reuse);
      cpu.get(b)!.push(m.cpu);
      wall.get(b)!.push(m.wall);
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${histories.length / copies} corpus histories × ${copies} copies per replay worker × ${rounds} rounds, reuseV8Context ${reuse}`);
  const base = med(cpu.get(bundles[0]!)!);
  for (const b of bundles) {
    const c = cpu.get(b)!;
    console.log(
      `${b}: cpu ms/history median ${med(c).toFixed(2)} [${c.map((x) => x.toFixed(1)).join(' ')}], wall ms/history median ${med(wall.get(b)!).toFixed(2)}, cpu vs first ${(med(c) / base).toFixed(2)}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
