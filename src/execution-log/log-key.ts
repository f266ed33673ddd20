import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  hkdfSync,
  type KeyObject,
} from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';

/** Where `npm start` keeps the signing key of an embedded database (in its data directory). */
export const LOG_KEY_FILE = 'log-signing-key.pem';

/** Who can check a checkpoint: the log's name and Ed25519 public key (C2SP signed-note verifier key). */
export interface LogVerifier {
  name: string;
  publicKey: KeyObject;
  /** The 32 raw bytes of the public key. */
  publicRaw: Buffer;
  /** First 4 bytes of SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key): names the key in a signature line. */
  keyId: Buffer;
  /** `name+keyid(hex)+base64(0x01 ‖ public key)`, the signed-note verifier key format. */
  verifierKey: string;
}

/** The private side: signs checkpoints and seals entries. Never stored in the database. */
export interface LogKey extends LogVerifier {
  privateKey: KeyObject;
  /** HMAC key of entry seals, derived from the private key (HKDF-SHA-256). */
  sealKey: Buffer;
}

export class LogKeyError extends Error {
  override name = 'LogKeyError';
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

function verifierFrom(name: string, publicKey: KeyObject): LogVerifier {
  if (publicKey.asymmetricKeyType !== 'ed25519') throw new LogKeyError('the log key must be an Ed25519 key');
  const publicRaw = publicKey.export({ format: 'der', type: 'spki' }).subarray(ED25519_SPKI_PREFIX.length);
  const keyId = createHash('sha256')
    .update(Buffer.concat([Buffer.from(`${name}\n`, 'utf8'), Buffer.from([0x01]), publicRaw]))
    .digest()
    .subarray(0, 4);
  const verifierKey = `${name}+${keyId.toString('hex')}+${Buffer.concat([Buffer.from([0x01]), publicRaw]).toString('base64')}`;
  return { name, publicKey, publicRaw, keyId, verifierKey };
}

export function logKeyFromPem(pem: string, name: string): LogKey {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch {
    throw new LogKeyError('the log signing key is not a PEM private key');
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') {
    throw new LogKeyError(`the log signing key must be Ed25519, not ${privateKey.asymmetricKeyType ?? 'unknown'}`);
  }
  const seed = Buffer.from(privateKey.export({ format: 'jwk' }).d as string, 'base64url');
  const sealKey = Buffer.from(hkdfSync('sha256', seed, Buffer.alloc(0), 'tradetrail entry seal v1', 32));
  return { ...verifierFrom(name, createPublicKey(privateKey)), privateKey, sealKey };
}

export function generateLogKeyPem(): string {
  return generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}

function pemText(value: string, what: string): string {
  if (value.includes('-----BEGIN')) return value;
  try {
    return readFileSync(value, 'utf8');
  } catch {
    throw new LogKeyError(`${what} is neither PEM text nor a readable file: ${value}`);
  }
}

/**
 * The log key of this server: TRADETRAIL_LOG_SIGNING_KEY, or on the embedded database the key kept in
 * its data directory. With DATABASE_URL and no key: an error, raised before the database is touched.
 * On a fresh embedded data directory a new key is made; `save` writes it there once the database has
 * initialised the directory (initdb wants it empty), and must be called before anything is signed.
 */
export function loadLogKey(cfg: Config): { key: LogKey; save?: () => void } {
  if (cfg.logSigningKey) {
    return { key: logKeyFromPem(pemText(cfg.logSigningKey, 'TRADETRAIL_LOG_SIGNING_KEY'), cfg.logOrigin) };
  }
  if (cfg.databaseUrl) {
    throw new LogKeyError(
      'TRADETRAIL_LOG_SIGNING_KEY is required with DATABASE_URL: the key that signs checkpoints must live outside the database. Create one with `npm run log:keygen -- --out log-signing-key.pem`.',
    );
  }
  const file = path.join(cfg.dataDir, LOG_KEY_FILE);
  if (existsSync(file)) return { key: logKeyFromPem(readFileSync(file, 'utf8'), cfg.logOrigin) };
  const pem = generateLogKeyPem();
  return {
    key: logKeyFromPem(pem, cfg.logOrigin),
    save: () => {
      mkdirSync(cfg.dataDir, { recursive: true });
      writeFileSync(file, pem, { mode: 0o600, flag: 'wx' });
    },
  };
}

/**
 * A verifier from what a user has: the signed-note verifier key (`name+hex+base64`), a public key PEM
 * (text or file), or a file holding either. With a PEM the name is `name` (default: the log's origin).
 */
export function parseVerifier(value: string, name = 'tradetrail'): LogVerifier {
  const text = value.trim();
  const note = /^([\x21-\x2a\x2c-\x7e]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text);
  if (note) {
    const raw = Buffer.from(note[3], 'base64');
    if (raw.length !== 33 || raw[0] !== 0x01) throw new LogKeyError('the verifier key is not an Ed25519 key');
    const publicKey = createPublicKey({
      key: Buffer.concat([ED25519_SPKI_PREFIX, raw.subarray(1)]),
      format: 'der',
      type: 'spki',
    });
    const verifier = verifierFrom(note[1], publicKey);
    if (verifier.keyId.toString('hex') !== note[2]) {
      throw new LogKeyError('the verifier key is damaged: its key id does not match its name and key');
    }
    return verifier;
  }
  if (text.includes('-----BEGIN')) {
    try {
      return verifierFrom(name, createPublicKey(text));
    } catch (error) {
      throw error instanceof LogKeyError ? error : new LogKeyError('the public key is not a PEM Ed25519 key');
    }
  }
  if (existsSync(text)) return parseVerifier(readFileSync(text, 'utf8'), name);
  throw new LogKeyError('the public key must be a verifier key (name+keyid+base64), a PEM public key, or a file');
}

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The key whose private part is the 32-byte `seed` (tests and benchmarks use a fixed one). */
export function logKeyFromSeed(seed: Buffer, name: string): LogKey {
  if (seed.length !== 32) throw new LogKeyError('an Ed25519 seed is 32 bytes');
  const pem = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    .export({ format: 'pem', type: 'pkcs8' })
    .toString();
  return logKeyFromPem(pem, name);
}

/** The PEM text of a key (to hand it to another process through TRADETRAIL_LOG_SIGNING_KEY). */
export function logKeyPem(key: LogKey): string {
  return key.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}
