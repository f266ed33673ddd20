import { Dec } from '../decimal';
import { ConflictError } from '../errors';
import { averageFillPrice } from '../position/position.math';
import { OrderStatus } from './order.entity';

const { PENDING, ACCEPTED, PARTIAL, FILLED, CANCELLED, REJECTED, EXPIRED, REPLACED } = OrderStatus;

/** DOMAIN.md §2: the legal status changes. PARTIAL and FILLED come from fills, never from an event. */
export const TRANSITIONS: Readonly<Record<OrderStatus, readonly OrderStatus[]>> = {
  [PENDING]: [ACCEPTED, PARTIAL, FILLED, CANCELLED, REJECTED, EXPIRED],
  [ACCEPTED]: [PARTIAL, FILLED, CANCELLED, EXPIRED, REPLACED, REJECTED],
  [PARTIAL]: [PARTIAL, FILLED, CANCELLED, EXPIRED, REPLACED],
  [CANCELLED]: [],
  [EXPIRED]: [],
  [FILLED]: [],
  [REJECTED]: [],
  [REPLACED]: [],
};

export function canTransition(from: OrderStatus, to: OrderStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** Refuses an illegal change with CONFLICT, naming the current status. */
export function assertTransition(from: OrderStatus, to: OrderStatus, orderId: string): void {
  if (!canTransition(from, to)) {
    const allowed = TRANSITIONS[from].filter((s) => s !== PARTIAL && s !== FILLED);
    throw new ConflictError(
      `Order ${orderId} is ${from}; it cannot become ${to}` +
        (allowed.length ? ` (from ${from} it can become ${allowed.join(', ')}).` : ` (${from} is final).`),
      { currentStatus: from },
    );
  }
}

/**
 * The status of an order from the status its events gave it (`base`: never PARTIAL or FILLED) and
 * the sum of its effective fills (DOMAIN.md §2): REPLACED and REJECTED stay (fills there are
 * exceptions); otherwise FILLED exactly when complete; CANCELLED and EXPIRED stay when not complete
 * (late fills); PARTIAL when something filled; else the base status.
 */
export function derivedStatus(base: OrderStatus, filled: Dec, quantity: Dec): OrderStatus {
  if (base === REPLACED || base === REJECTED) return base;
  if (filled.gte(quantity)) return FILLED;
  if (base === CANCELLED || base === EXPIRED) return base;
  if (filled.gt(0)) return PARTIAL;
  return base;
}

export interface OrderFillEffect {
  quantity: Dec;
  price: Dec;
  executedAt: Date;
}

export interface OrderTotals {
  filledQuantity: Dec;
  /** Σ q·p, exact. */
  fillNotional: Dec;
  overfilledQuantity: Dec;
  averageFillPrice: Dec | null;
  status: OrderStatus;
  /** executed_at of the fill that completed the order, or null. */
  filledAt: Date | null;
  /** Per fill (same order as given): the part beyond the order's quantity. */
  overfill: Dec[];
}

/**
 * An order's totals from its effective fills in event-time order: filled = min(Σ, quantity), the
 * excess is the overfill (and each fill's part of it, walking in event time), the average fill price
 * over every effective fill, and the derived status.
 */
export function orderTotals(order: { baseStatus: OrderStatus; quantity: Dec }, fills: OrderFillEffect[]): OrderTotals {
  let sum = new Dec(0);
  let filledAt: Date | null = null;
  const overfill = fills.map((f) => {
    const before = sum;
    sum = sum.plus(f.quantity);
    if (filledAt === null && sum.gte(order.quantity)) filledAt = f.executedAt;
    return Dec.max(0, sum.minus(Dec.max(before, order.quantity)));
  });
  return {
    filledQuantity: Dec.min(sum, order.quantity),
    fillNotional: fills.reduce((n, f) => n.plus(f.quantity.times(f.price)), new Dec(0)),
    overfilledQuantity: Dec.max(0, sum.minus(order.quantity)),
    averageFillPrice: averageFillPrice(fills),
    status: derivedStatus(order.baseStatus, sum, order.quantity),
    filledAt,
    overfill,
  };
}
