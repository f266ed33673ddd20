import { createHash, hash } from 'node:crypto';

/**
 * Merkle tree hashing, proofs and proof verification of RFC 9162 (Certificate Transparency v2, the
 * same tree as RFC 6962) over SHA-256:
 *
 *     MTH({})    = SHA-256()
 *     MTH({d0})  = SHA-256(0x00 ‖ d0)                                  (leafHash)
 *     MTH(D[n])  = SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n]))            (nodeHash)
 *                  k = the largest power of two smaller than n
 *
 * Hashes are 32-byte Buffers. Leaf indexes and tree sizes are JS numbers: integers from 0 to 2^53
 * (sizes) or 2^53 - 1 (indexes); no bitwise operator touches them, so they may exceed 2^32.
 *
 * A *perfect* subtree (`NodeId`) is a complete, aligned subtree: leaves [index·2^level, (index+1)·2^level).
 * Every hash a proof needs is the MTH of a leaf range arising in the RFC's recursion, and each such
 * range is a left-to-right run of perfect subtrees (`rangeNodes`), so a store holding the hash of every
 * perfect subtree (leaves included, as level 0) serves any proof in O(log n) reads.
 */

export const HASH_SIZE = 32;

/** MTH of the empty tree: SHA-256 of the empty string. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest();

const LEAF_PREFIX = Buffer.from([0x00]);
const NODE_PREFIX = Buffer.from([0x01]);

/** The largest tree size handled: every index and size up to it is an exact JS number. */
export const MAX_TREE_SIZE = 2 ** 53;

const TWO_32 = 2 ** 32;

/** SHA-256(0x00 ‖ entryBytes): the leaf hash of an entry. */
export function leafHash(entryBytes: Buffer): Buffer {
  return hash('sha256', Buffer.concat([LEAF_PREFIX, entryBytes]), 'buffer');
}

/** The 65 bytes a node hashes, reused (hashing is synchronous): 0x01 ‖ left ‖ right. */
const nodeInput = Buffer.alloc(65, 0x01);

/** SHA-256(0x01 ‖ left ‖ right): the hash of an interior node. */
export function nodeHash(left: Buffer, right: Buffer): Buffer {
  // One-shot crypto.hash (Node 20.12+) is about a third faster than createHash for 65 bytes.
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest();
  }
  left.copy(nodeInput, 1);
  right.copy(nodeInput, 33);
  return hash('sha256', nodeInput, 'buffer');
}

/** A range [start, end) of leaves whose MTH is one proof element. */
export interface LeafRange {
  start: number;
  end: number;
}

/** A perfect (complete, aligned) subtree: leaves [index*2^level, (index+1)*2^level). level 0 = a leaf. */
export interface NodeId {
  level: number;
  index: number;
}

/** The leaves [start, end) a perfect subtree covers. */
export function nodeRange(node: NodeId): LeafRange {
  const width = 2 ** node.level;
  return { start: node.index * width, end: (node.index + 1) * width };
}

function isSize(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= MAX_TREE_SIZE;
}

function isHash(h: unknown): h is Buffer {
  return Buffer.isBuffer(h) && h.length === HASH_SIZE;
}

/** floor(log2(x)) for an integer x >= 1. */
function floorLog2(x: number): number {
  if (x < TWO_32) return 31 - Math.clz32(x);
  let level = 32;
  let p = TWO_32;
  while (p * 2 <= x) {
    p *= 2;
    level++;
  }
  return level;
}

/** k of the RFC: the largest power of two smaller than n (n >= 2). */
function splitPoint(n: number): number {
  return 2 ** floorLog2(n - 1);
}

/** The smallest power of two >= n (n >= 1). */
function bitCeil(n: number): number {
  return n === 1 ? 1 : 2 * splitPoint(n);
}

function popCount(n: number): number {
  let count = 0;
  while (n > 0) {
    if (n % 2 === 1) count++;
    n = Math.floor(n / 2);
  }
  return count;
}

/** MTH over already-hashed leaves (D[n] of the RFC, each leaf given as its leaf hash). */
export function rootOf(leafHashes: readonly Buffer[]): Buffer {
  const range = new CompactRange();
  for (const h of leafHashes) range.append(h);
  return range.root();
}

/**
 * The ranges whose hashes form PATH(m, D[n]) (RFC 9162 2.1.3.1), in proof order: from the leaf's
 * sibling upwards. Empty for a tree of one leaf. Throws RangeError unless 0 <= leafIndex < treeSize.
 */
export function inclusionProofRanges(leafIndex: number, treeSize: number): LeafRange[] {
  if (!isSize(treeSize) || !Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex >= treeSize) {
    throw new RangeError(`no inclusion proof for leaf ${leafIndex} in a tree of size ${treeSize}`);
  }
  const ranges: LeafRange[] = [];
  let start = 0;
  let end = treeSize;
  while (end - start > 1) {
    const mid = start + splitPoint(end - start);
    if (leafIndex < mid) {
      ranges.push({ start: mid, end });
      end = mid;
    } else {
      ranges.push({ start, end: mid });
      start = mid;
    }
  }
  return ranges.reverse();
}

/**
 * The ranges whose hashes form PROOF(m, D[n]) = SUBPROOF(m, D[n], true) (RFC 9162 2.1.4.1), in proof
 * order. Empty when fromSize == toSize; throws RangeError unless 0 < fromSize <= toSize.
 */
export function consistencyProofRanges(fromSize: number, toSize: number): LeafRange[] {
  if (!isSize(toSize) || !Number.isInteger(fromSize) || fromSize < 1 || fromSize > toSize) {
    throw new RangeError(`no consistency proof from tree size ${fromSize} to ${toSize}`);
  }
  const ranges: LeafRange[] = [];
  let start = 0;
  let end = toSize;
  let haveRoot = true;
  for (;;) {
    if (fromSize === end) {
      // SUBPROOF(m, D[m], b): nothing when the verifier has this root, else its hash.
      if (!haveRoot) ranges.push({ start, end });
      break;
    }
    const mid = start + splitPoint(end - start);
    if (fromSize <= mid) {
      ranges.push({ start: mid, end });
      end = mid;
    } else {
      ranges.push({ start, end: mid });
      start = mid;
      haveRoot = false;
    }
  }
  return ranges.reverse();
}

/**
 * The perfect subtrees, left to right, whose hashes determine the MTH of `range` (largest first: one
 * per set bit of its length). `range` must be one that arises in RFC 9162's recursion, i.e. its start
 * is a multiple of the smallest power of two >= its length (every range of `inclusionProofRanges`,
 * `consistencyProofRanges` and [0, n) is); anything else throws RangeError. An empty range has none.
 */
export function rangeNodes(range: LeafRange): NodeId[] {
  const { start, end } = range;
  if (!isSize(start) || !isSize(end) || start > end) {
    throw new RangeError(`invalid leaf range [${start}, ${end})`);
  }
  const nodes: NodeId[] = [];
  if (start === end) return nodes;
  if (start % bitCeil(end - start) !== 0) {
    throw new RangeError(`leaf range [${start}, ${end}) is not aligned as an RFC 9162 subtree`);
  }
  let pos = start;
  while (pos < end) {
    const level = floorLog2(end - pos);
    const width = 2 ** level;
    nodes.push({ level, index: pos / width });
    pos += width;
  }
  return nodes;
}

/** The perfect subtrees making up a tree of `size` leaves, left to right (one per set bit of size, largest first). */
export function rightEdge(size: number): NodeId[] {
  return rangeNodes({ start: 0, end: size });
}

/**
 * The MTH of `range` (see `rangeNodes`) from the hashes of its perfect subtrees. `get` returns a
 * perfect subtree's hash (level 0: the leaf hash); when it returns undefined this throws an Error
 * naming the missing node (an error `get` throws itself propagates unchanged). An empty range hashes
 * to EMPTY_ROOT. `nodes`: `rangeNodes(range)`, when the caller has it already.
 */
export function hashRange(
  range: LeafRange,
  get: (node: NodeId) => Buffer | undefined,
  nodes: readonly NodeId[] = rangeNodes(range),
): Buffer {
  if (nodes.length === 0) return Buffer.from(EMPTY_ROOT);
  const fetch = (node: NodeId): Buffer => {
    const h = get(node);
    if (h === undefined || h === null) {
      const r = nodeRange(node);
      throw new Error(
        `Merkle node (level ${node.level}, index ${node.index}) = leaves [${r.start}, ${r.end}) is missing`,
      );
    }
    if (!isHash(h)) {
      throw new Error(`Merkle node (level ${node.level}, index ${node.index}) is not a ${HASH_SIZE}-byte hash`);
    }
    return h;
  };
  let i = nodes.length - 1;
  let h = fetch(nodes[i]);
  while (--i >= 0) h = nodeHash(fetch(nodes[i]), h);
  return h;
}

/**
 * RFC 9162 2.1.3.2: does `proof` show the leaf `leafHash` at `leafIndex` in the tree of `treeSize`
 * leaves whose root is `root`? False (never an exception) for any malformed input: index out of range,
 * sizes not integers, hashes that are not 32 bytes, a proof of the wrong length.
 */
export function verifyInclusion(
  leafHash: Buffer,
  leafIndex: number,
  treeSize: number,
  proof: readonly Buffer[],
  root: Buffer,
): boolean {
  if (!isSize(treeSize) || !Number.isInteger(leafIndex) || leafIndex < 0 || leafIndex >= treeSize) return false;
  if (!isHash(leafHash) || !isHash(root) || !Array.isArray(proof)) return false;
  let fn = leafIndex;
  let sn = treeSize - 1;
  let r = leafHash;
  for (let i = 0; i < proof.length; i++) {
    const p = proof[i];
    if (sn === 0 || !isHash(p)) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && r.equals(root);
}

/**
 * RFC 9162 2.1.4.2: does `proof` show that the tree of `size1` leaves with root `root1` is a prefix of
 * the tree of `size2` leaves with root `root2`? When size1 == size2 the proof must be empty and the
 * roots equal. size1 == 0 is always false: the RFC defines no proof from the empty tree (a caller that
 * wants "every tree extends the empty tree" must special-case it). False, never an exception, for any
 * malformed input.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Buffer[],
  root1: Buffer,
  root2: Buffer,
): boolean {
  if (!isSize(size1) || !isSize(size2) || size1 === 0 || size1 > size2) return false;
  if (!isHash(root1) || !isHash(root2) || !Array.isArray(proof)) return false;
  if (size1 === size2) return proof.length === 0 && root1.equals(root2);
  if (proof.length === 0) return false;
  for (let i = 0; i < proof.length; i++) if (!isHash(proof[i])) return false;

  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  // fn is now 0 exactly when size1 is a power of two: then root1 is the proof's implicit first element.
  let i = 0;
  let fr: Buffer;
  if (fn === 0) {
    fr = root1;
  } else {
    fr = proof[0];
    i = 1;
  }
  let sr = fr;
  for (; i < proof.length; i++) {
    const c = proof[i];
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && fr.equals(root1) && sr.equals(root2);
}

/**
 * Streaming builder of a tree's root in O(log n) memory: a compact range from leaf 0, i.e. the hashes
 * of `rightEdge(size)`. Construct it empty, or from an existing tree's size and right-edge hashes (as
 * `edge()` returned them).
 */
export class CompactRange {
  private count: number;
  /** Hashes of rightEdge(count), largest subtree first. */
  private readonly hashes: Buffer[];

  constructor(size = 0, edge: readonly Buffer[] = []) {
    if (!isSize(size)) throw new RangeError(`invalid tree size ${size}`);
    const expected = popCount(size);
    if (edge.length !== expected) {
      throw new RangeError(`a tree of size ${size} has ${expected} right-edge hashes, got ${edge.length}`);
    }
    if (!edge.every(isHash)) throw new RangeError(`right-edge hashes must be ${HASH_SIZE} bytes`);
    this.count = size;
    this.hashes = edge.map((h) => Buffer.from(h));
  }

  /** The number of leaves appended so far (including those of the tree it was constructed from). */
  get size(): number {
    return this.count;
  }

  /**
   * Appends a leaf (its leaf hash, copied). For every perfect subtree this completes at level >= 1,
   * lowest first, calls onNode with the subtree and its hash. If onNode throws, the range is left as it
   * was before the call (the leaf is not appended).
   */
  append(leafHash: Buffer, onNode?: (node: NodeId, hash: Buffer) => void): void {
    if (!isHash(leafHash)) throw new RangeError(`a leaf hash must be ${HASH_SIZE} bytes`);
    if (this.count >= MAX_TREE_SIZE) throw new RangeError(`tree size limit ${MAX_TREE_SIZE} reached`);
    const hashes = this.hashes;
    const newSize = this.count + 1;
    let top = hashes.length;
    let s = this.count;
    let h = leafHash;
    let level = 0;
    let width = 1;
    // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes into a larger one.
    while (s % 2 === 1) {
      h = nodeHash(hashes[--top], h);
      s = (s - 1) / 2;
      level++;
      width *= 2;
      if (onNode) onNode({ level, index: newSize / width - 1 }, h);
    }
    hashes.length = top;
    hashes.push(level === 0 ? Buffer.from(leafHash) : h);
    this.count = newSize;
  }

  /** MTH of all leaves so far (EMPTY_ROOT for size 0). A fresh Buffer. */
  root(): Buffer {
    const hashes = this.hashes;
    let i = hashes.length - 1;
    if (i < 0) return Buffer.from(EMPTY_ROOT);
    let r: Buffer = Buffer.from(hashes[i]);
    while (--i >= 0) r = nodeHash(hashes[i], r);
    return r;
  }

  /** The current right-edge hashes, in the order of rightEdge(size). Fresh Buffers. */
  edge(): Buffer[] {
    return this.hashes.map((h) => Buffer.from(h));
  }
}
