import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type Client } from 'pg';
import { ComplianceScheduler, RECONCILE_LOCK, REPORT_LOCK } from '../src/compliance/scheduler';
import { makeTrader } from './factories';
import {
  ADMIN,
  COMPLIANCE,
  createDemoDatabase,
  onTamperableCopy,
  SERVICE,
  type TestApp,
  traderPrincipal,
} from './harness';
import { TEST_LOG_KEY } from './log-key';

/**
 * Issue 9: the data-quality report, reconciliation and the position audit summary, on the demo data
 * and on copies of it tampered with as a database superuser (triggers bypassed).
 */

const REPORT = `query($from: DateTimeISO, $to: DateTimeISO, $types: [DataQualityIssueType!], $first: Int, $after: String) {
  dataQualityReport(from: $from, to: $to, types: $types, first: $first, after: $after) {
    filledOrders linkedFilledOrders linkRate issueCount
    totals { type severity count }
    issues { totalCount pageInfo { hasNextPage hasPreviousPage endCursor }
      edges { cursor node { id type severity message traderId symbol orderId positionId fillId entryId field expected actual at } } }
  } }`;
const RECONCILE = `mutation($apply: Boolean, $maxFixes: Int) { reconcile(apply: $apply, maxFixes: $maxFixes) {
  applied proposed fixed failed deferred
  fixes { kinds status traderId symbol reason orderIds positionIds issues { type orderId positionId field expected actual } error }
  leftAlone { type field positionId message } } }`;
const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`;
const BATCH = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;

let base: { url: string; name: string; drop: () => Promise<void> };
let unlinkedOrderId: string;

beforeAll(async () => {
  let found: { id: string }[] | undefined;
  ({ db: base, seen: found } = await createDemoDatabase((app: TestApp) =>
    app.dataSource.query(`SELECT id FROM orders WHERE status = 'FILLED' AND position_id IS NULL`),
  ));
  [{ id: unlinkedOrderId }] = found!;
});
afterAll(async () => {
  await base?.drop();
});

/** A copy of the demo database, an app on it, and a superuser connection with triggers bypassed. */
// Each read commits on its own: the statement counts below are a request's own (see test/read-commit.test.ts).
const scenario = (work: (ctx: { app: TestApp; su: Client }) => Promise<void>) =>
  onTamperableCopy(base.name, work, { readCommitDelayMs: 0 });

async function ok<T = any>(app: TestApp, query: string, variables?: Record<string, unknown>, principal = ADMIN) {
  const r = await app.run<T>(query, variables, principal);
  if (r.errors?.length) throw new Error(JSON.stringify(r.errors));
  return r.data as any;
}
const report = async (app: TestApp, variables: Record<string, unknown> = {}) =>
  (await ok(app, REPORT, { first: 500, ...variables }, COMPLIANCE)).dataQualityReport;
const reconcile = async (app: TestApp, apply: boolean) => (await ok(app, RECONCILE, { apply })).reconcile;
const counts = (r: { totals: { type: string; count: number }[] }) =>
  Object.fromEntries(r.totals.filter((t) => t.count > 0).map((t) => [t.type, t.count]));
const nodes = (r: any) => r.issues.edges.map((e: any) => e.node);

describe('the demo data (README "Compliance")', () => {
  it('the report finds the unlinked filled order; a dry run proposes the link; apply links it, logged RECOVERED; a second run finds nothing', async () => {
    await scenario(async ({ app }) => {
      const before = await report(app);
      expect(counts(before)).toEqual({ UNLINKED_FILLED_ORDER: 1 });
      expect(before).toMatchObject({ issueCount: 1, filledOrders: 10, linkedFilledOrders: 9, linkRate: '0.9' });
      const [issue] = nodes(before);
      const [{ first }] = await app.dataSource.query(
        `SELECT position_id AS first FROM fills WHERE order_id = $1 ORDER BY executed_at, arrival LIMIT 1`,
        [unlinkedOrderId],
      );
      expect(issue).toMatchObject({
        type: 'UNLINKED_FILLED_ORDER',
        severity: 'WARNING',
        orderId: unlinkedOrderId,
        positionId: first,
        expected: first,
        actual: null,
      });
      expect(issue.message).toContain(unlinkedOrderId);

      const logBefore = await app.dataSource.query(`SELECT count(*)::int AS n FROM execution_logs`);
      const dry = await reconcile(app, false);
      expect(dry).toMatchObject({ applied: false, proposed: 1, fixed: 0, failed: 0, deferred: 0, leftAlone: [] });
      expect(dry.fixes[0]).toMatchObject({ kinds: ['LINK_ORDER'], status: 'PROPOSED', orderIds: [unlinkedOrderId] });
      // A dry run writes nothing.
      expect(await app.dataSource.query(`SELECT count(*)::int AS n FROM execution_logs`)).toEqual(logBefore);
      const [still] = await app.dataSource.query(`SELECT position_id FROM orders WHERE id = $1`, [unlinkedOrderId]);
      expect(still.position_id).toBeNull();

      const applied = await reconcile(app, true);
      expect(applied).toMatchObject({ applied: true, proposed: 1, fixed: 1, failed: 0 });
      expect(applied.fixes[0].status).toBe('APPLIED');
      const [linked] = await app.dataSource.query(`SELECT position_id FROM orders WHERE id = $1`, [unlinkedOrderId]);
      expect(linked.position_id).toBe(first);
      const [entry] = await app.dataSource.query(
        `SELECT action, actor, reason, details FROM execution_logs WHERE order_id = $1 ORDER BY seq DESC LIMIT 1`,
        [unlinkedOrderId],
      );
      expect(entry).toMatchObject({ action: 'RECOVERED', actor: ADMIN.sub });
      expect(entry.reason).toMatch(/^Reconciliation: .*1 UNLINKED_FILLED_ORDER/);
      expect(entry.details).toMatchObject({ previousPositionId: null, positionId: first });

      expect(await reconcile(app, false)).toMatchObject({ proposed: 0, fixes: [], leftAlone: [] });
      expect(await reconcile(app, true)).toMatchObject({ proposed: 0, fixed: 0 });
      const after = await report(app);
      expect(after).toMatchObject({ issueCount: 0, linkedFilledOrders: 10, linkRate: '1' });
      // The fix is in the verifiable log like any entry.
      await app.integrator.integrateAll();
      const v = await ok(app, `query($id: ID!) { verifyExecutionLog(orderId: $id) { valid } }`, {
        id: unlinkedOrderId,
      });
      expect(v.verifyExecutionLog.valid).toBe(true);
    });
  });

  it('roles: compliance and admin read the report, only an admin reconciles; traders and gateways neither', async () => {
    await scenario(async ({ app }) => {
      const [{ trader_id }] = await app.dataSource.query(`SELECT trader_id FROM orders LIMIT 1`);
      for (const p of [traderPrincipal(trader_id), SERVICE]) {
        expect((await app.run(REPORT, {}, p)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
      }
      expect((await app.run(REPORT, {}, ADMIN)).errors).toBeUndefined();
      for (const p of [traderPrincipal(trader_id), SERVICE, COMPLIANCE]) {
        const r = await app.run(RECONCILE, { apply: true }, p);
        expect(r.errors?.[0].extensions?.code).toBe('FORBIDDEN');
      }
      const [o] = await app.dataSource.query(`SELECT position_id FROM orders WHERE id = $1`, [unlinkedOrderId]);
      expect(o.position_id).toBeNull();
    });
  });

  it('pages through the issues with first/after, most severe first; refuses a foreign cursor; filters by time and type', async () => {
    await scenario(async ({ app, su }) => {
      // Five exceptions (INFO) and the unlinked order (WARNING).
      const [{ id: traderId }] = (await su.query(`SELECT id FROM traders ORDER BY name LIMIT 1`)).rows;
      const orderId = (
        await ok(app, SUBMIT, {
          input: { traderId, clientOrderId: 'over-1', symbol: 'ZZZ', side: 'BUY', orderType: 'MARKET', quantity: '1' },
        })
      ).submitOrder.id;
      const at = Date.UTC(2026, 10, 20, 15);
      const inputs = Array.from({ length: 6 }, (_, i) => ({
        orderId,
        execId: `over-${i}`,
        quantity: '1',
        price: '10',
        executedAt: new Date(at + i * 1000).toISOString(),
      }));
      expect((await ok(app, BATCH, { inputs })).recordExecutions).toEqual({ applied: 6, refused: 0 });
      const all = await report(app);
      expect(counts(all)).toEqual({ UNLINKED_FILLED_ORDER: 1, EXECUTION_EXCEPTION: 5 });
      expect(nodes(all).map((n: any) => n.severity)).toEqual(['WARNING', 'INFO', 'INFO', 'INFO', 'INFO', 'INFO']);
      const seen: string[] = [];
      let after: string | null = null;
      for (let page = 0; page < 10; page++) {
        const r = await report(app, { first: 2, after });
        expect(r.issues.totalCount).toBe(6);
        expect(r.issueCount).toBe(6);
        seen.push(...nodes(r).map((n: any) => n.id));
        if (!r.issues.pageInfo.hasNextPage) break;
        after = r.issues.pageInfo.endCursor;
      }
      expect(seen).toEqual(nodes(all).map((n: any) => n.id));
      const bad = await app.run(REPORT, { after: 'bm90LWEtY3Vyc29y' }, COMPLIANCE);
      expect(bad.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      const inverted = await app.run(REPORT, { from: '2026-11-21T00:00:00Z', to: '2026-11-20T00:00:00Z' }, COMPLIANCE);
      expect(inverted.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      const window = await report(app, {
        from: new Date(at + 2000).toISOString(),
        to: new Date(at + 4000).toISOString(),
      });
      expect(counts(window)).toEqual({ EXECUTION_EXCEPTION: 2 });
      const onlyExceptions = await report(app, { types: ['EXECUTION_EXCEPTION'] });
      expect(onlyExceptions.totals).toEqual([{ type: 'EXECUTION_EXCEPTION', severity: 'INFO', count: 5 }]);
      expect(nodes(onlyExceptions)[0]).toMatchObject({ orderId, actual: 'OVERFILL', field: 'exception' });
      // Exceptions are valid executions: reported, never "fixed".
      const dry = await reconcile(app, false);
      expect(dry.leftAlone.filter((i: any) => i.type === 'EXECUTION_EXCEPTION')).toHaveLength(5);
      expect(dry.fixes).toHaveLength(1);
    });
  });
});

describe('tampering as a database superuser', () => {
  it('every check names what disagrees; apply fixes the safe cases only; a second run finds nothing to fix', async () => {
    await scenario(async ({ app, su }) => {
      const q = async (sql: string, params: unknown[] = []) => (await su.query(sql, params)).rows;
      // An open position: its realized PnL and quantity edited.
      const [open] = await q(
        `SELECT p.id, p.quantity::text AS quantity, p.realized_pnl::text AS pnl FROM positions p
         WHERE status = 'OPEN' AND EXISTS (SELECT 1 FROM fills f WHERE f.position_id = p.id) ORDER BY opened_at LIMIT 1`,
      );
      await q(
        `UPDATE positions SET realized_pnl = realized_pnl + 0.000000000000000001, quantity = quantity + 1 WHERE id = $1`,
        [open.id],
      );
      // A closed position: cost basis edited.
      const [closed] = await q(`SELECT id FROM positions WHERE status = 'CLOSED' ORDER BY opened_at LIMIT 1`);
      await q(`UPDATE positions SET cost_basis = 5 WHERE id = $1`, [closed.id]);
      // An order's totals edited (a FILLED order with one fill in a book apart from the two above).
      const [order] = await q(
        `SELECT o.id, o.filled_quantity::text AS filled, o.average_fill_price::text AS avg FROM orders o
         WHERE o.status = 'FILLED' AND o.position_id IS NOT NULL AND o.position_id <> ALL($1::uuid[])
         ORDER BY o.created_at LIMIT 1`,
        [[open.id, closed.id]],
      );
      await q(`UPDATE orders SET average_fill_price = average_fill_price + 1 WHERE id = $1`, [order.id]);
      // A bare position, and a fill moved into another trader's position.
      const [{ id: trader }] = await q(`SELECT id FROM traders ORDER BY name LIMIT 1`);
      const [bare] = await q(
        `INSERT INTO positions (trader_id, symbol, quantity, status) VALUES ($1, 'BARE', 3, 'OPEN') RETURNING id`,
        [trader],
      );
      const [stray] = await q(
        `SELECT f.id, f.position_id, f.trader_id FROM fills f JOIN positions p ON p.id = f.position_id
         WHERE p.id <> ALL($1::uuid[])
           AND (SELECT count(*) FROM fills g WHERE g.position_id = p.id) > 1 ORDER BY f.executed_at LIMIT 1`,
        [[open.id, closed.id]],
      );
      const [foreign] = await q(`SELECT id FROM positions WHERE trader_id <> $1 ORDER BY opened_at LIMIT 1`, [
        stray.trader_id,
      ]);
      await q(`UPDATE fills SET position_id = $2 WHERE id = $1`, [stray.id, foreign.id]);
      // The log: an entry edited, a middle entry deleted, an order's status changed behind its log.
      const [edited] = await q(`SELECT id, order_id FROM execution_logs WHERE seq = 1 ORDER BY recorded_at LIMIT 1`);
      await q(`UPDATE execution_logs SET reason = 'edited' WHERE id = $1`, [edited.id]);
      const [gap] = await q(
        `SELECT l.id, l.order_id, l.seq FROM execution_logs l WHERE l.seq = 2 AND l.order_id <> $1
         AND EXISTS (SELECT 1 FROM execution_logs n WHERE n.order_id = l.order_id AND n.seq = 3) ORDER BY l.recorded_at LIMIT 1`,
        [edited.order_id],
      );
      await q(`DELETE FROM execution_logs WHERE id = $1`, [gap.id]);
      const [cancelled] = await q(`SELECT id FROM orders WHERE status = 'CANCELLED' LIMIT 1`);
      await q(`UPDATE orders SET status = 'EXPIRED' WHERE id = $1`, [cancelled.id]);

      const r = await report(app);
      const byType = (t: string) => nodes(r).filter((n: any) => n.type === t);
      const fields = (t: string, id: string) =>
        byType(t)
          .filter((n: any) => n.positionId === id || n.orderId === id)
          .map((n: any) => n.field)
          .sort();
      expect(fields('REPLAY_MISMATCH', open.id)).toEqual(['quantity', 'realizedPnl']);
      expect(
        byType('REPLAY_MISMATCH').find((n: any) => n.field === 'realizedPnl' && n.positionId === open.id),
      ).toMatchObject({
        expected: open.pnl.replace(/\.?0+$/, '') || '0',
      });
      expect(fields('QUANTITY_MISMATCH', open.id)).toEqual(['quantity']);
      expect(fields('REPLAY_MISMATCH', closed.id)).toEqual(['costBasis']);
      expect(fields('ORDER_FILL_MISMATCH', order.id)).toEqual(['averageFillPrice']);
      expect(byType('ORDER_FILL_MISMATCH')[0]).toMatchObject({
        expected: expect.stringMatching(/^\d/),
        severity: 'ERROR',
      });
      expect(byType('POSITION_WITHOUT_ORDERS').map((n: any) => n.positionId)).toEqual([bare.id]);
      expect(byType('ORPHANED_POSITION_REFERENCE')).toEqual([
        expect.objectContaining({ fillId: stray.id, positionId: foreign.id, field: 'fill.positionId' }),
      ]);
      const broken = byType('BROKEN_LOG');
      expect(broken).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ entryId: edited.id, field: 'hash', severity: 'CRITICAL' }),
          expect.objectContaining({ orderId: gap.order_id, field: 'seq', expected: '2', actual: '3' }),
          expect.objectContaining({ entryId: gap.id, field: 'leaf', actual: 'missing' }),
        ]),
      );
      expect(byType('ORDER_LOG_MISMATCH')).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ orderId: cancelled.id, field: 'status', expected: 'CANCELLED', actual: 'EXPIRED' }),
        ]),
      );
      for (const n of nodes(r)) expect(n.message.length).toBeGreaterThan(20);

      const dry = await reconcile(app, false);
      expect(dry.failed).toBe(0);
      const leftTypes = new Set(dry.leftAlone.map((i: any) => i.type));
      // The bare position has no fill and no order: its quantity is for a person, like the log's problems.
      expect([...leftTypes].sort()).toEqual([
        'BROKEN_LOG',
        'ORDER_LOG_MISMATCH',
        'POSITION_WITHOUT_ORDERS',
        'QUANTITY_MISMATCH',
      ]);
      expect(dry.leftAlone.filter((i: any) => i.type === 'QUANTITY_MISMATCH').map((i: any) => i.positionId)).toEqual([
        bare.id,
      ]);
      const applied = await reconcile(app, true);
      expect(applied.failed).toBe(0);
      expect(applied.fixed).toBe(dry.proposed);
      const [p1] = await q(
        `SELECT quantity::text AS quantity, realized_pnl::text AS pnl FROM positions WHERE id = $1`,
        [open.id],
      );
      expect(p1).toEqual({ quantity: open.quantity, pnl: open.pnl });
      const [o1] = await q(`SELECT average_fill_price::text AS avg FROM orders WHERE id = $1`, [order.id]);
      expect(o1.avg).toBe(order.avg);
      const [f1] = await q(`SELECT position_id FROM fills WHERE id = $1`, [stray.id]);
      expect(f1.position_id).toBe(stray.position_id);
      const recovered = await q(
        `SELECT count(*)::int AS n FROM execution_logs WHERE action = 'RECOVERED' AND actor = $1 AND reason LIKE 'Reconciliation:%'`,
        [ADMIN.sub],
      );
      expect(recovered[0].n).toBeGreaterThanOrEqual(applied.fixed);

      const second = await reconcile(app, false);
      expect(second.proposed).toBe(0);
      const after = await report(app);
      expect(counts(after)).toEqual({
        BROKEN_LOG: broken.length,
        ORDER_LOG_MISMATCH: byType('ORDER_LOG_MISMATCH').length,
        POSITION_WITHOUT_ORDERS: 1,
        QUANTITY_MISMATCH: 1,
      });
    });
  });
});

describe('a report over a time range', () => {
  it('checks a flip successor opened in the range against the replay of its whole book (the chain before the range included)', async () => {
    await scenario(async ({ app, su }) => {
      const [flipped] = (
        await su.query(
          `SELECT p.id, p.opened_at, p.realized_pnl::text AS pnl FROM positions p
           WHERE p.flipped_from_id IS NOT NULL ORDER BY p.opened_at LIMIT 1`,
        )
      ).rows;
      expect(flipped).toBeDefined();
      await su.query(`UPDATE positions SET cost_basis = cost_basis + 0.5 WHERE id = $1`, [flipped.id]);
      const at = new Date(flipped.opened_at).getTime();
      const window = { from: new Date(at).toISOString(), to: new Date(at + 1).toISOString() };
      const inside = await report(app, { ...window, types: ['REPLAY_MISMATCH'] });
      expect(nodes(inside).map((n: any) => [n.positionId, n.field])).toEqual([[flipped.id, 'costBasis']]);
      const before = await report(app, {
        from: new Date(at - 86_400_000).toISOString(),
        to: new Date(at).toISOString(),
        types: ['REPLAY_MISMATCH'],
      });
      expect(before.issueCount).toBe(0);
      expect((await report(app, { types: ['REPLAY_MISMATCH'] })).issueCount).toBe(1);
    });
  });
});

describe('reconcile during ingestion', () => {
  it('loses nothing: fills recorded while books are being fixed all land, and every book ends equal to its replay', async () => {
    await scenario(async ({ app, su }) => {
      const traders = await Promise.all(Array.from({ length: 4 }, () => makeTrader(app.dataSource.manager)));
      const orders: string[] = [];
      for (const [i, t] of traders.entries()) {
        for (const symbol of ['AAA', 'BBB']) {
          const id = (
            await ok(app, SUBMIT, {
              input: {
                traderId: t.id,
                clientOrderId: `c-${i}-${symbol}`,
                symbol,
                side: 'BUY',
                orderType: 'MARKET',
                quantity: '100000',
              },
            })
          ).submitOrder.id;
          orders.push(id);
        }
      }
      const t0 = Date.UTC(2026, 10, 24, 10);
      let n = 0;
      const batch = (count: number) =>
        Array.from({ length: count }, () => {
          n += 1;
          return {
            orderId: orders[n % orders.length],
            execId: `rc-${n}`,
            quantity: '1',
            price: `${100 + (n % 13)}`,
            // Out of order on purpose: every batch replays books.
            executedAt: new Date(t0 + ((n * 7919) % 100000) * 1000).toISOString(),
          };
        });
      await ok(app, BATCH, { inputs: batch(80) });
      // Every position of these books tampered with.
      await su.query(
        `UPDATE positions SET realized_pnl = realized_pnl + 1, quantity = quantity + 1 WHERE trader_id = ANY($1::uuid[])`,
        [traders.map((t) => t.id)],
      );
      const writers = Array.from({ length: 6 }, () => ok(app, BATCH, { inputs: batch(40) }));
      const fixing = reconcile(app, true);
      const [results, fixed] = await Promise.all([Promise.all(writers), fixing]);
      expect(results.every((r) => r.recordExecutions.applied === 40)).toBe(true);
      expect(fixed.failed).toBe(0);
      // And once more, as a later scheduled run would.
      await reconcile(app, true);
      const [{ fills }] = (await su.query(`SELECT count(*)::int AS fills FROM fills WHERE exec_id LIKE 'rc-%'`)).rows;
      expect(fills).toBe(80 + 6 * 40);
      const after = await report(app, { types: ['QUANTITY_MISMATCH', 'REPLAY_MISMATCH', 'ORDER_FILL_MISMATCH'] });
      expect(after.issueCount).toBe(0);
      expect((await reconcile(app, false)).proposed).toBe(0);
    });
  });
});

describe('Position.auditSummary', () => {
  const SUMMARY = `query { positions(first: 100) { edges { node { id quantity realizedPnl
    auditSummary { quantity signedFillQuantity carriedQuantity quantityConsistent realizedPnl replayedRealizedPnl
      realizedPnlConsistent orderCount exceptionCount firstExecutionAt lastExecutionAt } } } } }`;

  it('is batched (a constant number of statements for any number of positions) and says what disagrees', async () => {
    await scenario(async ({ app, su }) => {
      app.statements.reset();
      const all = (await ok(app, SUMMARY, {}, COMPLIANCE)).positions.edges.map((e: any) => e.node);
      const many = app.statements.count;
      expect(all.length).toBeGreaterThan(5);
      app.statements.reset();
      await ok(app, SUMMARY.replace('first: 100', 'first: 1'), {}, COMPLIANCE);
      expect(app.statements.count).toBe(many);
      for (const p of all) {
        expect(p.auditSummary).toMatchObject({ quantityConsistent: true, realizedPnlConsistent: true });
        expect(p.auditSummary.quantity).toBe(p.quantity);
        expect(p.auditSummary.orderCount).toBeGreaterThan(0);
      }
      const flipped = all.find((p: any) => p.auditSummary.carriedQuantity !== '0');
      if (flipped) {
        expect(
          Number(flipped.auditSummary.signedFillQuantity) + Number(flipped.auditSummary.carriedQuantity),
        ).toBeCloseTo(Number(flipped.quantity));
      }
      const target =
        all.find((p: any) => p.realizedPnl !== '0' && p.quantity !== '0') ?? all.find((p: any) => p.quantity !== '0');
      await su.query(`UPDATE positions SET realized_pnl = realized_pnl + 7, quantity = quantity - 1 WHERE id = $1`, [
        target.id,
      ]);
      const again = (await ok(app, SUMMARY, {}, COMPLIANCE)).positions.edges.map((e: any) => e.node);
      const tampered = again.find((p: any) => p.id === target.id).auditSummary;
      expect(tampered).toMatchObject({ quantityConsistent: false, realizedPnlConsistent: false });
      expect(tampered.replayedRealizedPnl).toBe(target.auditSummary.replayedRealizedPnl);
      // A trader sees the summary of their own positions only (row-level security).
      const [{ trader_id }] = (await su.query(`SELECT trader_id FROM positions WHERE id = $1`, [target.id])).rows;
      const own = (await ok(app, SUMMARY, {}, traderPrincipal(trader_id))).positions.edges;
      expect(own.length).toBeGreaterThan(0);
      expect(own.every((e: any) => e.node.auditSummary !== null)).toBe(true);
    });
  });
});

describe('scheduled work', () => {
  it('a report with a warning above the threshold, a reconciliation, never two at once across processes', async () => {
    await scenario(async ({ app, su }) => {
      const lines: { level: string; message: string; fields: any }[] = [];
      const log = (level: string) => (fields: object, message: string) => lines.push({ level, message, fields });
      const scheduler = (threshold: number) =>
        new ComplianceScheduler(app.dataSource, TEST_LOG_KEY, {
          dataQualityMinutes: 0,
          alertThreshold: threshold,
          reconcileMinutes: 0,
          reconcileMaxFixes: 10,
          statementTimeoutMs: 10_000,
          log: { info: log('info'), warn: log('warn'), error: log('error') },
        });
      const [one, two] = [scheduler(0), scheduler(0)];
      // Another process holds the report's lock: this one skips its turn.
      await su.query(`SELECT pg_advisory_lock($1)`, [REPORT_LOCK]);
      expect(await one.runReport()).toBe(false);
      expect(one.counters).toMatchObject({ reportRuns: 0, reportSkipped: 1 });
      await su.query(`SELECT pg_advisory_unlock($1)`, [REPORT_LOCK]);
      expect(await one.runReport()).toBe(true);
      expect(one.counters).toMatchObject({ reportRuns: 1, issueCount: 1, issuesByType: { UNLINKED_FILLED_ORDER: 1 } });
      expect(lines.at(-1)).toMatchObject({
        level: 'warn',
        message: expect.stringContaining('1 UNLINKED_FILLED_ORDER'),
      });
      // Under the threshold: an info line.
      expect(await scheduler(5).runReport()).toBe(true);
      expect(lines.at(-1)?.level).toBe('info');

      await su.query(`SELECT pg_advisory_lock($1)`, [RECONCILE_LOCK]);
      expect(await two.runReconcile()).toBe(false);
      await su.query(`SELECT pg_advisory_unlock($1)`, [RECONCILE_LOCK]);
      expect(await two.runReconcile()).toBe(true);
      expect(two.counters).toMatchObject({ reconcileRuns: 1, reconcileSkipped: 1, fixesApplied: 1, fixesFailed: 0 });
      const [entry] = (
        await su.query(
          `SELECT actor, source, action FROM execution_logs WHERE order_id = $1 ORDER BY seq DESC LIMIT 1`,
          [unlinkedOrderId],
        )
      ).rows;
      expect(entry).toEqual({ actor: 'system:reconcile', source: 'RECONCILIATION', action: 'RECOVERED' });
      expect(await one.runReport()).toBe(true);
      expect(one.counters.issueCount).toBe(0);
      // Two at once neither fails (which one runs is the lock's choice; the held-lock cases above prove the skip).
      const both = await Promise.all([one.runReconcile(), two.runReconcile()]);
      expect(both.filter(Boolean).length).toBeGreaterThanOrEqual(1);
      await Promise.all([one.stop(), two.stop()]);
    });
  });
});

describe("examples/compliance (the README's compliance section), in order, on the demo data", () => {
  const dir = path.join(__dirname, '..', 'examples', 'compliance');

  it('each returns its documented result: the report finds the unlinked order, the dry run proposes the link, apply fixes it, the next run finds nothing', async () => {
    await scenario(async ({ app }) => {
      const names = readdirSync(dir)
        .filter((f) => f.endsWith('.graphql'))
        .sort();
      expect(names).toHaveLength(5);
      for (const name of names) {
        const query = readFileSync(path.join(dir, name), 'utf8');
        const res = await app.run(query, {}, name.includes('reconcile') ? ADMIN : COMPLIANCE);
        expect(res.errors).toBeUndefined();
        const file = path.join(dir, name.replace(/\.graphql$/, '.result.json'));
        const actual = JSON.stringify({ data: res.data }, null, 2) + '\n';
        // UPDATE_EXAMPLES=1 npm test -- compliance rewrites the files after a deliberate change.
        if (process.env.UPDATE_EXAMPLES === '1') writeFileSync(file, actual);
        expect(actual).toBe(readFileSync(file, 'utf8'));
      }
      const results = names.map(
        (n) => JSON.parse(readFileSync(path.join(dir, n.replace(/\.graphql$/, '.result.json')), 'utf8')).data,
      );
      expect(results[0].dataQualityReport.totals.find((t: any) => t.type === 'UNLINKED_FILLED_ORDER').count).toBe(1);
      expect(results[1].reconcile).toMatchObject({ applied: false, proposed: 1, fixed: 0 });
      expect(results[2].reconcile).toMatchObject({ applied: true, proposed: 1, fixed: 1 });
      expect(results[3].reconcile).toMatchObject({ proposed: 0, fixes: [] });
    });
  });
});
