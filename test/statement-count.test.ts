import type { Pool } from 'pg';
import { Dec } from '../src/decimal';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { makeFills, makeLogs, makeOrders, makePositions, makeTraders } from './factories';
import type { Principal } from '../src/auth';
import { adminQuery, adminUrl, createTestDatabase, startTestApp, type TestApp } from './harness';
import { Client } from 'pg';

/**
 * The number of SQL statements of a nested read must not grow with the number of rows: one per
 * nesting level plus the page query (and the transaction's own statements).
 */
const AUDIT_TRAIL = `{ positions(first: 100) { edges { node {
  trader { id }
  orders(first: 50) { edges { node { fills { id } executionLogs { id } } } }
} } } }`;

/**
 * Round trips: the positions page (carrying the transaction's start: START TRANSACTION … READ ONLY and
 * one SELECT of the settings); traders and orders (windowed), whose loaders dispatch together; fills and
 * logs, likewise; COMMIT.
 */
const EXPECTED_STATEMENTS = 4;

async function seed(
  app: TestApp,
  positions: number,
  ordersPer: number,
  fillsPer: number,
  logsPer: number,
): Promise<void> {
  const m = app.dataSource.manager;
  const traders = await makeTraders(m, Math.max(1, Math.ceil(positions / 10)));
  const ps = await makePositions(
    m,
    Array.from({ length: positions }, (_, i) => ({ traderId: traders[i % traders.length].id, symbol: `S${i}` })),
  );
  const orders = await makeOrders(
    m,
    ps.flatMap((p) =>
      Array.from({ length: ordersPer }, () => ({ traderId: p.traderId, positionId: p.id, symbol: p.symbol })),
    ),
  );
  await makeFills(
    m,
    orders.flatMap((o) =>
      Array.from({ length: fillsPer }, () => ({ orderId: o.id, positionId: o.positionId, quantity: new Dec(1) })),
    ),
  );
  await makeLogs(
    m,
    orders.flatMap((o) =>
      Array.from({ length: logsPer }, () => ({
        orderId: o.id,
        traderId: o.traderId,
        action: ExecutionLogAction.EXECUTED,
      })),
    ),
  );
}

describe('statements per request', () => {
  const apps: TestApp[] = [];
  const drops: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const a of apps) await a.close();
    for (const d of drops) await d();
  });

  async function appWith(positions: number): Promise<TestApp> {
    const db = await createTestDatabase();
    drops.push(db.drop);
    // Each read commits on its own here, so that a request's round trips are its own (a read's COMMIT
    // riding with the next request is test/read-commit.test.ts).
    const app = await startTestApp(db.url, { readCommitDelayMs: 0 });
    apps.push(app);
    await seed(app, positions, 10, 5, 3);
    return app;
  }

  it('is the same small constant for 1 position and for 100 positions × 10 orders × 5 fills × 3 logs', async () => {
    const small = await appWith(1);
    const large = await appWith(100);

    small.statements.reset();
    const s = await small.run(AUDIT_TRAIL);
    expect(s.errors).toBeUndefined();
    const smallCount = small.statements.count;

    large.statements.reset();
    const l = await large.run(AUDIT_TRAIL);
    expect(l.errors).toBeUndefined();
    const edges = (l.data as any).positions.edges;
    expect(edges).toHaveLength(100);
    expect(edges.every((e: any) => e.node.orders.edges.length === 10)).toBe(true);
    expect(edges[0].node.orders.edges[0].node.fills).toHaveLength(5);
    expect(edges[0].node.orders.edges[0].node.executionLogs).toHaveLength(3);

    console.log(
      `statements for 1 position: ${smallCount}; for 100 positions (1,000 orders, 5,000 fills, 3,000 logs): ${large.statements.count}`,
    );
    console.log(large.statements.log.map((q) => `  ${q.replace(/\s+/g, ' ').slice(0, 110)}`).join('\n'));
    expect(smallCount).toBe(EXPECTED_STATEMENTS);
    expect(large.statements.count).toBe(EXPECTED_STATEMENTS);
    // All of them on one connection, in one read-only transaction.
    expect(large.statements.clients.size).toBe(1);
    expect(large.statements.log.slice(0, 2)).toEqual([
      'START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY',
      "SELECT set_config('role', $1, true), set_config('tradetrail.role', $2, true), " +
        "set_config('tradetrail.trader_id', $3, true), set_config('statement_timeout', $4, true), " +
        "set_config('jit', 'off', true)",
    ]);
    expect(large.statements.log[2]).toMatch(/FROM "positions" t/);
    expect(large.statements.log.at(-1)).toBe('COMMIT');

    expect(large.statements.byTrip().map((t) => t.length)).toEqual([3, 2, 2, 1]);

    // The same again, on a connection that has parsed the statements already: the same round trips.
    large.statements.reset();
    const again = await large.run(AUDIT_TRAIL);
    expect(again.errors).toBeUndefined();
    expect(again.data).toEqual(l.data);
    expect(large.statements.byTrip().map((t) => t.length)).toEqual([3, 2, 2, 1]);
  });

  it('sends a lookup by id with its children, and a page with its totalCount, in one round trip', async () => {
    const app = await appWith(3);
    const m = app.dataSource.manager;
    const [{ id: orderId, trader_id: traderId, position_id: positionId }] = await m.query(
      `SELECT id, trader_id, position_id FROM orders ORDER BY created_at, id LIMIT 1`,
    );
    const fillIds = (
      await m.query(`SELECT id FROM fills WHERE order_id = $1 ORDER BY executed_at, arrival`, [orderId])
    ).map((r: { id: string }) => r.id);
    const positionFills = Number(
      (await m.query(`SELECT count(*) AS n FROM fills WHERE position_id = $1`, [positionId]))[0].n,
    );
    const warm = async (query: string, variables: Record<string, unknown>, principal?: Principal) => {
      await app.run(query, variables, principal); // parses the named statements on the connection
      app.statements.reset();
      const result = await app.run<any>(query, variables, principal);
      expect(result.errors).toBeUndefined();
      return { data: result.data, trips: app.statements.byTrip(40) };
    };

    const order = await warm(`query($id: ID!) { order(id: $id) { id fills { id } executionLogs { seq } } }`, {
      id: orderId.toUpperCase(),
    });
    expect(order.data.order.id).toBe(orderId);
    expect(order.data.order.fills.map((f: { id: string }) => f.id)).toEqual(fillIds);
    expect(order.data.order.executionLogs).toHaveLength(3);
    // [start, settings, the order, its fills, its log], [COMMIT]
    expect(order.trips.map((t) => t.length)).toEqual([5, 1]);

    // Aliases, fragments and directives: each response key its own columns; a skipped field not read.
    const shapes = await warm(
      `query($id: ID!) { order(id: $id) { a: fills { id } b: fills { quantity } ...F executionLogs @skip(if: true) { seq } } }
       fragment F on Order { fills { id price } }`,
      { id: orderId },
    );
    expect(shapes.data.order.a.map((f: { id: string }) => f.id)).toEqual(fillIds);
    expect(shapes.data.order.b).toHaveLength(5);
    expect(shapes.data.order.fills.map((f: { id: string }) => f.id)).toEqual(fillIds);
    expect(shapes.data.order.executionLogs).toBeUndefined();
    expect(shapes.trips.map((t) => t.length)).toEqual([6, 1]);

    // Another trader's order: null, and nothing of its children leaks.
    const stranger: Principal = { sub: 'x', role: 'trader', traderId: '3f1b2c4d-0000-4000-8000-000000000000' };
    expect(
      (await warm(`query($id: ID!) { order(id: $id) { id fills { id } } }`, { id: orderId }, stranger)).data,
    ).toEqual({
      order: null,
    });

    const position = await warm(
      `query($id: ID!) { position(id: $id) { id fills { id } orders(first: 3) { edges { node { id fills { id } } } } } }`,
      { id: positionId },
    );
    expect(position.data.position.fills).toHaveLength(positionFills);
    expect(position.data.position.orders.edges).toHaveLength(3);
    expect(position.data.position.orders.edges[0].node.id).toBe(orderId);
    expect(position.data.position.orders.edges[0].node.fills.map((f: { id: string }) => f.id)).toEqual(fillIds);
    // [start, settings, the position, its fills, its orders], [their fills], [COMMIT]
    expect(position.trips.map((t) => t.length)).toEqual([5, 1, 1]);

    // A later page is not prefetched (the resolver checks its cursor), and a refused size is refused as before.
    const after =
      position.data.position.orders.edges[0].node.id &&
      (
        await app.run<any>(`query($id: ID!) { position(id: $id) { orders(first: 1) { pageInfo { endCursor } } } }`, {
          id: positionId,
        })
      ).data.position.orders.pageInfo.endCursor;
    const next = await warm(
      `query($id: ID!, $after: String) { position(id: $id) { orders(first: 2, after: $after) { edges { node { id } } } } }`,
      {
        id: positionId,
        after,
      },
    );
    expect(next.data.position.orders.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual(
      position.data.position.orders.edges.slice(1).map((e: { node: { id: string } }) => e.node.id),
    );
    expect(next.trips.map((t) => t.length)).toEqual([3, 1, 1]);
    const refused = await app.run(`query($id: ID!) { position(id: $id) { orders(first: 501) { totalCount } } }`, {
      id: positionId,
    });
    expect(refused.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');

    const page = await warm(
      `query($t: ID!) { orders(first: 4, filter: { traderId: $t }) { totalCount edges { node { id } } } }`,
      {
        t: traderId,
      },
    );
    expect(page.data.orders.edges).toHaveLength(4);
    expect(page.data.orders.totalCount).toBe(
      Number((await m.query(`SELECT count(*) AS n FROM orders WHERE trader_id = $1`, [traderId]))[0].n),
    );
    // [start, settings, the page, its count], [COMMIT]
    expect(page.trips.map((t) => t.length)).toEqual([4, 1]);
  });

  it('releases the connection on every path: success, bad input mid-request, unknown ids', async () => {
    const db = await createTestDatabase();
    drops.push(db.drop);
    const app = await startTestApp(db.url, { poolMax: 1, readCommitDelayMs: 0 });
    apps.push(app);
    await seed(app, 3, 2, 1, 1);
    const pool = (app.dataSource.driver as unknown as { master: Pool }).master;
    const requests = [
      AUDIT_TRAIL,
      // fails in a nested field after the page query ran
      '{ positions { edges { node { orders(first: 501) { totalCount } } } } }',
      '{ order(id: "not-a-uuid") { id } }',
      '{ order(id: "3f1b2c4d-0000-4000-8000-000000000000") { id } }',
      '{ orders(after: "bad") { totalCount } }',
      '{ positions { edges { node { orders(after: "bad") { totalCount } } } } }',
    ];
    for (let round = 0; round < 5; round++) {
      for (const q of requests) {
        app.statements.reset();
        await app.run(q);
        expect(app.statements.clients.size).toBeLessThanOrEqual(1);
        expect(pool.totalCount - pool.idleCount).toBe(0);
      }
    }
    // With a pool of one, a leak would hang here.
    const ok = await app.run('{ positions { totalCount } }');
    expect(ok.data).toEqual({ positions: { totalCount: 3 } });

    // The pooled connection is killed by the server: the request that meets it may fail, but the
    // pool must not keep a broken or half-open connection, so the next requests work.
    await adminQuery(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}' AND application_name = 'tradetrail'`,
    );
    await app.run('{ positions { totalCount } }');
    for (let i = 0; i < 3; i++)
      expect((await app.run('{ positions { totalCount } }')).data).toEqual({ positions: { totalCount: 3 } });

    const admin = new Client({ connectionString: adminUrl() });
    await admin.connect();
    const { rows } = await admin.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state LIKE 'idle in transaction%'`,
      [db.name],
    );
    await admin.end();
    expect(rows[0].n).toBe(0);
  });
});
