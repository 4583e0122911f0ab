/** Attention: how many runs need attention now, per reason (GET /attention), each reason explained and linked to its runs. */
import { useApi } from '../api';
import type { AttentionCounts } from '../api-types';
import { Empty, ErrorBox, Loading, Page } from '../components/common';
import { ATTENTION_EXPLAINED } from '../components/runs-parts';
import { href, type Route } from '../router';

export function AttentionView(_props: { route: Route }) {
  const res = useApi<AttentionCounts>('/attention', undefined, { refreshMs: 5000 });
  const counts = res.data?.counts ?? {};
  const reasons = [...new Set([...Object.keys(ATTENTION_EXPLAINED), ...Object.keys(counts)])];
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  return (
    <Page title="Needs attention" actions={<span className="muted">{res.at ? `updated ${res.at.toLocaleTimeString()} · every 5 s` : null}</span>}>
      <p className="muted">
        The attention checker (in the API process, every <code>PINFLOW_ATTENTION_INTERVAL_MS</code>) flags open runs that look stuck for a reason a stall does not
        cover. Stalled runs are in <a href={href(['stalls'])}>Stalls</a>.
      </p>
      <ErrorBox error={res.error} title="The attention counts could not be read" />
      {!res.data && !res.error && <Loading what="attention counts" />}
      {res.data && total === 0 && (
        <Empty>
          Nothing needs attention: every open run is progressing, waiting within its sla, or stalled (see <a href={href(['stalls'])}>Stalls</a>).
        </Empty>
      )}
      {res.data && (
        <div className="attention-grid" data-testid="attention">
          {reasons.map((reason) => {
            const n = counts[reason] ?? 0;
            const e = ATTENTION_EXPLAINED[reason];
            return (
              <section key={reason} className={`card attention-card${n > 0 ? ' hot' : ''}`} data-reason={reason} data-count={n}>
                <h2>
                  <a href={href(['runs'], { attention: reason })}>
                    <span className="n">{n}</span> {e?.title ?? reason}
                  </a>{' '}
                  <code className="muted">{reason}</code>
                </h2>
                {e && (
                  <>
                    <p>{e.text}</p>
                    <p className="muted">What to do: {e.next}</p>
                  </>
                )}
                {n > 0 && <a href={href(['runs'], { attention: reason })}>Show the {n === 1 ? 'run' : `${n} runs`} →</a>}
              </section>
            );
          })}
        </div>
      )}
    </Page>
  );
}
