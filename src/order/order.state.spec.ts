import { ConflictError } from '../errors';
import { OrderStatus } from './order.entity';
import { Dec } from '../decimal';
import { assertTransition, canTransition, derivedStatus, orderTotals } from './order.state';

const S = OrderStatus;
const ALL = Object.values(OrderStatus);

describe('order state machine (DOMAIN.md §2)', () => {
  const legal: [OrderStatus, OrderStatus[]][] = [
    [S.PENDING, [S.ACCEPTED, S.PARTIAL, S.FILLED, S.CANCELLED, S.REJECTED, S.EXPIRED]],
    [S.ACCEPTED, [S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED, S.REPLACED, S.REJECTED]],
    [S.PARTIAL, [S.PARTIAL, S.FILLED, S.CANCELLED, S.EXPIRED, S.REPLACED]],
    [S.CANCELLED, []],
    [S.EXPIRED, []],
    [S.FILLED, []],
    [S.REJECTED, []],
    [S.REPLACED, []],
  ];
  const table = legal.flatMap(([from, to]) => ALL.map((t) => [from, t, to.includes(t)] as const));

  it.each(table)('%s -> %s allowed: %s', (from, to, allowed) => {
    expect(canTransition(from, to)).toBe(allowed);
    if (allowed) expect(() => assertTransition(from, to, 'o1')).not.toThrow();
    else expect(() => assertTransition(from, to, 'o1')).toThrow(ConflictError);
  });

  it('names the current status when refusing', () => {
    expect(() => assertTransition(S.FILLED, S.CANCELLED, 'o1')).toThrow(
      'Order o1 is FILLED; it cannot become CANCELLED (FILLED is final).',
    );
    expect(() => assertTransition(S.PENDING, S.REPLACED, 'o1')).toThrow(
      /from PENDING it can become ACCEPTED, CANCELLED, REJECTED, EXPIRED/,
    );
  });

  it.each([
    [S.ACCEPTED, '3', S.PARTIAL],
    [S.ACCEPTED, '10', S.FILLED],
    [S.ACCEPTED, '12', S.FILLED],
    [S.ACCEPTED, '0', S.ACCEPTED],
    [S.PENDING, '0', S.PENDING],
    [S.PENDING, '3', S.PARTIAL],
    [S.CANCELLED, '3', S.CANCELLED],
    [S.CANCELLED, '10', S.FILLED],
    [S.EXPIRED, '3', S.EXPIRED],
    [S.REPLACED, '10', S.REPLACED],
    [S.REJECTED, '1', S.REJECTED],
  ] as const)('an order whose events made it %s with %s of 10 filled is %s', (base, filled, status) => {
    expect(derivedStatus(base, new Dec(filled), new Dec(10))).toBe(status);
  });

  it('totals: filled is capped at the quantity, the excess is the overfill, attributed in event time', () => {
    const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
    const t = orderTotals({ baseStatus: S.ACCEPTED, quantity: new Dec(10) }, [
      { quantity: new Dec(9), price: new Dec(1), executedAt: at(1) },
      { quantity: new Dec(3), price: new Dec(2), executedAt: at(2) },
      { quantity: new Dec(1), price: new Dec(4), executedAt: at(3) },
    ]);
    expect(t.filledQuantity.toFixed()).toBe('10');
    expect(t.overfilledQuantity.toFixed()).toBe('3');
    expect(t.overfill.map((x) => x.toFixed())).toEqual(['0', '2', '1']);
    expect(t.status).toBe(S.FILLED);
    expect(t.filledAt).toEqual(at(2));
    expect(t.averageFillPrice!.toFixed()).toBe('1.461538461538461538'); // 19 / 13
  });
});
