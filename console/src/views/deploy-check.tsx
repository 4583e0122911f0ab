/**
 * The deploy check (POST /deploy/check): paste or upload the contract
 * manifest a deploy would bring (`pinflow contracts --rpcs <module>`) and see
 * which open runs would stall, or may stall, grouped like the stalls inbox
 * (definition, version, RPC, reason). The JSON is parsed here first, so a
 * typo is shown with its line and column before anything is sent.
 */
import { useMemo, useState, type ChangeEvent } from 'react';
import { api, ApiError } from '../api';
import type { DeployImpact, DeployReport } from '../api-types';
import { Empty, ErrorBox, formatDuration, JsonView, Page, ShortHash, Table } from '../components/common';
import { href, type Route } from '../router';

/** Where a JSON.parse error happened, as line and column, from the position V8 names. */
export function jsonErrorAt(text: string, message: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m) return message;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return /line \d+ column \d+/.test(message) ? message : `${message} (line ${line} column ${column})`;
}

/** The manifest's `contracts` from the pasted JSON: `{ contracts: {...} }` as the CLI prints it, or the bare map. */
function parseManifest(text: string): { contracts: Record<string, unknown> } | ApiError {
  if (!text.trim()) return new ApiError(0, 'MANIFEST_EMPTY', 'paste a contract manifest or choose its file first');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return new ApiError(0, 'JSON_INVALID', `the manifest is not JSON: ${jsonErrorAt(text, err instanceof Error ? err.message : String(err))}`);
  }
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isObject(value)) return new ApiError(0, 'MANIFEST_INVALID', `the manifest is ${Array.isArray(value) ? 'an array' : typeof value}; expected an object { "contracts": { "<rpc>": { "hash", "input", "output" } } }`);
  if ('contracts' in value) {
    if (!isObject(value.contracts)) return new ApiError(0, 'MANIFEST_INVALID', 'contracts: expected an object of RPC name → { hash, input, output }');
    return { contracts: value.contracts };
  }
  return { contracts: value };
}

interface Group {
  key: string;
  definition: string;
  version: string;
  rpc: string;
  reason: string;
  certain: string[];
  possible: string[];
}

/** The impacts by definition, version, RPC and reason (like the stalls inbox), largest first; a run counted once per group, certain over possible. */
function groupImpacts(impacts: readonly DeployImpact[]): Group[] {
  const groups = new Map<string, Group>();
  for (const i of impacts) {
    const key = [i.definition, i.version, i.rpc, i.reason].join('\u0000');
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { key, definition: i.definition, version: i.version, rpc: i.rpc, reason: i.reason, certain: [], possible: [] }));
    if (i.certain) {
      if (!g.certain.includes(i.runId)) g.certain.push(i.runId);
      g.possible = g.possible.filter((r) => r !== i.runId);
    } else if (!g.certain.includes(i.runId) && !g.possible.includes(i.runId)) g.possible.push(i.runId);
  }
  return [...groups.values()].sort((a, b) => b.certain.length - a.certain.length || b.possible.length - a.possible.length || a.key.localeCompare(b.key));
}

function RunLinks({ ids }: { ids: string[] }) {
  if (ids.length === 0) return <span className="muted">—</span>;
  return (
    <span className="run-links">
      {ids.map((id, i) => (
        <span key={id}>
          {i > 0 && ', '}
          <a href={href(['runs', id])}>{id}</a>
        </span>
      ))}
    </span>
  );
}

export function DeployCheckView(_props: { route: Route }) {
  const [text, setText] = useState('');
  const [error, setError] = useState<ApiError | undefined>();
  const [report, setReport] = useState<DeployReport | undefined>();
  const [busy, setBusy] = useState(false);
  const groups = useMemo(() => groupImpacts((report?.impacts ?? []) as DeployImpact[]), [report]);

  const onFile = (e: ChangeEvent<HTMLInputElement>) => {
    const file = e.target.files?.[0];
    if (!file) return;
    file.text().then(
      (t) => {
        setText(t);
        setError(undefined);
      },
      (err: unknown) => setError(new ApiError(0, 'FILE_UNREADABLE', `could not read ${file.name}: ${String(err)}`)),
    );
  };
  const check = async () => {
    setReport(undefined);
    const manifest = parseManifest(text);
    if (manifest instanceof ApiError) {
      setError(manifest);
      return;
    }
    setError(undefined);
    setBusy(true);
    try {
      setReport(await api<DeployReport>('/deploy/check', { method: 'POST', body: manifest }));
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'CONSOLE', String(err)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Deploy check">
      <div className="card">
        <h2>The contract manifest of the deploy</h2>
        {!report && (
          <Empty>
            Before you deploy RPC handlers whose contracts changed, check which open runs would stall on them. A run is pinned to the contracts its version was
            published with; a deploy that removes an RPC or changes its input or output can stall it.
            <br />
            Paste (or choose the file of) the manifest your new code registers, as <code>pinflow contracts --rpcs dist/my-rpcs.js &gt; manifest.json</code> prints it:{' '}
            <code>{'{ "contracts": { "<rpc>": { "hash": "…", "input": {…}, "output": {…} } } }'}</code>.
          </Empty>
        )}
        <textarea
          aria-label="Contract manifest (JSON)"
          data-testid="manifest"
          rows={10}
          value={text}
          onChange={(e) => setText(e.target.value)}
          placeholder='{ "contracts": { "orders.reserve": { "hash": "…", "input": { "type": "object" }, "output": { "type": "object" } } } }'
          spellCheck={false}
        />
        <div className="filters">
          <label>
            Or choose a file
            <input type="file" accept="application/json,.json" onChange={onFile} data-testid="manifest-file" />
          </label>
          <button type="button" className="primary" onClick={() => void check()} disabled={busy} data-testid="check">
            {busy ? 'Checking… (each open run is asked where it is)' : 'Check the open runs'}
          </button>
        </div>
        <ErrorBox error={error} title="The check did not run" />
      </div>
      {report && (
        <>
          <div className="card" data-testid="deploy-summary">
            <h2>
              {report.wouldStall > 0 ? <span className="bad">{report.wouldStall} run(s) would stall</span> : <span className="ok">No run would stall for certain</span>}
              {', '}
              {report.mayStall} may stall
            </h2>
            <div className="counts">
              <span><span className="n">{report.checkedRuns}</span>open runs checked</span>
              <span><span className="n">{report.liveRuns}</span>asked where they are</span>
              <span><span className="n">{report.unknownPositionRuns}</span>position unknown (counted as possible)</span>
              <span><span className="n">{report.unaffectedRuns}</span>unaffected (call no changed RPC)</span>
              <span><span className="n">{formatDuration(report.durationMs)}</span>taken</span>
            </div>
          </div>
          <div className="card">
            <h2>Runs that would or may stall, by definition, version, RPC and reason</h2>
            {groups.length === 0 ? (
              <Empty>No open run calls a removed or changed RPC ahead of where it is: this deploy stalls nothing.</Empty>
            ) : (
              <Table<Group>
                testId="impact-groups"
                rows={groups}
                rowKey={(g) => g.key}
                columns={[
                  { header: 'Definition', cell: (g) => <a href={href(['definitions', g.definition])}>{g.definition}</a> },
                  { header: 'Version', cell: (g) => <a href={href(['definitions', g.definition], { version: g.version })}><ShortHash hash={g.version} /></a> },
                  { header: 'RPC', cell: (g) => <code>{g.rpc}</code> },
                  { header: 'Reason', cell: (g) => g.reason },
                  { header: 'Would stall', cell: (g) => <span className={g.certain.length ? 'bad' : 'muted'}>{g.certain.length}</span>, className: 'num' },
                  { header: 'May stall', cell: (g) => g.possible.length, className: 'num' },
                  {
                    header: 'Runs',
                    cell: (g) => (
                      <div data-testid={`runs-${g.rpc}`}>
                        <div>would: <RunLinks ids={g.certain} /></div>
                        {g.possible.length > 0 && <div>may: <RunLinks ids={g.possible} /></div>}
                      </div>
                    ),
                  },
                ]}
              />
            )}
          </div>
          {report.impacts.length > 0 && (
            <div className="card">
              <h2>Why, run by run</h2>
              <Table<DeployImpact>
                rows={report.impacts as DeployImpact[]}
                rowKey={(i) => `${i.runId} ${i.stepInstance} ${i.rpc} ${i.reason}`}
                rowHref={(i) => href(['runs', i.runId])}
                columns={[
                  { header: 'Run', cell: (i) => <a href={href(['runs', i.runId])}>{i.runId}</a> },
                  { header: 'Step', cell: (i) => <code>{i.stepInstance}</code> },
                  { header: 'Verdict', cell: (i) => <span className={i.certain ? 'bad' : undefined}>{i.certain ? 'would stall' : 'may stall'}</span> },
                  { header: 'Position', cell: (i) => i.position },
                  { header: 'Why', cell: (i) => i.message },
                  { header: 'Evidence', cell: (i) => <JsonView value={i.evidence} label={i.evidence.field ?? 'evidence'} /> },
                ]}
              />
            </div>
          )}
        </>
      )}
    </Page>
  );
}
