import { Arg, Resolver, Root, Subscription } from 'type-graphql';
import type { Loaders } from '../context';
import type { Row } from '../loaders';
import { BadUserInputError } from '../errors';
import { ExecutionLog, ExecutionLogAction } from '../execution-log/execution-log.entity';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { validationError } from '../validation';
import type { Interest } from './feed';
import { LiveContext } from './live.context';
import {
  ExceptionRecordedFilter,
  ExecutionLoggedFilter,
  OrderUpdatedFilter,
  PositionUpdatedFilter,
} from './live.inputs';
import type { LiveTable } from './notifications';

const OVER_WEBSOCKET =
  'Subscriptions are served over WebSocket (the graphql-transport-ws protocol of graphql-ws) at /graphql, not over HTTP.';

function liveContext(context: unknown): LiveContext {
  if (!(context instanceof LiveContext)) throw new BadUserInputError(OVER_WEBSOCKET);
  return context;
}

/** An event's payload, or (executed over HTTP, where there is no event) the advice to use WebSocket. */
function delivered<T>(row: T | undefined): T {
  if (row === undefined) throw new BadUserInputError(OVER_WEBSOCKET);
  return row;
}

/** The filter argument as its class, validated (type-graphql validates arguments when resolving, not when subscribing). */
function checked<T extends object>(type: new () => T, value: unknown): T | null {
  if (value === null || value === undefined) return null;
  const filter = Object.assign(new type(), value);
  const error = validationError(filter);
  if (error) throw error;
  return filter;
}

const lower = (id: string | null | undefined): string | null => (id ? id.toLowerCase() : null);

/** Whose rows a subscription can want: a trader only their own (and nothing if their filter names another). */
function interest(ctx: LiveContext, table: LiveTable, traderId: string | null, id: string | null = null): Interest {
  const own = ctx.principal.role === 'trader' ? ctx.principal.traderId : null;
  const wanted = lower(traderId);
  const traders = own ? new Set(wanted && wanted !== own ? [] : [own]) : wanted ? new Set([wanted]) : null;
  return { table, traders, ids: id ? new Set([id]) : null };
}

/**
 * The events of one subscription: for each announced batch of ids, the rows the subscriber may read
 * — read by `read` through the event's own request context, with the subscriber's identity, so that
 * row-level security decides (a row it may not read is simply not there) — that match its filter,
 * one event per row. The iterator's `return` stops the feed at once, even while it waits.
 */
function events<T>(
  ctx: LiveContext,
  wanted: Interest,
  read: (loaders: Loaders, ids: string[]) => Promise<(T | null | Error)[]>,
  matches: (row: T) => boolean,
  order: (a: T, b: T) => number,
): AsyncIterableIterator<T> {
  const feed = ctx.feed(wanted);
  async function* rows(): AsyncGenerator<T> {
    try {
      for await (const ids of feed) {
        await ctx.beginEvent();
        const found = await read(ctx.loaders, ids);
        const failed = found.find((r): r is Error => r instanceof Error);
        if (failed) throw failed;
        const visible = (found as (T | null)[]).filter((r): r is T => r !== null && matches(r)).sort(order);
        if (!visible.length) await ctx.nextEvent();
        for (const row of visible) {
          if (feed.isClosed) return;
          await ctx.beginEvent();
          // Resolved in the event's context; the server ends it (nextEvent) before sending.
          yield row;
        }
      }
    } finally {
      feed.close();
      await ctx.end();
    }
  }
  const generator = rows();
  return {
    next: () => generator.next(),
    return: (value?: unknown) => {
      feed.close();
      return generator.return(value as T);
    },
    throw: (error?: unknown) => {
      feed.close();
      return generator.throw(error);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/** Rows' times are ISO 8601 in UTC with milliseconds (`Row`): as text, they sort as the times do. */
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byTime =
  <T extends { id: string }>(time: (row: T) => string) =>
  (a: T, b: T): number =>
    compareText(time(a), time(b)) || compareText(a.id, b.id);
const logOrder = (a: Row<ExecutionLog>, b: Row<ExecutionLog>): number =>
  compareText(a.recordedAt, b.recordedAt) || compareText(a.orderId, b.orderId) || a.seq - b.seq;

function orderEvents(ctx: LiveContext, f: OrderUpdatedFilter | null): AsyncIterableIterator<Row<Order>> {
  const [traderId, orderId, positionId] = [lower(f?.traderId), lower(f?.orderId), lower(f?.positionId)];
  return events<Row<Order>>(
    ctx,
    interest(ctx, 'orders', traderId, orderId),
    (loaders, ids) => loaders.orderById.loadMany(ids),
    (o) =>
      (!traderId || o.traderId === traderId) &&
      (!f?.symbol || o.symbol === f.symbol) &&
      (!positionId || o.positionId === positionId) &&
      (!f?.status?.length || f.status.includes(o.status)),
    byTime((o) => o.updatedAt),
  );
}

function positionEvents(ctx: LiveContext, f: PositionUpdatedFilter | null): AsyncIterableIterator<Row<Position>> {
  const [traderId, positionId] = [lower(f?.traderId), lower(f?.positionId)];
  return events<Row<Position>>(
    ctx,
    interest(ctx, 'positions', traderId, positionId),
    (loaders, ids) => loaders.positionById.loadMany(ids),
    (p) =>
      (!traderId || p.traderId === traderId) &&
      (!f?.symbol || p.symbol === f.symbol) &&
      (!f?.status || p.status === f.status),
    byTime((p) => p.updatedAt),
  );
}

function logEvents(
  ctx: LiveContext,
  f: { traderId?: string | null; orderId?: string | null; action?: ExecutionLogAction[] | null } | null,
): AsyncIterableIterator<Row<ExecutionLog>> {
  const [traderId, orderId] = [lower(f?.traderId), lower(f?.orderId)];
  return events<Row<ExecutionLog>>(
    ctx,
    interest(ctx, 'execution_logs', traderId),
    (loaders, ids) => loaders.logById.loadMany(ids),
    (e) =>
      (!traderId || e.traderId === traderId) &&
      (!orderId || e.orderId === orderId) &&
      (!f?.action?.length || f.action.includes(e.action)),
    logOrder,
  );
}

/**
 * Live changes, over WebSocket (graphql-ws) at /graphql. Each event is a row as it is once the
 * change is committed, read with the subscriber's identity: a trader receives only their own rows,
 * as with queries, and an event the subscriber cannot read is not delivered.
 */
@Resolver()
export class LiveResolver {
  @Subscription(() => Order, {
    description:
      'An order was submitted or changed (accepted, filled, cancelled, replaced, linked, …): the order after the change, once committed. ' +
      'Every filter condition given must hold. Over WebSocket only (graphql-ws), e.g. `subscription { orderUpdated(filter: { symbol: "AAPL", status: [PARTIAL, FILLED] }) { id status filledQuantity } }`.',
    subscribe: ({ args, context }) => orderEvents(liveContext(context), checked(OrderUpdatedFilter, args.filter)),
  })
  orderUpdated(
    @Root() order: Row<Order> | undefined,
    @Arg('filter', () => OrderUpdatedFilter, { nullable: true }) _filter?: OrderUpdatedFilter | null,
  ): Row<Order> {
    return delivered(order);
  }

  @Subscription(() => Position, {
    description:
      'A position was opened or changed (a fill, a close, a flip, a replay): the position after the change, once committed. ' +
      'A position a replay removes is not announced (its log entries say so). Over WebSocket only, e.g. ' +
      '`subscription { positionUpdated(filter: { status: OPEN }) { id symbol quantity averageEntryPrice } }`.',
    subscribe: ({ args, context }) => positionEvents(liveContext(context), checked(PositionUpdatedFilter, args.filter)),
  })
  positionUpdated(
    @Root() position: Row<Position> | undefined,
    @Arg('filter', () => PositionUpdatedFilter, { nullable: true }) _filter?: PositionUpdatedFilter | null,
  ): Row<Position> {
    return delivered(position);
  }

  @Subscription(() => ExecutionLog, {
    description:
      'A new entry of the execution log, once committed; entries of one order arrive in seq order. Over WebSocket only, e.g. ' +
      '`subscription { executionLogged(filter: { action: [FILLED, EXCEPTION] }) { orderId seq action toStatus } }`.',
    subscribe: ({ args, context }) => logEvents(liveContext(context), checked(ExecutionLoggedFilter, args.filter)),
  })
  executionLogged(
    @Root() entry: Row<ExecutionLog> | undefined,
    @Arg('filter', () => ExecutionLoggedFilter, { nullable: true }) _filter?: ExecutionLoggedFilter | null,
  ): Row<ExecutionLog> {
    return delivered(entry);
  }

  @Subscription(() => ExecutionLog, {
    description:
      'An execution was recorded as an exception (a fill on a REPLACED or REJECTED order, an overfill): its EXCEPTION log entry ' +
      '(reason, and details.exception, details.fillId), once committed. Over WebSocket only, e.g. ' +
      '`subscription { exceptionRecorded { orderId reason details } }`.',
    subscribe: ({ args, context }) => {
      const filter = checked(ExceptionRecordedFilter, args.filter);
      return logEvents(liveContext(context), { ...filter, action: [ExecutionLogAction.EXCEPTION] });
    },
  })
  exceptionRecorded(
    @Root() entry: Row<ExecutionLog> | undefined,
    @Arg('filter', () => ExceptionRecordedFilter, { nullable: true }) _filter?: ExceptionRecordedFilter | null,
  ): Row<ExecutionLog> {
    return delivered(entry);
  }
}
