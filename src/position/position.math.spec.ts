import { Dec } from '../decimal';
import { applyFill, averageFillPrice, FLAT, type PositionState, replayFills } from './position.math';

const d = (v: string | number): Dec => new Dec(v);
const fill = (signed: string, price: string, commission = '0') => ({
  signedQuantity: d(signed),
  price: d(price),
  commission: d(commission),
});
const show = (s: PositionState) => ({
  quantity: s.quantity.toFixed(),
  averageEntryPrice: s.averageEntryPrice.toFixed(),
  realizedPnl: s.realizedPnl.toFixed(),
  totalCommission: s.totalCommission.toFixed(),
});

describe('applyFill', () => {
  const cases: {
    name: string;
    from: [string, string, string];
    fill: [string, string, string?];
    change: string;
    to: [string, string, string];
  }[] = [
    { name: 'open long from flat', from: ['0', '0', '0'], fill: ['10', '100'], change: 'OPEN', to: ['10', '100', '0'] },
    {
      name: 'open short from flat',
      from: ['0', '0', '0'],
      fill: ['-5', '20.5'],
      change: 'OPEN',
      to: ['-5', '20.5', '0'],
    },
    {
      name: 'increase long: weighted average',
      from: ['10', '100', '0'],
      fill: ['30', '104'],
      change: 'INCREASE',
      to: ['40', '103', '0'],
    },
    {
      name: 'increase short',
      from: ['-10', '50', '0'],
      fill: ['-10', '40'],
      change: 'INCREASE',
      to: ['-20', '45', '0'],
    },
    {
      name: 'reduce long realizes at entry',
      from: ['40', '103', '0'],
      fill: ['-15', '110'],
      change: 'REDUCE',
      to: ['25', '103', '105'],
    },
    {
      name: 'reduce short gains when price falls',
      from: ['-20', '45', '0'],
      fill: ['5', '40'],
      change: 'REDUCE',
      to: ['-15', '45', '25'],
    },
    {
      name: 'reduce long at a loss',
      from: ['10', '100', '7'],
      fill: ['-4', '90'],
      change: 'REDUCE',
      to: ['6', '100', '-33'],
    },
    {
      name: 'close long at exactly zero',
      from: ['25', '103', '105'],
      fill: ['-25', '100'],
      change: 'CLOSE',
      to: ['0', '103', '30'],
    },
    { name: 'close short', from: ['-15', '45', '25'], fill: ['15', '50'], change: 'CLOSE', to: ['0', '45', '-50'] },
    {
      name: 'flip long to short',
      from: ['10', '100', '0'],
      fill: ['-25', '110'],
      change: 'FLIP',
      to: ['-15', '110', '100'],
    },
    {
      name: 'flip short to long',
      from: ['-10', '250', '0'],
      fill: ['25', '240'],
      change: 'FLIP',
      to: ['15', '240', '100'],
    },
    {
      name: 'nine-decimal quantities stay exact',
      from: ['0.000000001', '0.1', '0'],
      fill: ['0.000000002', '0.2'],
      change: 'INCREASE',
      to: ['0.000000003', '0.166666666666666667', '0'],
    },
  ];
  it.each(cases)('$name', ({ from, fill: [q, p, c], change, to }) => {
    const state: PositionState = {
      quantity: d(from[0]),
      averageEntryPrice: d(from[1]),
      costBasis: d(from[0]).abs().times(d(from[1])),
      realizedPnl: d(from[2]),
      totalCommission: d(0),
    };
    const result = applyFill(state, fill(q, p, c ?? '0'));
    expect(result.change).toBe(change);
    expect(show(result.state)).toEqual({
      quantity: to[0],
      averageEntryPrice: to[1],
      realizedPnl: to[2],
      totalCommission: '0',
    });
  });

  it('adds commissions and keeps PnL gross', () => {
    const s = replayFills([fill('10', '100', '1.25'), fill('-10', '101', '0.75')]);
    expect(show(s)).toEqual({ quantity: '0', averageEntryPrice: '100', realizedPnl: '10', totalCommission: '2' });
  });

  it('an average built from many increases does not depend on their order', () => {
    const fills = Array.from({ length: 100 }, (_, i) =>
      fill(
        String(i + 1),
        d(100)
          .plus(d(i + 1).div(100))
          .toFixed(),
      ),
    );
    const forward = replayFills(fills);
    const backward = replayFills([...fills].reverse());
    const shuffled = replayFills(
      [...fills].sort((a, b) => (a.price.toFixed().slice(-1) < b.price.toFixed().slice(-1) ? -1 : 1)),
    );
    for (const s of [forward, backward, shuffled]) {
      expect(s.averageEntryPrice.toFixed()).toBe('100.67');
      expect(s.costBasis.toFixed()).toBe('508383.5');
    }
  });

  it('0.1 + 0.2 is exactly 0.3', () => {
    const s = replayFills([fill('0.1', '1'), fill('0.2', '1')]);
    expect(s.quantity.toFixed()).toBe('0.3');
    expect(s.quantity.eq(d('0.3'))).toBe(true);
  });

  it('refuses a zero quantity', () => {
    expect(() => applyFill(FLAT, fill('0', '1'))).toThrow(RangeError);
  });
});

describe('averageFillPrice', () => {
  it('is the quantity-weighted mean, rounded to 18 places half-even', () => {
    expect(
      averageFillPrice([
        { quantity: d(60), price: d('189.95') },
        { quantity: d(40), price: d('190') },
      ])?.toFixed(),
    ).toBe('189.97');
    expect(
      averageFillPrice([
        { quantity: d(1), price: d(1) },
        { quantity: d(2), price: d(2) },
      ])?.toFixed(),
    ).toBe('1.666666666666666667');
  });
  it('is null without fills', () => {
    expect(averageFillPrice([])).toBeNull();
  });
});
