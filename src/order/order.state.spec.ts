import { ConflictError } from '../errors';
import { OrderStatus } from './order.entity';
import { assertTransition, canTransition, fillAdmission, statusAfterFill } from './order.state';

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
    [S.PENDING, 'normal'],
    [S.ACCEPTED, 'normal'],
    [S.PARTIAL, 'normal'],
    [S.CANCELLED, 'late'],
    [S.EXPIRED, 'late'],
    [S.FILLED, 'refused'],
    [S.REJECTED, 'refused'],
    [S.REPLACED, 'refused'],
  ] as const)('a fill on a %s order is %s', (status, admission) => {
    expect(fillAdmission(status)).toBe(admission);
  });

  it.each([
    [S.ACCEPTED, false, S.PARTIAL],
    [S.ACCEPTED, true, S.FILLED],
    [S.PENDING, false, S.PARTIAL],
    [S.PARTIAL, true, S.FILLED],
    [S.CANCELLED, false, S.CANCELLED],
    [S.CANCELLED, true, S.FILLED],
    [S.EXPIRED, false, S.EXPIRED],
  ] as const)('after a fill on %s (complete: %s) the order is %s', (from, complete, to) => {
    expect(statusAfterFill(from, complete)).toBe(to);
  });
});
