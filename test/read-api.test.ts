import { Dec } from '../src/decimal';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { OrderStatus } from '../src/order/order.entity';
import { PositionStatus } from '../src/position/position.entity';
import { makeFills, makeLogs, makeOrder, makeOrders, makePosition, makePositions, makeTrader } from './factories';
import { adminQuery, createTestDatabase, startTestApp, type TestApp } from './harness';

let app: TestApp;
let drop: () => Promise<void>;

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  app = await startTestApp(db.url);
});
afterAll(async () => {
  await app?.close();
  await drop?.();
});

const m = () => app.dataSource.manager;

describe('lookups by id', () => {
  it('returns a position with its trader, orders, fills and logs; decimals as exact strings', async () => {
    const trader = await makeTrader(m(), { name: 'Ada' });
    const position = await makePosition(m(), {
      traderId: trader.id,
      symbol: 'AAPL',
      quantity: new Dec('0.300000001'),
      averageEntryPrice: new Dec('0.1'),
      realizedPnl: new Dec('-12.345678901234567891'),
    });
    const order = await makeOrder(m(), {
      traderId: trader.id,
      positionId: position.id,
      symbol: 'AAPL',
      quantity: new Dec('0.300000001'),
    });
    await makeFills(m(), [
      {
        orderId: order.id,
        positionId: position.id,
        quantity: new Dec('0.1'),
        price: new Dec('0.2'),
        executedAt: new Date('2026-01-01T10:00:00Z'),
      },
      {
        orderId: order.id,
        positionId: position.id,
        quantity: new Dec('0.200000001'),
        price: new Dec('0.1'),
        executedAt: new Date('2026-01-01T10:00:01Z'),
      },
    ]);
    await makeLogs(m(), [
      { orderId: order.id, traderId: trader.id, action: ExecutionLogAction.SUBMITTED },
      { orderId: order.id, traderId: trader.id, action: ExecutionLogAction.ACCEPTED },
    ]);

    const res = await app.run(
      `query($id: ID!) { position(id: $id) {
         id symbol quantity averageEntryPrice realizedPnl status trader { name }
         orders { totalCount edges { node { id quantity position { id } trader { name }
           fills { quantity price order { id } position { id } }
           executionLogs { seq action prevHash hash order { id } } } } }
         fills { quantity } } }`,
      { id: position.id },
    );
    expect(res.errors).toBeUndefined();
    const p = (res.data as any).position;
    expect(p).toMatchObject({
      id: position.id,
      symbol: 'AAPL',
      quantity: '0.300000001',
      averageEntryPrice: '0.1',
      realizedPnl: '-12.345678901234567891',
      status: 'OPEN',
      trader: { name: 'Ada' },
    });
    expect(p.orders.totalCount).toBe(1);
    const o = p.orders.edges[0].node;
    expect(o).toMatchObject({
      id: order.id,
      quantity: '0.300000001',
      position: { id: position.id },
      trader: { name: 'Ada' },
    });
    expect(o.fills).toEqual([
      { quantity: '0.1', price: '0.2', order: { id: order.id }, position: { id: position.id } },
      { quantity: '0.200000001', price: '0.1', order: { id: order.id }, position: { id: position.id } },
    ]);
    expect(o.executionLogs.map((l: any) => [l.seq, l.action])).toEqual([
      [1, 'SUBMITTED'],
      [2, 'ACCEPTED'],
    ]);
    expect(o.executionLogs[0].prevHash).toBeNull();
    expect(o.executionLogs[1].prevHash).toBe(o.executionLogs[0].hash);
    expect(o.executionLogs[0].order.id).toBe(order.id);
    expect(p.fills.map((f: any) => f.quantity)).toEqual(['0.1', '0.200000001']);
  });

  it('returns null for unknown ids and BAD_USER_INPUT for malformed ones', async () => {
    const unknown = '3f1b2c4d-0000-4000-8000-000000000000';
    const res = await app.run(
      `query($id: ID!) { position(id: $id) { id } order(id: $id) { id } fill(id: $id) { id } trader(id: $id) { id } }`,
      { id: unknown },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ position: null, order: null, fill: null, trader: null });

    for (const field of ['position', 'order', 'fill', 'trader']) {
      const bad = await app.run(`query($id: ID!) { ${field}(id: $id) { id } }`, { id: 'not-a-uuid' });
      expect(bad.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(bad.errors?.[0].message).toMatch(/id must be a UUID/);
    }
  });

  it('an unlinked order has no position; a fill without a position has none either', async () => {
    const trader = await makeTrader(m());
    const order = await makeOrder(m(), {
      traderId: trader.id,
      status: OrderStatus.FILLED,
      quantity: new Dec(1),
      filledQuantity: new Dec(1),
    });
    const [fill] = await makeFills(m(), [{ orderId: order.id, quantity: new Dec(1) }]);
    const res = await app.run(
      `query($o: ID!, $f: ID!) { order(id: $o) { position { id } } fill(id: $f) { position { id } order { id } } }`,
      { o: order.id, f: fill.id },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({ order: { position: null }, fill: { position: null, order: { id: order.id } } });
  });
});

describe('connections', () => {
  let traderId: string;
  let otherTraderId: string;
  beforeAll(async () => {
    traderId = (await makeTrader(m(), { name: 'Paging Pat', externalRef: 'PAGE-1' })).id;
    otherTraderId = (await makeTrader(m(), { name: 'Other Olga' })).id;
    const base = Date.parse('2026-03-02T14:30:00Z');
    // 7 orders with the same created_at (tie-break on id) and 5 one minute apart.
    await makeOrders(m(), [
      ...Array.from({ length: 7 }, () => ({ traderId, symbol: 'TIE', createdAt: new Date(base) })),
      ...Array.from({ length: 5 }, (_, i) => ({
        traderId,
        symbol: 'SEQ',
        createdAt: new Date(base + (i + 1) * 60_000),
      })),
      { traderId: otherTraderId, symbol: 'TIE', createdAt: new Date(base) },
    ]);
  });

  async function allPages(first: number, orderBy?: string): Promise<string[]> {
    const ids: string[] = [];
    let after: string | null = null;
    for (let guard = 0; guard < 50; guard++) {
      const res: Awaited<ReturnType<TestApp['run']>> = await app.run(
        `query($t: ID!, $first: Int!, $after: String) { orders(filter: { traderId: $t }, first: $first, after: $after${orderBy ? `, orderBy: ${orderBy}` : ''}) {
           edges { cursor node { id } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`,
        { t: traderId, first, after },
      );
      expect(res.errors).toBeUndefined();
      const c: any = (res.data as any).orders;
      ids.push(...c.edges.map((e: any) => e.node.id));
      expect(c.pageInfo.hasPreviousPage).toBe(after !== null);
      if (c.edges.length) expect(c.pageInfo.endCursor).toBe(c.edges.at(-1).cursor);
      if (!c.pageInfo.hasNextPage) break;
      after = c.pageInfo.endCursor;
    }
    return ids;
  }

  const sqlOrder = async (orderBy: string): Promise<string[]> =>
    (await m().query(`SELECT id FROM orders WHERE trader_id = $1 ORDER BY ${orderBy}`, [traderId])).map(
      (r: any) => r.id,
    );

  it.each([1, 2, 5, 12, 50])('pages of %i visit every order once, newest first, ties broken by id', async (first) => {
    expect(await allPages(first)).toEqual(await sqlOrder('created_at DESC, id DESC'));
  });

  it.each([
    ['{ field: SYMBOL, direction: ASC }', 'symbol ASC, id ASC'],
    ['{ field: SYMBOL, direction: DESC }', 'symbol DESC, id DESC'],
    ['{ field: CREATED_AT, direction: ASC }', 'created_at ASC, id ASC'],
  ])('orderBy %s pages in the order of SQL %s', async (orderBy, sql) => {
    expect(await allPages(3, orderBy)).toEqual(await sqlOrder(sql));
  });

  it('filters: trader, symbol, status, linked/unlinked, time range; totalCount only when asked', async () => {
    const q = async (filter: string): Promise<number> => {
      const res = await app.run(`{ orders(filter: ${filter}) { totalCount edges { node { id } } } }`);
      expect(res.errors).toBeUndefined();
      const c = (res.data as any).orders;
      expect(c.totalCount).toBe(c.edges.length);
      return c.totalCount;
    };
    expect(await q(`{ traderId: "${traderId}" }`)).toBe(12);
    expect(await q(`{ traderId: "${traderId}", symbol: "SEQ" }`)).toBe(5);
    expect(await q(`{ traderId: "${traderId}", linked: false }`)).toBe(12);
    expect(await q(`{ traderId: "${traderId}", linked: true }`)).toBe(0);
    expect(await q(`{ traderId: "${traderId}", status: [ACCEPTED] }`)).toBe(12);
    expect(await q(`{ traderId: "${traderId}", status: [FILLED, CANCELLED] }`)).toBe(0);
    expect(
      await q(`{ traderId: "${traderId}", createdFrom: "2026-03-02T14:31:00Z", createdTo: "2026-03-02T14:34:00Z" }`),
    ).toBe(3);
    expect(await q(`{ symbol: "TIE" }`)).toBeGreaterThanOrEqual(8);

    app.statements.reset();
    await app.run(`{ orders(filter: { symbol: "SEQ" }) { edges { node { id } } } }`);
    expect(app.statements.log.some((s) => /count\(\*\)/.test(s))).toBe(false);
    app.statements.reset();
    await app.run(`{ orders(filter: { symbol: "SEQ" }) { totalCount } }`);
    expect(app.statements.log.filter((s) => /count\(\*\)/.test(s))).toHaveLength(1);
  });

  it('traders, positions and execution logs are connections with filters too', async () => {
    const res = await app.run(
      `query($t: ID!) {
        traders(filter: { nameContains: "paging" }) { totalCount edges { node { id externalRef } } }
        byRef: traders(filter: { externalRef: "PAGE-1" }) { totalCount }
        positions(filter: { traderId: $t }) { totalCount }
        executionLogs(filter: { traderId: $t }) { totalCount }
      }`,
      { t: traderId },
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      traders: { totalCount: 1, edges: [{ node: { id: traderId, externalRef: 'PAGE-1' } }] },
      byRef: { totalCount: 1 },
      positions: { totalCount: 0 },
      executionLogs: { totalCount: 0 },
    });
  });

  it('first: 0 returns no edges but counts; first above 500 or below 0 is BAD_USER_INPUT', async () => {
    const zero = await app.run(
      `query($t: ID!) { orders(first: 0, filter: { traderId: $t }) { totalCount edges { cursor } pageInfo { hasNextPage } } }`,
      { t: traderId },
    );
    expect(zero.errors).toBeUndefined();
    // Relay: hasNextPage tells whether items follow the (empty) page.
    expect(zero.data).toEqual({ orders: { totalCount: 12, edges: [], pageInfo: { hasNextPage: true } } });

    for (const [query, field] of [
      ['{ orders(first: 501) { totalCount } }', 'first'],
      ['{ positions(first: 100000) { totalCount } }', 'first'],
      ['{ positions(first: 1) { edges { node { orders(first: 501) { totalCount } } } } }', 'first'],
      ['{ executionLogs(first: -1) { totalCount } }', 'first'],
      ['{ orders(filter: { traderId: "nope" }) { totalCount } }', 'filter.traderId'],
    ]) {
      const res = await app.run(query);
      expect(res.errors?.[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
      expect(res.errors?.[0].message).not.toMatch(/Argument Validation Error/);
    }
    const over = await app.run('{ orders(first: 501) { totalCount } }');
    expect(over.errors?.[0].message).toMatch(/at most 500/);
  });

  it('malformed cursors and cursors of another ordering are BAD_USER_INPUT', async () => {
    const page = await app.run(`{ orders(first: 1) { pageInfo { endCursor } } }`);
    const cursor = (page.data as any).orders.pageInfo.endCursor as string;
    const bad = [
      'garbage',
      Buffer.from('{"k":"CREATED_AT","v":"2026-01-01 00:00:00+00","id":"x"}').toString('base64url'),
      Buffer.from('{"k":"CREATED_AT","v":"yesterday","id":"3f1b2c4d-0000-4000-8000-000000000000"}').toString(
        'base64url',
      ),
      Buffer.from('[1,2,3]').toString('base64url'),
    ];
    for (const after of bad) {
      const res = await app.run(`query($a: String) { orders(after: $a) { totalCount } }`, { a: after });
      expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
      expect(res.errors?.[0].message).toMatch(/after is not a cursor of this list/);
    }
    const other = await app.run(`query($a: String) { orders(after: $a, orderBy: { field: SYMBOL }) { totalCount } }`, {
      a: cursor,
    });
    expect(other.errors?.[0].message).toMatch(/made for ordering by CREATED_AT DESC, not SYMBOL DESC/);
  });
});

describe('Position.orders is paged per position', () => {
  it('applies first/after/status to each position separately', async () => {
    const trader = await makeTrader(m());
    const [p1, p2] = await makePositions(m(), [{ traderId: trader.id }, { traderId: trader.id }]);
    const t0 = Date.parse('2026-05-01T10:00:00Z');
    await makeOrders(m(), [
      ...Array.from({ length: 5 }, (_, i) => ({
        traderId: trader.id,
        positionId: p1.id,
        createdAt: new Date(t0 + i * 1000),
      })),
      ...Array.from({ length: 3 }, (_, i) => ({
        traderId: trader.id,
        positionId: p2.id,
        createdAt: new Date(t0 + i * 1000),
        status: i === 0 ? OrderStatus.CANCELLED : OrderStatus.ACCEPTED,
      })),
    ]);
    const q = `query($ids: [ID!]!) { a: position(id: "${p1.id}") { ...P } b: position(id: "${p2.id}") { ...P } }
      fragment P on Position { orders(first: 2) { totalCount edges { cursor node { createdAt } } pageInfo { hasNextPage endCursor } }
                               cancelled: orders(status: CANCELLED) { totalCount } }`;
    const res = await app.run(q.replace('query($ids: [ID!]!) ', ''));
    expect(res.errors).toBeUndefined();
    const { a, b } = res.data as any;
    expect(a.orders.totalCount).toBe(5);
    expect(a.orders.edges.map((e: any) => e.node.createdAt)).toEqual([
      new Date(t0).toISOString(),
      new Date(t0 + 1000).toISOString(),
    ]);
    expect(a.orders.pageInfo.hasNextPage).toBe(true);
    expect(b.orders.totalCount).toBe(3);
    expect(b.orders.pageInfo.hasNextPage).toBe(true);
    expect(a.cancelled.totalCount).toBe(0);
    expect(b.cancelled.totalCount).toBe(1);

    const next = await app.run(
      `query($id: ID!, $after: String) { position(id: $id) { orders(first: 10, after: $after) { edges { node { createdAt } } pageInfo { hasNextPage hasPreviousPage } } } }`,
      {
        id: p1.id,
        after: a.orders.pageInfo.endCursor,
      },
    );
    expect(next.errors).toBeUndefined();
    expect((next.data as any).position.orders.edges.map((e: any) => e.node.createdAt)).toEqual(
      [2, 3, 4].map((i) => new Date(t0 + i * 1000).toISOString()),
    );
    expect((next.data as any).position.orders.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: true });
  });

  it("refuses one position's cursor under another, and a bad cursor without spoiling sibling fields", async () => {
    const trader = await makeTrader(m());
    const [p1, p2] = await makePositions(m(), [{ traderId: trader.id }, { traderId: trader.id }]);
    await makeOrders(m(), [
      { traderId: trader.id, positionId: p1.id },
      { traderId: trader.id, positionId: p1.id },
      { traderId: trader.id, positionId: p2.id },
    ]);
    const first = await app.run(
      `query($id: ID!) { position(id: $id) { orders(first: 1) { pageInfo { endCursor } } } }`,
      { id: p1.id },
    );
    const cursor = (first.data as any).position.orders.pageInfo.endCursor;
    const mixed = await app.run(
      `query($a: ID!, $b: ID!, $c: String) { a: position(id: $a) { orders(after: $c) { edges { node { id } } } } b: position(id: $b) { orders(after: $c) { edges { node { id } } } } }`,
      { a: p1.id, b: p2.id, c: cursor },
    );
    expect((mixed.data as any).a.orders.edges).toHaveLength(1);
    expect((mixed.data as any).b).toBeNull();
    expect(mixed.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([[['b', 'orders'], 'BAD_USER_INPUT']]);

    const topLevel = (await app.run(`{ orders(first: 1) { pageInfo { endCursor } } }`)).data as any;
    const wrongList = await app.run(
      `query($a: ID!, $c: String) { position(id: $a) { orders(after: $c) { totalCount } } }`,
      { a: p1.id, c: topLevel.orders.pageInfo.endCursor },
    );
    expect(wrongList.errors?.[0].message).toMatch(/made for orders, not Position.orders/);

    // A refused cursor in one field leaves the sibling fields' statements working (nothing reached SQL).
    const bad = Buffer.from(
      JSON.stringify({ k: 'Position.orders/CREATED_AT/ASC', v: '2026-02-30T10:00:00.000000Z', id: p1.id, p: p1.id }),
    ).toString('base64url');
    const res = await app.run(
      `query($a: ID!, $b: ID!, $c: String) { a: position(id: $a) { orders(after: $c) { totalCount } } b: position(id: $b) { orders(first: 5) { edges { node { fills { id } } } } } }`,
      { a: p1.id, b: p2.id, c: bad },
    );
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
    expect((res.data as any).b.orders.edges).toHaveLength(1);
  });

  it('closed positions stay listed; status filter works on positions', async () => {
    const trader = await makeTrader(m());
    await makePositions(m(), [
      { traderId: trader.id, symbol: 'X', status: PositionStatus.CLOSED, closedAt: new Date() },
      { traderId: trader.id, symbol: 'X', status: PositionStatus.CLOSED, closedAt: new Date() },
      { traderId: trader.id, symbol: 'X', status: PositionStatus.OPEN },
    ]);
    const res = await app.run(
      `query($t: ID!) { open: positions(filter: { traderId: $t, status: OPEN }) { totalCount } closed: positions(filter: { traderId: $t, status: CLOSED }) { totalCount } }`,
      { t: trader.id },
    );
    expect(res.data).toEqual({ open: { totalCount: 1 }, closed: { totalCount: 2 } });
  });
});

describe('cursors do not depend on the session', () => {
  it('pages correctly when the database uses another DateStyle and TimeZone', async () => {
    const other = await createTestDatabase();
    await adminQuery(`ALTER DATABASE "${other.name}" SET datestyle = 'SQL, DMY'`);
    await adminQuery(`ALTER DATABASE "${other.name}" SET timezone = 'Asia/Kolkata'`);
    const a = await startTestApp(other.url);
    try {
      const trader = await makeTrader(a.dataSource.manager);
      await makeOrders(
        a.dataSource.manager,
        Array.from({ length: 5 }, (_, i) => ({
          traderId: trader.id,
          createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)),
        })),
      );
      const ids: string[] = [];
      let after: string | null = null;
      for (let i = 0; i < 10; i++) {
        const res: any = await a.run(
          `query($a: String) { orders(first: 2, after: $a) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`,
          { a: after },
        );
        expect(res.errors).toBeUndefined();
        ids.push(...res.data.orders.edges.map((e: any) => e.node.id));
        if (!res.data.orders.pageInfo.hasNextPage) break;
        after = res.data.orders.pageInfo.endCursor;
      }
      expect(ids).toHaveLength(5);
      expect(new Set(ids).size).toBe(5);
    } finally {
      await a.close();
      await other.drop();
    }
  });
});
