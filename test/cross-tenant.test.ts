import { Client } from 'pg';
import { createTestDatabase, COMPLIANCE, SERVICE, startTestApp, type TestApp, traderPrincipal } from './harness';

/**
 * Trader A tries every path to trader B's data and gets none of it. The database enforces it (row
 * level security on the request's transaction), so these hold without any WHERE clause of ours.
 */
let app: TestApp;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
const ids = { a: {} as Record<string, string>, b: {} as Record<string, string> };

async function ok(query: string, variables: Record<string, unknown>, principal = SERVICE): Promise<any> {
  const res = await app.run(query, variables, principal);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data;
}

/** A trader with one filled order (so a position, a fill and log entries) and one working order. */
async function seedTrader(name: string, key: 'a' | 'b'): Promise<void> {
  const [{ id }] = await app.dataSource.query(`INSERT INTO traders (name) VALUES ($1) RETURNING id`, [name]);
  ids[key].trader = id;
  const submit = `mutation($i: SubmitOrderInput!) { submitOrder(input: $i) { id } }`;
  ids[key].order = (
    await ok(submit, {
      i: { traderId: id, clientOrderId: 'o1', symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity: '10' },
    })
  ).submitOrder.id;
  ids[key].working = (
    await ok(submit, {
      i: { traderId: id, clientOrderId: 'o2', symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity: '5' },
    })
  ).submitOrder.id;
  const r = await ok(
    `mutation($o: ID!, $x: String!) { recordExecution(input: { orderId: $o, execId: $x, quantity: "10", price: "100", executedAt: "2026-01-01T10:00:00Z" }) { fill { id } position { id } } }`,
    { o: ids[key].order, x: `x1-${key}` },
  );
  ids[key].fill = r.recordExecution.fill.id;
  ids[key].position = r.recordExecution.position.id;
}

beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestApp(db.url, { poolMax: 1 });
  await seedTrader('Alice', 'a');
  await seedTrader('Bob', 'b');
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const A = () => traderPrincipal(ids.a.trader);
const B = () => traderPrincipal(ids.b.trader);
const asA = (query: string, variables: Record<string, unknown> = {}) => app.run(query, variables, A());

describe('trader A reading', () => {
  it("gets null for B's position, order, fill and trader by id", async () => {
    const res = await asA(
      `query($p: ID!, $o: ID!, $f: ID!, $t: ID!) { position(id: $p) { id } order(id: $o) { id } fill(id: $f) { id } trader(id: $t) { id } }`,
      {
        p: ids.b.position,
        o: ids.b.order,
        f: ids.b.fill,
        t: ids.b.trader,
      },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ position: null, order: null, fill: null, trader: null });
  });

  it('sees own data fully, with nested fields', async () => {
    const res = await asA(
      `query($p: ID!) { position(id: $p) { trader { name } orders { totalCount edges { node { fills { id } executionLogs { action } } } } fills { id } } }`,
      {
        p: ids.a.position,
      },
    );
    expect(res.errors).toBeUndefined();
    expect((res.data as any).position.trader.name).toBe('Alice');
    expect((res.data as any).position.orders.totalCount).toBe(1);
  });

  it("gets nothing of B in connections, even with filters naming B's ids, and totalCount says so", async () => {
    const res = await asA(
      `query($t: ID!, $p: ID!, $o: ID!) {
        traders { totalCount edges { node { name } } }
        positions(filter: { traderId: $t }) { totalCount edges { node { id } } }
        byPosition: orders(filter: { positionId: $p }) { totalCount }
        orders(filter: { traderId: $t }) { totalCount edges { node { id } } }
        allOrders: orders { totalCount }
        executionLogs(filter: { orderId: $o }) { totalCount }
        allLogs: executionLogs { totalCount }
        allPositions: positions { totalCount }
      }`,
      { t: ids.b.trader, p: ids.b.position, o: ids.b.order },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toMatchObject({
      traders: { totalCount: 1, edges: [{ node: { name: 'Alice' } }] },
      positions: { totalCount: 0, edges: [] },
      byPosition: { totalCount: 0 },
      orders: { totalCount: 0, edges: [] },
      allOrders: { totalCount: 2 },
      executionLogs: { totalCount: 0 },
      allPositions: { totalCount: 1 },
    });
    const logs = await asA(`{ executionLogs(first: 500) { edges { node { traderId } } } }`);
    expect(new Set((logs.data as any).executionLogs.edges.map((e: any) => e.node.traderId))).toEqual(
      new Set([ids.a.trader]),
    );
  });

  it("mixes A's and B's keys in one DataLoader batch and gets only A's rows", async () => {
    const res = await asA(
      `query($a1: ID!, $a2: ID!, $b1: ID!, $b2: ID!) {
      a1: order(id: $a1) { id fills { id } executionLogs { id } }
      b1: order(id: $b1) { id fills { id } executionLogs { id } }
      a2: order(id: $a2) { id position { id } }
      b2: order(id: $b2) { id position { id } }
    }`,
      { a1: ids.a.order, a2: ids.a.working, b1: ids.b.order, b2: ids.b.working },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toMatchObject({ a1: { id: ids.a.order }, b1: null, a2: { id: ids.a.working }, b2: null });
  });

  it("verifyExecutionLog of B's order is NOT_FOUND for A, as for an order that does not exist", async () => {
    const res = await asA(`query($o: ID!) { verifyExecutionLog(orderId: $o) { entries } }`, { o: ids.b.order });
    expect(res.data).toBeNull();
    expect(res.errors?.[0].extensions?.code).toBe('NOT_FOUND');
  });

  it("A's and B's requests interleaved concurrently on a pool of one connection never see each other", async () => {
    const q = `{ orders { totalCount edges { node { traderId } } } positions { edges { node { traderId } } } }`;
    const runs = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        (i % 2 ? app.run(q, {}, A()) : app.run(q, {}, B())).then((r) => ({
          who: i % 2 ? ids.a.trader : ids.b.trader,
          r,
        })),
      ),
    );
    for (const { who, r } of runs) {
      expect(r.errors).toBeUndefined();
      const d = r.data as any;
      expect(d.orders.totalCount).toBe(2);
      expect([...d.orders.edges, ...d.positions.edges].every((e: any) => e.node.traderId === who)).toBe(true);
    }
  });
});

describe('trader A writing', () => {
  const snapshot = () => app.dataSource.query(`SELECT id, status, position_id FROM orders ORDER BY id`);

  it("cannot cancel B's order (it does not exist for A) and changes nothing", async () => {
    const before = await snapshot();
    const res = await asA(`mutation($o: ID!) { cancelOrder(orderId: $o) { id } }`, { o: ids.b.working });
    expect(res.errors?.[0].extensions?.code).toBe('NOT_FOUND');
    expect(await snapshot()).toEqual(before);
  });

  it('cannot submit an order for B, link, unlink or record executions', async () => {
    const before = await snapshot();
    const cases: [string, Record<string, unknown>][] = [
      [
        `mutation($t: ID!) { submitOrder(input: { traderId: $t, clientOrderId: "evil", symbol: "AAPL", side: SELL, orderType: MARKET, quantity: "1" }) { id } }`,
        { t: ids.b.trader },
      ],
      [
        `mutation($o: ID!, $p: ID!) { linkOrderToPosition(orderId: $o, positionId: $p) { id } }`,
        { o: ids.b.working, p: ids.b.position },
      ],
      [
        `mutation($o: ID!, $p: ID!) { linkOrderToPosition(orderId: $o, positionId: $p) { id } }`,
        { o: ids.a.working, p: ids.b.position },
      ],
      [`mutation($o: ID!) { unlinkOrder(orderId: $o) { id } }`, { o: ids.b.order }],
      [
        `mutation($o: ID!) { recordExecution(input: { orderId: $o, execId: "evil", quantity: "1", price: "1", executedAt: "2026-01-01T00:00:00Z" }) { status } }`,
        { o: ids.b.working },
      ],
    ];
    for (const [query, variables] of cases) {
      const res = await asA(query, variables);
      expect(res.errors?.[0].extensions?.code).toBe('FORBIDDEN');
    }
    expect(await snapshot()).toEqual(before);
  });

  it('can submit and cancel its own orders', async () => {
    const o = await ok(
      `mutation($t: ID!) { submitOrder(input: { traderId: $t, clientOrderId: "mine", symbol: "MSFT", side: BUY, orderType: MARKET, quantity: "1" }) { id executionLogs { actor } } }`,
      { t: ids.a.trader },
      A(),
    );
    expect(o.submitOrder.executionLogs[0].actor).toBe(ids.a.trader);
    const c = await ok(`mutation($o: ID!) { cancelOrder(orderId: $o) { status } }`, { o: o.submitOrder.id }, A());
    expect(c.cancelOrder.status).toBe('CANCELLED');
  });
});

describe('compliance', () => {
  it('reads everyone and writes nothing', async () => {
    const r = await app.run(`{ orders { totalCount } traders { totalCount } }`, {}, COMPLIANCE);
    expect((r.data as any).traders.totalCount).toBe(2);
    const before = await app.dataSource.query(`SELECT count(*)::int AS n FROM execution_logs`);
    const w = await app.run(`mutation($o: ID!) { cancelOrder(orderId: $o) { id } }`, { o: ids.b.working }, COMPLIANCE);
    expect(w.errors?.[0]).toMatchObject({
      extensions: { code: 'FORBIDDEN' },
      message: expect.stringMatching(/A compliance may not cancel orders/),
    });
    expect(await app.dataSource.query(`SELECT count(*)::int AS n FROM execution_logs`)).toEqual(before);
  });
});

describe('in the database itself, without our WHERE clauses', () => {
  async function asRole(fn: (c: Client) => Promise<void>, settings: string): Promise<void> {
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query(`SET LOCAL ROLE tradetrail_app; ${settings}`);
      await fn(c);
    } finally {
      await c.query('ROLLBACK').catch(() => undefined);
      await c.end();
    }
  }

  it("the application role with A's setting sees none of B's rows and cannot change them", async () => {
    await asRole(
      async (c) => {
        for (const table of ['traders', 'positions', 'orders', 'execution_logs']) {
          const col = table === 'traders' ? 'id' : 'trader_id';
          const { rows } = await c.query(`SELECT DISTINCT ${col} AS t FROM ${table}`);
          expect(rows.map((r) => r.t)).toEqual([ids.a.trader]);
        }
        const fills = await c.query(`SELECT f.id FROM fills f WHERE f.id = $1`, [ids.b.fill]);
        expect(fills.rowCount).toBe(0);
        expect((await c.query(`UPDATE orders SET status = 'CANCELLED' WHERE id = $1`, [ids.b.working])).rowCount).toBe(
          0,
        );
        expect((await c.query(`UPDATE positions SET quantity = 0 WHERE id = $1`, [ids.b.position])).rowCount).toBe(0);
        expect((await c.query(`UPDATE fills SET position_id = NULL WHERE id = $1`, [ids.b.fill])).rowCount).toBe(0);
        await c.query('SAVEPOINT s');
        await expect(
          c.query(
            `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity) VALUES ($1, 'x', 'A', 'BUY', 'MARKET', 1)`,
            [ids.b.trader],
          ),
        ).rejects.toMatchObject({ code: '42501' });
        await c.query('ROLLBACK TO SAVEPOINT s');
        await expect(
          c.query(
            `INSERT INTO execution_logs (order_id, trader_id, action, actor, source, occurred_at) VALUES ($1, $2, 'RECOVERED', 'x', 'x', now())`,
            [ids.b.order, ids.b.trader],
          ),
        ).rejects.toMatchObject({ code: '42501' });
      },
      `SET LOCAL tradetrail.role = 'trader'; SET LOCAL tradetrail.trader_id = '${'$A'}'`.replace('$A', ids.a.trader),
    );
  });

  it('without any setting, the application role sees no rows at all', async () => {
    await asRole(async (c) => {
      for (const table of ['traders', 'positions', 'orders', 'fills', 'execution_logs']) {
        expect((await c.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(0);
      }
    }, '');
  });

  it('compliance reads every row but its writes touch nothing', async () => {
    await asRole(async (c) => {
      expect((await c.query(`SELECT count(DISTINCT trader_id)::int AS n FROM orders`)).rows[0].n).toBe(2);
      expect((await c.query(`UPDATE orders SET status = 'CANCELLED'`)).rowCount).toBe(0);
    }, `SET LOCAL tradetrail.role = 'compliance'`);
  });

  it('a pooled connection keeps no identity after the request', async () => {
    await app.run(`{ orders { totalCount } }`, {}, A());
    const pool = (app.dataSource.driver as unknown as { master: { query(sql: string): Promise<{ rows: any[] }> } })
      .master;
    const { rows } = await pool.query(
      `SELECT current_user AS u, current_setting('tradetrail.role', true) AS r, current_setting('tradetrail.trader_id', true) AS t`,
    );
    expect(rows[0].u).not.toBe('tradetrail_app');
    expect(rows[0].r ?? '').toBe('');
    expect(rows[0].t ?? '').toBe('');
  });
});
