/**
 * `npm run bench -- --profile[=scenario]`: V8 CPU profiles of one scenario,
 * for the worker's main thread and for every workflow thread.
 *
 * The Temporal SDK runs workflow code in worker threads (with
 * `reuseV8Context`, the default, one thread: @temporalio/worker's
 * ThreadedVMWorkflowCreator and workflow-worker-thread). The profiler is the
 * inspector's, reached in-process: a `node:inspector` session on the main
 * thread profiles it, and the same session attaches to each worker thread
 * (`NodeWorker.enable`) and drives that thread's own profiler through
 * `NodeWorker.sendMessageToWorker`. Nothing in the SDK is patched, and only
 * the scenario is profiled, not the set-up. The profiles (`.cpuprofile`, open
 * them in Chrome DevTools or speedscope) go to bench/results/profiles/ with a
 * top-20 self-time summary of each.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { basename, join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: CallFrame }>;
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

interface Attached {
  sessionId: string;
  title: string;
  /** Its profiler is running. */
  started?: Promise<unknown>;
  detached?: boolean;
}

export class ScenarioProfiler {
  private readonly session = new Session();
  private readonly workers: Attached[] = [];
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;

  /** Attaches to every worker thread alive now and starts profiling them and the main thread. */
  async start(): Promise<void> {
    this.session.connect();
    this.session.on('NodeWorker.attachedToWorker', (m: { params: { sessionId: string; workerInfo: { title: string; url: string } } }) => {
      const w: Attached = { sessionId: m.params.sessionId, title: m.params.workerInfo.title || m.params.workerInfo.url };
      this.workers.push(w);
      // A thread started during the scenario (e.g. a replay worker's) is profiled from its start on.
      if (this.running) w.started = this.startWorker(w).catch(() => undefined);
    });
    this.session.on('NodeWorker.detachedFromWorker', (m: { params: { sessionId: string } }) => {
      const w = this.workers.find((x) => x.sessionId === m.params.sessionId);
      if (w) w.detached = true;
    });
    this.session.on('NodeWorker.receivedMessageFromWorker', (m: { params: { sessionId: string; message: string } }) => {
      const msg = JSON.parse(m.params.message) as { id?: number; result?: unknown; error?: { message: string } };
      const w = msg.id === undefined ? undefined : this.waiting.get(msg.id);
      if (!w) return;
      this.waiting.delete(msg.id!);
      if (msg.error) w.reject(new Error(`worker inspector: ${msg.error.message}`));
      else w.resolve(msg.result);
    });
    // The inspector reports the threads that already exist right after enable; it answers enable after them.
    await this.session.post('NodeWorker.enable', { waitForDebuggerOnStart: false });
    if (this.workers.length === 0) throw new Error('--profile: no worker thread to attach to (the Temporal worker runs workflows in worker threads; none was found)');
    await this.session.post('Profiler.enable');
    await this.session.post('Profiler.start');
    this.running = true;
    const starting: Array<Promise<void>> = [];
    for (const w of this.workers) starting.push((w.started = this.startWorker(w)));
    await Promise.all(starting);
  }

  private running = false;

  private async startWorker(w: Attached): Promise<void> {
    await this.toWorker(w, 'Profiler.enable');
    await this.toWorker(w, 'Profiler.start');
  }

  /** One inspector command to a worker thread; a thread that ended never answers, so give up after 15 s. */
  private toWorker(w: Attached, method: string, params: object = {}): Promise<unknown> {
    const id = this.nextId++;
    const answered = new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`worker inspector: ${method} unanswered by thread ${w.title} after 15 s`));
      }, 15_000);
      this.waiting.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    void this.session.post('NodeWorker.sendMessageToWorker', { sessionId: w.sessionId, message: JSON.stringify({ id, method, params }) }).catch(() => undefined);
    return answered;
  }

  /** Stops every profile, writes them to `dir` as `<label>-<thread>.cpuprofile`, and returns their summaries. */
  async stop(dir: string, label: string): Promise<string[]> {
    mkdirSync(dir, { recursive: true });
    const profiles: Array<[string, CpuProfile]> = [['main', ((await this.session.post('Profiler.stop')) as { profile: CpuProfile }).profile]];
    this.running = false;
    // Threads that ended during the scenario (replay workers) took their profile with them.
    for (const [i, w] of this.workers.entries()) {
      if (w.detached) continue;
      await w.started;
      const { profile } = (await this.toWorker(w, 'Profiler.stop')) as { profile: CpuProfile };
      profiles.push([`thread-${i + 1}`, profile]);
    }
    await this.session.post('NodeWorker.disable').catch(() => undefined);
    this.session.disconnect();
    const out: string[] = [];
    for (const [thread, profile] of profiles) {
      const file = join(dir, `${label}-${thread}.cpuprofile`);
      writeFileSync(file, JSON.stringify(profile));
      const summary = `${file}\n${summarize(profile)}`;
      writeFileSync(file.replace(/\.cpuprofile$/, '.top20.txt'), `${summary}\n`);
      out.push(summary);
    }
    return out;
  }
}

/** The 20 call frames with the most self time (function, file:line), with ms and share of the profile. */
export function summarize(profile: CpuProfile, top = 20): string {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; the time a sample stands for is the next delta.
    const us = deltas[i + 1] ?? 0;
    const f = byNode.get(samples[i]!);
    if (!f) continue;
    const key = `${f.functionName || '(anonymous)'}  ${f.url ? `${basename(f.url)}:${f.lineNumber + 1}` : ''}`.trimEnd();
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  }
  const rows = [...self].sort((a, b) => b[1] - a[1]).slice(0, top);
  const lines = rows.map(([k, us]) => `  ${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / Math.max(1, total)).toFixed(1).padStart(5)}%  ${k}`);
  return [`  self time, top ${top} of ${(total / 1000).toFixed(0)} ms sampled:`, ...lines].join('\n');
}
