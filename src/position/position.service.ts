import { type ConnectionResult, paginate, type SortKey, SortDirection } from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import { Position } from './position.entity';
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
    entity: Position,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? PositionSortField.OPENED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}
