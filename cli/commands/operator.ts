/**
 * `pinflow rerun|replay` (HTTP API) and `pinflow pause|resume` (Temporal and
 * the database directly; they write their own audit rows).
 */
import { Client, Connection } from '@temporalio/client';
import type { Command } from 'commander';
import { loadCliEnvironment, loadConfig } from '../../app/config';
import { openStore } from '../../app/store';
import { AuditLog } from '../../client/audit';
import { Pinflow } from '../../client/pinflow';
import { codecFromKeys, dataConverterFor } from '../../codec/encryption';
import { ERROR_CODES, PinflowError } from '../../graph/errors';
import { clientInterceptors } from '../../observability/tracing';
import { act, apiOf, defaultBy, jsonOption } from '../command';
import { EXIT, UsageError } from '../exit';
import { collect, intOption, jsonFile, pairs, printJson } from '../format';
import { seg } from '../http';
import { resolveVersion } from './definitions';

interface RerunResult {
  runId: string;
  kind: 'rerun' | 'replay';
  sourceRunId: string;
  fromStep: string | null;
  version: string;
  created: boolean;
  temporalUiUrl: string;
}

function printRerun(r: RerunResult): void {
  console.log(`${r.created ? 'started' : 'already started'} ${r.kind} ${r.runId} of ${r.sourceRunId}${r.fromStep ? ` from step ${r.fromStep}` : ''} on version ${r.version}\n  ${r.temporalUiUrl}`);
}

interface RerunOptions {
  from: string;
  occurrence?: string;
  version?: string;
  map: string[];
  runId?: string;
  by?: string;
  reason?: string;
  json?: boolean;
}

async function pauseOrResume(command: 'pause' | 'resume', runId: string | undefined, o: { definition?: string; by?: string; reason?: string; json?: boolean }): Promise<number> {
  if ((o.definition === undefined) === (runId === undefined)) throw new UsageError(`say what to ${command}: a <runId> or --definition <name> (one of them)`);
  const by = o.by ?? loadCliEnvironment().user;
  if (!by) throw new UsageError('--by <who> is required (or USER set)');
  const config = loadConfig();
  if (!config.temporal.address) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `pinflow ${command} needs TEMPORAL_ADDRESS (and TEMPORAL_NAMESPACE unless it is "default"): the run is paused in Temporal`);
  const { store, catalog, db } = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  try {
    const connection = await Connection.connect({ address: config.temporal.address });
    try {
      const client = new Client({ connection, namespace: config.temporal.namespace, interceptors: clientInterceptors(), ...dataConverterFor(codecFromKeys(config.encryption.keys)) });
      const pinflow = new Pinflow({ client, store, catalog, rpcs: {} });
      const request = { by, ...(o.reason ? { reason: o.reason } : {}) };
      // The CLI acts on Temporal directly: it writes the audit row the API would (no key: `by` says who).
      const audit = (action: string, target: { kind: string; id: string }) =>
        new AuditLog(db).append({ keyId: null, by, action, route: 'cli', targetKind: target.kind, targetIds: [target.id], runIds: target.kind === 'run' ? [target.id] : [], reason: o.reason ?? null, outcome: 'accepted' });
      if (runId !== undefined) {
        if (command === 'pause') {
          const res = await pinflow.pause(runId, request);
          console.log(o.json ? JSON.stringify(res, null, 2) : res.alreadyPaused ? `run ${runId} was already paused (since ${res.pause.since} by ${res.pause.by})` : `run ${runId} pauses at its next top-level step boundary`);
        } else {
          const res = await pinflow.resume(runId, request);
          console.log(o.json ? JSON.stringify(res, null, 2) : res.wasPaused ? `run ${runId} resumed` : `run ${runId} was not paused`);
        }
        await audit(`run.${command}`, { kind: 'run', id: runId });
        return EXIT.OK;
      }
      const definition = o.definition!;
      const res = command === 'pause' ? await pinflow.pauseDefinition(definition, request) : await pinflow.resumeDefinition(definition, request);
      await audit(`definition.${command}`, { kind: 'definition', id: definition });
      if (o.json) printJson(res);
      else {
        const was = 'alreadyPaused' in res ? (res.alreadyPaused ? 'was already paused' : 'paused') : res.wasPaused ? 'resumed' : 'was not paused';
        console.log(`definition ${definition} ${was}; ${res.runs.length} open run(s):`);
        for (const r of res.runs) console.log(`  ${r.runId}  ${r.ok ? (r.changed ? `${command}d` : `already ${command === 'pause' ? 'paused' : 'running'}`) : `FAILED ${r.error?.code}: ${r.error?.message}`}`);
      }
      return res.runs.every((r) => r.ok) ? EXIT.OK : EXIT.PROBLEM;
    } finally {
      await connection.close();
    }
  } finally {
    await db.close();
  }
}

export function registerOperator(program: Command): void {
  jsonOption(
    program
      .command('rerun')
      .description("a new run at <step>, seeded with the state the run had just before it (its Temporal history); HTTP API")
      .argument('<runId>')
      .requiredOption('--from <step>', 'the top-level step to start at')
      .option('--occurrence <n>', 'which time the run reached the step (default: the last)')
      .option('--version <version>', 'run another version of the definition (hash or <definition>@<seq>)')
      .option('--map <old=new>', 'with --version: renamed step (repeatable)', collect, [])
      .option('--run-id <id>', "the new run's id (a repeat with it returns that run)")
      .option('--by <who>', 'who (default cli:<OS user>)')
      .option('--reason <why>', 'why'),
  ).action(
    act(async (runId: string, o: RerunOptions, cmd: Command) => {
      const api = apiOf(cmd);
      const mapping = pairs('--map', o.map);
      const occurrence = intOption('--occurrence', o.occurrence, 1_000_000);
      const res = await api.post<RerunResult>(`/runs/${seg(runId)}/rerun`, {
        fromStep: o.from,
        by: o.by ?? defaultBy(),
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.version ? { targetVersion: await resolveVersion(api, '--version', o.version) } : {}),
        ...(o.runId ? { runId: o.runId } : {}),
        ...(occurrence !== undefined ? { occurrence } : {}),
        ...(Object.keys(mapping).length ? { mapping } : {}),
      });
      if (o.json) printJson(res);
      else printRerun(res);
    }),
  );

  jsonOption(
    program
      .command('replay')
      .description("a new run from the start with the run's original input (its Temporal history) or an edited one; HTTP API")
      .argument('<runId>')
      .option('--input-file <file>', 'an edited input (JSON; - reads stdin)')
      .option('--version <version>', 'run another version of the definition (hash or <definition>@<seq>)')
      .option('--run-id <id>', "the new run's id")
      .option('--by <who>', 'who (default cli:<OS user>)')
      .option('--reason <why>', 'why'),
  ).action(
    act(async (runId: string, o: { inputFile?: string; version?: string; runId?: string; by?: string; reason?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const res = await api.post<RerunResult>(`/runs/${seg(runId)}/replay`, {
        by: o.by ?? defaultBy(),
        ...(o.reason ? { reason: o.reason } : {}),
        ...(o.version ? { targetVersion: await resolveVersion(api, '--version', o.version) } : {}),
        ...(o.runId ? { runId: o.runId } : {}),
        ...(o.inputFile !== undefined ? { input: jsonFile('--input-file', o.inputFile) } : {}),
      });
      if (o.json) printJson(res);
      else printRerun(res);
    }),
  );

  for (const command of ['pause', 'resume'] as const) {
    jsonOption(
      program
        .command(command)
        .description(
          command === 'pause'
            ? 'pause a run at its next top-level step boundary, or a whole definition (its open runs pause, new runs start paused); TEMPORAL_ADDRESS + DATABASE_URL'
            : 'resume a paused run or definition; TEMPORAL_ADDRESS + DATABASE_URL',
        )
        .argument('[runId]', 'the run (or --definition)')
        .option('--definition <name>', `${command} a whole definition`)
        .option('--by <who>', 'who (default $USER)')
        .option('--reason <why>', 'why'),
    ).action(act((runId: string | undefined, o: { definition?: string; by?: string; reason?: string; json?: boolean }) => pauseOrResume(command, runId, o)));
  }
}
