import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { projectRoot } from '../db/paths';
import { workflowBundlePath } from '../worker/bundle';

/**
 * The replay corpus: complete histories recorded from earlier releases
 * (test/histories, written by `npm run histories:record`). Every one must
 * replay cleanly against the current interpreter bundle; an interpreter change
 * that alters an existing command sequence must be gated with `patched()`.
 */
const dir = join(projectRoot(), 'test', 'histories');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

type JsonHistory = { events: Array<Record<string, unknown>> };
const load = (file: string) => JSON.parse(readFileSync(join(dir, file), 'utf8')) as JsonHistory;

describe('replay corpus', function () {
  this.timeout(60_000);

  it('holds recorded histories', () => {
    assert.ok(files.length >= 4, `expected the recorded corpus in ${dir}, found ${files.length} file(s)`);
  });

  it('replays every recorded history without nondeterminism (Worker.runReplayHistories)', async () => {
    const results: Array<[string, string | undefined]> = [];
    const histories = files.map((file) => ({ workflowId: file, history: load(file) }));
    for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: workflowBundlePath() } }, histories)) {
      results.push([r.workflowId, r.error ? `${r.error.name}: ${r.error.message}` : undefined]);
    }
    assert.deepEqual(
      results,
      files.map((f) => [f, undefined]),
    );
  });

  it('detects a changed command sequence (the corpus check can fail)', async () => {
    // Rewrite the pinned graph in the start input so the run would skip its
    // first RPC: the interpreter then issues different commands than history.
    const history = load(files.find((f) => f.endsWith('-completed.json'))!);
    const started = history.events[0]!.workflowExecutionStartedEventAttributes as { input: { payloads: Array<{ data: string }> } };
    const payload = started.input.payloads[0]!;
    const runInput = JSON.parse(Buffer.from(payload.data, 'base64').toString('utf8')) as { graph: { entry: string } };
    runInput.graph.entry = 'done';
    payload.data = Buffer.from(JSON.stringify(runInput)).toString('base64');
    await assert.rejects(
      Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, 'tampered'),
      (err: unknown) => {
        assert.ok(err instanceof DeterminismViolationError, `expected DeterminismViolationError, got ${String(err)}`);
        return true;
      },
    );
  });
});
