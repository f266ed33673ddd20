import { ConflictError } from '../errors';
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
 * Whether a fill may be applied to an order in `status`: normally while it works, as a *late fill*
 * after CANCELLED or EXPIRED (the venue's word wins), never after FILLED, REJECTED or REPLACED.
 */
export function fillAdmission(status: OrderStatus): 'normal' | 'late' | 'refused' {
  if (status === PENDING || status === ACCEPTED || status === PARTIAL) return 'normal';
  if (status === CANCELLED || status === EXPIRED) return 'late';
  return 'refused';
}

/** Status after a fill: FILLED exactly when complete; a late fill that does not complete keeps the status. */
export function statusAfterFill(status: OrderStatus, complete: boolean): OrderStatus {
  if (complete) return FILLED;
  return fillAdmission(status) === 'late' ? status : PARTIAL;
}
