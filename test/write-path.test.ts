import { Client } from 'pg';
import { makeTrader } from './factories';
import { createTestDatabase, startTestApp, type TestApp } from './harness';

let app: TestApp;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  db = await createTestDatabase();
  app = await startTestApp(db.url);
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
});

const ORDER_FIELDS = `id status quantity filledQuantity averageFillPrice positionId clientOrderId filledAt
  executionLogs { seq action fromStatus toStatus reason errorCode actor details }`;

async function ok<T = any>(query: string, variables?: Record<string, unknown>): Promise<T> {
  const res = await app.run(query, variables);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

/** Everything in the database, to prove a refused request changed nothing. */
async function snapshot(): Promise<string> {
  const rows = await app.dataSource.query(`
    SELECT (SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY id), '')) FROM traders t) ||
           (SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY id), '')) FROM positions p) ||
           (SELECT md5(coalesce(string_agg(o::text, '|' ORDER BY id), '')) FROM orders o) ||
           (SELECT md5(coalesce(string_agg(f::text, '|' ORDER BY id), '')) FROM fills f) ||
           (SELECT md5(coalesce(string_agg(l::text, '|' ORDER BY id), '')) FROM execution_logs l) AS s`);
  return rows[0].s;
}

async function refused(
  query: string,
  variables: Record<string, unknown>,
  code: string,
  message?: RegExp,
): Promise<Record<string, unknown>> {
  const before = await snapshot();
  const res = await app.run(query, variables);
  expect(res.errors?.[0].extensions?.code).toBe(code);
  if (message) expect(res.errors?.[0].message).toMatch(message);
  expect(await snapshot()).toBe(before);
  return res.errors![0].extensions!;
}

const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { ${ORDER_FIELDS} } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) {
  status fill { id execId quantity price positionId } order { ${ORDER_FIELDS} }
  position { id status quantity averageEntryPrice realizedPnl totalCommission } } }`;

let traderId: string;
let n = 0;
const submit = (over: Record<string, unknown> = {}) =>
  ok(SUBMIT, {
    input: {
      traderId,
      clientOrderId: `o-${++n}`,
      symbol: 'AAPL',
      side: 'BUY',
      orderType: 'MARKET',
      quantity: '100',
      ...over,
    },
  }).then((d) => d.submitOrder);
const record = (orderId: string, over: Record<string, unknown> = {}) =>
  ok(RECORD, {
    input: {
      orderId,
      execId: `x-${++n}`,
      quantity: '10',
      price: '100',
      executedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
      ...over,
    },
  }).then((d) => d.recordExecution);

beforeEach(async () => {
  traderId = (await makeTrader(app.dataSource.manager)).id;
});

describe('submitOrder', () => {
  it('creates a PENDING order with a SUBMITTED entry; a retry returns the same order and writes nothing', async () => {
    const input = {
      traderId,
      clientOrderId: 'retry-me',
      symbol: 'MSFT',
      side: 'SELL',
      orderType: 'LIMIT',
      quantity: '5.5',
      price: '410.25',
    };
    const first = (await ok(SUBMIT, { input })).submitOrder;
    expect(first).toMatchObject({ status: 'PENDING', quantity: '5.5', filledQuantity: '0', positionId: null });
    expect(first.executionLogs).toEqual([
      expect.objectContaining({
        seq: 1,
        action: 'SUBMITTED',
        fromStatus: null,
        toStatus: 'PENDING',
        actor: 'test-admin',
      }),
    ]);
    const before = await snapshot();
    const again = (await ok(SUBMIT, { input })).submitOrder;
    expect(again.id).toBe(first.id);
    expect(await snapshot()).toBe(before);
    await refused(
      SUBMIT,
      { input: { ...input, quantity: '6' } },
      'CONFLICT',
      /already used by order .* with different terms/,
    );
  });

  it.each([
    [{ orderType: 'LIMIT' }, 'price', /LIMIT order needs a limit price/],
    [{ orderType: 'STOP_LIMIT', price: '1' }, 'stopPrice', /needs a stop price/],
    [{ orderType: 'MARKET', price: '1' }, 'price', /has no limit price/],
    [{ quantity: '0' }, 'quantity', /quantity must be greater than 0/],
    [{ quantity: '-3' }, 'quantity', /greater than 0/],
    [{ quantity: '1.0000000001' }, 'quantity', /at most 21 digits before the decimal point and 9 after/],
    [{ quantity: '1000000000000000000000' }, 'quantity', /at most 21 digits before the decimal point/],
    [{ clientOrderId: 'x'.repeat(49) }, 'clientOrderId', /1 to 48 characters/],
    [{ symbol: 'A'.repeat(65) }, 'symbol', /1 to 64 characters/],
    [{ traderId: 'nope' }, 'traderId', /must be a UUID/],
  ])('refuses %p with BAD_USER_INPUT on %s and writes nothing', async (over, field, message) => {
    const ext = await refused(
      SUBMIT,
      {
        input: {
          traderId,
          clientOrderId: `bad-${++n}`,
          symbol: 'AAPL',
          side: 'BUY',
          orderType: 'MARKET',
          quantity: '1',
          ...over,
        },
      },
      'BAD_USER_INPUT',
      message,
    );
    expect(ext.field).toBe(field);
  });

  it('refuses an unknown enum value, a float quantity and an unknown trader', async () => {
    const base = { traderId, clientOrderId: 'e1', symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity: '1' };
    await refused(SUBMIT, { input: { ...base, side: 'HOLD' } }, 'BAD_USER_INPUT', /HOLD/);
    await refused(SUBMIT, { input: { ...base, quantity: 1.5 } }, 'BAD_USER_INPUT', /Decimal values are strings/);
    await refused(
      SUBMIT,
      { input: { ...base, traderId: '3f1b2c4d-0000-4000-8000-000000000000' } },
      'NOT_FOUND',
      /No trader has id/,
    );
  });
});

describe('status changes', () => {
  const CHANGE = (mutation: string, extra = '') =>
    `mutation($id: ID!) { ${mutation}(orderId: $id${extra}) { ${ORDER_FIELDS} } }`;

  it('accept, then cancel with a reason, each logged with from/to; an illegal change is CONFLICT naming the status', async () => {
    const o = await submit();
    const accepted = (await ok(CHANGE('acceptOrder', ', brokerOrderId: "BRK-1"'), { id: o.id })).acceptOrder;
    expect(accepted.status).toBe('ACCEPTED');
    const cancelled = (await ok(CHANGE('cancelOrder', ', reason: "trader asked"'), { id: o.id })).cancelOrder;
    expect(cancelled.status).toBe('CANCELLED');
    expect(cancelled.executionLogs.map((l: any) => [l.action, l.fromStatus, l.toStatus, l.reason])).toEqual([
      ['SUBMITTED', null, 'PENDING', null],
      ['ACCEPTED', 'PENDING', 'ACCEPTED', null],
      ['CANCELLED', 'ACCEPTED', 'CANCELLED', 'trader asked'],
    ]);
    await refused(CHANGE('acceptOrder'), { id: o.id }, 'CONFLICT', /is CANCELLED; it cannot become ACCEPTED/);
    await refused(CHANGE('expireOrder'), { id: o.id }, 'CONFLICT', /is CANCELLED/);
  });

  it('reject keeps the reason and error code; expire; unknown order is NOT_FOUND', async () => {
    const o = await submit();
    const r = (
      await ok(CHANGE('rejectOrder', ', reason: "no buying power", errorCode: "INSUFFICIENT_FUNDS"'), { id: o.id })
    ).rejectOrder;
    expect(r.executionLogs.at(-1)).toMatchObject({
      action: 'REJECTED',
      reason: 'no buying power',
      errorCode: 'INSUFFICIENT_FUNDS',
    });
    const e = await submit();
    expect((await ok(CHANGE('expireOrder'), { id: e.id })).expireOrder.status).toBe('EXPIRED');
    await refused(CHANGE('cancelOrder'), { id: '3f1b2c4d-0000-4000-8000-000000000000' }, 'NOT_FOUND');
    await refused(
      CHANGE('rejectOrder', ', reason: "x", errorCode: "lower case"'),
      { id: e.id },
      'BAD_USER_INPUT',
      /errorCode must be/,
    );
  });

  it('replaceOrder: the old order becomes REPLACED, the new one references it and takes the unfilled rest', async () => {
    const o = await submit({ orderType: 'LIMIT', price: '100', quantity: '50' });
    await ok(`mutation($id: ID!) { acceptOrder(orderId: $id) { id } }`, { id: o.id });
    await record(o.id, { quantity: '20' });
    const REPLACE = `mutation($id: ID!) { replaceOrder(orderId: $id, input: { clientOrderId: "r-1", price: "99.5" }) {
      id status quantity price replacesOrder { id status } executionLogs { action details } } }`;
    const r = (await ok(REPLACE, { id: o.id })).replaceOrder;
    expect(r).toMatchObject({
      status: 'PENDING',
      quantity: '30',
      price: '99.5',
      replacesOrder: { id: o.id, status: 'REPLACED' },
    });
    expect(r.executionLogs[0]).toMatchObject({ action: 'SUBMITTED', details: { replacesOrderId: o.id } });
    // A retry returns the same replacement.
    expect((await ok(REPLACE, { id: o.id })).replaceOrder.id).toBe(r.id);
    await refused(
      `mutation($id: ID!) { replaceOrder(orderId: $id, input: { clientOrderId: "r-2" }) { id } }`,
      { id: r.id },
      'CONFLICT',
      /is PENDING; it cannot become REPLACED/,
    );
  });
});

describe('recordExecution', () => {
  it('fills an order in parts, opens and links the position, logs EXECUTED, POSITION_LINKED, FILLED', async () => {
    const o = await submit({ quantity: '100' });
    const a = await record(o.id, { quantity: '60', price: '189.95', commission: '0.30' });
    expect(a.status).toBe('APPLIED');
    expect(a.order).toMatchObject({
      status: 'PARTIAL',
      filledQuantity: '60',
      averageFillPrice: '189.95',
      positionId: a.position.id,
    });
    expect(a.position).toMatchObject({
      status: 'OPEN',
      quantity: '60',
      averageEntryPrice: '189.95',
      totalCommission: '0.3',
    });
    const b = await record(o.id, { quantity: '40', price: '190', commission: '0.2' });
    expect(b.order).toMatchObject({ status: 'FILLED', filledQuantity: '100', averageFillPrice: '189.97' });
    expect(b.order.filledAt).not.toBeNull();
    expect(b.position).toMatchObject({
      id: a.position.id,
      quantity: '100',
      averageEntryPrice: '189.97',
      totalCommission: '0.5',
    });
    expect(b.order.executionLogs.map((l: any) => [l.action, l.fromStatus, l.toStatus])).toEqual([
      ['SUBMITTED', null, 'PENDING'],
      ['EXECUTED', 'PENDING', 'PARTIAL'],
      ['POSITION_LINKED', 'PARTIAL', 'PARTIAL'],
      ['FILLED', 'PARTIAL', 'FILLED'],
    ]);
    expect(b.order.executionLogs[1].details).toMatchObject({
      quantity: '60',
      price: '189.95',
      positionId: a.position.id,
      positionChange: 'OPEN',
    });
  });

  it('nets per trader and symbol: reduce with PnL, close at exactly zero, then a new position; flip', async () => {
    const buy = await submit({ quantity: '10' });
    const p1 = (await record(buy.id, { quantity: '10', price: '100' })).position;
    const sell = await submit({ side: 'SELL', quantity: '25' });
    const reduce = await record(sell.id, { quantity: '4', price: '110' });
    expect(reduce.position).toMatchObject({ id: p1.id, quantity: '6', averageEntryPrice: '100', realizedPnl: '40' });
    const close = await record(sell.id, { quantity: '6', price: '90' });
    expect(close.position).toMatchObject({ id: p1.id, quantity: '0', status: 'CLOSED', realizedPnl: '-20' });
    const reopen = await record(sell.id, { quantity: '15', price: '95' });
    expect(reopen.position.id).not.toBe(p1.id);
    expect(reopen.position).toMatchObject({
      status: 'OPEN',
      quantity: '-15',
      averageEntryPrice: '95',
      realizedPnl: '0',
    });
    // A flip closes the short (realizing 75) and opens a new long position from the remainder.
    const cover = await submit({ quantity: '20' });
    const flip = await record(cover.id, { quantity: '20', price: '90' });
    expect(flip.position.id).not.toBe(reopen.position.id);
    expect(flip.position).toMatchObject({ status: 'OPEN', quantity: '5', averageEntryPrice: '90', realizedPnl: '0' });
    const [closed] = await app.dataSource.query(
      `SELECT status, quantity::text AS q, realized_pnl::text AS pnl FROM positions WHERE id = $1`,
      [reopen.position.id],
    );
    expect(closed).toEqual({ status: 'CLOSED', q: '0.000000000', pnl: '75' });
    const [successor] = await app.dataSource.query(`SELECT flipped_from_id FROM positions WHERE id = $1`, [
      flip.position.id,
    ]);
    expect(successor.flipped_from_id).toBe(reopen.position.id);
  });

  it('keeps exact decimals: 0.1 + 0.2 with nine-decimal quantities', async () => {
    const o = await submit({ symbol: 'BTC/USD', quantity: '0.300000003' });
    await record(o.id, { quantity: '0.100000001', price: '0.1' });
    const r = await record(o.id, { quantity: '0.200000002', price: '0.2' });
    expect(r.order).toMatchObject({
      status: 'FILLED',
      filledQuantity: '0.300000003',
      averageFillPrice: '0.166666666666666667',
    });
    expect(r.position).toMatchObject({ quantity: '0.300000003', averageEntryPrice: '0.166666666666666667' });
    const [row] = await app.dataSource.query(
      `SELECT sum(quantity * price)::text AS notional FROM fills WHERE order_id = $1`,
      [o.id],
    );
    expect(row.notional).toBe('0.050000000500000000');
  });

  it('is idempotent on execId: same payload is DUPLICATE and changes nothing; another payload is CONFLICT, logged', async () => {
    const o = await submit();
    const first = await record(o.id, { execId: 'E-1', quantity: '10', price: '100' });
    const before = await snapshot();
    const again = await record(o.id, { execId: 'E-1', quantity: '10', price: '100' });
    expect(again.status).toBe('DUPLICATE');
    expect(again.fill.id).toBe(first.fill.id);
    expect(await snapshot()).toBe(before);

    const res = await app.run(RECORD, {
      input: { orderId: o.id, execId: 'E-1', quantity: '11', price: '100', executedAt: new Date().toISOString() },
    });
    expect(res.errors?.[0].extensions?.code).toBe('CONFLICT');
    expect(res.errors?.[0].message).toMatch(/already recorded for order .* as 10 @ 100/);
    const logs = await app.dataSource.query(
      `SELECT action, details FROM execution_logs WHERE order_id = $1 ORDER BY seq`,
      [o.id],
    );
    expect(logs.at(-1)).toMatchObject({
      action: 'DUPLICATE_IGNORED',
      details: { execId: 'E-1', attempted: { quantity: '11' } },
    });
    const [{ n: fills }] = await app.dataSource.query(`SELECT count(*)::int AS n FROM fills WHERE order_id = $1`, [
      o.id,
    ]);
    expect(fills).toBe(1);
  });

  it('records overfills and fills on FILLED / REJECTED orders as exceptions, never dropping them', async () => {
    const o = await submit({ quantity: '10' });
    await record(o.id, { quantity: '6' });
    const over = await record(o.id, { quantity: '5' });
    expect(over.status).toBe('APPLIED');
    expect(over.order).toMatchObject({ status: 'FILLED', filledQuantity: '10' });
    expect(over.order.executionLogs.at(-1)).toMatchObject({
      action: 'EXCEPTION',
      details: { exception: 'OVERFILL', overfilledQuantity: '1' },
    });
    const more = await record(o.id, { quantity: '1' });
    expect(more.order.executionLogs.at(-1).details).toMatchObject({ exception: 'OVERFILL', overfilledQuantity: '1' });
    const [row] = await app.dataSource.query(
      `SELECT filled_quantity::text AS f, overfilled_quantity::text AS x FROM orders WHERE id = $1`,
      [o.id],
    );
    expect(row).toEqual({ f: '10.000000000', x: '2.000000000' });
    const r = await submit();
    await ok(`mutation($id: ID!) { rejectOrder(orderId: $id, reason: "no") { id } }`, { id: r.id });
    const onRejected = await record(r.id, { quantity: '1' });
    expect(onRejected.order.status).toBe('REJECTED');
    expect(onRejected.order.executionLogs.find((l: any) => l.action === 'EXCEPTION').details.exception).toBe(
      'ORDER_REJECTED',
    );
    expect(onRejected.position.quantity).not.toBe('0');
  });

  it('applies a late fill to a CANCELLED order (details.late) and makes it FILLED when complete', async () => {
    const o = await submit({ quantity: '10' });
    await record(o.id, { quantity: '4' });
    await ok(`mutation($id: ID!) { cancelOrder(orderId: $id) { id } }`, { id: o.id });
    const late = await record(o.id, { quantity: '3' });
    expect(late.order.status).toBe('CANCELLED');
    expect(late.order.executionLogs.at(-1)).toMatchObject({
      action: 'EXECUTED',
      fromStatus: 'CANCELLED',
      toStatus: 'CANCELLED',
      details: { late: true },
    });
    const done = await record(o.id, { quantity: '3' });
    expect(done.order).toMatchObject({ status: 'FILLED', filledQuantity: '10' });
  });

  it('finds the order by traderId and clientOrderId; refuses both or neither, unknown ones and bad numbers', async () => {
    const o = await submit({ clientOrderId: 'by-ref' });
    const r = await ok(RECORD, {
      input: {
        traderId,
        clientOrderId: 'by-ref',
        execId: 'R1',
        quantity: '1',
        price: '5',
        executedAt: new Date().toISOString(),
      },
    });
    expect(r.recordExecution.order.id).toBe(o.id);
    const at = new Date().toISOString();
    await refused(
      RECORD,
      { input: { traderId, clientOrderId: 'nope', execId: 'R2', quantity: '1', price: '5', executedAt: at } },
      'NOT_FOUND',
      /No order has clientOrderId "nope"/,
    );
    await refused(
      RECORD,
      {
        input: {
          orderId: o.id,
          traderId,
          clientOrderId: 'by-ref',
          execId: 'R3',
          quantity: '1',
          price: '5',
          executedAt: at,
        },
      },
      'BAD_USER_INPUT',
      /either by orderId or by traderId and clientOrderId/,
    );
    await refused(
      RECORD,
      { input: { orderId: o.id, execId: 'R4', quantity: '0', price: '5', executedAt: at } },
      'BAD_USER_INPUT',
      /quantity must be greater than 0/,
    );
    await refused(
      RECORD,
      { input: { orderId: o.id, execId: 'R5', quantity: '1', price: '5.0000000001', executedAt: at } },
      'BAD_USER_INPUT',
      /price must have at most 21 digits before the decimal point and 9 after/,
    );
    await refused(
      RECORD,
      { input: { orderId: o.id, execId: 'R6', quantity: '1', price: '5', commission: '-1', executedAt: at } },
      'BAD_USER_INPUT',
      /commission must be 0 or more/,
    );
    await refused(
      RECORD,
      { input: { orderId: o.id, execId: 'E'.repeat(129), quantity: '1', price: '5', executedAt: at } },
      'BAD_USER_INPUT',
      /execId must be 1 to 128/,
    );
  });
});

describe('recordExecutions', () => {
  const BATCH = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) {
    applied duplicates refused results { index status fill { execId } error { code message field } } } }`;

  it('answers per execution: applied, duplicate, or refused with its error; refused ones change nothing', async () => {
    const o = await submit({ quantity: '10' });
    const at = new Date().toISOString();
    const inputs = [
      { orderId: o.id, execId: 'B1', quantity: '4', price: '10', executedAt: at },
      { orderId: o.id, execId: 'B1', quantity: '4', price: '10', executedAt: at },
      { orderId: o.id, execId: 'B1', quantity: '5', price: '10', executedAt: at },
      { orderId: o.id, execId: 'B2', quantity: '7', price: '10', executedAt: at },
      { orderId: o.id, execId: 'B3', quantity: '0', price: '10', executedAt: at },
      { orderId: '3f1b2c4d-0000-4000-8000-000000000000', execId: 'B4', quantity: '1', price: '10', executedAt: at },
      { orderId: o.id, execId: 'B5', quantity: '6', price: '11', executedAt: at },
    ];
    const r = (await ok(BATCH, { inputs })).recordExecutions;
    expect(r).toMatchObject({ applied: 3, duplicates: 1, refused: 3 });
    expect(r.results.map((x: any) => [x.index, x.status, x.error?.code ?? null])).toEqual([
      [0, 'APPLIED', null],
      [1, 'DUPLICATE', null],
      [2, 'REFUSED', 'CONFLICT'],
      [3, 'APPLIED', null],
      [4, 'REFUSED', 'BAD_USER_INPUT'],
      [5, 'REFUSED', 'NOT_FOUND'],
      [6, 'APPLIED', null],
    ]);
    expect(r.results[4].error.field).toBe('quantity');
    const [order] = await app.dataSource.query(`SELECT status, filled_quantity::text AS f FROM orders WHERE id = $1`, [
      o.id,
    ]);
    expect(order).toEqual({ status: 'FILLED', f: '10.000000000' });
  });

  it('a large batch: its rows, then its sealed log entries (written while the rows are applied); each order verifies', async () => {
    const orders = await Promise.all(Array.from({ length: 4 }, () => submit({ quantity: '100' })));
    const at = Date.now() - 60_000;
    const inputs = Array.from({ length: 120 }, (_, i) => ({
      orderId: orders[i % 4].id,
      execId: `L${i}`,
      quantity: '1',
      price: `${100 + (i % 7)}`,
      executedAt: new Date(at + i * 10).toISOString(),
    }));
    const r = (await ok(BATCH, { inputs })).recordExecutions;
    expect(r).toMatchObject({ applied: 120, duplicates: 0, refused: 0 });
    const [counts] = await app.dataSource.query(
      `SELECT (SELECT count(*)::int FROM fills WHERE exec_id LIKE 'L%') AS fills,
              (SELECT count(*)::int FROM execution_logs WHERE order_id = ANY($1::uuid[]) AND action = 'EXECUTED' AND seal IS NOT NULL) AS logs`,
      [orders.map((o) => o.id)],
    );
    expect(counts).toEqual({ fills: 120, logs: 120 });
    await app.integrator.integrateAll();
    for (const o of orders) {
      const v = (await ok(`query($id: ID!) { verifyExecutionLog(orderId: $id) { valid problem } }`, { id: o.id }))
        .verifyExecutionLog;
      expect(v).toEqual({ valid: true, problem: null });
    }
  });

  it('refuses more than 1,000 executions as a whole', async () => {
    const inputs = Array.from({ length: 1001 }, (_, i) => ({
      orderId: '3f1b2c4d-0000-4000-8000-000000000000',
      execId: `M${i}`,
      quantity: '1',
      price: '1',
      executedAt: new Date().toISOString(),
    }));
    await refused(BATCH, { inputs }, 'BAD_USER_INPUT', /at most 1000 executions; got 1001/);
  });
});

describe('linking by hand, recalculation, the chain', () => {
  const LINK = `mutation($o: ID!, $p: ID!) { linkOrderToPosition(orderId: $o, positionId: $p, reason: "booked to the wrong position") { id positionId executionLogs { action reason details } } }`;

  it('links an order without fills anywhere in its book; an order with fills only to the position of its first fill', async () => {
    const a = await submit({ quantity: '10' });
    const p1 = (await record(a.id, { quantity: '10', price: '100' })).position;
    const sell = await submit({ side: 'SELL', quantity: '10' });
    await record(sell.id, { quantity: '10', price: '110' }); // closes p1
    const b = await submit({ quantity: '5' });
    const p2 = (await record(b.id, { quantity: '5', price: '120' })).position;
    expect(p2.id).not.toBe(p1.id);
    await refused(LINK, { o: b.id, p: p1.id }, 'CONFLICT', /first fill is in position .*event time/);
    await refused(`mutation($o: ID!) { unlinkOrder(orderId: $o) { id } }`, { o: b.id }, 'CONFLICT', /has fills/);

    const c = await submit({ quantity: '1' });
    const linked = (await ok(LINK, { o: c.id, p: p1.id })).linkOrderToPosition;
    expect(linked.positionId).toBe(p1.id);
    expect(linked.executionLogs.at(-1)).toMatchObject({
      action: 'POSITION_LINKED',
      reason: 'booked to the wrong position',
      details: { previousPositionId: null, positionId: p1.id },
    });
    const unlinked = (
      await ok(
        `mutation($o: ID!) { unlinkOrder(orderId: $o, reason: "dispute") { positionId executionLogs { action } } }`,
        { o: c.id },
      )
    ).unlinkOrder;
    expect(unlinked.positionId).toBeNull();
    expect(unlinked.executionLogs.at(-1).action).toBe('POSITION_UNLINKED');
    await refused(`mutation($o: ID!) { unlinkOrder(orderId: $o) { id } }`, { o: c.id }, 'CONFLICT', /is not linked/);
    // Its first fill decides its link, whatever was linked by hand before.
    await ok(LINK, { o: c.id, p: p1.id });
    const filled = await record(c.id, { quantity: '1', price: '121' });
    expect(filled.order.positionId).toBe(p2.id);
  });

  it('refuses a position of another symbol or trader', async () => {
    const a = await submit({ symbol: 'AAPL' });
    const m = await submit({ symbol: 'MSFT' });
    const pm = (await record(m.id)).position;
    await refused(LINK, { o: a.id, p: pm.id }, 'BAD_USER_INPUT', /same trader and symbol/);
  });

  it('recalculatePosition replays the fills, corrects a wrong position and logs RECOVERED', async () => {
    const o = await submit({ quantity: '10' });
    const p = (await record(o.id, { quantity: '10', price: '50' })).position;
    const RECALC = `mutation($p: ID!) { recalculatePosition(positionId: $p) { changed position { quantity averageEntryPrice } } }`;
    expect((await ok(RECALC, { p: p.id })).recalculatePosition.changed).toBe(false);
    await app.dataSource.query(`UPDATE positions SET quantity = 7, average_entry_price = 1 WHERE id = $1`, [p.id]);
    expect((await ok(RECALC, { p: p.id })).recalculatePosition).toEqual({
      changed: true,
      position: { quantity: '10', averageEntryPrice: '50' },
    });
    const [log] = await app.dataSource.query(
      `SELECT action, details FROM execution_logs WHERE order_id = $1 ORDER BY seq DESC LIMIT 1`,
      [o.id],
    );
    expect(log).toMatchObject({
      action: 'RECOVERED',
      details: { books: [{ positions: [{ id: p.id, before: { quantity: '7' }, after: { quantity: '10' } }] }] },
    });
  });

  it('verifyExecutionLog recomputes the chain and names the first broken entry', async () => {
    const o = await submit();
    await record(o.id);
    await record(o.id);
    const VERIFY = `query($o: ID!) { verifyExecutionLog(orderId: $o) { valid entries firstBrokenSeq problem } }`;
    expect((await ok(VERIFY, { o: o.id })).verifyExecutionLog).toEqual({
      valid: true,
      entries: 4,
      firstBrokenSeq: null,
      problem: null,
    });
    const c = new Client({ connectionString: db.url });
    await c.connect();
    await c.query('ALTER TABLE execution_logs DISABLE TRIGGER execution_logs_no_update_delete');
    await c.query(`UPDATE execution_logs SET details = '{"quantity": "1000"}' WHERE order_id = $1 AND seq = 3`, [o.id]);
    await c.query('ALTER TABLE execution_logs ENABLE TRIGGER execution_logs_no_update_delete');
    await c.end();
    expect((await ok(VERIFY, { o: o.id })).verifyExecutionLog).toMatchObject({
      valid: false,
      firstBrokenSeq: 3,
      problem: expect.stringMatching(/entry 3 was changed/i),
    });
  });
});

describe('the application role', () => {
  it('can read and append the log but not update, delete or truncate it', async () => {
    const o = await submit();
    const c = new Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('BEGIN');
      await c.query('SET LOCAL ROLE tradetrail_app');
      await c.query(`SET LOCAL tradetrail.role = 'service'`);
      expect(
        (await c.query('SELECT count(*)::int AS n FROM execution_logs WHERE order_id = $1', [o.id])).rows[0].n,
      ).toBe(1);
      for (const sql of [
        `UPDATE execution_logs SET reason = 'x'`,
        `DELETE FROM execution_logs`,
        `TRUNCATE execution_logs`,
      ]) {
        await c.query('SAVEPOINT s');
        await expect(c.query(sql)).rejects.toMatchObject({ code: '42501' });
        await c.query('ROLLBACK TO SAVEPOINT s');
      }
      const [{ rolsuper, rolbypassrls }] = (
        await c.query(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`)
      ).rows;
      expect({ rolsuper, rolbypassrls }).toEqual({ rolsuper: false, rolbypassrls: false });
    } finally {
      await c.query('ROLLBACK');
      await c.end();
    }
  });
});

describe('new ids are time-ordered (UUID version 7)', () => {
  /** The milliseconds a version 7 UUID carries; throws for any other version or variant. */
  const millisOf = (id: string): number => {
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    return parseInt(id.replace(/-/g, '').slice(0, 12), 16);
  };

  it('the server makes them for fills, positions, log entries and corrections; the database for orders and traders', async () => {
    const before = Date.now();
    const trader = await makeTrader(app.dataSource.manager); // the database's default
    const o = await ok(
      `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`, // the database's default
      {
        input: {
          traderId: trader.id,
          clientOrderId: 'v7',
          symbol: 'V7',
          side: 'BUY',
          orderType: 'MARKET',
          quantity: '10',
        },
      },
    ).then((d) => d.submitOrder);
    const r = await ok(RECORD, {
      input: { orderId: o.id, execId: 'v7-1', quantity: '10', price: '1', executedAt: '2026-01-01T00:00:00Z' },
    }).then((d) => d.recordExecution);
    const corrected = await ok(
      `mutation { correctExecution(input: { execId: "v7-1", correctionId: "v7-c", price: "2", reason: "price" }) { correction { id } } }`,
    ).then((d) => d.correctExecution.correction);
    const entries = (await app.dataSource.query(`SELECT id FROM execution_logs WHERE order_id = $1 ORDER BY seq`, [
      o.id,
    ])) as { id: string }[];
    const after = Date.now();
    const ids = [trader.id, o.id, r.fill.id, r.position.id, corrected.id, ...entries.map((e) => e.id)];
    for (const id of ids) {
      const ms = millisOf(id);
      expect(ms).toBeGreaterThanOrEqual(before - 1000); // the database's clock, not this process's
      expect(ms).toBeLessThanOrEqual(after + 1000);
    }
    // Written in order: an order's entries, made one request after another, sort in their order.
    expect(entries.length).toBeGreaterThanOrEqual(4);
    expect([...entries.map((e) => e.id)].sort()).toEqual(entries.map((e) => e.id));
  });

  it("the database's default: version 7, distinct, in time order across milliseconds", async () => {
    // Left to right: the clock before, the id, the clock after.
    const rows = (await app.dataSource.query(
      `SELECT clock_timestamp() AS before, tradetrail_uuid_v7()::text AS id, clock_timestamp() AS after
       FROM generate_series(1, 2000)`,
    )) as { id: string; before: Date; after: Date }[];
    expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
    for (const r of rows) {
      expect(millisOf(r.id)).toBeGreaterThanOrEqual(r.before.getTime());
      expect(millisOf(r.id)).toBeLessThanOrEqual(r.after.getTime());
    }
    const ms = rows.map((r) => millisOf(r.id));
    expect(ms).toEqual([...ms].sort((a, b) => a - b));
    // The 74 other bits stay random: no two ids of one millisecond share them.
    expect(new Set(rows.map((r) => r.id.slice(15))).size).toBe(rows.length);
  });
});
