/**
 * `pinflow definitions ls`, `pinflow versions ls|diff`, `pinflow publish` and
 * `pinflow whoami`: the catalog over the HTTP API, and the version resolver
 * every command taking a version uses (a hash, or `<definition>@<seq>`).
 */
import type { Command } from 'commander';
import { VERSION_HASH_PATTERN } from '../../graph/terminology';
import type { GcVersion, VersionGcResult } from '../../client/version-gc';
import { GC_AGE_ALLOWED, GC_AGE_PATTERN } from '../../client/api-schemas';
import { act, apiOf, defaultBy, jsonOption } from '../command';
import { UsageError } from '../exit';
import { jsonFile, printJson, short, table, time } from '../format';
import { ApiError, seg, type ApiClient } from '../http';

interface VersionRow {
  hash: string;
  seq: number;
  publishedAt: string;
  latest: boolean;
  openRuns: number;
  removed?: { at: string; by: string; reason: string | null } | null;
}

const DEF_AT_SEQ = /^(.+)@(\d+)$/;

/** A version hash from `value` (a hash, or `<definition>@<seq>` looked up in the catalog). */
export async function resolveVersion(api: ApiClient, option: string, value: string): Promise<string> {
  return (await resolveVersionRef(api, option, value)).hash;
}

async function resolveVersionRef(api: ApiClient, option: string, value: string): Promise<{ hash: string; definition?: string }> {
  if (VERSION_HASH_PATTERN.test(value)) return { hash: value };
  const m = DEF_AT_SEQ.exec(value);
  if (!m) throw new UsageError(`${option} ${JSON.stringify(value)} is not a version; allowed: a version hash (64 lowercase hex digits) or <definition>@<seq> (e.g. orders@3)`);
  const [, definition, seq] = m as unknown as [string, string, string];
  const { versions } = await api.get<{ versions: VersionRow[] }>(`/definitions/${seg(definition)}/versions`);
  const found = versions.find((v) => v.seq === Number(seq));
  if (!found) {
    const seqs = versions.map((v) => v.seq).sort((a, b) => a - b);
    throw new ApiError('VERSION_NOT_FOUND', `${option} ${value}: definition ${definition} has no version ${seq}; it has ${seqs.length ? `${seqs[0]}..${seqs[seqs.length - 1]}` : 'none'}`, 404);
  }
  return { hash: found.hash, definition };
}

interface FieldChanges {
  added: string[];
  removed: string[];
  madeRequired: string[];
  madeOptional: string[];
  typeChanged: string[];
}

/** GET /definitions/:name/diff (api-spec of issue 15). */
interface VersionDiff {
  definition: string;
  from: { version: string; seq: number };
  to: { version: string; seq: number };
  steps: { added: string[]; removed: string[]; changed: Array<{ stepId: string; fields: string[] }>; unchanged: string[] };
  edges: { added: Array<{ from: string; to: string; kind: string; label: string | null }>; removed: Array<{ from: string; to: string; kind: string; label: string | null }> };
  contracts: Array<{ rpc: string; change: 'added' | 'removed' | 'changed' | 'unchanged'; input: FieldChanges; output: FieldChanges }>;
  openRuns: {
    total: number;
    runs: Array<{ runId: string; status: string; currentStep: string | null; pastChanges: boolean; migratable: boolean; mapping: Record<string, string> | null; problem: { code: string; message: string } | null }>;
  };
}

function fieldChanges(label: string, c: FieldChanges): string[] {
  const parts = [
    ...c.added.map((f) => `+${f}`),
    ...c.removed.map((f) => `-${f}`),
    ...c.madeRequired.map((f) => `${f} now required`),
    ...c.madeOptional.map((f) => `${f} now optional`),
    ...c.typeChanged.map((f) => `${f} type changed`),
  ];
  return parts.length ? [`${label}: ${parts.join(', ')}`] : [];
}

function printDiff(d: VersionDiff): void {
  console.log(`${d.definition}: version ${d.from.seq} (${short(d.from.version)}) -> version ${d.to.seq} (${short(d.to.version)})`);
  console.log('\nsteps:');
  for (const s of d.steps.added) console.log(`  + ${s}`);
  for (const s of d.steps.removed) console.log(`  - ${s}`);
  for (const s of d.steps.changed) console.log(`  ~ ${s.stepId} (${s.fields.join(', ')})`);
  console.log(`  ${d.steps.unchanged.length} unchanged`);
  if (d.edges.added.length || d.edges.removed.length) {
    console.log('\nedges:');
    for (const e of d.edges.added) console.log(`  + ${e.from} -${e.kind}-> ${e.to}${e.label ? ` (${e.label})` : ''}`);
    for (const e of d.edges.removed) console.log(`  - ${e.from} -${e.kind}-> ${e.to}${e.label ? ` (${e.label})` : ''}`);
  }
  const changed = d.contracts.filter((c) => c.change !== 'unchanged');
  console.log(`\ncontracts: ${changed.length ? '' : 'unchanged'}`);
  for (const c of changed) console.log(`  ${c.change.padEnd(8)} ${c.rpc}  ${[...fieldChanges('input', c.input), ...fieldChanges('output', c.output)].join('; ')}`);
  console.log(`\nopen runs pinned to version ${d.from.seq}: ${d.openRuns.total}${d.openRuns.total > d.openRuns.runs.length ? ` (first ${d.openRuns.runs.length} shown)` : ''}`);
  console.log(
    table(d.openRuns.runs, [
      ['RUN', (r) => r.runId],
      ['STATUS', (r) => r.status],
      ['STEP', (r) => r.currentStep],
      ['PAST CHANGES', (r) => (r.pastChanges ? 'yes' : 'no')],
      ['MIGRATABLE', (r) => (r.migratable ? 'yes' : 'no')],
      ['PROBLEM', (r) => (r.problem ? `${r.problem.code}: ${r.problem.message}` : '')],
    ]),
  );
}

export function registerCatalog(program: Command): void {
  const definitions = program.command('definitions').description('the published definitions (HTTP API)');
  jsonOption(definitions.command('ls').description('list definitions (GET /definitions)')).action(
    act(async (o: { json?: boolean }, cmd: Command) => {
      const res = await apiOf(cmd).get<{ definitions: Array<{ name: string; latestVersion: string; latestSeq: number; versionCount: number; updatedAt: string }> }>('/definitions');
      if (o.json) printJson(res);
      else
        console.log(
          table(res.definitions, [
            ['DEFINITION', (d) => d.name],
            ['LATEST', (d) => d.latestSeq],
            ['VERSION', (d) => short(d.latestVersion)],
            ['VERSIONS', (d) => d.versionCount],
            ['UPDATED', (d) => time(d.updatedAt)],
          ], '(no definitions)'),
        );
    }),
  );

  const versions = program.command('versions').description("a definition's versions, and the difference between two (HTTP API)");
  jsonOption(versions.command('ls').description("list a definition's versions (GET /definitions/:name/versions)").argument('<definition>')).action(
    act(async (definition: string, o: { json?: boolean }, cmd: Command) => {
      const res = await apiOf(cmd).get<{ definition: string; versions: VersionRow[] }>(`/definitions/${seg(definition)}/versions`);
      if (o.json) printJson(res);
      else
        console.log(
          table(res.versions, [
            ['SEQ', (v) => v.seq],
            ['VERSION', (v) => v.hash],
            ['PUBLISHED', (v) => time(v.publishedAt)],
            ['OPEN RUNS', (v) => v.openRuns],
            ['LATEST', (v) => (v.latest ? 'latest' : v.removed ? `removed ${time(v.removed.at)}` : '')],
          ]),
        );
    }),
  );

  jsonOption(
    versions
      .command('diff')
      .description('what changed from version <a> to <b>, and what it means for the open runs on <a> (GET /definitions/:name/diff)')
      .argument('<a>', 'the version the open runs are on: a hash or <definition>@<seq>')
      .argument('<b>', 'the version to compare with: a hash or <definition>@<seq>')
      .option('--definition <name>', 'the definition, when both are hashes of a version published under several'),
  ).action(
    act(async (a: string, b: string, o: { definition?: string; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const from = await resolveVersionRef(api, '<a>', a);
      const to = await resolveVersionRef(api, '<b>', b);
      const definition = o.definition ?? from.definition ?? to.definition ?? (await definitionOf(api, from.hash, to.hash));
      const diff = await api.get<VersionDiff>(`/definitions/${seg(definition)}/diff`, { from: from.hash, to: to.hash });
      if (o.json) printJson(diff);
      else printDiff(diff);
    }),
  );

  jsonOption(
    versions
      .command('gc')
      .description('remove from the catalog the versions nothing needs, keeping tombstones; --dry-run shows what would go and why the rest stays (POST /versions/gc, admin)')
      .option('--dry-run', 'only show what would be removed and what is kept, and why')
      .option('--older-than <age>', `minimum age since last publish: ${GC_AGE_ALLOWED} (default: the API's PINFLOW_VERSION_GC_MIN_AGE, 30d)`)
      .option('--reason <why>', 'why (required; recorded on each tombstone)')
      .option('--by <who>', 'who (default cli:$USER)'),
  ).action(
    act(async (o: { dryRun?: boolean; olderThan?: string; reason?: string; by?: string; json?: boolean }, cmd: Command) => {
      if (!o.reason) throw new UsageError('--reason is required: say why the versions go (it is recorded on each tombstone)');
      if (o.olderThan !== undefined && !GC_AGE_PATTERN.test(o.olderThan)) throw new UsageError(`--older-than ${JSON.stringify(o.olderThan)} is not an age; allowed: ${GC_AGE_ALLOWED}`);
      const res = await apiOf(cmd).post<VersionGcResult>('/versions/gc', {
        ...(o.dryRun ? { dryRun: true } : {}),
        ...(o.olderThan !== undefined ? { olderThan: o.olderThan } : {}),
        by: o.by ?? defaultBy(),
        reason: o.reason,
      });
      if (o.json) return printJson(res);
      const names = (v: { definitions: Array<{ definition: string; seq: number }> }) => v.definitions.map((d) => `${d.definition}@${d.seq}`).join(', ');
      const gone: GcVersion[] = res.dryRun ? res.candidates : res.removed;
      console.log(`${res.dryRun ? 'would remove' : 'removed'} ${gone.length} version(s) published before ${time(res.cutoff)} (older than ${res.olderThan}); kept ${res.kept.length}`);
      if (gone.length) console.log(table(gone, [['VERSION', (v) => v.hash], ['DEFINITIONS', names], ['PUBLISHED', (v) => time(v.publishedAt)]]));
      if (res.kept.length) {
        console.log('\nkept:');
        console.log(table(res.kept, [['VERSION', (v) => short(v.hash)], ['DEFINITIONS', names], ['WHY', (v) => v.reasons.map((k) => `${k.rule}: ${k.message}`).join('; ')]]));
      }
    }),
  );

  jsonOption(
    program
      .command('publish')
      .description('publish a graph as a version of a definition (POST /definitions/:name/versions); idempotent')
      .argument('<graph.json>', 'the graph JSON file (- reads stdin)')
      .requiredOption('--definition <name>', 'the definition to publish it under'),
  ).action(
    act(async (file: string, o: { definition: string; json?: boolean }, cmd: Command) => {
      const graph = jsonFile('<graph.json>', file);
      const res = await apiOf(cmd).post<{ definition: string; version: string; seq: number; created: boolean }>(`/definitions/${seg(o.definition)}/versions`, graph);
      if (o.json) printJson(res);
      else console.log(`${res.created ? 'published' : 'already published'}: ${res.definition} version ${res.seq} ${res.version}`);
    }),
  );

  jsonOption(program.command('whoami').description('the key the CLI uses: id, name, scopes, tenant (GET /whoami)')).action(
    act(async (o: { json?: boolean }, cmd: Command) => {
      const res = await apiOf(cmd).get<{ keyId: string; name: string; scopes: string[]; tenant: string | null }>('/whoami');
      if (o.json) printJson(res);
      else console.log(`key ${res.keyId} (${res.name}): scopes ${res.scopes.join(',')}, tenant ${res.tenant ?? 'all'}`);
    }),
  );
}

/** The one definition both versions are published under (a version may be published under several names). */
async function definitionOf(api: ApiClient, from: string, to: string): Promise<string> {
  const names = async (hash: string) => (await api.get<{ definitions: Array<{ definition: string }> }>(`/versions/${seg(hash)}`)).definitions.map((d) => d.definition);
  const [a, b] = await Promise.all([names(from), names(to)]);
  const common = a.filter((n) => b.includes(n));
  if (common.length === 1) return common[0]!;
  if (common.length === 0) throw new UsageError(`<a> and <b> are not versions of one definition (${short(from)}: ${a.join(', ') || 'none'}; ${short(to)}: ${b.join(', ') || 'none'})`);
  throw new UsageError(`both versions are published under ${common.join(', ')}: say which with --definition`);
}
