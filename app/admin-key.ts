/**
 * The local admin key of `npm start`: created on the first start, printed
 * once, and kept in a 0600 file (PINFLOW_ADMIN_KEY_FILE, default
 * `<dataDir>/admin-key`) where later starts find it. If the file is missing,
 * or its key was revoked, a new admin key is created and printed.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { AuditLog } from '../client/audit';
import type { ApiKeys } from '../client/keys';

export async function ensureLocalAdminKey(keys: ApiKeys, file: string, log: (line: string) => void): Promise<{ key: string; created: boolean }> {
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    if (await keys.verify(key)) {
      log(`admin API key: kept in ${file} (send it as "Authorization: Bearer <key>")`);
      return { key, created: false };
    }
    log(`the admin API key in ${file} is revoked or unknown to this database: creating a new one`);
  }
  const created = await keys.create({ scopes: ['admin'], tenant: null, name: 'local admin (npm start)', by: 'npm start' });
  await new AuditLog(keys.db).append({ keyId: null, by: 'npm start', action: 'key.create', targetKind: 'key', targetIds: [created.id], outcome: 'accepted', request: { name: created.name, scopes: created.scopes } });
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${created.key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  log(`admin API key created (shown once; kept in ${file}, mode 0600): ${created.key}`);
  return { key: created.key, created: true };
}
