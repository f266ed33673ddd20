import { setImmediate as nextTurn } from 'node:timers/promises';
import type { EntityManager } from 'typeorm';
import { Dec } from '../decimal';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import { newId } from '../ids';
import { type Actor, type LogEntry, logInsertSql, logRowsJson } from '../execution-log/execution-log.service';
import type { JsonObject } from '../scalars';
import { Order, OrderSide } from '../order/order.entity';
import { orderTotals } from '../order/order.state';
import { hydrate } from '../request-db';
import { contractMultiplier } from './instrument';
import { Position, PositionStatus } from './position.entity';
import { type BookFill, netBook, type PositionChange, type PositionState } from './position.math';

/**
 * The event-time ledger (DOMAIN.md §4): a book — one trader's fills in one symbol — is always the
 * replay of its effective fills in (executed_at, arrival) order. New fills later than everything in
 * their book continue the open position (the fast path); anything else (a late fill, a correction, a
 * bust, a recompute) replays the book from the earliest affected position on: positions close, open
 * and split as the replay says, fills and order links follow, surplus positions are removed, and
 * every change is logged.
 *
 * Locks, in this order everywhere: the books (advisory, sorted), then orders (by id), then positions.
 */

/** Advisory-lock key of a book. */
export const bookKey = (traderId: string, symbol: string): string => `${traderId}|${symbol}`;

/** Takes the advisory locks of books, sorted (the lock order of every writer). */
export async function lockBooks(m: EntityManager, books: { traderId: string; symbol: string }[]): Promise<void> {
  const keys = [...new Set(books.map((b) => bookKey(b.traderId, b.symbol)))].sort();
  if (keys.length) {
    await m.query(`SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM unnest($1::text[]) AS k`, [keys]);
  }
}

/** A fill as the ledger works with it: effective values, event time, arrival, where it is now. */
export interface LedgerFill extends BookFill {
  id: string;
  orderId: string;
  traderId: string;
  symbol: string;
  quantity: Dec;
  executedAt: Date;
  /** Arrival order; fills recorded by this request sort after every stored one, in request order. */
  arrival: number;
  /** The stored position (null for a new or busted fill). */
  positionId: string | null;
  /** The stored overfill part. */
  overfilled: Dec;
  /** Applied as an exception because of its order's state when it arrived (REPLACED, REJECTED). */
  arrivalException: boolean;
  busted: boolean;
  isNew: boolean;
}

export const compareFills = (a: LedgerFill, b: LedgerFill): number =>
  a.executedAt.getTime() - b.executedAt.getTime() || a.arrival - b.arrival;

/** Provisional arrival of the n-th fill recorded by this request (stored ones are far below). */
export const NEW_ARRIVAL_BASE = 2 ** 52;

export const signed = (side: OrderSide, quantity: Dec): Dec => (side === OrderSide.BUY ? quantity : quantity.negated());

/** Effective values and event keys of stored fills: SELECT list and joins over `fills f`. */
export const FILL_SELECT = `f.id, f.order_id, f.trader_id, f.symbol, f.executed_at, f.arrival::text AS arrival, f.position_id,
  f.overfilled_quantity::text AS overfilled, f.arrival_exception IS NOT NULL AS arrival_exception, o.side,
  c.kind = 'BUST' AS busted,
  coalesce(c.quantity, f.quantity)::text AS quantity, coalesce(c.price, f.price)::text AS price,
  coalesce(c.commission, f.commission)::text AS commission
  FROM fills f JOIN orders o ON o.id = f.order_id
  LEFT JOIN LATERAL (SELECT kind, quantity, price, commission FROM fill_corrections c
                     WHERE c.fill_id = f.id ORDER BY c.seq DESC LIMIT 1) c ON true`;

export function ledgerFill(r: Record<string, unknown>): LedgerFill {
  const quantity = new Dec(r.quantity as string);
  return {
    id: r.id as string,
    orderId: r.order_id as string,
    traderId: r.trader_id as string,
    symbol: r.symbol as string,
    executedAt: r.executed_at as Date,
    arrival: Number(r.arrival),
    positionId: (r.position_id as string | null) ?? null,
    overfilled: new Dec(r.overfilled as string),
    arrivalException: r.arrival_exception === true,
    busted: r.busted === true,
    isNew: false,
    quantity,
    signedQuantity: signed(r.side as OrderSide, quantity),
    price: new Dec(r.price as string),
    commission: new Dec(r.commission as string),
  };
}

/** Stored fills by id, with their effective values (for corrections). */
export async function loadLedgerFills(m: EntityManager, where: string, params: unknown[]): Promise<LedgerFill[]> {
  return ((await m.query(`SELECT ${FILL_SELECT} WHERE ${where}`, params)) as Record<string, unknown>[]).map(ledgerFill);
}

const snapshot = (p: { state: PositionState; status: PositionStatus; averageEntryPrice: Dec }) => ({
  quantity: p.state.quantity.toFixed(),
  averageEntryPrice: p.averageEntryPrice.toFixed(),
  costBasis: p.state.costBasis.toFixed(),
  realizedPnl: p.state.realizedPnl.toFixed(),
  totalCommission: p.state.totalCommission.toFixed(),
  status: p.status,
});
const stateOf = (p: Position): PositionState => ({
  quantity: p.quantity,
  costBasis: p.costBasis,
  realizedPnl: p.realizedPnl,
  totalCommission: p.totalCommission,
});
export const positionSnapshot = (p: Position) =>
  snapshot({ state: stateOf(p), status: p.status, averageEntryPrice: p.averageEntryPrice });

/** A position as the ledger will store it. */
interface PlannedPosition {
  row: Position;
  isNew: boolean;
  before: ReturnType<typeof snapshot> | null;
  changed: boolean;
  /** Its opening, flip link or multiplier changed too (only a replay does that). */
  restructured: boolean;
}

/** What a ledger change did to a book, for the log entry of whatever caused it. */
export interface BookChange {
  traderId: string;
  symbol: string;
  replayed: boolean;
  /** Where the replay started (the event time of the first replayed fill), when it replayed. */
  replayedFrom: string | null;
  positions: { id: string; before: JsonObject | null; after: JsonObject }[];
  removedPositions: string[];
  fillsMoved: number;
}

interface MovedFill {
  orderId: string;
  from: string | null;
  positionId: string | null;
  overfilled: Dec;
  overfilledBefore: Dec;
}

/** An order whose totals, link or fills this request changes. */
export interface WorkingOrder {
  row: Order;
  before: {
    status: string;
    filledQuantity: string;
    overfilledQuantity: string;
    fillNotional: string;
    averageFillPrice: string | null;
    positionId: string | null;
  };
  /** Changed by this request: written by `flush`. */
  dirty: boolean;
}

/**
 * Everything a request changes, collected in memory and written with a fixed handful of set-based
 * statements by `flush`.
 */
export class LedgerWrites {
  readonly positions = new Map<string, PlannedPosition>();
  readonly removedPositions = new Set<string>();
  readonly newFills: LedgerFill[] = [];
  /** Extra columns of new fills. */
  readonly newFillData = new Map<
    string,
    {
      execId: string;
      liquidity: string | null;
      venue: string | null;
      arrivalException: string | null;
      original: { quantity: Dec; price: Dec; commission: Dec };
    }
  >();
  /** Stored fills whose position or overfill changes. */
  readonly movedFills = new Map<string, MovedFill>();

  /** Records a change of a stored fill's position or overfill (keeping where it was before this request). */
  moveFill(f: LedgerFill, change: { positionId?: string | null; overfilled?: Dec }): void {
    const previous = this.movedFills.get(f.id);
    this.movedFills.set(f.id, {
      orderId: f.orderId,
      from: previous ? previous.from : f.positionId,
      positionId: change.positionId !== undefined ? change.positionId : (previous?.positionId ?? f.positionId),
      overfilled: change.overfilled ?? previous?.overfilled ?? f.overfilled,
      overfilledBefore: previous ? previous.overfilledBefore : f.overfilled,
    });
  }
  readonly orders = new Map<string, WorkingOrder>();
  readonly logs: LogEntry[] = [];
  readonly corrections: Record<string, unknown>[] = [];
  /** How each fill changed its position in the (re)play, and the position's quantity after it. */
  readonly steps = new Map<string, { change: PositionChange; quantity: Dec }>();

  /**
   * Writes it all. Positions: closing ones first, removed ones, then the rest, then new ones (one
   * OPEN per book). `run` may send the fixed statements as prepared ones (the single-execution path).
   */
  async flush(
    m: EntityManager,
    who: Actor,
    run: (name: string, sql: string, params: unknown[]) => Promise<unknown> = (_name, sql, params) =>
      m.query(sql, params),
  ): Promise<void> {
    const now = new Date();
    const planned = [...this.positions.values()].filter((p) => p.changed || p.isNew);
    for (const p of planned) {
      p.row.updatedAt = now;
      p.row.version = (p.row.version ?? 0) + 1;
      if (p.isNew) p.row.createdAt = now;
    }
    const json = (ps: PlannedPosition[]) => JSON.stringify(ps.map((p) => positionRow(p.row)));
    // The fast path changes only the figures; a replay may also move an opening, a flip link or a multiplier.
    const updateSql = (ps: PlannedPosition[], param: string) =>
      ps.some((p) => p.restructured)
        ? `UPDATE positions p SET quantity = v.quantity, average_entry_price = v.average_entry_price, cost_basis = v.cost_basis,
             realized_pnl = v.realized_pnl, total_commission = v.total_commission, status = v.status, opened_at = v.opened_at,
             closed_at = v.closed_at, flipped_from_id = v.flipped_from_id, contract_multiplier = v.contract_multiplier,
             rules_version = 2, version = v.version, updated_at = v.updated_at
           FROM jsonb_populate_recordset(NULL::positions, ${param}::jsonb) v WHERE p.id = v.id`
        : `UPDATE positions p SET quantity = v.quantity, average_entry_price = v.average_entry_price, cost_basis = v.cost_basis,
             realized_pnl = v.realized_pnl, total_commission = v.total_commission, status = v.status, closed_at = v.closed_at,
             version = v.version, updated_at = v.updated_at
           FROM jsonb_populate_recordset(NULL::positions, ${param}::jsonb) v WHERE p.id = v.id`;
    const insertSql = (param: string) =>
      `INSERT INTO positions (${POSITION_COLUMNS}) SELECT ${POSITION_COLUMNS} FROM jsonb_populate_recordset(NULL::positions, ${param}::jsonb)`;
    const existing = planned.filter((p) => !p.isNew);
    const created = planned.filter((p) => p.isNew);
    // One OPEN position per book (a unique index PostgreSQL checks row by row, not at the end of the
    // statement): a position may open only once the one it replaces has closed or gone. When this write
    // both opens one and closes (or removes) another, the positions go first, in that order, each in a
    // statement of its own; otherwise (the usual fill: one open position grows or shrinks) they are
    // part of the one write statement below.
    const opens = planned.some(
      (p) => p.row.status === PositionStatus.OPEN && (p.isNew || p.before?.status !== PositionStatus.OPEN),
    );
    const closes =
      this.removedPositions.size > 0 ||
      existing.some((p) => p.before?.status === PositionStatus.OPEN && p.row.status !== PositionStatus.OPEN);
    const inOne = !(opens && closes);
    if (!inOne) {
      const update = async (ps: PlannedPosition[]) => {
        if (ps.length) {
          await run(ps.some((p) => p.restructured) ? 'replay_positions' : 'update_positions', updateSql(ps, '$1'), [
            json(ps),
          ]);
        }
      };
      await update(existing.filter((p) => p.row.status === PositionStatus.CLOSED));
      if (this.removedPositions.size) {
        await m.query(`DELETE FROM positions WHERE id = ANY($1::uuid[])`, [[...this.removedPositions]]);
      }
      await update(existing.filter((p) => p.row.status === PositionStatus.OPEN));
      if (created.length) await run('insert_positions', insertSql('$1'), [json(created)]);
    } else if (this.removedPositions.size) {
      await m.query(`DELETE FROM positions WHERE id = ANY($1::uuid[])`, [[...this.removedPositions]]);
    }
    const orders = [...this.orders.values()].filter((o) => o.dirty).map((o) => o.row);
    for (const o of orders) o.updatedAt = now;
    const positionParts = inOne
      ? [
          {
            name: existing.some((p) => p.restructured) ? 'r' : 'u',
            rows: existing.length,
            sql: (p: string) => `updated_positions AS (${updateSql(existing, p)})`,
            json: () => json(existing),
          },
          {
            name: 'n',
            rows: created.length,
            sql: (p: string) => `new_positions AS (${insertSql(p)})`,
            json: () => json(created),
          },
        ]
      : [];
    if (
      !positionParts.some((part) => part.rows > 0) &&
      !this.newFills.length &&
      !this.movedFills.size &&
      !orders.length &&
      !this.logs.length &&
      !this.corrections.length
    ) {
      return;
    }
    // One statement: only the parts that have rows (each combination is its own prepared statement).
    const candidates: { name: string; sql: (p: string) => string; json: () => string; rows: number }[] = [
      ...positionParts,
      {
        name: 'f',
        rows: this.newFills.length,
        sql: (p) => `new_fills AS (
         INSERT INTO fills (id, order_id, trader_id, symbol, position_id, exec_id, quantity, price, commission, liquidity, venue,
           executed_at, created_at, arrival_exception, overfilled_quantity)
         SELECT v.id, v.order_id, v.trader_id, v.symbol, v.position_id, v.exec_id, v.quantity, v.price, v.commission, v.liquidity,
           v.venue, v.executed_at, v.created_at, v.arrival_exception, v.overfilled_quantity
         FROM jsonb_populate_recordset(NULL::fills, ${p}::jsonb) WITH ORDINALITY AS v ORDER BY v.ordinality
       )`,
        json: () =>
          JSON.stringify(
            this.newFills.map((f) => {
              const d = this.newFillData.get(f.id)!;
              return {
                id: f.id,
                order_id: f.orderId,
                trader_id: f.traderId,
                symbol: f.symbol,
                position_id: f.positionId,
                exec_id: d.execId,
                quantity: d.original.quantity.toFixed(),
                price: d.original.price.toFixed(),
                commission: d.original.commission.toFixed(),
                liquidity: d.liquidity,
                venue: d.venue,
                executed_at: f.executedAt.toISOString(),
                created_at: now.toISOString(),
                arrival_exception: d.arrivalException,
                overfilled_quantity: f.overfilled.toFixed(),
              };
            }),
          ),
      },
      {
        name: 'm',
        rows: this.movedFills.size,
        sql: (p) => `moved_fills AS (
         UPDATE fills f SET position_id = v.position_id, overfilled_quantity = v.overfilled_quantity
         FROM jsonb_populate_recordset(NULL::fills, ${p}::jsonb) v WHERE f.id = v.id
       )`,
        json: () =>
          JSON.stringify(
            [...this.movedFills].map(([id, v]) => ({
              id,
              position_id: v.positionId,
              overfilled_quantity: v.overfilled.toFixed(),
            })),
          ),
      },
      {
        name: 'o',
        rows: orders.length,
        sql: (p) => `changed_orders AS (
         UPDATE orders o SET status = v.status, filled_quantity = v.filled_quantity, overfilled_quantity = v.overfilled_quantity,
           fill_notional = v.fill_notional, average_fill_price = v.average_fill_price, filled_at = v.filled_at,
           position_id = v.position_id, base_status = v.base_status, updated_at = v.updated_at
         FROM jsonb_populate_recordset(NULL::orders, ${p}::jsonb) v WHERE o.id = v.id
       )`,
        json: () =>
          JSON.stringify(
            orders.map((o) => ({
              id: o.id,
              status: o.status,
              base_status: o.baseStatus,
              filled_quantity: o.filledQuantity.toFixed(),
              overfilled_quantity: o.overfilledQuantity.toFixed(),
              fill_notional: o.fillNotional.toFixed(),
              average_fill_price: o.averageFillPrice?.toFixed() ?? null,
              filled_at: o.filledAt?.toISOString() ?? null,
              position_id: o.positionId,
              updated_at: now.toISOString(),
            })),
          ),
      },
      {
        name: 'c',
        rows: this.corrections.length,
        sql: (p) => `corrections AS (
         INSERT INTO fill_corrections (id, fill_id, trader_id, symbol, correction_id, kind, quantity, price, commission,
           previous_quantity, previous_price, previous_commission, reason, actor, source, created_at)
         SELECT id, fill_id, trader_id, symbol, correction_id, kind, quantity, price, commission,
           previous_quantity, previous_price, previous_commission, reason, actor, source, created_at
         FROM jsonb_populate_recordset(NULL::fill_corrections, ${p}::jsonb)
       )`,
        json: () => JSON.stringify(this.corrections.map((c) => ({ ...c, created_at: now.toISOString() }))),
      },
    ];
    const parts = candidates.filter((part) => part.rows > 0);
    const ctes = parts.map((part, i) => part.sql(`$${i + 1}`));
    const name = `write_${parts.map((part) => part.name).join('')}`;
    if (parts.length && this.logs.length >= OVERLAP_SEALS_FROM) {
      // A large write: the database applies the rows while this process seals the log entries (a
      // few microseconds each), then the entries follow in a statement of their own.
      const applied = run(
        `${name}_then_log`,
        `WITH ${ctes.join(',\n')}\nSELECT 1`,
        parts.map((part) => part.json()),
      );
      applied.catch(() => undefined); // awaited below; never an unhandled rejection meanwhile
      await nextTurn(); // the statement is on its way before the sealing starts
      const entries = logRowsJson(who, this.logs);
      await applied;
      await run('write_log', logInsertSql('$1'), [entries]);
      return;
    }
    await run(name, `${ctes.length ? `WITH ${ctes.join(',\n')}\n` : ''}${logInsertSql(`$${parts.length + 1}`)}`, [
      ...parts.map((part) => part.json()),
      logRowsJson(who, this.logs),
    ]);
  }
}

/** From this many log entries a write seals them while the database applies its rows (see flush). */
const OVERLAP_SEALS_FROM = 64;

const POSITION_COLUMNS =
  'id, trader_id, symbol, quantity, average_entry_price, cost_basis, realized_pnl, total_commission, status, opened_at, closed_at, ' +
  'flipped_from_id, contract_multiplier, rules_version, created_at, updated_at, version';

function positionRow(p: Position): Record<string, unknown> {
  return {
    id: p.id,
    trader_id: p.traderId,
    symbol: p.symbol,
    quantity: p.quantity.toFixed(),
    average_entry_price: p.averageEntryPrice.toFixed(),
    cost_basis: p.costBasis.toFixed(),
    realized_pnl: p.realizedPnl.toFixed(),
    total_commission: p.totalCommission.toFixed(),
    status: p.status,
    opened_at: p.openedAt.toISOString(),
    closed_at: p.closedAt?.toISOString() ?? null,
    flipped_from_id: p.flippedFromId,
    contract_multiplier: p.contractMultiplier.toFixed(),
    rules_version: 2,
    created_at: p.createdAt.toISOString(),
    updated_at: p.updatedAt.toISOString(),
    version: p.version,
  };
}

export function workingOrder(row: Order): WorkingOrder {
  return {
    row,
    before: {
      status: row.status,
      filledQuantity: row.filledQuantity.toFixed(),
      overfilledQuantity: row.overfilledQuantity.toFixed(),
      fillNotional: row.fillNotional.toFixed(),
      averageFillPrice: row.averageFillPrice?.toFixed() ?? null,
      positionId: row.positionId,
    },
    dirty: false,
  };
}

/**
 * Nets `fills` (in replay order) from `start` and assigns the resulting positions to `reuse` (the
 * stored positions of the replayed range, in book order; the first is `start`'s own row on the fast
 * path), new ids beyond them; stored positions left over are removed. Records positions and fill
 * moves in `writes`; returns the position of every fill.
 */
export function planBook(
  writes: LedgerWrites,
  book: { traderId: string; symbol: string },
  start: Position | null,
  reuse: Position[],
  fills: LedgerFill[],
): { positionOf: Map<string, string>; change: BookChange } {
  const steps = writes.steps;
  const m = start?.contractMultiplier ?? contractMultiplier(book.symbol);
  const segments = netBook(
    start ? { state: stateOf(start), averageEntryPrice: start.averageEntryPrice, openedAt: start.openedAt } : null,
    fills,
    m,
  );
  const positionOf = new Map<string, string>();
  const change: BookChange = {
    traderId: book.traderId,
    symbol: book.symbol,
    replayed: !start,
    replayedFrom: !start && fills.length ? fills[0].executedAt.toISOString() : null,
    positions: [],
    removedPositions: [],
    fillsMoved: 0,
  };
  let previous: Position | null = null;
  segments.forEach((segment, i) => {
    const stored = reuse[i];
    const row =
      stored ??
      Object.assign(new Position(), {
        id: newId(),
        traderId: book.traderId,
        symbol: book.symbol,
        version: 0,
        createdAt: new Date(),
      });
    const status = segment.closedAt ? PositionStatus.CLOSED : PositionStatus.OPEN;
    const before = stored ? positionSnapshot(stored) : null;
    const flippedFromId = segment.flipped ? previous!.id : i === 0 && stored && start ? stored.flippedFromId : null;
    const next = {
      quantity: segment.state.quantity,
      costBasis: segment.state.costBasis,
      realizedPnl: segment.state.realizedPnl,
      totalCommission: segment.state.totalCommission,
      averageEntryPrice: segment.averageEntryPrice,
      status,
      openedAt: segment.openedAt,
      closedAt: segment.closedAt,
      flippedFromId,
      contractMultiplier: m,
    };
    const after = snapshot({ state: segment.state, status, averageEntryPrice: segment.averageEntryPrice });
    const restructured =
      !!stored &&
      (stored.openedAt.getTime() !== next.openedAt.getTime() ||
        stored.flippedFromId !== flippedFromId ||
        !stored.contractMultiplier.eq(m));
    const changed =
      !stored ||
      restructured ||
      JSON.stringify(before) !== JSON.stringify(after) ||
      (stored.closedAt?.getTime() ?? null) !== (next.closedAt?.getTime() ?? null);
    Object.assign(row, next);
    writes.positions.set(row.id, { row, isNew: !stored, before, changed, restructured });
    if (changed) change.positions.push({ id: row.id, before, after });
    for (const f of segment.fills) {
      positionOf.set(f.id, row.id);
      const step = segment.steps.get(f);
      if (step) steps.set(f.id, step);
      if (!f.isNew && f.positionId !== row.id) {
        change.fillsMoved += 1;
        writes.moveFill(f, { positionId: row.id });
      }
      f.positionId = row.id;
    }
    previous = row;
  });
  for (const stored of reuse.slice(segments.length)) {
    writes.removedPositions.add(stored.id);
    writes.positions.delete(stored.id);
    change.removedPositions.push(stored.id);
  }
  return { positionOf, change };
}

/**
 * Where a replay of a book must start so that it covers event time `at` (a fill executed then, or
 * the fill `fillId` itself): the first fill of the position current at that point, walking back
 * through flips to a position that opened flat. Null: replay the whole book.
 */
async function replayStart(
  m: EntityManager,
  traderId: string,
  symbol: string,
  at: { executedAt: Date; arrival: number } | 'all',
): Promise<{ executedAt: Date; arrival: number } | null> {
  if (at === 'all') return null;
  const [row] = (await m.query(
    `WITH RECURSIVE prev AS (
       SELECT position_id FROM fills
       WHERE trader_id = $1 AND symbol = $2 AND position_id IS NOT NULL AND (executed_at, arrival) <= ($3::timestamptz, $4::bigint)
       ORDER BY executed_at DESC, arrival DESC LIMIT 1
     ),
     chain AS (
       SELECT p.id, p.flipped_from_id, 0 AS depth FROM positions p WHERE p.id = (SELECT position_id FROM prev)
       UNION ALL
       SELECT p.id, p.flipped_from_id, c.depth + 1 FROM positions p JOIN chain c ON p.id = c.flipped_from_id WHERE c.depth < 100000
     )
     SELECT f.executed_at, f.arrival::text AS arrival FROM fills f
     WHERE f.position_id = (SELECT id FROM chain ORDER BY depth DESC LIMIT 1)
     ORDER BY f.executed_at, f.arrival LIMIT 1`,
    [traderId, symbol, at.executedAt.toISOString(), Math.min(at.arrival, Number.MAX_SAFE_INTEGER)],
  )) as { executed_at: Date; arrival: string }[];
  return row ? { executedAt: row.executed_at, arrival: Number(row.arrival) } : null;
}

/**
 * Replays a book from the position current at `at` on (or all of it), with `extra` fills of this
 * request merged in: loads the range's effective fills, their orders and positions (locked; the
 * caller holds the book lock), nets, recomputes the totals and links of every order concerned, and
 * records every change and its log entries in `writes`. `changedOrders` are orders whose fill set
 * changed (new, corrected or busted fills): their totals are recomputed.
 */
export async function replayBook(
  m: EntityManager,
  writes: LedgerWrites,
  book: { traderId: string; symbol: string },
  at: { executedAt: Date; arrival: number } | 'all',
  extra: LedgerFill[],
  changedOrders: Set<string>,
  overrides: Map<string, LedgerFill> = new Map(),
): Promise<BookChange> {
  const from = await replayStart(m, book.traderId, book.symbol, at);
  const rows = (await m.query(
    `SELECT ${FILL_SELECT}
     WHERE f.trader_id = $1 AND f.symbol = $2
       AND ($3::timestamptz IS NULL OR (f.executed_at, f.arrival) >= ($3::timestamptz, $4::bigint) OR f.order_id = ANY($5::uuid[]))
     ORDER BY f.executed_at, f.arrival`,
    [book.traderId, book.symbol, from?.executedAt.toISOString() ?? null, from?.arrival ?? 0, [...changedOrders]],
  )) as Record<string, unknown>[];
  const inRange = (f: LedgerFill) =>
    !from ||
    f.executedAt.getTime() > from.executedAt.getTime() ||
    (f.executedAt.getTime() === from.executedAt.getTime() && f.arrival >= from.arrival);
  const stored = rows.map((r) => overrides.get(r.id as string) ?? ledgerFill(r));
  const range = [...stored.filter(inRange), ...extra].sort(compareFills);

  // The orders of the range (locked: the book lock is held, so this is the lock order) and the fills
  // of theirs that lie before the range.
  const orderIds = [...new Set([...range.map((f) => f.orderId), ...changedOrders])].filter(
    (id) => !writes.orders.has(id),
  );
  if (orderIds.length) {
    for (const r of (await m.query(`SELECT * FROM orders WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`, [
      orderIds,
    ])) as Record<string, unknown>[]) {
      const o = hydrate(m, Order, r);
      writes.orders.set(o.id, workingOrder(o));
    }
  }
  const rangeOrders = [...new Set(range.map((f) => f.orderId))];
  const missing = rangeOrders.filter((id) => !changedOrders.has(id));
  const before = stored.filter((f) => !inRange(f));
  if (from && missing.length) {
    const earlier = await loadLedgerFills(
      m,
      `f.order_id = ANY($1::uuid[]) AND (f.executed_at, f.arrival) < ($2::timestamptz, $3::bigint)`,
      [missing, from.executedAt.toISOString(), from.arrival],
    );
    before.push(...earlier.map((f) => overrides.get(f.id) ?? f));
  }

  // The stored positions of the range, in book order (by their first fill), locked.
  const positionIds: string[] = [];
  for (const f of range) if (f.positionId && !positionIds.includes(f.positionId)) positionIds.push(f.positionId);
  const positions = new Map<string, Position>();
  if (positionIds.length) {
    for (const r of (await m.query(`SELECT * FROM positions WHERE id = ANY($1::uuid[]) ORDER BY id FOR NO KEY UPDATE`, [
      positionIds,
    ])) as Record<string, unknown>[]) {
      const p = hydrate(m, Position, r);
      positions.set(p.id, p);
    }
  }
  // Only the book's own: a fill that points at another book's position (tampering) never rewrites it.
  const reuse = positionIds
    .map((id) => positions.get(id))
    .filter((p): p is Position => !!p && p.traderId === book.traderId && p.symbol === book.symbol);
  const effective = range.filter((f) => !f.busted);
  for (const f of range) {
    if (f.busted && (f.positionId !== null || !f.overfilled.isZero())) {
      writes.moveFill(f, { positionId: null, overfilled: new Dec(0) });
      f.positionId = null;
      f.overfilled = new Dec(0);
    }
  }
  const { positionOf, change } = planBook(writes, book, null, reuse, effective);

  // Orders: totals of those whose fills changed, links of every order of the range.
  const all = [...before, ...range].filter((f) => !f.busted).sort(compareFills);
  const byOrder = new Map<string, LedgerFill[]>();
  for (const f of all) byOrder.set(f.orderId, [...(byOrder.get(f.orderId) ?? []), f]);
  for (const id of new Set([...rangeOrders, ...changedOrders])) {
    const w = writes.orders.get(id);
    if (!w) continue;
    const fills = byOrder.get(id) ?? [];
    if (changedOrders.has(id)) {
      applyTotals(writes, w, fills);
    }
    const first = fills[0];
    const link = first ? (positionOf.get(first.id) ?? first.positionId) : w.row.positionId;
    if (link !== w.row.positionId && !(link === null && first === undefined)) {
      w.row.positionId = link;
      w.dirty = true;
    }
    if (w.row.positionId && writes.removedPositions.has(w.row.positionId)) {
      w.row.positionId = null;
      w.dirty = true;
    }
  }
  return change;
}

/** Recomputes an order's totals and the overfill of each of its fills (event order). */
export function applyTotals(writes: LedgerWrites, w: WorkingOrder, fills: LedgerFill[]): void {
  const totals = orderTotals(w.row, fills);
  fills.forEach((f, i) => {
    if (!totals.overfill[i].eq(f.overfilled)) {
      if (!f.isNew) writes.moveFill(f, { overfilled: totals.overfill[i] });
      f.overfilled = totals.overfill[i];
    }
  });
  Object.assign(w.row, {
    filledQuantity: totals.filledQuantity,
    fillNotional: totals.fillNotional,
    overfilledQuantity: totals.overfilledQuantity,
    averageFillPrice: totals.averageFillPrice,
    status: totals.status,
    filledAt: totals.filledAt,
  });
  w.dirty = true;
}

/**
 * One REPLAY entry for each order whose fills moved, whose link changed or whose fills became
 * exceptions because of a replay, except the orders in `skip` (their own entry describes it).
 */
export function replayEntries(
  writes: LedgerWrites,
  changes: BookChange[],
  reason: string,
  occurredAt: Date,
  skip: Set<string>,
  /** Every entry this action (a reconciliation logs RECOVERED), instead of one chosen per change. */
  action?: ExecutionLogAction,
): void {
  const moved = new Map<string, JsonObject[]>();
  for (const [fillId, v] of writes.movedFills) {
    const item: JsonObject = {};
    if (v.from !== v.positionId) Object.assign(item, { from: v.from, to: v.positionId });
    if (!v.overfilled.eq(v.overfilledBefore)) {
      Object.assign(item, { overfilledBefore: v.overfilledBefore.toFixed(), overfilled: v.overfilled.toFixed() });
    }
    if (Object.keys(item).length) moved.set(v.orderId, [...(moved.get(v.orderId) ?? []), { fillId, ...item }]);
  }
  for (const w of writes.orders.values()) {
    const id = w.row.id;
    if (skip.has(id)) continue;
    const fills = moved.get(id) ?? [];
    const relinked = w.before.positionId !== w.row.positionId;
    // Notional and average price move with the quantities, except when they alone were wrong.
    const pricesChanged =
      w.before.fillNotional !== w.row.fillNotional.toFixed() ||
      w.before.averageFillPrice !== (w.row.averageFillPrice?.toFixed() ?? null);
    const totalsChanged =
      pricesChanged ||
      w.before.status !== w.row.status ||
      w.before.filledQuantity !== w.row.filledQuantity.toFixed() ||
      w.before.overfilledQuantity !== w.row.overfilledQuantity.toFixed();
    if (!fills.length && !relinked && !totalsChanged) continue;
    const newException = fills.some((f) => f.overfilled !== undefined && f.overfilledBefore === '0');
    writes.logs.push({
      orderId: id,
      traderId: w.row.traderId,
      action: action
        ? action
        : relinked
          ? ExecutionLogAction.POSITION_LINKED
          : newException
            ? ExecutionLogAction.EXCEPTION
            : ExecutionLogAction.RECOVERED,
      fromStatus: w.before.status as Order['status'],
      toStatus: w.row.status,
      reason,
      details: {
        event: 'REPLAY',
        previousPositionId: w.before.positionId,
        positionId: w.row.positionId,
        fills,
        ...(totalsChanged
          ? {
              before: {
                status: w.before.status,
                filledQuantity: w.before.filledQuantity,
                overfilledQuantity: w.before.overfilledQuantity,
                ...(pricesChanged
                  ? { fillNotional: w.before.fillNotional, averageFillPrice: w.before.averageFillPrice }
                  : {}),
              },
              after: {
                status: w.row.status,
                filledQuantity: w.row.filledQuantity.toFixed(),
                overfilledQuantity: w.row.overfilledQuantity.toFixed(),
                ...(pricesChanged
                  ? {
                      fillNotional: w.row.fillNotional.toFixed(),
                      averageFillPrice: w.row.averageFillPrice?.toFixed() ?? null,
                    }
                  : {}),
              },
            }
          : {}),
        books: changes.map(bookChangeJson),
      },
      occurredAt,
    });
  }
}

export function bookChangeJson(c: BookChange): JsonObject {
  return {
    traderId: c.traderId,
    symbol: c.symbol,
    replayed: c.replayed,
    replayedFrom: c.replayedFrom,
    positions: c.positions,
    removedPositions: c.removedPositions,
    fillsMoved: c.fillsMoved,
  } as unknown as JsonObject;
}
