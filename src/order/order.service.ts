import { type ConnectionResult, paginate, type SortKey, SortDirection } from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import { Order } from './order.entity';
import { OrderSortField, type OrdersArgs } from './order.inputs';

const SORT_KEYS: Record<OrderSortField, SortKey> = {
  [OrderSortField.CREATED_AT]: { name: OrderSortField.CREATED_AT, column: 'created_at', type: 'timestamptz' },
  [OrderSortField.UPDATED_AT]: { name: OrderSortField.UPDATED_AT, column: 'updated_at', type: 'timestamptz' },
  [OrderSortField.SYMBOL]: { name: OrderSortField.SYMBOL, column: 'symbol', type: 'text' },
};

export function listOrders(db: RequestDb, args: OrdersArgs): Promise<ConnectionResult<Order>> {
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
    entity: Order,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? OrderSortField.CREATED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}
