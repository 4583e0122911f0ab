/**
 * What an operator can do to one run, each behind a ConfirmButton with what
 * it touches, its answer or ApiError shown where it was asked: stall decisions
 * (retry, skip with an output checked in the browser against the pinned
 * output contract), migrate, cancel, pause/resume, rerun from a step, replay.
 */
import { useState, type ReactNode } from 'react';
import { api, ApiError, useApi, useWho } from '../api';
import type { OutlineNode, RunDetail, VersionDetail, VersionList } from '../api-types';
import { href } from '../router';
import { Age, ConfirmButton, ErrorBox, JsonView, ShortHash, Time } from './common';
import { checkJsonText, type Violation } from './runs-schema';

/** One action's outcome: the API's answer or its refusal. */
interface Outcome {
  ok?: ReactNode;
  error?: ApiError;
}

function useAction(onDone: () => void) {
  const [outcome, setOutcome] = useState<Outcome>({});
  const act = async (call: () => Promise<ReactNode>) => {
    setOutcome({});
    try {
      setOutcome({ ok: await call() });
    } catch (err) {
      setOutcome({ error: err instanceof ApiError ? err : new ApiError(0, 'CONSOLE', String(err)) });
    }
    onDone();
  };
  const view = (
    <>
      {outcome.ok && (
        <div className="ok-box" role="status" data-testid="action-result">
          {outcome.ok}
        </div>
      )}
      <ErrorBox error={outcome.error} title="Refused" />
    </>
  );
  return { act, view };
}

/** Skip, migrate and cancel are destructive: the API wants a reason (REASON_REQUIRED), so the form asks first. */
const REASON_NEEDED = 'A reason is required (it is recorded in the audit log): fill in Reason above.';
function NeedsReason({ reason }: { reason: string }) {
  return reason.trim() ? null : <span className="muted"> needs a reason</span>;
}

const post = <T,>(path: string, body: unknown) => api<T>(path, { method: 'POST', body });
const runPath = (run: RunDetail, what: string) => `/runs/${encodeURIComponent(run.id)}/${what}`;

function ReasonInput({ value, onChange, id }: { value: string; onChange: (v: string) => void; id: string }) {
  return (
    <label className="inline">
      Reason{' '}
      <input id={id} name="reason" value={value} onChange={(e) => onChange(e.target.value)} placeholder="why (recorded; skip, migrate and cancel need one)" size={44} />
    </label>
  );
}

/** The skip form: the output is parsed and checked against the pinned output contract before anything is sent. */
function SkipForm({ run, rpc, schema, reason, act }: { run: RunDetail; rpc: string; schema: unknown; reason: string; act: (call: () => Promise<ReactNode>) => Promise<void> }) {
  const who = useWho();
  const [text, setText] = useState('{\n  \n}');
  const [violations, setViolations] = useState<Violation[] | undefined>();
  const [checked, setChecked] = useState<unknown>(undefined);
  const [confirming, setConfirming] = useState(false);
  const check = () => {
    const r = checkJsonText(schema, text);
    if (!reason.trim()) r.violations.push({ path: '', message: REASON_NEEDED });
    setViolations(r.violations);
    setChecked(r.value);
    setConfirming(r.violations.length === 0);
  };
  return (
    <div className="skip-form">
      <label htmlFor="skip-output">
        Output of the skipped step (JSON; must fit the pinned output contract of <code>{rpc}</code>)
      </label>
      <textarea
        id="skip-output"
        name="output"
        rows={5}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setConfirming(false);
          setViolations(undefined);
        }}
      />
      <JsonView value={schema} label="pinned output contract" />
      {violations && violations.length > 0 && (
        <ul className="violations bad" role="alert" data-testid="skip-violations">
          {violations.map((v, i) => (
            <li key={i}>
              {v.message === REASON_NEEDED ? v.message : (
                <>
                  <code>output{v.path ? `.${v.path}` : ''}</code> {v.message}
                </>
              )}
            </li>
          ))}
        </ul>
      )}
      {!confirming ? (
        <button type="button" onClick={check} data-testid="skip-check">
          Skip with this output…
        </button>
      ) : (
        <span className="confirm" role="group">
          <span>
            Complete step <code>{run.stall?.stepInstance}</code> with this output (it fits the contract) and go on?
          </span>{' '}
          <button
            type="button"
            className="danger"
            data-testid="skip-confirm"
            onClick={() => {
              setConfirming(false);
              void act(async () => {
                const r = await post<{ stallId: string; action: string }>(runPath(run, 'decisions'), {
                  action: 'skip',
                  by: who?.name ?? 'console',
                  output: checked,
                  ...(run.stall ? { stallId: run.stall.id } : {}),
                  ...(reason ? { reason } : {}),
                });
                return `Skipped: stall ${r.stallId} resolved with the given output.`;
              });
            }}
          >
            Confirm skip
          </button>{' '}
          <button type="button" onClick={() => setConfirming(false)}>
            Cancel
          </button>
        </span>
      )}
    </div>
  );
}

/** Migrate: a target version of the run's definition and a mapping of renamed steps. */
function MigrateForm({ run, steps, reason, act }: { run: RunDetail; steps: OutlineNode[]; reason: string; act: (call: () => Promise<ReactNode>) => Promise<void> }) {
  const who = useWho();
  const versions = useApi<VersionList>(`/definitions/${encodeURIComponent(run.definition)}/versions`);
  const [target, setTarget] = useState('');
  const targetVersion = useApi<VersionDetail>(target ? `/versions/${target}` : null);
  const [pairs, setPairs] = useState<Array<{ from: string; to: string }>>([]);
  const others = (versions.data?.versions ?? []).filter((v) => v.hash !== run.version);
  const targetSteps = (targetVersion.data?.outline.nodes ?? []).filter((n) => !n.parent).map((n) => n.id);
  const mapping = Object.fromEntries(pairs.filter((p) => p.from && p.to).map((p) => [p.from, p.to]));
  return (
    <div className="migrate-form">
      <ErrorBox error={versions.error} title="The versions could not be listed" />
      <label className="inline">
        Target version{' '}
        <select name="targetVersion" value={target} onChange={(e) => setTarget(e.target.value)}>
          <option value="">choose…</option>
          {others.map((v) => (
            <option key={v.hash} value={v.hash}>
              v{v.seq} {v.hash.slice(0, 12)}
              {v.latest ? ' (latest)' : ''}
            </option>
          ))}
        </select>
      </label>
      {versions.data && others.length === 0 && <span className="muted"> No other version of {run.definition}: publish one first. </span>}
      {target && (
        <div className="mapping">
          <div className="muted">Renamed steps (old = new); a step kept under its id needs no entry.</div>
          {pairs.map((p, i) => (
            <div key={i} className="mapping-row">
              <select aria-label="old step" value={p.from} onChange={(e) => setPairs(pairs.map((x, j) => (j === i ? { ...x, from: e.target.value } : x)))}>
                <option value="">old step…</option>
                {steps.map((s) => (
                  <option key={s.id}>{s.id}</option>
                ))}
              </select>{' '}
              ={' '}
              <select aria-label="new step" value={p.to} onChange={(e) => setPairs(pairs.map((x, j) => (j === i ? { ...x, to: e.target.value } : x)))}>
                <option value="">new step…</option>
                {targetSteps.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>{' '}
              <button type="button" aria-label="remove this mapping" onClick={() => setPairs(pairs.filter((_x, j) => j !== i))}>
                ×
              </button>
            </div>
          ))}
          <button type="button" onClick={() => setPairs([...pairs, { from: '', to: '' }])}>
            + mapping
          </button>
        </div>
      )}
      <ConfirmButton
        label="Migrate…"
        disabled={!target || !reason.trim()}
        danger
        confirmText={
          <>
            Move run <code>{run.id}</code> from <ShortHash hash={run.version} /> to <ShortHash hash={target} />
            {Object.keys(mapping).length ? ` with ${Object.entries(mapping).map(([a, b]) => `${a}→${b}`).join(', ')}` : ''} at its next safe point?
          </>
        }
        onConfirm={() =>
          act(async () => {
            const r = await post<{ at: string; carried: string[]; dropped: string[] }>(runPath(run, 'migrate'), {
              targetVersion: target,
              by: who?.name ?? 'console',
              ...(Object.keys(mapping).length ? { mapping } : {}),
              ...(reason ? { reason } : {}),
            });
            return (
              <>
                Migrated: continues at <code>{r.at}</code>; carried {r.carried.join(', ') || 'nothing'}
                {r.dropped.length ? `; dropped ${r.dropped.join(', ')}` : ''}.
              </>
            );
          })
        }
      />
      <NeedsReason reason={reason} />
    </div>
  );
}

function CancelButton({ run, reason, act }: { run: RunDetail; reason: string; act: (call: () => Promise<ReactNode>) => Promise<void> }) {
  const who = useWho();
  return (
    <>
    <ConfirmButton
      label="Cancel run…"
      disabled={!reason.trim()}
      danger
      confirmText={
        <>
          Cancel run <code>{run.id}</code> ({run.status}
          {run.currentStep ? ` at ${run.currentStep}` : ''}) in Temporal? It cannot be undone (a replay starts a new run).
        </>
      }
      onConfirm={() =>
        act(async () => {
          await post(runPath(run, 'cancel'), { by: who?.name ?? 'console', ...(reason ? { reason } : {}) });
          return 'Cancellation requested: the run closes as CANCELLED once Temporal has cancelled it.';
        })
      }
    />
    <NeedsReason reason={reason} />
    </>
  );
}

/** The open stall: why, since when, and the decision form. */
export function StallPanel({ run, version, canOperate, reload }: { run: RunDetail; version: VersionDetail | undefined; canOperate: boolean; reload: () => void }) {
  const who = useWho();
  const { act, view } = useAction(reload);
  const [reason, setReason] = useState('');
  const stall = run.stall;
  if (!stall) return null;
  const schema = stall.rpc ? version?.contracts[stall.rpc]?.output : undefined;
  const topLevel = (version?.outline.nodes ?? []).filter((n) => !n.parent);
  return (
    <section className="card stall-panel" data-testid="stall-panel">
      <h2>Stalled: the live deployment cannot serve this run&apos;s pinned step</h2>
      <div className="form-grid">
        <span className="muted">Reason</span>
        <code data-testid="stall-reason">{stall.reason}</code>
        <span className="muted">RPC</span>
        <code>{stall.rpc ?? '—'}</code>
        <span className="muted">Step</span>
        <code>{stall.stepInstance}</code>
        <span className="muted">Since</span>
        <span>
          <Time at={stall.since} /> (<Age since={stall.since} />)
        </span>
        <span className="muted">Details</span>
        <JsonView value={stall.details} label="details" />
      </div>
      {!canOperate && <p className="muted">Deciding needs a key with the operate scope.</p>}
      {canOperate && (
        <div className="decisions-form">
          <p className="muted">
            Decide as <strong>{who?.name}</strong>: retry once the fix is deployed, skip with an output, migrate to a version the deployment serves, or cancel.
          </p>
          <ReasonInput id="decision-reason" value={reason} onChange={setReason} />
          <div className="action-row">
            <ConfirmButton
              label="Retry"
              confirmText={
                <>
                  Dispatch <code>{stall.stepInstance}</code> again against the live <code>{stall.rpc}</code>?
                </>
              }
              onConfirm={() =>
                act(async () => {
                  const r = await post<{ stallId: string }>(runPath(run, 'decisions'), { action: 'retry', by: who?.name ?? 'console', stallId: stall.id, ...(reason ? { reason } : {}) });
                  return `Retry sent: stall ${r.stallId} resolved; the step is dispatched again.`;
                })
              }
            />{' '}
            <CancelButton run={run} reason={reason} act={act} />
          </div>
          <h3>Skip</h3>
          {stall.rpc && schema !== undefined ? (
            <SkipForm run={run} rpc={stall.rpc} schema={schema} reason={reason} act={act} />
          ) : (
            <p className="muted">{version ? 'The pinned version has no output contract for this RPC: skip is checked by the server only.' : 'Loading the pinned contract…'}</p>
          )}
          <h3>Migrate</h3>
          <MigrateForm run={run} steps={topLevel} reason={reason} act={act} />
        </div>
      )}
      {view}
    </section>
  );
}

const OPEN = new Set(['RUNNING', 'STALLED', 'PAUSED']);

/** Operator actions on any run: pause/resume, rerun from a step, replay, cancel. */
export function RunActions({ run, version, reload }: { run: RunDetail; version: VersionDetail | undefined; reload: () => void }) {
  const who = useWho();
  const { act, view } = useAction(reload);
  const [reason, setReason] = useState('');
  const topLevel = (version?.outline.nodes ?? []).filter((n) => !n.parent).map((n) => n.id);
  const [fromStep, setFromStep] = useState('');
  const [editInput, setEditInput] = useState(false);
  const [inputText, setInputText] = useState(() => JSON.stringify(run.input ?? null, null, 2));
  const [inputError, setInputError] = useState('');
  const open = OPEN.has(run.status);
  const by = who?.name ?? 'console';
  const newRun = (r: { runId: string; created: boolean; kind: string }) => (
    <>
      {r.kind === 'rerun' ? 'Rerun' : 'Replay'} {r.created ? 'started' : 'already existed'}: <a href={href(['runs', r.runId])}>{r.runId}</a>
    </>
  );
  let replayInput: unknown;
  return (
    <section className="card" data-testid="run-actions">
      <h2>Actions</h2>
      <ReasonInput id="action-reason" value={reason} onChange={setReason} />
      <div className="action-row">
        {open && run.status !== 'PAUSED' && !run.pause && (
          <ConfirmButton
            label="Pause"
            confirmText={<>Hold the run at its next top-level step boundary until resumed?</>}
            onConfirm={() =>
              act(async () => {
                const r = await post<{ alreadyPaused: boolean }>(runPath(run, 'pause'), { by, ...(reason ? { reason } : {}) });
                return r.alreadyPaused ? 'It was already paused.' : 'Pause requested: the run holds at its next top-level step boundary.';
              })
            }
          />
        )}
        {open && (run.status === 'PAUSED' || run.pause) && (
          <ConfirmButton
            label="Resume"
            confirmText={<>Let the run go on{run.pause?.before ? ` at ${run.pause.before}` : ''}?</>}
            onConfirm={() =>
              act(async () => {
                const r = await post<{ wasPaused: boolean }>(runPath(run, 'resume'), { by, ...(reason ? { reason } : {}) });
                return r.wasPaused ? 'Resumed.' : 'It was not paused.';
              })
            }
          />
        )}
        {open && <CancelButton run={run} reason={reason} act={act} />}
      </div>
      <div className="action-row">
        <label className="inline">
          Rerun from step{' '}
          <select name="fromStep" value={fromStep} onChange={(e) => setFromStep(e.target.value)}>
            <option value="">choose…</option>
            {topLevel.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>{' '}
        <ConfirmButton
          label="Rerun…"
          disabled={!fromStep}
          confirmText={
            <>
              Start a new run at <code>{fromStep}</code> with the state <code>{run.id}</code> had just before it (this run is not changed)?
            </>
          }
          onConfirm={() => act(async () => newRun(await post(runPath(run, 'rerun'), { fromStep, by, ...(reason ? { reason } : {}) })))}
        />
      </div>
      <div className="action-row">
        <label className="inline">
          <input type="checkbox" checked={editInput} onChange={(e) => setEditInput(e.target.checked)} /> replay with an edited input
        </label>
        {editInput && <textarea aria-label="replay input" rows={5} value={inputText} onChange={(e) => setInputText(e.target.value)} />}
        {inputError && <div className="bad">{inputError}</div>}
        <ConfirmButton
          label="Replay…"
          confirmText={<>Start a new run of the same version from the start with {editInput ? 'the edited input' : 'the original input (from the Temporal history)'}?</>}
          onConfirm={() => {
            if (editInput) {
              try {
                replayInput = JSON.parse(inputText);
                setInputError('');
              } catch (err) {
                setInputError(`input is not JSON: ${err instanceof Error ? err.message : String(err)}`);
                return;
              }
            }
            return act(async () => newRun(await post(runPath(run, 'replay'), { by, ...(editInput ? { input: replayInput } : {}), ...(reason ? { reason } : {}) })));
          }}
        />
      </div>
      {view}
    </section>
  );
}
