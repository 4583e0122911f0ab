/**
 * The CLI's client of the pinflow HTTP API: one place that builds requests
 * (base URL, bearer key, query strings) and maps every failure to one error,
 * {@link ApiError}: the API's own `{ error: { code, message, details } }`, or
 * API_UNREACHABLE when nothing answered. The entry prints it as
 * `CODE: message` and exits 2.
 */
import { readFileSync } from 'node:fs';
import { loadCliEnvironment } from '../app/config';
import { UsageError } from './exit';

/** An error answered by the API (or API_UNREACHABLE / API_ANSWER_INVALID when there was no usable answer). */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly code: string,
    message: string,
    readonly status: number | null,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

/** A query value: a list repeats the parameter; undefined and empty lists are left out. */
export type QueryValue = string | number | boolean | undefined | readonly string[];

export interface ApiOptions {
  /** Base URL. @default PINFLOW_API_URL, else http://127.0.0.1:8080 */
  api?: string;
  /** A file holding the key (first line); else PINFLOW_API_KEY. */
  keyFile?: string;
}

export class ApiClient {
  readonly base: string;
  private readonly key: string | undefined;

  constructor(opts: ApiOptions) {
    const env = loadCliEnvironment();
    this.base = (opts.api ?? env.apiUrl).replace(/\/+$/, '');
    if (!/^https?:\/\/[^/]/.test(this.base)) throw new UsageError(`--api ${JSON.stringify(opts.api ?? env.apiUrl)} is not an http(s) URL (e.g. http://127.0.0.1:8080)`);
    this.key = opts.keyFile !== undefined ? readKeyFile(opts.keyFile) : env.apiKey;
  }

  get<T>(path: string, query: Record<string, QueryValue> = {}): Promise<T> {
    return this.request<T>('GET', path, { query });
  }

  post<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>('POST', path, { body });
  }

  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts: { query?: Record<string, QueryValue>; body?: unknown }): Promise<T> {
    const url = `${this.base}${path}${queryString(opts.query ?? {})}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...(this.key ? { authorization: `Bearer ${this.key}` } : {}) },
        ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
        signal: AbortSignal.timeout(120_000),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new ApiError('API_UNREACHABLE', `could not reach the pinflow API at ${this.base} (${cause?.code ?? cause?.message ?? (err as Error).message}); set --api or PINFLOW_API_URL`, null);
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new ApiError('API_ANSWER_INVALID', `${method} ${path} answered ${res.status} with a body that is not JSON: ${text.slice(0, 200)}`, res.status);
    }
    if (!res.ok) {
      const e = (json as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
      if (e && typeof e.code === 'string') throw new ApiError(e.code, String(e.message), res.status, e.details);
      throw new ApiError(`HTTP_${res.status}`, `${method} ${path} answered ${res.status}: ${text.slice(0, 200)}`, res.status);
    }
    return json as T;
  }
}

/** `?a=1&b=x&b=y` from a record, undefined values left out. */
export function queryString(query: Record<string, QueryValue>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v as readonly string[]) params.append(k, one);
    else params.append(k, String(v as string | number | boolean));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

/** The key in a file (its first non-empty line): never a secret on the command line, where `ps` shows it. */
function readKeyFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`--key-file ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const key = text.split('\n').map((l) => l.trim()).find((l) => l !== '');
  if (!key) throw new UsageError(`--key-file ${file} is empty; it must hold an API key (pf_<id>_<secret>)`);
  return key;
}

/** `encodeURIComponent` for a path segment. */
export const seg = encodeURIComponent;
