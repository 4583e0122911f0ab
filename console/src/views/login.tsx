import { useState, type FormEvent } from 'react';
import { api, ApiError, storeKey } from '../api';
import type { WhoAmI } from '../api-types';
import { ErrorBox } from '../components/common';
import { navigate } from '../router';

/** Log in with an API key: checked with GET /whoami, then kept in this browser (localStorage) until logout. */
export function LoginView({ onLogin, initialError }: { onLogin: (who: WhoAmI) => void; initialError?: ApiError | undefined }) {
  const [key, setKey] = useState('');
  const [error, setError] = useState<ApiError | undefined>(initialError);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const who = await api<WhoAmI>('/whoami', { key: key.trim() });
      storeKey(key.trim());
      onLogin(who);
      navigate('#/runs');
    } catch (err) {
      setError(err instanceof ApiError ? err : new ApiError(0, 'CONSOLE', String(err)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div className="login">
      <h1>pinflow</h1>
      <form onSubmit={(e) => void submit(e)}>
        <label htmlFor="api-key">API key</label>
        <input id="api-key" name="key" type="password" autoComplete="off" placeholder="pf_…" value={key} onChange={(e) => setKey(e.target.value)} autoFocus />
        <button type="submit" className="primary" disabled={busy || key.trim() === ''}>
          Log in
        </button>
      </form>
      <p className="muted">
        Paste an API key (<code>pinflow keys create --scope read,operate --name &lt;you&gt;</code>). <code>npm start</code> prints a link that logs in with its
        admin key. The console shows what the key&apos;s scopes and tenant allow.
      </p>
      <ErrorBox error={error} title={error?.status === 401 ? "The key was refused" : "Could not log in"} />
    </div>
  );
}
