import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { verifyCheckpoint } from '../src/execution-log/checkpoint';
import { appendLogs } from '../src/execution-log/execution-log.service';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { OrderStatus } from '../src/order/order.entity';
import { makeOrders, makeTrader } from './factories';
import { COMPLIANCE, createTestDatabase, SERVICE, startTestApp, type TestApp } from './harness';
import { TEST_LOG_KEY } from './log-key';

/** Issue 8 point 1: the integrator — ordering without serialising writers, one at a time, crash-safe. */
const LEDGER = `{ verifyLedger { valid treeSize checkpointSize pendingEntries entriesVerified firstProblem { kind message } } }`;
const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`;

async function ok<T = any>(app: TestApp, query: string, variables?: Record<string, unknown>, who = SERVICE) {
  const res = await app.run(query, variables, who);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

async function counts(app: TestApp): Promise<{ entries: number; leaves: number; distinct: number; size: number }> {
  const [row] = await app.dataSource.transaction(async (m) => {
    await m.query(`SET LOCAL tradetrail.role = 'compliance'`);
    return m.query(`SELECT (SELECT count(*)::int FROM execution_logs) AS entries,
      (SELECT count(*)::int FROM log_leaves) AS leaves,
      (SELECT count(DISTINCT entry_id)::int FROM log_leaves) AS distinct,
      (SELECT tree_size::int FROM log_tree_state) AS size`);
  });
  return row;
}

let n = 0;
async function trade(app: TestApp, traderId: string): Promise<void> {
  n += 1;
  const input = {
    traderId,
    clientOrderId: `I-${n}-${Math.random()}`,
    symbol: 'NVDA',
    side: n % 2 ? 'BUY' : 'SELL',
    orderType: 'MARKET',
    timeInForce: 'DAY',
    quantity: '3',
  };
  const id = (await ok(app, SUBMIT, { input })).submitOrder.id;
  const executedAt = new Date(Date.UTC(2026, 6, 1, 15, 0, 0, n)).toISOString();
  await ok(app, RECORD, {
    input: { orderId: id, execId: `IX-${n}-${Math.random()}`, quantity: '3', price: '100', executedAt },
  });
}

describe('the integrator', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  afterEach(async () => {
    await db?.drop();
  });

  it('two processes integrating in the background while 8 writers ingest: every entry once, within the delay, and the ledger verifies', async () => {
    db = await createTestDatabase();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'tt-int-'));
    const file = path.join(dir, 'checkpoints.jsonl');
    const a = await startTestApp(db.url, { integrationMs: 20, checkpointFile: file });
    const b = await startTestApp(db.url, { integrationMs: 20 });
    try {
      const trader = (await makeTrader(a.dataSource.manager)).id;
      const t0 = Date.now();
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let i = 0; i < 8; i++) await trade(w % 2 ? a : b, trader);
        }),
      );
      // Within a second or so of the last commit, everything is in the tree.
      let c = await counts(a);
      const deadline = Date.now() + 5000;
      while (c.size < c.entries && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
        c = await counts(a);
      }
      expect(c.entries).toBeGreaterThanOrEqual(8 * 8 * 3);
      expect(c).toEqual({ entries: c.entries, leaves: c.entries, distinct: c.entries, size: c.entries });
      const ledger = (await ok(a, LEDGER, {}, COMPLIANCE)).verifyLedger;
      expect(ledger).toMatchObject({ valid: true, treeSize: c.entries, checkpointSize: c.entries, pendingEntries: 0 });
      // Both processes signed some of the checkpoints; they form one chain (verifyLedger checked it).
      const lines = readFileSync(file, 'utf8').trim().split('\n');
      const last = JSON.parse(lines[lines.length - 1]);
      expect(verifyCheckpoint(last.note, TEST_LOG_KEY).treeSize).toBeLessThanOrEqual(c.entries);
      // The delay between an entry being recorded and the first checkpoint that covers it.
      const [delay] = await a.dataSource.transaction(async (m) => {
        await m.query(`SET LOCAL tradetrail.role = 'compliance'`);
        return m.query(`SELECT max(extract(epoch FROM (SELECT min(c.signed_at) FROM log_checkpoints c WHERE c.tree_size > x.leaf_index) - l.recorded_at))::float AS s
          FROM log_leaves x JOIN execution_logs l ON l.id = x.entry_id`);
      });
      expect(delay.s).toBeLessThan(3);
      expect(Date.now() - t0).toBeLessThan(60_000);
    } finally {
      await a.close();
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('only one integrates at a time, and a round that fails half-way leaves nothing behind and is resumed', async () => {
    db = await createTestDatabase();
    const app = await startTestApp(db.url);
    const su = new Client({ connectionString: db.url });
    await su.connect();
    try {
      const trader = (await makeTrader(app.dataSource.manager)).id;
      for (let i = 0; i < 3; i++) await trade(app, trader);
      // Another integrator holds the lock: this one does nothing.
      await su.query('BEGIN');
      await su.query(`SELECT pg_advisory_xact_lock(7346521908112233)`);
      expect(await app.integrator.integrateOnce()).toMatchObject({ acquired: false, integrated: 0 });
      await su.query('ROLLBACK');
      // A failure after the leaves were written (here: the checkpoint insert fails) rolls the round back whole.
      await su.query(
        `CREATE FUNCTION fail_nodes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'crash'; END $$`,
      );
      await su.query(
        `CREATE TRIGGER crash BEFORE INSERT ON log_checkpoints FOR EACH ROW EXECUTE FUNCTION fail_nodes()`,
      );
      await expect(app.integrator.integrateOnce()).rejects.toThrow(/crash/);
      expect(await counts(app)).toMatchObject({ leaves: 0, size: 0 });
      expect((await su.query(`SELECT count(*)::int AS n FROM log_checkpoints`)).rows[0].n).toBe(0);
      await su.query(`DROP TRIGGER crash ON log_checkpoints`);
      const [round] = await app.integrator.integrateAll();
      const c = await counts(app);
      expect(round).toMatchObject({ acquired: true, integrated: c.entries, treeSize: c.entries });
      expect((await ok(app, LEDGER, {}, COMPLIANCE)).verifyLedger).toMatchObject({ valid: true });
    } finally {
      await su.end();
      await app.close();
    }
  });

  it('an entry of a transaction that commits after a later one is integrated too (the horizon waits for it)', async () => {
    db = await createTestDatabase();
    const app = await startTestApp(db.url);
    try {
      const trader = (await makeTrader(app.dataSource.manager)).id;
      const [o] = await makeOrders(app.dataSource.manager, [{ traderId: trader }]);
      const slow = new DataSource(dataSourceOptions(db.url, 1, false));
      await slow.initialize();
      const runner = slow.createQueryRunner();
      await runner.connect();
      try {
        // A long transaction writes an entry first (smaller transaction id) and commits last.
        await runner.query(`BEGIN; SET LOCAL tradetrail.role = 'admin'`);
        await appendLogs(runner.manager, { actor: 'slow', source: 'TEST' }, [
          { orderId: o.id, traderId: trader, action: ExecutionLogAction.RECOVERED, occurredAt: new Date() },
        ]);
        await trade(app, trader);
        await app.integrator.integrateAll();
        const before = await counts(app);
        await runner.query('COMMIT');
        await app.integrator.integrateAll();
        const after = await counts(app);
        expect(after.leaves).toBe(before.leaves + 1);
        expect(after).toMatchObject({ leaves: after.entries, size: after.entries });
      } finally {
        await runner.release();
        await slow.destroy();
      }
      expect((await ok(app, LEDGER, {}, COMPLIANCE)).verifyLedger).toMatchObject({ valid: true, pendingEntries: 0 });
    } finally {
      await app.close();
    }
  });

  it('entries written before the verifiable log (unsealed) enter the tree in the first round only', async () => {
    db = await createTestDatabase();
    const ds = new DataSource(dataSourceOptions(db.url, 2, false));
    await ds.initialize();
    // Back to before the verifiable log: undo the migrations after it, then it.
    for (;;) {
      const [last] = (await ds.query(`SELECT name FROM typeorm_migrations ORDER BY id DESC LIMIT 1`)) as {
        name: string;
      }[];
      await ds.undoLastMigration({ transaction: 'each' });
      if (last.name === 'VerifiableLog1795244000000') break;
    }
    const trader = (await makeTrader(ds.manager)).id;
    const [o] = await makeOrders(ds.manager, [{ traderId: trader, status: OrderStatus.ACCEPTED }]);
    await ds.transaction(async (m) => {
      await m.query(`SET LOCAL tradetrail.role = 'admin'`);
      for (const action of ['SUBMITTED', 'ACCEPTED'])
        await m.query(
          `INSERT INTO execution_logs (order_id, trader_id, action, to_status, actor, source, occurred_at)
           VALUES ($1, $2, $3, 'ACCEPTED', 'legacy', 'API', now())`,
          [o.id, trader, action],
        );
    });
    await ds.runMigrations({ transaction: 'each' });
    await ds.destroy();
    const app = await startTestApp(db.url);
    try {
      const [round] = await app.integrator.integrateAll();
      expect(round).toMatchObject({ integrated: 2, refused: [] });
      expect((await ok(app, LEDGER, {}, COMPLIANCE)).verifyLedger).toMatchObject({ valid: true, treeSize: 2 });
      // An unsealed entry after that is refused, and named.
      await app.dataSource.transaction(async (m) => {
        await m.query(`SET LOCAL tradetrail.role = 'admin'`);
        await m.query(
          `INSERT INTO execution_logs (order_id, trader_id, action, to_status, actor, source, occurred_at)
           VALUES ($1, $2, 'RECOVERED', 'ACCEPTED', 'not-the-server', 'API', now())`,
          [o.id, trader],
        );
      });
      const [second] = await app.integrator.integrateAll();
      expect(second.refused).toHaveLength(1);
      const ledger = (await ok(app, LEDGER, {}, COMPLIANCE)).verifyLedger;
      expect(ledger).toMatchObject({ valid: false, treeSize: 2, firstProblem: { kind: 'INSERTED' } });
    } finally {
      await app.close();
    }
  });

  it('an intact log of 100,000 entries verifies', async () => {
    db = await createTestDatabase();
    const app = await startTestApp(db.url, { poolMax: 2 });
    try {
      const trader = (await makeTrader(app.dataSource.manager)).id;
      const orders = await makeOrders(
        app.dataSource.manager,
        Array.from({ length: 1000 }, () => ({ traderId: trader })),
      );
      const t0 = Date.now();
      for (let part = 0; part < 20; part++) {
        await app.dataSource.transaction(async (m) => {
          await m.query(`SET LOCAL tradetrail.role = 'admin'`);
          await appendLogs(
            m,
            { actor: 'bulk', source: 'TEST' },
            orders.slice(part * 50, part * 50 + 50).flatMap((o) =>
              Array.from({ length: 100 }, (_, i) => ({
                orderId: o.id,
                traderId: trader,
                action: ExecutionLogAction.RECOVERED,
                toStatus: OrderStatus.ACCEPTED,
                details: { i, note: 'bulk' },
                occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)),
              })),
            ),
          );
        });
      }
      const written = Date.now() - t0;
      await app.integrator.integrateAll();
      const integrated = Date.now() - t0 - written;
      const t1 = Date.now();
      const ledger = (await ok(app, LEDGER, {}, COMPLIANCE)).verifyLedger;
      expect(ledger).toMatchObject({ valid: true, treeSize: 100_000, entriesVerified: 100_000, pendingEntries: 0 });
      console.log(
        `[log] 100,000 entries: written in ${written} ms, integrated in ${integrated} ms, verified in ${Date.now() - t1} ms`,
      );
    } finally {
      await app.close();
    }
  }, 240_000);
});
