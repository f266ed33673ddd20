import { isObjectType } from 'graphql';
import { getMetadataStorage } from 'type-graphql';
import { Dec } from '../src/decimal';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { FillException } from '../src/fill/fill.entity';
import { buildTradetrailSchema } from '../src/schema';
import { makeFills, makeLogs, makeOrders, makePositions, makeTraders } from './factories';
import { createTestDatabase, startTestApp, type TestApp } from './harness';

/**
 * The read path (issue 12): queries run compiled (graphql-jit), rows carry numerics and times as the
 * text PostgreSQL writes, and each loader selects only the columns its part of the query asks for.
 * None of it may change an answer: every narrow read is compared with the same fields of a read of
 * every column, and with the values computed from the database independently.
 */
describe('the read path', () => {
  let app: TestApp;
  let drop: () => Promise<void>;
  const ids = { position: '', order: '', trader: '' };

  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    app = await startTestApp(db.url);
    const m = app.dataSource.manager;
    const [trader] = await makeTraders(m, 1);
    const positions = await makePositions(m, [
      { traderId: trader.id, symbol: 'AAPL', quantity: new Dec('1.5'), realizedPnl: new Dec('-3.5') },
      { traderId: trader.id, symbol: 'MSFT', quantity: new Dec('0.000000001') },
    ]);
    const orders = await makeOrders(
      m,
      positions.flatMap((p) =>
        [0, 1, 2].map(() => ({ traderId: trader.id, positionId: p.id, symbol: p.symbol, quantity: new Dec('100') })),
      ),
    );
    await makeFills(
      m,
      orders.flatMap((o, i) => [
        { orderId: o.id, positionId: o.positionId, quantity: new Dec('10.000'), price: new Dec('120.010000000') },
        {
          orderId: o.id,
          positionId: o.positionId,
          quantity: new Dec('0.5'),
          price: new Dec('99'),
          arrivalException: i === 0 ? FillException.ORDER_REPLACED : null,
          overfilledQuantity: i === 1 ? new Dec('0.25') : new Dec(0),
        },
      ]),
    );
    await makeLogs(
      m,
      orders.flatMap((o) =>
        [0, 1].map(() => ({ orderId: o.id, traderId: o.traderId, action: ExecutionLogAction.EXECUTED })),
      ),
    );
    Object.assign(ids, { position: positions[0].id, order: orders[0].id, trader: trader.id });
  });
  afterAll(async () => {
    await app.close();
    await drop();
  });

  async function ok(query: string, variables?: Record<string, unknown>): Promise<any> {
    const res = await app.run(query, variables);
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data;
  }
  /** The statements of one read, by the table they read. */
  async function statementsOf(query: string): Promise<{ data: any; sql: (table: string) => string }> {
    app.statements.reset();
    const data = await ok(query);
    const log = [...app.statements.log];
    return {
      data,
      sql: (table) => log.find((s) => new RegExp(`FROM "?${table}"? t\\b`).test(s)) ?? `(no statement reads ${table})`,
    };
  }

  const FULL = `{ positions(first: 10, orderBy: { field: SYMBOL, direction: ASC }) { edges { node {
      id symbol quantity averageEntryPrice costBasis realizedPnl status openedAt closedAt updatedAt version traderId
      orders(first: 10) { edges { node {
        id traderId positionId clientOrderId symbol side orderType quantity price status filledQuantity
        averageFillPrice createdAt updatedAt submittedAt rawData
        fills { id orderId positionId execId quantity price commission liquidity venue executedAt createdAt
                exception effectivePrice effectiveQuantity busted }
        executionLogs { id orderId traderId seq action fromStatus toStatus actor source details occurredAt recordedAt hash prevHash seal }
      } } }
  } } } }`;

  it('selects only the columns a query asks for, and answers exactly as a read of every column', async () => {
    const full = await statementsOf(FULL);
    // Computed fields (exception, effectivePrice…) read whole rows.
    expect(full.sql('fills')).toMatch(/AS "venue"/);

    const narrow =
      await statementsOf(`{ positions(first: 10, orderBy: { field: SYMBOL, direction: ASC }) { edges { node {
        id quantity realizedPnl
        orders(first: 10) { edges { node { id status quantity
          fills { id price executedAt }
          executionLogs { seq action }
        } } }
      } } } }`);
    expect(narrow.sql('fills')).toMatch(/AS "price"/);
    expect(narrow.sql('fills')).not.toMatch(/AS "venue"|AS "commission"|AS "execId"/);
    expect(narrow.sql('execution_logs')).toMatch(/AS "seq"/);
    expect(narrow.sql('execution_logs')).not.toMatch(/AS "details"|AS "hash"|AS "seal"/);
    expect(narrow.sql('orders')).not.toMatch(/AS "rawData"/);
    expect(narrow.sql('positions')).not.toMatch(/AS "costBasis"/);

    // Every field of the narrow answer is the same field of the full one.
    const pick = (full: any, narrow: any): any =>
      Array.isArray(narrow)
        ? narrow.map((n, i) => pick(full[i], n))
        : narrow && typeof narrow === 'object'
          ? Object.fromEntries(Object.keys(narrow).map((k) => [k, pick(full[k], narrow[k])]))
          : full;
    expect(narrow.data).toEqual(pick(full.data, narrow.data));
    expect(narrow.data.positions.edges).toHaveLength(2);
    expect(narrow.data.positions.edges[0].node.orders.edges[0].node.fills).toHaveLength(2);
  });

  it('reads every column either selection needs when a fragment meets another selection of the same field', async () => {
    const query = `fragment F on Order { fills { id } }
      query Q($id: ID!) {
        a: order(id: $id) { ...F fills { price quantity executedAt } }
        b: order(id: $id) { ...F }
        c: order(id: $id) { ... on Order { status ...F fills { exception } } }
      }`;
    const data = await ok(query, { id: ids.order });
    const full = await ok(
      `query($id: ID!) { order(id: $id) { status fills { id price quantity executedAt exception } } }`,
      {
        id: ids.order,
      },
    );
    expect(data.a.fills).toEqual(
      full.order.fills.map((f: any) => ({ id: f.id, price: f.price, quantity: f.quantity, executedAt: f.executedAt })),
    );
    expect(data.b.fills).toEqual(full.order.fills.map((f: any) => ({ id: f.id })));
    expect(data.c).toEqual({
      status: full.order.status,
      fills: full.order.fills.map((f: any) => ({ id: f.id, exception: f.exception })),
    });
    // Run again (the projections are now remembered per document): the same answer.
    expect(await ok(query, { id: ids.order })).toEqual(data);
  });

  it('writes numerics as canonical decimals and times as ISO 8601 milliseconds, as the database holds them', async () => {
    const data = await ok(`{ positions(first: 10, orderBy: { field: SYMBOL, direction: ASC }) { edges { node {
        quantity realizedPnl averageEntryPrice openedAt
        orders(first: 10) { edges { node { fills { quantity price commission executedAt exception } } } } } } } }`);
    const [aapl, msft] = data.positions.edges.map((e: any) => e.node);
    expect([aapl.quantity, aapl.realizedPnl, aapl.averageEntryPrice]).toEqual(['1.5', '-3.5', '0']);
    expect(msft.quantity).toBe('0.000000001');
    const fills = aapl.orders.edges[0].node.fills;
    expect(fills.map((f: any) => [f.quantity, f.price, f.commission])).toEqual([
      ['10', '120.01', '0'],
      ['0.5', '99', '0'],
    ]);
    // One fill recorded as an exception, one overfilled (computed from `overfilledQuantity` read as text).
    const exceptions = data.positions.edges.flatMap((e: any) =>
      e.node.orders.edges.flatMap((o: any) => o.node.fills.map((f: any) => f.exception)),
    );
    expect(exceptions.filter((x: string | null) => x !== null).sort()).toEqual(['ORDER_REPLACED', 'OVERFILL']);

    // The same values as the database's own, through Decimal and Date.
    const rows = (await app.dataSource.query(
      `SELECT quantity::text AS q, opened_at AS t FROM positions WHERE symbol = 'AAPL'`,
    )) as { q: string; t: Date }[];
    expect(aapl.quantity).toBe(new Dec(rows[0].q).toFixed());
    expect(aapl.openedAt).toBe(rows[0].t.toISOString());
    const executed = (await app.dataSource.query(
      `SELECT executed_at AS t FROM fills WHERE order_id = (SELECT id FROM orders WHERE position_id = $1 ORDER BY created_at, id LIMIT 1)
       ORDER BY executed_at, arrival`,
      [ids.position],
    )) as { t: Date }[];
    expect(fills.map((f: any) => f.executedAt)).toEqual(executed.map((r) => r.t.toISOString()));
  });

  it('answers bad variables and failing fields with the same errors as before (codes, paths, locations)', async () => {
    const badVariable = await app.run(`query($n: Int!) { orders(first: $n) { totalCount } }`, { n: 'x' });
    expect(badVariable.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^Variable "\$n" got invalid value "x"; Int cannot represent/),
      extensions: { code: 'BAD_USER_INPUT' },
    });
    const badCursor = await app.run(`{ orders(first: 5, after: "zzz") { totalCount } }`);
    expect(badCursor.data).toBeNull();
    expect(badCursor.errors).toEqual([
      expect.objectContaining({
        path: ['orders'],
        locations: [{ line: 1, column: 3 }],
        extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', field: 'after' }),
      }),
    ]);
  });

  it('reads a plain field straight off its row: no resolver per field, only the fields that compute', async () => {
    // type-graphql wraps every plain field in a resolver (its middleware and auth stack) unless the type
    // says `simpleResolvers`; graphql-jit then calls a function per field of every row instead of reading
    // the property. Tradetrail has no field middleware or auth checker, so every object type says it.
    const schema = await buildTradetrailSchema();
    const storage = getMetadataStorage();
    const inSchema = storage.objectTypes.filter((t) => isObjectType(schema.getType(t.name)));
    expect(inSchema.length).toBeGreaterThan(20);
    expect(inSchema.filter((t) => !t.simpleResolvers).map((t) => t.name)).toEqual([]);
    const order = schema.getType('Order');
    if (!isObjectType(order)) throw new Error('no Order type');
    const resolved = Object.values(order.getFields())
      .filter((f) => f.resolve)
      .map((f) => f.name)
      .sort();
    // Only the fields a resolver computes or loads; symbol, quantity, status… are read off the row.
    expect(resolved).toEqual(expect.arrayContaining(['fills', 'executionLogs', 'position', 'trader']));
    expect(resolved).not.toEqual(expect.arrayContaining(['symbol']));
    expect(resolved).not.toContain('quantity');
    expect(resolved).not.toContain('status');
  });
});
