import type { DataSource, EntityManager } from 'typeorm';
import type { Principal } from '../auth';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import type { Actor } from '../execution-log/execution-log.service';
import { bookKey } from '../position/book.service';
import { recalculateBook } from '../position/position.service';
import { RequestDb } from '../request-db';
import type { LogKey } from '../execution-log/log-key';
import { reportIssues } from './baseline';
import { type IssueRow, type Range, toIssue } from './data-quality.service';
import { DataQualityIssueType as T, type DataQualityIssue } from './data-quality.types';
import { ReconcileFixKind, ReconcileFixStatus } from './reconcile.types';

/**
 * Reconciliation (README "Compliance"): the data-quality checks, then the safe fixes. A book — one
 * trader's fills in one symbol — is a pure function of its fills (DOMAIN.md §4), so every safe fix is
 * the replay of a book: it links an order to the position of its first fill, recomputes positions
 * that disagree with their fills, corrects orders' totals from their fills, moves fills to the
 * position the replay puts them in. Each book is fixed in a transaction of its own, under the book's
 * lock, and re-checked there (a book that ingestion already made consistent is left unchanged);
 * every change is logged as RECOVERED with the actor and the reason. Everything else — a broken log,
 * an order that disagrees with its log, a reference to a missing position from an order without
 * fills, a position nothing explains, an exception — is reported and left alone.
 */

/** Issues a book replay repairs. */
const FIXABLE = new Set<T>([T.UNLINKED_FILLED_ORDER, T.QUANTITY_MISMATCH, T.ORDER_FILL_MISMATCH, T.REPLAY_MISMATCH]);

export interface ReconcileFix {
  kinds: ReconcileFixKind[];
  status: ReconcileFixStatus;
  traderId: string;
  symbol: string;
  reason: string;
  orderIds: string[];
  positionIds: string[];
  issues: DataQualityIssue[];
  error: string | null;
}

export interface ReconcileResult {
  applied: boolean;
  fixes: ReconcileFix[];
  leftAlone: DataQualityIssue[];
  /** Books with fixable issues beyond `maxFixes` (not in this run). */
  deferred: number;
}

interface Plan {
  traderId: string;
  symbol: string;
  rows: IssueRow[];
}

const isFixable = (r: IssueRow) =>
  FIXABLE.has(r.type) ||
  // A fill in a missing position or in one of another book: the replay of its own book places it.
  // (An order linked to such a position is left alone: linkOrderToPosition or unlinkOrder decide.)
  (r.type === T.ORPHANED_POSITION_REFERENCE && r.field === 'fill.positionId');

/** Which fixes a set of issues of one book calls for. */
function kindsOf(rows: IssueRow[]): ReconcileFixKind[] {
  const kinds = new Set<ReconcileFixKind>();
  for (const r of rows) {
    if (r.type === T.UNLINKED_FILLED_ORDER) kinds.add(ReconcileFixKind.LINK_ORDER);
    else if (r.type === T.ORDER_FILL_MISMATCH) kinds.add(ReconcileFixKind.CORRECT_ORDER_TOTALS);
    else if (r.type === T.ORPHANED_POSITION_REFERENCE) kinds.add(ReconcileFixKind.MOVE_FILLS);
    else kinds.add(ReconcileFixKind.RECOMPUTE_POSITIONS);
  }
  return [...kinds].sort();
}

function reasonOf(plan: Plan): string {
  const counts = new Map<T, number>();
  for (const r of plan.rows) counts.set(r.type, (counts.get(r.type) ?? 0) + 1);
  const found = [...counts].map(([type, n]) => `${n} ${type}`).join(', ');
  return `Reconciliation: book ${plan.symbol} of trader ${plan.traderId} replayed from its fills (found ${found})`;
}

/**
 * Finds what to fix in `m` (the request's transaction) and, with `apply`, fixes each book in a
 * transaction of its own, as `principal`.
 */
export async function reconcile(
  m: EntityManager,
  dataSource: DataSource,
  principal: Principal,
  who: Actor,
  statementTimeoutMs: number,
  range: Range,
  options: { apply: boolean; maxFixes: number; key?: LogKey },
): Promise<ReconcileResult> {
  const plans = new Map<string, Plan>();
  const leftAlone: DataQualityIssue[] = [];
  // The report's own way (baseline.ts): only what changed since the last report is re-checked. (A
  // reconciliation leaves the baseline to the reports: a dry run writes nothing.)
  const second = { dataSource, principal, statementTimeoutMs };
  await reportIssues(m, range, { key: options.key, second }, (row) => {
    if (!isFixable(row) || !row.trader_id || !row.symbol) {
      leftAlone.push(toIssue(row));
      return;
    }
    const key = bookKey(row.trader_id, row.symbol);
    if (!plans.has(key)) plans.set(key, { traderId: row.trader_id, symbol: row.symbol, rows: [] });
    plans.get(key)!.rows.push(row);
  });
  // A book without fills has no order to log a fix on, and nothing to replay: a person decides.
  const books = [...plans.values()];
  const withFills = new Set(
    (
      (await m.query(
        `SELECT DISTINCT trader_id::text || '|' || symbol AS book FROM fills
         WHERE (trader_id, symbol) IN (SELECT * FROM unnest($1::uuid[], $2::varchar[]))`,
        [books.map((b) => b.traderId), books.map((b) => b.symbol)],
      )) as { book: string }[]
    ).map((r) => r.book),
  );
  for (const [key, plan] of plans) {
    if (withFills.has(key)) continue;
    leftAlone.push(...plan.rows.map(toIssue));
    plans.delete(key);
  }
  const ordered = [...plans.values()].sort((a, b) =>
    a.traderId === b.traderId ? a.symbol.localeCompare(b.symbol) : a.traderId.localeCompare(b.traderId),
  );
  const chosen = ordered.slice(0, options.maxFixes);
  const fixes: ReconcileFix[] = [];
  for (const plan of chosen) {
    const fix: ReconcileFix = {
      kinds: kindsOf(plan.rows),
      status: ReconcileFixStatus.PROPOSED,
      traderId: plan.traderId,
      symbol: plan.symbol,
      reason: reasonOf(plan),
      orderIds: [...new Set(plan.rows.map((r) => r.order_id).filter((id): id is string => !!id))],
      positionIds: [...new Set(plan.rows.map((r) => r.position_id).filter((id): id is string => !!id))],
      issues: plan.rows.map(toIssue),
      error: null,
    };
    if (options.apply) await applyFix(dataSource, principal, who, statementTimeoutMs, fix);
    fixes.push(fix);
  }
  return { applied: options.apply, fixes, leftAlone, deferred: ordered.length - chosen.length };
}

/** One book, one transaction: replayed under its lock; logged RECOVERED; a failure rolls back only this book. */
async function applyFix(
  dataSource: DataSource,
  principal: Principal,
  who: Actor,
  statementTimeoutMs: number,
  fix: ReconcileFix,
): Promise<void> {
  try {
    const result = await RequestDb.transaction(dataSource, principal, statementTimeoutMs, 'write', (tx) =>
      recalculateBook(tx, who, fix.traderId, fix.symbol, 'all', {
        reason: fix.reason,
        orderIds: fix.orderIds,
        action: ExecutionLogAction.RECOVERED,
      }),
    );
    fix.status = result.changed ? ReconcileFixStatus.APPLIED : ReconcileFixStatus.ALREADY_CONSISTENT;
  } catch (error) {
    fix.status = ReconcileFixStatus.FAILED;
    fix.error = error instanceof Error ? error.message : String(error);
  }
}
