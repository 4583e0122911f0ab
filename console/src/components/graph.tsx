/**
 * A version's graph drawn from its outline (GET /versions/:hash `outline`):
 * nodes laid out by ELK (layered, top to bottom), drawn by React Flow. Every
 * node carries `data-step` and `data-state` so what it shows can be read back.
 * Views decorate it: a state per step (run detail), counts (definition view),
 * added/removed/changed (version diff).
 */
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import { Background, Controls, Handle, MarkerType, Position, ReactFlow, type Edge, type Node, type NodeProps } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import ELK from 'elkjs/lib/elk.bundled.js';
import type { OutlineEdge, OutlineNode } from '../api-types';

const elk = new ELK();
const NODE_W = 210;
const NODE_H = 64;

export interface GraphDecor {
  /** A class for the node: its state (`state-completed`, …) or its diff (`diff-added`, …). */
  className?: string;
  /** The value read back by tests and shown in the legend: the state, the diff kind. */
  state?: string;
  /** Extra lines under the label (attempts, counts). */
  extra?: ReactNode;
}

interface StepData extends Record<string, unknown> {
  node: OutlineNode;
  decor: GraphDecor | undefined;
}

function StepNode({ data }: NodeProps<Node<StepData>>) {
  const { node, decor } = data;
  return (
    <div className={`step-node type-${node.type} ${decor?.className ?? ''}`} data-step={node.id} data-state={decor?.state ?? ''} title={`${node.id} (${node.type})${node.parent ? ` in ${node.parent}${node.branch ? `/${node.branch}` : ''}` : ''}`}>
      <Handle type="target" position={Position.Top} />
      <div className="step-node-head">
        <strong>{node.id}</strong> <span className="step-type">{node.type}</span>
      </div>
      <div className="step-node-label">{node.label}</div>
      {decor?.extra && <div className="step-node-extra">{decor.extra}</div>}
      <Handle type="source" position={Position.Bottom} />
    </div>
  );
}

const nodeTypes = { step: StepNode };

export function GraphView({
  nodes,
  edges,
  decorate,
  edgeClass,
  onStepClick,
  height = 520,
}: {
  nodes: readonly OutlineNode[];
  edges: readonly OutlineEdge[];
  decorate?: (id: string) => GraphDecor | undefined;
  edgeClass?: (edge: OutlineEdge) => string | undefined;
  onStepClick?: (id: string) => void;
  height?: number;
}) {
  const [positions, setPositions] = useState<Map<string, { x: number; y: number }> | undefined>();
  const shape = useMemo(() => JSON.stringify({ n: nodes.map((n) => n.id), e: edges.map((e) => [e.from, e.to]) }), [nodes, edges]);
  useEffect(() => {
    let live = true;
    const ids = new Set(nodes.map((n) => n.id));
    elk
      .layout({
        id: 'root',
        layoutOptions: { 'elk.algorithm': 'layered', 'elk.direction': 'DOWN', 'elk.spacing.nodeNode': '40', 'elk.layered.spacing.nodeNodeBetweenLayers': '50' },
        children: nodes.map((n) => ({ id: n.id, width: NODE_W, height: NODE_H })),
        edges: edges.filter((e) => ids.has(e.from) && ids.has(e.to)).map((e, i) => ({ id: `e${i}`, sources: [e.from], targets: [e.to] })),
      })
      .then(
        (g) => live && setPositions(new Map((g.children ?? []).map((c) => [c.id, { x: c.x ?? 0, y: c.y ?? 0 }]))),
        // A layout failure still draws the graph: in a column.
        () => live && setPositions(new Map(nodes.map((n, i) => [n.id, { x: 0, y: i * (NODE_H + 40) }]))),
      );
    return () => {
      live = false;
    };
    // Laid out again only when the graph's shape changes (not on every new decoration).
  }, [shape]);

  const flowNodes: Array<Node<StepData>> = useMemo(
    () => nodes.map((n) => ({ id: n.id, type: 'step', position: positions?.get(n.id) ?? { x: 0, y: 0 }, data: { node: n, decor: decorate?.(n.id) }, draggable: false, connectable: false })),
    [nodes, positions, decorate],
  );
  const flowEdges: Edge[] = useMemo(
    () =>
      edges.map((e, i) => ({
        id: `e${i}-${e.from}-${e.to}`,
        source: e.from,
        target: e.to,
        label: e.kind === 'next' ? undefined : e.kind === 'case' ? 'case' : e.kind === 'entry' ? e.label ?? 'entry' : e.kind,
        className: `edge-${e.kind} ${edgeClass?.(e) ?? ''}`,
        markerEnd: { type: MarkerType.ArrowClosed },
        animated: false,
      })),
    [edges, edgeClass],
  );
  if (!positions) return <div className="graph" style={{ height }} data-testid="graph" data-ready="false" />;
  return (
    <div className="graph" style={{ height }} data-testid="graph" data-ready="true">
      <ReactFlow
        nodes={flowNodes}
        edges={flowEdges}
        nodeTypes={nodeTypes}
        fitView
        fitViewOptions={{ maxZoom: 1 }}
        maxZoom={2}
        minZoom={0.1}
        nodesDraggable={false}
        nodesConnectable={false}
        onNodeClick={(_e, n) => onStepClick?.(n.id)}
        proOptions={{ hideAttribution: true }}
      >
        <Background />
        <Controls showInteractive={false} />
      </ReactFlow>
    </div>
  );
}

/** The colours of step states, as a legend. */
export function Legend({ items }: { items: Array<{ className: string; label: string }> }) {
  return (
    <ul className="legend">
      {items.map((i) => (
        <li key={i.className}>
          <span className={`swatch ${i.className}`} /> {i.label}
        </li>
      ))}
    </ul>
  );
}
