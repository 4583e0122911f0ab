/**
 * Idempotent namespace and search-attribute setup through the Operator and
 * Workflow services. The gRPC equivalent of `temporal operator
 * search-attribute create`, used so the same code works against the embedded
 * dev server and a TEMPORAL_ADDRESS server where no CLI is installed. (The
 * dev server's `--search-attribute` flag is ignored once its SQLite file
 * exists, so start-time flags are not enough.)
 */
import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { SEARCH_ATTRIBUTES } from '../graph/terminology';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Register a namespace if it does not exist, and wait until it is usable. */
export async function ensureNamespace(connection: Connection, namespace: string, timeoutMs = 60_000): Promise<void> {
  try {
    await connection.workflowService.describeNamespace({ namespace });
    return;
  } catch (err) {
    if ((err as { code?: number }).code !== NOT_FOUND) throw err;
  }
  try {
    await connection.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: { seconds: 3 * 24 * 3600 } as never });
  } catch (err) {
    if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await connection.workflowService.describeNamespace({ namespace });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
}

/** Register pinflow's Keyword search attributes in `namespace`, idempotently. */
export async function ensureSearchAttributes(connection: Connection, namespace: string, timeoutMs = 60_000): Promise<void> {
  const wanted = Object.values(SEARCH_ATTRIBUTES);
  const existing = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = wanted.filter((n) => !(n in (existing.customAttributes ?? {})));
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, KEYWORD])),
    });
  } catch (err) {
    // Another process registered them concurrently.
    if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const now = await connection.operatorService.listSearchAttributes({ namespace });
    if (wanted.every((n) => n in (now.customAttributes ?? {}))) return;
    if (Date.now() > deadline) throw new Error(`search attributes ${missing.join(', ')} did not appear in namespace ${namespace}`);
    await sleep(200);
  }
}
