import DataLoader from 'dataloader';
import { groupBy, LoaderFamily, loaderById } from '../loaders';
import {
  afterCondition,
  decodeCursor,
  type Edge,
  type PageInfo,
  type SortKey,
  SortDirection,
  toPage,
} from '../pagination';
import { hydrate, type RequestDb, SqlWhere } from '../request-db';
import { Order, type OrderStatus } from './order.entity';
import type { PositionOrdersArgs } from './order.inputs';

export interface OrderPage {
  edges: Edge<Order>[];
  pageInfo: PageInfo;
}
type NestedArgs = Pick<PositionOrdersArgs, 'first' | 'after' | 'status'>;

export interface OrderLoaders {
  orderById: DataLoader<string, Order | null>;
  /** A page of each position's orders (oldest first); one statement for all positions. */
  ordersPageByPositionId: LoaderFamily<NestedArgs, string, OrderPage>;
  orderCountByPositionId: LoaderFamily<OrderStatus | null, string, number>;
}

/** Position.orders is ordered by creation time, oldest first: the order in which the position was built. */
export const POSITION_ORDERS_KEY: SortKey = { name: 'CREATED_AT', column: 'created_at', type: 'timestamptz' };

export function createOrderLoaders(db: RequestDb): OrderLoaders {
  return {
    orderById: loaderById(db, Order),
    ordersPageByPositionId: new LoaderFamily(
      (args) =>
        new DataLoader<string, OrderPage>(async (positionIds) => {
          const where = new SqlWhere()
            .add(`t."position_id" = ANY(?::uuid[])`, positionIds)
            .add(`t."status" = ?`, args.status ?? undefined);
          if (args.after)
            afterCondition(
              where,
              't',
              POSITION_ORDERS_KEY,
              SortDirection.ASC,
              decodeCursor(args.after, POSITION_ORDERS_KEY),
            );
          const limit = where.param(args.first + 1);
          // A window per position keeps one statement for any number of parents.
          const rows = await db.run(async (m) => {
            const raw = (await m.query(
              `SELECT * FROM (
                 SELECT t.*, t."created_at"::text AS "__sort",
                        row_number() OVER (PARTITION BY t."position_id" ORDER BY t."created_at", t."id") AS "__rn"
                 FROM "orders" t ${where}
               ) w WHERE w."__rn" <= ${limit} ORDER BY w."position_id", w."__rn"`,
              where.params,
            )) as Record<string, unknown>[];
            return raw.map((r) => ({
              positionId: r.position_id as string,
              node: hydrate(m, Order, r),
              sortValue: String(r.__sort),
            }));
          });
          const byPosition = groupBy(rows, (r) => r.positionId);
          return positionIds.map((id) => toPage(byPosition.get(id) ?? [], POSITION_ORDERS_KEY, args.first, args.after));
        }),
    ),
    orderCountByPositionId: new LoaderFamily(
      (status) =>
        new DataLoader<string, number>(async (positionIds) => {
          const where = new SqlWhere()
            .add(`"position_id" = ANY(?::uuid[])`, positionIds)
            .add(`"status" = ?`, status ?? undefined);
          const rows = await db.query<{ position_id: string; n: number }>(
            `SELECT "position_id", count(*)::int AS n FROM "orders" ${where} GROUP BY "position_id"`,
            where.params,
          );
          const counts = new Map(rows.map((r) => [r.position_id, r.n]));
          return positionIds.map((id) => counts.get(id) ?? 0);
        }),
    ),
  };
}
