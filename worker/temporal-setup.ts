/**
 * Idempotent namespace and search-attribute setup through the Operator and
 * Workflow services. The gRPC equivalent of `temporal operator
 * search-attribute create`, used so the same code works against the embedded
 * dev server and a TEMPORAL_ADDRESS server where no CLI is installed. (The
 * dev server's `--search-attribute` flag is ignored once its SQLite file
 * exists, so start-time flags are not enough.)
 *
 * Works with a client `Connection` and a worker `NativeConnection` alike
 * (both expose the two services). On a server pinflow may not change (no
 * permission to register), {@link ensureTemporalSetup} fails with
 * TEMPORAL_SETUP_MISSING and the `temporal` commands that create what is
 * missing.
 */
import { temporal } from '@temporalio/proto';
import { ERROR_CODES, PinflowError } from '../graph/errors';
import { SEARCH_ATTRIBUTES, SEARCHABLE_METADATA_PREFIX } from '../graph/terminology';

const KEYWORD = temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the setup needs of a connection: the Workflow and Operator services. */
export interface AdminConnection {
  workflowService: Pick<temporal.api.workflowservice.v1.WorkflowService, 'describeNamespace' | 'registerNamespace'>;
  operatorService: Pick<temporal.api.operatorservice.v1.OperatorService, 'listSearchAttributes' | 'addSearchAttributes'>;
}

/** The search attributes pinflow needs in a namespace: its own, plus one per searchable metadata key. */
export function wantedSearchAttributes(metadataKeys: readonly string[] = []): string[] {
  return [...Object.values(SEARCH_ATTRIBUTES), ...metadataKeys.map((k) => `${SEARCHABLE_METADATA_PREFIX}${k}`)];
}

/** Register a namespace if it does not exist, and wait until it is usable. */
export async function ensureNamespace(connection: AdminConnection, namespace: string, timeoutMs = 60_000): Promise<void> {
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

/**
 * Register pinflow's Keyword search attributes in `namespace`, idempotently,
 * plus `PinflowMeta_<key>` for each searchable metadata key.
 */
export async function ensureSearchAttributes(connection: AdminConnection, namespace: string, opts: { metadataKeys?: readonly string[]; timeoutMs?: number } | number = {}): Promise<void> {
  const { metadataKeys = [], timeoutMs = 60_000 } = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const wanted = wantedSearchAttributes(metadataKeys);
  const deadline = Date.now() + timeoutMs;
  // A namespace registered a moment ago may not have reached the operator service's cache yet.
  let existing;
  for (;;) {
    try {
      existing = await connection.operatorService.listSearchAttributes({ namespace });
      break;
    } catch (err) {
      if ((err as { code?: number }).code !== NOT_FOUND || Date.now() > deadline) throw err;
      await sleep(200);
    }
  }
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
  for (;;) {
    const now = await connection.operatorService.listSearchAttributes({ namespace });
    if (wanted.every((n) => n in (now.customAttributes ?? {}))) return;
    if (Date.now() > deadline) throw new Error(`search attributes ${missing.join(', ')} did not appear in namespace ${namespace}`);
    await sleep(200);
  }
}

/** The `temporal` commands an administrator runs to create what pinflow needs. */
export function setupCommands(namespace: string, metadataKeys: readonly string[] = []): string[] {
  const names = wantedSearchAttributes(metadataKeys);
  return [
    `temporal operator namespace create --namespace ${namespace}`,
    `temporal operator search-attribute create --namespace ${namespace} ${names.map((n) => `--name ${n} --type Keyword`).join(' ')}`,
  ];
}

/**
 * Make sure the namespace and pinflow's search attributes exist (creating
 * them when allowed), or fail with TEMPORAL_SETUP_MISSING naming what is
 * missing and the commands that create it. The worker calls this before it
 * polls: without the attributes every run's upsert would fail its workflow
 * task.
 */
export async function ensureTemporalSetup(connection: AdminConnection, namespace: string, opts: { metadataKeys?: readonly string[]; timeoutMs?: number } = {}): Promise<void> {
  const metadataKeys = opts.metadataKeys ?? [];
  const fail = (what: string, err: unknown): never => {
    const commands = setupCommands(namespace, metadataKeys);
    throw new PinflowError(
      ERROR_CODES.TEMPORAL_SETUP_MISSING,
      `${what} in namespace ${namespace} (${(err as Error).message}); an administrator can create them with:\n  ${commands.join('\n  ')}`,
      { namespace, commands },
    );
  };
  try {
    await ensureNamespace(connection, namespace, opts.timeoutMs);
  } catch (err) {
    fail(`the namespace ${namespace} does not exist and could not be registered`, err);
  }
  try {
    await ensureSearchAttributes(connection, namespace, { metadataKeys, ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}) });
  } catch (err) {
    fail(`pinflow's search attributes (${wantedSearchAttributes(metadataKeys).join(', ')}) are missing and could not be created`, err);
  }
}
