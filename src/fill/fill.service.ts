import type { Row } from '../loaders';
import type { GraphQLError } from 'graphql';
import type { EntityManager } from 'typeorm';
import { Dec, divideRounded } from '../decimal';
import { BadUserInputError, ConflictError, NotFoundError } from '../errors';
import { newId } from '../ids';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import type { Actor, LogEntry } from '../execution-log/execution-log.service';
import { Order, OrderStatus } from '../order/order.entity';
import { derivedStatus } from '../order/order.state';
import {
  type BookChange,
  bookChangeJson,
  bookKey,
  compareFills,
  type LedgerFill,
  LedgerWrites,
  NEW_ARRIVAL_BASE,
  planBook,
  replayBook,
  replayEntries,
  signed,
  type WorkingOrder,
  workingOrder,
} from '../position/book.service';
import { Position } from '../position/position.entity';
import { type ConnectionResult, type ListSelection, paginate, SortDirection } from '../pagination';
import {
  type AheadStatement,
  hydrate,
  jsonRowSql,
  preparedRows,
  type RequestDb,
  SqlWhere,
  textArray,
} from '../request-db';
import { Fill, FillException } from './fill.entity';
import type { FillsArgs, RecordExecutionInput } from './fill.inputs';

export type ExecutionOutcome =
  | { status: 'APPLIED' | 'DUPLICATE'; fill: Fill; order: Order; position: Position | null }
  | { status: 'REFUSED'; error: GraphQLError; audit?: LogEntry };

export function listFills(
  db: RequestDb,
  args: FillsArgs,
  read: ListSelection = {},
): Promise<ConnectionResult<Row<Fill>>> {
  const f = args.filter ?? {};
  const where = new SqlWhere()
    .add(`t."trader_id" = ?::uuid`, f.traderId ?? undefined)
    .add(`t."symbol" = ?`, f.symbol ?? undefined)
    .add(`t."order_id" = ?::uuid`, f.orderId ?? undefined)
    .add(`t."position_id" = ?::uuid`, f.positionId ?? undefined)
    .add(`t."executed_at" >= ?`, f.executedFrom ?? undefined)
    .add(`t."executed_at" < ?`, f.executedTo ?? undefined);
  const exception = `(t."arrival_exception" IS NOT NULL OR t."overfilled_quantity" > 0)`;
  if (f.exception === true) where.add(exception);
  if (f.exception === false) where.add(`NOT ${exception}`);
  const busted = `EXISTS (SELECT 1 FROM fill_corrections c WHERE c.fill_id = t.id AND c.kind = 'BUST')`;
  if (f.busted === true) where.add(busted);
  if (f.busted === false) where.add(`NOT ${busted}`);
  return paginate(db, {
    ...read,
    list: 'fills',
    entity: Fill,
    where,
    key: { name: 'EXECUTED_AT', column: 'executed_at', type: 'timestamptz' },
    direction: SortDirection.DESC,
    page: args,
  });
}

/** The idempotency key of an execution: its venue (none is one venue) and the venue's execution id. */
const execKey = (venue: string | null | undefined, execId: string): string => `${venue ?? ''}\u0000${execId}`;

interface NewFill {
  fill: LedgerFill;
  input: RecordExecutionInput;
  index: number;
  order: WorkingOrder;
  late: boolean;
  exception: FillException | null;
}

/**
 * Applies executions as DOMAIN.md §2–§4 say, in the caller's transaction: idempotency on (venue,
 * execId); every real execution recorded and applied (on a REPLACED or REJECTED order, or beyond the
 * order's quantity, as an exception); each book netted in event time — fills later than everything
 * in their book continue its open position, any other replays the book from the earliest affected
 * position; the orders' totals, status and links; the log entries. Each execution is applied or
 * refused on its own; a refused one changes nothing (a conflicting replay is logged DUPLICATE_IGNORED).
 *
 * Locks, always in this order: the (trader, symbol) books (advisory, sorted), the orders (by id), the
 * positions. The fast path is a fixed handful of statements for any batch size.
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
  // planned once per connection (unnamed with TRADETRAIL_PREPARED_STATEMENTS=false, behind a pooler).
  // Batches run unnamed, so each gets a plan for its own size. Both go straight to node-postgres, so
  // that the first statement carries the transaction's start (preparedRows).
  const prepared = live.length === 1;
  const rowsOf = (name: string, sql: string, params: unknown[], before?: AheadStatement[]) =>
    preparedRows(m, prepared ? `ledger_${name}` : undefined, sql, params, before);

  // 1. The books of the orders named, locked (advisory, sorted: the lock order of every writer is
  // books, orders, positions), then, in a statement of its own — so that its snapshot, taken once the
  // books are ours, sees everything their previous writers committed — the orders themselves, locked
  // (by id); each book's open position (at most one: a unique index), locked (UNION ALL runs its
  // branches in order, and `open` reads `locked` whole); the fills already recorded under these
  // (venue, execId) keys (unique); and the event time of each book's latest fill. Both statements (and
  // the transaction's start) travel in one round trip. Rows come back as JSON, numerics as text.
  const byRef = live.filter(({ input }) => !input.orderId).map(({ input }) => input);
  // Orders named by id only (a gateway's usual call) need no look-up by client order id.
  const match = (t: string, first: number) =>
    byRef.length
      ? `(${t}.id = ANY($${first}::uuid[]) OR (${t}.trader_id, ${t}.client_order_id) IN (SELECT * FROM unnest($${first + 1}::uuid[], $${first + 2}::varchar[])))`
      : `${t}.id = ANY($${first}::uuid[])`;
  const named = [
    textArray(live.flatMap(({ input }) => (input.orderId ? [input.orderId] : []))),
    ...(byRef.length ? [textArray(byRef.map((i) => i.traderId!)), textArray(byRef.map((i) => i.clientOrderId!))] : []),
  ];
  const lockBooks: AheadStatement = {
    text: `SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM (
             SELECT DISTINCT r.trader_id || '|' || r.symbol AS k FROM orders r WHERE ${match('r', 1)} ORDER BY 1) books`,
    values: named,
  };
  // The single execution's statements are the same every time: PostgreSQL's plan cache would still
  // plan them anew for each call (their generic plans' estimates, for arrays of unknown length, look
  // dearer than a custom plan), at about half of the database's cost of a fill. Generic plans, for the
  // rest of this transaction (its triggers' statements included). Every look-up above is written so
  // that its only sensible plan is an index probe per key (LATERAL … LIMIT 1 is never flattened into
  // a join), so that a generic plan made with stale statistics cannot turn into a scan of `fills`.
  const genericPlans: AheadStatement = { text: 'SET LOCAL plan_cache_mode = force_generic_plan', values: [] };
  const keys = [...new Map(live.map(({ input }) => [execKey(input.venue, input.execId), input])).values()];
  const rows = await rowsOf(
    byRef.length ? 'start' : 'start_by_id',
    `WITH locked AS MATERIALIZED (
       SELECT o.* FROM orders o WHERE ${match('o', 3)} ORDER BY o.id FOR NO KEY UPDATE
     ),
     books AS MATERIALIZED (SELECT DISTINCT trader_id, symbol FROM locked),
     open AS MATERIALIZED (
       SELECT p.* FROM books b CROSS JOIN LATERAL (
         SELECT * FROM positions p WHERE p.trader_id = b.trader_id AND p.symbol = b.symbol AND p.status = 'OPEN'
         LIMIT 1 FOR NO KEY UPDATE) p
     )
     SELECT 'o' AS k, NULL::timestamptz AS last_at, ${jsonRowSql(m, Order, 'o')} AS row FROM locked o
     UNION ALL
     SELECT 'p', NULL, ${jsonRowSql(m, Position, 'p')} FROM open p
     UNION ALL
     SELECT 'f', NULL, ${jsonRowSql(m, Fill, 'f')}
     FROM unnest($1::text[], $2::text[]) AS x(venue, exec_id)
     CROSS JOIN LATERAL (SELECT * FROM fills f WHERE f.exec_id = x.exec_id AND coalesce(f.venue, '') = x.venue LIMIT 1) f
     UNION ALL
     SELECT b.trader_id::text || '|' || b.symbol, l.executed_at, NULL
     FROM books b
     CROSS JOIN LATERAL (SELECT executed_at FROM fills f WHERE f.trader_id = b.trader_id AND f.symbol = b.symbol
                         ORDER BY executed_at DESC, arrival DESC LIMIT 1) l`,
    [keys.map((i) => i.venue ?? ''), keys.map((i) => i.execId), ...named],
    prepared ? [genericPlans, lockBooks] : [lockBooks],
  );
  const writes = new LedgerWrites();
  const orderByClientId = new Map<string, WorkingOrder>();
  const known = new Map<string, Fill>();
  const lastAt = new Map<string, Date>();
  const open = new Map<string, Position>();
  for (const r of rows) {
    if (r.k === 'o') {
      const w = workingOrder(hydrate(m, Order, r.row as Record<string, unknown>));
      writes.orders.set(w.row.id, w);
      orderByClientId.set(`${w.row.traderId}|${w.row.clientOrderId}`, w);
    } else if (r.k === 'p') {
      const p = hydrate(m, Position, r.row as Record<string, unknown>);
      open.set(bookKey(p.traderId, p.symbol), p);
    } else if (r.k === 'f') {
      const f = hydrate(m, Fill, r.row as Record<string, unknown>);
      known.set(execKey(f.venue, f.execId), f);
    } else {
      lastAt.set(r.k as string, r.last_at as Date);
    }
  }
  const orderOf = (i: RecordExecutionInput): WorkingOrder | undefined =>
    i.orderId
      ? writes.orders.get(i.orderId.toLowerCase())
      : orderByClientId.get(`${i.traderId?.toLowerCase()}|${i.clientOrderId}`);

  // 4. Each execution in request order: the order, idempotency, admission.
  const fresh: NewFill[] = [];
  const recorded = new Map<string, Fill | NewFill>(known);
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
    const key = execKey(input.venue, input.execId);
    const previous = recorded.get(key);
    if (previous) {
      const p =
        previous instanceof Fill
          ? previous
          : { id: previous.fill.id, orderId: previous.fill.orderId, ...originalOf(previous) };
      if (
        p.orderId === order.id &&
        p.quantity.eq(input.quantity) &&
        p.price.eq(input.price) &&
        p.commission.eq(commission)
      ) {
        outcomes[index] = {
          status: 'DUPLICATE',
          fill: previous instanceof Fill ? previous : (null as unknown as Fill),
          order,
          position: null,
        };
        if (!(previous instanceof Fill)) (outcomes[index] as { pending?: NewFill }).pending = previous;
        continue;
      }
      const venue = input.venue ? `venue ${input.venue}` : 'no venue';
      const error = new ConflictError(
        `Execution ${input.execId} (${venue}) is already recorded for order ${p.orderId} as ${p.quantity.toFixed()} @ ${p.price.toFixed()}` +
          ` (commission ${p.commission.toFixed()}); this replay (order ${order.id}, ${input.quantity.toFixed()} @ ${input.price.toFixed()},` +
          ` commission ${commission.toFixed()}) differs, so it is refused. A genuine change is a correction (correctExecution).`,
        { execId: input.execId, orderId: p.orderId },
      );
      const audit: LogEntry = {
        orderId: order.id,
        traderId: order.traderId,
        action: ExecutionLogAction.DUPLICATE_IGNORED,
        fromStatus: order.status,
        toStatus: order.status,
        reason: 'Replayed execution with a different order, quantity, price or commission',
        errorCode: 'CONFLICT',
        details: {
          execId: input.execId,
          venue: input.venue ?? null,
          recorded: {
            fillId: p.id,
            orderId: p.orderId,
            quantity: p.quantity.toFixed(),
            price: p.price.toFixed(),
            commission: p.commission.toFixed(),
          },
          attempted: {
            orderId: order.id,
            quantity: input.quantity.toFixed(),
            price: input.price.toFixed(),
            commission: commission.toFixed(),
            executedAt: input.executedAt.toISOString(),
          },
        },
        occurredAt: input.executedAt,
      };
      writes.logs.push(audit);
      outcomes[index] = { status: 'REFUSED', error, audit };
      continue;
    }
    const base = order.baseStatus;
    const exception =
      base === OrderStatus.REPLACED
        ? FillException.ORDER_REPLACED
        : base === OrderStatus.REJECTED
          ? FillException.ORDER_REJECTED
          : null;
    const fill: LedgerFill = {
      id: newId(),
      orderId: order.id,
      traderId: order.traderId,
      symbol: order.symbol,
      quantity: input.quantity,
      price: input.price,
      commission,
      signedQuantity: signed(order.side, input.quantity),
      executedAt: input.executedAt,
      arrival: NEW_ARRIVAL_BASE + fresh.length,
      positionId: null,
      overfilled: new Dec(0),
      arrivalException: exception !== null,
      busted: false,
      isNew: true,
    };
    const n: NewFill = {
      fill,
      input,
      index,
      order: w,
      late: base === OrderStatus.CANCELLED || base === OrderStatus.EXPIRED,
      exception,
    };
    fresh.push(n);
    recorded.set(key, n);
    writes.newFills.push(fill);
    writes.newFillData.set(fill.id, {
      execId: input.execId,
      liquidity: input.liquidity ?? null,
      venue: input.venue ?? null,
      arrivalException: exception,
      original: { quantity: input.quantity, price: input.price, commission },
    });
  }

  // 5. Each book: the fast path when every new fill is at or after the book's latest fill (in request
  // order), else a replay from the earliest affected position.
  const byBook = new Map<string, NewFill[]>();
  for (const n of fresh) {
    const k = bookKey(n.fill.traderId, n.fill.symbol);
    byBook.set(k, [...(byBook.get(k) ?? []), n]);
  }
  const changes = new Map<string, BookChange>();
  const steps = new Map<string, { before: Dec; after: Dec }>();
  for (const [k, list] of byBook) {
    const book = { traderId: list[0].fill.traderId, symbol: list[0].fill.symbol };
    let latest = lastAt.get(k)?.getTime() ?? -Infinity;
    const inOrder = list.every(({ fill }) => {
      const ok = fill.executedAt.getTime() >= latest;
      latest = Math.max(latest, fill.executedAt.getTime());
      return ok;
    });
    if (inOrder) {
      const start = open.get(k) ?? null;
      const { change } = planBook(
        writes,
        book,
        start,
        start ? [start] : [],
        list.map((n) => n.fill),
      );
      changes.set(k, change);
      // Totals incrementally: every new fill is the latest of its order too.
      for (const n of list) {
        const w = n.order;
        const q = w.row.quantity;
        const before = w.row.filledQuantity.plus(w.row.overfilledQuantity);
        const sum = { quantity: before.plus(n.fill.quantity) };
        w.row.fillNotional = w.row.fillNotional.plus(n.fill.quantity.times(n.fill.price));
        steps.set(n.fill.id, { before, after: sum.quantity });
        n.fill.overfilled = Dec.max(0, sum.quantity.minus(Dec.max(before, q)));
        if (w.row.baseStatus === OrderStatus.PENDING) w.row.baseStatus = OrderStatus.ACCEPTED;
        Object.assign(w.row, {
          filledQuantity: Dec.min(sum.quantity, q),
          overfilledQuantity: Dec.max(0, sum.quantity.minus(q)),
          status: derivedStatus(w.row.baseStatus, sum.quantity, q),
          filledAt: before.lt(q) && sum.quantity.gte(q) ? n.fill.executedAt : w.row.filledAt,
        });
        // The order's link: the position of its first effective fill.
        if (before.isZero()) w.row.positionId = n.fill.positionId;
        w.dirty = true;
      }
      // Each order's average fill price once, from its exact sums.
      for (const w of new Set(list.map((n) => n.order))) {
        w.row.averageFillPrice = divideRounded(w.row.fillNotional, w.row.filledQuantity.plus(w.row.overfilledQuantity));
      }
    } else {
      const changed = new Set(list.map((n) => n.order.row.id));
      for (const n of list) {
        if (n.order.row.baseStatus === OrderStatus.PENDING) n.order.row.baseStatus = OrderStatus.ACCEPTED;
      }
      const earliest = list.map((n) => n.fill).sort(compareFills)[0];
      changes.set(
        k,
        await replayBook(
          m,
          writes,
          book,
          { executedAt: earliest.executedAt, arrival: NEW_ARRIVAL_BASE },
          list.map((n) => n.fill),
          changed,
        ),
      );
    }
  }

  // 6. Log entries: one per execution (EXECUTED, FILLED or EXCEPTION), in request order; the link of
  // an order that changed; what a replay changed for other orders.
  const lastOfOrder = new Map<string, string>();
  for (const n of fresh) lastOfOrder.set(n.order.row.id, n.fill.id);
  const withArrival = new Set<string>();
  for (const n of fresh) {
    const w = n.order;
    const o = w.row;
    const step = steps.get(n.fill.id);
    const completes = step
      ? step.before.lt(o.quantity) && step.after.gte(o.quantity)
      : lastOfOrder.get(o.id) === n.fill.id &&
        w.before.status !== OrderStatus.FILLED &&
        o.status === OrderStatus.FILLED;
    const exception = n.exception ?? (n.fill.overfilled.gt(0) ? FillException.OVERFILL : null);
    const change = changes.get(bookKey(o.traderId, o.symbol))!;
    withArrival.add(o.id);
    writes.logs.push({
      orderId: o.id,
      traderId: o.traderId,
      action: exception
        ? ExecutionLogAction.EXCEPTION
        : completes
          ? ExecutionLogAction.FILLED
          : ExecutionLogAction.EXECUTED,
      fromStatus: w.before.status as OrderStatus,
      toStatus: o.status,
      reason: exception ? exceptionReason(exception, n, o) : null,
      details: {
        event: 'ARRIVAL',
        fillId: n.fill.id,
        execId: n.input.execId,
        venue: n.input.venue ?? null,
        quantity: n.fill.quantity.toFixed(),
        price: n.fill.price.toFixed(),
        commission: n.fill.commission.toFixed(),
        executedAt: n.fill.executedAt.toISOString(),
        positionId: n.fill.positionId,
        positionChange: writes.steps.get(n.fill.id)?.change ?? null,
        positionQuantity: writes.steps.get(n.fill.id)?.quantity.toFixed() ?? null,
        ...(exception ? { exception, overfilledQuantity: n.fill.overfilled.toFixed() } : {}),
        ...(n.late ? { late: true } : {}),
        ...(change.replayed ? { replay: bookChangeJson(change) } : {}),
      },
      occurredAt: n.fill.executedAt,
    });
  }
  for (const id of withArrival) {
    const w = writes.orders.get(id)!;
    if (w.before.positionId !== w.row.positionId) {
      writes.logs.push({
        orderId: id,
        traderId: w.row.traderId,
        action: ExecutionLogAction.POSITION_LINKED,
        fromStatus: w.row.status,
        toStatus: w.row.status,
        reason: 'Linked to the position of its first fill',
        details: { event: 'ARRIVAL', previousPositionId: w.before.positionId, positionId: w.row.positionId },
        occurredAt: fresh.find((n) => n.order.row.id === id)!.fill.executedAt,
      });
    }
  }
  const replayed = [...changes.values()].filter((c) => c.replayed);
  if (replayed.length) {
    replayEntries(
      writes,
      replayed,
      'Book replayed in event time: a fill executed earlier arrived later',
      new Date(),
      withArrival,
    );
  }

  // 7. Write everything. Two requests recording the same (venue, execId) on orders of different books
  // at the same instant do not see each other before this point: the unique index decides.
  try {
    await writes.flush(m, who, rowsOf);
  } catch (error) {
    if ((error as { constraint?: string }).constraint === 'uq_fills_venue_exec_id') {
      throw new ConflictError(
        'An execution with the same venue and execId was recorded by a concurrent request; nothing was recorded. ' +
          'Send it again: an exact replay answers DUPLICATE.',
      );
    }
    throw error;
  }

  // Results: the fills as stored, their orders and positions.
  const fills = new Map<string, Fill>();
  for (const n of fresh) {
    const d = writes.newFillData.get(n.fill.id)!;
    fills.set(
      n.fill.id,
      Object.assign(new Fill(), {
        id: n.fill.id,
        orderId: n.fill.orderId,
        traderId: n.fill.traderId,
        symbol: n.fill.symbol,
        positionId: n.fill.positionId,
        execId: d.execId,
        quantity: d.original.quantity,
        price: d.original.price,
        commission: d.original.commission,
        liquidity: d.liquidity,
        venue: d.venue,
        executedAt: n.fill.executedAt,
        createdAt: new Date(),
        arrivalException: d.arrivalException,
        overfilledQuantity: n.fill.overfilled,
      }),
    );
  }
  for (const n of fresh) {
    const position = n.fill.positionId ? (writes.positions.get(n.fill.positionId)?.row ?? null) : null;
    outcomes[n.index] = { status: 'APPLIED', fill: fills.get(n.fill.id)!, order: n.order.row, position };
  }
  for (const o of outcomes) {
    const pending = (o as { pending?: NewFill } | undefined)?.pending;
    if (o?.status === 'DUPLICATE' && pending) {
      o.fill = fills.get(pending.fill.id)!;
      delete (o as { pending?: NewFill }).pending;
    }
  }
  return outcomes.map((o) => o!);
}

function originalOf(n: NewFill): { quantity: Dec; price: Dec; commission: Dec } {
  return { quantity: n.input.quantity, price: n.input.price, commission: n.input.commission ?? new Dec(0) };
}

function exceptionReason(exception: FillException, n: NewFill, o: Order): string {
  switch (exception) {
    case FillException.ORDER_REPLACED:
      return `The venue reported a fill on order ${o.id} after it was replaced (cancel/replace race); recorded and applied.`;
    case FillException.ORDER_REJECTED:
      return `The venue reported a fill on order ${o.id}, which was rejected; recorded and applied.`;
    case FillException.OVERFILL:
      return `The fill takes order ${o.id} beyond its quantity ${o.quantity.toFixed()} by ${n.fill.overfilled.toFixed()}; recorded and applied.`;
  }
}
