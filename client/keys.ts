/**
 * API keys: random, shown once, stored hashed, bound to one tenant or to all.
 *
 * A key reads `pf_<id>_<secret>`: `id` (16 hex digits) finds the row, the
 * secret (32 random bytes, base64url) is checked with scrypt against the
 * stored hash and salt. The secret is never stored and never logged.
 *
 * Verifying costs one primary-key read and one scrypt (tens of milliseconds of
 * CPU), so a successful verification is cached in memory for `cacheMs`
 * (PINFLOW_AUTH_CACHE_MS, default 10 s): a key revoked through another process
 * (or the CLI) is refused everywhere within that bound; the process that
 * revokes it refuses it at once.
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Db } from '../db/connection';
import { iso } from '../db/connection';
import { ERROR_CODES, InvalidRequestError, NotFoundError } from '../graph/errors';
import { SCOPES, type Scope } from './api-schemas';

/** scrypt cost: N=2^14, r=8, p=1 (the Node defaults; ~16 MiB, tens of ms). */
const SCRYPT = { N: 16_384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const HASH_BYTES = 32;
const KEY_PATTERN = /^pf_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** The scopes a key bound to one tenant may hold: definitions, rules, keys and retention are global. */
export const TENANT_KEY_SCOPES: readonly Scope[] = ['read', 'operate'];
/** Most cached verifications; past it the cache is emptied (each key then pays one scrypt again). */
const CACHE_MAX = 10_000;

function scrypt(secret: string, salt: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(secret, salt, HASH_BYTES, SCRYPT as ScryptOptions, (err, key) => (err ? reject(err) : resolve(key))));
}

/** Who a request acts as: the key's id, its scopes and its tenant (null: every tenant). */
export interface Principal {
  keyId: string;
  /** The key's name, as given when it was created. */
  name: string;
  scopes: Scope[];
  tenant: string | null;
}

export interface ApiKey {
  id: string;
  prefix: string;
  scopes: Scope[];
  tenant: string | null;
  name: string;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/**
 * Whether `held` grants `needed`: `admin` grants every scope; `operate` and
 * `publish` each grant `read` too.
 */
export function hasScope(held: readonly Scope[], needed: Scope): boolean {
  if (held.includes('admin') || held.includes(needed)) return true;
  return needed === 'read' && (held.includes('operate') || held.includes('publish'));
}

interface KeyRow {
  id: string;
  prefix: string;
  hash: string;
  salt: string;
  scopes: string[];
  tenant: string | null;
  name: string;
  created_by: string;
  created_at: unknown;
  revoked_at: unknown;
  last_used_at: unknown;
}

function view(r: KeyRow): ApiKey {
  return {
    id: r.id,
    prefix: r.prefix,
    scopes: r.scopes as Scope[],
    tenant: r.tenant,
    name: r.name,
    createdBy: r.created_by,
    createdAt: iso(r.created_at)!,
    revokedAt: iso(r.revoked_at),
    lastUsedAt: iso(r.last_used_at),
  };
}

export class ApiKeys {
  private readonly cache = new Map<string, { principal: Principal; until: number }>();
  private readonly cacheMs: number;

  constructor(
    readonly db: Db,
    opts: { cacheMs?: number } = {},
  ) {
    this.cacheMs = opts.cacheMs ?? 10_000;
  }

  /** Creates a key. The answer's `key` is the only time the secret exists outside the caller. */
  async create(input: { scopes: readonly Scope[]; tenant?: string | null; name: string; by: string }): Promise<ApiKey & { key: string }> {
    const scopes = [...new Set(input.scopes)].filter((s) => SCOPES.includes(s)).sort((a, b) => SCOPES.indexOf(a) - SCOPES.indexOf(b));
    if (scopes.length === 0) {
      throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, 'invalid request body: body.scopes: at least one scope is needed', {
        issues: [{ field: 'body.scopes', message: 'at least one scope is needed', received: input.scopes, allowed: `some of ${SCOPES.join(', ')}` }],
      });
    }
    const tenant = input.tenant ?? null;
    const global = scopes.filter((s) => !TENANT_KEY_SCOPES.includes(s));
    if (tenant !== null && global.length > 0) {
      const message = `a key bound to tenant ${JSON.stringify(tenant)} cannot hold ${global.join(', ')}: definitions, correlation rules, keys and retention are global`;
      throw new InvalidRequestError(ERROR_CODES.REQUEST_INVALID, `invalid request body: body.scopes: ${message}`, {
        issues: [{ field: 'body.scopes', message, received: scopes, allowed: `with a tenant: ${TENANT_KEY_SCOPES.join(', ')}` }],
      });
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const salt = randomBytes(16);
    const hash = await scrypt(secret, salt);
    const rows = await this.db.query<KeyRow>({
      text: `INSERT INTO api_keys (id, prefix, hash, salt, scopes, tenant, name, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *`,
      values: [id, `pf_${id}`, hash.toString('base64'), salt.toString('base64'), scopes, tenant, input.name, input.by],
    });
    return { ...view(rows[0]!), key: `pf_${id}_${secret}` };
  }

  async list(opts: { revoked?: boolean } = {}): Promise<ApiKey[]> {
    const rows = await this.db.query<KeyRow>({ text: `SELECT * FROM api_keys ${opts.revoked ? '' : 'WHERE revoked_at IS NULL'} ORDER BY created_at, id` });
    return rows.map(view);
  }

  async get(id: string): Promise<ApiKey | undefined> {
    const rows = await this.db.query<KeyRow>({ text: 'SELECT * FROM api_keys WHERE id = $1', values: [id] });
    return rows[0] ? view(rows[0]) : undefined;
  }

  /** Revokes a key (at once in this process; within `cacheMs` everywhere). Revoking a revoked key keeps its first revocation. */
  async revoke(id: string, by: string, reason: string): Promise<ApiKey> {
    const rows = await this.db.query<KeyRow>({
      text: `UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()), revoked_by = COALESCE(revoked_by, $2), revoke_reason = COALESCE(revoke_reason, $3) WHERE id = $1 RETURNING *`,
      values: [id, by, reason],
    });
    for (const [k, v] of this.cache) if (v.principal.keyId === id) this.cache.delete(k);
    if (!rows[0]) throw new NotFoundError(ERROR_CODES.KEY_NOT_FOUND, `no API key with id ${JSON.stringify(id)}`, { id });
    return view(rows[0]);
  }

  /** The principal of a presented key, or undefined when it is malformed, unknown, revoked or wrong. */
  async verify(token: string): Promise<Principal | undefined> {
    const m = KEY_PATTERN.exec(token);
    if (!m) return undefined;
    const cacheKey = createHash('sha256').update(token).digest('base64');
    const hit = this.cache.get(cacheKey);
    if (hit && hit.until > Date.now()) return hit.principal;
    this.cache.delete(cacheKey);
    const [, id, secret] = m as unknown as [string, string, string];
    const rows = await this.db.query<KeyRow>({ text: 'SELECT * FROM api_keys WHERE id = $1', values: [id] });
    const row = rows[0];
    if (!row || row.revoked_at !== null) return undefined;
    const expected = Buffer.from(row.hash, 'base64');
    const actual = await scrypt(secret, Buffer.from(row.salt, 'base64'));
    if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) return undefined;
    const principal: Principal = { keyId: row.id, name: row.name, scopes: row.scopes as Scope[], tenant: row.tenant };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(cacheKey, { principal, until: Date.now() + this.cacheMs });
    // Best effort, at most once per cache period per key and process.
    this.db.query({ text: 'UPDATE api_keys SET last_used_at = now() WHERE id = $1', values: [row.id] }).catch(() => undefined);
    return principal;
  }
}
