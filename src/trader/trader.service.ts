import type { Row } from '../loaders';
import { type ConnectionResult, type ListSelection, paginate, type SortKey, SortDirection } from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import { Trader } from './trader.entity';
import { TraderSortField, type TradersArgs } from './trader.inputs';

const SORT_KEYS: Record<TraderSortField, SortKey> = {
  [TraderSortField.NAME]: { name: TraderSortField.NAME, column: 'name', type: 'text' },
  [TraderSortField.CREATED_AT]: { name: TraderSortField.CREATED_AT, column: 'created_at', type: 'timestamptz' },
};

function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

export function listTraders(
  db: RequestDb,
  args: TradersArgs,
  read: ListSelection = {},
): Promise<ConnectionResult<Row<Trader>>> {
  const f = args.filter ?? {};
  const where = new SqlWhere()
    .add(
      `t."name" ILIKE ?`,
      f.nameContains === undefined || f.nameContains === null ? undefined : `%${escapeLike(f.nameContains)}%`,
    )
    .add(`t."external_ref" = ?`, f.externalRef ?? undefined);
  return paginate(db, {
    ...read,
    list: 'traders',
    entity: Trader,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? TraderSortField.NAME],
    direction: args.orderBy?.direction ?? SortDirection.ASC,
    page: args,
  });
}
