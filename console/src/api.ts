/**
 * The console's one way to the API: same origin, `Authorization: Bearer
 * <key>`, pinflow's error shape turned into an ApiError (code, message,
 * details) that the views show as it is.
 */
import { createContext, useCallback, useContext, useEffect, useRef, useState } from 'react';
import type { Scope, WhoAmI } from './api-types';

const KEY_STORAGE = 'pinflow.apiKey';

export function storedKey(): string | null {
  return window.localStorage.getItem(KEY_STORAGE);
}
export function storeKey(key: string | null): void {
  if (key) window.localStorage.setItem(KEY_STORAGE, key);
  else window.localStorage.removeItem(KEY_STORAGE);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown = null,
  ) {
    super(message);
  }
}

export type Query = Record<string, string | number | boolean | undefined | null | readonly string[]>;

export function queryString(query: Query | URLSearchParams | undefined): string {
  if (!query) return '';
  const q = new URLSearchParams();
  if (query instanceof URLSearchParams) query.forEach((v, k) => q.append(k, v));
  else
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === '') continue;
      if (Array.isArray(v)) for (const x of v as readonly string[]) q.append(k, x);
      else q.set(k, String(v));
    }
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** One API call. Throws ApiError for every refusal (and NETWORK for no answer). */
export async function api<T>(path: string, opts: { method?: string; query?: Query | URLSearchParams; body?: unknown; key?: string | null } = {}): Promise<T> {
  const key = opts.key === undefined ? storedKey() : opts.key;
  const headers: Record<string, string> = { accept: 'application/json' };
  if (key) headers.authorization = `Bearer ${key}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${path}${queryString(opts.query)}`, { method: opts.method ?? 'GET', headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}) });
  } catch (err) {
    throw new ApiError(0, 'NETWORK', `the API did not answer: ${err instanceof Error ? err.message : String(err)}`);
  }
  const text = await res.text();
  let body: unknown = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!res.ok) {
    const e = (body as { error?: { code?: string; message?: string; details?: unknown } } | null)?.error;
    throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (text.slice(0, 300) || res.statusText), e?.details ?? null);
  }
  return body as T;
}

export interface Loaded<T> {
  data: T | undefined;
  error: ApiError | undefined;
  loading: boolean;
  /** Load again now. */
  reload: () => void;
  /** When the data was last loaded. */
  at: Date | undefined;
}

/**
 * GET `path` (null: nothing to load) and keep it: again when `path`/`query`
 * change, every `refreshMs` when set (live views), and on `reload()`. A
 * refresh keeps showing the last data while it loads.
 */
export function useApi<T>(path: string | null, query?: Query | URLSearchParams, opts: { refreshMs?: number } = {}): Loaded<T> {
  const qs = queryString(query);
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean; at?: Date }>({ loading: path !== null });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    if (path === null) {
      setState({ loading: false });
      return;
    }
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    api<T>(`${path}${qs}`).then(
      (data) => mine === seq.current && setState({ data, loading: false, at: new Date() }),
      (error: unknown) =>
        mine === seq.current && setState((s) => ({ ...s, error: error instanceof ApiError ? error : new ApiError(0, 'CONSOLE', String(error)), loading: false, at: new Date() })),
    );
  }, [path, qs, tick]);
  useEffect(() => {
    if (!opts.refreshMs || path === null) return;
    const t = setInterval(() => {
      if (document.visibilityState === 'visible') setTick((n) => n + 1);
    }, opts.refreshMs);
    return () => clearInterval(t);
  }, [opts.refreshMs, path]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload, at: state.at };
}

/** Who is logged in (GET /whoami), for every view. */
export const WhoContext = createContext<WhoAmI | undefined>(undefined);

export function useWho(): WhoAmI | undefined {
  return useContext(WhoContext);
}

/** Whether the logged-in key holds `scope` (admin holds all; operate holds read). */
export function useCan(scope: Scope): boolean {
  const who = useWho();
  if (!who) return false;
  if (who.scopes.includes('admin')) return true;
  if (scope === 'read') return who.scopes.length > 0;
  return who.scopes.includes(scope);
}
