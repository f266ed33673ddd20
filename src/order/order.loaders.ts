import DataLoader from 'dataloader';
import {
  groupBy,
  LoaderFamily,
  loaderById,
  type Projection,
  type ProjectedLoader,
  type Row,
  rowColumns,
  statementName,
  withProperty,
} from '../loaders';
import { BadUserInputError } from '../errors';
import {
  afterCondition,
  type CursorScope,
  decodeCursor,
  type Edge,
  type PageInfo,
  type SortKey,
  sortValueSql,
  SortDirection,
  toPage,
} from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import { Order, type OrderStatus } from './order.entity';
import type { PositionOrdersArgs } from './order.inputs';

export interface OrderPage {
  edges: Edge<Row<Order>>[];
  pageInfo: PageInfo;
}
type NestedArgs = Pick<PositionOrdersArgs, 'first' | 'after' | 'status'> & {
  /** The orders' columns the request reads (`positionId` is added: rows are grouped by it). */
  projection: Projection;
};

export interface OrderLoaders {
  orderById: ProjectedLoader<Row<Order> | null>;
  /** A page of each position's orders (oldest first); one statement for all positions. */
  ordersPageByPositionId: LoaderFamily<NestedArgs, string, OrderPage>;
  orderCountByPositionId: LoaderFamily<OrderStatus | null, string, number>;
}

/** Position.orders is ordered by creation time, oldest first: the order in which the position was built. */
export const POSITION_ORDERS_KEY: SortKey = { name: 'CREATED_AT', column: 'created_at', type: 'timestamptz' };
const scopeOf = (positionId: string): CursorScope => ({
  list: 'Position.orders',
  key: POSITION_ORDERS_KEY,
  direction: SortDirection.ASC,
  parentId: positionId,
});

export function createOrderLoaders(db: RequestDb): OrderLoaders {
  return {
    orderById: loaderById(db, Order),
    ordersPageByPositionId: new LoaderFamily(
      (args) =>
        new DataLoader<string, OrderPage>(async (positionIds) => {
          // A cursor belongs to one position's list: with `after`, the other positions get an error.
          const cursor = args.after ? decodeCursor(args.after, { ...scopeOf(''), parentId: undefined }) : null;
          const wanted = cursor ? positionIds.filter((id) => id === cursor.p) : [...positionIds];
          const where = new SqlWhere()
            .add(`t."position_id" = ANY(?::uuid[])`, wanted)
            .add(`t."status" = ?`, args.status ?? undefined);
          if (cursor) afterCondition(where, 't', scopeOf(cursor.p!), cursor);
          const limit = where.param(args.first + 1);
          // A window per position keeps one statement for any number of parents.
          const sql = `SELECT ${rowColumns(db.dataSource.manager, Order, 'w', withProperty(args.projection, 'positionId'))}, w."__sort" FROM (
               SELECT t.*, ${sortValueSql('t', POSITION_ORDERS_KEY)} AS "__sort",
                      row_number() OVER (PARTITION BY t."position_id" ORDER BY t."created_at", t."id") AS "__rn"
               FROM "orders" t ${where}
             ) w WHERE w."__rn" <= ${limit} ORDER BY w."position_id", w."__rn"`;
          const rows = !wanted.length
            ? []
            : (
                await db.read<Row<Order> & { __sort: string }>(
                  statementName('tt_position_orders', sql),
                  sql,
                  where.params,
                )
              ).map((r) => ({ positionId: r.positionId as string, node: r, sortValue: r.__sort }));
          const byPosition = groupBy(rows, (r) => r.positionId);
          return positionIds.map((id) =>
            wanted.includes(id)
              ? toPage(byPosition.get(id) ?? [], scopeOf(id), args.first, args.after)
              : new BadUserInputError(
                  `after is a cursor of another position's orders; use a cursor from this position's orders.`,
                  { field: 'after' },
                ),
          );
        }),
    ),
    orderCountByPositionId: new LoaderFamily(
      (status) =>
        new DataLoader<string, number>(async (positionIds) => {
          const where = new SqlWhere()
            .add(`"position_id" = ANY(?::uuid[])`, positionIds)
            .add(`"status" = ?`, status ?? undefined);
          const sql = `SELECT "position_id", count(*)::int AS n FROM "orders" ${where} GROUP BY "position_id"`;
          const rows = await db.read<{ position_id: string; n: number }>(
            statementName('tt_position_order_count', sql),
            sql,
            where.params,
          );
          const counts = new Map(rows.map((r) => [r.position_id, r.n]));
          return positionIds.map((id) => counts.get(id) ?? 0);
        }),
    ),
  };
}
