import { createHash, sign, verify } from 'node:crypto';
import type { LogKey, LogVerifier } from './log-key';

/**
 * A checkpoint: the log's size, root hash and time, signed. Format: a C2SP signed note
 * (https://c2sp.org/signed-note) whose text is a C2SP tlog-checkpoint with one extension line:
 *
 *     <origin>\n<tree size>\n<base64 root hash>\ntime <RFC 3339 UTC time>\n[prev <size> <base64 SHA-256 of the previous note>\n]
 *     \n
 *     — <key name> <base64(4-byte key id ‖ 64-byte Ed25519 signature over the text)>\n
 */
export interface Checkpoint {
  origin: string;
  treeSize: number;
  rootHash: Buffer;
  timestamp: Date;
  /** The whole signed note. */
  note: string;
  signature: Buffer;
  /** The checkpoint this one follows: its size and SHA-256 of its note (absent on the first). */
  previous: { treeSize: number; noteHash: Buffer } | null;
}

/** What a checkpoint's `prev` line names: SHA-256 of the previous checkpoint's whole note. */
export function noteHash(note: string): Buffer {
  return createHash('sha256').update(note, 'utf8').digest();
}

export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

export function checkpointText(
  origin: string,
  treeSize: number,
  rootHash: Buffer,
  timestamp: Date,
  previous: Checkpoint['previous'],
): string {
  const prev = previous ? `prev ${previous.treeSize} ${previous.noteHash.toString('base64')}\n` : '';
  return `${origin}\n${treeSize}\n${rootHash.toString('base64')}\ntime ${timestamp.toISOString()}\n${prev}`;
}

export function signCheckpoint(
  key: LogKey,
  treeSize: number,
  rootHash: Buffer,
  timestamp: Date,
  previous: Checkpoint['previous'],
): Checkpoint {
  const text = checkpointText(key.name, treeSize, rootHash, timestamp, previous);
  const signature = sign(null, Buffer.from(text, 'utf8'), key.privateKey);
  const note = `${text}\n\u2014 ${key.name} ${Buffer.concat([key.keyId, signature]).toString('base64')}\n`;
  return { origin: key.name, treeSize, rootHash, timestamp, note, signature, previous };
}

/**
 * Parses a signed checkpoint and checks its signature with `verifier`. Throws CheckpointError saying
 * what is wrong: the format, no signature by this key, or a signature that does not verify.
 */
export function verifyCheckpoint(note: string, verifier: LogVerifier): Checkpoint {
  const split = note.indexOf('\n\n');
  if (split < 0) throw new CheckpointError('not a signed note: no blank line between the text and its signatures');
  const text = note.slice(0, split + 1);
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckpointError('not a checkpoint: it needs an origin, a size and a root hash');
  const [origin, sizeLine, rootLine, ...extensions] = lines;
  if (!/^(0|[1-9]\d{0,15})$/.test(sizeLine)) throw new CheckpointError(`the tree size "${sizeLine}" is not a number`);
  const rootHash = Buffer.from(rootLine, 'base64');
  if (rootHash.length !== 32 || rootHash.toString('base64') !== rootLine) {
    throw new CheckpointError('the root hash is not 32 bytes of base64');
  }
  const time = extensions.map((l) => /^time (\S+)$/.exec(l)?.[1]).find(Boolean);
  const timestamp = new Date(time ?? NaN);
  if (Number.isNaN(timestamp.getTime())) throw new CheckpointError('the checkpoint has no valid "time" line');
  const prev = extensions.map((l) => /^prev (0|[1-9]\d{0,15}) ([A-Za-z0-9+/=]{44})$/.exec(l)).find(Boolean);
  const previous = prev ? { treeSize: Number(prev[1]), noteHash: Buffer.from(prev[2], 'base64') } : null;
  if (origin !== verifier.name) {
    throw new CheckpointError(`the checkpoint is for the log "${origin}", not "${verifier.name}"`);
  }
  const signatures = note
    .slice(split + 2)
    .split('\n')
    .filter(Boolean)
    .map((line) => /^\u2014 (\S+) ([A-Za-z0-9+/=]+)$/.exec(line));
  if (!signatures.length || signatures.some((s) => !s)) throw new CheckpointError('malformed signature lines');
  const mine = signatures
    .map((s) => ({ name: s![1], blob: Buffer.from(s![2], 'base64') }))
    .find((s) => s.name === verifier.name && s.blob.length === 68 && s.blob.subarray(0, 4).equals(verifier.keyId));
  if (!mine) throw new CheckpointError('the checkpoint is not signed by this log’s key (signed with another key?)');
  const signature = mine.blob.subarray(4);
  if (!verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, signature)) {
    throw new CheckpointError('the checkpoint’s signature does not verify: it was altered or signed with another key');
  }
  return { origin, treeSize: Number(sizeLine), rootHash, timestamp, note, signature, previous };
}

/** A checkpoint as stored beside its note: it must verify, and its columns must be what was signed. */
export function verifiedStoredCheckpoint(
  row: { treeSize: number; rootHash: Buffer; note: string },
  verifier: LogVerifier,
): Checkpoint {
  const c = verifyCheckpoint(row.note, verifier);
  if (c.treeSize !== row.treeSize || !c.rootHash.equals(row.rootHash)) {
    throw new CheckpointError('its size or root columns differ from what was signed');
  }
  return c;
}

/**
 * The note of a kept checkpoint: a file's text that is a signed note as such, or a checkpoint file
 * (JSON lines `{"treeSize","rootHash","timestamp","note"}`, as the server appends it) whose last line
 * is taken. Undefined for an empty file; CheckpointError for anything else.
 */
export function lastCheckpointNote(text: string): string | undefined {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (!lines.length) return undefined;
  const last = lines[lines.length - 1].trim();
  if (last.startsWith('{')) {
    let record: { note?: unknown };
    try {
      record = JSON.parse(last) as { note?: unknown };
    } catch {
      record = {};
    }
    if (typeof record.note !== 'string') {
      throw new CheckpointError('the last line is not a checkpoint record ({"treeSize","rootHash","note",...})');
    }
    return record.note;
  }
  if (!text.includes('\n\n')) throw new CheckpointError('neither a signed note nor a checkpoint file');
  return text;
}
