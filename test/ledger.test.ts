import { Dec } from '../src/decimal';
import { upgradeLedger } from '../src/position/ledger-upgrade';
import { makeFills, makeOrders, makePosition, makeTrader } from './factories';
import { COMPLIANCE, createTestDatabase, SERVICE, startTestApp, type TestApp, traderPrincipal } from './harness';

/** Issue 7: the event-time ledger over GraphQL, with the roles of the security model. */
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

async function ok<T = any>(query: string, variables?: Record<string, unknown>, principal = SERVICE): Promise<T> {
  const res = await app.run(query, variables, principal);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

async function tables(): Promise<string> {
  const [{ s }] = await app.dataSource.query(`
    SELECT (SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY id), '')) FROM positions p) ||
           (SELECT md5(coalesce(string_agg(o::text, '|' ORDER BY id), '')) FROM orders o) ||
           (SELECT md5(coalesce(string_agg(f::text, '|' ORDER BY id), '')) FROM fills f) ||
           (SELECT md5(coalesce(string_agg(c::text, '|' ORDER BY id), '')) FROM fill_corrections c) AS s`);
  return s;
}

async function refused(
  query: string,
  variables: Record<string, unknown>,
  code: string,
  message?: RegExp,
  principal = SERVICE,
) {
  const before = await tables();
  const res = await app.run(query, variables, principal);
  expect(res.errors?.[0].extensions?.code).toBe(code);
  if (message) expect(res.errors?.[0].message).toMatch(message);
  expect(await tables()).toBe(before);
}

const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) {
  status fill { id positionId exception overfilledQuantity } order { status filledQuantity overfilledQuantity positionId }
  position { id quantity costBasis averageEntryPrice realizedPnl status } } }`;
const BOOK = `query($t: ID!, $s: String!) { positions(filter: { traderId: $t, symbol: $s }, first: 50, orderBy: { field: OPENED_AT, direction: ASC }) {
  edges { node { id status quantity costBasis averageEntryPrice realizedPnl totalCommission openedAt closedAt flippedFromId contractMultiplier
    fills { execId positionId } } } } }`;
const RECALC_BOOK = `mutation($t: ID!, $s: String!) { recalculateBook(traderId: $t, symbol: $s) { changed fillsMoved removedPositionIds positions { id } } }`;
const CORRECT = `mutation($input: CorrectExecutionInput!) { correctExecution(input: $input) {
  status correction { correctionId kind quantity price commission previousQuantity reason actor }
  fill { id quantity effectiveQuantity effectivePrice effectiveCommission busted corrections { correctionId kind } }
  order { status filledQuantity averageFillPrice positionId } } }`;
const BUST = `mutation($input: BustExecutionInput!) { bustExecution(input: $input) {
  status fill { busted effectiveQuantity positionId } order { status filledQuantity positionId } } }`;

let n = 0;
const newTrader = async (): Promise<string> => (await makeTrader(app.dataSource.manager)).id;
const at = (s: number) => new Date(Date.UTC(2026, 2, 2, 14, 0, s)).toISOString();
async function order(traderId: string, side: 'BUY' | 'SELL', quantity: string, symbol = 'AAPL'): Promise<string> {
  n += 1;
  return (
    await ok(SUBMIT, {
      input: { traderId, clientOrderId: `L-${n}`, symbol, side, orderType: 'MARKET', timeInForce: 'DAY', quantity },
    })
  ).submitOrder.id;
}
async function fill(
  orderId: string,
  quantity: string,
  price: string,
  second: number,
  extra: Record<string, unknown> = {},
) {
  n += 1;
  return (
    await ok(RECORD, {
      input: { orderId, execId: `X-${n}`, quantity, price, executedAt: at(second), ...extra },
    })
  ).recordExecution;
}
const book = async (t: string, s = 'AAPL') => (await ok(BOOK, { t, s })).positions.edges.map((e: any) => e.node);

describe('event time decides (point 1)', () => {
  it('the issue example: fills arriving out of order give the replay of the book, and recalculation changes nothing', async () => {
    const t = await newTrader();
    const b1 = await order(t, 'BUY', '10');
    const s1 = await order(t, 'SELL', '5');
    const b2 = await order(t, 'BUY', '5');
    await fill(b1, '10', '50', 3);
    const late = await fill(s1, '5', '60', 1);
    expect(late.status).toBe('APPLIED');
    await fill(b2, '5', '70', 2);
    const positions = await book(t);
    expect(
      positions.map((p: any) => [p.status, p.quantity, p.costBasis, p.realizedPnl, p.openedAt, p.closedAt]),
    ).toEqual([
      ['CLOSED', '0', '0', '-50', at(1), at(2)],
      ['OPEN', '10', '500', '0', at(3), null],
    ]);
    // Fills and links follow the replay.
    const orders = await app.dataSource.query(`SELECT id, position_id FROM orders WHERE id = ANY($1)`, [[b1, s1, b2]]);
    const link = Object.fromEntries(orders.map((o: any) => [o.id, o.position_id]));
    expect([link[s1], link[b2], link[b1]]).toEqual([positions[0].id, positions[0].id, positions[1].id]);
    // Every change is logged: the late fills' entries describe the replay; the moved order has a REPLAY entry.
    const logs = await app.dataSource.query(
      `SELECT action, details FROM execution_logs WHERE order_id = $1 ORDER BY seq`,
      [b1],
    );
    expect(logs.map((l: any) => l.action)).toEqual(['SUBMITTED', 'FILLED', 'POSITION_LINKED', 'POSITION_LINKED']);
    expect(logs[3].details).toMatchObject({ event: 'REPLAY', positionId: positions[1].id });
    // Recomputing changes nothing on an untampered database.
    expect(
      (await ok(RECALC_BOOK, { t, s: 'AAPL' }, { sub: 'admin', role: 'admin', traderId: null })).recalculateBook,
    ).toMatchObject({
      changed: false,
      fillsMoved: 0,
      removedPositionIds: [],
    });
    const r = await ok(
      `mutation($p: ID!) { recalculatePosition(positionId: $p) { changed } }`,
      { p: positions[1].id },
      { sub: 'admin', role: 'admin', traderId: null },
    );
    expect(r.recalculatePosition.changed).toBe(false);
  });

  it('a late fill splits a position in two and the replay removes what no fill explains', async () => {
    const t = await newTrader();
    const b = await order(t, 'BUY', '20');
    const s = await order(t, 'SELL', '10');
    await fill(b, '10', '100', 1);
    await fill(b, '10', '110', 3);
    expect((await book(t)).length).toBe(1);
    await fill(s, '10', '105', 2); // closes the first 10 between the two buys
    const positions = await book(t);
    expect(positions.map((p: any) => [p.status, p.quantity, p.realizedPnl, p.costBasis])).toEqual([
      ['CLOSED', '0', '50', '0'],
      ['OPEN', '10', '0', '1100'],
    ]);
    // Then an even earlier sell arrives: everything after it nets differently (short, closed, short, closed).
    const s2 = await order(t, 'SELL', '10');
    await fill(s2, '10', '90', 0); // opens short at t0, the first buy closes it at t1
    const after = await book(t);
    expect(after.map((p: any) => [p.status, p.quantity, p.realizedPnl])).toEqual([
      ['CLOSED', '0', '-100'],
      ['CLOSED', '0', '-50'],
    ]);
    expect(after.map((p: any) => p.id)).toEqual(positions.map((p: any) => p.id));
  });

  it('an out-of-order batch replays once and ends as the arrival-order-independent replay', async () => {
    const t = await newTrader();
    const b = await order(t, 'BUY', '3');
    const s = await order(t, 'SELL', '3');
    const BATCH = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied } }`;
    await ok(BATCH, {
      inputs: [
        { orderId: s, execId: `BX-${t}-1`, quantity: '3', price: '12', executedAt: at(5) },
        { orderId: b, execId: `BX-${t}-2`, quantity: '1', price: '10', executedAt: at(1) },
        { orderId: b, execId: `BX-${t}-3`, quantity: '2', price: '11', executedAt: at(2) },
      ],
    });
    const positions = await book(t);
    expect(positions.map((p: any) => [p.status, p.realizedPnl])).toEqual([['CLOSED', '4']]);
  });
});

describe('exact to the last digit (point 2)', () => {
  it("a closed round trip's realized PnL is its exact cash flow; averages are correctly rounded", async () => {
    const t = await newTrader();
    const ids = await Promise.all(
      ['BUY', 'BUY', 'SELL', 'BUY', 'SELL'].map((side, i) => order(t, side as 'BUY', ['1', '2', '1', '1', '3'][i])),
    );
    const prices = ['1', '2', '2', '1', '2'];
    for (const [i, id] of ids.entries()) await fill(id, ['1', '2', '1', '1', '3'][i], prices[i], 10 + i);
    const [p] = await book(t);
    expect(p).toMatchObject({ status: 'CLOSED', quantity: '0', costBasis: '0', realizedPnl: '2' });

    const t2 = await newTrader();
    await fill(await order(t2, 'BUY', '1'), '1', '5', 1);
    const r = await fill(await order(t2, 'BUY', '8'), '8', '1', 2);
    expect(r.position.averageEntryPrice).toBe('1.444444444444444444');
  });

  it('a flip closes the position and opens a new one linked as its successor', async () => {
    const t = await newTrader();
    await fill(await order(t, 'BUY', '5'), '5', '100', 1);
    const r = await fill(await order(t, 'SELL', '8'), '8', '110', 2);
    const [closed, opened] = await book(t);
    expect(closed).toMatchObject({ status: 'CLOSED', realizedPnl: '50' });
    expect(opened).toMatchObject({ status: 'OPEN', quantity: '-3', costBasis: '330', flippedFromId: closed.id });
    expect(r.position.id).toBe(opened.id);
    expect(opened.fills.map((f: any) => f.positionId)).toEqual([opened.id]);
  });
});

describe('no real execution dropped (point 3) and idempotency (point 4)', () => {
  it('fills on REPLACED orders and beyond the quantity are applied as exceptions, listed by fills(filter: { exception: true })', async () => {
    const t = await newTrader();
    const o = await order(t, 'BUY', '10');
    await ok(`mutation($id: ID!) { acceptOrder(orderId: $id) { id } }`, { id: o });
    await ok(`mutation($id: ID!) { replaceOrder(orderId: $id, input: { clientOrderId: "R-${t}" }) { id } }`, { id: o });
    const race = await fill(o, '4', '10', 1);
    expect(race.status).toBe('APPLIED');
    expect(race.fill.exception).toBe('ORDER_REPLACED');
    expect(race.order.status).toBe('REPLACED');
    expect(race.position.quantity).toBe('4');
    const o2 = await order(t, 'BUY', '2');
    await fill(o2, '2', '10', 2);
    const over = await fill(o2, '1', '10', 3);
    expect(over.fill).toMatchObject({ exception: 'OVERFILL', overfilledQuantity: '1' });
    expect(over.order).toMatchObject({ status: 'FILLED', filledQuantity: '2', overfilledQuantity: '1' });
    const listed = await ok(
      `query($t: ID!) { fills(filter: { traderId: $t, exception: true }) { totalCount edges { node { exception } } } }`,
      { t },
      COMPLIANCE,
    );
    expect(listed.fills.totalCount).toBe(2);
    const logs = await app.dataSource.query(
      `SELECT count(*)::int AS n FROM execution_logs WHERE trader_id = $1 AND action = 'EXCEPTION'`,
      [t],
    );
    expect(logs[0].n).toBe(2);
  });

  it('an execId is unique per venue: a replay must match order, quantity, price and commission', async () => {
    const t = await newTrader();
    const o = await order(t, 'BUY', '10');
    const other = await order(t, 'BUY', '10');
    const input = {
      orderId: o,
      execId: `V-${t}`,
      venue: 'XNAS',
      quantity: '1',
      price: '10',
      commission: '0.5',
      executedAt: at(1),
    };
    expect((await ok(RECORD, { input })).recordExecution.status).toBe('APPLIED');
    expect((await ok(RECORD, { input })).recordExecution.status).toBe('DUPLICATE');
    await refused(RECORD, { input: { ...input, commission: '0.6' } }, 'CONFLICT', /already recorded .*commission 0\.5/);
    await refused(RECORD, { input: { ...input, orderId: other } }, 'CONFLICT', /already recorded for order/);
    const dup = await app.dataSource.query(
      `SELECT count(*)::int AS n FROM execution_logs WHERE action = 'DUPLICATE_IGNORED' AND trader_id = $1`,
      [t],
    );
    expect(dup[0].n).toBe(2);
    // Another venue may use the same id.
    expect((await ok(RECORD, { input: { ...input, venue: 'ARCX' } })).recordExecution.status).toBe('APPLIED');
  });
});

describe('corrections and busts (point 5)', () => {
  it('a correction is a new record; the order and book are recomputed; idempotent on correctionId', async () => {
    const t = await newTrader();
    const o = await order(t, 'BUY', '10');
    const execId = `C-${t}`;
    await ok(RECORD, { input: { orderId: o, execId, quantity: '10', price: '100', executedAt: at(1) } });
    const s = await order(t, 'SELL', '4');
    await fill(s, '4', '110', 2);
    const input = { correctionId: `corr-${t}`, execId, price: '101', reason: 'venue corrected the price' };
    const r = (await ok(CORRECT, { input })).correctExecution;
    expect(r).toMatchObject({
      status: 'APPLIED',
      correction: { kind: 'CORRECTION', price: '101', previousQuantity: '10', actor: SERVICE.sub },
      fill: { quantity: '10', effectivePrice: '101', effectiveQuantity: '10', busted: false },
      order: { status: 'FILLED', averageFillPrice: '101' },
    });
    const [p] = await book(t);
    expect(p).toMatchObject({ quantity: '6', realizedPnl: '36', costBasis: '606' });
    expect((await ok(CORRECT, { input })).correctExecution.status).toBe('DUPLICATE');
    await refused(CORRECT, { input: { ...input, price: '102' } }, 'CONFLICT', /already used/);
    const [orig] = await app.dataSource.query(`SELECT price::text FROM fills WHERE exec_id = $1`, [execId]);
    expect(orig.price).toBe('100.000000000');
    const [log] = await app.dataSource.query(
      `SELECT action, reason, actor, details FROM execution_logs WHERE order_id = $1 ORDER BY seq DESC LIMIT 1`,
      [o],
    );
    expect(log).toMatchObject({
      action: 'CORRECTED',
      reason: 'venue corrected the price',
      actor: SERVICE.sub,
      details: { before: { price: '100' }, after: { price: '101' } },
    });
  });

  it('a bust takes FILLED back, removes the fill from the book, and cannot be repeated under another id', async () => {
    const t = await newTrader();
    const o = await order(t, 'BUY', '10');
    await ok(`mutation($id: ID!) { acceptOrder(orderId: $id) { id } }`, { id: o });
    await fill(o, '4', '100', 1);
    const execId = `B-${t}`;
    await ok(RECORD, { input: { orderId: o, execId, quantity: '6', price: '100', executedAt: at(2) } });
    const r = (await ok(BUST, { input: { correctionId: `bust-${t}`, execId, reason: 'trade broken by the venue' } }))
      .bustExecution;
    expect(r).toMatchObject({
      status: 'APPLIED',
      fill: { busted: true, effectiveQuantity: '0', positionId: null },
      order: { status: 'PARTIAL', filledQuantity: '4' },
    });
    expect((await book(t)).map((p: any) => p.quantity)).toEqual(['4']);
    await refused(BUST, { input: { correctionId: `bust2-${t}`, execId, reason: 'again' } }, 'CONFLICT', /is busted/);
    await refused(
      CORRECT,
      { input: { correctionId: `c-${t}`, execId: 'nope', price: '1', reason: 'x' } },
      'NOT_FOUND',
      /No execution nope/,
    );
    // Bust the other one too: the position is gone, the order is ACCEPTED again.
    const first = await app.dataSource.query(`SELECT exec_id FROM fills WHERE order_id = $1 AND exec_id <> $2`, [
      o,
      execId,
    ]);
    const r2 = (await ok(BUST, { input: { correctionId: `bust3-${t}`, execId: first[0].exec_id, reason: 'broken' } }))
      .bustExecution;
    expect(r2.order.status).toBe('ACCEPTED');
    expect(await book(t)).toEqual([]);
  });

  it('only service and admin may correct or bust', async () => {
    const t = await newTrader();
    const input = { correctionId: `r-${t}`, execId: 'x', reason: 'x' };
    await refused(BUST, { input }, 'FORBIDDEN', undefined, traderPrincipal(t));
    await refused(BUST, { input }, 'FORBIDDEN', undefined, COMPLIANCE);
  });
});

describe('contract multiplier (point 6)', () => {
  it('US equity options by OCC symbol cost and realize ×100', async () => {
    const t = await newTrader();
    const sym = 'SPY240426C00555000';
    await fill(await order(t, 'BUY', '2', sym), '2', '3.5', 1);
    await fill(await order(t, 'SELL', '2', sym), '2', '4', 2);
    const [p] = await book(t, sym);
    expect(p).toMatchObject({ contractMultiplier: '100', realizedPnl: '100', averageEntryPrice: '3.5' });
  });
});

describe('existing data is brought to the new rules (point 2)', () => {
  it('upgradeLedger replays books computed by the earlier rules (a flip in place), logs it, and is idempotent', async () => {
    const m = app.dataSource.manager;
    const t = await newTrader();
    // Written by the earlier rules: SELL 8 against a long 5 flipped the same position to -3.
    const legacy = await makePosition(m, {
      traderId: t,
      symbol: 'IBM',
      quantity: new Dec(-3),
      averageEntryPrice: new Dec(110),
      costBasis: new Dec(330),
      realizedPnl: new Dec(50),
      rulesVersion: 1,
      openedAt: new Date(at(1)),
    });
    const [buy, sell] = await makeOrders(m, [
      { traderId: t, symbol: 'IBM', side: 'BUY' as never, quantity: new Dec(5), positionId: legacy.id },
      { traderId: t, symbol: 'IBM', side: 'SELL' as never, quantity: new Dec(8), positionId: legacy.id },
    ]);
    await makeFills(m, [
      {
        orderId: buy.id,
        positionId: legacy.id,
        quantity: new Dec(5),
        price: new Dec(100),
        executedAt: new Date(at(1)),
      },
      {
        orderId: sell.id,
        positionId: legacy.id,
        quantity: new Dec(8),
        price: new Dec(110),
        executedAt: new Date(at(2)),
      },
    ]);
    const first = await upgradeLedger(app.dataSource);
    expect(first.books).toBeGreaterThanOrEqual(1);
    const positions = await book(t, 'IBM');
    expect(positions.map((p: any) => [p.id === legacy.id, p.status, p.quantity, p.realizedPnl, p.costBasis])).toEqual([
      [true, 'CLOSED', '0', '50', '0'],
      [false, 'OPEN', '-3', '0', '330'],
    ]);
    expect(positions[1].flippedFromId).toBe(legacy.id);
    const logs = await app.dataSource.query(
      `SELECT action, actor FROM execution_logs WHERE trader_id = $1 ORDER BY recorded_at`,
      [t],
    );
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.every((l: any) => l.actor === 'system')).toBe(true);
    expect((await upgradeLedger(app.dataSource)).books).toBe(0);
  });
});

describe('concurrency', () => {
  it('concurrent out-of-order fills, batches and a bust on one book: all applied, and the book equals its replay', async () => {
    const t = await newTrader();
    const buys = await Promise.all([1, 2, 3].map(() => order(t, 'BUY', '100')));
    const sells = await Promise.all([1, 2, 3].map(() => order(t, 'SELL', '100')));
    const BATCH = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;
    // A deterministic shuffle of event times: every request has its own, out of order.
    const seconds = Array.from({ length: 24 }, (_, i) => (i * 7) % 24);
    const results = await Promise.all(
      seconds.map((s, i) => {
        const o = (i % 2 ? sells : buys)[i % 3];
        const input = {
          orderId: o,
          execId: `CC-${t}-${i}`,
          quantity: String(1 + (i % 4)),
          price: String(100 + s),
          executedAt: at(s),
        };
        return i % 5 === 0 ? app.run(BATCH, { inputs: [input] }, SERVICE) : app.run(RECORD, { input }, SERVICE);
      }),
    );
    expect(results.filter((r) => r.errors)).toEqual([]);
    await ok(BUST, { input: { correctionId: `CC-${t}-bust`, execId: `CC-${t}-3`, reason: 'broken' } });
    const r = await ok(RECALC_BOOK, { t, s: 'AAPL' }, { sub: 'admin', role: 'admin', traderId: null });
    expect(r.recalculateBook).toMatchObject({ changed: false, fillsMoved: 0 });
    const [{ n }] = await app.dataSource.query(`SELECT count(*)::int AS n FROM fills WHERE trader_id = $1`, [t]);
    expect(n).toBe(24);
  });
});
