import type { Row } from '../loaders';
import type { EntityManager } from 'typeorm';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import { type Actor, appendLogs } from '../execution-log/execution-log.service';
import { type ConnectionResult, type ListSelection, paginate, type SortKey, SortDirection } from '../pagination';
import { hydrate, type RequestDb, SqlWhere, sqlRows } from '../request-db';
import { Order, OrderStatus, OrderType } from './order.entity';
import { OrderSortField, type OrdersArgs, type ReplaceOrderInput, type SubmitOrderInput } from './order.inputs';
import { assertTransition } from './order.state';

const SORT_KEYS: Record<OrderSortField, SortKey> = {
  [OrderSortField.CREATED_AT]: { name: OrderSortField.CREATED_AT, column: 'created_at', type: 'timestamptz' },
  [OrderSortField.UPDATED_AT]: { name: OrderSortField.UPDATED_AT, column: 'updated_at', type: 'timestamptz' },
  [OrderSortField.SYMBOL]: { name: OrderSortField.SYMBOL, column: 'symbol', type: 'text' },
};

export function listOrders(
  db: RequestDb,
  args: OrdersArgs,
  read: ListSelection = {},
): Promise<ConnectionResult<Row<Order>>> {
  const f = args.filter ?? {};
  const where = new SqlWhere()
    .add(`t."trader_id" = ?::uuid`, f.traderId ?? undefined)
    .add(`t."symbol" = ?`, f.symbol ?? undefined)
    .add(`t."status" = ANY(?::order_status[])`, f.status ?? undefined)
    .add(`t."side" = ?`, f.side ?? undefined)
    .add(`t."position_id" = ?::uuid`, f.positionId ?? undefined)
    .add(`t."created_at" >= ?`, f.createdFrom ?? undefined)
    .add(`t."created_at" < ?`, f.createdTo ?? undefined)
    .add(`t."filled_at" >= ?`, f.filledFrom ?? undefined)
    .add(`t."filled_at" < ?`, f.filledTo ?? undefined);
  if (f.linked === true) where.add(`t."position_id" IS NOT NULL`);
  if (f.linked === false) where.add(`t."position_id" IS NULL`);
  return paginate(db, {
    ...read,
    list: 'orders',
    entity: Order,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? OrderSortField.CREATED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}

/** Locks an order for the rest of the transaction (always before any position: one lock order everywhere). */
export async function lockOrder(m: EntityManager, orderId: string): Promise<Order> {
  const [row] = (await m.query(`SELECT * FROM orders WHERE id = $1 FOR NO KEY UPDATE`, [orderId])) as Record<
    string,
    unknown
  >[];
  if (!row) throw new NotFoundError(`No order has id ${orderId}.`);
  return hydrate(m, Order, row);
}

/** Writes the given columns of an order (snake_case keys), touches updated_at, returns the row. */
async function updateOrder(m: EntityManager, id: string, changes: Record<string, unknown>): Promise<Order> {
  const keys = Object.keys(changes);
  const [row] = (await sqlRows(
    m,
    `UPDATE orders SET ${keys.map((k, i) => `"${k}" = $${i + 2}`).join(', ')}, updated_at = now() WHERE id = $1 RETURNING *`,
    [id, ...keys.map((k) => changes[k])],
  )) as Record<string, unknown>[];
  return hydrate(m, Order, row);
}

function checkPrices(input: { orderType: OrderType; price?: unknown; stopPrice?: unknown }): void {
  const needsPrice = input.orderType === OrderType.LIMIT || input.orderType === OrderType.STOP_LIMIT;
  const needsStop = input.orderType === OrderType.STOP || input.orderType === OrderType.STOP_LIMIT;
  if (needsPrice && input.price == null) {
    throw new BadUserInputError(`A ${input.orderType} order needs a limit price (price).`, { field: 'price' });
  }
  if (!needsPrice && input.price != null) {
    throw new BadUserInputError(`A ${input.orderType} order has no limit price; leave price out.`, { field: 'price' });
  }
  if (needsStop && input.stopPrice == null) {
    throw new BadUserInputError(`A ${input.orderType} order needs a stop price (stopPrice).`, { field: 'stopPrice' });
  }
  if (!needsStop && input.stopPrice != null) {
    throw new BadUserInputError(`A ${input.orderType} order has no stop price; leave stopPrice out.`, {
      field: 'stopPrice',
    });
  }
}

const text = (v: { toFixed(): string } | null | undefined): string | null => (v == null ? null : v.toFixed());

/** The fields that make two submissions "the same order" for idempotency. */
function sameOrder(o: Order, i: SubmitOrderInput): boolean {
  return (
    o.symbol === i.symbol &&
    o.side === i.side &&
    o.orderType === i.orderType &&
    o.timeInForce === i.timeInForce &&
    o.quantity.eq(i.quantity) &&
    (o.price == null ? i.price == null : i.price != null && o.price.eq(i.price)) &&
    (o.stopPrice == null ? i.stopPrice == null : i.stopPrice != null && o.stopPrice.eq(i.stopPrice))
  );
}

/**
 * A new PENDING order with its SUBMITTED entry. Idempotent on (trader, clientOrderId): the same
 * submission again returns the existing order and writes nothing; a different one is a CONFLICT.
 */
export async function submitOrder(
  m: EntityManager,
  who: Actor,
  input: SubmitOrderInput,
  replacesOrderId?: string,
): Promise<Order> {
  checkPrices(input);
  const [trader] = await m.query(`SELECT 1 FROM traders WHERE id = $1`, [input.traderId]);
  if (!trader) throw new NotFoundError(`No trader has id ${input.traderId}.`);
  if (input.parentOrderId) {
    const [parent] = await m.query(`SELECT 1 FROM orders WHERE id = $1`, [input.parentOrderId]);
    if (!parent) throw new NotFoundError(`No order has id ${input.parentOrderId} (parentOrderId).`);
  }
  const submittedAt = input.submittedAt ?? new Date();
  const row = {
    trader_id: input.traderId,
    client_order_id: input.clientOrderId,
    broker_order_id: input.brokerOrderId ?? null,
    symbol: input.symbol,
    side: input.side,
    order_type: input.orderType,
    time_in_force: input.timeInForce,
    quantity: text(input.quantity),
    price: text(input.price),
    stop_price: text(input.stopPrice),
    stop_loss: text(input.stopLoss),
    take_profit: text(input.takeProfit),
    trade_id: input.tradeId ?? null,
    parent_order_id: input.parentOrderId ?? null,
    replaces_order_id: replacesOrderId ?? null,
    expires_at: input.expiresAt?.toISOString() ?? null,
    submitted_at: submittedAt.toISOString(),
  };
  const cols = Object.keys(row);
  let inserted: Record<string, unknown>[];
  try {
    inserted = (await m.query(
      `INSERT INTO orders (${cols.join(', ')})
       SELECT ${cols.join(', ')} FROM jsonb_populate_record(NULL::orders, $1::jsonb)
       ON CONFLICT (trader_id, client_order_id) DO NOTHING RETURNING *`,
      [JSON.stringify(row)],
    )) as Record<string, unknown>[];
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'uq_orders_broker_order_id') {
      throw new ConflictError(`Another order already has brokerOrderId ${input.brokerOrderId}.`);
    }
    throw error;
  }
  if (!inserted.length) {
    const [existing] = (await m.query(`SELECT * FROM orders WHERE trader_id = $1 AND client_order_id = $2`, [
      input.traderId,
      input.clientOrderId,
    ])) as Record<string, unknown>[];
    const order = hydrate(m, Order, existing);
    if (!sameOrder(order, input) || (order.replacesOrderId ?? null) !== (replacesOrderId ?? null)) {
      throw new ConflictError(
        `clientOrderId "${input.clientOrderId}" is already used by order ${order.id} with different terms; a retry must repeat the same order.`,
        { orderId: order.id },
      );
    }
    return order;
  }
  const order = hydrate(m, Order, inserted[0]);
  await appendLogs(m, who, [
    {
      orderId: order.id,
      traderId: order.traderId,
      action: ExecutionLogAction.SUBMITTED,
      fromStatus: null,
      toStatus: OrderStatus.PENDING,
      details: replacesOrderId ? { replacesOrderId } : null,
      occurredAt: submittedAt,
    },
  ]);
  return order;
}

export interface OrderEvent {
  to: OrderStatus.ACCEPTED | OrderStatus.CANCELLED | OrderStatus.REJECTED | OrderStatus.EXPIRED;
  reason?: string | null;
  errorCode?: string | null;
  brokerOrderId?: string | null;
  occurredAt?: Date | null;
}

const ACTION_OF = {
  [OrderStatus.ACCEPTED]: ExecutionLogAction.ACCEPTED,
  [OrderStatus.CANCELLED]: ExecutionLogAction.CANCELLED,
  [OrderStatus.REJECTED]: ExecutionLogAction.REJECTED,
  [OrderStatus.EXPIRED]: ExecutionLogAction.EXPIRED,
} as const;

/** accept / cancel / reject / expire: a legal transition (DOMAIN.md §2) and its log entry, or CONFLICT. */
export async function changeOrderStatus(
  m: EntityManager,
  who: Actor,
  orderId: string,
  event: OrderEvent,
): Promise<Order> {
  const order = await lockOrder(m, orderId);
  assertTransition(order.status, event.to, orderId);
  const at = event.occurredAt ?? new Date();
  const changes: Record<string, unknown> = { status: event.to, base_status: event.to };
  if (event.to === OrderStatus.CANCELLED) changes.canceled_at = at.toISOString();
  if (event.to === OrderStatus.EXPIRED) changes.expired_at = at.toISOString();
  if (event.brokerOrderId) changes.broker_order_id = event.brokerOrderId;
  let updated: Order;
  try {
    updated = await updateOrder(m, orderId, changes);
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'uq_orders_broker_order_id') {
      throw new ConflictError(`Another order already has brokerOrderId ${event.brokerOrderId}.`);
    }
    throw error;
  }
  await appendLogs(m, who, [
    {
      orderId,
      traderId: order.traderId,
      action: ACTION_OF[event.to],
      fromStatus: order.status,
      toStatus: event.to,
      reason: event.reason ?? null,
      errorCode: event.errorCode ?? null,
      details: event.brokerOrderId ? { brokerOrderId: event.brokerOrderId } : null,
      occurredAt: at,
    },
  ]);
  return updated;
}

/**
 * Cancel/replace: the old order becomes REPLACED and a new PENDING order references it. The new
 * order copies the old one's terms except what the input changes; its quantity defaults to what
 * was left unfilled. A retry with the same clientOrderId returns the same new order.
 */
export async function replaceOrder(
  m: EntityManager,
  who: Actor,
  orderId: string,
  input: ReplaceOrderInput,
  occurredAt?: Date | null,
): Promise<Order> {
  const old = await lockOrder(m, orderId);
  const at = occurredAt ?? new Date();
  const submission: SubmitOrderInput = {
    traderId: old.traderId,
    clientOrderId: input.clientOrderId,
    symbol: old.symbol,
    side: old.side,
    orderType: old.orderType,
    timeInForce: input.timeInForce ?? old.timeInForce,
    quantity: input.quantity ?? old.quantity.minus(old.filledQuantity),
    price: input.price ?? old.price,
    stopPrice: input.stopPrice ?? old.stopPrice,
    stopLoss: old.stopLoss,
    takeProfit: old.takeProfit,
    tradeId: old.tradeId,
    parentOrderId: old.parentOrderId,
    expiresAt: old.expiresAt,
    submittedAt: at,
  };
  if (old.status === OrderStatus.REPLACED) {
    // A retry: the replacement exists already under this clientOrderId.
    const [existing] = (await m.query(`SELECT * FROM orders WHERE replaces_order_id = $1 AND client_order_id = $2`, [
      orderId,
      input.clientOrderId,
    ])) as Record<string, unknown>[];
    if (existing) return hydrate(m, Order, existing);
  }
  assertTransition(old.status, OrderStatus.REPLACED, orderId);
  const replacement = await submitOrder(m, who, submission, orderId);
  await updateOrder(m, orderId, { status: OrderStatus.REPLACED, base_status: OrderStatus.REPLACED });
  await appendLogs(m, who, [
    {
      orderId,
      traderId: old.traderId,
      action: ExecutionLogAction.REPLACED,
      fromStatus: old.status,
      toStatus: OrderStatus.REPLACED,
      details: { replacedByOrderId: replacement.id },
      occurredAt: at,
    },
  ]);
  return replacement;
}
