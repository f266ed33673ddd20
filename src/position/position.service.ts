import type { Row } from '../loaders';
import type { EntityManager } from 'typeorm';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import { type Actor, appendLogs } from '../execution-log/execution-log.service';
import { Order } from '../order/order.entity';
import { lockOrder } from '../order/order.service';
import { type ConnectionResult, type ListSelection, paginate, type SortKey, SortDirection } from '../pagination';
import { hydrate, type RequestDb, SqlWhere, sqlRows } from '../request-db';
import { Position } from './position.entity';
import {
  type BookChange,
  bookChangeJson,
  LedgerWrites,
  loadLedgerFills,
  lockBooks,
  replayBook,
  replayEntries,
} from './book.service';
import { PositionSortField, type PositionsArgs } from './position.inputs';

const SORT_KEYS: Record<PositionSortField, SortKey> = {
  [PositionSortField.OPENED_AT]: { name: PositionSortField.OPENED_AT, column: 'opened_at', type: 'timestamptz' },
  [PositionSortField.UPDATED_AT]: { name: PositionSortField.UPDATED_AT, column: 'updated_at', type: 'timestamptz' },
  [PositionSortField.CREATED_AT]: { name: PositionSortField.CREATED_AT, column: 'created_at', type: 'timestamptz' },
  [PositionSortField.SYMBOL]: { name: PositionSortField.SYMBOL, column: 'symbol', type: 'text' },
};

export function listPositions(
  db: RequestDb,
  args: PositionsArgs,
  read: ListSelection = {},
): Promise<ConnectionResult<Row<Position>>> {
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
    ...read,
    list: 'positions',
    entity: Position,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? PositionSortField.OPENED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}

export interface Recomputed {
  before: Position;
  after: Position;
  changed: boolean;
}

export interface BookRecomputed {
  changed: boolean;
  change: BookChange;
  positions: Position[];
}

/**
 * Replays a whole book (DOMAIN.md §4) from its effective fills and corrects whatever differs:
 * positions (split, merged, removed), the fills' positions, the orders' totals, status and links.
 * Each affected order gets a RECOVERED (or POSITION_LINKED) entry with the before and after values;
 * a position that changed without any order changing is logged on the order of its latest fill. On a
 * database nobody tampered with, nothing changes and nothing is written.
 */
export async function recalculateBook(
  m: EntityManager,
  who: Actor,
  traderId: string,
  symbol: string,
  at: { executedAt: Date; arrival: number } | 'all' = 'all',
  options: {
    /** Why, in the log entries (default: the book was recalculated). */
    reason?: string;
    /** More orders of the book whose totals to recompute (e.g. orders whose fills are all gone). */
    orderIds?: string[];
    /** Log every change with this action (a reconciliation logs RECOVERED). */
    action?: ExecutionLogAction;
  } = {},
): Promise<BookRecomputed> {
  await lockBooks(m, [{ traderId, symbol }]);
  const orderIds = (
    (await m.query(
      `SELECT DISTINCT order_id FROM fills WHERE trader_id = $1 AND symbol = $2
       UNION SELECT id FROM orders WHERE id = ANY($3::uuid[]) AND trader_id = $1 AND symbol = $2`,
      [traderId, symbol, options.orderIds ?? []],
    )) as {
      order_id: string;
    }[]
  ).map((r) => r.order_id);
  const writes = new LedgerWrites();
  const change = await replayBook(m, writes, { traderId, symbol }, at, [], new Set(orderIds));
  if (at === 'all') {
    // Positions of the book that no fill explains (none of the replay's): removed.
    const kept = new Set(writes.positions.keys());
    for (const r of (await m.query(
      `SELECT id FROM positions WHERE trader_id = $1 AND symbol = $2 ORDER BY id FOR NO KEY UPDATE`,
      [traderId, symbol],
    )) as { id: string }[]) {
      if (!kept.has(r.id) && !writes.removedPositions.has(r.id)) {
        writes.removedPositions.add(r.id);
        change.removedPositions.push(r.id);
      }
    }
    for (const w of writes.orders.values()) {
      if (w.row.positionId && writes.removedPositions.has(w.row.positionId)) {
        w.row.positionId = null;
        w.dirty = true;
      }
    }
  }
  const reason = options.reason ?? `Book ${symbol} of trader ${traderId} recalculated from its fills`;
  replayEntries(writes, [change], reason, new Date(), new Set(), options.action);
  const logged = new Set(writes.logs.map((l) => l.orderId));
  const changedPositions = [...change.positions.map((p) => p.id), ...change.removedPositions];
  if (changedPositions.length && !writes.logs.length) {
    // Only position figures changed: log it on the order of the book's latest fill.
    const [latest] = (await m.query(
      `SELECT order_id FROM fills WHERE trader_id = $1 AND symbol = $2 ORDER BY executed_at DESC, arrival DESC LIMIT 1`,
      [traderId, symbol],
    )) as { order_id: string }[];
    const orderId = latest?.order_id;
    if (orderId && !logged.has(orderId)) {
      const [o] = (await m.query(`SELECT status FROM orders WHERE id = $1`, [orderId])) as { status: string }[];
      writes.logs.push({
        orderId,
        traderId,
        action: ExecutionLogAction.RECOVERED,
        fromStatus: o.status as Order['status'],
        toStatus: o.status as Order['status'],
        reason,
        details: { event: 'REPLAY', books: [bookChangeJson(change)] },
        occurredAt: new Date(),
      });
    }
  }
  const changed =
    changedPositions.length > 0 ||
    change.fillsMoved > 0 ||
    writes.logs.length > 0 ||
    [...writes.movedFills.values()].some((f) => f.from !== f.positionId || !f.overfilled.eq(f.overfilledBefore));
  if (changed) {
    await writes.flush(m, who);
  }
  const positions = [...writes.positions.values()]
    .map((p) => p.row)
    .sort((a, b) => a.openedAt.getTime() - b.openedAt.getTime());
  return { changed, change, positions };
}

/**
 * Recalculates a position: replays its book from that position on (a position is a pure function of
 * its book, so it cannot be recomputed alone) and reports the position before and after.
 */
export async function recalculatePosition(m: EntityManager, who: Actor, positionId: string): Promise<Recomputed> {
  const [row] = (await m.query(`SELECT * FROM positions WHERE id = $1`, [positionId])) as Record<string, unknown>[];
  if (!row) throw new NotFoundError(`No position has id ${positionId}.`);
  const before = hydrate(m, Position, row);
  const [first] = (await m.query(
    `SELECT executed_at, arrival::text AS arrival FROM fills WHERE position_id = $1 ORDER BY executed_at, arrival LIMIT 1`,
    [positionId],
  )) as { executed_at: Date; arrival: string }[];
  const result = await recalculateBook(
    m,
    who,
    before.traderId,
    before.symbol,
    first ? { executedAt: first.executed_at, arrival: Number(first.arrival) } : 'all',
  );
  const after = result.positions.find((p) => p.id === positionId);
  if (!after) {
    throw new ConflictError(
      `Position ${positionId} is explained by no fill of its book: the recalculation removed it (see the log of the book's orders).`,
    );
  }
  return { before, after, changed: result.changed };
}

/**
 * Links an order to a position by hand (DOMAIN.md §4). Positions are a pure function of the book's
 * fills in event time, so an order with fills can be linked only to the position of its first fill
 * (repairing a missing or wrong link); an order without fills can be linked to any position of the
 * same trader and symbol. Logged with the old and new position and the actor.
 */
export async function linkOrderToPosition(
  m: EntityManager,
  who: Actor,
  orderId: string,
  positionId: string,
  reason: string | null,
): Promise<Order> {
  const { order, firstFillPosition } = await lockOrderAndBook(m, orderId);
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
  if (firstFillPosition !== undefined && firstFillPosition !== positionId) {
    throw new ConflictError(
      `Order ${orderId} has fills, and its first fill is in position ${firstFillPosition}: positions follow the fills in event time ` +
        `(DOMAIN §4), so it can be linked only to that position. To change where fills go, correct or bust the executions.`,
      { positionId: firstFillPosition },
    );
  }
  if (order.positionId === positionId) return order;
  return setLink(m, who, order, positionId, reason);
}

/** Unlinks an order without fills from its position (an order with fills belongs where its fills are). */
export async function unlinkOrder(
  m: EntityManager,
  who: Actor,
  orderId: string,
  reason: string | null,
): Promise<Order> {
  const { order, firstFillPosition } = await lockOrderAndBook(m, orderId);
  if (!order.positionId) throw new ConflictError(`Order ${orderId} is not linked to a position.`);
  if (firstFillPosition !== undefined) {
    throw new ConflictError(
      `Order ${orderId} has fills in position ${firstFillPosition}; an order with fills stays linked to the position of its first fill ` +
        `(DOMAIN §4). Bust the executions if they did not happen.`,
    );
  }
  return setLink(m, who, order, null, reason);
}

/** The book lock, then the order's lock (the lock order of every writer), and where its first effective fill is. */
async function lockOrderAndBook(
  m: EntityManager,
  orderId: string,
): Promise<{ order: Order; firstFillPosition: string | null | undefined }> {
  const [ref] = (await m.query(`SELECT trader_id, symbol FROM orders WHERE id = $1`, [orderId])) as {
    trader_id: string;
    symbol: string;
  }[];
  if (!ref) throw new NotFoundError(`No order has id ${orderId}.`);
  await lockBooks(m, [{ traderId: ref.trader_id, symbol: ref.symbol }]);
  const order = await lockOrder(m, orderId);
  const [first] = await loadLedgerFills(
    m,
    `f.order_id = $1 AND coalesce(c.kind::text, '') <> 'BUST' ORDER BY f.executed_at, f.arrival LIMIT 1`,
    [orderId],
  );
  return { order, firstFillPosition: first ? first.positionId : undefined };
}

async function setLink(
  m: EntityManager,
  who: Actor,
  order: Order,
  positionId: string | null,
  reason: string | null,
): Promise<Order> {
  const [updated] = await sqlRows(
    m,
    `UPDATE orders SET position_id = $2, updated_at = now() WHERE id = $1 RETURNING *`,
    [order.id, positionId],
  );
  await appendLogs(m, who, [
    {
      orderId: order.id,
      traderId: order.traderId,
      action: positionId ? ExecutionLogAction.POSITION_LINKED : ExecutionLogAction.POSITION_UNLINKED,
      fromStatus: order.status,
      toStatus: order.status,
      reason,
      details: { previousPositionId: order.positionId, positionId },
      occurredAt: new Date(),
    },
  ]);
  return hydrate(m, Order, updated);
}
