import { Dec, divideRounded } from '../decimal';
import { applyFill, averageEntryPrice, averageFillPrice, FLAT, netBook, type PositionState } from './position.math';

const d = (v: string | number): Dec => new Dec(v);
const one = d(1);
const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const fill = (signed: string, price: string, commission = '0', at = 0) => ({
  signedQuantity: d(signed),
  price: d(price),
  commission: d(commission),
  executedAt: t(at),
});
const show = (s: PositionState, m = one) => ({
  quantity: s.quantity.toFixed(),
  costBasis: s.costBasis.toFixed(),
  averageEntryPrice: averageEntryPrice(s, m)?.toFixed() ?? null,
  realizedPnl: s.realizedPnl.toFixed(),
  totalCommission: s.totalCommission.toFixed(),
});
const state = (quantity: string, costBasis: string, realizedPnl = '0'): PositionState => ({
  quantity: d(quantity),
  costBasis: d(costBasis),
  realizedPnl: d(realizedPnl),
  totalCommission: d(0),
});

describe('divideRounded: exact half-even rounding at 18 places', () => {
  it.each([
    ['13', '9', '1.444444444444444444'],
    ['2', '3', '0.666666666666666667'],
    ['-2', '3', '-0.666666666666666667'],
    ['1', '8', '0.125'],
    ['5', '1e19', '0'], // 0.0000000000000000005: half, even below
    ['15', '1e19', '0.000000000000000002'], // 0.0000000000000000015: half, even above
    ['25', '1e19', '0.000000000000000002'],
    ['999999999999999999999.999999999', '0.000000007', '142857142857142857142857142857'],
    ['1000000000000000000000', '0.000000003', '333333333333333333333333333333.333333333333333333'],
  ])('%s / %s = %s', (a, b, q) => {
    expect(divideRounded(d(a), d(b)).toFixed()).toBe(d(q).toFixed());
  });
});

describe('applyFill (DOMAIN.md §4)', () => {
  it('open and increase add the exact cost; the average is derived, display only', () => {
    const a = applyFill(FLAT, fill('10', '100'), one);
    expect(a.change).toBe('OPEN');
    const b = applyFill(a.state, fill('30', '104'), one);
    expect(b.change).toBe('INCREASE');
    expect(show(b.state)).toEqual({
      quantity: '40',
      costBasis: '4120',
      averageEntryPrice: '103',
      realizedPnl: '0',
      totalCommission: '0',
    });
  });

  it('the average of 13/9 is correctly rounded (1.444444444444444444)', () => {
    const s = [fill('1', '5'), fill('8', '1')].reduce((st, f) => applyFill(st, f, one).state, FLAT);
    expect(averageEntryPrice(s, one)!.toFixed()).toBe('1.444444444444444444');
  });

  it('a reduce removes the proportional cost, rounded half-even to 18 places; realized = proceeds − removed', () => {
    const r = applyFill(state('3', '4'), fill('-1', '2'), one);
    expect(r.change).toBe('REDUCE');
    expect(show(r.state)).toMatchObject({
      quantity: '2',
      costBasis: '2.666666666666666667',
      realizedPnl: '0.666666666666666667',
    });
  });

  it('a short reduce realizes removed − cost to buy back', () => {
    const r = applyFill(state('-4', '400'), fill('1', '90'), one);
    expect(show(r.state)).toMatchObject({ quantity: '-3', costBasis: '300', realizedPnl: '10' });
  });

  it('a close removes all remaining cost: realized PnL is the exact cash flow', () => {
    // BUY 1 @ 1, BUY 2 @ 2, SELL 1 @ 2, BUY 1 @ 1, SELL 3 @ 2: sold for 8, bought for 6.
    const fills = [fill('1', '1'), fill('2', '2'), fill('-1', '2'), fill('1', '1'), fill('-3', '2')];
    let s = FLAT;
    let last = '';
    for (const f of fills) {
      const step = applyFill(s, f, one);
      s = step.state;
      last = step.change;
    }
    expect(last).toBe('CLOSE');
    expect(show(s)).toMatchObject({ quantity: '0', costBasis: '0', realizedPnl: '2' });
  });

  it('a flip closes on the old quantity and opens the remainder at the fill price, with the commission', () => {
    const step = applyFill(state('5', '500'), fill('-8', '110', '1.5'), one);
    expect(step.change).toBe('FLIP');
    if (step.change !== 'FLIP') return;
    expect(show(step.state)).toMatchObject({ quantity: '0', realizedPnl: '50', totalCommission: '0' });
    expect(show(step.opened)).toMatchObject({
      quantity: '-3',
      costBasis: '330',
      averageEntryPrice: '110',
      totalCommission: '1.5',
    });
  });

  it('multiplies cost and PnL by the contract multiplier; the average stays a per-unit price', () => {
    const m = d(100);
    const a = applyFill(FLAT, fill('2', '3.5'), m).state;
    expect(show(a, m)).toMatchObject({ costBasis: '700', averageEntryPrice: '3.5' });
    expect(show(applyFill(a, fill('-2', '4'), m).state, m)).toMatchObject({ realizedPnl: '100' });
  });
});

describe('netBook', () => {
  it('the issue example by event time: SELL 5 @ 60 (t1), BUY 5 @ 70 (t2), BUY 10 @ 50 (t3)', () => {
    const segments = netBook(null, [fill('-5', '60', '0', 1), fill('5', '70', '0', 2), fill('10', '50', '0', 3)], one);
    expect(segments.map((s) => ({ ...show(s.state), closedAt: s.closedAt, openedAt: s.openedAt }))).toEqual([
      { ...show(state('0', '0', '-50')), closedAt: t(2), openedAt: t(1) },
      { ...show(state('10', '500')), closedAt: null, openedAt: t(3) },
    ]);
  });

  it('continues an open position (the fast path) and flips into a linked new segment', () => {
    const segments = netBook(
      { state: state('2', '20'), averageEntryPrice: d(10), openedAt: t(0) },
      [fill('1', '13', '0', 1), fill('-5', '12', '0', 2)],
      one,
    );
    expect(segments).toHaveLength(2);
    expect(show(segments[0].state)).toMatchObject({ quantity: '0', realizedPnl: '3' });
    expect(segments[0].averageEntryPrice.toFixed()).toBe('11');
    expect(segments[1]).toMatchObject({ flipped: true, openedAt: t(2) });
    expect(show(segments[1].state)).toMatchObject({ quantity: '-2', costBasis: '24' });
    expect(segments[1].fills).toHaveLength(1);
  });
});

describe('averageFillPrice', () => {
  it('is Σ q·p / Σ q rounded half-even, null without fills', () => {
    expect(averageFillPrice([])).toBeNull();
    expect(
      averageFillPrice([
        { quantity: d(1), price: d(1) },
        { quantity: d(2), price: d(2) },
      ])!.toFixed(),
    ).toBe('1.666666666666666667');
  });
});
