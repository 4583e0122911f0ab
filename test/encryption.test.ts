import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import { projectRoot } from '../db/paths';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '../app/config';
import { ENCRYPTED_ENCODING, EncryptionCodec, KEY_ID_METADATA, payloadFromJson, payloadToJson, type JsonPayload } from '../codec/encryption';
import { createApi } from '../client/http';
import { PinflowError } from '../graph/errors';
import { TEST_KEY, TEST_KEY_2, testCodec } from './fixtures/encryption-keys';
import { CARD, charge, EMAIL, paymentGraph, refundRpc, SECRETS } from './fixtures/sensitive';
import { createEnv, createKey, temporalAddress, type Env } from './support/harness';

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const leaked = (s: string) => SECRETS.filter((x) => s.includes(x));

/** Every payload in a (proto) history object, with the path it sits at. */
function payloadsOf(value: unknown, key = '', out: Array<{ key: string; p: Payload }> = []): Array<{ key: string; p: Payload }> {
  if (Array.isArray(value)) value.forEach((v) => payloadsOf(v, key, out));
  else if (value && typeof value === 'object' && !(value instanceof Uint8Array)) {
    const o = value as Record<string, unknown>;
    if (Array.isArray(o.payloads)) for (const p of o.payloads as Payload[]) out.push({ key, p });
    for (const [k, v] of Object.entries(o)) if (k !== 'payloads') payloadsOf(v, k, out);
  }
  return out;
}

describe('encryption: the AES-256-GCM payload codec (codec/encryption.ts)', () => {
  const plain = defaultPayloadConverter.toPayload({ card: CARD, email: EMAIL });

  it('encrypts with the current key (id in the metadata), decrypts back, and passes payloads it did not encrypt through', async () => {
    const codec = testCodec();
    const [enc] = await codec.encode([plain]);
    assert.equal(text(enc!.metadata!.encoding), ENCRYPTED_ENCODING);
    assert.equal(text(enc!.metadata![KEY_ID_METADATA]), TEST_KEY.id);
    assert.deepEqual(leaked(Buffer.from(enc!.data!).toString('latin1')), []);
    const [again] = await codec.encode([plain]);
    assert.notDeepEqual(Buffer.from(again!.data!), Buffer.from(enc!.data!), 'a fresh nonce per payload');
    const [dec] = await codec.decode([enc!]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(dec!), { card: CARD, email: EMAIL });
    const [passed] = await codec.decode([plain]);
    assert.equal(passed, plain);
  });

  it('rotation: new payloads use the new key; old ones decrypt with the old key they name', async () => {
    const [old] = await testCodec().encode([plain]);
    const rotated = new EncryptionCodec({ current: TEST_KEY_2, old: [TEST_KEY] });
    const [fresh] = await rotated.encode([plain]);
    assert.equal(text(fresh!.metadata![KEY_ID_METADATA]), TEST_KEY_2.id);
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([old!]))[0]!), { card: CARD, email: EMAIL });
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode([fresh!]))[0]!), { card: CARD, email: EMAIL });
  });

  it('an unknown key id, an altered payload, a key under another id: CODEC_FAILED saying which', async () => {
    const [enc] = await testCodec().encode([plain]);
    await assert.rejects(new EncryptionCodec({ current: TEST_KEY_2, old: [] }).decode([enc!]), (err: unknown) => {
      assert.ok(err instanceof PinflowError);
      assert.equal(err.code, 'CODEC_FAILED');
      assert.match(err.message, /key id "test-key-1", which this process does not hold \(it holds "test-key-2"\).*PINFLOW_ENCRYPTION_OLD_KEYS/);
      return true;
    });
    const altered = { ...enc!, data: Buffer.from(enc!.data!).map((b, i) => (i === 20 ? b ^ 1 : b)) };
    await assert.rejects(testCodec().decode([altered]), /does not decrypt with key id "test-key-1": wrong key or altered data/);
    // The key id is authenticated: relabelling a payload with another id fails too.
    const relabelled = { ...enc!, metadata: { ...enc!.metadata, [KEY_ID_METADATA]: Buffer.from(TEST_KEY_2.id) } };
    await assert.rejects(new EncryptionCodec({ current: { id: TEST_KEY_2.id, key: TEST_KEY.key }, old: [] }).decode([relabelled]), /wrong key or altered data/);
  });

  it('configuration: a key from the environment or a file, an id, old keys; each mistake refused naming the variable', () => {
    const key = TEST_KEY.key.toString('base64');
    const base = { PINFLOW_ENCRYPTION_KEY: key };
    assert.equal(loadConfig({}).encryption.keys, undefined);
    const fromEnv = loadConfig(base).encryption.keys!;
    assert.match(fromEnv.current.id, /^k-[0-9a-f]{12}$/);
    assert.equal(loadConfig({ ...base, PINFLOW_ENCRYPTION_KEY_ID: 'k2026' }).encryption.keys!.current.id, 'k2026');
    const dir = mkdtempSync(join(tmpdir(), 'pinflow-key-'));
    try {
      const file = join(dir, 'key');
      writeFileSync(file, `${key}\n`);
      assert.deepEqual(loadConfig({ PINFLOW_ENCRYPTION_KEY_FILE: file }).encryption.keys!.current.key, TEST_KEY.key);
      assert.throws(() => loadConfig({ ...base, PINFLOW_ENCRYPTION_KEY_FILE: file }), /not both/);
      assert.throws(() => loadConfig({ PINFLOW_ENCRYPTION_KEY_FILE: join(dir, 'absent') }), /PINFLOW_ENCRYPTION_KEY_FILE.*cannot be read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const old = loadConfig({ ...base, PINFLOW_ENCRYPTION_OLD_KEYS: `test-key-2:${TEST_KEY_2.key.toString('base64')}` }).encryption.keys!.old;
    assert.deepEqual(old.map((k) => k.id), ['test-key-2']);
    assert.throws(() => loadConfig({ PINFLOW_ENCRYPTION_KEY: 'c2hvcnQ=' }), (err: unknown) => err instanceof PinflowError && err.code === 'CONFIG_INVALID' && /PINFLOW_ENCRYPTION_KEY: an encryption key must be 32 bytes.*openssl rand -base64 32.*got 5 bytes/.test(err.message));
    assert.throws(() => loadConfig({ ...base, PINFLOW_ENCRYPTION_OLD_KEYS: TEST_KEY_2.key.toString('base64') }), /PINFLOW_ENCRYPTION_OLD_KEYS: each old key is <key id>:<base64 key>/);
    assert.throws(() => loadConfig({ PINFLOW_ENCRYPTION_OLD_KEYS: `a:${key}` }), /need a current key/);
    assert.throws(() => loadConfig({ ...base, PINFLOW_ENCRYPTION_KEY_ID: 'bad id!' }), /PINFLOW_ENCRYPTION_KEY_ID/);
    assert.throws(() => new EncryptionCodec({ current: TEST_KEY, old: [{ id: TEST_KEY.id, key: TEST_KEY_2.key }] }), /names two different keys/);
    assert.deepEqual(loadConfig({}).encryption.corsOrigins, ['http://localhost:8233']);
    // `pinflow encryption-key` prints environment lines the configuration accepts as they are.
    const printed = spawnSync(process.execPath, [join(projectRoot(), 'dist', 'cli', 'pinflow.js'), 'encryption-key'], { encoding: 'utf8' });
    assert.equal(printed.status, 0, printed.stderr);
    const vars = Object.fromEntries(printed.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    const generated = loadConfig(vars).encryption.keys!.current;
    assert.equal(generated.key.length, 32);
    assert.equal(generated.id, vars.PINFLOW_ENCRYPTION_KEY_ID);
    assert.deepEqual(loadConfig({ PINFLOW_CODEC_CORS_ORIGINS: 'http://a:8233, https://ui.example.com/' }).encryption.corsOrigins, ['http://a:8233', 'https://ui.example.com']);
  });
});

describe('encryption: a run with a key configured is unreadable in Temporal without it (real Temporal + Postgres)', function () {
  this.timeout(180_000);
  let env: Env;
  let api: FastifyInstance;
  let runId: string;
  const UI = 'http://localhost:8233';
  /** A key with the `read` scope: what the codec endpoint needs. */
  let readKey: string;

  /** Every HTTP request of this suite goes through here (auth headers are added in one place). */
  async function call(method: 'POST' | 'OPTIONS', url: string, body?: unknown, headers: Record<string, string> = {}, app: FastifyInstance = api) {
    const res = await app.inject({ method, url, headers: { ...(method === 'POST' ? { authorization: `Bearer ${readKey}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers }, ...(body !== undefined ? { payload: JSON.stringify(body) } : {}) });
    return { status: res.statusCode, headers: res.headers, body: res.body ? (JSON.parse(res.body) as unknown) : null, text: res.body };
  }

  before(async () => {
    env = await createEnv('encryption', [charge, refundRpc()], {}, { codec: testCodec() });
    readKey = await createKey(env, { scopes: ['read'] });
    await env.startWorker([charge]);
    await env.pinflow.publish('payment', paymentGraph);
    ({ runId } = await env.pinflow.start({ definition: 'payment', input: { card: CARD, email: EMAIL, amount: 9 } }));
    api = createApi({ pinflow: env.pinflow, codec: { codec: testCodec(), corsOrigins: [UI] } });
    await api.ready();
  });
  after(async () => {
    await api?.close();
    await env?.stop();
  });

  it('the run completes through the codec; a client without it sees only ciphertext in the history, one with it reads the input', async () => {
    assert.deepEqual(await env.pinflow.result(runId), { receipt: 'r-9', country: 'FR', amount: 9 });
    const connection = await Connection.connect({ address: temporalAddress() });
    try {
      const bare = new Client({ connection, namespace: env.namespace });
      const history = await bare.workflow.getHandle(runId).fetchHistory();
      const all = payloadsOf(history);
      assert.ok(all.length >= 5, `payloads in history: ${all.length}`);
      const raw = all.map(({ p }) => `${Object.values(p.metadata ?? {}).map(text).join(' ')} ${Buffer.from(p.data ?? new Uint8Array()).toString('latin1')}`).join('\n');
      assert.deepEqual(leaked(raw), [], 'a secret is readable in the history without the key');
      const started = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      assert.equal(text(started.metadata!.encoding), ENCRYPTED_ENCODING);
      // The same payload, through the codec, is the run's real input.
      const [decoded] = await testCodec().decode([started]);
      const input = defaultPayloadConverter.fromPayload<{ input: unknown }>(decoded!).input;
      assert.deepEqual(input, { card: CARD, email: EMAIL, amount: 9 });
      // The memo too: unreadable without the codec, read by the pinflow client.
      await assert.rejects(bare.workflow.getHandle(runId).describe().then((d) => d.memo), /Unknown encoding|binary\/encrypted/);
      assert.equal(((await env.client.workflow.getHandle(runId).describe()).memo as { definition: string }).definition, 'payment');
    } finally {
      await connection.close();
    }
  });

  it('POST /codec/encode then /codec/decode round-trip (Temporal codec server protocol); decode reads the history of the run', async () => {
    const original = payloadToJson(defaultPayloadConverter.toPayload({ card: CARD }));
    const encoded = await call('POST', '/codec/encode', { payloads: [original] }, { 'x-namespace': env.namespace });
    assert.equal(encoded.status, 200, encoded.text);
    const enc = (encoded.body as { payloads: JsonPayload[] }).payloads[0]!;
    assert.equal(Buffer.from(enc.metadata!.encoding!, 'base64').toString(), ENCRYPTED_ENCODING);
    assert.deepEqual(leaked(encoded.text), []);
    const decoded = await call('POST', '/codec/decode', { payloads: [enc] });
    assert.equal(decoded.status, 200, decoded.text);
    assert.deepEqual(defaultPayloadConverter.fromPayload(payloadFromJson((decoded.body as { payloads: JsonPayload[] }).payloads[0]!)), { card: CARD });
    const history = await env.client.workflow.getHandle(runId).fetchHistory();
    const started = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
    const fromUi = await call('POST', '/codec/decode', { payloads: [payloadToJson(started)] });
    assert.ok(fromUi.text.length > 0);
    const runInput = defaultPayloadConverter.fromPayload<{ input: unknown }>(payloadFromJson((fromUi.body as { payloads: JsonPayload[] }).payloads[0]!));
    assert.deepEqual(runInput.input, { card: CARD, email: EMAIL, amount: 9 });
  });

  it('CORS: the Temporal UI origin gets its preflight answered and the response allowed; another origin gets no CORS headers', async () => {
    const pre = await call('OPTIONS', '/codec/decode', undefined, { origin: UI, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,x-namespace,authorization' });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers['access-control-allow-origin'], UI);
    assert.match(String(pre.headers['access-control-allow-headers']), /X-Namespace/);
    assert.match(String(pre.headers['access-control-allow-headers']), /Authorization/);
    assert.match(String(pre.headers['access-control-allow-methods']), /POST/);
    const post = await call('POST', '/codec/decode', { payloads: [] }, { origin: UI });
    assert.equal(post.headers['access-control-allow-origin'], UI);
    const other = await call('OPTIONS', '/codec/decode', undefined, { origin: 'https://evil.example', 'access-control-request-method': 'POST' });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    assert.equal(other.headers['access-control-allow-headers'], undefined);
    const otherPost = await call('POST', '/codec/decode', { payloads: [] }, { origin: 'https://evil.example' });
    assert.equal(otherPost.headers['access-control-allow-origin'], undefined);
    // The preflight needs no key (browsers send none); the call itself does, with the read scope.
    const anonymous = await call('POST', '/codec/decode', { payloads: [] }, { origin: UI, authorization: '' });
    assert.equal(anonymous.status, 401, anonymous.text);
    assert.equal(anonymous.headers['access-control-allow-origin'], UI, 'the UI can read the refusal');
  });

  it('refusals: a payload under an unknown key id, a body that is not the protocol, and no key configured (400 CODEC_FAILED / REQUEST_INVALID)', async () => {
    const [foreign] = await new EncryptionCodec({ current: TEST_KEY_2, old: [] }).encode([defaultPayloadConverter.toPayload(1)]);
    const unknown = await call('POST', '/codec/decode', { payloads: [payloadToJson(foreign!)] });
    assert.equal(unknown.status, 400, unknown.text);
    assert.equal((unknown.body as { error: { code: string } }).error.code, 'CODEC_FAILED');
    assert.match(unknown.text, /test-key-2/);
    const notProtocol = await call('POST', '/codec/decode', { payload: 'x' });
    assert.equal(notProtocol.status, 400);
    assert.equal((notProtocol.body as { error: { code: string } }).error.code, 'REQUEST_INVALID');
    const notBase64 = await call('POST', '/codec/decode', { payloads: [{ data: 'not base64!' }] });
    assert.equal(notBase64.status, 400);
    const off = createApi({ pinflow: env.pinflow });
    try {
      const res = await call('POST', '/codec/encode', { payloads: [] }, {}, off);
      assert.equal(res.status, 400);
      assert.match(res.text, /CODEC_FAILED.*no encryption key is configured/);
    } finally {
      await off.close();
    }
  });
});
