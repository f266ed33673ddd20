import type { EntityManager } from 'typeorm';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { consistencyProofRanges, inclusionProofRanges, type LeafRange } from './merkle';
import { type Queryable, rangeHashes } from './tree.store';

/** A checkpoint as stored (`log_checkpoints`). */
export interface StoredCheckpointRow {
  treeSize: number;
  rootHash: Buffer;
  signedAt: Date;
  note: string;
}

const CHECKPOINT_COLUMNS = `tree_size::text AS size, root_hash, signed_at, note`;
interface CheckpointRow {
  size: string;
  root_hash: Buffer;
  signed_at: Date;
  note: string;
}
const toCheckpoint = (r: CheckpointRow): StoredCheckpointRow => ({
  treeSize: Number(r.size),
  rootHash: r.root_hash,
  signedAt: r.signed_at,
  note: r.note,
});

/** The latest checkpoint, or the one of exactly `treeSize` leaves; null when there is none. */
export async function findCheckpoint(m: Queryable, treeSize?: number | null): Promise<StoredCheckpointRow | null> {
  const rows = (await (treeSize === undefined || treeSize === null
    ? m.query(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1`)
    : m.query(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints WHERE tree_size = $1`, [
        String(treeSize),
      ]))) as CheckpointRow[];
  return rows.length ? toCheckpoint(rows[0]) : null;
}

/** Every stored checkpoint, smallest first. */
export async function allCheckpoints(m: Queryable): Promise<StoredCheckpointRow[]> {
  return (
    (await m.query(`SELECT ${CHECKPOINT_COLUMNS} FROM log_checkpoints ORDER BY tree_size`)) as CheckpointRow[]
  ).map(toCheckpoint);
}

async function checkpointOf(m: EntityManager, treeSize: number | null | undefined): Promise<StoredCheckpointRow> {
  if (treeSize !== undefined && treeSize !== null && (!Number.isSafeInteger(treeSize) || treeSize < 1)) {
    throw new BadUserInputError('treeSize must be a whole number of at least 1.', { field: 'treeSize' });
  }
  const checkpoint = await findCheckpoint(m, treeSize);
  if (!checkpoint) {
    throw new NotFoundError(
      treeSize === undefined || treeSize === null
        ? 'No checkpoint has been signed yet: new entries enter the tree within about a second.'
        : `There is no signed checkpoint of size ${treeSize}; proofs are given against signed checkpoints only (see latestCheckpoint).`,
    );
  }
  return checkpoint;
}

export interface InclusionProofResult {
  leafIndex: number;
  treeSize: number;
  leafHash: Buffer;
  /** PATH(leafIndex, D[treeSize]) of RFC 9162 §2.1.3.1: from the leaf's sibling up to the root's child. */
  hashes: Buffer[];
  checkpoint: StoredCheckpointRow;
}

export interface LeafRow {
  leafIndex: number;
  leafHash: Buffer;
}

/** Where entries sit in the tree (null for an entry not integrated yet), in one statement. */
export async function leavesOf(m: EntityManager, entryIds: readonly string[]): Promise<Map<string, LeafRow>> {
  const rows = (await m.query(
    `SELECT entry_id, leaf_index::text AS leaf_index, leaf_hash FROM log_leaves WHERE entry_id = ANY($1::uuid[])`,
    [entryIds],
  )) as { entry_id: string; leaf_index: string; leaf_hash: Buffer }[];
  return new Map(rows.map((r) => [r.entry_id, { leafIndex: Number(r.leaf_index), leafHash: r.leaf_hash }]));
}

/**
 * Inclusion proofs of many entries in the tree of `treeSize` (default: the latest checkpoint), in three
 * statements whatever their number: the checkpoint, the leaves, and every node the proofs need.
 */
export async function inclusionProofs(
  m: EntityManager,
  entryIds: readonly string[],
  treeSize: number | null | undefined,
): Promise<(InclusionProofResult | Error)[]> {
  return inclusionProofsAt(m, entryIds, await checkpointOf(m, treeSize));
}

/** The same, against a checkpoint the caller has already read: two statements. */
export async function inclusionProofsAt(
  m: EntityManager,
  entryIds: readonly string[],
  checkpoint: StoredCheckpointRow,
): Promise<(InclusionProofResult | Error)[]> {
  const leaves = await leavesOf(m, entryIds);
  return inclusionProofsOfLeaves(
    m,
    entryIds.map((id) => leaves.get(id)),
    checkpoint,
  );
}

/**
 * The proof of a leaf in an aligned block of 2^BLOCK_LEVEL leaves that is whole in the tree is the
 * proof inside that (perfect) block, from the leaf's sibling up (one perfect subtree per level),
 * followed by the block's own proof, the same for all its leaves: computed once per block.
 */
const BLOCK_LEVEL = 4;
const BLOCK = 2 ** BLOCK_LEVEL;

/**
 * The same for leaves the caller has already read (undefined: the entry is not in the tree yet), in one
 * statement: the nodes every proof needs. The proofs of neighbouring leaves share most of their
 * elements: each distinct one is computed once, and equal elements are the same Buffer.
 */
export async function inclusionProofsOfLeaves(
  db: Queryable,
  leaves: readonly (LeafRow | undefined)[],
  checkpoint: StoredCheckpointRow,
): Promise<(InclusionProofResult | Error)[]> {
  const size = checkpoint.treeSize;
  // Every distinct range the proofs need, once; a proof is a list of indexes into it.
  const ranges: LeafRange[] = [];
  const seen = new Map<number | string, number>();
  const ref = (start: number, end: number): number => {
    const key = end < 2 ** 26 ? start * 2 ** 26 + end : `${start}-${end}`;
    let i = seen.get(key);
    if (i === undefined) {
      i = ranges.push({ start, end }) - 1;
      seen.set(key, i);
    }
    return i;
  };
  const blocks = new Map<number, number[]>();
  const wanted = leaves.map((leaf) => {
    if (!leaf) {
      return new ConflictError(
        'This entry is not in the tree yet: entries are integrated within about a second of their commit.',
      );
    }
    const index = leaf.leafIndex;
    if (index >= size) {
      return new ConflictError(
        `This entry is leaf ${index}, after the checkpoint of size ${size}: ask for a later checkpoint.`,
      );
    }
    const block = Math.floor(index / BLOCK);
    if ((block + 1) * BLOCK > size) {
      return { leaf, refs: inclusionProofRanges(index, size).map((r) => ref(r.start, r.end)) };
    }
    let upper = blocks.get(block);
    if (!upper) {
      upper = inclusionProofRanges(index, size)
        .slice(BLOCK_LEVEL)
        .map((r) => ref(r.start, r.end));
      blocks.set(block, upper);
    }
    const refs = new Array<number>(BLOCK_LEVEL + upper.length);
    for (let level = 0, width = 1; level < BLOCK_LEVEL; level++, width *= 2) {
      const node = Math.floor(index / width);
      const sibling = (node % 2 === 0 ? node + 1 : node - 1) * width;
      refs[level] = ref(sibling, sibling + width);
    }
    for (let i = 0; i < upper.length; i++) refs[BLOCK_LEVEL + i] = upper[i];
    return { leaf, refs };
  });
  const hashes = await rangeHashes(db, ranges);
  return wanted.map((w) => {
    if (w instanceof Error) return w;
    return {
      leafIndex: w.leaf.leafIndex,
      treeSize: size,
      leafHash: w.leaf.leafHash,
      hashes: w.refs.map((i) => hashes[i]),
      checkpoint,
    };
  });
}

export interface ConsistencyProofResult {
  from: StoredCheckpointRow;
  to: StoredCheckpointRow;
  /** PROOF(fromSize, D[toSize]) of RFC 9162 §2.1.4.1. */
  hashes: Buffer[];
}

/** Proof that the checkpoint of `fromSize` is a prefix of the one of `toSize` (default: the latest). */
export async function consistencyProof(
  m: EntityManager,
  fromSize: number,
  toSize: number | null | undefined,
): Promise<ConsistencyProofResult> {
  const from = await checkpointOf(m, fromSize);
  const to = await checkpointOf(m, toSize);
  if (to.treeSize < from.treeSize) {
    throw new BadUserInputError(`toSize (${to.treeSize}) must not be smaller than fromSize (${fromSize}).`, {
      field: 'toSize',
    });
  }
  return { from, to, hashes: await rangeHashes(m, consistencyProofRanges(from.treeSize, to.treeSize)) };
}
