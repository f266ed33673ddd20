import type { EntityManager } from 'typeorm';
import { Dec } from '../decimal';
import { NotFoundError } from '../errors';
import { type Checkpoint, CheckpointError, noteHash, verifiedStoredCheckpoint } from './checkpoint';
import { type CanonicalEntry, canonicalColumnsSql, entryLeafHash, sealIsValid } from './entry-encoding';
import type { KnownCheckpoint } from './log-integrator';
import type { LogKey, LogVerifier } from './log-key';
import { CompactRange, inclusionProofRanges, verifyInclusion } from './merkle';
import { allCheckpoints, findCheckpoint, type StoredCheckpointRow } from './proof.service';
import { rangeHashes, TreeStorageError } from './tree.store';

export enum LogProblemKind {
  /** An entry (or a leaf) that a checkpoint covers is gone. */
  MISSING = 'MISSING',
  /** An entry's content is not what entered the tree, or what the server sealed. */
  ALTERED = 'ALTERED',
  /** An entry the server did not write (no valid seal). */
  INSERTED = 'INSERTED',
  /** An entry sits at another place in its order's trail than when it entered the tree. */
  REORDERED = 'REORDERED',
  /** An order's hash chain is broken (gap, wrong link or content that does not match its hash). */
  CHAIN_BROKEN = 'CHAIN_BROKEN',
  /** An entry the tree should hold (its transaction is behind the integrator's horizon) is not in it. */
  NOT_IN_TREE = 'NOT_IN_TREE',
  /** The tree's stored leaves or nodes no longer hash to a signed checkpoint. */
  TREE_ALTERED = 'TREE_ALTERED',
  /** The tree is smaller than a checkpoint that was signed. */
  ROLLED_BACK = 'ROLLED_BACK',
  /** A stored checkpoint's signature or columns do not verify. */
  CHECKPOINT_ALTERED = 'CHECKPOINT_ALTERED',
  /** A checkpoint that was signed is not stored any more. */
  CHECKPOINT_MISSING = 'CHECKPOINT_MISSING',
  /** The order's state disagrees with its log (status, or the fills its log records). */
  ORDER_LOG_MISMATCH = 'ORDER_LOG_MISMATCH',
}

export interface LogProblem {
  kind: LogProblemKind;
  message: string;
  leafIndex: number | null;
  entryId: string | null;
  orderId: string | null;
  seq: number | null;
}

const problem = (kind: LogProblemKind, message: string, at: Partial<LogProblem> = {}): LogProblem => ({
  kind,
  message,
  leafIndex: at.leafIndex ?? null,
  entryId: at.entryId ?? null,
  orderId: at.orderId ?? null,
  seq: at.seq ?? null,
});

/** Latest stored checkpoint, verified; a problem instead when it does not verify. */
async function latestCheckpoint(
  m: EntityManager,
  verifier: LogVerifier,
): Promise<{ checkpoint: Checkpoint | null; problem: LogProblem | null }> {
  const row = await findCheckpoint(m);
  if (!row) return { checkpoint: null, problem: null };
  const checked = checkStored(row, verifier);
  return 'problem' in checked ? { checkpoint: null, problem: checked.problem } : { checkpoint: checked, problem: null };
}

function checkStored(row: StoredCheckpointRow, verifier: LogVerifier): Checkpoint | { problem: LogProblem } {
  try {
    return verifiedStoredCheckpoint(row, verifier);
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    return {
      problem: problem(
        LogProblemKind.CHECKPOINT_ALTERED,
        `The stored checkpoint of size ${row.treeSize} does not verify: ${error.message}.`,
      ),
    };
  }
}

/**
 * A quick check of the tree under the latest checkpoint, for reports: the checkpoint verifies and the
 * stored tree still hashes to its root (O(log n) reads). Null when both hold or nothing is signed yet.
 * verifyLedger is the full check: it recomputes every leaf from its entry.
 */
export async function checkStoredTree(
  m: EntityManager,
  verifier: LogVerifier,
): Promise<{ expected: string; actual: string; message: string } | null> {
  const row = await findCheckpoint(m);
  if (!row) return null;
  const checked = checkStored(row, verifier);
  if ('problem' in checked) {
    return { expected: 'a valid signature', actual: 'invalid', message: checked.problem.message };
  }
  let root: Buffer;
  try {
    [root] = await rangeHashes(m, [{ start: 0, end: checked.treeSize }]);
  } catch (error) {
    if (!(error instanceof TreeStorageError)) throw error;
    return { expected: 'a complete tree', actual: 'incomplete', message: error.message };
  }
  if (root.equals(checked.rootHash)) return null;
  return {
    expected: checked.rootHash.toString('hex'),
    actual: root.toString('hex'),
    message: `the stored tree's first ${checked.treeSize} leaves no longer hash to the latest signed checkpoint's root`,
  };
}

export interface OrderLogVerification {
  orderId: string;
  valid: boolean;
  entries: number;
  /** Entries proven by an inclusion proof against the latest signed checkpoint. */
  provenEntries: number;
  /** Entries newer than the latest checkpoint: they rely on their chain until the next one. */
  pendingEntries: number;
  checkpointSize: number | null;
  problems: LogProblem[];
  firstBrokenSeq: number | null;
  problem: string | null;
}

type OrderEntryRow = CanonicalEntry & {
  recomputed: string;
  tx: string;
  leaf_index: string | null;
  leaf_hash: Buffer | null;
  leaf_seq: number | null;
};

/**
 * Verifies one order's trail (README "Proving the trail"): its hash chain; every entry's seal; every
 * entry a checkpoint covers proven in the tree by an inclusion proof against the latest signed
 * checkpoint; no leaf of the order whose entry is gone; and the order's state against its log.
 */
export async function verifyOrderLog(m: EntityManager, orderId: string, key: LogKey): Promise<OrderLogVerification> {
  const [order] = (await m.query(
    `SELECT id, status, filled_quantity::text AS filled, overfilled_quantity::text AS overfilled FROM orders WHERE id = $1`,
    [orderId],
  )) as { id: string; status: string; filled: string; overfilled: string }[];
  if (!order) throw new NotFoundError(`Order ${orderId} does not exist (or is not visible to you).`);
  const rows = (await m.query(
    `SELECT ${canonicalColumnsSql('l')}, execution_log_hash(l.prev_hash, l) AS recomputed, l.tx::text AS tx,
            x.leaf_index::text AS leaf_index, x.leaf_hash, x.seq AS leaf_seq
     FROM execution_logs l LEFT JOIN log_leaves x ON x.entry_id = l.id
     WHERE l.order_id = $1 ORDER BY l.seq, l.recorded_at`,
    [orderId],
  )) as OrderEntryRow[];
  const orphans = (await m.query(
    `SELECT x.leaf_index::text AS leaf_index, x.seq, x.entry_id FROM log_leaves x
     WHERE x.order_id = $1 AND NOT EXISTS (SELECT 1 FROM execution_logs l WHERE l.id = x.entry_id)
     ORDER BY x.seq`,
    [orderId],
  )) as { leaf_index: string; seq: number; entry_id: string }[];
  const { checkpoint, problem: checkpointProblem } = await latestCheckpoint(m, key);
  const [state] = (await m.query(
    `SELECT tx_horizon::text AS horizon,
            (SELECT count(*) FROM log_leaves WHERE leaf_index < $1)::text AS covered
     FROM log_tree_state WHERE id = 1`,
    [String(checkpoint?.treeSize ?? 0)],
  )) as { horizon: string; covered: string }[];

  const problems: LogProblem[] = [];
  if (checkpointProblem) problems.push(checkpointProblem);
  const size = checkpoint?.treeSize ?? 0;
  if (checkpoint && Number(state.covered) !== size) {
    problems.push(
      problem(
        LogProblemKind.TREE_ALTERED,
        `The tree storage holds ${state.covered} of the ${size} leaves the latest checkpoint covers: leaves were deleted.`,
      ),
    );
  }
  for (const o of orphans) {
    problems.push(
      problem(
        LogProblemKind.MISSING,
        `Entry ${o.seq} of the order (leaf ${o.leaf_index}) was deleted: the tree holds it, the log does not.`,
        { leafIndex: Number(o.leaf_index), entryId: o.entry_id, orderId, seq: o.seq },
      ),
    );
  }

  // The chain, as before: seq from 1 without gaps, each entry pointing at its predecessor's hash.
  let previous: string | null = null;
  for (const [i, r] of rows.entries()) {
    const at = { entryId: r.id, orderId, seq: r.seq, leafIndex: r.leaf_index === null ? null : Number(r.leaf_index) };
    const broken =
      r.seq !== i + 1
        ? `Entry ${i + 1} is missing (the next entry has seq ${r.seq}).`
        : r.prevHash !== previous
          ? `Entry ${r.seq} does not point at the hash of entry ${r.seq - 1}.`
          : r.hash !== r.recomputed
            ? `Entry ${r.seq} was changed after it was written (its hash does not match its content).`
            : null;
    if (broken) {
      problems.push(problem(LogProblemKind.CHAIN_BROKEN, broken, at));
      break;
    }
    previous = r.hash;
  }

  // Seals and the tree.
  const proven: { row: OrderEntryRow; index: number; leaf: Buffer }[] = [];
  let pending = 0;
  for (const r of rows) {
    const at = { entryId: r.id, orderId, seq: r.seq, leafIndex: r.leaf_index === null ? null : Number(r.leaf_index) };
    if (r.leaf_index === null) {
      if (!sealIsValid(key.sealKey, r)) {
        problems.push(
          problem(
            LogProblemKind.INSERTED,
            `Entry ${r.seq} was not written by Tradetrail: it has no valid seal, and it is not in the tree.`,
            at,
          ),
        );
      } else if (BigInt(r.tx) < BigInt(state.horizon)) {
        problems.push(
          problem(
            LogProblemKind.NOT_IN_TREE,
            `Entry ${r.seq} should be in the tree but is not: its leaf was removed (the tree was rolled back or altered).`,
            at,
          ),
        );
      } else pending++;
      continue;
    }
    const leaf = entryLeafHash(r);
    if (r.leaf_seq !== r.seq) {
      problems.push(
        problem(
          LogProblemKind.REORDERED,
          `Entry ${r.seq} entered the tree as entry ${r.leaf_seq} of the order: the trail was renumbered or reordered.`,
          at,
        ),
      );
    } else if (!leaf.equals(r.leaf_hash!) || (r.seal !== null && !sealIsValid(key.sealKey, r))) {
      problems.push(
        problem(
          LogProblemKind.ALTERED,
          `Entry ${r.seq} was changed after it entered the tree (leaf ${r.leaf_index}).`,
          at,
        ),
      );
    }
    if (Number(r.leaf_index) < size) proven.push({ row: r, index: Number(r.leaf_index), leaf });
    else pending++;
  }

  // Inclusion proofs of every covered entry against the signed root, from the stored nodes.
  let provenCount = 0;
  if (checkpoint && proven.length) {
    const ranges = proven.map((p) => inclusionProofRanges(p.index, size));
    let hashes: Buffer[] = [];
    try {
      hashes = await rangeHashes(m, ranges.flat());
    } catch (error) {
      if (!(error instanceof TreeStorageError)) throw error;
      problems.push(problem(LogProblemKind.TREE_ALTERED, `The tree storage is incomplete: ${error.message}.`));
    }
    if (hashes.length) {
      let offset = 0;
      for (const [i, p] of proven.entries()) {
        const proof = hashes.slice(offset, offset + ranges[i].length);
        offset += ranges[i].length;
        if (verifyInclusion(p.leaf, p.index, size, proof, checkpoint.rootHash)) provenCount++;
        else if (!problems.some((x) => x.entryId === p.row.id)) {
          problems.push(
            problem(
              LogProblemKind.ALTERED,
              `Entry ${p.row.seq} (leaf ${p.index}) is not provable against the signed checkpoint of size ${size}: the entry or the tree was altered.`,
              { entryId: p.row.id, orderId, seq: p.row.seq, leafIndex: p.index },
            ),
          );
        }
      }
    }
  }

  problems.push(...orderAgainstLog(order, rows));
  problems.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  const first = problems[0] ?? null;
  return {
    orderId,
    valid: problems.length === 0,
    entries: rows.length,
    provenEntries: provenCount,
    pendingEntries: pending,
    checkpointSize: checkpoint?.treeSize ?? null,
    problems,
    firstBrokenSeq: first ? (first.seq ?? 1) : null,
    problem: first?.message ?? null,
  };
}

/**
 * The order's state against its log: its status is the status its last entry left it in (so a FILLED
 * order ends with FILLED), and its filled quantity (with any overfill) is the sum of the fills its log
 * records: each fill's arrival, then its corrections; a bust makes it zero.
 */
export function orderAgainstLog(
  order: { id: string; status: string; filled: string; overfilled: string },
  rows: readonly CanonicalEntry[],
): LogProblem[] {
  const problems: LogProblem[] = [];
  if (!rows.length) {
    return [
      problem(
        LogProblemKind.MISSING,
        `The order has no log entries at all: its trail (from SUBMITTED on) was deleted.`,
        { orderId: order.id, seq: 1 },
      ),
    ];
  }
  const last = [...rows].reverse().find((r) => r.toStatus !== null);
  if (last && last.toStatus !== order.status) {
    problems.push(
      problem(
        LogProblemKind.ORDER_LOG_MISMATCH,
        `The order is ${order.status} but its log ends with it ${last.toStatus} (entry ${last.seq}): the entries that moved it on are missing.`,
        { orderId: order.id, seq: last.seq + 1, entryId: null },
      ),
    );
  }
  const fills = new Map<string, string>();
  for (const r of rows) {
    const d = (r.details ?? {}) as Record<string, unknown>;
    const fillId = typeof d.fillId === 'string' ? d.fillId : null;
    if (!fillId) continue;
    if (
      (r.action === 'EXECUTED' || r.action === 'FILLED' || r.action === 'EXCEPTION') &&
      typeof d.quantity === 'string'
    ) {
      fills.set(fillId, d.quantity);
    } else if (r.action === 'BUSTED') fills.set(fillId, '0');
    else if (r.action === 'CORRECTED') {
      const after = d.after as { quantity?: unknown } | null;
      if (after && typeof after.quantity === 'string') fills.set(fillId, after.quantity);
    }
  }
  const recorded = [...fills.values()].reduce((sum, q) => sum.plus(q), new Dec(0));
  const stored = new Dec(order.filled).plus(order.overfilled);
  if (!recorded.equals(stored)) {
    const last = rows[rows.length - 1];
    problems.push(
      problem(
        LogProblemKind.ORDER_LOG_MISMATCH,
        `The order's filled quantity (${order.filled}${new Dec(order.overfilled).isZero() ? '' : ` plus ${order.overfilled} overfilled`}) is not the sum of the fills its log records (${fills.size} fill(s)); entries recording fills are missing or were changed.`,
        { orderId: order.id, seq: last.seq + 1 },
      ),
    );
  }
  return problems;
}

/** The statement timeout of a whole-ledger verification's transaction. */
export const LEDGER_STATEMENT_TIMEOUT_MS = 600_000;

export interface LedgerVerification {
  valid: boolean;
  treeSize: number;
  checkpointSize: number | null;
  checkpointsVerified: number;
  entriesVerified: number;
  pendingEntries: number;
  problems: LogProblem[];
  /** Problems found beyond the first `limit` (not listed). */
  moreProblems: number;
}

/**
 * Verifies the whole log against the signed checkpoints (README "Proving the trail"): recomputes every
 * leaf from its entry, in tree order, and the root at every checkpoint's size; checks the stored
 * checkpoints (signatures, their chain, none missing at the top); checks the caller's checkpoint and the
 * one this process knows from outside the database; and looks for entries outside the tree. Reads in
 * pages of `page` leaves: memory does not grow with the log.
 */
export async function verifyLedger(
  m: EntityManager,
  key: LogKey,
  options: { supplied?: Checkpoint; known?: KnownCheckpoint; limit?: number; page?: number } = {},
): Promise<LedgerVerification> {
  const limit = options.limit ?? 100;
  const page = options.page ?? 5000;
  // A whole large log takes longer than an API request may (its final scan for entries outside the
  // tree is one statement): this transaction only.
  await m.query(`SET LOCAL statement_timeout = ${LEDGER_STATEMENT_TIMEOUT_MS}`);
  const problems: LogProblem[] = [];
  const rows = await allCheckpoints(m);
  const stored: Checkpoint[] = [];
  for (const row of rows) {
    const checked = checkStored(row, key);
    if ('problem' in checked) problems.push(checked.problem);
    else stored.push(checked);
  }
  // The chain of checkpoints: each names the one before it.
  for (const [i, c] of stored.entries()) {
    const before = stored[i - 1];
    const expected = before ? { treeSize: before.treeSize, noteHash: noteHash(before.note) } : null;
    const ok =
      (expected === null && c.previous === null) ||
      (expected !== null &&
        c.previous !== null &&
        c.previous.treeSize === expected.treeSize &&
        c.previous.noteHash.equals(expected.noteHash));
    if (!ok) {
      problems.push(
        problem(
          LogProblemKind.CHECKPOINT_MISSING,
          c.previous
            ? `The checkpoint of size ${c.previous.treeSize}, which the checkpoint of size ${c.treeSize} follows, is missing or was replaced.`
            : `The checkpoint of size ${c.treeSize} claims to be the first, but earlier ones are stored.`,
        ),
      );
    }
  }
  // Roots to check: every stored checkpoint, the caller's, and the one known outside the database.
  const references = new Map<number, { root: Buffer; what: string }[]>();
  const expect = (size: number, root: Buffer, what: string) =>
    references.set(size, [...(references.get(size) ?? []), { root, what }]);
  for (const c of stored) expect(c.treeSize, c.rootHash, `the signed checkpoint of size ${c.treeSize}`);
  const outside = [
    options.supplied && { size: options.supplied.treeSize, root: options.supplied.rootHash, what: 'your checkpoint' },
    options.known && {
      size: options.known.treeSize,
      root: options.known.rootHash,
      what: `the checkpoint ${options.known.source === 'file' ? 'in the checkpoint file' : 'this server signed'}`,
    },
  ].filter((x): x is { size: number; root: Buffer; what: string } => Boolean(x));
  for (const o of outside) {
    expect(o.size, o.root, `${o.what} (size ${o.size})`);
    if (!stored.some((c) => c.treeSize === o.size && c.rootHash.equals(o.root))) {
      problems.push(
        problem(
          LogProblemKind.CHECKPOINT_MISSING,
          `${o.what[0].toUpperCase()}${o.what.slice(1)} (size ${o.size}) is not among the stored checkpoints: checkpoints were deleted or replaced.`,
        ),
      );
    }
  }

  // Every leaf, in tree order, recomputed from its entry.
  const range = new CompactRange();
  let after = -1;
  let sawSealed = false;
  let lastGood = 0;
  let entriesVerified = 0;
  const entryProblemAt = new Set<number>();
  const checkRoots = () => {
    for (const ref of references.get(range.size) ?? []) {
      if (range.root().equals(ref.root)) {
        lastGood = range.size;
        continue;
      }
      const named = [...entryProblemAt].some((i) => i >= lastGood && i < range.size);
      if (!named) {
        problems.push(
          problem(
            LogProblemKind.TREE_ALTERED,
            `Leaves ${lastGood}–${range.size - 1} no longer hash to ${ref.what}: the entries and the tree storage were rewritten together.`,
            { leafIndex: lastGood },
          ),
        );
      }
      lastGood = range.size;
    }
  };
  for (;;) {
    const batch = (await m.query(
      `SELECT x.leaf_index::text AS leaf_index, x.entry_id, x.order_id AS leaf_order, x.seq AS leaf_seq, x.leaf_hash,
              ${canonicalColumnsSql('l')}
       FROM log_leaves x LEFT JOIN execution_logs l ON l.id = x.entry_id
       WHERE x.leaf_index > $1 ORDER BY x.leaf_index LIMIT ${page}`,
      [String(after)],
    )) as (CanonicalEntry & {
      leaf_index: string;
      entry_id: string;
      leaf_order: string;
      leaf_seq: number;
      leaf_hash: Buffer;
    })[];
    for (const r of batch) {
      const index = Number(r.leaf_index);
      while (range.size < index) {
        problems.push(
          problem(
            LogProblemKind.MISSING,
            `Leaf ${range.size} is missing from the tree storage (deleted together with its entry?).`,
            { leafIndex: range.size },
          ),
        );
        entryProblemAt.add(range.size);
        range.append(Buffer.alloc(32));
        checkRoots();
      }
      const at = { leafIndex: index, entryId: r.entry_id, orderId: r.leaf_order, seq: r.leaf_seq };
      let leaf = r.leaf_hash;
      if (r.id === null) {
        problems.push(
          problem(
            LogProblemKind.MISSING,
            `Entry ${r.leaf_seq} of order ${r.leaf_order} (leaf ${index}, id ${r.entry_id}) was deleted.`,
            at,
          ),
        );
        entryProblemAt.add(index);
      } else {
        leaf = entryLeafHash(r);
        entriesVerified++;
        if (r.seal === null) {
          if (sawSealed) {
            problems.push(
              problem(
                LogProblemKind.INSERTED,
                `Entry ${r.seq} of order ${r.orderId} (leaf ${index}) has no seal, yet sits after sealed entries: it was not written by Tradetrail.`,
                at,
              ),
            );
            entryProblemAt.add(index);
          }
        } else sawSealed = true;
        if (!leaf.equals(r.leaf_hash)) {
          const moved = r.seq !== r.leaf_seq || r.orderId !== r.leaf_order;
          problems.push(
            problem(
              moved ? LogProblemKind.REORDERED : LogProblemKind.ALTERED,
              moved
                ? `Leaf ${index} held entry ${r.leaf_seq} of order ${r.leaf_order}; that entry now says it is entry ${r.seq}: the trail was renumbered or reordered.`
                : `Entry ${r.seq} of order ${r.orderId} (leaf ${index}) was changed after it entered the tree.`,
              { ...at, seq: r.seq },
            ),
          );
          entryProblemAt.add(index);
        }
      }
      range.append(leaf);
      checkRoots();
    }
    if (batch.length < page) break;
    after = Number(batch[batch.length - 1].leaf_index);
  }
  const treeSize = range.size;
  for (const [size, refs] of references) {
    if (size > treeSize) {
      for (const ref of refs) {
        problems.push(
          problem(
            LogProblemKind.ROLLED_BACK,
            `The tree has ${treeSize} leaves, fewer than ${ref.what}: it was rolled back.`,
            { leafIndex: treeSize },
          ),
        );
      }
    }
  }
  const latest = stored[stored.length - 1];
  // Each round signs the size it reaches, so the latest stored row (valid or not) covers the whole tree.
  const latestRow = rows.length ? rows[rows.length - 1].treeSize : 0;
  if (treeSize > latestRow) {
    problems.push(
      problem(
        LogProblemKind.CHECKPOINT_MISSING,
        `Leaves ${latestRow}–${treeSize - 1} are covered by no checkpoint: the latest checkpoint was deleted.`,
        { leafIndex: latestRow },
      ),
    );
  }

  // Entries outside the tree: forged, removed from it, or simply newer than the last round.
  const [state] = (await m.query(`SELECT tx_horizon::text AS horizon FROM log_tree_state WHERE id = 1`)) as {
    horizon: string;
  }[];
  const outsideTree = (await m.query(
    `SELECT ${canonicalColumnsSql('l')}, l.tx::text AS tx FROM execution_logs l
     WHERE NOT EXISTS (SELECT 1 FROM log_leaves x WHERE x.entry_id = l.id) ORDER BY l.recorded_at, l.id`,
  )) as (CanonicalEntry & { tx: string })[];
  let pending = 0;
  for (const e of outsideTree) {
    const at = { entryId: e.id, orderId: e.orderId, seq: e.seq };
    if (!sealIsValid(key.sealKey, e)) {
      problems.push(
        problem(
          LogProblemKind.INSERTED,
          `Entry ${e.seq} of order ${e.orderId} (id ${e.id}) was not written by Tradetrail: it has no valid seal and is not in the tree.`,
          at,
        ),
      );
    } else if (BigInt(e.tx) < BigInt(state.horizon)) {
      problems.push(
        problem(
          LogProblemKind.NOT_IN_TREE,
          `Entry ${e.seq} of order ${e.orderId} (id ${e.id}) should be in the tree but is not: the tree was rolled back or altered.`,
          at,
        ),
      );
    } else pending++;
  }

  problems.sort((a, b) => (a.leafIndex ?? Infinity) - (b.leafIndex ?? Infinity));
  return {
    valid: problems.length === 0,
    treeSize,
    checkpointSize: latest?.treeSize ?? null,
    checkpointsVerified: stored.length,
    entriesVerified,
    pendingEntries: pending,
    problems: problems.slice(0, limit),
    moreProblems: Math.max(0, problems.length - limit),
  };
}
