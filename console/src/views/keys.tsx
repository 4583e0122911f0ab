/** API keys (admin): list, create (the secret shown once) and revoke with a reason. */
import { useState, type FormEvent } from 'react';
import { api, useApi, useWho } from '../api';
import { SCOPES, type CreatedKey, type KeyEntry, type KeyList } from '../api-types';
import { ConfirmButton, Empty, ErrorBox, Loading, Page, Table, Time, type Column } from '../components/common';
import { formText, useBy, useWriteError, withQuery } from '../components/ops-parts';
import { href, type Route } from '../router';

export function KeysView({ route }: { route: Route }) {
  const showRevoked = route.query.get('revoked') === 'true';
  const keys = useApi<KeyList>('/keys', { revoked: showRevoked ? 'true' : undefined });
  const me = useWho();
  const by = useBy();
  const [error, setError, clearError] = useWriteError();
  const [reasons, setReasons] = useState<Record<string, string>>({});

  const revoke = async (k: KeyEntry) => {
    clearError();
    try {
      await api(`/keys/${encodeURIComponent(k.id)}`, { method: 'DELETE', query: { by, reason: (reasons[k.id] ?? '').trim() } });
      keys.reload();
    } catch (e) {
      setError(e);
    }
  };

  const columns: Array<Column<KeyEntry>> = [
    {
      header: 'Key',
      cell: (k) => (
        <>
          <code>{k.id}</code>
          {k.id === me?.keyId && <span className="muted"> (you)</span>}
        </>
      ),
    },
    { header: 'Name', cell: (k) => k.name },
    { header: 'Scopes', cell: (k) => k.scopes.join(', ') },
    { header: 'Tenant', cell: (k) => k.tenant ?? <span className="muted">every tenant</span> },
    {
      header: 'Created',
      cell: (k) => (
        <>
          <Time at={k.createdAt} /> <span className="muted">by {k.createdBy}</span>
        </>
      ),
    },
    { header: 'Last used', cell: (k) => (k.lastUsedAt ? <Time at={k.lastUsedAt} /> : <span className="muted">never</span>) },
    { header: 'Audit', cell: (k) => <a href={href(['audit'], { keyId: k.id })}>its rows</a> },
    {
      header: 'Revoked',
      cell: (k) =>
        k.revokedAt ? (
          <Time at={k.revokedAt} />
        ) : (
          <span className="revoke">
            <input aria-label={`Why revoke ${k.id}`} placeholder="reason" value={reasons[k.id] ?? ''} onChange={(e) => setReasons((r) => ({ ...r, [k.id]: e.target.value }))} />{' '}
            <ConfirmButton
              label="Revoke"
              danger
              disabled={(reasons[k.id] ?? '').trim() === ''}
              confirmText={`Revoke ${k.id} (${k.name}, ${k.scopes.join(', ')})? Every client using it is refused from now on${k.id === me?.keyId ? ', this console too' : ''}.`}
              onConfirm={() => revoke(k)}
            />
          </span>
        ),
    },
  ];
  return (
    <Page
      title="Keys"
      actions={
        <a href={withQuery(route, { revoked: showRevoked ? null : 'true' })}>{showRevoked ? 'Hide revoked keys' : 'Show revoked keys'}</a>
      }
    >
      <CreateKey onCreated={keys.reload} />
      <ErrorBox error={keys.error} title="The keys could not be read" />
      <ErrorBox error={error} title="The key was not revoked" />
      {!keys.data && keys.loading && <Loading what="the keys" />}
      {keys.data && keys.data.keys.length === 0 && <Empty>No keys{showRevoked ? '' : ' (not revoked)'}. Create one above.</Empty>}
      {keys.data && keys.data.keys.length > 0 && <Table rows={keys.data.keys} columns={columns} rowKey={(k) => k.id} testId="keys" />}
    </Page>
  );
}

function CreateKey({ onCreated }: { onCreated: () => void }) {
  const by = useBy();
  const [error, setError, clearError] = useWriteError();
  const [created, setCreated] = useState<CreatedKey | null>(null);
  const [copied, setCopied] = useState(false);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    clearError();
    setCreated(null);
    setCopied(false);
    const form = e.currentTarget;
    const data = new FormData(form);
    const tenant = formText(data, 'tenant');
    setBusy(true);
    try {
      const made = await api<CreatedKey>('/keys', {
        method: 'POST',
        body: { name: formText(data, 'name'), scopes: data.getAll('scopes').filter((v): v is string => typeof v === 'string'), tenant: tenant || null, by, ...(formText(data, 'reason') ? { reason: formText(data, 'reason') } : {}) },
      });
      setCreated(made);
      form.reset();
      onCreated();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="card" data-testid="create-key">
      <h2>Create a key</h2>
      <form className="form-grid" onSubmit={(e) => void submit(e)}>
        <label htmlFor="key-name">Name</label>
        <input id="key-name" name="name" required placeholder="who or what uses it" />
        <span>Scopes</span>
        <span className="scopes">
          {SCOPES.map((s) => (
            <label key={s}>
              <input type="checkbox" name="scopes" value={s} defaultChecked={s === 'read'} /> {s}
            </label>
          ))}
          <span className="muted"> admin holds every scope; operate and publish hold read</span>
        </span>
        <label htmlFor="key-tenant">Tenant</label>
        <input id="key-tenant" name="tenant" placeholder="empty: every tenant (a tenant key holds only read and operate)" />
        <label htmlFor="key-reason">Reason</label>
        <input id="key-reason" name="reason" placeholder="optional, recorded in the audit log" />
        <span />
        <span>
          <button type="submit" className="primary" disabled={busy}>
            Create key
          </button>
        </span>
      </form>
      <ErrorBox error={error} title="The key was not created" />
      {created && (
        <div className="secret" data-testid="new-key">
          <p>
            <strong>Key {created.id} created.</strong> Copy its secret now: it is shown this once and never stored.
          </p>
          <code data-testid="new-key-secret">{created.key}</code>{' '}
          <button
            type="button"
            onClick={() => {
              void navigator.clipboard?.writeText(created.key).then(() => setCopied(true));
            }}
          >
            {copied ? 'Copied' : 'Copy'}
          </button>{' '}
          <button type="button" onClick={() => setCreated(null)}>
            I have copied it
          </button>
        </div>
      )}
    </div>
  );
}
