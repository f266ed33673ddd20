import { type ConnectionResult, paginate, type SortKey, SortDirection } from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import { ExecutionLog } from './execution-log.entity';
import { ExecutionLogSortField, type ExecutionLogsArgs } from './execution-log.inputs';

const SORT_KEYS: Record<ExecutionLogSortField, SortKey> = {
  [ExecutionLogSortField.RECORDED_AT]: {
    name: ExecutionLogSortField.RECORDED_AT,
    column: 'recorded_at',
    type: 'timestamptz',
  },
  [ExecutionLogSortField.OCCURRED_AT]: {
    name: ExecutionLogSortField.OCCURRED_AT,
    column: 'occurred_at',
    type: 'timestamptz',
  },
};

export function listExecutionLogs(db: RequestDb, args: ExecutionLogsArgs): Promise<ConnectionResult<ExecutionLog>> {
  const f = args.filter ?? {};
  const where = new SqlWhere()
    .add(`t."order_id" = ?::uuid`, f.orderId ?? undefined)
    .add(`t."trader_id" = ?::uuid`, f.traderId ?? undefined)
    .add(`t."action" = ANY(?::execution_log_action[])`, f.action ?? undefined)
    .add(`t."recorded_at" >= ?`, f.recordedFrom ?? undefined)
    .add(`t."recorded_at" < ?`, f.recordedTo ?? undefined)
    .add(`t."occurred_at" >= ?`, f.occurredFrom ?? undefined)
    .add(`t."occurred_at" < ?`, f.occurredTo ?? undefined);
  return paginate(db, {
    entity: ExecutionLog,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? ExecutionLogSortField.RECORDED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}
