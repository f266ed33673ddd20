import { createHmac, timingSafeEqual } from 'node:crypto';
import type { DataSource, EntityManager } from 'typeorm';
import type { Principal } from '../auth';
import { BadUserInputError, ReadOnlyError } from '../errors';
import type { LogKey } from '../execution-log/log-key';
import { RequestDb } from '../request-db';
import {
  EVERYTHING,
  filledInRange,
  findIssues,
  type IssueRow,
  type LinkCounts,
  type Range,
  REPORT_ORDER,
  type Scope,
} from './data-quality.service';
import { DataQualityIssueType as T } from './data-quality.types';

/**
 * The incremental data-quality report (README "Compliance", "How the report stays fast"). A complete
 * check of a large ledger reads every fill, order, position and log entry and recomputes every entry's
 * hash: a minute and more at 1,000,000 orders. So the result of a complete check is kept as a
 * **baseline** (migration DataQualityBaseline), and a report re-checks only what changed since:
 *
 * - **What changed** is read from PostgreSQL itself, not from the write path: every row version
 *   carries the transaction that wrote it (`xmin`), and any INSERT or UPDATE — by Tradetrail or by a
 *   superuser with every trigger off — writes a new version. A version whose transaction is not older
 *   than the baseline's snapshot (`age(xmin) ≤ age(baseline xmin)`) is new: its book (trader and
 *   symbol) or its order is re-checked. A DELETE leaves no version, so the baseline also keeps, per
 *   table and book, how many versions older than its snapshot there were: a book with fewer now lost
 *   rows (deleted, rewritten, or moved to another book) and is re-checked. The log and the tree's
 *   leaves are never changed by Tradetrail: fewer old entries or leaves than the baseline counted means
 *   tampering, and the log checks then run on everything.
 * - **The re-check** runs the same checks (data-quality.service.ts), restricted to the changed books
 *   (ledger checks) and orders (log checks); the tree is checked against the signed checkpoints every
 *   time. The baseline's issues of unchanged books and orders stand; together they are exactly what a
 *   complete check would find now, and they become the next baseline.
 * - **The baseline is authenticated**: an HMAC, keyed from the log key (which the database never
 *   holds), covers its snapshot, its counts, every book count and every issue. An edited or deleted
 *   baseline fails the HMAC (or is missing) and the report checks everything again; so does a
 *   baseline more than 2^30 transactions old, `full: true`, and a server without a log key.
 *
 * Every report checks the whole history this way and then keeps the issues of its range (an issue's
 * own time, as for the complete check; issues without a time, like a deleted leaf, always).
 */

/** Ledger checks run per book, log checks per order. */
const LOG_TYPES = new Set<T>([T.ORDER_LOG_MISMATCH, T.BROKEN_LOG]);
const LEDGER_TYPES = REPORT_ORDER.filter((t) => !LOG_TYPES.has(t));
/** Tables whose rows belong to a book (trader_id, symbol). */
type BookTable = 'orders' | 'fills' | 'positions' | 'fill_corrections';
/** A baseline older than this many transactions is not used (xmin is 32 bits and wraps at 2^32). */
const MAX_BASELINE_AGE = 2 ** 30;

interface StoredBaseline {
  xmin: string;
  /** Books and orders with a version the snapshot saw but not older than its xmin (see `Held`). */
  held: Held;
  takenAt: Date;
  logEntries: string;
  logLeaves: string;
  txHorizon: string;
  mac: string;
}

/**
 * What a snapshot saw of transactions not older than its xmin (they were committed when it started, but
 * an xid alone cannot tell them from later ones): such versions are "newer" at the next report, so if
 * one is deleted before it, no count or version shows it. Their books and orders are re-checked then.
 */
export interface Held {
  books: [string, string][];
  orders: string[];
}

/** What a report leaves for the next one. */
export interface NewBaseline {
  /** The snapshot's xmin (xid8, as text) and the counts of log entries and leaves older than it. */
  xmin: string;
  held: Held;
  logEntries: string;
  logLeaves: string;
  txHorizon: string;
  /** Per table and book, versions older than the snapshot: every book (complete) or the changed ones. */
  books: { tbl: string; traderId: string; symbol: string; oldRows: string }[];
  issues: IssueRow[];
  /** A complete check: replaces whatever is stored (every book count; an invalid baseline too, whatever its snapshot). */
  complete: boolean;
}

/** How the report was made. */
export interface ReportRun {
  mode: 'complete' | 'incremental';
  /** Books and orders re-checked (incremental), or null for everything. */
  changedBooks: number | null;
  changedOrders: number | null;
  /** What to save as the next baseline (null: nothing to save, no log key). */
  next: NewBaseline | null;
  /** The filled and linked orders of the range, when `linkRange` asked for them and the orders were scanned (with a log key). */
  link: LinkCounts | null;
}

const macOf = (key: LogKey, b: Omit<StoredBaseline, 'mac'>, booksDigest: string, issuesDigest: string): string =>
  createHmac('sha256', createHmac('sha256', key.sealKey).update('tradetrail data-quality baseline').digest())
    .update(
      [
        b.xmin,
        b.takenAt.toISOString(),
        b.logEntries,
        b.logLeaves,
        b.txHorizon,
        JSON.stringify(b.held),
        booksDigest,
        issuesDigest,
      ].join('\n'),
    )
    .digest('hex');

const DIGESTS = `SELECT
  (SELECT encode(sha256(convert_to(coalesce(string_agg(tbl || ' ' || trader_id || ' ' || symbol || ' ' || old_rows, E'\\n'
     ORDER BY tbl, trader_id, symbol), ''), 'UTF8')), 'hex') FROM dq_baseline_books) AS books,
  (SELECT encode(sha256(convert_to(coalesce(string_agg(n || ' ' || issue::text, E'\\n' ORDER BY n), ''), 'UTF8')), 'hex')
     FROM dq_baseline_issues) AS issues`;

/** An issue row as JSON (its time as ISO text) and back. */
const reviveIssue = (j: IssueRow & { at: string | null }): IssueRow => ({ ...j, at: j.at ? new Date(j.at) : null });

const bookOf = (traderId: string | null, symbol: string | null) => `${traderId}|${symbol}`;

/**
 * Finds every issue of the whole history, from the baseline when a valid one exists, and hands those of
 * `range` (and of `types`) to `sink` in report order. Runs in the caller's REPEATABLE READ transaction;
 * returns what to save as the next baseline (saveBaseline, in a transaction of its own).
 */
export async function reportIssues(
  m: EntityManager,
  range: Range,
  options: {
    types?: readonly T[] | null;
    key?: LogKey;
    full?: boolean;
    second?: SecondConnection;
    /** Count the range's filled and linked orders in the scan of the orders (`run.link`). */
    linkRange?: Range;
  },
  sink: (row: IssueRow) => void,
): Promise<ReportRun> {
  if (range.from && range.to && range.from >= range.to) {
    throw new BadUserInputError('from must be earlier than to.', { field: 'from' });
  }
  const [now] = (await m.query(
    `SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, (SELECT tx_horizon::text FROM log_tree_state WHERE id = 1) AS horizon`,
  )) as { xmin: string; horizon: string | null }[];
  const horizon = now.horizon ?? '0';
  const { key } = options;
  let run: ReportRun;
  let issues: IssueRow[];
  const base =
    key && !options.full ? await storedBaseline(m, now.xmin) : { why: options.full ? 'full: true' : 'no log key' };
  const scan: Scan = { second: options.second, linkRange: options.linkRange };
  const quick = 'why' in base ? base : await incremental(m, key!, base, now.xmin, horizon, scan);
  if (!('why' in quick)) {
    ({ run, issues } = quick);
  } else {
    issues = [];
    await findIssues(m, { key }, (row) => issues.push(row));
    const counts = key ? await changeCounts(m, null, xid32(now.xmin), scan) : null;
    run = {
      mode: 'complete',
      changedBooks: null,
      changedOrders: null,
      link: counts?.link ?? null,
      next: counts && {
        xmin: now.xmin,
        held: heldOf(counts),
        logEntries: counts.logEntries,
        logLeaves: counts.logLeaves,
        txHorizon: horizon,
        books: counts.books.map(baselineBook),
        issues,
        complete: true,
      },
    };
  }
  const wanted = new Set(options.types?.length ? options.types : REPORT_ORDER);
  const inRange = (at: Date | null) => !at || ((!range.from || at >= range.from) && (!range.to || at < range.to));
  const rank = (t: T) => REPORT_ORDER.indexOf(t);
  issues
    .filter((r) => wanted.has(r.type) && inRange(r.at))
    .sort((a, b) => rank(a.type) - rank(b.type))
    .forEach(sink);
  return run;
}

/** The lower 32 bits of an xid8: the xid that `age()` takes. */
const xid32 = (xid8: string): string => String(BigInt(xid8) % 2n ** 32n);

/** The stored baseline, if there is one young enough; else why not (its HMAC is checked by `authenticate`). */
async function storedBaseline(m: EntityManager, xmin: string): Promise<StoredBaseline | { why: string }> {
  const [row] = (await m.query(
    `SELECT snapshot_xmin::text AS xmin, held, taken_at, log_entries::text, log_leaves::text, tx_horizon::text, mac FROM dq_baseline WHERE id = 1`,
  )) as {
    xmin: string;
    held: Held;
    taken_at: Date;
    log_entries: string;
    log_leaves: string;
    tx_horizon: string;
    mac: string;
  }[];
  if (!row) return { why: 'no baseline yet' };
  const age = BigInt(xmin) - BigInt(row.xmin);
  if (age < 0n || age > BigInt(MAX_BASELINE_AGE)) return { why: `the baseline is ${age} transactions old` };
  return {
    xmin: row.xmin,
    held: row.held,
    takenAt: row.taken_at,
    logEntries: row.log_entries,
    logLeaves: row.log_leaves,
    txHorizon: row.tx_horizon,
    mac: row.mac,
  };
}

interface BaselineBook {
  tbl: string;
  trader_id: string;
  symbol: string;
  old_rows: string;
}

/** The baseline's issues and book counts, once its HMAC is checked; else why it is not trusted. */
async function authenticate(
  m: EntityManager,
  key: LogKey,
  baseline: StoredBaseline,
): Promise<{ issues: IssueRow[]; books: BaselineBook[] } | { why: string }> {
  const [digests] = (await m.query(DIGESTS)) as { books: string; issues: string }[];
  const expected = Buffer.from(macOf(key, baseline, digests.books, digests.issues), 'hex');
  const stored = Buffer.from(baseline.mac, 'hex');
  if (stored.length !== expected.length || !timingSafeEqual(stored, expected)) {
    return { why: 'the baseline does not match its HMAC (it was changed outside Tradetrail)' };
  }
  const issues = (
    (await m.query(`SELECT issue FROM dq_baseline_issues ORDER BY n`)) as {
      issue: IssueRow & { at: string | null };
    }[]
  ).map((r) => reviveIssue(r.issue));
  const books = (await m.query(
    `SELECT tbl, trader_id::text, symbol, old_rows::text FROM dq_baseline_books`,
  )) as BaselineBook[];
  return { issues, books };
}

/** Where the change scans may run besides the report's own transaction (a second connection, same snapshot). */
export interface SecondConnection {
  dataSource: DataSource;
  principal: Principal;
  statementTimeoutMs: number;
}

/** One book's versions in one table: all of them, those newer than the baseline, and newer than the next one. */
interface BookCount {
  tbl: BookTable;
  traderId: string;
  symbol: string;
  total: bigint;
  changed: number;
  next: number;
}

interface Counts {
  /** Per table and book (for an incremental report: only the books with a newer version, see `quick`). */
  books: BookCount[];
  /**
   * Incremental reports, per table: its versions older than the baseline, and the books with a newer
   * one (whose counts are in `books`). The other books' old counts are the baseline's unless a version
   * was deleted; `incremental` tells by the sum, and counts every book of a table where it differs.
   */
  quick: Map<BookTable, { old: bigint; dirty: Set<string> }>;
  logEntries: string;
  logLeaves: string;
  logOld: string;
  leavesOld: string;
  changedOrders: string[];
  heldOrders: string[];
  link: LinkCounts | null;
}

/** Where the change scans run, and whether the orders' scan also counts the link rate's orders. */
interface Scan {
  second?: SecondConnection;
  linkRange?: Range;
}

// "Newer than x": 0 ≤ age(xmin) ≤ age(x), both ages in the same statement (age() counts from the
// transaction's own latest xid, which differs between the two connections), age(x) once (InitPlan).
// A negative age (a version from more than 2^31 transactions ago) counts as old; a newer version can
// never look old while the baseline is under 2^30 old. $1 is the baseline's xid, $2 the next one's.
// Newer than $2 implies newer than $1 (the baseline is older), so "newer than $2" is only evaluated
// for the few rows newer than the baseline: one test per row. (Without a baseline, $1 is $2.)
const newer = (param: '$1' | '$2') => `(a BETWEEN 0 AND (SELECT age(${param}::xid)))`;

/** Ids (of `column`) of the versions newer than $1, each with `+` when also newer than $2 (see `tagged`). */
const taggedIds = (column: string) =>
  `array_agg(${column}::text || CASE WHEN ${newer('$2')} THEN '+' ELSE '' END) FILTER (WHERE ${newer('$1')})`;

/** The link rate's orders in the orders' scan ($3, $4: the range). */
const LINK_COLUMNS = `${filledInRange('$3', '$4')} AS f, position_id IS NOT NULL AS l, `;
const LINK_COUNTS = `count(*) FILTER (WHERE f)::int AS filled, count(*) FILTER (WHERE f AND l)::int AS linked`;

/**
 * A book table's rows as the change scans read them (`x`): book and `age(xmin)` (OFFSET 0 keeps it
 * computed once per row), and for the orders their id and, with `withLink`, the link rate's columns.
 */
const bookRowsOf = (tbl: BookTable, withLink: boolean, where = '') =>
  `(SELECT ${tbl === 'orders' ? 'id, ' : ''}${withLink ? LINK_COLUMNS : ''}trader_id, symbol, age(xmin) AS a FROM ${tbl} o ${where} OFFSET 0) x`;
/** The orders' own aggregates over those rows: the ids of newer versions, and the link rate's counts. */
const orderAggregates = (tbl: BookTable, withLink: boolean) =>
  (tbl === 'orders' ? `, ${taggedIds('id')} AS newer` : '') + (withLink ? `, ${LINK_COUNTS}` : '');

/** What a book table's scan adds besides its counts: the orders' newer ids and the link rate's orders. */
interface OrderExtras {
  newer?: string[] | null;
  filled?: number;
  linked?: number;
}

/**
 * Per book of `tbl` (every book, or those of `only`), its versions: all, newer than $1, newer than $1
 * and $2 (one GROUP BY over the table: hashing every row's book is most of a scan's cost); for the
 * orders of every book, the ids of their newer versions and, with `linkRange`, the link rate's counts.
 */
async function countBooks(
  q: EntityManager,
  tbl: BookTable,
  params: unknown[],
  only?: readonly string[],
  linkRange?: Range,
): Promise<{ books: BookCount[]; newer: string[]; link: LinkCounts | null }> {
  const withLink = tbl === 'orders' && !!linkRange && !only;
  const where = only ? `WHERE (trader_id, symbol) IN (SELECT * FROM unnest($3::uuid[], $4::varchar[]))` : '';
  const rows = (await q.query(
    `SELECT trader_id::text, symbol, count(*)::text AS total, count(*) FILTER (WHERE ${newer('$1')})::int AS changed,
       count(*) FILTER (WHERE ${newer('$1')} AND ${newer('$2')})::int AS changed_next${only ? '' : orderAggregates(tbl, withLink)}
     FROM ${bookRowsOf(tbl, withLink, where)}
     GROUP BY trader_id, symbol`,
    only
      ? [...params, only.map((b) => splitBook(b)[0]), only.map((b) => splitBook(b)[1])]
      : withLink
        ? [...params, linkRange!.from, linkRange!.to]
        : params,
  )) as ({ trader_id: string; symbol: string; total: string; changed: number; changed_next: number } & OrderExtras)[];
  const link: LinkCounts = { filled: 0, linked: 0 };
  const newerIds: string[] = [];
  const books = rows.map((r): BookCount => {
    newerIds.push(...(r.newer ?? []));
    link.filled += r.filled ?? 0;
    link.linked += r.linked ?? 0;
    return {
      tbl,
      traderId: r.trader_id,
      symbol: r.symbol,
      total: BigInt(r.total),
      changed: r.changed,
      next: r.changed_next,
    };
  });
  return { books, newer: newerIds, link: withLink ? link : null };
}

/** A book count as the next baseline keeps it: its versions older than the next snapshot. */
const baselineBook = (b: BookCount): NewBaseline['books'][number] => ({
  tbl: b.tbl,
  traderId: b.traderId,
  symbol: b.symbol,
  oldRows: String(b.total - BigInt(b.next)),
});

/** What the next snapshot saw of transactions not older than its xmin (see Held). */
function heldOf(counts: Counts): Held {
  const books = new Map<string, [string, string]>();
  for (const b of counts.books) if (b.next > 0) books.set(bookOf(b.traderId, b.symbol), [b.traderId, b.symbol]);
  return {
    books: [...books].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, book]) => book),
    orders: counts.heldOrders,
  };
}

const splitBook = (book: string): [string, string] => {
  const bar = book.indexOf('|');
  return [book.slice(0, bar), book.slice(bar + 1)];
};

/**
 * Per book table and book, the versions older than `since` (xid, or null: every version) and those
 * older than `next`; and the same counts for the log and the leaves, with the orders of their newer
 * versions. One scan of each table, `age(xmin)` computed once per row (OFFSET 0 keeps it so). The
 * scans are split over the report's connection and, when `second` is given, a second one that
 * imports the report's snapshot: PostgreSQL scans on both cores at once.
 *
 * With a baseline (`since`), a book table's scan only counts its versions older than the baseline and
 * lists the books with a newer one (no GROUP BY: about half the cost per row); those books alone are
 * then counted per book (`quick`).
 */
async function changeCounts(
  m: EntityManager,
  since: string | null,
  next: string,
  { second, linkRange }: Scan,
  afterHere?: (m: EntityManager) => Promise<void>,
): Promise<Counts> {
  const params: unknown[] = [since ?? next, next];
  const orders = new Set<string>();
  const heldOrders = new Set<string>();
  /** Order ids of versions newer than the baseline, `+` when also newer than `next`: how many had `+`. */
  const tagged = (ids: string[] | null | undefined): number => {
    let changedNext = 0;
    for (const tag of ids ?? []) {
      const next = tag.endsWith('+');
      const id = next ? tag.slice(0, -1) : tag;
      orders.add(id);
      if (next) {
        heldOrders.add(id);
        changedNext += 1;
      }
    }
    return changedNext;
  };
  const out: Counts = {
    books: [],
    quick: new Map(),
    logEntries: '0',
    logLeaves: '0',
    logOld: '0',
    leavesOld: '0',
    changedOrders: [],
    heldOrders: [],
    link: null,
  };
  const bookTable = async (q: EntityManager, tbl: BookTable) => {
    if (since === null) {
      const counted = await countBooks(q, tbl, params, undefined, linkRange);
      out.books.push(...counted.books);
      tagged(counted.newer);
      if (counted.link) out.link = counted.link;
      return;
    }
    const withLink = tbl === 'orders' && !!linkRange;
    const [r] = (await q.query(
      `SELECT count(*) FILTER (WHERE NOT ${newer('$1')})::text AS old,
         array_agg(DISTINCT trader_id::text || '|' || symbol) FILTER (WHERE ${newer('$1')}) AS dirty${orderAggregates(tbl, withLink)}
       FROM ${bookRowsOf(tbl, withLink)}`,
      // ($2 only in the orders' ids.)
      withLink ? [...params, linkRange!.from, linkRange!.to] : tbl === 'orders' ? params : params.slice(0, 1),
    )) as ({ old: string; dirty: string[] | null } & OrderExtras)[];
    tagged(r.newer);
    if (withLink) out.link = { filled: r.filled!, linked: r.linked! };
    const dirty = r.dirty ?? [];
    out.quick.set(tbl, { old: BigInt(r.old), dirty: new Set(dirty) });
    if (dirty.length) out.books.push(...(await countBooks(q, tbl, params, dirty)).books);
  };
  const logCounts = new Map<string, { old: string; next: string }>();
  const logTable = async (q: EntityManager, tbl: 'execution_logs' | 'log_leaves') => {
    const [r] = (await q.query(
      `SELECT count(*)::text AS total, ${taggedIds('order_id')} AS newer
       FROM (SELECT order_id, age(xmin) AS a FROM ${tbl} OFFSET 0) x`,
      params,
    )) as { total: string; newer: string[] | null }[];
    const changedNext = tagged(r.newer);
    const total = BigInt(r.total);
    logCounts.set(tbl, {
      old: String(total - BigInt(r.newer?.length ?? 0)),
      next: String(total - BigInt(changedNext)),
    });
  };
  // About half of the work each: the log alone is as large as everything else.
  const here = async (q: EntityManager) => {
    await logTable(q, 'execution_logs');
    await bookTable(q, 'fill_corrections');
    if (afterHere) await afterHere(q);
  };
  const there = async (q: EntityManager) => {
    await bookTable(q, 'fills');
    await bookTable(q, 'orders');
    await logTable(q, 'log_leaves');
    await bookTable(q, 'positions');
  };
  if (second) {
    const [{ snapshot }] = (await m.query(`SELECT pg_export_snapshot() AS snapshot`)) as { snapshot: string }[];
    let started = false;
    const elsewhere = RequestDb.transaction(
      second.dataSource,
      second.principal,
      second.statementTimeoutMs,
      'read',
      (q) => {
        started = true;
        return there(q);
      },
      snapshot,
    );
    const [mine, theirs] = await Promise.allSettled([here(m), elsewhere]);
    if (mine.status === 'rejected') throw mine.reason;
    if (theirs.status === 'rejected') {
      // No second connection to be had (every pooled one busy): the same scans here, one after the other.
      if (started) throw theirs.reason;
      await there(m);
    }
  } else {
    await here(m);
    await there(m);
  }
  const log = logCounts.get('execution_logs')!;
  const leaves = logCounts.get('log_leaves')!;
  Object.assign(out, { logOld: log.old, logEntries: log.next, leavesOld: leaves.old, logLeaves: leaves.next });
  out.changedOrders = [...orders];
  out.heldOrders = [...heldOrders].sort();
  return out;
}

/** The re-check of what changed since `baseline`. */
async function incremental(
  m: EntityManager,
  key: LogKey,
  baseline: StoredBaseline,
  xmin: string,
  horizon: string,
  scan: Scan,
): Promise<{ run: ReportRun; issues: IssueRow[] } | { why: string }> {
  // The baseline's HMAC is checked on the report's connection while the second one still scans.
  let trusted = { why: 'not read' } as Awaited<ReturnType<typeof authenticate>>;
  const counts = await changeCounts(m, xid32(baseline.xmin), xid32(xmin), scan, async (q) => {
    trusted = await authenticate(q, key, baseline);
  });
  if ('why' in trusted) return trusted;
  const known = trusted.issues;
  const stored = new Map(trusted.books.map((r) => [`${r.tbl}|${bookOf(r.trader_id, r.symbol)}`, r]));
  // A table scanned without its books (`quick`): the books without a newer version kept the baseline's
  // old counts unless one lost a version (deleted, or rewritten into another book); an old version never
  // comes back, so their sum tells. Where it differs, every book of the table is counted, to find which.
  for (const [tbl, quick] of counts.quick) {
    let clean = quick.old;
    for (const b of counts.books) if (b.tbl === tbl) clean -= b.total - BigInt(b.changed);
    let before = 0n;
    for (const r of trusted.books) {
      if (r.tbl === tbl && !quick.dirty.has(bookOf(r.trader_id, r.symbol))) before += BigInt(r.old_rows);
    }
    if (clean !== before) {
      const { books: all } = await countBooks(m, tbl, [xid32(baseline.xmin), xid32(xmin)]);
      counts.books = counts.books.filter((b) => b.tbl !== tbl).concat(all);
      counts.quick.delete(tbl);
    }
  }
  // Books with a newer version, or fewer old versions than the baseline counted.
  const dirty = new Map<string, { traderId: string; symbol: string }>();
  const seen = new Set<string>();
  for (const c of counts.books) {
    const k = `${c.tbl}|${bookOf(c.traderId, c.symbol)}`;
    seen.add(k);
    if (c.changed > 0 || (stored.get(k)?.old_rows ?? '0') !== String(c.total - BigInt(c.changed))) {
      dirty.set(bookOf(c.traderId, c.symbol), { traderId: c.traderId, symbol: c.symbol });
    }
  }
  // A book with every row gone from a table counted per book.
  const gone = [...stored]
    .filter(([k, r]) => !counts.quick.has(r.tbl as BookTable) && !seen.has(k) && r.old_rows !== '0')
    .map(([, r]) => r);
  for (const r of gone) dirty.set(bookOf(r.trader_id, r.symbol), { traderId: r.trader_id, symbol: r.symbol });
  // Books and orders with versions the baseline saw but could not date before its xmin (see Held).
  for (const [traderId, symbol] of baseline.held.books) dirty.set(bookOf(traderId, symbol), { traderId, symbol });
  // The log and the leaves only grow: fewer old ones than the baseline counted is tampering.
  const logAll = counts.logOld !== baseline.logEntries || counts.leavesOld !== baseline.logLeaves;
  const books = [...dirty.values()];
  // Orders to re-check against their log: newer versions of the order, its entries or its leaves;
  // entries the integrator had not judged at the baseline and refused since; and the orders of the
  // baseline's ORDER_LOG_MISMATCH issues in a changed book (the order may be gone: then so is its issue).
  const orders = new Set([...counts.changedOrders, ...baseline.held.orders]);
  for (const r of known) {
    if (r.type === T.ORDER_LOG_MISMATCH && r.order_id && dirty.has(bookOf(r.trader_id, r.symbol)))
      orders.add(r.order_id);
  }
  // (Refused: judged since the baseline, i.e. under the integrator's horizon now but not then, and not
  // in the tree. Usually a few entries; after a bulk load the baseline's horizon may lag far behind.)
  const more = (await m.query(
    `SELECT DISTINCT l.order_id::text AS id FROM execution_logs l
     WHERE l.tx >= $1::bigint AND l.tx < $2::bigint AND NOT EXISTS (SELECT 1 FROM log_leaves x WHERE x.entry_id = l.id)`,
    [baseline.txHorizon, horizon],
  )) as { id: string }[];
  for (const r of more) orders.add(r.id);

  const fresh: IssueRow[] = [];
  if (books.length) {
    const scope: Scope = {
      books: { traderIds: books.map((b) => b.traderId), symbols: books.map((b) => b.symbol) },
      orders: null,
    };
    await findIssues(m, { types: LEDGER_TYPES, scope }, (row) => fresh.push(row));
  }
  const logScope: Scope = logAll ? EVERYTHING : { books: null, orders: [...orders] };
  await findIssues(m, { types: [...LOG_TYPES], key, scope: logScope }, (row) => fresh.push(row));

  // What the baseline found stands where nothing it depends on changed.
  const standing = known.filter((r) => {
    const bookChanged = dirty.has(bookOf(r.trader_id, r.symbol));
    if (r.type === T.BROKEN_LOG) return !logAll && r.field !== 'checkpoint' && !!r.order_id && !orders.has(r.order_id);
    if (r.type === T.ORDER_LOG_MISMATCH) return !logAll && !!r.order_id && !orders.has(r.order_id);
    return !bookChanged;
  });
  const issues = [...standing, ...fresh];
  const changedBooks = counts.books
    .map(baselineBook)
    .filter((b) => stored.get(`${b.tbl}|${bookOf(b.traderId, b.symbol)}`)?.old_rows !== b.oldRows)
    .concat(gone.map((r) => ({ tbl: r.tbl, traderId: r.trader_id, symbol: r.symbol, oldRows: '0' })));
  // Nothing newer than the baseline: it stays as it is (saving it again would change nothing).
  const unchanged = !books.length && !orders.size && !logAll && !changedBooks.length;
  return {
    issues,
    run: {
      mode: 'incremental',
      changedBooks: books.length,
      changedOrders: logAll ? null : orders.size,
      link: counts.link,
      next: unchanged
        ? null
        : {
            xmin,
            held: heldOf(counts),
            logEntries: counts.logEntries,
            logLeaves: counts.logLeaves,
            txHorizon: horizon,
            books: changedBooks,
            issues,
            complete: false,
          },
    },
  };
}

/** Advisory lock key of saving a baseline ("dqbase"). */
const SAVE_LOCK = 0x64_71_62_61_73_65;

/**
 * Saves `next` as the baseline, in a transaction of its own as `principal` (compliance or admin), unless
 * another report is saving one now or (for an incremental result) saved a newer one meanwhile: then
 * this one is simply not kept.
 */
export async function saveBaseline(
  dataSource: DataSource,
  principal: Principal,
  statementTimeoutMs: number,
  key: LogKey,
  next: NewBaseline,
): Promise<boolean> {
  try {
    return await RequestDb.transaction(dataSource, principal, statementTimeoutMs, 'write', async (m) => {
      const [{ locked }] = (await m.query(`SELECT pg_try_advisory_xact_lock($1) AS locked`, [SAVE_LOCK])) as {
        locked: boolean;
      }[];
      if (!locked) return false;
      const [current] = (await m.query(`SELECT snapshot_xmin::text AS xmin FROM dq_baseline WHERE id = 1`)) as {
        xmin: string;
      }[];
      // Any result of one snapshot is a valid baseline; an incremental one never replaces a newer one
      // (it would only make the next report re-check more).
      if (!next.complete && current && BigInt(current.xmin) > BigInt(next.xmin)) return false;
      if (next.complete) await m.query(`DELETE FROM dq_baseline_books`);
      if (next.books.length) {
        await m.query(
          `INSERT INTO dq_baseline_books (tbl, trader_id, symbol, old_rows)
           SELECT * FROM unnest($1::varchar[], $2::uuid[], $3::varchar[], $4::bigint[])
           ON CONFLICT (tbl, trader_id, symbol) DO UPDATE SET old_rows = excluded.old_rows`,
          [
            next.books.map((b) => b.tbl),
            next.books.map((b) => b.traderId),
            next.books.map((b) => b.symbol),
            next.books.map((b) => b.oldRows),
          ],
        );
      }
      await m.query(`DELETE FROM dq_baseline_issues`);
      if (next.issues.length) {
        await m.query(
          `INSERT INTO dq_baseline_issues (n, issue) SELECT n, issue FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS x(issue, n)`,
          [JSON.stringify(next.issues)],
        );
      }
      const [digests] = (await m.query(DIGESTS)) as { books: string; issues: string }[];
      // Milliseconds, as JavaScript reads it back (the HMAC covers the time as read).
      const [{ now }] = (await m.query(`SELECT date_trunc('milliseconds', statement_timestamp()) AS now`)) as {
        now: Date;
      }[];
      const header = {
        xmin: next.xmin,
        held: next.held,
        takenAt: now,
        logEntries: next.logEntries,
        logLeaves: next.logLeaves,
        txHorizon: next.txHorizon,
      };
      await m.query(
        `INSERT INTO dq_baseline (id, snapshot_xmin, taken_at, log_entries, log_leaves, tx_horizon, mac, held)
         VALUES (1, $1, $2, $3, $4, $5, $6, $7::jsonb)
         ON CONFLICT (id) DO UPDATE SET snapshot_xmin = excluded.snapshot_xmin, taken_at = excluded.taken_at, log_entries = excluded.log_entries,
           log_leaves = excluded.log_leaves, tx_horizon = excluded.tx_horizon, mac = excluded.mac, held = excluded.held`,
        [
          next.xmin,
          now,
          next.logEntries,
          next.logLeaves,
          next.txHorizon,
          macOf(key, header, digests.books, digests.issues),
          JSON.stringify(next.held),
        ],
      );
      return true;
    });
  } catch (error) {
    // A hot standby: the report stands, it is only not remembered (a baseline from the primary is used).
    if (error instanceof ReadOnlyError) return false;
    throw error;
  }
}
