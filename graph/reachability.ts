/**
 * Which `rpc` steps a run can still reach from where it is, over its pinned
 * graph. Pure: the caller hands in the run's live position (the interpreter's
 * `active` and `completed` step instances, from the `pinflow.state` query) and
 * the item counts of its active forEach steps.
 *
 * - An active step counts itself (an active rpc step is the run's next RPC),
 *   its inner subgraphs and everything reachable after it.
 * - A forEach body counts until the loop completes: the items in flight from
 *   where each one is, and the whole body again while items remain (unknown
 *   count: possible).
 * - A parallel branch that has not finished counts from where it is.
 * - An `if`/`switch` already decided (its chosen target active or completed)
 *   is behind the run: only the chosen path is ahead of it.
 * - `onError` edges count, as possible paths.
 * - A step is *certain* when every path from the position passes through it
 *   (not counting failures routed by `onError`), otherwise *possible*, with the
 *   branch step that decides it.
 * - A `child` step ahead is returned as such: its graph is the caller's to
 *   resolve. An active child step is not: the child is a run of its own.
 */
import { edgesOf, subgraphsOf, type ChildStep, type RpcStep, type Step, type Subgraph } from './schema';

export interface RunPosition {
  /** Step instances in flight. */
  active: readonly string[];
  /** Step instances completed. */
  completed: readonly string[];
  /** Item counts of active forEach step instances, when known. */
  forEachItems?: Readonly<Record<string, number | undefined>>;
}

export interface Reached<S extends Step> {
  step: S;
  /** Every path from the position reaches the step. */
  certain: boolean;
  /** The step is in flight now (an rpc step: dispatched, at a stall or in a retry). */
  activeInstance?: string;
  /** For a possible step: what decides whether it is reached. */
  decidedBy?: string;
}

export interface Reachability {
  rpcs: Array<Reached<RpcStep>>;
  /** Child steps ahead (not started yet): their graphs are resolved by the caller. */
  children: Array<Reached<ChildStep>>;
}

/** Split a step instance `id[0][2]#3` into its step id and frame suffix. */
export function parseInstance(instance: string): { id: string; suffix: string } | undefined {
  const m = /^([A-Za-z][A-Za-z0-9_-]*)((?:\[\d+\])*)(?:#\d+)?$/.exec(instance);
  return m ? { id: m[1]!, suffix: m[2]! } : undefined;
}

function normalEdges(step: Step): string[] {
  return edgesOf(step)
    .filter((e) => e.field !== 'onError')
    .map((e) => e.target);
}

/** Per subgraph: for each step, the steps every normal path from it passes through (greatest fixpoint). */
function mustReach(sg: Subgraph): Map<string, Set<string>> {
  const byId = new Map(sg.steps.map((s) => [s.id, s]));
  const all = new Set(sg.steps.map((s) => s.id));
  const must = new Map<string, Set<string>>();
  for (const s of sg.steps) must.set(s.id, normalEdges(s).length === 0 ? new Set([s.id]) : new Set(all));
  for (let changed = true; changed; ) {
    changed = false;
    for (const s of sg.steps) {
      const succ = normalEdges(s).filter((t) => byId.has(t));
      if (succ.length === 0) continue;
      let acc: Set<string> | undefined;
      for (const t of succ) {
        const m = must.get(t)!;
        acc = acc ? new Set([...acc].filter((x) => m.has(x))) : new Set(m);
      }
      acc!.add(s.id);
      const old = must.get(s.id)!;
      if (acc!.size !== old.size) {
        must.set(s.id, acc!);
        changed = true;
      }
    }
  }
  return must;
}

function describeBranch(step: Step): string {
  switch (step.type) {
    case 'if':
      return `if "${step.id}" (${step.condition}: then → ${step.then}, else → ${step.else})`;
    case 'switch':
      return `switch "${step.id}" (${step.cases.map((c) => `${c.when} → ${c.next}`).join('; ')}; default → ${step.default})`;
    case 'wait':
      return `wait "${step.id}" (${step.event} → ${step.next ?? 'end'}, timeout → ${step.onTimeout ?? 'fail'})`;
    default:
      return `step "${step.id}"`;
  }
}

export function reachableFrom(graph: Subgraph, position: RunPosition): Reachability {
  const rpcs = new Map<string, Reached<RpcStep>>();
  const children = new Map<string, Reached<ChildStep>>();
  const musts = new Map<Subgraph, Map<string, Set<string>>>();
  const mustOf = (sg: Subgraph) => {
    let m = musts.get(sg);
    if (!m) musts.set(sg, (m = mustReach(sg)));
    return m;
  };
  const instances = [...position.active.map((i) => ({ i, active: true })), ...position.completed.map((i) => ({ i, active: false }))]
    .map((x) => ({ ...x, p: parseInstance(x.i) }))
    .filter((x): x is { i: string; active: boolean; p: { id: string; suffix: string } } => x.p !== undefined);

  const note = <S extends Step>(into: Map<string, Reached<S>>, r: Reached<S>) => {
    const old = into.get(r.step.id);
    if (!old) return void into.set(r.step.id, r);
    into.set(r.step.id, {
      step: r.step,
      certain: old.certain || r.certain,
      activeInstance: old.activeInstance ?? r.activeInstance,
      decidedBy: old.certain || r.certain ? undefined : (old.decidedBy ?? r.decidedBy),
    });
  };

  /** A whole subgraph from its entry (not started yet). */
  const fromEntry = (sg: Subgraph, certain: boolean, decidedBy: string | undefined) => forward(sg, [sg.entry], certain, decidedBy, true);

  /**
   * Everything reachable in `sg` from `starts` (the starts included when
   * `includeStarts`), with nested subgraphs of the steps reached.
   */
  function forward(sg: Subgraph, starts: string[], certain: boolean, decidedBy: string | undefined, includeStarts: boolean) {
    const byId = new Map(sg.steps.map((s) => [s.id, s]));
    const must = mustOf(sg);
    // Steps reached, in BFS order, with the first branch step met on the way.
    const seen = new Map<string, { branch?: Step; viaError?: string }>();
    const queue: string[] = [];
    for (const s of starts) {
      if (includeStarts) {
        if (!seen.has(s)) {
          seen.set(s, {});
          queue.push(s);
        }
      } else {
        const step = byId.get(s);
        if (!step) continue;
        const branching = normalEdges(step).length > 1 ? step : undefined;
        for (const e of edgesOf(step)) {
          if (seen.has(e.target)) continue;
          seen.set(e.target, { branch: branching, viaError: e.field === 'onError' ? step.id : undefined });
          queue.push(e.target);
        }
      }
    }
    while (queue.length) {
      const id = queue.shift()!;
      const step = byId.get(id);
      if (!step) continue;
      const how = seen.get(id)!;
      for (const e of edgesOf(step)) {
        if (seen.has(e.target)) continue;
        const branch = how.branch ?? (normalEdges(step).length > 1 ? step : undefined);
        seen.set(e.target, { branch, viaError: how.viaError ?? (e.field === 'onError' ? step.id : undefined) });
        queue.push(e.target);
      }
    }
    // Certain: on every normal path from every start.
    const startSets = starts.map((s) => {
      if (includeStarts) return must.get(s);
      const step = byId.get(s);
      if (!step) return new Set<string>();
      const succ = normalEdges(step).filter((t) => byId.has(t));
      if (succ.length === 0) return new Set<string>();
      return succ.map((t) => must.get(t)!).reduce((a, b) => new Set([...a].filter((x) => b.has(x))));
    });
    const onEveryPath = (id: string) => startSets.length > 0 && startSets.some((m) => m?.has(id));
    for (const [id, how] of seen) {
      const step = byId.get(id)!;
      if (!step) continue;
      const here = certain && onEveryPath(id);
      const why = here ? undefined : (decidedBy ?? (how.branch ? describeBranch(how.branch) : how.viaError ? `onError of "${how.viaError}"` : undefined));
      reachStep(step, here, why);
    }
  }

  /** A step ahead of the run (not started): itself and its subgraphs. */
  function reachStep(step: Step, certain: boolean, decidedBy: string | undefined) {
    if (step.type === 'rpc') note(rpcs, { step, certain, decidedBy });
    else if (step.type === 'child') note(children, { step, certain, decidedBy });
    else if (step.type === 'forEach') fromEntry(step.body, false, decidedBy ?? `forEach "${step.id}" (the items of ${step.items})`);
    else if (step.type === 'parallel') for (const sg of subgraphsOf(step)) fromEntry(sg.graph, certain, decidedBy);
  }

  /** Where the run is inside `sg`, in the frame `suffix`. */
  function fromPosition(sg: Subgraph, suffix: string, certain: boolean, decidedBy: string | undefined) {
    const byId = new Map(sg.steps.map((s) => [s.id, s]));
    const here = instances.filter((x) => x.p.suffix === suffix && byId.has(x.p.id));
    const active = here.filter((x) => x.active);
    for (const { i, p } of active) {
      const step = byId.get(p.id)!;
      if (step.type === 'rpc') note(rpcs, { step, certain, decidedBy, activeInstance: i });
      if (step.type === 'forEach') {
        const bodyIds = new Set(step.body.steps.map((s) => s.id));
        const started = new Set<string>();
        for (const x of instances) {
          if (!bodyIds.has(x.p.id) || !x.p.suffix.startsWith(`${suffix}[`)) continue;
          const m = /^\[\d+\]/.exec(x.p.suffix.slice(suffix.length));
          if (m) started.add(`${suffix}${m[0]}`);
        }
        for (const item of started) fromPosition(step.body, item, certain, decidedBy);
        const count = position.forEachItems?.[i];
        if (count === undefined) fromEntry(step.body, false, decidedBy ?? `forEach "${step.id}" (how many of its items remain is unknown)`);
        else if (started.size < count) fromEntry(step.body, certain, decidedBy);
      }
      if (step.type === 'parallel') {
        for (const { graph: branch } of subgraphsOf(step)) {
          const ids = new Set(branch.steps.map((s) => s.id));
          const seen = instances.filter((x) => x.p.suffix === suffix && ids.has(x.p.id));
          if (seen.length === 0) fromEntry(branch, certain, decidedBy);
          else if (seen.some((x) => x.active)) fromPosition(branch, suffix, certain, decidedBy);
        }
      }
      // A decided branch step: only its chosen target is ahead.
      if (step.type === 'if' || step.type === 'switch') {
        const chosen = normalEdges(step).find((t) => here.some((x) => x.p.id === t));
        if (chosen) continue;
      }
      forward(sg, [p.id], certain, decidedBy, false);
    }
  }

  fromPosition(graph, '', true, undefined);
  return { rpcs: [...rpcs.values()], children: [...children.values()] };
}

/** Without a position (the state query failed): every rpc step not completed at the top level, each possible. */
export function reachableUnknown(graph: Subgraph, completed: ReadonlySet<string>): Reachability {
  const rpcs: Array<Reached<RpcStep>> = [];
  const children: Array<Reached<ChildStep>> = [];
  const walk = (sg: Subgraph, top: boolean) => {
    for (const step of sg.steps) {
      if (top && completed.has(step.id) && step.type !== 'forEach' && step.type !== 'parallel') continue;
      if (step.type === 'rpc') rpcs.push({ step, certain: false, decidedBy: 'position unknown' });
      if (step.type === 'child') children.push({ step, certain: false, decidedBy: 'position unknown' });
      for (const s of subgraphsOf(step)) walk(s.graph, false);
    }
  };
  walk(graph, true);
  return { rpcs, children };
}
