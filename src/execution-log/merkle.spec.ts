import { createHash } from 'node:crypto';
import {
  CompactRange,
  consistencyProofRanges,
  EMPTY_ROOT,
  hashRange,
  inclusionProofRanges,
  leafHash,
  type LeafRange,
  MAX_TREE_SIZE,
  nodeHash,
  type NodeId,
  nodeRange,
  rangeNodes,
  rightEdge,
  rootOf,
  verifyConsistency,
  verifyInclusion,
} from './merkle';

const hex = (b: Buffer): string => b.toString('hex');
const hd = (s: string): Buffer => Buffer.from(s, 'hex');

/** RFC 9162 2.1.1 written out recursively, independent of the module: the largest power of two < n. */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** Reference MTH over leaf hashes, straight from the RFC's definition. */
function mth(leaves: readonly Buffer[]): Buffer {
  if (leaves.length === 0) return createHash('sha256').digest();
  if (leaves.length === 1) return leaves[0];
  const k = split(leaves.length);
  return nodeHash(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

/** Reference PATH(m, D[n]) (RFC 9162 2.1.3.1), over `mthOf(start, end)` = MTH(D[start:end]). */
function refPath(m: number, start: number, end: number, mthOf: (start: number, end: number) => Buffer): Buffer[] {
  if (end - start <= 1) return [];
  const mid = start + split(end - start);
  return m < mid
    ? [...refPath(m, start, mid, mthOf), mthOf(mid, end)]
    : [...refPath(m, mid, end, mthOf), mthOf(start, mid)];
}

/** Reference SUBPROOF(m, D[n], b) (RFC 9162 2.1.4.1), m counted from leaf 0. */
function refSubproof(
  m: number,
  start: number,
  end: number,
  b: boolean,
  mthOf: (start: number, end: number) => Buffer,
): Buffer[] {
  if (m === end) return b ? [] : [mthOf(start, end)];
  const mid = start + split(end - start);
  return m <= mid
    ? [...refSubproof(m, start, mid, b, mthOf), mthOf(mid, end)]
    : [...refSubproof(m, mid, end, false, mthOf), mthOf(start, mid)];
}

const key = (n: NodeId): string => `${n.level}:${n.index}`;

/** Every perfect subtree of a tree of `leaves.length` leaves, computed naively level by level. */
function perfectNodes(leaves: readonly Buffer[]): Map<string, Buffer> {
  const nodes = new Map<string, Buffer>();
  let row = [...leaves];
  for (let level = 0; row.length > 0; level++) {
    row.forEach((h, index) => nodes.set(key({ level, index }), h));
    const next: Buffer[] = [];
    for (let i = 0; i + 1 < row.length; i += 2) next.push(nodeHash(row[i], row[i + 1]));
    row = next;
  }
  return nodes;
}

const flip = (b: Buffer, at: number): Buffer => {
  const c = Buffer.from(b);
  c[at % c.length] ^= 0x01;
  return c;
};

const LIMIT = 70;
const leaves = Array.from({ length: 300 }, (_, i) => leafHash(Buffer.from(`entry ${i}`)));
const nodes = perfectNodes(leaves.slice(0, LIMIT));
const get = (n: NodeId): Buffer | undefined => nodes.get(key(n));
const mthMemo = new Map<string, Buffer>();
/** MTH(leaves[start:end]) by the RFC's recursive definition, memoised. */
function mthOf(start: number, end: number): Buffer {
  const k = `${start}-${end}`;
  let h = mthMemo.get(k);
  if (h === undefined) {
    const mid = start + split(end - start);
    h = end - start <= 1 ? mth(leaves.slice(start, end)) : nodeHash(mthOf(start, mid), mthOf(mid, end));
    mthMemo.set(k, h);
  }
  return h;
}
const roots = Array.from({ length: LIMIT + 2 }, (_, n) => mthOf(0, n));

describe('hashing: RFC 6962 / transparency-dev test vectors', () => {
  // Leaf inputs and hashes from transparency-dev/merkle testonly/constants.go and reference_test.go.
  const inputs = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'];
  const vectorLeaves = inputs.map((s) => leafHash(hd(s)));
  const vectorNodes = perfectNodes(vectorLeaves);
  const vectorGet = (n: NodeId): Buffer | undefined => vectorNodes.get(key(n));
  const expectedRoots = [
    'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];

  it('EMPTY_ROOT is SHA-256 of the empty string', () => {
    expect(hex(EMPTY_ROOT)).toBe(expectedRoots[0]);
    expect(hex(rootOf([]))).toBe(expectedRoots[0]);
  });

  it.each(expectedRoots.map((root, size) => [size, root] as const))('root of the first %i leaves', (size, root) => {
    expect(hex(rootOf(vectorLeaves.slice(0, size)))).toBe(root);
    expect(hex(mth(vectorLeaves.slice(0, size)))).toBe(root);
    const range = new CompactRange();
    vectorLeaves.slice(0, size).forEach((h) => range.append(h));
    expect(hex(range.root())).toBe(root);
    expect(hex(hashRange({ start: 0, end: size }, vectorGet))).toBe(root);
  });

  it('leaf and node hashes', () => {
    expect(hex(vectorLeaves[1])).toBe('96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7');
    expect(hex(nodeHash(vectorLeaves[2], vectorLeaves[3]))).toBe(
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    );
  });

  it.each([
    [0, 1, []],
    [0, 2, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7']],
    [1, 2, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d']],
    [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
    [
      1,
      5,
      [
        '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      ],
    ],
    [
      0,
      8,
      [
        '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      ],
    ],
    [
      5,
      8,
      [
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
        'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    ],
  ])('inclusion proof for leaf %i of %i', (index, size, expected) => {
    const proof = inclusionProofRanges(index, size).map((r) => hashRange(r, vectorGet));
    expect(proof.map(hex)).toEqual(expected);
    expect(verifyInclusion(vectorLeaves[index], index, size, proof, hd(expectedRoots[size]))).toBe(true);
  });

  it.each([
    [1, 1, []],
    [
      1,
      8,
      [
        '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
      ],
    ],
    [
      2,
      5,
      [
        '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
        'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      ],
    ],
    [
      6,
      8,
      [
        '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
        'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
        'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
      ],
    ],
  ])('consistency proof from %i to %i', (size1, size2, expected) => {
    const proof = consistencyProofRanges(size1, size2).map((r) => hashRange(r, vectorGet));
    expect(proof.map(hex)).toEqual(expected);
    expect(verifyConsistency(size1, size2, proof, hd(expectedRoots[size1]), hd(expectedRoots[size2]))).toBe(true);
  });
});

describe('rootOf', () => {
  it('is the RFC MTH for every size up to 300', () => {
    for (let n = 0; n <= 300; n++) expect(hex(rootOf(leaves.slice(0, n)))).toBe(hex(mthOf(0, n)));
  });
});

describe('inclusion proofs, every leaf of every tree of 1..70 leaves', () => {
  it('are PATH(m, D[n]), verify, and fail when tampered with', () => {
    // Failures are collected rather than asserted one by one: ~100k checks.
    const failures: string[] = [];
    const fails = (ok: boolean, what: string, m: number, n: number) => {
      if (ok) failures.push(`${what} verified for leaf ${m} of ${n}`);
    };
    for (let n = 1; n <= LIMIT; n++) {
      for (let m = 0; m < n; m++) {
        const proof = inclusionProofRanges(m, n).map((r) => hashRange(r, get));
        if (proof.map(hex).join() !== refPath(m, 0, n, mthOf).map(hex).join()) failures.push(`PATH(${m}, ${n})`);
        if (!verifyInclusion(leaves[m], m, n, proof, roots[n])) failures.push(`leaf ${m} of ${n} did not verify`);

        for (let i = 0; i < proof.length; i++) {
          const bad = [...proof];
          bad[i] = flip(proof[i], i + m);
          fails(verifyInclusion(leaves[m], m, n, bad, roots[n]), `flipped element ${i}`, m, n);
        }
        fails(verifyInclusion(flip(leaves[m], n), m, n, proof, roots[n]), 'flipped leaf', m, n);
        fails(verifyInclusion(leaves[m], m, n, proof, flip(roots[n], m)), 'flipped root', m, n);
        // The wrong index. (Checked offline for every other index; here its neighbours and the edges.)
        for (const w of new Set([0, 1, m - 1, m + 1, m + 2, Math.floor(m / 2), n - 1, n, n + 1])) {
          if (w !== m && w >= 0) fails(verifyInclusion(leaves[m], w, n, proof, roots[n]), `index ${w}`, m, n);
        }
        // The wrong size, with the root of a tree of that size (every size checked offline).
        for (const w of [n - 1, n + 1, n + 2, 2 * n]) {
          if (w > m && w !== n && w < roots.length) {
            fails(verifyInclusion(leaves[m], m, w, proof, roots[w]), `size ${w}`, m, n);
          }
        }
        // Too short, too long.
        if (proof.length > 0) {
          fails(verifyInclusion(leaves[m], m, n, proof.slice(1), roots[n]), 'proof without its first', m, n);
          fails(verifyInclusion(leaves[m], m, n, proof.slice(0, -1), roots[n]), 'proof without its last', m, n);
        }
        fails(verifyInclusion(leaves[m], m, n, [...proof, roots[n]], roots[n]), 'proof with an extra', m, n);
      }
    }
    expect(failures).toEqual([]);
  });

  it('verifyInclusion returns false, never throws, on malformed input', () => {
    const proof = inclusionProofRanges(3, 7).map((r) => hashRange(r, get));
    expect(verifyInclusion(leaves[3], 3, 7, proof, roots[7])).toBe(true);
    expect(verifyInclusion(leaves[3].subarray(1), 3, 7, proof, roots[7])).toBe(false);
    expect(verifyInclusion(leaves[3], 3, 7, proof, roots[7].subarray(0, 31))).toBe(false);
    expect(verifyInclusion(leaves[3], 3, 7, [proof[0], Buffer.alloc(33), proof[2]], roots[7])).toBe(false);
    expect(verifyInclusion(leaves[3], 3, 7, [proof[0], undefined as any, proof[2]], roots[7])).toBe(false);
    expect(verifyInclusion(leaves[3], 3.5, 7, proof, roots[7])).toBe(false);
    expect(verifyInclusion(leaves[3], -1, 7, proof, roots[7])).toBe(false);
    expect(verifyInclusion(leaves[3], 3, Number.NaN, proof, roots[7])).toBe(false);
    expect(verifyInclusion(leaves[3], 3, 2 ** 60, proof, roots[7])).toBe(false);
    expect(verifyInclusion(leaves[0], 0, 0, [], EMPTY_ROOT)).toBe(false);
    expect(verifyInclusion(leaves[0], 0, 1, [], leaves[0])).toBe(true);
    expect(verifyInclusion(leaves[0], 0, 3, [leaves[1]], roots[2])).toBe(false); // proof too short for size 3
  });

  it('inclusionProofRanges rejects an index outside the tree', () => {
    expect(() => inclusionProofRanges(0, 0)).toThrow(RangeError);
    expect(() => inclusionProofRanges(5, 5)).toThrow(RangeError);
    expect(() => inclusionProofRanges(-1, 5)).toThrow(RangeError);
    expect(() => inclusionProofRanges(1.5, 5)).toThrow(RangeError);
    expect(inclusionProofRanges(0, 1)).toEqual([]);
  });
});

describe('consistency proofs, every 1 <= m <= n <= 70', () => {
  /** Roots of every prefix of the leaves with leaf `changed` replaced. */
  const alteredRoots = (changed: number): Buffer[] => {
    const altered = [...leaves.slice(0, LIMIT)];
    altered[changed] = leafHash(Buffer.from(`altered ${changed}`));
    const range = new CompactRange();
    const out = [range.root()];
    for (const h of altered) {
      range.append(h);
      out.push(range.root());
    }
    return out;
  };
  const altered = Array.from({ length: LIMIT }, (_, i) => alteredRoots(i));

  it('are PROOF(m, D[n]), verify, and fail when tampered with', () => {
    const failures: string[] = [];
    const fails = (ok: boolean, what: string, m: number, n: number) => {
      if (ok) failures.push(`${what} verified for ${m} -> ${n}`);
    };
    for (let n = 1; n <= LIMIT; n++) {
      for (let m = 1; m <= n; m++) {
        const proof = consistencyProofRanges(m, n).map((r) => hashRange(r, get));
        const ref = refSubproof(m, 0, n, true, mthOf);
        if (proof.map(hex).join() !== ref.map(hex).join()) failures.push(`PROOF(${m}, ${n})`);
        if ((proof.length === 0) !== (m === n)) failures.push(`PROOF(${m}, ${n}) has ${proof.length} elements`);
        if (!verifyConsistency(m, n, proof, roots[m], roots[n])) failures.push(`${m} -> ${n} did not verify`);

        for (let i = 0; i < proof.length; i++) {
          const bad = [...proof];
          bad[i] = flip(proof[i], i + n);
          fails(verifyConsistency(m, n, bad, roots[m], roots[n]), `flipped element ${i}`, m, n);
        }
        fails(verifyConsistency(m, n, proof, flip(roots[m], 1), roots[n]), 'flipped root1', m, n);
        fails(verifyConsistency(m, n, proof, roots[m], flip(roots[n], 2)), 'flipped root2', m, n);
        // A tree whose leaf at some index i < m differs (every i checked offline): its roots against the other tree's.
        // (Both roots of the altered tree may verify: if no proof element covers leaf i, the
        // altered tree has the very same proof.)
        for (const i of new Set([0, Math.floor(m / 3), Math.floor(m / 2), m - 1])) {
          fails(verifyConsistency(m, n, proof, altered[i][m], roots[n]), `root1 with leaf ${i} altered`, m, n);
          if (m < n) {
            fails(verifyConsistency(m, n, proof, roots[m], altered[i][n]), `root2 with leaf ${i} altered`, m, n);
          }
        }
        // Other sizes, each with its own roots (every pair of sizes checked offline).
        for (const [a, b] of [
          [m - 1, n],
          [m + 1, n],
          [m, n - 1],
          [m, n + 1],
          [m + 1, n + 1],
        ]) {
          if (a >= 1 && a <= b && b <= LIMIT + 1 && (a !== b || proof.length > 0) && (a !== m || b !== n)) {
            fails(verifyConsistency(a, b, proof, roots[a], roots[b]), `sizes ${a} -> ${b}`, m, n);
          }
        }
        // Too short, too long.
        if (proof.length > 0) {
          fails(verifyConsistency(m, n, proof.slice(0, -1), roots[m], roots[n]), 'proof without its last', m, n);
          fails(verifyConsistency(m, n, proof.slice(1), roots[m], roots[n]), 'proof without its first', m, n);
        }
        fails(verifyConsistency(m, n, [...proof, roots[n]], roots[m], roots[n]), 'proof with an extra', m, n);
      }
    }
    expect(failures).toEqual([]);
  });

  it('verifyConsistency: equal sizes, size 0 and malformed input', () => {
    expect(verifyConsistency(5, 5, [], roots[5], roots[5])).toBe(true);
    expect(verifyConsistency(5, 5, [], roots[5], roots[6])).toBe(false);
    expect(verifyConsistency(5, 5, [roots[5]], roots[5], roots[5])).toBe(false);
    expect(verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT)).toBe(false);
    expect(verifyConsistency(0, 5, [], EMPTY_ROOT, roots[5])).toBe(false);
    expect(verifyConsistency(6, 5, [], roots[6], roots[5])).toBe(false);
    expect(verifyConsistency(3, 7, [], roots[3], roots[7])).toBe(false);
    // hashes that match, but a size2 the proof does not reach (the final sn == 0 check)
    expect(verifyConsistency(1, 2, [leaves[1]], roots[1], roots[2])).toBe(true);
    expect(verifyConsistency(1, 3, [leaves[1]], roots[1], roots[2])).toBe(false);
    expect(verifyConsistency(1, 5, [leaves[1], mthOf(2, 4)], roots[1], roots[4])).toBe(false);
    const proof = consistencyProofRanges(3, 7).map((r) => hashRange(r, get));
    expect(verifyConsistency(3, 7, proof, roots[3], roots[7])).toBe(true);
    expect(verifyConsistency(3, 7, [proof[0].subarray(1), ...proof.slice(1)], roots[3], roots[7])).toBe(false);
    expect(verifyConsistency(3, 7, [proof[0], null as any], roots[3], roots[7])).toBe(false);
    expect(verifyConsistency(3, 7, proof, Buffer.alloc(0), roots[7])).toBe(false);
    expect(verifyConsistency(3, 7.5, proof, roots[3], roots[7])).toBe(false);
    expect(verifyConsistency(3, 2 ** 60, proof, roots[3], roots[7])).toBe(false);
  });

  it('consistencyProofRanges rejects m == 0 and m > n', () => {
    expect(() => consistencyProofRanges(0, 5)).toThrow(RangeError);
    expect(() => consistencyProofRanges(0, 0)).toThrow(RangeError);
    expect(() => consistencyProofRanges(6, 5)).toThrow(RangeError);
    expect(() => consistencyProofRanges(1.5, 5)).toThrow(RangeError);
    expect(consistencyProofRanges(5, 5)).toEqual([]);
  });
});

describe('rangeNodes and hashRange', () => {
  const proofRanges = new Map<string, LeafRange>();
  const addRange = (r: LeafRange) => proofRanges.set(`${r.start}-${r.end}`, r);
  for (let n = 1; n <= LIMIT; n++) {
    addRange({ start: 0, end: n });
    for (let m = 0; m < n; m++) inclusionProofRanges(m, n).forEach(addRange);
    for (let m = 1; m <= n; m++) consistencyProofRanges(m, n).forEach(addRange);
  }

  it('the ranges of all proofs are exactly those rangeNodes accepts', () => {
    const accepted: string[] = [];
    for (let end = 1; end <= LIMIT; end++) {
      for (let start = 0; start < end; start++) {
        let ceil = 1;
        while (ceil < end - start) ceil *= 2;
        if (start % ceil === 0) accepted.push(`${start}-${end}`);
        else expect(() => rangeNodes({ start, end })).toThrow(RangeError);
      }
    }
    expect([...proofRanges.keys()].sort()).toEqual(accepted.sort());
  });

  it('lists perfect subtrees tiling the range, and hashRange needs exactly those', () => {
    const failures: string[] = [];
    for (const [name, range] of proofRanges) {
      const ns = rangeNodes(range);
      let pos = range.start;
      let prevLevel = Infinity;
      for (const node of ns) {
        const r = nodeRange(node);
        const perfect = Number.isInteger(node.level) && node.level >= 0 && Number.isInteger(node.index);
        // contiguous, one per set bit of the length, largest first
        if (!perfect || r.start !== pos || node.level >= prevLevel) failures.push(`${name}: ${key(node)}`);
        prevLevel = node.level;
        pos = r.end;
      }
      if (pos !== range.end) failures.push(`${name}: nodes end at ${pos}`);

      const only = new Map(ns.map((n) => [key(n), nodes.get(key(n))!]));
      const asked: string[] = [];
      const h = hashRange(range, (n) => {
        asked.push(key(n));
        return only.get(key(n));
      });
      if (!h.equals(mthOf(range.start, range.end))) failures.push(`${name}: hash`);
      if (asked.sort().join() !== [...only.keys()].sort().join()) failures.push(`${name}: asked for ${asked}`);
    }
    expect(failures).toEqual([]);
  });

  it('hashRange names a missing node, and propagates errors from get', () => {
    expect(() => hashRange({ start: 0, end: 6 }, (n) => (n.level === 1 ? undefined : get(n)))).toThrow(
      'Merkle node (level 1, index 2) = leaves [4, 6) is missing',
    );
    expect(() => hashRange({ start: 0, end: 6 }, () => Buffer.alloc(31))).toThrow(/not a 32-byte hash/);
    expect(() =>
      hashRange({ start: 0, end: 6 }, () => {
        throw new TypeError('store offline');
      }),
    ).toThrow(TypeError);
  });

  it('empty, single-leaf and misaligned ranges', () => {
    expect(rangeNodes({ start: 4, end: 4 })).toEqual([]);
    expect(hex(hashRange({ start: 0, end: 0 }, get))).toBe(hex(EMPTY_ROOT));
    expect(rangeNodes({ start: 9, end: 10 })).toEqual([{ level: 0, index: 9 }]);
    expect(rangeNodes({ start: 8, end: 14 })).toEqual([
      { level: 2, index: 2 },
      { level: 1, index: 6 },
    ]);
    expect(() => rangeNodes({ start: 2, end: 5 })).toThrow(RangeError); // length 3 needs a multiple of 4
    expect(() => rangeNodes({ start: 1, end: 3 })).toThrow(RangeError);
    expect(() => rangeNodes({ start: 5, end: 4 })).toThrow(RangeError);
    expect(() => rangeNodes({ start: 0, end: 2 ** 54 })).toThrow(RangeError);
  });

  it('rightEdge is one perfect subtree per set bit of the size', () => {
    expect(rightEdge(0)).toEqual([]);
    expect(rightEdge(1)).toEqual([{ level: 0, index: 0 }]);
    expect(rightEdge(13)).toEqual([
      { level: 3, index: 0 },
      { level: 2, index: 2 },
      { level: 0, index: 12 },
    ]);
    expect(rightEdge(2 ** 53)).toEqual([{ level: 53, index: 0 }]);
    expect(rightEdge(2 ** 53 - 1)).toHaveLength(53);
    expect(rightEdge(2 ** 40 + 2 ** 33 + 5)).toEqual([
      { level: 40, index: 0 },
      { level: 33, index: 2 ** 7 },
      { level: 2, index: (2 ** 40 + 2 ** 33) / 4 },
      { level: 0, index: 2 ** 40 + 2 ** 33 + 4 },
    ]);
  });
});

describe('CompactRange', () => {
  it('root() is the MTH of every prefix 0..300, and onNode reports exactly the perfect subtrees', () => {
    const range = new CompactRange();
    const reported = new Map<string, Buffer>();
    expect(range.size).toBe(0);
    expect(hex(range.root())).toBe(hex(EMPTY_ROOT));
    for (let n = 1; n <= 300; n++) {
      const now: NodeId[] = [];
      range.append(leaves[n - 1], (node, hash) => {
        expect(reported.has(key(node))).toBe(false);
        reported.set(key(node), hash);
        now.push(node);
      });
      expect(range.size).toBe(n);
      expect(hex(range.root())).toBe(hex(mthOf(0, n)));
      // each reported node is completed by this leaf: it ends at n, lowest level first
      now.forEach((node, i) => {
        expect(node.level).toBe(i + 1);
        expect(nodeRange(node).end).toBe(n);
      });
    }
    const naive = perfectNodes(leaves);
    const internal = [...naive.keys()].filter((k) => !k.startsWith('0:'));
    expect([...reported.keys()].sort()).toEqual(internal.sort());
    for (const [k, h] of reported) expect(hex(h)).toBe(hex(naive.get(k)!));
  });

  it('edge() is the hashes of rightEdge(size); resuming from (size, edge) gives the same roots', () => {
    const naive = perfectNodes(leaves);
    const full = new CompactRange();
    const finalRoot = hex(mthOf(0, 300));
    for (let n = 0; n <= 300; n++) {
      expect(full.edge().map(hex)).toEqual(rightEdge(n).map((node) => hex(naive.get(key(node))!)));
      const resumed = new CompactRange(n, full.edge());
      expect(resumed.size).toBe(n);
      expect(hex(resumed.root())).toBe(hex(full.root()));
      if (n % 7 === 0 || n < 20) {
        const seen: string[] = [];
        for (let i = n; i < 300; i++) resumed.append(leaves[i], (node) => seen.push(key(node)));
        expect(hex(resumed.root())).toBe(finalRoot);
        const expected = [...naive.keys()].filter((k) => {
          const [level, index] = k.split(':').map(Number);
          return level >= 1 && nodeRange({ level, index }).end > n;
        });
        expect(seen.sort()).toEqual(expected.sort());
      }
      if (n < 300) full.append(leaves[n]);
    }
  });

  it('keeps its own copies of the hashes it is given and returns', () => {
    const leaf = Buffer.from(leaves[0]);
    const range = new CompactRange();
    range.append(leaf);
    leaf.fill(0);
    range.root().fill(0);
    range.edge()[0].fill(0);
    expect(hex(range.root())).toBe(hex(leaves[0]));
    const edge = [Buffer.from(leaves[1])];
    const resumed = new CompactRange(1, edge);
    edge[0].fill(0);
    expect(hex(resumed.root())).toBe(hex(leaves[1]));
  });

  it('rejects a wrong edge, a bad leaf hash, and a full tree; onNode throwing leaves it unchanged', () => {
    expect(() => new CompactRange(3, [leaves[0]])).toThrow(RangeError);
    expect(() => new CompactRange(0, [leaves[0]])).toThrow(RangeError);
    expect(() => new CompactRange(1, [Buffer.alloc(31)])).toThrow(RangeError);
    expect(() => new CompactRange(-1)).toThrow(RangeError);
    expect(() => new CompactRange(2 ** 53 + 2)).toThrow(RangeError);
    expect(() => new CompactRange().append(Buffer.alloc(33))).toThrow(RangeError);
    expect(() => new CompactRange(2 ** 53, [leaves[0]]).append(leaves[1])).toThrow(RangeError);

    const range = new CompactRange();
    for (let i = 0; i < 7; i++) range.append(leaves[i]);
    expect(() =>
      range.append(leaves[7], () => {
        throw new Error('store failed');
      }),
    ).toThrow('store failed');
    expect(range.size).toBe(7);
    expect(hex(range.root())).toBe(hex(mth(leaves.slice(0, 7))));
    range.append(leaves[7]);
    expect(hex(range.root())).toBe(hex(mth(leaves.slice(0, 8))));
  });
});

describe('sizes beyond 2^32', () => {
  // A virtual tree whose leaves are all equal: the perfect subtree at level l hashes to uniform[l].
  const uniform = [leafHash(Buffer.from('same'))];
  for (let l = 1; l <= 53; l++) uniform.push(nodeHash(uniform[l - 1], uniform[l - 1]));
  const uget = (n: NodeId): Buffer => uniform[n.level];
  const uroot = (size: number): Buffer => hashRange({ start: 0, end: size }, uget);

  /** PATH / SUBPROOF ranges with BigInt arithmetic, as the reference for big sizes. */
  const bsplit = (n: bigint): bigint => {
    let k = 1n;
    while (k * 2n < n) k *= 2n;
    return k;
  };
  const bigPath = (m: bigint, start: bigint, end: bigint): string[] => {
    if (end - start <= 1n) return [];
    const mid = start + bsplit(end - start);
    return m < mid ? [...bigPath(m, start, mid), `${mid}-${end}`] : [...bigPath(m, mid, end), `${start}-${mid}`];
  };
  const bigSubproof = (m: bigint, start: bigint, end: bigint, b: boolean): string[] => {
    if (m === end) return b ? [] : [`${start}-${end}`];
    const mid = start + bsplit(end - start);
    return m <= mid
      ? [...bigSubproof(m, start, mid, b), `${mid}-${end}`]
      : [...bigSubproof(m, mid, end, false), `${start}-${mid}`];
  };
  const str = (r: LeafRange): string => `${r.start}-${r.end}`;

  const sizes = [2 ** 31, 2 ** 31 + 1, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40 + 12345, 2 ** 53 - 1, MAX_TREE_SIZE];

  it.each(sizes)('inclusion and consistency proofs in a tree of %i leaves', (n) => {
    const root = uroot(n);
    for (const m of [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 33 + 7, Math.floor(n / 3), n - 2, n - 1]) {
      if (m >= n) continue;
      const ranges = inclusionProofRanges(m, n);
      expect(ranges.map(str)).toEqual(bigPath(BigInt(m), 0n, BigInt(n)));
      const proof = ranges.map((r) => hashRange(r, uget));
      expect(verifyInclusion(uniform[0], m, n, proof, root)).toBe(true);
      expect(verifyInclusion(uniform[0], m, n, proof, uroot(n - 1))).toBe(false);

      const size1 = m + 1;
      const cranges = consistencyProofRanges(size1, n);
      expect(cranges.map(str)).toEqual(bigSubproof(BigInt(size1), 0n, BigInt(n), true));
      const cproof = cranges.map((r) => hashRange(r, uget));
      expect(verifyConsistency(size1, n, cproof, uroot(size1), root)).toBe(true);
      if (cproof.length > 0) expect(verifyConsistency(size1, n, cproof, uroot(size1), flip(root, 0))).toBe(false);
    }
  });

  it.each([2 ** 32 - 3, 2 ** 40 - 1, 2 ** 53 - 5])('CompactRange continues a tree of %i leaves', (size) => {
    const range = new CompactRange(size, rightEdge(size).map(uget));
    expect(hex(range.root())).toBe(hex(uroot(size)));
    for (let i = 1; i <= 5; i++) {
      const n = size + i;
      range.append(uniform[0], (node, hash) => {
        expect(nodeRange(node).end).toBe(n);
        expect(hex(hash)).toBe(hex(uget(node)));
      });
      expect(range.size).toBe(n);
      expect(hex(range.root())).toBe(hex(uroot(n)));
    }
  });
});
