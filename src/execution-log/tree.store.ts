import { EntityManager } from 'typeorm';
import { preparedRows } from '../request-db';
import { HASH_SIZE, hashRange, type LeafRange, type NodeId, nodeHash, rangeNodes } from './merkle';

/** Anything that runs SQL: an EntityManager, a QueryRunner or a DataSource. */
export interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

/**
 * A node's key in the maps below: one number (index·64 + level) while that is exact, text beyond (a
 * tree of more than 2^46 leaves). A number costs no string per node.
 */
export const nodeKey = (n: NodeId): number | string =>
  n.index < 2 ** 46 ? n.index * 64 + n.level : `${n.level}:${n.index}`;

/**
 * Internal nodes are stored from this level up (`merkle_nodes`): a node of a lower level (at most 8
 * leaves) is recomputed from its leaves when a proof needs it. That keeps the tree's storage to one
 * leaf row per entry plus one node row per 16 entries.
 */
export const MIN_STORED_LEVEL = 4;

/** The hashes of leaf runs (one value per run) and of stored nodes. */
const NODES_SQL = `SELECT 0 AS level, r.lo::text AS idx, x.n, x.hashes AS hash
       FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi)
       CROSS JOIN LATERAL (SELECT count(*)::int AS n, string_agg(l.leaf_hash, ''::bytea ORDER BY l.leaf_index) AS hashes
         FROM log_leaves l WHERE l.leaf_index BETWEEN r.lo AND r.hi) x
     UNION ALL
     SELECT n.level, n.idx::text, 1, n.hash FROM merkle_nodes n
       JOIN unnest($3::smallint[], $4::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx`;

/**
 * The hashes of perfect subtrees, in one statement: level 0 from `log_leaves`, levels from
 * MIN_STORED_LEVEL from `merkle_nodes`, the levels between recomputed from their leaves (each once,
 * from the hashes of the level below). Missing nodes are simply absent from the map, which holds the
 * nodes asked for.
 */
export async function readNodes(db: Queryable, nodes: readonly NodeId[]): Promise<Map<number | string, Buffer>> {
  const found = new Map<number | string, Buffer>();
  if (!nodes.length) return found;
  // The leaves under the low nodes, as runs of consecutive indexes (the proofs of consecutive leaves
  // need overlapping blocks): one index range scan per run, its hashes in one value, instead of a
  // look-up and a row per leaf.
  const blocks: LeafRange[] = [];
  const inner: NodeId[] = [];
  for (const n of nodes) {
    if (n.level >= MIN_STORED_LEVEL) inner.push(n);
    else {
      const width = 2 ** n.level;
      blocks.push({ start: n.index * width, end: (n.index + 1) * width });
    }
  }
  blocks.sort((a, b) => a.start - b.start);
  const runs: LeafRange[] = [];
  for (const b of blocks) {
    const run = runs[runs.length - 1];
    if (run && b.start <= run.end) run.end = Math.max(run.end, b.end);
    else runs.push({ ...b });
  }
  const values = [
    runs.map((r) => String(r.start)),
    runs.map((r) => String(r.end - 1)),
    inner.map((n) => n.level),
    inner.map((n) => String(n.index)),
  ];
  type NodeRow = { level: number; idx: string; n: number; hash: Buffer | null };
  // A named prepared statement in a request's or the integrator's transaction (parsed and planned once
  // per connection: an export sends it once per 1,000 rows); unnamed elsewhere, or with prepared
  // statements off.
  const rows =
    db instanceof EntityManager && db.queryRunner
      ? await preparedRows<NodeRow>(db, 'tt_tree_nodes', NODES_SQL, values)
      : ((await db.query(NODES_SQL, values)) as NodeRow[]);
  // Per level, by index (level 0: views into each run's hashes).
  const levels: Map<number, Buffer>[] = Array.from({ length: MIN_STORED_LEVEL }, () => new Map());
  const irregular: LeafRange[] = [];
  const runEnd = new Map(runs.map((r) => [r.start, r.end]));
  for (const r of rows) {
    const index = Number(r.idx);
    if (r.level > 0) found.set(nodeKey({ level: r.level, index }), r.hash!);
    // A run whose bytes do not add up (the schema checks each leaf hash's size) is read leaf by leaf below.
    else if (r.hash && r.n === runEnd.get(index)! - index && r.hash.length === r.n * HASH_SIZE) {
      for (let i = 0; i < r.n; i++) {
        levels[0].set(index + i, r.hash.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
      }
    } else irregular.push({ start: index, end: runEnd.get(index)! });
  }
  if (irregular.length) {
    // Leaves missing from a run, or a hash of another size (the schema forbids it; a tampered table
    // does not): each leaf that is there, on its own.
    const leaves = (await db.query(
      `SELECT l.leaf_index::text AS idx, l.leaf_hash AS hash
         FROM unnest($1::bigint[], $2::bigint[]) AS r(lo, hi) JOIN log_leaves l ON l.leaf_index BETWEEN r.lo AND r.hi`,
      [irregular.map((r) => String(r.start)), irregular.map((r) => String(r.end - 1))],
    )) as { idx: string; hash: Buffer }[];
    for (const l of leaves) levels[0].set(Number(l.idx), l.hash);
  }
  const low = (level: number, index: number): Buffer | undefined => {
    let hash = levels[level].get(index);
    if (hash || level === 0) return hash;
    const left = low(level - 1, 2 * index);
    const right = left && low(level - 1, 2 * index + 1);
    if (!right) return undefined;
    hash = nodeHash(left!, right);
    levels[level].set(index, hash);
    return hash;
  };
  for (const n of nodes) {
    if (n.level < MIN_STORED_LEVEL) {
      const hash = low(n.level, n.index);
      if (hash) found.set(nodeKey(n), hash);
    }
  }
  return found;
}

export class TreeStorageError extends Error {
  override name = 'TreeStorageError';
}

/** A range's key: one number while its end fits in 26 bits (so start·2^26 + end is exact), else text. */
const rangeKey = (r: LeafRange): number | string =>
  r.end < 2 ** 26 ? r.start * 2 ** 26 + r.end : `${r.start}-${r.end}`;

/**
 * The hashes of several ranges (proof elements, roots) from the stored nodes, in one statement. Each
 * distinct range is hashed once (the proofs of neighbouring leaves share most of their ranges), and
 * equal ranges get the same Buffer.
 */
export async function rangeHashes(db: Queryable, ranges: readonly LeafRange[]): Promise<Buffer[]> {
  // Each distinct range once, with its perfect subtrees (computed once: most proof ranges are one).
  const distinct = new Map<number | string, { range: LeafRange; nodes: NodeId[] }>();
  const wanted = new Map<number | string, NodeId>();
  for (const r of ranges) {
    const key = rangeKey(r);
    if (distinct.has(key)) continue;
    const nodes = rangeNodes(r);
    distinct.set(key, { range: r, nodes });
    for (const n of nodes) wanted.set(nodeKey(n), n);
  }
  const found = await readNodes(db, [...wanted.values()]);
  const get = (n: NodeId): Buffer => {
    const hash = found.get(nodeKey(n));
    if (!hash) {
      throw new TreeStorageError(
        `the tree storage has no hash for leaves ${n.index * 2 ** n.level}–${(n.index + 1) * 2 ** n.level - 1}`,
      );
    }
    return hash;
  };
  const hashes = new Map<number | string, Buffer>();
  for (const [key, { range, nodes }] of distinct) hashes.set(key, hashRange(range, get, nodes));
  return ranges.map((r) => hashes.get(rangeKey(r))!);
}
