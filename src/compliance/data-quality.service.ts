import type { EntityManager } from 'typeorm';
import { Dec } from '../decimal';
import { checkStoredTree, LEDGER_STATEMENT_TIMEOUT_MS } from '../execution-log/log-verification.service';
import type { LogKey } from '../execution-log/log-key';
import {
  DataQualityIssueType as T,
  Severity,
  type DataQualityIssue,
  type DataQualityTotal,
} from './data-quality.types';
import { replayMismatches } from './replay-check';

/**
 * The data-quality report (DOMAIN.md §4 and §7, README "Compliance"): every check is one set-based
 * statement over the whole history, or over the books or orders of a scope (the replay check streams
 * the books through the position rules in pages), run in the caller's transaction, so all of them
 * see one snapshot. The report (baseline.ts) then keeps the issues of its range, by each issue's
 * time: an order's creation, a position's opening, a fill's execution, a log entry's recording.
 * Problems of the Merkle tree (a leaf whose entry is gone, a checkpoint the tree no longer matches)
 * have no time and are always reported.
 */

/** The statement timeout of the report's transaction (the per-request one is for API requests). */
export const REPORT_STATEMENT_TIMEOUT_MS = LEDGER_STATEMENT_TIMEOUT_MS;

export interface Range {
  from: Date | null;
  to: Date | null;
}

export const SEVERITY: Record<T, Severity> = {
  [T.BROKEN_LOG]: Severity.CRITICAL,
  [T.ORDER_LOG_MISMATCH]: Severity.CRITICAL,
  [T.ORPHANED_POSITION_REFERENCE]: Severity.ERROR,
  [T.QUANTITY_MISMATCH]: Severity.ERROR,
  [T.ORDER_FILL_MISMATCH]: Severity.ERROR,
  [T.REPLAY_MISMATCH]: Severity.ERROR,
  [T.UNLINKED_FILLED_ORDER]: Severity.WARNING,
  [T.POSITION_WITHOUT_ORDERS]: Severity.WARNING,
  [T.EXECUTION_EXCEPTION]: Severity.INFO,
};

/** Report order: by severity (critical first), then in the enum's order. */
export const REPORT_ORDER: readonly T[] = Object.values(T).sort(
  (a, b) => Object.values(Severity).indexOf(SEVERITY[a]) - Object.values(Severity).indexOf(SEVERITY[b]),
);

/** An issue as the checks produce it (the message is written from it). */
export interface IssueRow {
  type: T;
  trader_id: string | null;
  symbol: string | null;
  order_id: string | null;
  position_id: string | null;
  fill_id: string | null;
  entry_id: string | null;
  field: string | null;
  expected: string | null;
  actual: string | null;
  at: Date | null;
  /** What the message needs beyond the columns. */
  note?: string | null;
}

/**
 * What a check looks at: everything, or only some books (the ledger checks: $1 trader ids and $2
 * symbols, pairwise) or some orders (the log checks: $1 order ids). The incremental report
 * (baseline.ts) re-checks only the books and orders that changed since its baseline.
 */
export interface Scope {
  books: { traderIds: string[]; symbols: string[] } | null;
  orders: string[] | null;
}
export const EVERYTHING: Scope = { books: null, orders: null };

const inBooks = (alias: string) =>
  `($1::uuid[] IS NULL OR (${alias}.trader_id, ${alias}.symbol) IN (SELECT * FROM unnest($1::uuid[], $2::varchar[])))`;
const inOrders = (column: string) => `($1::uuid[] IS NULL OR ${column} = ANY($1::uuid[]))`;

/**
 * Each fill's effective values: its latest correction's, busted fills left out. The set-based form of
 * the ledger's FILL_SELECT (book.service.ts): one pass over the corrections for whole-table aggregates.
 */
const EFFECTIVE_FILLS = `
  latest_correction AS (
    SELECT DISTINCT ON (fill_id) fill_id, kind, quantity, price, commission FROM fill_corrections c0
    WHERE ${inBooks('c0')} ORDER BY fill_id, seq DESC
  ),
  eff AS (
    SELECT f.id, f.order_id, f.trader_id, f.symbol, f.position_id, f.executed_at, f.arrival,
      coalesce(c.quantity, f.quantity) AS quantity, coalesce(c.price, f.price) AS price
    FROM fills f LEFT JOIN latest_correction c ON c.fill_id = f.id
    WHERE c.kind IS DISTINCT FROM 'BUST' AND ${inBooks('f')}
  )`;

/** `n / d` (both > 0) rounded half to even at 18 places, exactly (numeric division would round first). */
const halfEven18 = (n: string, d: string) => `(
  (div(${n} * 1e18, ${d}) + CASE
     WHEN 2 * (${n} * 1e18 - div(${n} * 1e18, ${d}) * ${d}) > ${d}
       OR (2 * (${n} * 1e18 - div(${n} * 1e18, ${d}) * ${d}) = ${d} AND mod(div(${n} * 1e18, ${d}), 2) = 1)
     THEN 1 ELSE 0 END) * 1e-18)`;

/** The set-based checks: one statement each. */
const CHECKS: { type: T; scope: 'book' | 'order'; sql: string | string[] }[] = [
  {
    type: T.UNLINKED_FILLED_ORDER,
    scope: 'book',
    sql: `SELECT o.trader_id, o.symbol, o.id AS order_id, first.position_id, first.id AS fill_id, NULL::uuid AS entry_id,
        'positionId' AS field, first.position_id::text AS expected, NULL::text AS actual, o.created_at AS at
      FROM orders o
      LEFT JOIN LATERAL (SELECT f.id, f.position_id FROM fills f WHERE f.order_id = o.id AND f.position_id IS NOT NULL
                         ORDER BY f.executed_at, f.arrival LIMIT 1) first ON true
      WHERE o.position_id IS NULL AND (o.filled_quantity > 0 OR o.overfilled_quantity > 0)
        AND ${inBooks('o')}`,
  },
  {
    type: T.ORPHANED_POSITION_REFERENCE,
    scope: 'book',
    sql: `SELECT o.trader_id, o.symbol, o.id AS order_id, o.position_id, NULL::uuid AS fill_id, NULL::uuid AS entry_id,
        'order.positionId' AS field, 'a position of trader ' || o.trader_id || ' in ' || o.symbol AS expected,
        CASE WHEN p.id IS NULL THEN 'no such position' ELSE 'a position of trader ' || p.trader_id || ' in ' || p.symbol END AS actual,
        o.created_at AS at
      FROM orders o LEFT JOIN positions p ON p.id = o.position_id
      WHERE o.position_id IS NOT NULL AND (p.id IS NULL OR p.trader_id <> o.trader_id OR p.symbol <> o.symbol) AND ${inBooks('o')}
      UNION ALL
      SELECT f.trader_id, f.symbol, f.order_id, f.position_id, f.id, NULL::uuid, 'fill.positionId',
        'a position of trader ' || f.trader_id || ' in ' || f.symbol,
        CASE WHEN p.id IS NULL THEN 'no such position' ELSE 'a position of trader ' || p.trader_id || ' in ' || p.symbol END,
        f.executed_at
      FROM fills f LEFT JOIN positions p ON p.id = f.position_id
      WHERE f.position_id IS NOT NULL AND (p.id IS NULL OR p.trader_id <> f.trader_id OR p.symbol <> f.symbol) AND ${inBooks('f')}`,
  },
  {
    // A flip carries the closed position's quantity into the one it opens (the flipping fill belongs
    // to the new one), so a position's quantity is the signed sum of the fills of its whole flip chain;
    // a position a flip closed holds 0. A fill of another book is ORPHANED_POSITION_REFERENCE, not counted here.
    type: T.QUANTITY_MISMATCH,
    scope: 'book',
    sql: `WITH RECURSIVE ${EFFECTIVE_FILLS},
      own AS (
        SELECT e.position_id, sum(CASE WHEN o.side = 'BUY' THEN e.quantity ELSE -e.quantity END) AS q
        FROM eff e JOIN orders o ON o.id = e.order_id
        JOIN positions p ON p.id = e.position_id AND p.trader_id = e.trader_id AND p.symbol = e.symbol
        GROUP BY e.position_id
      ),
      chain AS (
        SELECT p.id, coalesce(own.q, 0) AS total, 0 AS depth
        FROM positions p LEFT JOIN own ON own.position_id = p.id WHERE p.flipped_from_id IS NULL AND ${inBooks('p')}
        UNION ALL
        SELECT p.id, c.total + coalesce(own.q, 0), c.depth + 1
        FROM chain c JOIN positions p ON p.flipped_from_id = c.id LEFT JOIN own ON own.position_id = p.id
        WHERE c.depth < 10000
      )
      SELECT p.trader_id, p.symbol, NULL::uuid AS order_id, p.id AS position_id, NULL::uuid AS fill_id, NULL::uuid AS entry_id,
        'quantity' AS field, x.expected::text AS expected, p.quantity::text AS actual, p.opened_at AS at
      FROM positions p
      LEFT JOIN chain c ON c.id = p.id
      LEFT JOIN own ON own.position_id = p.id
      CROSS JOIN LATERAL (SELECT CASE WHEN EXISTS (SELECT 1 FROM positions s WHERE s.flipped_from_id = p.id) THEN 0
                                      ELSE coalesce(c.total, own.q, 0) END AS expected) x
      WHERE p.quantity <> x.expected AND ${inBooks('p')}`,
  },
  {
    type: T.ORDER_FILL_MISMATCH,
    scope: 'book',
    // A cheap, exact pre-filter first: a stored average a of n/q is right only if 2·|a·q − n| ≤ q·1e-18
    // (equal only at a tie, which the exact half-even check then decides).
    sql: `WITH ${EFFECTIVE_FILLS},
      agg AS (SELECT order_id, sum(quantity) AS q, sum(quantity * price) AS n FROM eff GROUP BY order_id),
      suspect AS (
        SELECT o.id, o.trader_id, o.symbol, o.position_id, o.created_at, o.quantity, o.filled_quantity, o.overfilled_quantity,
          o.fill_notional, o.average_fill_price, coalesce(a.q, 0) AS q, coalesce(a.n, 0) AS n
        FROM orders o LEFT JOIN agg a ON a.order_id = o.id
        WHERE ${inBooks('o')} AND (
          o.filled_quantity <> least(coalesce(a.q, 0), o.quantity)
          OR o.overfilled_quantity <> greatest(coalesce(a.q, 0) - o.quantity, 0)
          OR o.fill_notional <> coalesce(a.n, 0)
          OR CASE WHEN coalesce(a.q, 0) > 0
                  THEN o.average_fill_price IS NULL OR 2 * abs(o.average_fill_price * a.q - a.n) >= a.q * 1e-18
                  ELSE o.average_fill_price IS NOT NULL END)
      )
      SELECT o.trader_id, o.symbol, o.id AS order_id, o.position_id, NULL::uuid AS fill_id, NULL::uuid AS entry_id,
        d.field, d.expected, d.actual, o.created_at AS at
      FROM suspect o
      CROSS JOIN LATERAL (SELECT CASE WHEN o.q > 0 THEN ${halfEven18('o.n', 'o.q')} END AS average) v
      CROSS JOIN LATERAL (VALUES
        ('filledQuantity', least(o.q, o.quantity)::text, o.filled_quantity::text, o.filled_quantity = least(o.q, o.quantity)),
        ('overfilledQuantity', greatest(o.q - o.quantity, 0)::text, o.overfilled_quantity::text,
          o.overfilled_quantity = greatest(o.q - o.quantity, 0)),
        ('fillNotional', o.n::text, o.fill_notional::text, o.fill_notional = o.n),
        ('averageFillPrice', v.average::text, o.average_fill_price::text, o.average_fill_price IS NOT DISTINCT FROM v.average)
      ) AS d(field, expected, actual, same)
      WHERE NOT d.same`,
  },
  {
    type: T.POSITION_WITHOUT_ORDERS,
    scope: 'book',
    sql: `SELECT p.trader_id, p.symbol, NULL::uuid AS order_id, p.id AS position_id, NULL::uuid AS fill_id, NULL::uuid AS entry_id,
        NULL AS field, NULL AS expected, NULL AS actual, p.opened_at AS at
      FROM positions p
      WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.position_id = p.id)
        AND NOT EXISTS (SELECT 1 FROM fills f WHERE f.position_id = p.id) AND ${inBooks('p')}`,
  },
  {
    type: T.EXECUTION_EXCEPTION,
    scope: 'book',
    sql: `SELECT f.trader_id, f.symbol, f.order_id, f.position_id, f.id AS fill_id, NULL::uuid AS entry_id,
        'exception' AS field, NULL AS expected,
        coalesce(f.arrival_exception::text, 'OVERFILL') AS actual, f.executed_at AS at,
        f.overfilled_quantity::text AS note
      FROM fills f
      WHERE (f.arrival_exception IS NOT NULL OR f.overfilled_quantity > 0)
        AND NOT EXISTS (SELECT 1 FROM fill_corrections c WHERE c.fill_id = f.id AND c.kind = 'BUST') AND ${inBooks('f')}`,
  },
  {
    // The same rules as verifyExecutionLog's cross-check (orderAgainstLog): the status the last entry
    // left the order in, and the fills the log records (each fill's latest quantity; a bust is 0).
    type: T.ORDER_LOG_MISMATCH,
    scope: 'order',
    sql: `WITH scope AS (SELECT o.* FROM orders o WHERE ${inOrders('o.id')}),
      last_status AS (
        SELECT DISTINCT ON (l.order_id) l.order_id, l.id, l.seq, l.to_status
        FROM execution_logs l JOIN scope o ON o.id = l.order_id
        WHERE l.to_status IS NOT NULL ORDER BY l.order_id, l.seq DESC
      ),
      fill_entries AS (
        SELECT DISTINCT ON (l.order_id, l.details->>'fillId') l.order_id,
          CASE WHEN l.action = 'BUSTED' THEN '0'
               WHEN l.action = 'CORRECTED' THEN l.details->'after'->>'quantity'
               ELSE l.details->>'quantity' END AS q
        FROM execution_logs l JOIN scope o ON o.id = l.order_id
        WHERE jsonb_typeof(l.details->'fillId') = 'string' AND (
          (l.action IN ('EXECUTED', 'FILLED', 'EXCEPTION') AND jsonb_typeof(l.details->'quantity') = 'string')
          OR l.action = 'BUSTED'
          OR (l.action = 'CORRECTED' AND jsonb_typeof(l.details->'after'->'quantity') = 'string'))
        ORDER BY l.order_id, l.details->>'fillId', l.seq DESC
      ),
      logged AS (
        SELECT order_id, count(*) AS fills,
          sum(CASE WHEN q ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN q::numeric END) AS q,
          bool_and(q ~ '^-?[0-9]+(\\.[0-9]+)?$') AS readable
        FROM fill_entries GROUP BY order_id
      )
      SELECT o.trader_id, o.symbol, o.id AS order_id, o.position_id, NULL::uuid AS fill_id, s.id AS entry_id,
        'status' AS field, s.to_status::text AS expected, o.status::text AS actual, o.created_at AS at, s.seq::text AS note
      FROM scope o JOIN last_status s ON s.order_id = o.id
      WHERE s.to_status <> o.status
      UNION ALL
      SELECT o.trader_id, o.symbol, o.id, o.position_id, NULL, NULL, 'filledQuantity',
        coalesce(g.q, 0)::text, (o.filled_quantity + o.overfilled_quantity)::text, o.created_at, coalesce(g.fills, 0)::text
      FROM scope o LEFT JOIN logged g ON g.order_id = o.id
      WHERE EXISTS (SELECT 1 FROM execution_logs l WHERE l.order_id = o.id)
        AND (coalesce(g.readable, true) = false OR coalesce(g.q, 0) <> o.filled_quantity + o.overfilled_quantity)
      UNION ALL
      SELECT o.trader_id, o.symbol, o.id, o.position_id, NULL, NULL, 'log', 'entries from SUBMITTED on', 'none', o.created_at, NULL
      FROM scope o WHERE NOT EXISTS (SELECT 1 FROM execution_logs l WHERE l.order_id = o.id)`,
  },
  {
    // Each order's chain: numbered 1, 2, 3…, each entry pointing at its predecessor's hash, each hash
    // the hash of its content. The tree: every leaf's entry still there, at its place; no entry older
    // than the integrator's horizon left out of the tree (it refused it: not written by Tradetrail).
    type: T.BROKEN_LOG,
    scope: 'order',
    sql: [
      // Links: numbered 1, 2, 3…, each pointing at its predecessor's hash.
      `SELECT c.trader_id, NULL::varchar AS symbol, c.order_id, NULL::uuid AS position_id, NULL::uuid AS fill_id, c.id AS entry_id,
        CASE WHEN c.seq <> coalesce(c.prev_seq, 0) + 1 THEN 'seq' ELSE 'prevHash' END AS field,
        CASE WHEN c.seq <> coalesce(c.prev_seq, 0) + 1 THEN (coalesce(c.prev_seq, 0) + 1)::text ELSE c.before END AS expected,
        CASE WHEN c.seq <> coalesce(c.prev_seq, 0) + 1 THEN c.seq::text ELSE c.prev_hash END AS actual,
        c.recorded_at AS at
      FROM (
        SELECT l.id, l.order_id, l.trader_id, l.seq, l.prev_hash, l.recorded_at,
          lag(l.seq) OVER w AS prev_seq, lag(l.hash) OVER w AS before
        FROM execution_logs l
        WHERE ${inOrders('l.order_id')}
        WINDOW w AS (PARTITION BY l.order_id ORDER BY l.seq)
      ) c
      WHERE (c.seq <> coalesce(c.prev_seq, 0) + 1 OR c.prev_hash IS DISTINCT FROM c.before)`,
      // Contents: each hash recomputed (a plain scan, so PostgreSQL may run it in parallel).
      `SELECT l.trader_id, NULL::varchar AS symbol, l.order_id, NULL::uuid AS position_id, NULL::uuid AS fill_id, l.id AS entry_id,
        'hash' AS field, execution_log_hash(l.prev_hash, l) AS expected, l.hash AS actual, l.recorded_at AS at
      FROM execution_logs l
      WHERE ${inOrders('l.order_id')} AND l.hash <> execution_log_hash(l.prev_hash, l)`,
      // The tree: every leaf's entry still there, at its place; nothing older than the horizon left out.
      `SELECT l.trader_id, NULL::varchar AS symbol, x.order_id, NULL::uuid AS position_id, NULL::uuid AS fill_id, x.entry_id,
        'leaf' AS field, 'entry ' || x.order_id || ' #' || x.seq AS expected,
        CASE WHEN l.id IS NULL THEN 'missing' ELSE 'entry ' || l.order_id || ' #' || l.seq END AS actual, NULL::timestamptz AS at
      FROM log_leaves x LEFT JOIN execution_logs l ON l.id = x.entry_id
      WHERE (l.id IS NULL OR l.order_id <> x.order_id OR l.seq <> x.seq) AND ${inOrders('x.order_id')}
      UNION ALL
      SELECT l.trader_id, NULL, l.order_id, NULL, NULL, l.id, 'leaf', 'in the tree', 'refused (no valid seal)', l.recorded_at
      FROM execution_logs l CROSS JOIN log_tree_state s
      WHERE s.id = 1 AND l.tx < s.tx_horizon AND NOT EXISTS (SELECT 1 FROM log_leaves x WHERE x.entry_id = l.id) AND ${inOrders('l.order_id')}`,
    ],
  },
];

export interface ReportOptions {
  types?: readonly T[] | null;
  /** The log's key: checks the latest checkpoint and the tree under it (omit to skip that check). */
  key?: LogKey;
  /** Only these books and orders (default: everything). */
  scope?: Scope;
}

/** Runs the checks and hands every issue to `sink`, type by type in report order. */
export async function findIssues(
  m: EntityManager,
  options: ReportOptions,
  sink: (row: IssueRow) => void,
): Promise<void> {
  const wanted = new Set(options.types?.length ? options.types : REPORT_ORDER);
  const scope = options.scope ?? EVERYTHING;
  const params = {
    book: [scope.books?.traderIds ?? null, scope.books?.symbols ?? null],
    order: [scope.orders],
  };
  // Whole-history checks of a large ledger take longer than an API request may: this transaction only.
  await m.query(`SET LOCAL statement_timeout = ${REPORT_STATEMENT_TIMEOUT_MS}`);
  for (const type of REPORT_ORDER) {
    if (!wanted.has(type)) continue;
    if (type === T.REPLAY_MISMATCH) {
      await replayMismatches(m, scope, sink);
      continue;
    }
    const check = CHECKS.find((c) => c.type === type)!;
    for (const sql of typeof check.sql === 'string' ? [check.sql] : check.sql) {
      for (const row of (await m.query(sql, params[check.scope])) as Omit<IssueRow, 'type'>[]) sink({ ...row, type });
    }
    if (type === T.BROKEN_LOG && options.key) {
      const problem = await checkStoredTree(m, options.key);
      if (problem) {
        sink({
          type,
          trader_id: null,
          symbol: null,
          order_id: null,
          position_id: null,
          fill_id: null,
          entry_id: null,
          field: 'checkpoint',
          expected: problem.expected,
          actual: problem.actual,
          at: null,
          note: problem.message,
        });
      }
    }
  }
}

/** The subject an issue is about, by type. */
function subjectOf(row: IssueRow): string | null {
  switch (row.type) {
    case T.UNLINKED_FILLED_ORDER:
    case T.ORDER_FILL_MISMATCH:
    case T.ORDER_LOG_MISMATCH:
      return row.order_id;
    case T.QUANTITY_MISMATCH:
    case T.POSITION_WITHOUT_ORDERS:
    case T.REPLAY_MISMATCH:
      return row.position_id ?? row.fill_id;
    case T.ORPHANED_POSITION_REFERENCE:
    case T.EXECUTION_EXCEPTION:
      return row.fill_id ?? row.order_id;
    case T.BROKEN_LOG:
      return row.entry_id ?? row.order_id;
  }
}

/** The sort key of an issue within the report (also its cursor and its id): severity, type, subject, field, detail. */
export function issueKey(row: IssueRow): string {
  const rank = REPORT_ORDER.indexOf(row.type);
  const detail = row.type === T.REPLAY_MISMATCH ? (row.fill_id ?? '') : '';
  return `${String(rank).padStart(2, '0')}|${row.type}|${subjectOf(row) ?? ''}|${row.field ?? ''}|${detail}`;
}

export function toIssue(row: IssueRow): DataQualityIssue {
  return {
    id: issueKey(row),
    type: row.type,
    severity: SEVERITY[row.type],
    message: message(row),
    traderId: row.trader_id,
    symbol: row.symbol,
    orderId: row.order_id,
    positionId: row.position_id,
    fillId: row.fill_id,
    entryId: row.entry_id,
    field: row.field,
    expected: row.expected,
    actual: row.actual,
    at: row.at,
  };
}

function message(r: IssueRow): string {
  switch (r.type) {
    case T.UNLINKED_FILLED_ORDER:
      return r.expected
        ? `Order ${r.order_id} has fills but is not linked to a position; its first fill is in position ${r.expected}.`
        : `Order ${r.order_id} has fills but is not linked to a position, and none of its fills is in a position.`;
    case T.ORPHANED_POSITION_REFERENCE:
      return `${r.field === 'fill.positionId' ? `Fill ${r.fill_id}` : `Order ${r.order_id}`} points at position ${r.position_id}, which is ${r.actual}; it should be ${r.expected}.`;
    case T.QUANTITY_MISMATCH:
      return `Position ${r.position_id} holds ${r.actual}, but its fills (with any quantity a flip carried into it) add up to ${r.expected}.`;
    case T.ORDER_FILL_MISMATCH:
      return `Order ${r.order_id}: ${r.field} is ${r.actual ?? 'null'}, but its effective fills give ${r.expected ?? 'null'}.`;
    case T.POSITION_WITHOUT_ORDERS:
      return `Position ${r.position_id} (${r.symbol}) has no linked order and no fill: nothing explains it.`;
    case T.REPLAY_MISMATCH:
      return `Position ${r.position_id ?? '(none)'}: ${r.note ?? `${r.field} is ${r.actual ?? 'null'}, the replay of its book gives ${r.expected ?? 'null'}`}.`;
    case T.EXECUTION_EXCEPTION:
      return `Fill ${r.fill_id} of order ${r.order_id} was applied as an exception (${r.actual}${r.actual === 'OVERFILL' || (r.note && !new Dec(r.note).isZero()) ? `, ${r.note} beyond the order's quantity` : ''}): review it.`;
    case T.ORDER_LOG_MISMATCH:
      if (r.field === 'status') {
        return `Order ${r.order_id} is ${r.actual}, but its log's last status change (entry ${r.note}) left it ${r.expected}: entries are missing or the order was changed outside Tradetrail.`;
      }
      if (r.field === 'log') return `Order ${r.order_id} has no log entries at all: its trail was deleted.`;
      return `Order ${r.order_id} has filled ${r.actual} (with any overfill), but the ${r.note} fill(s) its log records add up to ${r.expected}.`;
    case T.BROKEN_LOG:
      if (r.field === 'checkpoint') return `The Merkle tree no longer matches the signed checkpoints: ${r.note}.`;
      if (r.field === 'leaf') {
        return r.actual === 'missing'
          ? `Log entry ${r.entry_id} (${r.expected}) is a leaf of the signed tree but is gone from the log: it was deleted.`
          : r.expected === 'in the tree'
            ? `Log entry ${r.entry_id} of order ${r.order_id} has no valid seal and was kept out of the tree: it was not written by Tradetrail.`
            : `Leaf of log entry ${r.entry_id} was ${r.expected}, the log now has it as ${r.actual}: entries were renumbered or moved.`;
      }
      if (r.field === 'seq') {
        return `Order ${r.order_id}'s log skips from entry ${Number(r.expected) - 1} to ${r.actual}: entries were deleted.`;
      }
      if (r.field === 'prevHash') {
        return `Log entry ${r.entry_id} of order ${r.order_id} does not point at its predecessor's hash: the chain was cut or reordered.`;
      }
      return `Log entry ${r.entry_id} of order ${r.order_id} no longer hashes to its stored hash: it was edited.`;
  }
}

export interface ReportSummary {
  totals: DataQualityTotal[];
  issueCount: number;
  filledOrders: number;
  linkedFilledOrders: number;
  linkRate: string | null;
}

/** Which orders count for the link rate: filled (at all) and created in the range ($from, $to: the parameters' names). */
export const filledInRange = (from: string, to: string) =>
  `(o.filled_quantity > 0 OR o.overfilled_quantity > 0) AND (${from}::timestamptz IS NULL OR o.created_at >= ${from}::timestamptz) ` +
  `AND (${to}::timestamptz IS NULL OR o.created_at < ${to}::timestamptz)`;

/** Filled orders and the linked ones among them. */
export interface LinkCounts {
  filled: number;
  linked: number;
}

export const linkSummary = ({
  filled,
  linked,
}: LinkCounts): Pick<ReportSummary, 'filledOrders' | 'linkedFilledOrders' | 'linkRate'> => ({
  filledOrders: filled,
  linkedFilledOrders: linked,
  linkRate: filled ? new Dec(linked).dividedBy(filled).toDecimalPlaces(6).toFixed() : null,
});

/** Link rate and counts of filled orders in the range (the report reads them in its scan of the orders when it makes one). */
export async function linkRate(
  m: EntityManager,
  range: Range,
): Promise<Pick<ReportSummary, 'filledOrders' | 'linkedFilledOrders' | 'linkRate'>> {
  const [r] = (await m.query(
    `SELECT count(*)::int AS filled, count(*) FILTER (WHERE o.position_id IS NOT NULL)::int AS linked
     FROM orders o WHERE ${filledInRange('$1', '$2')}`,
    [range.from, range.to],
  )) as LinkCounts[];
  return linkSummary(r);
}
