import type { EntityManager } from 'typeorm';
import { Dec } from '../decimal';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import { type Actor, appendLogs } from '../execution-log/execution-log.service';
import { Order, OrderSide } from '../order/order.entity';
import { lockOrder } from '../order/order.service';
import { type ConnectionResult, paginate, type SortKey, SortDirection } from '../pagination';
import { hydrate, type RequestDb, SqlWhere, sqlRows } from '../request-db';
import { Position, PositionStatus } from './position.entity';
import { replayFills } from './position.math';
import { PositionSortField, type PositionsArgs } from './position.inputs';

const SORT_KEYS: Record<PositionSortField, SortKey> = {
  [PositionSortField.OPENED_AT]: { name: PositionSortField.OPENED_AT, column: 'opened_at', type: 'timestamptz' },
  [PositionSortField.UPDATED_AT]: { name: PositionSortField.UPDATED_AT, column: 'updated_at', type: 'timestamptz' },
  [PositionSortField.CREATED_AT]: { name: PositionSortField.CREATED_AT, column: 'created_at', type: 'timestamptz' },
  [PositionSortField.SYMBOL]: { name: PositionSortField.SYMBOL, column: 'symbol', type: 'text' },
};

export function listPositions(db: RequestDb, args: PositionsArgs): Promise<ConnectionResult<Position>> {
  const f = args.filter ?? {};
  const where = new SqlWhere()
    .add(`t."trader_id" = ?::uuid`, f.traderId ?? undefined)
    .add(`t."symbol" = ?`, f.symbol ?? undefined)
    .add(`t."status" = ?`, f.status ?? undefined)
    .add(`t."opened_at" >= ?`, f.openedFrom ?? undefined)
    .add(`t."opened_at" < ?`, f.openedTo ?? undefined)
    .add(`t."closed_at" >= ?`, f.closedFrom ?? undefined)
    .add(`t."closed_at" < ?`, f.closedTo ?? undefined);
  return paginate(db, {
    list: 'positions',
    entity: Position,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? PositionSortField.OPENED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}

/** Serialises every position change of a trader in a symbol (same key as fill ingestion). */
export async function lockBook(m: EntityManager, traderId: string, symbol: string): Promise<void> {
  await m.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`${traderId}|${symbol}`]);
}

export interface Recomputed {
  before: Position;
  after: Position;
  changed: boolean;
}

const snapshot = (p: Position) => ({
  quantity: p.quantity.toFixed(),
  averageEntryPrice: p.averageEntryPrice.toFixed(),
  costBasis: p.costBasis.toFixed(),
  realizedPnl: p.realizedPnl.toFixed(),
  totalCommission: p.totalCommission.toFixed(),
  status: p.status,
});

/**
 * Replays a position's fills in (executed_at, id) order and stores the result when it differs:
 * quantity, average entry, realized PnL, commission, and OPEN/CLOSED from the quantity.
 * The caller holds the book lock.
 */
export async function recomputePosition(m: EntityManager, positionId: string): Promise<Recomputed> {
  const [row] = (await m.query(`SELECT * FROM positions WHERE id = $1 FOR NO KEY UPDATE`, [positionId])) as Record<
    string,
    unknown
  >[];
  if (!row) throw new NotFoundError(`No position has id ${positionId}.`);
  const before = hydrate(m, Position, row);
  const fills = (await m.query(
    `SELECT f.quantity::text AS q, f.price::text AS p, f.commission::text AS c, f.executed_at, o.side
     FROM fills f JOIN orders o ON o.id = f.order_id WHERE f.position_id = $1 ORDER BY f.executed_at, f.id`,
    [positionId],
  )) as { q: string; p: string; c: string; executed_at: Date; side: OrderSide }[];
  const state = replayFills(
    fills.map((f) => ({
      signedQuantity: f.side === OrderSide.BUY ? new Dec(f.q) : new Dec(f.q).negated(),
      price: new Dec(f.p),
      commission: new Dec(f.c),
    })),
  );
  const status = state.quantity.isZero() ? PositionStatus.CLOSED : PositionStatus.OPEN;
  const next = { ...snapshot(before), ...snapshot({ ...before, ...state, status } as Position) };
  if (JSON.stringify(next) === JSON.stringify(snapshot(before))) return { before, after: before, changed: false };
  const closedAt = status === PositionStatus.OPEN ? null : (before.closedAt ?? fills.at(-1)?.executed_at ?? new Date());
  try {
    const [updated] = (await sqlRows(
      m,
      `UPDATE positions SET quantity = $2, average_entry_price = $3, realized_pnl = $4, total_commission = $5, status = $6, cost_basis = $8,
         closed_at = $7, version = version + 1, updated_at = now() WHERE id = $1 RETURNING *`,
      [
        positionId,
        next.quantity,
        next.averageEntryPrice,
        next.realizedPnl,
        next.totalCommission,
        status,
        closedAt,
        next.costBasis,
      ],
    )) as Record<string, unknown>[];
    return { before, after: hydrate(m, Position, updated), changed: true };
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'uq_positions_open_trader_symbol') {
      throw new ConflictError(
        `Position ${positionId} would reopen, but the trader already has an OPEN ${before.symbol} position; move the orders to that one instead.`,
      );
    }
    throw error;
  }
}

/**
 * Links an order to a position of the same trader and symbol by hand (DOMAIN.md §4): the order's
 * fills move with it, both positions are recomputed from their fills, and the change is logged
 * with the old and new position. Linking to the position it already has changes nothing.
 */
export async function linkOrderToPosition(
  m: EntityManager,
  who: Actor,
  orderId: string,
  positionId: string,
  reason: string | null,
): Promise<Order> {
  const order = await lockOrder(m, orderId);
  const [row] = (await m.query(`SELECT * FROM positions WHERE id = $1`, [positionId])) as Record<string, unknown>[];
  if (!row) throw new NotFoundError(`No position has id ${positionId}.`);
  const target = hydrate(m, Position, row);
  if (target.traderId !== order.traderId || target.symbol !== order.symbol) {
    throw new BadUserInputError(
      `Order ${orderId} (${order.symbol}, trader ${order.traderId}) can only be linked to a position of the same trader and symbol; ` +
        `position ${positionId} is ${target.symbol} of trader ${target.traderId}.`,
      { field: 'positionId' },
    );
  }
  if (order.positionId === positionId) return order;
  return moveOrder(m, who, order, positionId, reason);
}

/** Unlinks an order from its position: its fills leave the position, which is recomputed. */
export async function unlinkOrder(
  m: EntityManager,
  who: Actor,
  orderId: string,
  reason: string | null,
): Promise<Order> {
  const order = await lockOrder(m, orderId);
  if (!order.positionId) throw new ConflictError(`Order ${orderId} is not linked to a position.`);
  return moveOrder(m, who, order, null, reason);
}

async function moveOrder(
  m: EntityManager,
  who: Actor,
  order: Order,
  positionId: string | null,
  reason: string | null,
): Promise<Order> {
  await lockBook(m, order.traderId, order.symbol);
  const previous = order.positionId;
  const moved = await sqlRows(m, `UPDATE fills SET position_id = $2 WHERE order_id = $1 RETURNING id`, [
    order.id,
    positionId,
  ]);
  const [updated] = await sqlRows(
    m,
    `UPDATE orders SET position_id = $2, updated_at = now() WHERE id = $1 RETURNING *`,
    [order.id, positionId],
  );
  // The position that loses fills first (it may close), then the one that gains them (it may reopen).
  // The book lock makes the order of these row locks safe.
  const affected = [previous, positionId].filter((id): id is string => !!id);
  const results = new Map<string, Recomputed>();
  for (const id of affected) results.set(id, await recomputePosition(m, id));
  await appendLogs(m, who, [
    {
      orderId: order.id,
      traderId: order.traderId,
      action: positionId ? ExecutionLogAction.POSITION_LINKED : ExecutionLogAction.POSITION_UNLINKED,
      fromStatus: order.status,
      toStatus: order.status,
      reason,
      details: {
        previousPositionId: previous,
        positionId,
        fillsMoved: moved.length,
        positions: Object.fromEntries(
          [...results].map(([id, r]) => [id, { before: snapshot(r.before), after: snapshot(r.after) }]),
        ),
      },
      occurredAt: new Date(),
    },
  ]);
  return hydrate(m, Order, updated);
}

/**
 * Replays a position's fills and corrects it. When something changed, a RECOVERED entry with the
 * before and after values goes to the trail of the order of the position's latest fill (the log is
 * kept per order); a position without any order gets no entry.
 */
export async function recalculatePosition(m: EntityManager, who: Actor, positionId: string): Promise<Recomputed> {
  const [row] = (await m.query(`SELECT trader_id, symbol FROM positions WHERE id = $1`, [positionId])) as {
    trader_id: string;
    symbol: string;
  }[];
  if (!row) throw new NotFoundError(`No position has id ${positionId}.`);
  const [latest] = (await m.query(
    `SELECT id FROM orders WHERE id = (SELECT order_id FROM fills WHERE position_id = $1 ORDER BY executed_at DESC, id DESC LIMIT 1)
     UNION ALL (SELECT id FROM orders WHERE position_id = $1 ORDER BY created_at DESC LIMIT 1) LIMIT 1`,
    [positionId],
  )) as { id: string }[];
  if (latest) await lockOrder(m, latest.id);
  await lockBook(m, row.trader_id, row.symbol);
  const result = await recomputePosition(m, positionId);
  if (result.changed && latest) {
    await appendLogs(m, who, [
      {
        orderId: latest.id,
        traderId: row.trader_id,
        action: ExecutionLogAction.RECOVERED,
        reason: `Position ${positionId} recalculated from its fills`,
        details: { positionId, before: snapshot(result.before), after: snapshot(result.after) },
        occurredAt: new Date(),
      },
    ]);
  }
  return result;
}
