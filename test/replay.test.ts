import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { projectRoot } from '../db/paths';
import { workflowBundlePath } from '../worker/bundle';
import { ENCRYPTED_ENCODING, EncryptionCodec } from '../codec/encryption';
import { TEST_KEY, TEST_KEY_2, testCodec } from './fixtures/encryption-keys';
import { CARD, EMAIL } from './fixtures/sensitive';

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
    // The codec passes payloads it did not encrypt through, so one replay worker serves the whole corpus.
    for await (const r of Worker.runReplayHistories({ workflowBundle: { codePath: workflowBundlePath() }, dataConverter: { payloadCodecs: [testCodec()] } }, histories)) {
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

  describe('an encrypted history (payload codec, test/fixtures/encryption-keys.ts)', () => {
    const file = files.find((f) => f.endsWith('-encrypted.json'));

    it('is in the corpus, every payload encrypted with the test key and no plaintext of its input in the file', () => {
      assert.ok(file, 'expected an -encrypted.json history');
      const text = readFileSync(join(dir, file), 'utf8');
      const payloads: Array<{ metadata?: Record<string, string>; data?: string }> = [];
      // Markers' own bookkeeping (patch ids, a local activity's attempt and times) is written by the SDK core, not the codec.
      const CORE_MARKER_FIELDS = new Set(['patch-data', 'data']);
      const walk = (v: unknown, key = ''): void => {
        if (Array.isArray(v)) v.forEach((x) => walk(x, key));
        else if (v && typeof v === 'object') {
          const o = v as Record<string, unknown>;
          if (Array.isArray(o.payloads) && !CORE_MARKER_FIELDS.has(key)) payloads.push(...(o.payloads as typeof payloads));
          for (const [k, x] of Object.entries(o)) walk(x, k);
        }
      };
      walk(JSON.parse(text));
      assert.ok(payloads.length >= 5, `expected payloads in the history, found ${payloads.length}`);
      for (const p of payloads) {
        assert.equal(Buffer.from(p.metadata?.encoding ?? '', 'base64').toString(), ENCRYPTED_ENCODING);
        assert.equal(Buffer.from(p.metadata?.['encryption-key-id'] ?? '', 'base64').toString(), TEST_KEY.id);
      }
      const decoded = payloads.map((p) => Buffer.from(p.data ?? '', 'base64').toString('latin1')).join('\n');
      for (const secret of [CARD, EMAIL, 'pay.charge', 'payment']) {
        assert.ok(!text.includes(secret) && !decoded.includes(secret), `${secret} is readable in ${file}`);
      }
    });

    it('replays with the key, and fails to replay without it, saying why', async () => {
      const history = load(file!);
      await Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() }, dataConverter: { payloadCodecs: [testCodec()] } }, history, 'encrypted');
      await assert.rejects(Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() } }, history, 'encrypted-no-key'), (err: unknown) => {
        assert.match(String((err as Error)?.message ?? err), /Unknown encoding: binary\/encrypted/);
        return true;
      });
      // With another key only: the codec names the key id the history needs.
      const otherKey = new EncryptionCodec({ current: TEST_KEY_2, old: [] });
      await assert.rejects(Worker.runReplayHistory({ workflowBundle: { codePath: workflowBundlePath() }, dataConverter: { payloadCodecs: [otherKey] } }, history, 'encrypted-wrong-key'), (err: unknown) => {
        assert.match(String((err as Error)?.message ?? err), /key id \\?"test-key-1\\?", which this process does not hold/);
        return true;
      });
    });
  });
});
