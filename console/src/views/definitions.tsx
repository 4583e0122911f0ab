/**
 * The definitions (GET /definitions): each with its latest version, how many
 * versions, when it was last published, and its runs open now and paused
 * (GET /runs/counts per definition).
 */
import { useEffect, useState } from 'react';
import { api, useApi } from '../api';
import type { DefinitionList, RunCountsOf } from '../api-types';
import { Empty, ErrorBox, Loading, Page, ShortHash, Table, Time } from '../components/common';
import { href, type Route } from '../router';

type Definition = DefinitionList['definitions'][number];

/** Every definition's runs by status (GET /runs/counts each), again every 5 s; a definition missing: not known (yet). */
function useRunCounts(names: readonly string[]): Map<string, RunCountsOf> {
  const [counts, setCounts] = useState(new Map<string, RunCountsOf>());
  const [tick, setTick] = useState(0);
  const key = names.join('\n');
  useEffect(() => {
    let live = true;
    void Promise.all(names.map((n) => api<RunCountsOf>('/runs/counts', { query: { definition: n } }).then((c) => [n, c] as const, () => undefined))).then((all) => {
      if (live) setCounts(new Map(all.filter((x) => x !== undefined)));
    });
    return () => {
      live = false;
    };
  }, [key, tick]);
  useEffect(() => {
    const t = setInterval(() => document.visibilityState === 'visible' && setTick((n) => n + 1), 5000);
    return () => clearInterval(t);
  }, []);
  return counts;
}

function OpenRuns({ name, counts }: { name: string; counts: RunCountsOf | undefined }) {
  if (!counts) return <span className="muted">—</span>;
  const c = counts.counts;
  const open = c.RUNNING + c.STALLED + c.PAUSED;
  return (
    <a href={href(['runs'], { definition: name })} title={`${c.RUNNING} running, ${c.STALLED} stalled, ${c.PAUSED} paused`} data-testid={`open-${name}`}>
      {open}
      {c.STALLED > 0 ? <span className="bad"> ({c.STALLED} stalled)</span> : null}
    </a>
  );
}

function PausedRuns({ name, counts }: { name: string; counts: RunCountsOf | undefined }) {
  if (!counts) return <span className="muted">—</span>;
  const n = counts.counts.PAUSED;
  if (n === 0) return <span className="muted">0</span>;
  return (
    <a href={href(['runs'], { definition: name, status: 'PAUSED' })} className="bad">
      {n} paused
    </a>
  );
}

export function DefinitionsView(_props: { route: Route }) {
  const list = useApi<DefinitionList>('/definitions', undefined, { refreshMs: 15_000 });
  const rows = [...(list.data?.definitions ?? [])].sort((a, b) => a.name.localeCompare(b.name));
  const counts = useRunCounts(rows.map((d) => d.name));
  return (
    <Page title="Definitions">
      <ErrorBox error={list.error} title="Could not list the definitions" />
      {list.loading && !list.data && <Loading what="the definitions" />}
      {list.data && rows.length === 0 && (
        <Empty>
          No definition is published yet. A definition is a named graph; each publish of a changed graph adds a version that new runs pin to.
          <br />
          Publish one with <code>pinflow publish graph.json --definition &lt;name&gt;</code> or <code>POST /definitions/&lt;name&gt;/versions</code> with the graph JSON
          (a key with the <code>publish</code> scope).
        </Empty>
      )}
      {rows.length > 0 && (
        <Table<Definition>
          testId="definitions"
          rows={rows}
          rowKey={(d) => d.name}
          rowHref={(d) => href(['definitions', d.name])}
          columns={[
            { header: 'Definition', cell: (d) => <a href={href(['definitions', d.name])}>{d.name}</a> },
            { header: 'Latest version', cell: (d) => <a href={href(['definitions', d.name], { version: d.latestVersion })}><ShortHash hash={d.latestVersion} seq={d.latestSeq} /></a> },
            { header: 'Versions', cell: (d) => d.versionCount, className: 'num' },
            { header: 'Last published', cell: (d) => <Time at={d.updatedAt} /> },
            { header: 'Open runs', cell: (d) => <OpenRuns name={d.name} counts={counts.get(d.name)} />, className: 'num' },
            { header: 'Paused runs', cell: (d) => <PausedRuns name={d.name} counts={counts.get(d.name)} />, className: 'num' },
          ]}
        />
      )}
    </Page>
  );
}
