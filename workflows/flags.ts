/**
 * The interpreter's behaviour-change registry. Every change that alters the
 * command sequence of an existing history is numbered here with why and
 * since when, and gated with `patched(FLAGS.x)`, so histories recorded by an
 * earlier release replay unchanged (see test/histories and replay.test.ts).
 * Never rename or reuse an id: it is recorded in histories as a marker.
 */
export const FLAGS = {
  /**
   * 1. Since 0.3.0: an RPC whose live contract cannot serve the pinned one
   * (missing, incompatible input or output) stalls the run for an operator
   * decision instead of failing it. Before: the run failed (RpcMissing,
   * RpcInputInvalid, RpcOutputInvalid).
   */
  STALL_ON_CONTRACT_MISMATCH: 'pinflow-1-stall-on-contract-mismatch',
} as const;
