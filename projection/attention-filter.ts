/** The run_attention table's shared SQL pieces (client/attention.ts writes it; the run list filters on it). */

/** The global NO_WORKER row's run id. */
export const GLOBAL_ATTENTION = '*';
/** Open run statuses, as SQL. */
export const OPEN_STATUSES_SQL = `('RUNNING', 'STALLED', 'PAUSED')`;

/** The SQL condition of `GET /runs?attention=<reason>`, with one `?` for the reason: NO_WORKER matches every open run while it lasts. */
export const ATTENTION_FILTER = `EXISTS (SELECT 1 FROM run_attention a WHERE a.cleared_at IS NULL AND a.reason = ?
  AND (a.run_id = runs.id OR (a.run_id = '${GLOBAL_ATTENTION}' AND runs.status IN ${OPEN_STATUSES_SQL})))`;
