import { hashRange, type LeafRange, type NodeId, rangeNodes, rootOf } from './merkle';

/** Anything that runs SQL: an EntityManager, a QueryRunner or a DataSource. */
export interface Queryable {
  query(sql: string, parameters?: unknown[]): Promise<unknown>;
}

export const nodeKey = (n: NodeId): string => `${n.level}:${n.index}`;

/**
 * Internal nodes are stored from this level up (`merkle_nodes`): a node of a lower level (at most 8
 * leaves) is recomputed from its leaves when a proof needs it. That keeps the tree's storage to one
 * leaf row per entry plus one node row per 16 entries.
 */
export const MIN_STORED_LEVEL = 4;

/**
 * The hashes of perfect subtrees, in one statement: level 0 from `log_leaves`, levels from
 * MIN_STORED_LEVEL from `merkle_nodes`, the levels between recomputed from their leaves. Missing
 * nodes are simply absent from the map.
 */
export async function readNodes(db: Queryable, nodes: readonly NodeId[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  if (!nodes.length) return found;
  const leaves = new Set<number>();
  for (const n of nodes) {
    if (n.level >= MIN_STORED_LEVEL) continue;
    const width = 2 ** n.level;
    for (let i = n.index * width; i < (n.index + 1) * width; i++) leaves.add(i);
  }
  const inner = nodes.filter((n) => n.level >= MIN_STORED_LEVEL);
  const rows = (await db.query(
    `SELECT 0 AS level, leaf_index::text AS idx, leaf_hash AS hash FROM log_leaves WHERE leaf_index = ANY($1::bigint[])
     UNION ALL
     SELECT n.level, n.idx::text, n.hash FROM merkle_nodes n
       JOIN unnest($2::smallint[], $3::bigint[]) AS w(level, idx) ON n.level = w.level AND n.idx = w.idx`,
    [[...leaves].map(String), inner.map((n) => n.level), inner.map((n) => String(n.index))],
  )) as { level: number; idx: string; hash: Buffer }[];
  for (const r of rows) found.set(`${r.level}:${r.idx}`, r.hash);
  for (const n of nodes) {
    if (n.level === 0 || n.level >= MIN_STORED_LEVEL) continue;
    const width = 2 ** n.level;
    const hashes: Buffer[] = [];
    for (let i = n.index * width; i < (n.index + 1) * width; i++) {
      const leaf = found.get(`0:${i}`);
      if (!leaf) break;
      hashes.push(leaf);
    }
    if (hashes.length === width) found.set(nodeKey(n), rootOf(hashes));
  }
  return found;
}

export class TreeStorageError extends Error {
  override name = 'TreeStorageError';
}

/** The hashes of several ranges (proof elements, roots) from the stored nodes, in one statement. */
export async function rangeHashes(db: Queryable, ranges: readonly LeafRange[]): Promise<Buffer[]> {
  const wanted = new Map<string, NodeId>();
  for (const r of ranges) for (const n of rangeNodes(r)) wanted.set(nodeKey(n), n);
  const nodes = await readNodes(db, [...wanted.values()]);
  return ranges.map((r) =>
    hashRange(r, (n) => {
      const hash = nodes.get(nodeKey(n));
      if (!hash) {
        throw new TreeStorageError(
          `the tree storage has no hash for leaves ${n.index * 2 ** n.level}–${(n.index + 1) * 2 ** n.level - 1}`,
        );
      }
      return hash;
    }),
  );
}
