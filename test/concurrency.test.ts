import { Dec } from '../src/decimal';
import { makeOrder, makeTrader } from './factories';
import { createTestDatabase, startTestApp, type TestApp } from './harness';

/** Many requests at once, each on its own pooled connection, as an execution gateway would send them. */
let app: TestApp;
let drop: () => Promise<void>;
beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  app = await startTestApp(db.url, { poolMax: 20 });
});
afterAll(async () => {
  await app?.close();
  await drop?.();
});

const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`;
const VERIFY = `query($o: ID!) { verifyExecutionLog(orderId: $o) { valid entries firstBrokenSeq } }`;

async function newOrder(quantity: string, symbol = 'CONC') {
  const trader = await makeTrader(app.dataSource.manager);
  return makeOrder(app.dataSource.manager, { traderId: trader.id, symbol, quantity: new Dec(quantity) });
}

it('100 concurrent fills on one order give exactly the right totals and position, without deadlock', async () => {
  const order = await newOrder('5050');
  // Quantities 1..100 at prices 100.01..101.00: sum 5050, exact notional known.
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      app.run(RECORD, {
        input: {
          orderId: order.id,
          execId: `C${i}`,
          quantity: String(i + 1),
          price: new Dec(100).plus(new Dec(i + 1).div(100)).toFixed(),
          executedAt: new Date(Date.UTC(2026, 0, 1, 10, 0, 0, i)).toISOString(),
        },
      }),
    ),
  );
  expect(results.filter((r) => r.errors)).toEqual([]);
  const [o] = await app.dataSource.query(
    `SELECT status, filled_quantity::text AS f, average_fill_price::text AS a, position_id FROM orders WHERE id = $1`,
    [order.id],
  );
  // Σ q·p = Σ i·(100 + i/100) = 100·5050 + 338350/100 = 508383.5; / 5050
  const expectedAvg = new Dec('508383.5').div(5050).toDecimalPlaces(18).toFixed();
  expect({ status: o.status, filled: new Dec(o.f).toFixed(), avg: new Dec(o.a).toFixed() }).toEqual({
    status: 'FILLED',
    filled: '5050',
    avg: expectedAvg,
  });
  const positions = await app.dataSource.query(
    `SELECT id, quantity::text AS q, average_entry_price::text AS a FROM positions WHERE trader_id = $1`,
    [order.traderId],
  );
  expect(positions).toHaveLength(1);
  expect(positions[0].id).toBe(o.position_id);
  expect(new Dec(positions[0].q).toFixed()).toBe('5050');
  expect(new Dec(positions[0].a).toFixed()).toBe(expectedAvg);
  const v = await app.run(VERIFY, { o: order.id });
  expect(v.data).toEqual({ verifyExecutionLog: { valid: true, entries: 101, firstBrokenSeq: null } });
});

it('the same execution sent 3 times at once is applied once', async () => {
  for (let round = 0; round < 5; round++) {
    const order = await newOrder('10');
    const input = {
      orderId: order.id,
      execId: `SAME-${order.id}`,
      quantity: '4',
      price: '99.5',
      executedAt: new Date().toISOString(),
    };
    const results = await Promise.all([1, 2, 3].map(() => app.run(RECORD, { input })));
    expect(results.map((r) => (r.data as any)?.recordExecution.status).sort()).toEqual([
      'APPLIED',
      'DUPLICATE',
      'DUPLICATE',
    ]);
    const [{ n, f }] = await app.dataSource.query(
      `SELECT count(*)::int AS n, sum(quantity)::text AS f FROM fills WHERE order_id = $1`,
      [order.id],
    );
    expect({ n, f: new Dec(f).toFixed() }).toEqual({ n: 1, f: '4' });
  }
});

it('8 writers × 50 log appends on one order leave one chain, no fork, no gap, and it verifies', async () => {
  const order = await newOrder('400');
  await Promise.all(
    Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 50; i++) {
        const r = await app.run(RECORD, {
          input: {
            orderId: order.id,
            execId: `W${w}-${i}`,
            quantity: '1',
            price: '10',
            executedAt: new Date().toISOString(),
          },
        });
        expect(r.errors).toBeUndefined();
      }
    }),
  );
  const rows = await app.dataSource.query(
    `SELECT seq, prev_hash, hash FROM execution_logs WHERE order_id = $1 ORDER BY seq`,
    [order.id],
  );
  // 400 fills, plus POSITION_LINKED once (the factory order has no SUBMITTED entry).
  expect(rows).toHaveLength(401);
  rows.forEach((r: any, i: number) => {
    expect(r.seq).toBe(i + 1);
    expect(r.prev_hash).toBe(i === 0 ? null : rows[i - 1].hash);
  });
  expect(new Set(rows.map((r: any) => r.prev_hash)).size).toBe(401);
  expect((await app.run(VERIFY, { o: order.id })).data).toEqual({
    verifyExecutionLog: { valid: true, entries: 401, firstBrokenSeq: null },
  });
});

it('concurrent fills on different orders of one trader and symbol net into one position', async () => {
  const trader = await makeTrader(app.dataSource.manager);
  const orders = await Promise.all(
    Array.from({ length: 10 }, () =>
      makeOrder(app.dataSource.manager, { traderId: trader.id, symbol: 'NET', quantity: new Dec(5) }),
    ),
  );
  const results = await Promise.all(
    orders.flatMap((o, k) =>
      [0, 1, 2, 3, 4].map((i) =>
        app.run(RECORD, {
          input: {
            orderId: o.id,
            execId: `N${k}-${i}`,
            quantity: '1',
            price: '20',
            executedAt: new Date().toISOString(),
          },
        }),
      ),
    ),
  );
  expect(results.filter((r) => r.errors)).toEqual([]);
  const positions = await app.dataSource.query(
    `SELECT quantity::text AS q, status FROM positions WHERE trader_id = $1`,
    [trader.id],
  );
  expect(positions.map((p: any) => [new Dec(p.q).toFixed(), p.status])).toEqual([['50', 'OPEN']]);
});
