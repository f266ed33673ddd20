import { D, type ModelFill, type ModelOrder, cashFlows, divRound18, runModel } from './property/model';
import { report, runSeeds, shrinkFailure } from './property/run';
import { generate, isValid, modelInput, size } from './property/scenario';
import { adminQuery, createTestDatabase, startTestApp, type TestApp } from './harness';

/**
 * Issue 7 point 7: the ledger's property test. Seeded scenarios (test/property/scenario.ts) are
 * delivered in several orders and batchings; every delivery must leave the same books, equal to an
 * independent replay model (test/property/model.ts), with each closed position's realized PnL its
 * exact cash flow and recalculateBook changing nothing. Environment: PROPERTY_SCENARIOS (default 200),
 * PROPERTY_SEED (first seed, default 1), PROPERTY_KEEP_GOING=1. More scenarios: `npm run test:property`.
 */

const SCENARIOS = Number(process.env.PROPERTY_SCENARIOS ?? 200);
const FIRST_SEED = Number(process.env.PROPERTY_SEED ?? 1);
/** PROPERTY_KEEP_GOING=1: run every scenario, then report the failing seeds and shrink the smallest. */
const KEEP_GOING = process.env.PROPERTY_KEEP_GOING === '1';

const t = (s: number): number => Date.UTC(2026, 0, 2, 14, 30, s);
const order = (key: string, side: 'BUY' | 'SELL', quantity: string, over: Partial<ModelOrder> = {}): ModelOrder => ({
  key,
  trader: 'A',
  symbol: 'AAPL',
  side,
  quantity,
  lifecycle: 'ACCEPTED',
  accepted: true,
  ...over,
});
const fill = (key: string, o: string, quantity: string, price: string, at: number, over: Partial<ModelFill> = {}) => ({
  key,
  order: o,
  executedAt: t(at),
  arrival: at,
  quantity,
  price,
  commission: '0',
  busted: false,
  ...over,
});

describe('the replay model, on hand-computed books', () => {
  const five = [
    order('b1', 'BUY', '1'),
    order('b2', 'BUY', '2'),
    order('s1', 'SELL', '1'),
    order('b3', 'BUY', '1'),
    order('s2', 'SELL', '3'),
  ];
  const fiveFills = [
    fill('1', 'b1', '1', '1', 1),
    fill('2', 'b2', '2', '2', 2),
    fill('3', 's1', '1', '2', 3),
    fill('4', 'b3', '1', '1', 4),
    fill('5', 's2', '3', '2', 5),
  ];

  it('BUY 1@1, BUY 2@2, SELL 1@2, BUY 1@1: average 13/9 rounded half-even to 18 places', () => {
    const m = runModel({ orders: five, fills: fiveFills.slice(0, 4), multiplier: () => 1 });
    expect(m.books['A/AAPL']).toEqual([
      expect.objectContaining({
        status: 'OPEN',
        quantity: '3',
        costBasis: '4.333333333333333333',
        averageEntryPrice: '1.444444444444444444',
        realizedPnl: '0.333333333333333333',
      }),
    ]);
  });

  it('… then SELL 3@2 closes it with realized PnL exactly 2 (its cash flow)', () => {
    const m = runModel({ orders: five, fills: fiveFills, multiplier: () => 1 });
    expect(m.books['A/AAPL']).toEqual([
      expect.objectContaining({
        status: 'CLOSED',
        quantity: '0',
        costBasis: '0',
        averageEntryPrice: '1.444444444444444444',
        realizedPnl: '2',
        closedAt: new Date(t(5)).toISOString(),
      }),
    ]);
  });

  it('event time decides: BUY 10@50 t3, SELL 5@60 t1, BUY 5@70 t2', () => {
    const m = runModel({
      orders: [order('b', 'BUY', '10'), order('s', 'SELL', '5'), order('c', 'BUY', '5')],
      fills: [
        fill('1', 'b', '10', '50', 3, { arrival: 0 }),
        fill('2', 's', '5', '60', 1, { arrival: 1 }),
        fill('3', 'c', '5', '70', 2),
      ],
      multiplier: () => 1,
    });
    expect(m.books['A/AAPL']).toEqual([
      expect.objectContaining({
        status: 'CLOSED',
        quantity: '0',
        averageEntryPrice: '60',
        realizedPnl: '-50',
        openedAt: new Date(t(1)).toISOString(),
        closedAt: new Date(t(2)).toISOString(),
      }),
      expect.objectContaining({
        status: 'OPEN',
        quantity: '10',
        costBasis: '500',
        averageEntryPrice: '50',
        realizedPnl: '0',
      }),
    ]);
    expect(m.fills).toMatchObject({ '1': { position: 1 }, '2': { position: 0 }, '3': { position: 0 } });
    expect(m.orders.b.position).toBe(1);
  });

  it('a flip on an option (multiplier 100) closes the old position and opens a new one at the fill price', () => {
    const sym = 'SPY240426C00555000';
    const m = runModel({
      orders: [order('b', 'BUY', '2', { symbol: sym }), order('s', 'SELL', '5', { symbol: sym })],
      fills: [
        fill('1', 'b', '2', '1.5', 1, { commission: '0.65' }),
        fill('2', 's', '5', '2', 2, { commission: '1.3' }),
      ],
      multiplier: (s) => (s === sym ? 100 : 1),
    });
    expect(m.books[`A/${sym}`]).toEqual([
      expect.objectContaining({ status: 'CLOSED', realizedPnl: '100', totalCommission: '0.65', flippedTo: 1 }),
      expect.objectContaining({
        status: 'OPEN',
        quantity: '-3',
        costBasis: '600',
        averageEntryPrice: '2',
        totalCommission: '1.3',
        flippedFrom: 0,
        openedAt: new Date(t(2)).toISOString(),
      }),
    ]);
    expect(m.orders.s).toMatchObject({ position: 1, status: 'FILLED' });
  });

  it('overfills are assigned in event time; a bust takes FILLED back to PARTIAL; REPLACED takes precedence', () => {
    const m = runModel({
      orders: [order('o', 'BUY', '10'), order('r', 'BUY', '1', { lifecycle: 'REPLACED' })],
      fills: [
        fill('late', 'o', '6', '10', 2, { arrival: 0 }),
        fill('early', 'o', '6', '20', 1, { arrival: 1 }),
        fill('x', 'r', '3', '10', 3),
      ],
      multiplier: () => 1,
    });
    expect(m.fills.early).toEqual({ position: 0, exception: null, overfilledQuantity: '0' });
    expect(m.fills.late).toEqual({ position: 0, exception: 'OVERFILL', overfilledQuantity: '2' });
    expect(m.fills.x).toEqual({ position: 0, exception: 'ORDER_REPLACED', overfilledQuantity: '2' });
    expect(m.orders.o).toMatchObject({
      status: 'FILLED',
      filledQuantity: '10',
      overfilledQuantity: '2',
      averageFillPrice: '15',
    });
    expect(m.orders.r).toMatchObject({ status: 'REPLACED', filledQuantity: '1', overfilledQuantity: '2' });

    const busted = runModel({
      orders: [order('o', 'BUY', '10')],
      fills: [fill('a', 'o', '4', '10', 1), fill('b', 'o', '6', '10', 2, { busted: true })],
      multiplier: () => 1,
    });
    expect(busted.orders.o).toMatchObject({ status: 'PARTIAL', filledQuantity: '4', averageFillPrice: '10' });
    expect(busted.fills.b.position).toBeNull();
  });

  it('rounds half to even at the 18th place, exactly', () => {
    expect(divRound18(new D('25e-19'), new D(1)).toFixed()).toBe('0.000000000000000002');
    expect(divRound18(new D('35e-19'), new D(1)).toFixed()).toBe('0.000000000000000004');
    expect(divRound18(new D(2), new D(3)).toFixed()).toBe('0.666666666666666667');
    expect(divRound18(new D('1e30'), new D(7)).toFixed()).toBe('142857142857142857142857142857.142857142857142857');
  });

  it('closed positions of generated scenarios realize exactly their cash flow; scenarios are valid', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const sc = generate(seed);
      expect(isValid(sc)).toBe(true);
      const input = modelInput(sc);
      const m = runModel(input);
      const orderOf = new Map(input.orders.map((o) => [o.key, o]));
      for (const [book, positions] of Object.entries(m.books)) {
        const symbol = book.slice(book.indexOf('/') + 1);
        const fills = input.fills
          .filter((f) => !f.busted && `${orderOf.get(f.order)!.trader}/${orderOf.get(f.order)!.symbol}` === book)
          .map((f) => ({
            ...f,
            ...m.fills[f.key],
            side: orderOf.get(f.order)!.side,
            executedAt: new Date(f.executedAt).toISOString(),
          }));
        const flows = cashFlows(positions, fills, input.multiplier(symbol));
        positions.forEach((p, i) => {
          expect(flows.net[i].toFixed()).toBe(new D(p.quantity).toFixed());
          if (p.status === 'CLOSED') expect(p.realizedPnl).toBe(flows.cash[i].toFixed());
        });
      }
    }
  });
});

describe('the ledger, property-tested over GraphQL', () => {
  let app: TestApp;
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    // Only this file's database: commits need not wait for the WAL flush (nothing here tests durability).
    await adminQuery(`ALTER DATABASE "${db.name}" SET synchronous_commit = off`);
    app = await startTestApp(db.url, { poolMax: 4 });
  });
  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  it(`${SCENARIOS} seeded scenarios: every delivery order gives the same books, equal to the model`, async () => {
    const started = Date.now();
    const seeds = Array.from({ length: SCENARIOS }, (_, i) => FIRST_SEED + i);
    const failed = await runSeeds(app, seeds, {
      generate: (seed) => generate(seed),
      concurrency: 2,
      keepGoing: KEEP_GOING,
    });
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (failed.length > 0) {
      const { seed, scenario, failures } = failed.reduce((a, b) => (size(b.scenario) < size(a.scenario) ? b : a));
      const shrunk = await shrinkFailure(app, scenario, failures, { deadline: Date.now() + 40_000 });
      const message =
        (KEEP_GOING
          ? `${failed.length} of ${SCENARIOS} scenarios failed in ${seconds} s (seeds ${failed.map((f) => f.seed).join(', ')}).\n`
          : '') + report(seed, failures, shrunk);
      console.error(message);
      throw new Error(message);
    }
    console.log(`[property] ${SCENARIOS} scenarios passed in ${seconds} s`);
  }, 170_000);
});
