import type { EntityManager } from 'typeorm';
import type { Dec } from '../decimal';
import { bookKey, compareFills, FILL_SELECT, type LedgerFill, ledgerFill } from '../position/book.service';
import { contractMultiplier } from '../position/instrument';
import { Position, PositionStatus } from '../position/position.entity';
import { netBook, type Segment } from '../position/position.math';
import { hydrate } from '../request-db';
import { DataQualityIssueType } from './data-quality.types';
import type { IssueRow, Scope } from './data-quality.service';

/** Fills read per page while streaming books. */
const PAGE = 20_000;

/** A position as the replay of its book says it must be, and the stored position its fills are in. */
export interface ReplayedPosition {
  segment: Segment<LedgerFill>;
  /** The stored position holding the segment's fills (the one most of them are in). */
  positionId: string | null;
  /** Other positions some of its fills are in (they should all be in one). */
  strays: LedgerFill[];
  flippedFromId: string | null;
  multiplier: Dec;
}

/** Replays one book (its fills in event order, busted ones included and skipped) into its positions. */
export function replayBook(symbol: string, fills: LedgerFill[]): ReplayedPosition[] {
  const multiplier = contractMultiplier(symbol);
  const effective = fills.filter((f) => !f.busted).sort(compareFills);
  const replayed: ReplayedPosition[] = [];
  for (const segment of netBook(null, effective, multiplier)) {
    const count = new Map<string | null, number>();
    for (const f of segment.fills) count.set(f.positionId, (count.get(f.positionId) ?? 0) + 1);
    const [positionId] = [...count].sort((a, b) => b[1] - a[1])[0];
    const previous = replayed[replayed.length - 1];
    replayed.push({
      segment,
      positionId,
      strays: segment.fills.filter((f) => f.positionId !== positionId),
      flippedFromId: segment.flipped ? (previous?.positionId ?? null) : null,
      multiplier,
    });
  }
  return replayed;
}

/** The stored figures of a position against its replay: one row per field that differs. */
export function compareWithReplay(stored: Position, r: ReplayedPosition): Omit<IssueRow, 'type'>[] {
  const s = r.segment;
  const status = s.closedAt ? PositionStatus.CLOSED : PositionStatus.OPEN;
  const time = (d: Date | null) => d?.toISOString() ?? null;
  const sameTime = (a: Date | null, b: Date | null) => (a?.getTime() ?? null) === (b?.getTime() ?? null);
  // [field, same?, expected, actual]: the texts are written only for a field that differs.
  const fields: [string, boolean, () => string | null, () => string | null][] = [
    [
      'quantity',
      stored.quantity.eq(s.state.quantity),
      () => s.state.quantity.toFixed(),
      () => stored.quantity.toFixed(),
    ],
    [
      'costBasis',
      stored.costBasis.eq(s.state.costBasis),
      () => s.state.costBasis.toFixed(),
      () => stored.costBasis.toFixed(),
    ],
    [
      'realizedPnl',
      stored.realizedPnl.eq(s.state.realizedPnl),
      () => s.state.realizedPnl.toFixed(),
      () => stored.realizedPnl.toFixed(),
    ],
    [
      'totalCommission',
      stored.totalCommission.eq(s.state.totalCommission),
      () => s.state.totalCommission.toFixed(),
      () => stored.totalCommission.toFixed(),
    ],
    [
      'averageEntryPrice',
      stored.averageEntryPrice.eq(s.averageEntryPrice),
      () => s.averageEntryPrice.toFixed(),
      () => stored.averageEntryPrice.toFixed(),
    ],
    ['status', stored.status === status, () => status, () => stored.status],
    ['openedAt', sameTime(s.openedAt, stored.openedAt), () => time(s.openedAt), () => time(stored.openedAt)],
    ['closedAt', sameTime(s.closedAt, stored.closedAt), () => time(s.closedAt), () => time(stored.closedAt)],
    ['flippedFromId', r.flippedFromId === stored.flippedFromId, () => r.flippedFromId, () => stored.flippedFromId],
    [
      'contractMultiplier',
      stored.contractMultiplier.eq(r.multiplier),
      () => r.multiplier.toFixed(),
      () => stored.contractMultiplier.toFixed(),
    ],
  ];
  return fields
    .filter(([, same]) => !same)
    .map(([field, , expected, actual]) => ({
      trader_id: stored.traderId,
      symbol: stored.symbol,
      order_id: null,
      position_id: stored.id,
      fill_id: null,
      entry_id: null,
      field,
      expected: expected(),
      actual: actual(),
      at: stored.openedAt,
    }));
}

/** Every disagreement between a book's stored positions and its replay. */
function bookMismatches(
  book: { traderId: string; symbol: string },
  fills: LedgerFill[],
  stored: Map<string, Position>,
  withFills: Set<string>,
  sink: (row: IssueRow) => void,
): void {
  const type = DataQualityIssueType.REPLAY_MISMATCH;
  const claimed = new Set<string>();
  for (const r of replayBook(book.symbol, fills)) {
    const position = r.positionId ? stored.get(r.positionId) : undefined;
    const first = r.segment.fills[0];
    if (!position) {
      // Its fills are in no position, or in one of another book (ORPHANED_POSITION_REFERENCE says which).
      if (r.positionId === null) {
        sink({
          type,
          trader_id: book.traderId,
          symbol: book.symbol,
          order_id: first.orderId,
          position_id: null,
          fill_id: first.id,
          entry_id: null,
          field: 'positionId',
          expected: 'a position',
          actual: null,
          at: first.executedAt,
          note: `the replay opens a position at fill ${first.id} (${r.segment.fills.length} fill(s)), but none of those fills is in a position`,
        });
      }
      continue;
    }
    if (claimed.has(position.id)) {
      sink({
        type,
        trader_id: book.traderId,
        symbol: book.symbol,
        order_id: first.orderId,
        position_id: position.id,
        fill_id: first.id,
        entry_id: null,
        field: 'fills',
        expected: 'a position of its own',
        actual: position.id,
        at: position.openedAt,
        note: `it holds the fills of more than one position of the replay (a later one starts at fill ${first.id})`,
      });
      continue;
    }
    claimed.add(position.id);
    for (const row of compareWithReplay(position, r)) sink({ ...row, type });
    for (const f of r.strays) {
      sink({
        type,
        trader_id: book.traderId,
        symbol: book.symbol,
        order_id: f.orderId,
        position_id: position.id,
        fill_id: f.id,
        entry_id: null,
        field: 'fill.positionId',
        expected: position.id,
        actual: f.positionId,
        at: position.openedAt,
        note: `fill ${f.id} belongs to this position in the replay, but is stored in ${f.positionId ?? 'no position'}`,
      });
    }
  }
  for (const p of stored.values()) {
    if (!claimed.has(p.id) && withFills.has(p.id)) {
      sink({
        type,
        trader_id: book.traderId,
        symbol: book.symbol,
        order_id: null,
        position_id: p.id,
        fill_id: null,
        entry_id: null,
        field: 'existence',
        expected: 'no such position',
        actual: p.status,
        at: p.openedAt,
        note: 'the replay of its book has no such position: its fills belong to other positions',
      });
    }
  }
}

/** The stored positions of some books, by book, and the ids of those that hold fills. */
async function storedPositions(
  m: EntityManager,
  books: { traderId: string; symbol: string }[],
): Promise<{ byBook: Map<string, Map<string, Position>>; withFills: Set<string> }> {
  const rows = (await m.query(
    `SELECT p.*, EXISTS (SELECT 1 FROM fills f WHERE f.position_id = p.id) AS has_fills
     FROM positions p WHERE (p.trader_id, p.symbol) IN (SELECT * FROM unnest($1::uuid[], $2::varchar[]))`,
    [books.map((b) => b.traderId), books.map((b) => b.symbol)],
  )) as Record<string, unknown>[];
  const byBook = new Map<string, Map<string, Position>>();
  const withFills = new Set<string>();
  for (const row of rows) {
    const p = hydrate(m, Position, row);
    if (row.has_fills === true) withFills.add(p.id);
    const key = bookKey(p.traderId, p.symbol);
    if (!byBook.has(key)) byBook.set(key, new Map());
    byBook.get(key)!.set(p.id, p);
  }
  return { byBook, withFills };
}

/**
 * REPLAY_MISMATCH: every book (of the scope) is replayed from its first fill
 * (DOMAIN.md §4, the ledger's own rules) and compared with its stored positions. Fills are streamed
 * through a cursor in book order, a page at a time; memory holds one page and the current book.
 */
export async function replayMismatches(m: EntityManager, scope: Scope, sink: (row: IssueRow) => void): Promise<void> {
  const cursor = 'tradetrail_replay_check';
  // Some books only (the incremental report): their fills, every one.
  const books = scope.books ? `WHERE (f.trader_id, f.symbol) IN (SELECT * FROM unnest($1::uuid[], $2::varchar[]))` : '';
  await m.query(
    `DECLARE ${cursor} NO SCROLL CURSOR FOR SELECT ${FILL_SELECT} ${books} ORDER BY f.trader_id, f.symbol, f.executed_at, f.arrival`,
    scope.books ? [scope.books.traderIds, scope.books.symbols] : [],
  );
  try {
    let carry: LedgerFill[] = [];
    const fetch = () => {
      const page = m.query(`FETCH ${PAGE} FROM ${cursor}`) as Promise<Record<string, unknown>[]>;
      page.catch(() => undefined); // awaited on the next turn of the loop
      return page;
    };
    let next = fetch();
    for (;;) {
      const rows = await next;
      const done = rows.length < PAGE;
      const fills = carry.concat(rows.map(ledgerFill));
      let cut = fills.length;
      if (!done) {
        const last = fills[fills.length - 1];
        while (cut > 0 && fills[cut - 1].traderId === last.traderId && fills[cut - 1].symbol === last.symbol) cut--;
      }
      carry = fills.slice(cut);
      const books = bookFills(fills.slice(0, cut));
      const stored = books.size ? await storedPositions(m, [...books.values()]) : undefined;
      // The next page is read while this one is replayed.
      if (!done) next = fetch();
      if (stored) {
        for (const [key, book] of books) {
          bookMismatches(book, book.fills, stored.byBook.get(key) ?? new Map(), stored.withFills, sink);
        }
      }
      if (done) break;
    }
  } finally {
    await m.query(`CLOSE ${cursor}`);
  }
}

/** Fills (in book order) grouped by book. */
function bookFills(fills: LedgerFill[]): Map<string, { traderId: string; symbol: string; fills: LedgerFill[] }> {
  const books = new Map<string, { traderId: string; symbol: string; fills: LedgerFill[] }>();
  for (const f of fills) {
    const key = bookKey(f.traderId, f.symbol);
    if (!books.has(key)) books.set(key, { traderId: f.traderId, symbol: f.symbol, fills: [] });
    books.get(key)!.fills.push(f);
  }
  return books;
}

/** What the books of some positions say about them. */
export interface BooksOfPositions {
  /** What each position's book replay says it must be (absent when the replay has no position holding its fills). */
  replayed: Map<string, ReplayedPosition>;
  /** The effective fills stored in each position (busted ones left out), in event order. */
  stored: Map<string, LedgerFill[]>;
}

/** The books of `positions`, read in one statement and replayed. */
export async function replayedPositions(
  m: EntityManager,
  positions: readonly { id: string; traderId: string; symbol: string }[],
): Promise<BooksOfPositions> {
  const books = [...new Map(positions.map((p) => [bookKey(p.traderId, p.symbol), p])).values()];
  const out: BooksOfPositions = { replayed: new Map(), stored: new Map() };
  if (!books.length) return out;
  const rows = (await m.query(
    `SELECT ${FILL_SELECT} WHERE (f.trader_id, f.symbol) IN (SELECT * FROM unnest($1::uuid[], $2::varchar[]))
     ORDER BY f.trader_id, f.symbol, f.executed_at, f.arrival`,
    [books.map((b) => b.traderId), books.map((b) => b.symbol)],
  )) as Record<string, unknown>[];
  const fills = rows.map(ledgerFill);
  for (const f of fills) {
    if (f.busted || !f.positionId) continue;
    if (!out.stored.has(f.positionId)) out.stored.set(f.positionId, []);
    out.stored.get(f.positionId)!.push(f);
  }
  const byBook = bookFills(fills);
  for (const b of books) {
    for (const r of replayBook(b.symbol, byBook.get(bookKey(b.traderId, b.symbol))?.fills ?? [])) {
      if (r.positionId && !out.replayed.has(r.positionId)) out.replayed.set(r.positionId, r);
    }
  }
  return out;
}
