/**
 * Payload encryption in Temporal history: a Temporal `PayloadCodec` with
 * AES-256-GCM (node:crypto). Every payload a pinflow client or worker sends
 * (workflow and activity inputs and results, signals, updates, queries,
 * failures' details) is serialised as a Payload protobuf, encrypted with a
 * fresh 96-bit nonce, and sent as
 *
 *   metadata: { encoding: 'binary/encrypted', 'encryption-key-id': <key id> }
 *   data:     nonce (12 bytes) || ciphertext || tag (16 bytes)
 *
 * The key id rides in the metadata (and is authenticated as additional
 * data), so keys rotate: new payloads use the current key, old payloads
 * decrypt with the key they name. A payload naming a key this process does
 * not hold fails with CODEC_FAILED and the id, never with garbage.
 *
 * Outside the workflow sandbox by design: codecs run in the SDK's data
 * converter, around the sandbox (codec/ is importable by client, worker and
 * app, never by workflows/).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ERROR_CODES, PinflowError } from '../graph/errors';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
export const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export interface EncryptionKey {
  id: string;
  /** 32 bytes. */
  key: Buffer;
}

/** The key new payloads are encrypted with, and the keys older payloads may name. */
export interface EncryptionKeys {
  current: EncryptionKey;
  old: EncryptionKey[];
}

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** The default key id of a key: `k-` and 12 hex digits of its sha256 (a fingerprint that says nothing of the key). */
export function defaultKeyId(key: Buffer): string {
  return `k-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
}

/**
 * A key from its base64 text (`openssl rand -base64 32`). Throws CONFIG_INVALID
 * naming `source` when it is not 32 bytes of base64.
 */
export function parseKey(text: string, source: string, id?: string): EncryptionKey {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || key.length !== 32) {
    throw new PinflowError(
      ERROR_CODES.CONFIG_INVALID,
      `${source}: an encryption key must be 32 bytes in base64 (44 characters; generate one with \`openssl rand -base64 32\`), got ${key.length} bytes`,
      { field: source, allowed: '32 bytes, base64' },
    );
  }
  const keyId = id ?? defaultKeyId(key);
  if (!KEY_ID_PATTERN.test(keyId)) {
    throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `${source}: key id ${JSON.stringify(keyId)} must match ${KEY_ID_PATTERN}`, { field: source, received: keyId, allowed: KEY_ID_PATTERN.source });
  }
  return { id: keyId, key };
}

/** `id:base64,id:base64` (PINFLOW_ENCRYPTION_OLD_KEYS): keys kept to decrypt older payloads. */
export function parseOldKeys(text: string, source: string): EncryptionKey[] {
  return text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0)
    .map((entry) => {
      const at = entry.indexOf(':');
      if (at <= 0) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `${source}: each old key is <key id>:<base64 key>, got an entry without a key id`, { field: source, allowed: '<key id>:<base64 key>,...' });
      return parseKey(entry.slice(at + 1), source, entry.slice(0, at));
    });
}

export class EncryptionCodec implements PayloadCodec {
  private readonly byId = new Map<string, Buffer>();

  constructor(readonly keys: EncryptionKeys) {
    for (const k of [keys.current, ...keys.old]) {
      const seen = this.byId.get(k.id);
      if (seen && !seen.equals(k.key)) throw new PinflowError(ERROR_CODES.CONFIG_INVALID, `encryption key id ${JSON.stringify(k.id)} names two different keys`, { field: 'encryption-key-id', received: k.id });
      this.byId.set(k.id, k.key);
    }
  }

  /** The id new payloads carry. */
  get keyId(): string {
    return this.keys.current.id;
  }

  encode(payloads: Payload[]): Promise<Payload[]> {
    try {
      return Promise.resolve(payloads.map((p) => this.encrypt(p)));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  decode(payloads: Payload[]): Promise<Payload[]> {
    try {
      return Promise.resolve(payloads.map((p) => this.decrypt(p)));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  encrypt(payload: Payload): Payload {
    const { id, key } = this.keys.current;
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(Buffer.from(id, 'utf8'));
    const plain = temporal.api.common.v1.Payload.encode(payload).finish();
    const data = Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return { metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(id) }, data };
  }

  decrypt(payload: Payload): Payload {
    const encoding = payload.metadata?.encoding;
    if (!encoding || fromUtf8.decode(encoding) !== ENCRYPTED_ENCODING) return payload;
    const rawId = payload.metadata?.[KEY_ID_METADATA];
    if (!rawId) throw new PinflowError(ERROR_CODES.CODEC_FAILED, `an encrypted payload carries no ${KEY_ID_METADATA} metadata; it was not written by pinflow's codec`, { field: KEY_ID_METADATA });
    const id = fromUtf8.decode(rawId);
    const key = this.byId.get(id);
    if (!key) {
      throw new PinflowError(
        ERROR_CODES.CODEC_FAILED,
        `a payload is encrypted with key id ${JSON.stringify(id)}, which this process does not hold (it holds ${[...this.byId.keys()].map((k) => JSON.stringify(k)).join(', ')}); ` +
          'configure that key in PINFLOW_ENCRYPTION_OLD_KEYS (<key id>:<base64 key>) to read it',
        { field: KEY_ID_METADATA, received: id, allowed: [...this.byId.keys()] },
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < NONCE_BYTES + TAG_BYTES) throw new PinflowError(ERROR_CODES.CODEC_FAILED, `an encrypted payload (key id ${JSON.stringify(id)}) is ${data.length} bytes, too short to hold a nonce and a tag`, { field: 'data' });
    const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(id, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(NONCE_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PinflowError(ERROR_CODES.CODEC_FAILED, `an encrypted payload does not decrypt with key id ${JSON.stringify(id)}: wrong key or altered data`, { field: 'data', received: id });
    }
    return temporal.api.common.v1.Payload.decode(plain);
  }
}

/** The data converter option every Temporal Client and Worker gets: the codec when a key is configured, nothing otherwise. */
export function dataConverterFor(codec: PayloadCodec | undefined): { dataConverter?: { payloadCodecs: PayloadCodec[] } } {
  return codec ? { dataConverter: { payloadCodecs: [codec] } } : {};
}

/** The codec of configured keys, or undefined when no key is configured. */
export function codecFromKeys(keys: EncryptionKeys | undefined): EncryptionCodec | undefined {
  return keys ? new EncryptionCodec(keys) : undefined;
}

/** Codec server protocol (Temporal's remote data encoding): payloads as proto3 JSON, every bytes field base64. */
export interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

export function payloadFromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

export function payloadToJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}
