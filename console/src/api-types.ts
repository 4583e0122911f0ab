/**
 * The API's shapes, from the same zod schemas the server validates and
 * documents in its OpenAPI document with (client/api-schemas.ts): a type-only
 * import, erased from the console's bundle.
 */
import type { z } from 'zod';
import type { ROUTES } from '../../client/api-schemas';

type Routes = typeof ROUTES;
type Ok<K extends keyof Routes> = Routes[K]['schema'] extends { response: { 200: infer S } } ? (S extends z.ZodType ? z.output<S> : never) : never;

export type RunPage = Ok<'listRuns'>;
export type RunSummary = RunPage['runs'][number];
export type RunDetail = Ok<'getRun'>;
export type StepRow = RunDetail['steps'][number];
export type VersionDetail = Ok<'getVersion'>;
export type OutlineNode = VersionDetail['outline']['nodes'][number];
export type OutlineEdge = VersionDetail['outline']['edges'][number];
export type DefinitionList = Ok<'listDefinitions'>;
export type VersionList = Ok<'listVersions'>;
export type EventPage = Ok<'listEvents'>;
export type EventDetail = Ok<'getEvent'>;
export type WaitList = Ok<'listWaits'>;
export type RuleList = Ok<'listRules'>;
export type DeployReport = Ok<'checkDeploy'>;
export type BatchList = Ok<'listBatches'>;
export type BatchView = Ok<'getBatch'>;
export type AuditPage = Ok<'listAudit'>;
export type AttentionCounts = Ok<'attention'>;
export type KeyList = Ok<'listKeys'>;
export type Health = Ok<'health'>;

export const RUN_STATUSES = ['RUNNING', 'STALLED', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TERMINATED'] as const;
export const STALL_REASONS = ['rpc_missing', 'input_incompatible', 'output_incompatible'] as const;
export const EVENT_STATUSES = ['RECEIVED', 'ROUTED', 'UNMATCHED', 'BUFFERED', 'EXPIRED', 'FAILED', 'REJECTED'] as const;
export const SCOPES = ['read', 'operate', 'publish', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** GET /whoami. */
export type WhoAmI = Ok<'whoami'>;

// The definition views (console-defs).
/** GET /versions/:hash/step-counts. */
export type StepCounts = Ok<'stepCounts'>;
/** GET /definitions/:name/diff. */
export type VersionDiff = Ok<'diffVersions'>;
/** GET /runs/counts. */
export type RunCountsOf = Ok<'runCounts'>;
/** One impact of POST /deploy/check, with the run's definition and version (the API answers them). */
export type DeployImpact = DeployReport['impacts'][number] & { definition: string; version: string; status?: string };
// --- Ops views (stalls inbox, events, batches, audit, keys) ---
export type EventRecord = EventPage['events'][number];
export type Delivery = EventDetail['deliveries'][number];
export type WaitEntry = WaitList['waits'][number] & { openedAt?: string; reachedAt?: string; timeoutAt?: string | null };
export type RuleEntry = RuleList['rules'][number];
export type BatchEntry = BatchList['batches'][number];
export type BatchItemPage = Ok<'listBatchItems'>;
export type BatchItem = BatchItemPage['items'][number];
export type AuditEntry = AuditPage['entries'][number];
export type KeyEntry = KeyList['keys'][number];
export type CreatedKey = KeyEntry & { key: string };
export type ResolveResult = Ok<'resolveStalled'>;
export const BATCH_ACTION_NAMES = ['cancel', 'retry', 'skip', 'migrate', 'pause', 'resume', 'rerun', 'replay'] as const;
export const BATCH_STATE_NAMES = ['RUNNING', 'PAUSED', 'CANCELLED', 'COMPLETED'] as const;
export const BATCH_ITEM_STATUS_NAMES = ['PENDING', 'APPLYING', 'DONE', 'SKIPPED', 'FAILED'] as const;
export const AUDIT_OUTCOME_NAMES = ['accepted', 'denied', 'refused', 'failed'] as const;
export const WAIT_STATUS_NAMES = ['OPEN', 'RESOLVED', 'TIMED_OUT', 'CANCELLED'] as const;
/** GET /stalls: one group per definition, version, RPC and reason. */
export type StallGroupList = Ok<'listStalls'>;
export type StallGroup = StallGroupList['groups'][number];
