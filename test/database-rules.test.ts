import { Client } from 'pg';
import { Dec } from '../src/decimal';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { OrderType } from '../src/order/order.entity';
import { PositionStatus } from '../src/position/position.entity';
import { makeFills, makeLogs, makeOrder, makePosition, makeTrader } from './factories';
import { createTestDatabase } from './harness';

/** Rules the schema itself enforces, tested with plain SQL as the table owner. */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let c: Client;
beforeAll(async () => {
  db = await createTestDatabase();
  c = new Client({ connectionString: db.url });
  await c.connect();
});
afterAll(async () => {
  await c?.end();
  await db?.drop();
});

/** A TypeORM-free manager shim for the factories: they only need `insert`. */
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
let ds: DataSource;
beforeAll(async () => {
  ds = new DataSource(dataSourceOptions(db.url, 2, false));
  await ds.initialize();
});
afterAll(async () => ds?.destroy());

async function fails(sql: string, params: unknown[], pattern: RegExp): Promise<void> {
  await expect(c.query(sql, params)).rejects.toThrow(pattern);
}

describe('execution_logs', () => {
  it('numbers and chains entries per order, whatever the inserter says', async () => {
    const t = await makeTrader(ds.manager);
    const o = await makeOrder(ds.manager, { traderId: t.id });
    await makeLogs(ds.manager, [
      { orderId: o.id, traderId: t.id, action: ExecutionLogAction.SUBMITTED, seq: 99, hash: 'f'.repeat(64) } as never,
      { orderId: o.id, traderId: t.id, action: ExecutionLogAction.ACCEPTED },
      { orderId: o.id, traderId: t.id, action: ExecutionLogAction.CANCELLED, reason: 'by trader' },
    ]);
    const { rows } = await c.query(
      `SELECT seq, prev_hash, hash, execution_log_hash(prev_hash, l) AS recomputed FROM execution_logs l WHERE order_id = $1 ORDER BY seq`,
      [o.id],
    );
    expect(rows.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(rows[0].prev_hash).toBeNull();
    expect(rows[1].prev_hash).toBe(rows[0].hash);
    expect(rows[2].prev_hash).toBe(rows[1].hash);
    for (const r of rows) expect(r.hash).toBe(r.recomputed);
    expect(rows[0].hash).not.toBe('f'.repeat(64));
  });

  it('refuses UPDATE, DELETE and TRUNCATE, even for the owner', async () => {
    const t = await makeTrader(ds.manager);
    const o = await makeOrder(ds.manager, { traderId: t.id });
    await makeLogs(ds.manager, [{ orderId: o.id, traderId: t.id }]);
    await fails(`UPDATE execution_logs SET reason = 'edited' WHERE order_id = $1`, [o.id], /append-only: UPDATE/);
    await fails(`DELETE FROM execution_logs WHERE order_id = $1`, [o.id], /append-only: DELETE/);
    await fails(`TRUNCATE execution_logs CASCADE`, [], /append-only: TRUNCATE/);
    const { rows } = await c.query(`SELECT count(*)::int AS n FROM execution_logs WHERE order_id = $1`, [o.id]);
    expect(rows[0].n).toBe(1);
  });

  it('an edit made by bypassing the trigger breaks the chain detectably', async () => {
    const t = await makeTrader(ds.manager);
    const o = await makeOrder(ds.manager, { traderId: t.id });
    await makeLogs(ds.manager, [
      { orderId: o.id, traderId: t.id },
      { orderId: o.id, traderId: t.id },
    ]);
    await c.query('BEGIN');
    await c.query('ALTER TABLE execution_logs DISABLE TRIGGER execution_logs_no_update_delete');
    await c.query(`UPDATE execution_logs SET actor = 'mallory' WHERE order_id = $1 AND seq = 1`, [o.id]);
    const { rows } = await c.query(
      `SELECT seq FROM execution_logs l WHERE order_id = $1 AND hash <> execution_log_hash(prev_hash, l) ORDER BY seq`,
      [o.id],
    );
    await c.query('ROLLBACK');
    expect(rows.map((r) => r.seq)).toEqual([1]);
  });
});

describe('positions, orders, fills', () => {
  it('allow one OPEN position per trader and symbol, any number of CLOSED ones', async () => {
    const t = await makeTrader(ds.manager);
    await makePosition(ds.manager, {
      traderId: t.id,
      symbol: 'AAPL',
      status: PositionStatus.CLOSED,
      closedAt: new Date(),
    });
    await makePosition(ds.manager, {
      traderId: t.id,
      symbol: 'AAPL',
      status: PositionStatus.CLOSED,
      closedAt: new Date(),
    });
    await makePosition(ds.manager, { traderId: t.id, symbol: 'AAPL' });
    await expect(makePosition(ds.manager, { traderId: t.id, symbol: 'AAPL' })).rejects.toThrow(
      /uq_positions_open_trader_symbol/,
    );
    const other = await makeTrader(ds.manager);
    await makePosition(ds.manager, { traderId: other.id, symbol: 'AAPL' });
  });

  it('check order rules: quantity, prices, limit needs a price, stop needs a stop price, no overfill', async () => {
    const t = await makeTrader(ds.manager);
    await expect(makeOrder(ds.manager, { traderId: t.id, quantity: new Dec(-1) })).rejects.toThrow(
      /chk_orders_(quantity_positive|filled_quantity_max)/,
    );
    await expect(makeOrder(ds.manager, { traderId: t.id, orderType: OrderType.LIMIT })).rejects.toThrow(
      /chk_orders_limit_requires_price/,
    );
    await expect(
      makeOrder(ds.manager, { traderId: t.id, orderType: OrderType.STOP_LIMIT, price: new Dec(1) }),
    ).rejects.toThrow(/chk_orders_stop_requires_stop_price/);
    await expect(makeOrder(ds.manager, { traderId: t.id, price: new Dec(-1) })).rejects.toThrow(
      /chk_orders_price_positive/,
    );
    await expect(
      makeOrder(ds.manager, { traderId: t.id, quantity: new Dec(1), filledQuantity: new Dec(2) }),
    ).rejects.toThrow(/chk_orders_filled_quantity_max/);
    await expect(makeOrder(ds.manager, { traderId: t.id, clientOrderId: 'x'.repeat(49) })).rejects.toThrow(/too long/);
    await makeOrder(ds.manager, { traderId: t.id, clientOrderId: 'dup' });
    await expect(makeOrder(ds.manager, { traderId: t.id, clientOrderId: 'dup' })).rejects.toThrow(
      /uq_orders_trader_client_order_id/,
    );
  });

  it('deleting a position unlinks its orders and fills; deleting an order deletes its fills', async () => {
    const t = await makeTrader(ds.manager);
    const p = await makePosition(ds.manager, { traderId: t.id });
    const o = await makeOrder(ds.manager, { traderId: t.id, positionId: p.id });
    const [f] = await makeFills(ds.manager, [{ orderId: o.id, positionId: p.id }]);
    await c.query(`DELETE FROM positions WHERE id = $1`, [p.id]);
    expect((await c.query(`SELECT position_id FROM orders WHERE id = $1`, [o.id])).rows[0].position_id).toBeNull();
    expect((await c.query(`SELECT position_id FROM fills WHERE id = $1`, [f.id])).rows[0].position_id).toBeNull();
    await c.query(`DELETE FROM orders WHERE id = $1`, [o.id]);
    expect((await c.query(`SELECT count(*)::int AS n FROM fills WHERE id = $1`, [f.id])).rows[0].n).toBe(0);
  });

  it('keep nine-decimal quantities and prices exact', async () => {
    const t = await makeTrader(ds.manager);
    const o = await makeOrder(ds.manager, { traderId: t.id, quantity: new Dec('0.3') });
    await makeFills(ds.manager, [
      { orderId: o.id, quantity: new Dec('0.1'), price: new Dec('0.000000001') },
      { orderId: o.id, quantity: new Dec('0.2'), price: new Dec('123456789012.123456789') },
    ]);
    const { rows } = await c.query(
      `SELECT sum(quantity)::text AS q, max(price)::text AS p FROM fills WHERE order_id = $1`,
      [o.id],
    );
    expect(rows[0]).toEqual({ q: '0.300000000', p: '123456789012.123456789' });
  });
});
