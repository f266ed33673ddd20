import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type Client } from 'pg';
import { signCheckpoint, verifyCheckpoint } from '../src/execution-log/checkpoint';
import { canonicalColumnsSql, entryLeafHash } from '../src/execution-log/entry-encoding';
import { TreeTamperedError } from '../src/execution-log/log-integrator';
import { leafHash, verifyConsistency, verifyInclusion } from '../src/execution-log/merkle';
import { makeTrader } from './factories';
import {
  COMPLIANCE,
  createTestDatabase,
  onTamperableCopy,
  SERVICE,
  startTestApp,
  type TestApp,
  traderPrincipal,
} from './harness';
import { OTHER_LOG_KEY, TEST_LOG_KEY } from './log-key';

/**
 * Issue 8: the verifiable log. A base database gets a trail through the API and three signed
 * checkpoints; each tampering case runs on a copy of it, done as a superuser with the triggers
 * bypassed (`session_replication_role = replica`), and must be named by verifyLedger and, where an
 * order is involved, by verifyExecutionLog.
 */
let base: Awaited<ReturnType<typeof createTestDatabase>>;
const orders: Record<'filled' | 'partial' | 'other' | 'late', string> = {
  filled: '',
  partial: '',
  other: '',
  late: '',
};
let traderId = '';
const notes: string[] = [];

const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`;
const LEDGER = `query($c: String) { verifyLedger(checkpoint: $c) { valid treeSize checkpointSize checkpointsVerified
  entriesVerified pendingEntries moreProblems
  firstProblem { kind message leafIndex entryId orderId seq } problems { kind message leafIndex entryId orderId seq } } }`;
const VERIFY = `query($o: ID!) { verifyExecutionLog(orderId: $o) { valid entries provenEntries pendingEntries checkpointSize
  firstBrokenSeq problem problems { kind message leafIndex entryId seq } } }`;
const LATEST = `{ latestCheckpoint { treeSize rootHash note signature previousTreeSize verified timestamp } }`;

async function ok<T = any>(app: TestApp, query: string, variables?: Record<string, unknown>, who = SERVICE) {
  const res = await app.run(query, variables, who);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

let n = 0;
async function submit(app: TestApp, quantity: string): Promise<string> {
  n += 1;
  const input = {
    traderId,
    clientOrderId: `V-${n}`,
    symbol: 'MSFT',
    side: 'BUY',
    orderType: 'MARKET',
    timeInForce: 'DAY',
    quantity,
  };
  return (await ok(app, SUBMIT, { input })).submitOrder.id;
}
async function fill(app: TestApp, orderId: string, quantity: string, second: number): Promise<void> {
  n += 1;
  const executedAt = new Date(Date.UTC(2026, 5, 1, 14, 0, second)).toISOString();
  await ok(app, RECORD, { input: { orderId, execId: `VX-${n}`, quantity, price: '410.5', executedAt } });
}

beforeAll(async () => {
  base = await createTestDatabase();
  const app = await startTestApp(base.url);
  try {
    traderId = (await makeTrader(app.dataSource.manager)).id;
    orders.filled = await submit(app, '10');
    await ok(app, `mutation($id: ID!) { acceptOrder(orderId: $id) { id } }`, { id: orders.filled });
    await fill(app, orders.filled, '4', 1);
    await fill(app, orders.filled, '6', 2);
    orders.partial = await submit(app, '10');
    await fill(app, orders.partial, '3', 3);
    await app.integrator.integrateAll();
    notes.push((await ok(app, LATEST)).latestCheckpoint.note);
    orders.other = await submit(app, '5');
    await fill(app, orders.other, '5', 4);
    await app.integrator.integrateAll();
    notes.push((await ok(app, LATEST)).latestCheckpoint.note);
    orders.late = await submit(app, '2');
    await fill(app, orders.late, '1', 5);
    await app.integrator.integrateAll();
    notes.push((await ok(app, LATEST)).latestCheckpoint.note);
  } finally {
    await app.close();
  }
});
afterAll(async () => {
  await base?.drop();
});

/** A copy of the base database, an app on it, a superuser connection with triggers bypassed, and an order's entries. */
function scenario(
  work: (ctx: { app: TestApp; su: Client; entries: (orderId: string) => Promise<Entry[]> }) => Promise<void>,
  options: { checkpointFile?: string } = {},
): Promise<void> {
  return onTamperableCopy(
    base.name,
    ({ app, su }) =>
      work({
        app,
        su,
        entries: async (orderId) =>
          (
            await su.query(
              `SELECT id, seq, action, hash, prev_hash FROM execution_logs WHERE order_id = $1 ORDER BY seq`,
              [orderId],
            )
          ).rows,
      }),
    options,
  );
}
interface Entry {
  id: string;
  seq: number;
  action: string;
  hash: string;
  prev_hash: string | null;
}

const ledger = async (app: TestApp, checkpoint?: string) =>
  (await ok(app, LEDGER, { c: checkpoint ?? null }, COMPLIANCE)).verifyLedger;
const verifyOrder = async (app: TestApp, orderId: string) =>
  (await ok(app, VERIFY, { o: orderId }, COMPLIANCE)).verifyExecutionLog;

/** Recomputes an order's chain from `fromSeq` on, as an attacker who knows the hash function would. */
async function rechain(su: Client, orderId: string): Promise<void> {
  await su.query(
    `DO $$ DECLARE r record; p text := NULL; BEGIN
       FOR r IN SELECT id FROM execution_logs WHERE order_id = '${orderId}' ORDER BY seq LOOP
         UPDATE execution_logs l SET prev_hash = p, hash = execution_log_hash(p, l) WHERE l.id = r.id RETURNING hash INTO p;
       END LOOP; END $$`,
  );
}

/** Inserts an entry as the server would, but without its key: no valid seal. */
async function forge(su: Client, orderId: string, seq: number, prevHash: string | null): Promise<string> {
  const { rows } = await su.query(
    `INSERT INTO execution_logs (order_id, trader_id, seq, action, from_status, to_status, reason, actor, source,
       occurred_at, recorded_at, prev_hash, hash, tx, seal)
     VALUES ($1, $2, $3, 'RECOVERED', 'FILLED', 'FILLED', 'forged', 'system', 'API', now(), clock_timestamp(), $4,
       repeat('0', 64), pg_current_xact_id()::text::bigint, repeat('a', 64))
     RETURNING id`,
    [orderId, traderId, seq, prevHash],
  );
  await su.query(`UPDATE execution_logs l SET hash = execution_log_hash(prev_hash, l) WHERE id = $1`, [rows[0].id]);
  return rows[0].id;
}

describe('an intact log', () => {
  it('verifies, proves each entry and each checkpoint, and serves its key and checkpoint', async () => {
    await scenario(async ({ app }) => {
      const result = await ledger(app, notes[0]);
      expect(result).toMatchObject({ valid: true, firstProblem: null, problems: [], pendingEntries: 0 });
      expect(result.checkpointsVerified).toBe(3);
      expect(result.treeSize).toBe(result.checkpointSize);
      for (const id of Object.values(orders)) {
        expect(await verifyOrder(app, id)).toMatchObject({ valid: true, problems: [], pendingEntries: 0 });
      }
      const latest = (await ok(app, LATEST)).latestCheckpoint;
      expect(latest).toMatchObject({ verified: true, treeSize: result.treeSize });
      expect(verifyCheckpoint(latest.note, TEST_LOG_KEY).treeSize).toBe(latest.treeSize);

      // Inclusion proofs of a trader's own entries, checked here as any client would.
      const res = await ok(
        app,
        `query($o: ID!) { order(id: $o) { executionLogs { seq leafIndex hash inclusionProof { leafIndex treeSize leafHash hashes checkpoint { rootHash } } } } }`,
        { o: orders.filled },
        traderPrincipal(traderId),
      );
      const logs = res.order.executionLogs;
      expect(logs.length).toBeGreaterThan(3);
      for (const l of logs) {
        const p = l.inclusionProof;
        expect(p.leafIndex).toBe(l.leafIndex);
        const proof = p.hashes.map((h: string) => Buffer.from(h, 'hex'));
        const root = Buffer.from(p.checkpoint.rootHash, 'hex');
        expect(verifyInclusion(Buffer.from(p.leafHash, 'hex'), p.leafIndex, p.treeSize, proof, root)).toBe(true);
        expect(verifyInclusion(leafHash(Buffer.from('other')), p.leafIndex, p.treeSize, proof, root)).toBe(false);
      }
      // Consistency of the first checkpoint with the latest.
      const first = verifyCheckpoint(notes[0], TEST_LOG_KEY);
      const c = (
        await ok(
          app,
          `query($f: Int!) { consistencyProof(fromSize: $f) { hashes from { treeSize rootHash } to { treeSize rootHash } } }`,
          { f: first.treeSize },
        )
      ).consistencyProof;
      const hashes = c.hashes.map((h: string) => Buffer.from(h, 'hex'));
      expect(
        verifyConsistency(c.from.treeSize, c.to.treeSize, hashes, first.rootHash, Buffer.from(c.to.rootHash, 'hex')),
      ).toBe(true);
      expect((await ok(app, `{ logSigningKey { verifierKey } }`)).logSigningKey.verifierKey).toBe(
        TEST_LOG_KEY.verifierKey,
      );
    });
  });

  it('refuses a checkpoint signed with another key, answers NOT_FOUND for an unknown order, and keeps verifyLedger from traders', async () => {
    await scenario(async ({ app }) => {
      const mine = verifyCheckpoint(notes[2], TEST_LOG_KEY);
      const forged = signCheckpoint(OTHER_LOG_KEY, mine.treeSize, mine.rootHash, mine.timestamp, mine.previous);
      const res = await app.run(LEDGER, { c: forged.note }, COMPLIANCE);
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.errors?.[0].message).toMatch(/not signed by this log’s key|does not verify/);
      const unknown = await app.run(VERIFY, { o: '00000000-0000-4000-8000-000000000000' }, COMPLIANCE);
      expect(unknown.errors?.[0].extensions?.code).toBe('NOT_FOUND');
      const trader = await app.run(LEDGER, {}, traderPrincipal(traderId));
      expect(trader.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    });
  });
});

describe('tampering as a superuser with the triggers bypassed, after a checkpoint covers the entries', () => {
  it('edit an entry', async () => {
    await scenario(async ({ app, su, entries }) => {
      const e = (await entries(orders.filled))[1];
      await su.query(`UPDATE execution_logs SET reason = 'edited' WHERE id = $1`, [e.id]);
      const l = await ledger(app);
      expect(l.valid).toBe(false);
      expect(l.firstProblem).toMatchObject({ kind: 'ALTERED', entryId: e.id, seq: e.seq });
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: e.seq });
      expect(v.problems.map((p: any) => p.kind)).toEqual(expect.arrayContaining(['CHAIN_BROKEN', 'ALTERED']));
    });
  });

  it('delete a middle entry', async () => {
    await scenario(async ({ app, su, entries }) => {
      const e = (await entries(orders.filled))[1];
      await su.query(`DELETE FROM execution_logs WHERE id = $1`, [e.id]);
      expect((await ledger(app)).firstProblem).toMatchObject({ kind: 'MISSING', entryId: e.id, seq: e.seq });
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: e.seq });
      expect(v.problems).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'MISSING', seq: e.seq })]));
    });
  });

  it('delete the last entry of a FILLED order', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.filled);
      const last = all[all.length - 1];
      await su.query(`DELETE FROM execution_logs WHERE id = $1`, [last.id]);
      expect((await ledger(app)).firstProblem).toMatchObject({ kind: 'MISSING', entryId: last.id });
      const v = await verifyOrder(app, orders.filled);
      expect(v.valid).toBe(false);
      expect(v.problems).toEqual(
        expect.arrayContaining([expect.objectContaining({ kind: 'MISSING', seq: last.seq, entryId: last.id })]),
      );
    });
  });

  it('delete the FILLED entry and everything after it: the order state disagrees with its log', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.filled);
      const filled = all.find((e) => e.action === 'FILLED')!;
      await su.query(`DELETE FROM execution_logs WHERE order_id = $1 AND seq >= $2`, [orders.filled, filled.seq]);
      // Even with the tree's leaves of the order gone too, the order's state names the gap.
      await su.query(`DELETE FROM log_leaves WHERE order_id = $1 AND seq >= $2`, [orders.filled, filled.seq]);
      const v = await verifyOrder(app, orders.filled);
      expect(v.valid).toBe(false);
      expect(v.problems.map((p: any) => p.kind)).toEqual(
        expect.arrayContaining(['ORDER_LOG_MISMATCH', 'TREE_ALTERED']),
      );
      expect((await ledger(app)).valid).toBe(false);
    });
  });

  it('delete every entry of an order', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.partial);
      await su.query(`DELETE FROM execution_logs WHERE order_id = $1`, [orders.partial]);
      const l = await ledger(app);
      expect(l.firstProblem).toMatchObject({ kind: 'MISSING', entryId: all[0].id, orderId: orders.partial });
      expect(l.problems.filter((p: any) => p.kind === 'MISSING')).toHaveLength(all.length);
      const v = await verifyOrder(app, orders.partial);
      expect(v).toMatchObject({ valid: false, entries: 0, firstBrokenSeq: 1 });
    });
  });

  it('append a forged entry with a recomputed hash', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.filled);
      const last = all[all.length - 1];
      const forged = await forge(su, orders.filled, last.seq + 1, last.hash);
      // The chain alone is satisfied...
      const chain = await su.query(
        `SELECT bool_and(hash = execution_log_hash(prev_hash, l)) AS ok FROM execution_logs l WHERE order_id = $1`,
        [orders.filled],
      );
      expect(chain.rows[0].ok).toBe(true);
      // ...but the integrator refuses it, and both verifications name it.
      const rounds = await app.integrator.integrateAll();
      expect(rounds.flatMap((r) => r.refused)).toEqual([forged]);
      const l = await ledger(app);
      expect(l.firstProblem).toMatchObject({ kind: 'INSERTED', entryId: forged });
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: last.seq + 1 });
      expect(v.problems[0]).toMatchObject({ kind: 'INSERTED', entryId: forged });
    });
  });

  it('edit, then re-chain the rest of the chain', async () => {
    await scenario(async ({ app, su, entries }) => {
      const e = (await entries(orders.filled))[1];
      await su.query(`UPDATE execution_logs SET reason = 'edited' WHERE id = $1`, [e.id]);
      await rechain(su, orders.filled);
      const v = await verifyOrder(app, orders.filled);
      expect(v.problems.some((p: any) => p.kind === 'CHAIN_BROKEN')).toBe(false);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: e.seq });
      expect(v.problems[0]).toMatchObject({ kind: 'ALTERED', entryId: e.id });
      expect((await ledger(app)).firstProblem).toMatchObject({ kind: 'ALTERED', entryId: e.id });
    });
  });

  it('delete, then re-chain', async () => {
    await scenario(async ({ app, su, entries }) => {
      const e = (await entries(orders.filled))[1];
      await su.query(`DELETE FROM execution_logs WHERE id = $1`, [e.id]);
      await rechain(su, orders.filled);
      expect((await ledger(app)).firstProblem).toMatchObject({ kind: 'MISSING', entryId: e.id });
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: e.seq });
    });
  });

  it('insert in the middle, renumber and re-chain', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.filled);
      await su.query(`UPDATE execution_logs SET seq = seq + 1000 WHERE order_id = $1 AND seq >= 2`, [orders.filled]);
      await su.query(`UPDATE execution_logs SET seq = seq - 999 WHERE order_id = $1 AND seq >= 1000`, [orders.filled]);
      const forged = await forge(su, orders.filled, 2, all[0].hash);
      await rechain(su, orders.filled);
      const l = await ledger(app);
      expect(l.firstProblem).toMatchObject({ kind: 'REORDERED', entryId: all[1].id });
      expect(l.problems).toEqual(
        expect.arrayContaining([expect.objectContaining({ kind: 'INSERTED', entryId: forged })]),
      );
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: 2 });
      expect(v.problems[0]).toMatchObject({ kind: 'INSERTED', entryId: forged });
    });
  });

  it('swap two entries and re-chain', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.filled);
      const [a, b] = [all[1], all[2]];
      await su.query(`UPDATE execution_logs SET seq = 100000 WHERE id = $1`, [a.id]);
      await su.query(`UPDATE execution_logs SET seq = $2 WHERE id = $1`, [b.id, a.seq]);
      await su.query(`UPDATE execution_logs SET seq = $2 WHERE id = $1`, [a.id, b.seq]);
      await rechain(su, orders.filled);
      const l = await ledger(app);
      expect(l.firstProblem).toMatchObject({ kind: 'REORDERED', entryId: a.id });
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: a.seq });
      expect(v.problems[0].kind).toBe('REORDERED');
    });
  });

  it('delete, renumber the rest and re-chain', async () => {
    await scenario(async ({ app, su, entries }) => {
      const all = await entries(orders.filled);
      await su.query(`DELETE FROM execution_logs WHERE id = $1`, [all[1].id]);
      await su.query(`UPDATE execution_logs SET seq = seq - 1 WHERE order_id = $1 AND seq > 2`, [orders.filled]);
      await rechain(su, orders.filled);
      const l = await ledger(app);
      expect(l.firstProblem).toMatchObject({ kind: 'MISSING', entryId: all[1].id });
      expect(l.problems.some((p: any) => p.kind === 'REORDERED' && p.entryId === all[2].id)).toBe(true);
      const v = await verifyOrder(app, orders.filled);
      expect(v).toMatchObject({ valid: false, firstBrokenSeq: 2 });
      expect(v.problems.some((p: any) => p.kind === 'CHAIN_BROKEN')).toBe(false);
    });
  });

  it('delete a checkpoint row: a middle one, or the latest', async () => {
    const sizes = notes.map((note) => verifyCheckpoint(note, TEST_LOG_KEY).treeSize);
    await scenario(async ({ app, su }) => {
      await su.query(`DELETE FROM log_checkpoints WHERE tree_size = $1`, [sizes[1]]);
      const l = await ledger(app);
      expect(l.valid).toBe(false);
      expect(l.problems[0]).toMatchObject({ kind: 'CHECKPOINT_MISSING' });
      expect(l.problems[0].message).toContain(`size ${sizes[1]}`);
    });
    await scenario(async ({ app, su }) => {
      await su.query(`DELETE FROM log_checkpoints WHERE tree_size = $1`, [sizes[2]]);
      const l = await ledger(app);
      expect(l.firstProblem).toMatchObject({ kind: 'CHECKPOINT_MISSING', leafIndex: sizes[1] });
      // The caller's copy of the deleted checkpoint names it too.
      const withCopy = await ledger(app, notes[2]);
      expect(withCopy.problems.some((p: any) => /your checkpoint/i.test(p.message))).toBe(true);
    });
  });

  it('alter a checkpoint row, or replace its signature', async () => {
    const latest = verifyCheckpoint(notes[2], TEST_LOG_KEY);
    await scenario(async ({ app, su }) => {
      await su.query(`UPDATE log_checkpoints SET root_hash = $2 WHERE tree_size = $1`, [
        latest.treeSize,
        Buffer.alloc(32, 7),
      ]);
      expect((await ledger(app)).problems[0]).toMatchObject({ kind: 'CHECKPOINT_ALTERED' });
    });
    await scenario(async ({ app, su }) => {
      const wrong = signCheckpoint(TEST_LOG_KEY, latest.treeSize, Buffer.alloc(32, 7), latest.timestamp, null);
      // A note with another root, and its size line unchanged: the signature no longer matches the text.
      const spliced = wrong.note.split('\n\n')[0] + '\n\n' + notes[2].split('\n\n')[1];
      await su.query(`UPDATE log_checkpoints SET note = $2 WHERE tree_size = $1`, [latest.treeSize, spliced]);
      expect((await ledger(app)).problems[0]).toMatchObject({ kind: 'CHECKPOINT_ALTERED' });
    });
    await scenario(async ({ app, su }) => {
      const other = signCheckpoint(OTHER_LOG_KEY, latest.treeSize, latest.rootHash, latest.timestamp, latest.previous);
      await su.query(`UPDATE log_checkpoints SET note = $2 WHERE tree_size = $1`, [latest.treeSize, other.note]);
      const l = await ledger(app);
      expect(l.problems[0]).toMatchObject({ kind: 'CHECKPOINT_ALTERED' });
      expect(l.problems[0].message).toMatch(/another key/);
    });
  });

  it('roll the tree back to an earlier size', async () => {
    const first = verifyCheckpoint(notes[0], TEST_LOG_KEY);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tt-cp-'));
    const file = path.join(dir, 'checkpoints.jsonl');
    // The checkpoint file holds the latest checkpoint (as the server appends it).
    writeFileSync(file, `${JSON.stringify({ note: notes[2] })}\n`);
    try {
      await scenario(
        async ({ app, su }) => {
          const s = first.treeSize;
          await su.query(`DELETE FROM log_leaves WHERE leaf_index >= $1`, [s]);
          await su.query(`DELETE FROM merkle_nodes WHERE (idx + 1) * (2::bigint ^ level)::bigint > $1`, [s]);
          await su.query(`DELETE FROM log_checkpoints WHERE tree_size > $1`, [s]);
          await su.query(`UPDATE log_tree_state SET tree_size = $1, tx_horizon = 0`, [s]);
          // The database alone looks consistent at the smaller size, but the checkpoint this server
          // knows from its file, and the one the caller kept, are not contained in it.
          const l = await ledger(app, notes[2]);
          expect(l.valid).toBe(false);
          expect(l.treeSize).toBe(s);
          const kinds = l.problems.map((p: any) => p.kind);
          expect(kinds).toEqual(expect.arrayContaining(['ROLLED_BACK', 'CHECKPOINT_MISSING']));
          expect(l.problems.find((p: any) => p.kind === 'ROLLED_BACK').message).toMatch(/your checkpoint/);
          // The integrator re-integrates the entries, but never signs a tree that lost a known checkpoint.
          await expect(app.integrator.integrateAll()).rejects.toThrow(TreeTamperedError);
          const after = await su.query(`SELECT tree_size::int AS n FROM log_tree_state`);
          expect(after.rows[0].n).toBe(s);
        },
        { checkpointFile: file },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the tree storage rewritten together with an entry is still caught by the signed roots', async () => {
    await scenario(async ({ app, su, entries }) => {
      const e = (await entries(orders.filled))[1];
      await su.query(`UPDATE execution_logs SET reason = 'edited' WHERE id = $1`, [e.id]);
      // The attacker also replaces the stored leaf hash with the edited entry's (computed in Node here).
      const row = (await su.query(`SELECT ${canonicalColumnsSql('l')} FROM execution_logs l WHERE id = $1`, [e.id]))
        .rows[0];
      await su.query(`UPDATE log_leaves SET leaf_hash = $2 WHERE entry_id = $1`, [e.id, entryLeafHash(row)]);
      const l = await ledger(app);
      expect(l.valid).toBe(false);
      expect(l.firstProblem.kind).toBe('TREE_ALTERED');
      const v = await verifyOrder(app, orders.filled);
      expect(v.problems).toEqual(expect.arrayContaining([expect.objectContaining({ kind: 'ALTERED', entryId: e.id })]));
    });
  });
});
