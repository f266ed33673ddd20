import { randomUUID } from 'node:crypto';
import type { GraphQLError } from 'graphql';
import type { EntityManager } from 'typeorm';
import { Dec, roundAverage } from '../decimal';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import { type Actor, type LogEntry, logInsertSql, logRowsJson } from '../execution-log/execution-log.service';
import { Order, OrderSide } from '../order/order.entity';
import { fillAdmission, statusAfterFill } from '../order/order.state';
import { Position, PositionStatus } from '../position/position.entity';
import { applyFill, FLAT, type PositionState } from '../position/position.math';
import { hydrate, preparedRows, sqlRows } from '../request-db';
import { Fill } from './fill.entity';
import type { RecordExecutionInput } from './fill.inputs';

export type ExecutionOutcome =
  | { status: 'APPLIED' | 'DUPLICATE'; fill: Fill; order: Order; position: Position | null }
  | { status: 'REFUSED'; error: GraphQLError; audit?: LogEntry };

interface WorkingPosition {
  row: Position;
  state: PositionState;
  isNew: boolean;
  dirty: boolean;
}

interface WorkingOrder {
  row: Order;
  notional: Dec;
  dirty: boolean;
}

/** Advisory-lock key of a trader's book in one symbol: position changes for it are serialised. */
const bookKey = (traderId: string, symbol: string): string => `${traderId}|${symbol}`;

/**
 * Applies executions exactly as DOMAIN.md §4 says, in request order, in the caller's transaction:
 * idempotency on (order, execId), the order's state and quantities, netting into the trader's
 * position in the symbol (open, increase, reduce, close, flip), the order's link to the position
 * of its first fill, and the log entries. Each execution is applied or refused on its own; a
 * refused one changes nothing (a replay with a conflicting payload is logged DUPLICATE_IGNORED).
 *
 * Locks, always in this order: the orders (by id), the (trader, symbol) books (advisory, sorted),
 * the open positions (by id). Reads and writes are a fixed handful of statements for any batch size.
 */
export async function applyExecutions(
  m: EntityManager,
  who: Actor,
  inputs: RecordExecutionInput[],
): Promise<ExecutionOutcome[]> {
  const outcomes: (ExecutionOutcome | undefined)[] = inputs.map((input) => {
    if (input.orderId ? input.traderId || input.clientOrderId : !(input.traderId && input.clientOrderId)) {
      return {
        status: 'REFUSED',
        error: new BadUserInputError('Name the order either by orderId or by traderId and clientOrderId (not both).', {
          field: 'orderId',
        }),
      };
    }
    return undefined;
  });
  const live = inputs.map((input, index) => ({ input, index })).filter(({ index }) => !outcomes[index]);
  // One-execution calls (the hot path of a gateway) run their fixed statements prepared: parsed and
  // planned once per connection. Batches run unnamed, so each gets a plan for its own size.
  const prepared = live.length === 1;
  const rowsOf = (name: string, sql: string, params: unknown[]) =>
    prepared ? preparedRows(m, `fills_${name}`, sql, params) : sqlRows(m, sql, params);

  // 1. The orders, locked; then, in the same statement, their (trader, symbol) books. The scalar
  // subquery reads the whole CTE (so every order is locked first) and takes the book locks in
  // sorted order: the lock order of every writer.
  const byRef = live.filter(({ input }) => !input.orderId).map(({ input }) => input);
  const orderRows = await rowsOf(
    'lock_orders',
    `WITH locked AS (
       SELECT * FROM orders
       WHERE id = ANY($1::uuid[]) OR (trader_id, client_order_id) IN (SELECT * FROM unnest($2::uuid[], $3::varchar[]))
       ORDER BY id FOR NO KEY UPDATE
     )
     SELECT locked.*, (SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0)))
                       FROM (SELECT DISTINCT trader_id || '|' || symbol AS k FROM locked ORDER BY 1) books) AS __books
     FROM locked`,
    [
      live.map(({ input }) => input.orderId).filter(Boolean),
      byRef.map((i) => i.traderId),
      byRef.map((i) => i.clientOrderId),
    ],
  );
  const orders = new Map<string, WorkingOrder>();
  const orderByClientId = new Map<string, WorkingOrder>();
  for (const r of orderRows) {
    const w: WorkingOrder = { row: hydrate(m, Order, r), notional: new Dec(0), dirty: false };
    orders.set(w.row.id, w);
    orderByClientId.set(`${w.row.traderId}|${w.row.clientOrderId}`, w);
  }
  const orderOf = (i: RecordExecutionInput): WorkingOrder | undefined =>
    i.orderId
      ? orders.get(i.orderId.toLowerCase())
      : orderByClientId.get(`${i.traderId?.toLowerCase()}|${i.clientOrderId}`);

  // 2. Fills already recorded under these exec ids, and each order's notional so far: one statement.
  const existing = new Map<string, Fill>();
  if (orders.size) {
    for (const r of await rowsOf(
      'known_fills',
      `SELECT o.id AS __order, s.notional AS __notional, f.*
       FROM unnest($1::uuid[]) AS o(id)
       CROSS JOIN LATERAL (SELECT sum(quantity * price)::text AS notional FROM fills WHERE order_id = o.id) s
       LEFT JOIN fills f ON f.order_id = o.id AND f.exec_id = ANY($2::varchar[])`,
      [[...orders.keys()], [...new Set(live.map(({ input }) => input.execId))]],
    )) {
      if (r.__notional !== null) orders.get(r.__order as string)!.notional = new Dec(r.__notional as string);
      if (r.id !== null) existing.set(`${r.order_id}|${r.exec_id}`, hydrate(m, Fill, r));
    }
  }

  // 3. The open positions of those books, locked (the books are locked already).
  const books = [...new Set([...orders.values()].map((o) => bookKey(o.row.traderId, o.row.symbol)))].sort();
  const open = new Map<string, WorkingPosition>();
  const touched: WorkingPosition[] = [];
  if (books.length) {
    const pairs = books.map((b) => b.split('|'));
    for (const r of await rowsOf(
      'open_positions',
      `SELECT * FROM positions WHERE status = 'OPEN' AND (trader_id, symbol) IN (SELECT * FROM unnest($1::uuid[], $2::varchar[]))
       ORDER BY id FOR NO KEY UPDATE`,
      [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
    )) {
      const row = hydrate(m, Position, r);
      open.set(bookKey(row.traderId, row.symbol), {
        row,
        state: {
          quantity: row.quantity,
          averageEntryPrice: row.averageEntryPrice,
          costBasis: row.costBasis,
          realizedPnl: row.realizedPnl,
          totalCommission: row.totalCommission,
        },
        isNew: false,
        dirty: false,
      });
    }
  }

  // 4. Apply, in request order, in memory.
  const newFills: Fill[] = [];
  const logs: LogEntry[] = [];
  const recorded = new Map<string, Fill>(existing);
  for (const { input, index } of live) {
    const w = orderOf(input);
    if (!w) {
      const ref = input.orderId
        ? `id ${input.orderId}`
        : `clientOrderId "${input.clientOrderId}" for trader ${input.traderId}`;
      outcomes[index] = { status: 'REFUSED', error: new NotFoundError(`No order has ${ref}.`) };
      continue;
    }
    const order = w.row;
    const commission = input.commission ?? new Dec(0);
    const previous = recorded.get(`${order.id}|${input.execId}`);
    if (previous) {
      if (previous.quantity.eq(input.quantity) && previous.price.eq(input.price)) {
        outcomes[index] = { status: 'DUPLICATE', fill: previous, order, position: null };
      } else {
        outcomes[index] = {
          status: 'REFUSED',
          error: new ConflictError(
            `Execution ${input.execId} of order ${order.id} is already recorded as ${previous.quantity.toFixed()} @ ${previous.price.toFixed()}; ` +
              `a replay with ${input.quantity.toFixed()} @ ${input.price.toFixed()} is refused.`,
            { execId: input.execId, orderId: order.id },
          ),
        };
        const audit: LogEntry = {
          orderId: order.id,
          traderId: order.traderId,
          action: ExecutionLogAction.DUPLICATE_IGNORED,
          fromStatus: order.status,
          toStatus: order.status,
          reason: 'Replayed execution with a different quantity or price',
          errorCode: 'CONFLICT',
          details: {
            execId: input.execId,
            recorded: { fillId: previous.id, quantity: previous.quantity.toFixed(), price: previous.price.toFixed() },
            attempted: {
              quantity: input.quantity.toFixed(),
              price: input.price.toFixed(),
              executedAt: input.executedAt.toISOString(),
            },
          },
          occurredAt: input.executedAt,
        };
        logs.push(audit);
        (outcomes[index] as { audit?: LogEntry }).audit = audit;
      }
      continue;
    }
    const admission = fillAdmission(order.status);
    if (admission === 'refused') {
      outcomes[index] = {
        status: 'REFUSED',
        error: new ConflictError(`Order ${order.id} is ${order.status}; a fill cannot be applied to it.`, {
          currentStatus: order.status,
        }),
      };
      continue;
    }
    const filled = order.filledQuantity.plus(input.quantity);
    if (filled.gt(order.quantity)) {
      outcomes[index] = {
        status: 'REFUSED',
        error: new ConflictError(
          `Execution ${input.execId} would overfill order ${order.id}: ${order.filledQuantity.toFixed()} of ${order.quantity.toFixed()} filled, ` +
            `${input.quantity.toFixed()} more is over by ${filled.minus(order.quantity).toFixed()}.`,
          { currentStatus: order.status },
        ),
      };
      continue;
    }

    // The trader's open position in the symbol, or a new one.
    const key = bookKey(order.traderId, order.symbol);
    let p = open.get(key);
    if (!p) {
      const row = Object.assign(new Position(), {
        id: randomUUID(),
        traderId: order.traderId,
        symbol: order.symbol,
        status: PositionStatus.OPEN,
        openedAt: input.executedAt,
        closedAt: null,
        version: 0,
      });
      p = { row, state: FLAT, isNew: true, dirty: true };
      open.set(key, p);
    }
    if (!touched.includes(p)) touched.push(p);
    const { state, change } = applyFill(p.state, {
      signedQuantity: order.side === OrderSide.BUY ? input.quantity : input.quantity.negated(),
      price: input.price,
      commission,
    });
    p.state = state;
    p.dirty = true;
    if (state.quantity.isZero()) {
      p.row.status = PositionStatus.CLOSED;
      p.row.closedAt = input.executedAt;
      open.delete(key);
    }

    const fill = Object.assign(new Fill(), {
      id: randomUUID(),
      orderId: order.id,
      positionId: p.row.id,
      execId: input.execId,
      quantity: input.quantity,
      price: input.price,
      commission,
      liquidity: input.liquidity ?? null,
      venue: input.venue ?? null,
      executedAt: input.executedAt,
    });
    newFills.push(fill);
    recorded.set(`${order.id}|${input.execId}`, fill);

    const from = order.status;
    const firstFill = order.filledQuantity.isZero();
    const complete = filled.eq(order.quantity);
    w.notional = w.notional.plus(input.quantity.times(input.price));
    order.filledQuantity = filled;
    order.averageFillPrice = roundAverage(w.notional.dividedBy(filled));
    order.status = statusAfterFill(from, complete);
    if (complete) order.filledAt = input.executedAt;
    w.dirty = true;
    logs.push({
      orderId: order.id,
      traderId: order.traderId,
      action: complete ? ExecutionLogAction.FILLED : ExecutionLogAction.EXECUTED,
      fromStatus: from,
      toStatus: order.status,
      details: {
        fillId: fill.id,
        execId: fill.execId,
        quantity: fill.quantity.toFixed(),
        price: fill.price.toFixed(),
        commission: commission.toFixed(),
        venue: fill.venue,
        executedAt: fill.executedAt.toISOString(),
        positionId: p.row.id,
        positionChange: change,
        positionQuantity: state.quantity.toFixed(),
        ...(admission === 'late' ? { late: true } : {}),
      },
      occurredAt: input.executedAt,
    });
    if (firstFill && order.positionId === null) {
      order.positionId = p.row.id;
      logs.push({
        orderId: order.id,
        traderId: order.traderId,
        action: ExecutionLogAction.POSITION_LINKED,
        fromStatus: order.status,
        toStatus: order.status,
        reason: 'Linked to the position of its first fill',
        details: { previousPositionId: null, positionId: p.row.id },
        occurredAt: input.executedAt,
      });
    }
    outcomes[index] = { status: 'APPLIED', fill, order, position: p.row };
  }

  // 5. Write: positions (closing ones before new ones open), then fills, orders and log entries in
  // one statement. Times are stamped here, so the rows in memory are exactly the rows stored.
  const now = new Date();
  const positionRow = (p: WorkingPosition) => ({
    id: p.row.id,
    trader_id: p.row.traderId,
    symbol: p.row.symbol,
    quantity: p.state.quantity.toFixed(),
    average_entry_price: p.state.averageEntryPrice.toFixed(),
    cost_basis: p.state.costBasis.toFixed(),
    realized_pnl: p.state.realizedPnl.toFixed(),
    total_commission: p.state.totalCommission.toFixed(),
    status: p.row.status,
    opened_at: p.row.openedAt.toISOString(),
    closed_at: p.row.closedAt?.toISOString() ?? null,
    created_at: p.row.createdAt.toISOString(),
    updated_at: now.toISOString(),
    version: p.row.version,
  });
  for (const p of touched) {
    Object.assign(p.row, p.state, {
      updatedAt: now,
      version: p.row.version + 1,
      ...(p.isNew ? { createdAt: now } : {}),
    });
  }
  const changedPositions = touched.filter((p) => !p.isNew && p.dirty);
  const createdPositions = touched.filter((p) => p.isNew);
  const POSITION_COLUMNS =
    'id, trader_id, symbol, quantity, average_entry_price, cost_basis, realized_pnl, total_commission, status, opened_at, closed_at, created_at, updated_at, version';
  if (changedPositions.length) {
    await rowsOf(
      'update_positions',
      `UPDATE positions p SET quantity = v.quantity, average_entry_price = v.average_entry_price, cost_basis = v.cost_basis,
         realized_pnl = v.realized_pnl, total_commission = v.total_commission, status = v.status, closed_at = v.closed_at,
         version = v.version, updated_at = v.updated_at
       FROM jsonb_populate_recordset(NULL::positions, $1::jsonb) v WHERE p.id = v.id`,
      [JSON.stringify(changedPositions.map(positionRow))],
    );
  }
  if (createdPositions.length) {
    await rowsOf(
      'insert_positions',
      `INSERT INTO positions (${POSITION_COLUMNS}) SELECT ${POSITION_COLUMNS} FROM jsonb_populate_recordset(NULL::positions, $1::jsonb)`,
      [JSON.stringify(createdPositions.map(positionRow))],
    );
  }
  const changedOrders = [...orders.values()].filter((o) => o.dirty).map((o) => o.row);
  if (newFills.length || changedOrders.length || logs.length) {
    for (const f of newFills) Object.assign(f, { createdAt: now });
    for (const o of changedOrders) o.updatedAt = now;
    await rowsOf(
      'write',
      `WITH new_fills AS (
         INSERT INTO fills (id, order_id, position_id, exec_id, quantity, price, commission, liquidity, venue, executed_at, created_at)
         SELECT id, order_id, position_id, exec_id, quantity, price, commission, liquidity, venue, executed_at, created_at
         FROM jsonb_populate_recordset(NULL::fills, $1::jsonb)
       ),
       changed_orders AS (
         UPDATE orders o SET status = v.status, filled_quantity = v.filled_quantity, average_fill_price = v.average_fill_price,
           filled_at = v.filled_at, position_id = v.position_id, updated_at = v.updated_at
         FROM jsonb_populate_recordset(NULL::orders, $2::jsonb) v WHERE o.id = v.id
       )
       ${logInsertSql('$3')}`,
      [
        JSON.stringify(
          newFills.map((f) => ({
            id: f.id,
            order_id: f.orderId,
            position_id: f.positionId,
            exec_id: f.execId,
            quantity: f.quantity.toFixed(),
            price: f.price.toFixed(),
            commission: f.commission.toFixed(),
            liquidity: f.liquidity,
            venue: f.venue,
            executed_at: f.executedAt.toISOString(),
            created_at: now.toISOString(),
          })),
        ),
        JSON.stringify(
          changedOrders.map((o) => ({
            id: o.id,
            status: o.status,
            filled_quantity: o.filledQuantity.toFixed(),
            average_fill_price: o.averageFillPrice?.toFixed() ?? null,
            filled_at: o.filledAt?.toISOString() ?? null,
            position_id: o.positionId,
            updated_at: now.toISOString(),
          })),
        ),
        logRowsJson(who, logs),
      ],
    );
  }
  return outcomes.map((o) => o!);
}
