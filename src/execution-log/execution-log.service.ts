import type { Row } from '../loaders';
import type { EntityManager } from 'typeorm';
import { type ConnectionResult, type ListSelection, paginate, type SortKey, SortDirection } from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import type { JsonObject } from '../scalars';
import type { OrderStatus } from '../order/order.entity';
import { newId } from '../ids';
import { canonicalTime, computeSeal, type SealedFields, sealKey } from './entry-encoding';
import { ExecutionLog, type ExecutionLogAction } from './execution-log.entity';
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

export function listExecutionLogs(
  db: RequestDb,
  args: ExecutionLogsArgs,
  read: ListSelection = {},
): Promise<ConnectionResult<Row<ExecutionLog>>> {
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
    ...read,
    list: 'executionLogs',
    entity: ExecutionLog,
    where,
    key: SORT_KEYS[args.orderBy?.field ?? ExecutionLogSortField.RECORDED_AT],
    direction: args.orderBy?.direction ?? SortDirection.DESC,
    page: args,
  });
}

/** Who did it and through what, for every entry a request writes. */
export interface Actor {
  actor: string;
  source: string;
}

export interface LogEntry {
  orderId: string;
  traderId: string;
  action: ExecutionLogAction;
  fromStatus?: OrderStatus | null;
  toStatus?: OrderStatus | null;
  reason?: string | null;
  errorCode?: string | null;
  details?: JsonObject | null;
  occurredAt: Date;
}

/**
 * `INSERT … SELECT` of log entries from the JSON parameter `$n`, in the given order. The database
 * numbers them per order, chains their hashes and stamps recorded_at (trigger `execution_logs_chain`).
 * Also used as the last part of a larger write statement.
 */
export function logInsertSql(param: string): string {
  return `INSERT INTO execution_logs (id, order_id, trader_id, action, from_status, to_status, reason, error_code, actor, source, details, occurred_at, seal)
     SELECT id, order_id, trader_id, action, from_status, to_status, reason, error_code, actor, source, details, occurred_at, seal
     FROM jsonb_to_recordset(${param}::jsonb) AS r(n int, id uuid, order_id uuid, trader_id uuid, action execution_log_action,
       from_status order_status, to_status order_status, reason varchar, error_code varchar, actor varchar, source varchar,
       details jsonb, occurred_at timestamptz, seal char(64))
     ORDER BY n`;
}

/** The rows of `logInsertSql`, each with its id and seal (see entry-encoding.ts). */
export function logRowsJson(who: Actor, entries: LogEntry[]): string {
  const key = sealKey();
  return JSON.stringify(
    entries.map((e, n) => {
      const sealed: SealedFields = {
        id: newId(),
        orderId: e.orderId,
        traderId: e.traderId,
        action: e.action,
        fromStatus: e.fromStatus ?? null,
        toStatus: e.toStatus ?? null,
        reason: e.reason ?? null,
        errorCode: e.errorCode ?? null,
        actor: who.actor,
        source: who.source,
        details: e.details ?? null,
        occurredAt: canonicalTime(e.occurredAt),
      };
      return {
        n,
        id: sealed.id,
        order_id: e.orderId,
        trader_id: e.traderId,
        action: e.action,
        from_status: sealed.fromStatus,
        to_status: sealed.toStatus,
        reason: sealed.reason,
        error_code: sealed.errorCode,
        actor: who.actor,
        source: who.source,
        details: sealed.details,
        occurred_at: e.occurredAt.toISOString(),
        seal: computeSeal(key, sealed),
      };
    }),
  );
}

/** Appends entries in one statement, in the given order. */
export async function appendLogs(m: EntityManager, who: Actor, entries: LogEntry[]): Promise<void> {
  if (entries.length) await m.query(logInsertSql('$1'), [logRowsJson(who, entries)]);
}
