/**
 * Logs: one pino logger per process, JSON lines by default (LOG_FORMAT=pretty
 * for a terminal), the level from LOG_LEVEL. The HTTP API passes the same
 * logger to fastify; the worker routes the Temporal runtime's logger (the
 * SDK's own lines, workflow and activity logs, and core's forwarded logs)
 * through it with {@link TemporalPinoLogger}.
 *
 * Fields: `runId` (pinflow's run id, Temporal's workflow id), `temporalRunId`,
 * `definition`, `version`, `stepInstance`, `rpc`, where known.
 *
 * An expected business outcome (a `fail` step, a non-retryable RPC error, a
 * stall: the ApplicationFailures pinflow raises for them) is logged as one
 * line with its `code` and reason, without a stack: the stack would only show
 * pinflow's internals, and the projection has the details.
 */
import pino, { type Logger as Pino, type LoggerOptions } from 'pino';
import type { LogLevel as TemporalLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import type { ActivityInterceptorsFactory } from '@temporalio/worker';
import { FAILURE_TYPES } from '../graph/errors';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  /** The process: `pinflow-api`, `pinflow-worker`, `pinflow`. */
  name: string;
}

/** pino options shared by every process (and fastify). */
export function loggerOptions(opts: LogOptions): LoggerOptions {
  return {
    name: opts.name,
    level: opts.level,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
}

/** The process logger: JSON lines on stdout, or pino-pretty (synchronous, no worker thread) when `format` is 'pretty'. */
export function createLogger(opts: LogOptions): Pino {
  if (opts.format === 'pretty') {
    const pretty = require('pino-pretty') as typeof import('pino-pretty');
    return pino(loggerOptions(opts), pretty({ sync: true, translateTime: 'SYS:standard', ignore: 'pid,hostname' }));
  }
  // Synchronous: a line is written before a process.exit that follows it.
  return pino(loggerOptions(opts), pino.destination({ dest: 1, sync: true }));
}

/** A `(line) => void` log function (the shape pinflow's startup helpers take) writing to `logger` at `level`. */
export function lineLogger(logger: Pino, level: 'info' | 'warn' = 'info'): (line: string) => void {
  return (line) => logger[level](line);
}

/** The Temporal core's log filter level for a pino level: core's INFO is chatty, its warnings are what an operator needs. */
export function coreLogLevel(level: LogLevel): 'TRACE' | 'DEBUG' | 'WARN' | 'ERROR' {
  if (level === 'trace') return 'TRACE';
  if (level === 'debug') return 'DEBUG';
  if (level === 'info' || level === 'warn') return 'WARN';
  return 'ERROR';
}

/** Failure types that describe an operational problem rather than a business outcome: logged in full. */
const OPERATIONAL = new Set<string>([FAILURE_TYPES.PROJECTION_WRITE_REJECTED]);
const PINFLOW_TYPES = new Set<string>(Object.values(FAILURE_TYPES));

export interface BusinessFailure {
  code: string;
  message: string;
  nonRetryable?: boolean;
  stepId?: string;
  stepInstance?: string;
  reason?: string;
  rpc?: string;
}

/**
 * The business outcome an error stands for, or undefined. Walks the cause
 * chain (an ActivityFailure wraps the handler's ApplicationFailure) and
 * duck-types: errors from the workflow sandbox arrive as copies, without their
 * prototypes. Business: a pinflow failure type (but ProjectionWriteRejected),
 * or any ApplicationFailure whose first detail is pinflow's ErrorInfo for a
 * step (a `fail` step's own code).
 */
export function businessFailure(err: unknown): BusinessFailure | undefined {
  let e: unknown = err;
  for (let depth = 0; depth < 6 && e !== null && typeof e === 'object'; depth++) {
    const f = e as { type?: unknown; message?: unknown; details?: unknown; nonRetryable?: unknown; cause?: unknown };
    if (typeof f.type === 'string' && !OPERATIONAL.has(f.type)) {
      const info = Array.isArray(f.details) && f.details[0] !== null && typeof f.details[0] === 'object' ? (f.details[0] as Record<string, unknown>) : undefined;
      const isStepInfo = info !== undefined && info.type === f.type && typeof info.stepId === 'string';
      if (PINFLOW_TYPES.has(f.type) || isStepInfo) {
        const d = info?.details !== null && typeof info?.details === 'object' ? (info.details as Record<string, unknown>) : undefined;
        return {
          code: f.type,
          message: typeof f.message === 'string' ? f.message : String(f.message),
          ...(typeof f.nonRetryable === 'boolean' ? { nonRetryable: f.nonRetryable } : {}),
          ...(typeof info?.stepId === 'string' ? { stepId: info.stepId } : {}),
          ...(typeof info?.stepInstance === 'string' ? { stepInstance: info.stepInstance } : {}),
          ...(typeof d?.reason === 'string' ? { reason: d.reason } : {}),
          ...(typeof d?.rpc === 'string' ? { rpc: d.rpc } : {}),
        };
      }
    }
    e = f.cause;
  }
  return undefined;
}

const LEVELS: Record<TemporalLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * The Temporal runtime's logger on pino (`Runtime.install({ logger })`).
 * Temporal's `workflowId` is pinflow's `runId`; Temporal's own run id becomes
 * `temporalRunId`. An `error` that is a business outcome is reduced to
 * `failure: { code, message, ... }` (no stack); any other error keeps its
 * stack in `err`.
 */
export class TemporalPinoLogger implements TemporalLogger {
  constructor(private readonly logger: Pino) {}

  log(level: TemporalLevel, message: string, meta: LogMetadata = {}): void {
    const pinoLevel = LEVELS[level] ?? 'info';
    if (!this.logger.isLevelEnabled(pinoLevel)) return;
    // `failure`: the workflow side's summary of a run's failure (workflows/observability.ts), for the error it describes.
    const { workflowId, runId, workflowRunId, error, failure, ...rest } = meta as Record<string, unknown>;
    const fields: Record<string, unknown> = { ...rest };
    if (workflowId !== undefined) fields.runId = workflowId;
    // Workflow lines call Temporal's run id `runId`, activity lines `workflowRunId`.
    if ((runId ?? workflowRunId) !== undefined) fields.temporalRunId = runId ?? workflowRunId;
    if (error !== undefined) {
      const business = businessFailure(error) ?? businessFailure(failure);
      if (business) {
        fields.failure = business;
        fields.code = business.code;
        if (business.stepInstance && fields.stepInstance === undefined) fields.stepInstance = business.stepInstance;
        if (business.rpc && fields.rpc === undefined) fields.rpc = business.rpc;
        this.logger[pinoLevel](fields, `${message}: ${business.code}: ${business.message}`);
        return;
      }
      fields.err = error;
    }
    this.logger[pinoLevel](fields, message);
  }

  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}

/**
 * Activity log fields from the call envelope (worker interceptor, always on):
 * an RPC activity's logs carry `rpc`, `stepInstance`, `version` and `tenant`;
 * every activity's carry `runId` (its workflow id, mapped by {@link TemporalPinoLogger}).
 */
export const activityLogFields: ActivityInterceptorsFactory = () => {
  const fields: Record<string, string> = {};
  return {
    inbound: {
      execute: (input, next) => {
        const call = input.args[0];
        if (call !== null && typeof call === 'object') {
          const c = call as Record<string, unknown>;
          for (const key of ['rpc', 'stepInstance', 'version', 'tenant'] as const) if (typeof c[key] === 'string') fields[key] = c[key];
        }
        return next(input);
      },
    },
    outbound: {
      getLogAttributes: (input, next) => next({ ...fields, ...input }),
    },
  };
};
