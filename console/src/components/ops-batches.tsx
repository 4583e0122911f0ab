/** A batch's progress: selected, done, skipped, failed, still to do, as numbers and a bar. */
import type { BatchView } from '../api-types';

export function BatchProgress({ progress, compact }: { progress: BatchView['progress']; compact?: boolean }) {
  const { selected, done, skipped, failed, pending, applying } = progress;
  const pct = (n: number) => (selected === 0 ? 0 : (100 * n) / selected);
  const finished = done + skipped + failed;
  return (
    <div className="batch-progress" data-testid="batch-progress">
      <div className="bar" role="progressbar" aria-valuemin={0} aria-valuemax={selected} aria-valuenow={finished} title={`${finished} of ${selected} acted on`}>
        <span className="bar-done" style={{ width: `${pct(done)}%` }} />
        <span className="bar-skipped" style={{ width: `${pct(skipped)}%` }} />
        <span className="bar-failed" style={{ width: `${pct(failed)}%` }} />
      </div>
      <span className={compact ? 'muted' : undefined}>
        {finished}/{selected} · <span className="ok">{done} done</span> · {skipped} skipped · <span className="bad">{failed} failed</span>
        {!compact && ` · ${pending} pending · ${applying} applying`}
      </span>
    </div>
  );
}
