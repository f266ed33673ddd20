import { createHmac } from 'node:crypto';
import type { JsonObject } from '../scalars';
import { leafHash } from './merkle';

/**
 * The canonical encoding of a log entry, version 1 (README "Proving the trail").
 *
 * An entry's **leaf bytes** are the UTF-8 bytes of the RFC 8785 (JSON Canonicalization Scheme)
 * serialisation of the object below, `v: 1` included: keys sorted, no whitespace, numbers as
 * ECMAScript prints them. Times are UTC with microseconds (`2026-11-25T11:42:42.123456Z`); absent
 * values are `null`. The Merkle leaf is SHA-256(0x00 ‖ leaf bytes).
 *
 * An entry's **seal** is HMAC-SHA-256, hex, over the canonical serialisation of the fields the server
 * chooses when it writes the entry (`SealedFields`, `v: 1`), keyed with a key derived from the log's
 * signing key. The database never holds that key, so an entry it did not get from Tradetrail has no
 * valid seal.
 */
export const ENTRY_ENCODING_VERSION = 1;

export interface SealedFields {
  id: string;
  orderId: string;
  traderId: string;
  action: string;
  fromStatus: string | null;
  toStatus: string | null;
  reason: string | null;
  errorCode: string | null;
  actor: string;
  source: string;
  details: JsonObject | null;
  /** UTC, microseconds. */
  occurredAt: string;
}

export interface CanonicalEntry extends SealedFields {
  seq: number;
  retryAttempt: number | null;
  /** UTC, microseconds. */
  recordedAt: string;
  prevHash: string | null;
  hash: string;
  seal: string | null;
}

/** An entry's columns as the canonical encoding needs them, from `execution_logs ${alias}`. */
export function canonicalColumnsSql(alias: string): string {
  const time = (column: string) => `to_char(${alias}.${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
  return `${alias}.id, ${alias}.order_id AS "orderId", ${alias}.trader_id AS "traderId", ${alias}.seq,
    ${alias}.action, ${alias}.from_status AS "fromStatus", ${alias}.to_status AS "toStatus", ${alias}.reason,
    ${alias}.error_code AS "errorCode", ${alias}.retry_attempt AS "retryAttempt", ${alias}.actor, ${alias}.source,
    ${alias}.details, ${time('occurred_at')} AS "occurredAt", ${time('recorded_at')} AS "recordedAt",
    ${alias}.prev_hash AS "prevHash", ${alias}.hash, ${alias}.seal`;
}

/** A JavaScript time as the encoding writes it (JavaScript times have milliseconds). */
export function canonicalTime(date: Date): string {
  return date.toISOString().replace(/Z$/, '000Z');
}

/** Values JSON leaves out of an object (and writes as null in an array). */
const omitted = (value: unknown): boolean =>
  value === undefined || typeof value === 'function' || typeof value === 'symbol';

/**
 * RFC 8785 of a JSON value: object keys sorted by UTF-16 code units (as Array.prototype.sort does),
 * no whitespace, strings and finite numbers as JSON.stringify writes them (which JCS specifies). A
 * value is first what JSON makes of it (`toJSON`, omitted members), so an object encodes the same
 * as its JSON round trip through the database. Checked against the `canonicalize` reference in the spec.
 */
function jcs(value: unknown): string {
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new Error(`cannot encode the number ${value}`);
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    let text = '[';
    for (let i = 0; i < value.length; i++) text += `${i ? ',' : ''}${omitted(value[i]) ? 'null' : jcs(value[i])}`;
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  let text = '';
  for (const key of Object.keys(record).sort()) {
    if (!omitted(record[key])) text += `${text ? ',' : '{'}${JSON.stringify(key)}:${jcs(record[key])}`;
  }
  return text ? `${text}}` : '{}';
}

/**
 * RFC 8785 of a flat record with known keys, fast: the keys are sorted once (JCS sorts by UTF-16
 * code units, as Array.prototype.sort does), scalars are JSON.stringify'd (which JCS specifies for
 * strings and numbers), nested values go through `jcs`. Equal to `canonicalize(record)` for
 * records whose values are null, strings, finite numbers or JSON objects (tested in the spec).
 */
function recordEncoder<K extends string>(keys: readonly K[]): (record: Record<K, unknown>) => string {
  const sorted = [...keys].sort();
  const prefixes = sorted.map((k, i) => `${i ? ',' : '{'}${JSON.stringify(k)}:`);
  return (record) => {
    let text = '';
    for (let i = 0; i < sorted.length; i++) {
      const value = record[sorted[i]] ?? null;
      text += prefixes[i] + (value === null || typeof value !== 'object' ? JSON.stringify(value) : jcs(value));
    }
    return `${text}}`;
  };
}

/** Every field of an entry, in the order a trail writes them (the leaf encoding sorts them anyway). */
export const ENTRY_FIELDS = [
  'id',
  'orderId',
  'traderId',
  'seq',
  'action',
  'fromStatus',
  'toStatus',
  'reason',
  'errorCode',
  'retryAttempt',
  'actor',
  'source',
  'details',
  'occurredAt',
  'recordedAt',
  'prevHash',
  'hash',
  'seal',
] as const satisfies readonly (keyof CanonicalEntry)[];
const SEALED_KEYS = [
  'v',
  'id',
  'orderId',
  'traderId',
  'action',
  'fromStatus',
  'toStatus',
  'reason',
  'errorCode',
  'actor',
  'source',
  'details',
  'occurredAt',
] as const satisfies readonly (keyof SealedFields | 'v')[];
const ENTRY_KEYS = [...ENTRY_FIELDS, 'v'] as const;
const encodeSealed = recordEncoder(SEALED_KEYS);
const encodeEntry = recordEncoder(ENTRY_KEYS);

export function entryBytes(e: CanonicalEntry): Buffer {
  return Buffer.from(encodeEntry({ ...e, v: ENTRY_ENCODING_VERSION }), 'utf8');
}

export function entryLeafHash(e: CanonicalEntry): Buffer {
  return leafHash(entryBytes(e));
}

/** The text a seal covers (exported for the spec, which checks it against `canonicalize`). */
export function sealText(f: SealedFields): string {
  return encodeSealed({ ...f, v: ENTRY_ENCODING_VERSION });
}

/** The text a leaf covers, as a string (for the spec). */
export function entryText(e: CanonicalEntry): string {
  return encodeEntry({ ...e, v: ENTRY_ENCODING_VERSION });
}

export function computeSeal(key: Buffer, f: SealedFields): string {
  return createHmac('sha256', key).update(sealText(f), 'utf8').digest('hex');
}

export function sealIsValid(key: Buffer, f: SealedFields & { seal: string | null }): boolean {
  return f.seal !== null && f.seal !== undefined && computeSeal(key, f) === f.seal;
}

let processSealKey: Buffer | undefined;

/** The seal key of this process (set once at start from the log's signing key). */
export function setSealKey(key: Buffer): void {
  processSealKey = key;
}

export function sealKey(): Buffer {
  if (!processSealKey) {
    throw new Error('The log signing key is not loaded: entries cannot be sealed (see loadLogKey).');
  }
  return processSealKey;
}
