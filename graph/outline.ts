/**
 * The outline of a graph: its steps as nodes and its control flow as edges,
 * the one shape every drawing of a graph uses (the console, `versions diff`).
 * Step ids are unique across a whole graph, nested subgraphs included, so a
 * node is named by its step id alone.
 */
import type { Step, Subgraph } from './schema';

/** What an edge means. */
export type OutlineEdgeKind = 'next' | 'then' | 'else' | 'case' | 'default' | 'onError' | 'onTimeout' | 'entry';

export interface OutlineNode {
  id: string;
  type: Step['type'];
  /** One line that says what the step does (its RPC, event, child definition, fail code...). */
  label: string;
  /** The forEach or parallel step whose subgraph holds this step; null at the top level. */
  parent: string | null;
  /** The parallel branch that holds this step (with `parent`); null elsewhere. */
  branch: string | null;
  /** Whether the step is its (sub)graph's entry. */
  entry: boolean;
  /** The step's `ui` position hint, when the graph has one. */
  ui: { x: number; y: number } | null;
}

export interface OutlineEdge {
  from: string;
  to: string;
  kind: OutlineEdgeKind;
  /** For `case`: the case's `when` expression; for `entry`: the branch name (parallel) or `body` (forEach). */
  label: string | null;
}

export interface GraphOutline {
  entry: string;
  nodes: OutlineNode[];
  edges: OutlineEdge[];
}

function labelOf(step: Step): string {
  switch (step.type) {
    case 'rpc':
      return step.rpc;
    case 'wait':
      return `wait for ${step.event}`;
    case 'child':
      return `child ${step.definition}`;
    case 'fail':
      return `fail ${step.code}`;
    case 'if':
      return step.condition;
    case 'switch':
      return `${step.cases.length} case(s)`;
    case 'forEach':
      return `for each ${step.items}`;
    case 'parallel':
      return `${Object.keys(step.branches).length} branch(es)`;
    case 'sleep':
      return step.duration !== undefined ? `sleep ${step.duration}` : `sleep until ${step.until}`;
    case 'assign':
      return `set ${Object.keys(step.set).join(', ')}`;
    case 'return':
      return 'return';
  }
}

/** Nodes and edges of `graph`, nested subgraphs included (depth first, in graph order). */
export function outlineGraph(graph: Subgraph): GraphOutline {
  const nodes: OutlineNode[] = [];
  const edges: OutlineEdge[] = [];
  const walk = (sub: Subgraph, parent: string | null, branch: string | null): void => {
    for (const step of sub.steps) {
      const ui = (step as { ui?: { x?: unknown; y?: unknown } }).ui;
      nodes.push({
        id: step.id,
        type: step.type,
        label: labelOf(step),
        parent,
        branch,
        entry: step.id === sub.entry,
        ui: ui && typeof ui.x === 'number' && typeof ui.y === 'number' ? { x: ui.x, y: ui.y } : null,
      });
      const edge = (to: string | undefined, kind: OutlineEdgeKind, label: string | null = null) => {
        if (to !== undefined) edges.push({ from: step.id, to, kind, label });
      };
      if ('next' in step) edge(step.next, 'next');
      if ('onError' in step) edge(step.onError, 'onError');
      switch (step.type) {
        case 'if':
          edge(step.then, 'then');
          edge(step.else, 'else');
          break;
        case 'switch':
          for (const c of step.cases) edge(c.next, 'case', c.when);
          edge(step.default, 'default');
          break;
        case 'wait':
          edge(step.onTimeout, 'onTimeout');
          break;
        case 'forEach':
          edge(step.body.entry, 'entry', 'body');
          walk(step.body, step.id, null);
          break;
        case 'parallel':
          for (const [name, b] of Object.entries(step.branches)) {
            edge(b.entry, 'entry', name);
            walk(b, step.id, name);
          }
          break;
        default:
          break;
      }
    }
  };
  walk(graph, null, null);
  return { entry: graph.entry, nodes, edges };
}
