import type { EntityManager } from 'typeorm';
import { type Checkpoint, verifyCheckpoint } from './checkpoint';
import { type CanonicalEntry, canonicalColumnsSql, ENTRY_FIELDS, entryLeafHash } from './entry-encoding';
import type { LogVerifier } from './log-key';
import { verifyConsistency, verifyInclusion } from './merkle';
import { consistencyProof, findCheckpoint, inclusionProofsAt } from './proof.service';

/**
 * The trail: a self-contained, offline-verifiable export of the execution log of some orders
 * (README "Proving the trail"). NDJSON, UTF-8, one JSON object per line, each with a `"type"`:
 *
 *     {"type":"header","format":"tradetrail-trail","version":1,"createdAt":"<ISO time>"}     first line
 *     {"type":"checkpoint","note":"<signed note>"}                                             exactly one
 *     {"type":"consistency","fromSize":m,"toSize":n,"hashes":["<hex>",...]}                   optional
 *     {"type":"entry","entry":{...},"leafIndex":i|null,"inclusionProof":["<hex>",...]|null}   one per entry
 *
 * - `checkpoint`: the signed checkpoint (C2SP signed note, see checkpoint.ts) every inclusion proof
 *   is against. It comes before the entries.
 * - `consistency`: RFC 9162 §2.1.4 PROOF(fromSize, D[toSize]) showing that the older checkpoint of
 *   `fromSize` leaves is a prefix of the trail's checkpoint (`toSize` = its size): the log only grew
 *   since a checkpoint the reader kept.
 * - `entry`: the entry's fields exactly as the canonical encoding names them (`CanonicalEntry` in
 *   entry-encoding.ts: id, orderId, traderId, seq, action, fromStatus, toStatus, reason, errorCode,
 *   retryAttempt, actor, source, details, occurredAt, recordedAt, prevHash, hash, seal); its leaf is
 *   SHA-256(0x00 ‖ JCS bytes of the entry) and `inclusionProof` is RFC 9162 §2.1.3 PATH(leafIndex,
 *   D[treeSize]) from the leaf's sibling upwards. Entries of each order are in `seq` order (orders
 *   one after the other). `leafIndex` and `inclusionProof` are null for an entry newer than the
 *   checkpoint (pending): it relies on its order's hash chain until a later trail proves it.
 * - Any other `type` (e.g. `order`, `fill`) is ignored by verifiers of version 1, so later writers
 *   may add records without breaking them. Blank lines are ignored.
 *
 * What a valid trail proves: the checkpoint was signed by the log's key; every proven entry is,
 * byte for byte, a leaf of that checkpoint's tree; each order's entries present run seq 1, 2, 3…
 * without a gap, each pointing at its predecessor's hash; and (given the reader's own older
 * checkpoint) the log only grew since. It cannot prove that an order has no entries after the last
 * one present, and pending entries are only linked, not proven.
 */
export const TRAIL_FORMAT = 'tradetrail-trail';
export const TRAIL_VERSION = 1;

export interface TrailHeaderRecord {
  type: 'header';
  format: typeof TRAIL_FORMAT;
  version: number;
  createdAt: string;
}
export interface TrailCheckpointRecord {
  type: 'checkpoint';
  note: string;
}
export interface TrailConsistencyRecord {
  type: 'consistency';
  fromSize: number;
  toSize: number;
  hashes: string[];
}
export interface TrailEntryRecord {
  type: 'entry';
  entry: CanonicalEntry;
  leafIndex: number | null;
  inclusionProof: string[] | null;
}

function entryObject(row: CanonicalEntry): CanonicalEntry {
  const out: Record<string, unknown> = {};
  for (const field of ENTRY_FIELDS) out[field] = row[field] ?? null;
  return out as unknown as CanonicalEntry;
}

/**
 * The trail of `orderIds` (README "Proving the trail"), as lines without their newline. Proofs are
 * against the checkpoint of `treeSize` leaves (default: the latest); `consistencyFrom` adds a
 * consistency proof from the checkpoint of that size. Entries are read with `m`, so row-level
 * security applies (the caller sets the role). A constant number of statements whatever the number
 * of orders and entries; throws when there is no checkpoint (of that size).
 */
export async function writeTrail(
  m: EntityManager,
  orderIds: string[],
  options: { treeSize?: number; consistencyFrom?: number } = {},
): Promise<string[]> {
  const checkpoint = await findCheckpoint(m, options.treeSize);
  if (!checkpoint) {
    throw new Error(
      options.treeSize === undefined
        ? 'No checkpoint has been signed yet: a trail needs one (new entries enter the tree within about a second).'
        : `There is no signed checkpoint of size ${options.treeSize}.`,
    );
  }
  const header: TrailHeaderRecord = {
    type: 'header',
    format: TRAIL_FORMAT,
    version: TRAIL_VERSION,
    createdAt: new Date().toISOString(),
  };
  const lines = [
    JSON.stringify(header),
    JSON.stringify({ type: 'checkpoint', note: checkpoint.note } satisfies TrailCheckpointRecord),
  ];
  if (options.consistencyFrom !== undefined) {
    const proof = await consistencyProof(m, options.consistencyFrom, checkpoint.treeSize);
    lines.push(
      JSON.stringify({
        type: 'consistency',
        fromSize: proof.from.treeSize,
        toSize: proof.to.treeSize,
        hashes: proof.hashes.map((h) => h.toString('hex')),
      } satisfies TrailConsistencyRecord),
    );
  }
  const ids = [...new Set(orderIds)];
  if (!ids.length) return lines;
  const entries = (await m.query(
    `SELECT ${canonicalColumnsSql('l')} FROM execution_logs l WHERE l.order_id = ANY($1::uuid[]) ORDER BY l.order_id, l.seq`,
    [ids],
  )) as CanonicalEntry[];
  if (!entries.length) return lines;
  // Entries outside the checkpoint (not integrated yet, or after it) come back as errors: pending.
  const proofs = await inclusionProofsAt(
    m,
    entries.map((e) => e.id),
    checkpoint,
  );
  entries.forEach((entry, i) => {
    const proof = proofs[i];
    const proven = !(proof instanceof Error);
    lines.push(
      JSON.stringify({
        type: 'entry',
        entry: entryObject(entry),
        leafIndex: proven ? proof.leafIndex : null,
        inclusionProof: proven ? proof.hashes.map((h) => h.toString('hex')) : null,
      } satisfies TrailEntryRecord),
    );
  });
  return lines;
}

export interface TrailProblem {
  /** 1-based line of the trail; 0 when the problem concerns the trail as a whole. */
  line: number;
  entryId: string | null;
  orderId: string | null;
  seq: number | null;
  message: string;
}

export interface TrailReport {
  valid: boolean;
  /** The trail's checkpoint, when its signature verifies (root hash in hex). */
  checkpoint: { treeSize: number; rootHash: string } | null;
  entries: number;
  /** Entries whose inclusion proof verifies against the checkpoint. */
  proven: number;
  /** Entries newer than the checkpoint (no proof): they rely on their chain. */
  pending: number;
  problems: TrailProblem[];
}

const HEX_HASH = /^[0-9a-f]{64}$/;

/** Problems a report lists; beyond them one last problem counts the rest (memory stays bounded). */
export const MAX_TRAIL_PROBLEMS = 1000;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isStringOrNull = (v: unknown): boolean => v === null || v === undefined || typeof v === 'string';

/** What is wrong with the shape of an entry object, or null when it can be hashed as one. */
function entryShapeProblem(e: unknown): string | null {
  if (!isObject(e)) return 'the record has no "entry" object';
  for (const field of ['id', 'orderId', 'traderId', 'action', 'actor', 'source', 'occurredAt', 'recordedAt', 'hash']) {
    if (typeof e[field] !== 'string') return `the entry has no "${field}" string`;
  }
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return 'the entry\'s "seq" is not a whole number >= 1';
  for (const field of ['fromStatus', 'toStatus', 'reason', 'errorCode', 'prevHash', 'seal']) {
    if (!isStringOrNull(e[field])) return `the entry's "${field}" is neither a string nor null`;
  }
  if (!(e.retryAttempt === null || e.retryAttempt === undefined || Number.isSafeInteger(e.retryAttempt))) {
    return 'the entry\'s "retryAttempt" is neither a whole number nor null';
  }
  if (!(e.details === null || e.details === undefined || isObject(e.details))) {
    return 'the entry\'s "details" is neither an object nor null';
  }
  return null;
}

function hashList(v: unknown): Buffer[] | null {
  if (!Array.isArray(v) || !v.every((h) => typeof h === 'string' && HEX_HASH.test(h))) return null;
  return (v as string[]).map((h) => Buffer.from(h, 'hex'));
}

interface OrderState {
  seq: number;
  hash: string;
  /** The first entry of the order without a proof, when one was seen. */
  pendingEntry: { id: string; seq: number; line: number } | null;
}

/**
 * Verifies a trail line by line, without a database: `push` every line (without its newline), then
 * `finish`. Memory is O(orders): per order only its last seq and hash are kept, never the entries.
 *
 * `trusted` is a checkpoint the reader kept (e.g. the last line of the server's checkpoint file): the
 * trail must then show that the log only grew since (same size: the same root; smaller: a
 * consistency record from exactly its size that verifies; larger: the trail is out of date).
 */
export class TrailVerifier {
  private line = 0;
  private sawRecord = false;
  private checkpointLine = 0;
  private checkpoint: Checkpoint | null = null;
  private checkpointSeen = false;
  private entries = 0;
  private proven = 0;
  private pending = 0;
  private readonly problems: TrailProblem[] = [];
  private moreProblems = 0;
  private readonly orders = new Map<string, OrderState>();
  private readonly trusted: Checkpoint | null = null;
  /** Consistency records from the trusted checkpoint's size (kept to check at the end: a few hashes). */
  private readonly consistency: { line: number; toSize: number; hashes: Buffer[] }[] = [];
  private finished: TrailReport | null = null;

  constructor(
    private readonly verifier: LogVerifier,
    trusted?: { note: string },
  ) {
    if (trusted) {
      try {
        this.trusted = verifyCheckpoint(trusted.note, verifier);
      } catch (error) {
        this.problem(0, `Your checkpoint does not verify with this key: ${(error as Error).message}.`);
      }
    }
  }

  private problem(line: number, message: string, entry?: { id: string; orderId: string; seq: number }): void {
    if (this.problems.length >= MAX_TRAIL_PROBLEMS) {
      this.moreProblems += 1;
      return;
    }
    this.problems.push({
      line,
      entryId: entry?.id ?? null,
      orderId: entry?.orderId ?? null,
      seq: entry?.seq ?? null,
      message,
    });
  }

  /** Takes the next line of the trail (its newline removed; a trailing "\r" is tolerated). */
  push(text: string): void {
    if (this.finished) throw new Error('the trail was already finished');
    this.line += 1;
    const line = this.line;
    if (text.trim() === '') return;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      this.problem(line, `Line ${line} is not JSON.`);
      return;
    }
    if (!isObject(record) || typeof record.type !== 'string') {
      this.problem(line, `Line ${line} is not a trail record (a JSON object with a "type").`);
      this.sawRecord = true;
      return;
    }
    const first = !this.sawRecord;
    this.sawRecord = true;
    if (first && record.type !== 'header') {
      this.problem(line, `The trail does not start with a header: line ${line} is a "${record.type}" record.`);
    }
    switch (record.type) {
      case 'header':
        return this.header(line, record, first);
      case 'checkpoint':
        return this.checkpointRecord(line, record);
      case 'consistency':
        return this.consistencyRecord(line, record);
      case 'entry':
        return this.entry(line, record);
      default:
        // Records of other types (added by later versions of the format) are not this verifier's.
        return;
    }
  }

  private header(line: number, r: Record<string, unknown>, first: boolean): void {
    if (!first) {
      this.problem(line, `Line ${line} is a second header: the header is the first line only.`);
      return;
    }
    if (r.format !== TRAIL_FORMAT) {
      this.problem(line, `This is not a Tradetrail trail (format ${JSON.stringify(r.format)}).`);
    } else if (r.version !== TRAIL_VERSION) {
      this.problem(
        line,
        `Trail format version ${JSON.stringify(r.version)} is not supported (this verifier reads version ${TRAIL_VERSION}).`,
      );
    }
  }

  private checkpointRecord(line: number, r: Record<string, unknown>): void {
    if (this.checkpointSeen) {
      this.problem(line, `Line ${line} is a second checkpoint record: a trail has exactly one.`);
      return;
    }
    this.checkpointSeen = true;
    this.checkpointLine = line;
    if (this.entries > 0) {
      this.problem(line, 'The checkpoint record comes after entries: it must come before them.');
    }
    if (typeof r.note !== 'string') {
      this.problem(line, 'The checkpoint record has no "note".');
      return;
    }
    try {
      this.checkpoint = verifyCheckpoint(r.note, this.verifier);
    } catch (error) {
      this.problem(line, `The trail's checkpoint is refused: ${(error as Error).message}.`);
    }
  }

  private consistencyRecord(line: number, r: Record<string, unknown>): void {
    const hashes = hashList(r.hashes);
    if (!Number.isSafeInteger(r.fromSize) || !Number.isSafeInteger(r.toSize) || !hashes) {
      this.problem(line, 'The consistency record is malformed (fromSize, toSize and hex hashes are needed).');
      return;
    }
    // Only a proof from the reader's own checkpoint can be checked: nobody else's old root is known.
    if (this.trusted && r.fromSize === this.trusted.treeSize) {
      this.consistency.push({ line, toSize: r.toSize as number, hashes });
    }
  }

  private entry(line: number, r: Record<string, unknown>): void {
    const shape = entryShapeProblem(r.entry);
    if (shape) {
      this.problem(line, `Line ${line} is not a valid entry record: ${shape}.`);
      return;
    }
    const e = r.entry as CanonicalEntry;
    const at = { id: e.id, orderId: e.orderId, seq: e.seq };
    const name = `Entry ${e.id} (order ${e.orderId}, seq ${e.seq})`;
    this.entries += 1;
    if (!this.checkpointSeen && this.entries === 1) {
      this.problem(line, 'The trail has entries before its checkpoint record: the checkpoint must come first.');
    }

    // The chain: seq 1, 2, 3… and each entry pointing at its predecessor's hash.
    const state = this.orders.get(e.orderId);
    const prevHash = e.prevHash ?? null;
    if (!state) {
      if (e.seq !== 1) {
        this.problem(
          line,
          `${name} is the first of its order in the trail: entries 1 to ${e.seq - 1} are missing.`,
          at,
        );
      } else if (prevHash !== null) {
        this.problem(line, `${name} is the order's first entry but points at a previous hash.`, at);
      }
    } else if (e.seq !== state.seq + 1) {
      this.problem(
        line,
        e.seq <= state.seq
          ? `${name} breaks its order's chain: it follows seq ${state.seq} (repeated or out of order).`
          : `${name} breaks its order's chain: ${
              e.seq === state.seq + 2 ? `entry ${state.seq + 1} is` : `entries ${state.seq + 1} to ${e.seq - 1} are`
            } missing before it.`,
        at,
      );
    } else if (prevHash !== state.hash) {
      this.problem(
        line,
        `${name} breaks its order's chain: its prevHash is not the hash of entry ${state.seq} (an entry was replaced or changed).`,
        at,
      );
    }

    // The proof.
    const leafIndex = r.leafIndex;
    const proofField = r.inclusionProof;
    let proven = false;
    if ((leafIndex === null || leafIndex === undefined) && (proofField === null || proofField === undefined)) {
      this.pending += 1;
    } else {
      const proof = hashList(proofField);
      if (!Number.isSafeInteger(leafIndex) || (leafIndex as number) < 0 || !proof) {
        this.problem(line, `${name} has a malformed leafIndex or inclusionProof.`, at);
      } else if (this.checkpoint) {
        const c = this.checkpoint;
        if ((leafIndex as number) >= c.treeSize) {
          this.problem(
            line,
            `${name} claims leaf ${leafIndex as number}, outside the checkpoint of ${c.treeSize} leaves.`,
            at,
          );
        } else if (!verifyInclusion(entryLeafHash(e), leafIndex as number, c.treeSize, proof, c.rootHash)) {
          this.problem(
            line,
            `${name} is not in the signed log as it reads here: its inclusion proof does not verify against the checkpoint (the entry was altered, or the proof forged).`,
            at,
          );
        } else {
          proven = true;
          this.proven += 1;
          if (state?.pendingEntry) {
            this.problem(
              state.pendingEntry.line,
              `Entry ${state.pendingEntry.id} (order ${e.orderId}, seq ${state.pendingEntry.seq}) has no proof while later entries of its order are proven: it never entered the signed log (inserted or altered).`,
              { id: state.pendingEntry.id, orderId: e.orderId, seq: state.pendingEntry.seq },
            );
          }
        }
      }
      // Without a verified checkpoint nothing is proven; that is reported once, on the checkpoint.
    }
    // Reported once (above) when a later entry of the order is proven.
    const pendingEntry = proven
      ? null
      : (state?.pendingEntry ??
        (leafIndex === null || leafIndex === undefined ? { id: e.id, seq: e.seq, line } : null));
    this.orders.set(e.orderId, { seq: e.seq, hash: e.hash, pendingEntry });
  }

  /** Ends the trail: the checks that need all of it, and the report. */
  finish(): TrailReport {
    if (this.finished) return this.finished;
    if (!this.sawRecord) this.problem(0, 'The trail is empty.');
    if (!this.checkpointSeen && this.sawRecord) this.problem(0, 'The trail has no checkpoint record.');
    const c = this.checkpoint;
    const t = this.trusted;
    if (c && t) {
      const line = this.checkpointLine;
      if (t.treeSize === c.treeSize) {
        if (!t.rootHash.equals(c.rootHash)) {
          this.problem(
            line,
            `The trail's checkpoint has the size of yours (${c.treeSize}) but another root hash: the log was rewritten, or one of the two is forged.`,
          );
        }
      } else if (t.treeSize > c.treeSize) {
        this.problem(
          line,
          `The trail is older than your checkpoint: it proves ${c.treeSize} entries, yours has ${t.treeSize}. Ask for a trail against a checkpoint at least as new as yours.`,
        );
      } else if (t.treeSize > 0) {
        const records = this.consistency.filter((r) => r.toSize === c.treeSize);
        if (!records.length) {
          this.problem(
            line,
            `The trail has no consistency proof from your checkpoint (size ${t.treeSize}) to its own (size ${c.treeSize}): it cannot show that the log only grew since.`,
          );
        } else {
          for (const r of records) {
            if (!verifyConsistency(t.treeSize, c.treeSize, r.hashes, t.rootHash, c.rootHash)) {
              this.problem(
                r.line,
                `The consistency proof from your checkpoint (size ${t.treeSize}) to the trail's (size ${c.treeSize}) does not verify: the log was rewritten since your checkpoint, or one of them is forged.`,
              );
            }
          }
        }
      }
      for (const r of this.consistency) {
        if (r.toSize !== c.treeSize) {
          this.problem(
            r.line,
            `The consistency record ends at size ${r.toSize}, not at the trail's checkpoint (size ${c.treeSize}).`,
          );
        }
      }
    }
    if (this.moreProblems > 0) {
      this.problems.push({
        line: 0,
        entryId: null,
        orderId: null,
        seq: null,
        message: `… and ${this.moreProblems} more problem${this.moreProblems === 1 ? '' : 's'} not listed.`,
      });
    }
    this.finished = {
      valid: this.problems.length === 0 && c !== null,
      checkpoint: c ? { treeSize: c.treeSize, rootHash: c.rootHash.toString('hex') } : null,
      entries: this.entries,
      proven: this.proven,
      pending: this.pending,
      problems: this.problems,
    };
    return this.finished;
  }
}

/** Verifies a whole trail (see TrailVerifier); `lines` may be any iterable, e.g. a generator. */
export function verifyTrail(lines: Iterable<string>, verifier: LogVerifier, trusted?: { note: string }): TrailReport {
  const v = new TrailVerifier(verifier, trusted);
  for (const line of lines) v.push(line);
  return v.finish();
}
