import type { EntityManager } from 'typeorm';
import { type ConnectionResult, paginate, type SortKey, SortDirection } from '../pagination';
import { type RequestDb, SqlWhere } from '../request-db';
import type { JsonObject } from '../scalars';
import type { OrderStatus } from '../order/order.entity';
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
  return `INSERT INTO execution_logs (order_id, trader_id, action, from_status, to_status, reason, error_code, actor, source, details, occurred_at)
     SELECT order_id, trader_id, action, from_status, to_status, reason, error_code, actor, source, details, occurred_at
     FROM jsonb_to_recordset(${param}::jsonb) AS r(n int, order_id uuid, trader_id uuid, action execution_log_action,
       from_status order_status, to_status order_status, reason varchar, error_code varchar, actor varchar, source varchar,
       details jsonb, occurred_at timestamptz)
     ORDER BY n`;
}

export function logRowsJson(who: Actor, entries: LogEntry[]): string {
  return JSON.stringify(
    entries.map((e, n) => ({
      n,
      order_id: e.orderId,
      trader_id: e.traderId,
      action: e.action,
      from_status: e.fromStatus ?? null,
      to_status: e.toStatus ?? null,
      reason: e.reason ?? null,
      error_code: e.errorCode ?? null,
      actor: who.actor,
      source: who.source,
      details: e.details ?? null,
      occurred_at: e.occurredAt.toISOString(),
    })),
  );
}

/** Appends entries in one statement, in the given order. */
export async function appendLogs(m: EntityManager, who: Actor, entries: LogEntry[]): Promise<void> {
  if (entries.length) await m.query(logInsertSql('$1'), [logRowsJson(who, entries)]);
}

export interface ChainVerification {
  orderId: string;
  valid: boolean;
  entries: number;
  firstBrokenSeq: number | null;
  problem: string | null;
}

/**
 * Recomputes an order's hash chain: every entry's hash over its content and its predecessor's
 * hash, seq without gaps from 1, prev_hash equal to the previous entry's hash.
 */
export async function verifyChain(m: EntityManager, orderId: string): Promise<ChainVerification> {
  const rows = (await m.query(
    `SELECT seq, prev_hash, hash, execution_log_hash(prev_hash, l) AS recomputed
     FROM execution_logs l WHERE order_id = $1 ORDER BY seq`,
    [orderId],
  )) as { seq: number; prev_hash: string | null; hash: string; recomputed: string }[];
  let previous: string | null = null;
  for (const [i, r] of rows.entries()) {
    const problem =
      r.seq !== i + 1
        ? `entry ${i + 1} is missing (the next entry has seq ${r.seq})`
        : r.prev_hash !== previous
          ? `entry ${r.seq} does not point at the hash of entry ${r.seq - 1}`
          : r.hash !== r.recomputed
            ? `entry ${r.seq} was changed after it was written (its hash does not match its content)`
            : null;
    if (problem) return { orderId, valid: false, entries: rows.length, firstBrokenSeq: i + 1, problem };
    previous = r.hash;
  }
  return { orderId, valid: true, entries: rows.length, firstBrokenSeq: null, problem: null };
}
