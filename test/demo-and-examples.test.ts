import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Dec } from '../src/decimal';
import { loadDemoData } from '../src/demo-data';
import { contractMultiplier } from '../src/position/instrument';
import { type BookFill, netBook } from '../src/position/position.math';
import { COMPLIANCE, createTestDatabase, startTestApp, type TestApp } from './harness';

const EXAMPLES = path.join(__dirname, '..', 'examples');

let app: TestApp;
let drop: () => Promise<void>;
beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  app = await startTestApp(db.url);
  await loadDemoData(app.dataSource);
});
afterAll(async () => {
  await app?.close();
  await drop?.();
});

describe('demo data', () => {
  it('has every kind of order and position the README promises', async () => {
    const q = (sql: string) => app.dataSource.query(sql) as Promise<{ k: string; n: number }[]>;
    const statuses = Object.fromEntries(
      (await q(`SELECT status::text AS k, count(*)::int AS n FROM orders GROUP BY 1`)).map((r) => [r.k, r.n]),
    );
    for (const s of ['PENDING', 'ACCEPTED', 'PARTIAL', 'FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED'])
      expect(statuses[s]).toBeGreaterThan(0);
    const positions = Object.fromEntries(
      (await q(`SELECT status::text AS k, count(*)::int AS n FROM positions GROUP BY 1`)).map((r) => [r.k, r.n]),
    );
    expect(positions.OPEN).toBeGreaterThan(0);
    expect(positions.CLOSED).toBeGreaterThan(0);
    const [unlinked] = await q(
      `SELECT 'x' AS k, count(*)::int AS n FROM orders WHERE status = 'FILLED' AND position_id IS NULL`,
    );
    expect(unlinked.n).toBe(1);
    const [traders] = await q(`SELECT 'x' AS k, count(*)::int AS n FROM traders`);
    expect(traders.n).toBeGreaterThanOrEqual(3);
  });

  it('obeys the invariants of DOMAIN.md §4: positions replay from their fills, orders sum their fills', async () => {
    // Every book (trader, symbol) is the replay of its fills in (executed_at, arrival) order.
    const books = await app.dataSource.query(`SELECT DISTINCT trader_id, symbol FROM fills ORDER BY 1, 2`);
    expect(books.length).toBeGreaterThan(3);
    for (const b of books) {
      const fills = await app.dataSource.query(
        `SELECT f.id, f.quantity::text AS q, f.price::text AS p, f.commission::text AS c, f.executed_at, f.position_id, o.side
         FROM fills f JOIN orders o ON o.id = f.order_id WHERE f.trader_id = $1 AND f.symbol = $2 ORDER BY f.executed_at, f.arrival`,
        [b.trader_id, b.symbol],
      );
      const segments = netBook<BookFill & { id: string }>(
        null,
        fills.map((f: any): BookFill & { id: string } => ({
          id: f.id,
          signedQuantity: f.side === 'BUY' ? new Dec(f.q) : new Dec(f.q).negated(),
          price: new Dec(f.p),
          commission: new Dec(f.c),
          executedAt: f.executed_at,
        })),
        contractMultiplier(b.symbol, {}),
      );
      const positions = await app.dataSource.query(
        `SELECT id, quantity::text AS q, cost_basis::text AS cost, realized_pnl::text AS pnl, total_commission::text AS comm, status
         FROM positions WHERE trader_id = $1 AND symbol = $2 ORDER BY opened_at, created_at`,
        [b.trader_id, b.symbol],
      );
      expect(positions.map((p: any) => [p.q, p.cost, p.pnl, p.comm, p.status].map(String))).toEqual(
        segments.map((s) => [
          s.state.quantity.toFixed(9),
          new Dec(s.state.costBasis).toFixed(),
          s.state.realizedPnl.toFixed(),
          s.state.totalCommission.toFixed(),
          s.closedAt ? 'CLOSED' : 'OPEN',
        ]),
      );
      segments.forEach((s, i) => {
        for (const f of s.fills) expect(fills.find((x: any) => x.id === f.id).position_id).toBe(positions[i].id);
      });
    }
    const mismatched = await app.dataSource.query(
      `SELECT o.id FROM orders o LEFT JOIN fills f ON f.order_id = o.id GROUP BY o.id HAVING o.filled_quantity <> coalesce(sum(f.quantity), 0)`,
    );
    expect(mismatched).toEqual([]);
    const broken = await app.dataSource.query(
      `SELECT id FROM execution_logs l WHERE hash <> execution_log_hash(prev_hash, l)`,
    );
    expect(broken).toEqual([]);
    // Every demo entry is sealed, enters the tree, and the whole log and every order verify.
    const [round] = await app.integrator.integrateAll();
    expect(round.refused).toEqual([]);
    const verified = await app.run(
      `{ verifyLedger { valid treeSize pendingEntries } orders(first: 100) { edges { node { id } } } }`,
      {},
      COMPLIANCE,
    );
    expect(verified.data).toMatchObject({ verifyLedger: { valid: true, pendingEntries: 0 } });
    for (const { node } of (verified.data as any).orders.edges) {
      const v = await app.run(
        `query($o: ID!) { verifyExecutionLog(orderId: $o) { valid problem } }`,
        { o: node.id },
        COMPLIANCE,
      );
      expect(v.data).toEqual({ verifyExecutionLog: { valid: true, problem: null } });
    }
  });

  it('is not loaded twice', async () => {
    await expect(loadDemoData(app.dataSource)).rejects.toThrow(/already loaded/);
  });
});

describe('examples/ (the README queries) against the demo data', () => {
  const names = readdirSync(EXAMPLES)
    .filter((f) => f.endsWith('.graphql'))
    .map((f) => f.replace(/\.graphql$/, ''));

  it('are all there', () => {
    expect(names.sort()).toEqual(['position-audit-trail', 'trader-orders-for-a-day', 'unlinked-filled-orders']);
  });

  it.each(names)('%s returns its documented result', async (name) => {
    const query = readFileSync(path.join(EXAMPLES, `${name}.graphql`), 'utf8');
    const variables = JSON.parse(readFileSync(path.join(EXAMPLES, `${name}.variables.json`), 'utf8'));
    const res = await app.run(query, variables);
    expect(res.errors).toBeUndefined();
    const resultFile = path.join(EXAMPLES, `${name}.result.json`);
    const actual = JSON.stringify({ data: res.data }, null, 2) + '\n';
    // UPDATE_EXAMPLES=1 npm test -- demo-and-examples rewrites the files after a deliberate change.
    if (process.env.UPDATE_EXAMPLES === '1') writeFileSync(resultFile, actual);
    expect(actual).toBe(readFileSync(resultFile, 'utf8'));
  });
});
