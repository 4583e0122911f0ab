/**
 * Hash routing: `/#/runs?status=STALLED`. The API owns every path on the
 * server (`/runs` is the JSON list), so the console's own places live in the
 * fragment, and every filter is in the URL: a link can be shared.
 */
import { useEffect, useState } from 'react';

export interface Route {
  /** The path after `#`, e.g. `/runs/order-42`. */
  path: string;
  /** Path segments, decoded. */
  parts: string[];
  query: URLSearchParams;
}

function parse(hash: string): Route {
  const raw = hash.replace(/^#/, '') || '/';
  const q = raw.indexOf('?');
  const path = q >= 0 ? raw.slice(0, q) : raw;
  const query = new URLSearchParams(q >= 0 ? raw.slice(q + 1) : '');
  const parts = path.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  return { path: path || '/', parts, query };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(window.location.hash));
  useEffect(() => {
    const on = () => setRoute(parse(window.location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return route;
}

/** A console link: `href(['runs', id])`, `href(['runs'], { status: 'STALLED' })`. Empty values are left out. */
export function href(parts: readonly string[], query: Record<string, string | number | undefined | null> | URLSearchParams = {}): string {
  const path = `/${parts.map((p) => encodeURIComponent(p)).join('/')}`;
  const q = query instanceof URLSearchParams ? query : new URLSearchParams(Object.entries(query).flatMap(([k, v]) => (v === undefined || v === null || v === '' ? [] : [[k, String(v)]])));
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
}

export function navigate(to: string, opts: { replace?: boolean } = {}): void {
  if (opts.replace) window.history.replaceState(null, '', to);
  else window.location.hash = to.replace(/^#/, '');
  if (opts.replace) window.dispatchEvent(new HashChangeEvent('hashchange'));
}
