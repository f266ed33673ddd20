import { type Client } from 'pg';
import { ADMIN, COMPLIANCE, createDemoDatabase, onTamperableCopy, type TestApp } from './harness';

/**
 * The incremental data-quality report (src/compliance/baseline.ts): after a first, complete check,
 * a report re-checks only the books and orders that changed — and must still find exactly what a
 * complete check (`full: true`) finds, whatever changed: writes through the API, and tampering as a
 * database superuser with every trigger off (rows edited, deleted, inserted, moved to another book;
 * log entries and tree leaves edited, deleted, forged), and tampering with the baseline itself.
 */

const REPORT = `query($full: Boolean, $from: DateTimeISO, $to: DateTimeISO) {
  dataQualityReport(full: $full, from: $from, to: $to, first: 500) {
    issueCount complete changedBooks changedOrders filledOrders linkedFilledOrders linkRate totals { type count }
    issues { edges { node { id type field orderId positionId fillId entryId expected actual at } } } } }`;
const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`;
const BATCH = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;

let base: { url: string; name: string; drop: () => Promise<void> };

beforeAll(async () => {
  ({ db: base } = await createDemoDatabase());
});
afterAll(async () => {
  await base?.drop();
});

const scenario = (work: (ctx: { app: TestApp; su: Client }) => Promise<void>) => onTamperableCopy(base.name, work);

async function ok(app: TestApp, query: string, variables?: Record<string, unknown>, principal = ADMIN) {
  const r = await app.run(query, variables, principal);
  if (r.errors?.length) throw new Error(JSON.stringify(r.errors));
  return r.data as any;
}
const report = async (app: TestApp, variables: Record<string, unknown> = {}) =>
  (await ok(app, REPORT, variables, COMPLIANCE)).dataQualityReport;
const issues = (r: any) =>
  r.issues.edges
    .map((e: any) => JSON.stringify(e.node))
    .sort()
    .map((s: string) => JSON.parse(s));

/** The incremental report, then a complete one: the same issues. Returns the incremental one. */
async function sameAsComplete(app: TestApp, variables: Record<string, unknown> = {}) {
  const quick = await report(app, variables);
  const complete = await report(app, { ...variables, full: true });
  expect(complete.complete).toBe(true);
  expect(issues(quick)).toEqual(issues(complete));
  expect(quick.totals).toEqual(complete.totals);
  // The incremental report counts the link rate in its scan of the orders, the complete one too.
  for (const f of ['filledOrders', 'linkedFilledOrders', 'linkRate']) expect(quick[f]).toEqual(complete[f]);
  return quick;
}

/**
 * At least the books a change touched were re-checked, and not many more: a version counts as changed
 * when its transaction is not older than the oldest one running at the baseline, and a transaction of
 * another test's database (one PostgreSQL server) can hold that back, so a change before the baseline
 * may be re-checked once more.
 */
function expectChanged(r: any, books: number) {
  expect(r.complete).toBe(false);
  expect(r.changedBooks).toBeGreaterThanOrEqual(books);
  expect(r.changedBooks).toBeLessThanOrEqual(books + 3);
}

describe('the incremental data-quality report', () => {
  it('finds what a complete check finds after writes through the API, re-checking only the changed books', async () => {
    await scenario(async ({ app }) => {
      const first = await report(app);
      expect(first).toMatchObject({ complete: true, changedBooks: null, issueCount: 1 });
      // Nothing changed: nothing re-checked, the baseline's issue stands.
      const again = await sameAsComplete(app);
      // (Zero books and orders on a quiet server; see expectChanged.)
      expectChanged(again, 0);
      expect(again.issueCount).toBe(1);

      // An order with two fills in a book of its own, through the API.
      const [{ id: traderId }] = await app.dataSource.query(`SELECT id FROM traders ORDER BY name LIMIT 1`);
      const { submitOrder } = await ok(app, SUBMIT, {
        input: { traderId, clientOrderId: 'dq-1', symbol: 'DQTEST', side: 'BUY', orderType: 'MARKET', quantity: '10' },
      });
      const fill = (n: number, q: string) => ({
        orderId: submitOrder.id,
        execId: `dq-exec-${n}`,
        quantity: q,
        price: '12.5',
        executedAt: new Date(Date.UTC(2026, 10, 20, 10, n)).toISOString(),
      });
      expect((await ok(app, BATCH, { inputs: [fill(1, '4'), fill(2, '6')] })).recordExecutions.applied).toBe(2);
      await app.integrator.integrateAll();
      const after = await sameAsComplete(app);
      expectChanged(after, 1);
      expect(after.issueCount).toBe(1);
      expect(after.changedOrders).toBeGreaterThanOrEqual(1);
    });
  });

  it('finds superuser tampering of every kind, exactly as a complete check does', async () => {
    await scenario(async ({ app, su }) => {
      const q = async (sql: string, params: unknown[] = []) => (await su.query(sql, params)).rows;
      expect((await report(app)).complete).toBe(true);
      expect((await report(app)).complete).toBe(false);

      // Ledger rows edited, moved to another book, deleted, inserted: one at a time, each followed by a
      // report (so that each change is the only one since the baseline).
      await q(`UPDATE positions SET quantity = quantity + 1 WHERE id = (SELECT id FROM positions WHERE status = 'OPEN'
               AND EXISTS (SELECT 1 FROM fills f WHERE f.position_id = positions.id) ORDER BY opened_at LIMIT 1)`);
      let r = await sameAsComplete(app);
      expectChanged(r, 1);
      expect(r.totals.find((t: any) => t.type === 'QUANTITY_MISMATCH').count).toBe(1);

      await q(`UPDATE orders SET average_fill_price = average_fill_price + 1 WHERE id = (SELECT id FROM orders
               WHERE status = 'FILLED' AND position_id IS NOT NULL ORDER BY created_at DESC LIMIT 1)`);
      r = await sameAsComplete(app);
      expectChanged(r, 1);
      expect(r.totals.find((t: any) => t.type === 'ORDER_FILL_MISMATCH').count).toBe(1);

      // A fill moved out of its book: its old book (which has no newer row) must be re-checked too.
      const [moved] = await q(
        `SELECT f.id, f.trader_id, f.symbol, f.position_id FROM fills f
         WHERE (SELECT count(*) FROM fills g WHERE g.position_id = f.position_id) > 1 ORDER BY f.executed_at DESC LIMIT 1`,
      );
      await q(`UPDATE fills SET symbol = 'ELSEWHERE' WHERE id = $1`, [moved.id]);
      r = await sameAsComplete(app);
      expectChanged(r, 2);
      expect(issues(r).some((i: any) => i.positionId === moved.position_id && i.type === 'QUANTITY_MISMATCH')).toBe(
        true,
      );

      // A fill deleted: no row is newer, its book has one fewer.
      const [deleted] = await q(
        `SELECT f.id, f.position_id FROM fills f WHERE NOT EXISTS (SELECT 1 FROM fill_corrections c WHERE c.fill_id = f.id)
         AND f.trader_id <> $1 AND (SELECT count(*) FROM fills g WHERE g.position_id = f.position_id) > 1
         ORDER BY f.executed_at LIMIT 1`,
        [moved.trader_id],
      );
      await q(`DELETE FROM fills WHERE id = $1`, [deleted.id]);
      r = await sameAsComplete(app);
      expectChanged(r, 1);
      expect(issues(r).some((i: any) => i.positionId === deleted.position_id && i.type === 'QUANTITY_MISMATCH')).toBe(
        true,
      );

      await q(`INSERT INTO positions (trader_id, symbol, quantity, status) VALUES ($1, 'BARE', 3, 'OPEN')`, [
        moved.trader_id,
      ]);
      r = await sameAsComplete(app);
      expectChanged(r, 1);
      expect(r.totals.find((t: any) => t.type === 'POSITION_WITHOUT_ORDERS').count).toBe(1);

      // An order's status changed behind its log: only that order's log is re-checked.
      const [expired] = await q(
        `UPDATE orders SET status = 'EXPIRED' WHERE id = (SELECT id FROM orders WHERE status = 'CANCELLED' LIMIT 1) RETURNING id`,
      );
      r = await sameAsComplete(app);
      expect(r.complete).toBe(false);
      expect(r.changedOrders).toBeGreaterThanOrEqual(1);
      expect(issues(r).some((i: any) => i.type === 'ORDER_LOG_MISMATCH' && i.orderId === expired.id)).toBe(true);

      // The log: an entry edited (its chain and hash).
      const [edited] = await q(`SELECT id FROM execution_logs WHERE seq = 1 ORDER BY recorded_at DESC LIMIT 1`);
      await q(`UPDATE execution_logs SET reason = 'edited' WHERE id = $1`, [edited.id]);
      r = await sameAsComplete(app);
      expect(r.complete).toBe(false);
      // An edited entry replaced an old version of the log: tampering, so the log checks ran on every order.
      expect(r.changedOrders).toBe(null);
      expect(issues(r).some((i: any) => i.type === 'BROKEN_LOG' && i.entryId === edited.id)).toBe(true);

      // The order whose status was changed, deleted outright: its issue goes with it.
      await q(
        `DELETE FROM orders WHERE id = (SELECT id FROM orders WHERE status = 'EXPIRED' ORDER BY created_at LIMIT 1)`,
      );
      r = await sameAsComplete(app);
      expect(r.complete).toBe(false);

      // A middle entry deleted: the log shrank, so the log checks run on everything.
      const [gap] = await q(
        `SELECT l.id FROM execution_logs l WHERE l.seq = 2
         AND EXISTS (SELECT 1 FROM execution_logs n WHERE n.order_id = l.order_id AND n.seq = 3) ORDER BY l.recorded_at LIMIT 1`,
      );
      await q(`DELETE FROM execution_logs WHERE id = $1`, [gap.id]);
      r = await sameAsComplete(app);
      expect(r).toMatchObject({ complete: false, changedOrders: null });
      expect(issues(r).some((i: any) => i.type === 'BROKEN_LOG' && i.field === 'leaf' && i.entryId === gap.id)).toBe(
        true,
      );

      // A leaf renumbered.
      await q(`UPDATE log_leaves SET seq = seq + 100 WHERE leaf_index = 3`);
      r = await sameAsComplete(app);
      expect(issues(r).filter((i: any) => i.type === 'BROKEN_LOG' && i.field === 'leaf').length).toBeGreaterThanOrEqual(
        2,
      );

      // A range keeps the issues of its time, as a complete check of that range does.
      const range = { from: '2026-01-01T00:00:00Z', to: new Date(Date.now() - 60_000).toISOString() };
      await sameAsComplete(app, range);
    });
  });

  it('re-checks what its snapshot saw of a transaction younger than the oldest one running (deleted before the next report)', async () => {
    await scenario(async ({ app, su }) => {
      // A transaction with an xid, open across the first report: the report's snapshot xmin is its xid.
      const hold = app.dataSource.createQueryRunner();
      await hold.connect();
      try {
        await hold.startTransaction();
        await hold.query(`SELECT pg_current_xact_id()`);
        // Committed before the report (so it sees it), by a transaction younger than the open one.
        const [order] = (
          await su.query(`UPDATE orders SET status = 'EXPIRED'
            WHERE id = (SELECT id FROM orders WHERE status = 'CANCELLED' ORDER BY created_at LIMIT 1) RETURNING id`)
        ).rows;
        const first = await report(app);
        expect(first.complete).toBe(true);
        expect(issues(first).some((i: any) => i.type === 'ORDER_LOG_MISMATCH' && i.orderId === order.id)).toBe(true);
        await hold.commitTransaction();
        // The version the report saw is gone: no newer version, no older one missing from a count.
        await su.query(`DELETE FROM orders WHERE id = $1`, [order.id]);
        const r = await sameAsComplete(app);
        expect(r.complete).toBe(false);
        expect(issues(r).some((i: any) => i.orderId === order.id)).toBe(false);
      } finally {
        await hold.release();
      }
    });
  });

  it('runs its scans on one connection when no second one is free in the pool', async () => {
    await scenario(async ({ app }) => {
      expect((await report(app)).complete).toBe(true);
      // Every pooled connection but the request's own busy: the second one times out (5 s), the scans run here.
      const busy = await Promise.all(
        Array.from({ length: 3 }, async () => {
          const runner = app.dataSource.createQueryRunner();
          await runner.connect();
          return runner;
        }),
      );
      try {
        const r = await report(app);
        expect(r).toMatchObject({ complete: false, issueCount: 1 });
        expect(issues(r)[0].type).toBe('UNLINKED_FILLED_ORDER');
      } finally {
        await Promise.all(busy.map((runner) => runner.release()));
      }
    });
  }, 30_000);

  it('does not trust a baseline edited behind its HMAC: the next report checks everything', async () => {
    await scenario(async ({ app, su }) => {
      const q = async (sql: string, params: unknown[] = []) => (await su.query(sql, params)).rows;
      const first = await report(app);
      expect(first.issueCount).toBe(1);
      // Hiding the known issue, and hiding a deletion by lowering a book's count.
      await q(`DELETE FROM dq_baseline_issues`);
      const r = await report(app);
      expect(r).toMatchObject({ complete: true, issueCount: 1 });
      expect((await report(app)).complete).toBe(false);
      await q(`DELETE FROM fills WHERE id = (SELECT id FROM fills ORDER BY executed_at LIMIT 1)`);
      await q(`UPDATE dq_baseline_books SET old_rows = old_rows - 1 WHERE tbl = 'fills'
               AND (trader_id, symbol) = (SELECT trader_id, symbol FROM fills ORDER BY executed_at LIMIT 1)`);
      const after = await report(app);
      expect(after.complete).toBe(true);
      expect(after.issueCount).toBeGreaterThan(1);
      // Only the compliance and admin roles read or write the baseline (row-level security).
      const seen = (role: string) =>
        app.dataSource.transaction(async (m) => {
          await m.query(`SET LOCAL ROLE tradetrail_app`);
          await m.query(`SELECT set_config('tradetrail.role', $1, true)`, [role]);
          const [{ n }] = await m.query(`SELECT count(*)::int AS n FROM dq_baseline_issues`);
          // (TypeORM answers an UPDATE with [rows, affected].)
          const [, written] = (await m.query(`UPDATE dq_baseline SET taken_at = now() RETURNING id`)) as [
            unknown[],
            number,
          ];
          return { n, written };
        });
      expect(await seen('compliance')).toEqual({ n: after.issueCount, written: 1 });
      for (const role of ['trader', 'service']) expect(await seen(role)).toEqual({ n: 0, written: 0 });
    });
  });
});
