/**
 * The data of `npm run bench:compliance`: traders, orders with realistic outcomes, their fills, the
 * positions that are the replay of each book, and every order's sealed, chained execution log — the
 * rows the server would have written had it received the same events one request at a time, in event
 * order (submit, accept, each execution, cancel / reject / expire). Written set-based: one statement
 * per table and chunk of whole books, the log through the chain trigger (`logInsertSql` /
 * `logRowsJson`, the server's own writer, so every entry is sealed with this process's seal key —
 * call `setSealKey` first). Positions are computed book by book with `netBook` (the reference), orders'
 * totals with `orderTotals`; `checkComplianceData` checks a sample with the server's own
 * `recalculateBook` and `verifyOrderLog`, and `replayThroughServices` replays sample books through the
 * server's own services and compares every row and log entry.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DataSource, EntityManager } from 'typeorm';
import { Dec } from '../src/decimal';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { type Actor, type LogEntry, logInsertSql, logRowsJson } from '../src/execution-log/execution-log.service';
import type { LogKey } from '../src/execution-log/log-key';
import { verifyOrderLog } from '../src/execution-log/log-verification.service';
import { FillException, Liquidity } from '../src/fill/fill.entity';
import { RecordExecutionInput } from '../src/fill/fill.inputs';
import { applyExecutions } from '../src/fill/fill.service';
import { newId } from '../src/ids';
import { OrderSide, OrderStatus, OrderType, TimeInForce } from '../src/order/order.entity';
import { changeOrderStatus, type OrderEvent, submitOrder } from '../src/order/order.service';
import { derivedStatus, orderTotals } from '../src/order/order.state';
import { bookChangeJson, type BookChange } from '../src/position/book.service';
import { contractMultiplier } from '../src/position/instrument';
import { applyFill, averageEntryPrice, type BookFill, FLAT, netBook } from '../src/position/position.math';
import { recalculateBook } from '../src/position/position.service';
import { APPLICATION_ROLE } from '../src/request-db';
import type { JsonObject } from '../src/scalars';

export interface ComplianceDataOptions {
  orders: number;
  /** Default: one per 1,000 orders. */
  traders?: number;
  /** Default 10 (at most the 25 instruments below). */
  symbolsPerTrader?: number;
  /** Plant the known problems of `PlantedAnomaly` (default false). */
  anomalies?: boolean;
  /** Share of the orders that the first trader holds (a large account; default: an even share). */
  largestTraderShare?: number;
  /** Orders per write transaction, in whole books (default 1,000: about 4,500 log entries). */
  ordersPerChunk?: number;
  /** Connections writing chunks at once (default 2). */
  writers?: number;
  /**
   * What the orders of a book with an open position do to it, as shares summing to 1 (default 0.35
   * increase, 0.30 reduce part of it, 0.25 close it, 0.10 flip it). Without closes and flips, each book
   * is about one long-lived position.
   */
  netting?: { increase: number; reduce: number; close: number; flip: number };
  /** The fills of a FILLED order: one of these counts, at random (default [1, 1, 1, 2, 2, 3]). */
  fillsPerFilledOrder?: number[];
  seed?: number;
  /** Progress and the summary line (default console.log). */
  log?: (line: string) => void;
}

/** A problem planted on purpose, named by the data-quality report's issue type that must find it. */
export interface PlantedAnomaly {
  type: string;
  count: number;
  what: string;
  /** Other issue types the same rows may also be reported as. */
  alsoAs: string[];
  ids: string[];
  books: Book[];
}

export interface Book {
  traderId: string;
  symbol: string;
}

export interface ComplianceData {
  traders: number;
  books: Book[];
  orders: number;
  fills: number;
  positions: number;
  entries: number;
  ordersByStatus: Record<string, number>;
  /** The event-time range of the data (from included, to excluded), and one day in its middle. */
  from: Date;
  to: Date;
  day: { from: Date; to: Date };
  seconds: number;
  rowsPerSecond: number;
  planted: PlantedAnomaly[];
}

/** Who wrote everything: the execution gateway (service role), as for orders it submits for traders. */
export const GATEWAY: Actor = { actor: 'execution-gateway', source: 'API' };

const DAY_MS = 86_400_000;
/** The data spans SPAN_DAYS days from START, every book evenly. */
const START = Date.UTC(2026, 8, 1);
const SPAN_DAYS = 60;

interface Instrument {
  symbol: string;
  /** Decimal places of a quantity. */
  scale: number;
  /** Starting price in cents. */
  cents: number;
  /** Order size in quantity units (10^-scale). */
  lot: [number, number];
  venues: string[];
  commission: (quantity: Dec, price: Dec) => Dec;
}

const equity = (symbol: string, cents: number): Instrument => ({
  symbol,
  scale: 0,
  cents,
  lot: [1, 400],
  venues: ['XNAS', 'ARCX', 'BATS', 'EDGX', 'IEXG'],
  commission: (q) => Dec.max('0.35', q.times('0.0035')),
});
const crypto = (symbol: string, cents: number): Instrument => ({
  symbol,
  scale: 4,
  cents,
  lot: [10, 30_000],
  venues: ['CBSE'],
  commission: (q, p) => q.times(p).times('0.001'),
});
const option = (symbol: string, cents: number): Instrument => ({
  symbol,
  scale: 0,
  cents,
  lot: [1, 25],
  venues: ['XCBO', 'XPHL', 'AMXO'],
  commission: (q) => q.times('0.65'),
});

/** 20 equities, 2 crypto pairs (nine-decimal quantities), 3 OCC options (multiplier 100). */
const INSTRUMENTS: Instrument[] = [
  ...(
    [
      ['AAPL', 19000],
      ['MSFT', 41000],
      ['NVDA', 12000],
      ['AMZN', 18500],
      ['GOOGL', 17800],
      ['META', 56000],
      ['TSLA', 25000],
      ['AMD', 13800],
      ['JPM', 21000],
      ['XOM', 11500],
      ['SPY', 56000],
      ['QQQ', 48000],
      ['NFLX', 68000],
      ['INTC', 3100],
      ['BAC', 3900],
      ['KO', 6200],
      ['DIS', 9500],
      ['PFE', 2800],
      ['WMT', 8000],
      ['COST', 89000],
    ] as const
  ).map(([s, c]) => equity(s, c)),
  crypto('BTC/USD', 6_789_012),
  crypto('ETH/USD', 345_000),
  option('SPY261218C00600000', 1250),
  option('AAPL261218P00180000', 640),
  option('QQQ270115C00500000', 2100),
];

/** What happens to an order, with its share of all orders. */
type Outcome =
  'FILLED' | 'PARTIAL' | 'CANCELLED_PARTIAL' | 'CANCELLED' | 'REJECTED' | 'EXPIRED' | 'ACCEPTED' | 'PENDING';
const OUTCOMES: [Outcome, number][] = [
  ['FILLED', 0.81],
  ['PARTIAL', 0.05],
  ['CANCELLED_PARTIAL', 0.04],
  ['CANCELLED', 0.025],
  ['REJECTED', 0.03],
  ['EXPIRED', 0.02],
  ['ACCEPTED', 0.015],
  ['PENDING', 0.01],
];
/**
 * How an order moves an open position, by a draw `r` uniform in [0, 1): below `increase` it increases
 * it, below `reduce` reduces part of it, below `close` closes it; the rest flip it.
 */
interface Netting {
  increase: number;
  reduce: number;
  close: number;
}
const NETTING: Netting = { increase: 0.35, reduce: 0.65, close: 0.9 };
const FILLS_PER_FILLED_ORDER = [1, 1, 1, 2, 2, 3];

/** The shape of the books: how orders move positions and how many fills a filled order gets. */
interface BookShape {
  netting: Netting;
  fillsPerFilledOrder: number[];
}

/** Orders that get one fill beyond their quantity (an OVERFILL exception), with `anomalies`. */
const OVERFILLS = 3;

/** mulberry32: a small seeded generator, so the same options give the same data. */
function random(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  return { next, int, pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)] };
}
type Random = ReturnType<typeof random>;

const units = (n: number, scale: number): Dec => new Dec(`${n}e-${scale}`);

/** `total` units in `parts` positive parts. */
function split(rnd: Random, total: number, parts: number): number[] {
  const n = Math.max(1, Math.min(parts, total));
  const out: number[] = [];
  let left = total;
  for (let i = n - 1; i > 0; i--) {
    const part = rnd.int(1, left - i);
    out.push(part);
    left -= part;
  }
  out.push(left);
  return out;
}

interface GenFill extends BookFill {
  id: string;
  orderId: string;
  execId: string;
  venue: string;
  liquidity: Liquidity;
  quantity: Dec;
  createdAt: Date;
  arrival: number;
  positionId: string | null;
  /** Opened a position from a flat book: the server's fast path reports it as a replay from this fill. */
  fromFlat: boolean;
}

interface GenOrder {
  id: string;
  clientOrderId: string;
  side: OrderSide;
  type: OrderType;
  tif: TimeInForce;
  quantity: Dec;
  limit: Dec | null;
  submittedAt: Date;
  acceptedAt: Date | null;
  fills: GenFill[];
  end: { status: OrderStatus.CANCELLED | OrderStatus.REJECTED | OrderStatus.EXPIRED; at: Date } | null;
}

/** Everything one chunk writes, as the JSON parameters of its statements. */
interface Chunk {
  positions: Record<string, unknown>[];
  orders: Record<string, unknown>[];
  fills: Record<string, unknown>[];
  entries: LogEntry[];
  byStatus: Record<string, number>;
}

const END_REASON = {
  [OrderStatus.CANCELLED]: { reason: 'Cancelled by the trader', errorCode: null },
  [OrderStatus.REJECTED]: { reason: 'Insufficient buying power', errorCode: 'INSUFFICIENT_FUNDS' },
  [OrderStatus.EXPIRED]: { reason: 'Day order not filled by the close', errorCode: null },
} as const;
const END_ACTION = {
  [OrderStatus.CANCELLED]: ExecutionLogAction.CANCELLED,
  [OrderStatus.REJECTED]: ExecutionLogAction.REJECTED,
  [OrderStatus.EXPIRED]: ExecutionLogAction.EXPIRED,
} as const;

/** The generator's state across books: orders so far (their client ids), and the arrival order of fills (their exec ids). */
interface Sequence {
  orders: number;
  arrival: number;
}

/**
 * One book: its orders in event order (each order's events end before the next one is submitted),
 * netted with `netBook`, the orders' totals with `orderTotals`, and the log entries each request
 * would have written (README "Recording executions").
 */
function generateBook(
  rnd: Random,
  book: Book,
  inst: Instrument,
  orderCount: number,
  seq: Sequence,
  overfillAt: number,
  shape: BookShape,
  out: Chunk,
): void {
  const { increase, reduce, close } = shape.netting;
  const m = contractMultiplier(book.symbol);
  const slot = (SPAN_DAYS * DAY_MS) / orderCount;
  const window = Math.max(30, Math.min(slot / 2, 600_000));
  let cents = inst.cents;
  let position = 0; // in quantity units, signed
  const orders: GenOrder[] = [];
  for (let k = 0; k < orderCount; k++) {
    const overfill = k === overfillAt;
    let outcome: Outcome = 'FILLED';
    if (!overfill) {
      let r = rnd.next();
      outcome = OUTCOMES.find(([, share]) => (r -= share) < 0)?.[0] ?? 'FILLED';
    }
    // Opens, increases, reduces, closes and flips, in realistic proportions.
    const lot = rnd.int(inst.lot[0], inst.lot[1]);
    const abs = Math.abs(position);
    let side: OrderSide;
    let quantity = lot;
    if (position === 0) side = rnd.next() < 0.6 ? OrderSide.BUY : OrderSide.SELL;
    else {
      const toward = position > 0 ? OrderSide.BUY : OrderSide.SELL;
      const away = position > 0 ? OrderSide.SELL : OrderSide.BUY;
      const r = rnd.next();
      side = r < increase ? toward : away;
      if (r >= increase && r < reduce && abs >= 2) quantity = rnd.int(1, abs - 1);
      else if (r >= increase && r < close) quantity = abs;
      else if (r >= close) quantity = abs + lot;
    }
    const partial =
      outcome === 'PARTIAL' || outcome === 'CANCELLED_PARTIAL' || (outcome === 'EXPIRED' && rnd.next() < 0.5);
    if (partial && quantity < 2) quantity = 2;
    const fillUnits =
      outcome === 'FILLED'
        ? split(rnd, quantity, rnd.pick(shape.fillsPerFilledOrder))
        : partial
          ? split(rnd, rnd.int(1, quantity - 1), rnd.pick([1, 1, 2]))
          : [];
    if (overfill) fillUnits.push(rnd.int(1, Math.max(1, Math.floor(quantity / 10))));
    position += (side === OrderSide.BUY ? 1 : -1) * fillUnits.reduce((a, b) => a + b, 0);

    cents = Math.max(5, Math.round(cents * (1 + (rnd.next() - 0.5) * 0.02)));
    const type = rnd.next() < 0.6 ? OrderType.LIMIT : OrderType.MARKET;
    const end =
      outcome === 'REJECTED'
        ? OrderStatus.REJECTED
        : outcome === 'CANCELLED' || outcome === 'CANCELLED_PARTIAL'
          ? OrderStatus.CANCELLED
          : outcome === 'EXPIRED'
            ? OrderStatus.EXPIRED
            : null;
    const accepted = outcome !== 'PENDING' && outcome !== 'REJECTED';
    // Event times: submission in this order's slot, then the rest within half of it, 1 ms apart at least.
    const submittedAt = START + Math.floor(k * slot + rnd.next() * slot * 0.1);
    const offsets = Array.from({ length: (accepted ? 1 : 0) + fillUnits.length + (end ? 1 : 0) }, () =>
      Math.floor(rnd.next() * window),
    ).sort((a, b) => a - b);
    offsets.forEach((o, i) => (offsets[i] = Math.max(o, i ? offsets[i - 1] + 1 : 1)));
    let e = 0;
    const at = () => new Date(submittedAt + offsets[e++]);
    const id = newId();
    const order: GenOrder = {
      id,
      clientOrderId: `cb-${seq.orders++}`,
      side,
      type,
      tif: rnd.next() < 0.7 ? TimeInForce.DAY : TimeInForce.GTC,
      quantity: units(quantity, inst.scale),
      limit: type === OrderType.LIMIT ? units(Math.max(1, cents + (side === OrderSide.BUY ? 10 : -10)), 2) : null,
      submittedAt: new Date(submittedAt),
      acceptedAt: accepted ? at() : null,
      fills: [],
      end: null,
    };
    for (const q of fillUnits) {
      const quantity = units(q, inst.scale);
      const price = units(Math.max(1, cents + rnd.int(-3, 3)), 2);
      const executedAt = at();
      const arrival = ++seq.arrival;
      const venue = rnd.pick(inst.venues);
      order.fills.push({
        id: newId(),
        orderId: id,
        execId: `${venue}-${arrival}`,
        venue,
        liquidity: type === OrderType.LIMIT ? Liquidity.MAKER : Liquidity.TAKER,
        quantity,
        signedQuantity: side === OrderSide.BUY ? quantity : quantity.negated(),
        price,
        commission: inst.commission(quantity, price).toDecimalPlaces(9, Dec.ROUND_HALF_EVEN),
        executedAt,
        createdAt: new Date(executedAt.getTime() + 20 + rnd.int(0, 60)),
        arrival,
        positionId: null,
        fromFlat: false,
      });
    }
    if (end) order.end = { status: end, at: at() };
    orders.push(order);
  }

  // Positions: the replay of the book (its fills are already in event and arrival order).
  const fills = orders.flatMap((o) => o.fills);
  const segments = netBook(null, fills, m);
  const ids = segments.map(() => newId());
  segments.forEach((s, i) => {
    for (const f of s.fills) f.positionId = ids[i];
    if (!s.flipped) s.fills[0].fromFlat = true;
    const closedByFlip = segments[i + 1]?.flipped ?? false;
    const last = closedByFlip ? segments[i + 1].fills[0] : s.fills[s.fills.length - 1];
    out.positions.push({
      id: ids[i],
      trader_id: book.traderId,
      symbol: book.symbol,
      quantity: s.state.quantity.toFixed(),
      average_entry_price: s.averageEntryPrice.toFixed(),
      cost_basis: s.state.costBasis.toFixed(),
      realized_pnl: s.state.realizedPnl.toFixed(),
      total_commission: s.state.totalCommission.toFixed(),
      status: s.closedAt ? 'CLOSED' : 'OPEN',
      opened_at: s.openedAt.toISOString(),
      closed_at: s.closedAt?.toISOString() ?? null,
      flipped_from_id: s.flipped ? ids[i - 1] : null,
      contract_multiplier: m.toFixed(),
      rules_version: 2,
      created_at: s.fills[0].createdAt.toISOString(),
      updated_at: last.createdAt.toISOString(),
      version: s.fills.length + (closedByFlip ? 1 : 0),
    });
  });
  const steps = new Map(segments.flatMap((s) => [...s.steps]));

  for (const o of orders) writeOrder(book, m, o, steps, out);
}

/** The order's row, its fills' rows and its log entries, as the requests of its events would have written them. */
function writeOrder(
  book: Book,
  m: Dec,
  o: GenOrder,
  steps: Map<GenFill, { change: string; quantity: Dec }>,
  out: Chunk,
): void {
  const base = o.end?.status ?? (o.acceptedAt || o.fills.length ? OrderStatus.ACCEPTED : OrderStatus.PENDING);
  const totals = orderTotals({ baseStatus: base, quantity: o.quantity }, o.fills);
  const entry = (e: Omit<LogEntry, 'orderId' | 'traderId'>) =>
    out.entries.push({ orderId: o.id, traderId: book.traderId, ...e });

  entry({
    action: ExecutionLogAction.SUBMITTED,
    fromStatus: null,
    toStatus: OrderStatus.PENDING,
    details: null,
    occurredAt: o.submittedAt,
  });
  let status = OrderStatus.PENDING;
  if (o.acceptedAt) {
    entry({
      action: ExecutionLogAction.ACCEPTED,
      fromStatus: status,
      toStatus: OrderStatus.ACCEPTED,
      details: null,
      occurredAt: o.acceptedAt,
    });
    status = OrderStatus.ACCEPTED;
  }
  // Each execution, as `applyExecutions` logs one on the fast path (every fill is the latest of its book).
  let sum = new Dec(0);
  o.fills.forEach((f, i) => {
    const before = sum;
    sum = sum.plus(f.quantity);
    const after = derivedStatus(OrderStatus.ACCEPTED, sum, o.quantity);
    const overfilled = totals.overfill[i];
    const completes = before.lt(o.quantity) && sum.gte(o.quantity);
    const step = steps.get(f)!;
    const details: JsonObject = {
      event: 'ARRIVAL',
      fillId: f.id,
      execId: f.execId,
      venue: f.venue,
      quantity: f.quantity.toFixed(),
      price: f.price.toFixed(),
      commission: f.commission.toFixed(),
      executedAt: f.executedAt.toISOString(),
      positionId: f.positionId,
      positionChange: step.change,
      positionQuantity: step.quantity.toFixed(),
    };
    if (overfilled.gt(0))
      Object.assign(details, { exception: FillException.OVERFILL, overfilledQuantity: overfilled.toFixed() });
    if (f.fromFlat) details.replay = openedFromFlat(book, m, f);
    entry({
      action: overfilled.gt(0)
        ? ExecutionLogAction.EXCEPTION
        : completes
          ? ExecutionLogAction.FILLED
          : ExecutionLogAction.EXECUTED,
      fromStatus: status,
      toStatus: after,
      reason: overfilled.gt(0)
        ? `The fill takes order ${o.id} beyond its quantity ${o.quantity.toFixed()} by ${overfilled.toFixed()}; recorded and applied.`
        : null,
      details,
      occurredAt: f.executedAt,
    });
    status = after;
    if (before.isZero()) {
      entry({
        action: ExecutionLogAction.POSITION_LINKED,
        fromStatus: status,
        toStatus: status,
        reason: 'Linked to the position of its first fill',
        details: { event: 'ARRIVAL', previousPositionId: null, positionId: f.positionId },
        occurredAt: f.executedAt,
      });
    }
    out.fills.push({
      id: f.id,
      order_id: o.id,
      trader_id: book.traderId,
      symbol: book.symbol,
      position_id: f.positionId,
      exec_id: f.execId,
      quantity: f.quantity.toFixed(),
      price: f.price.toFixed(),
      commission: f.commission.toFixed(),
      liquidity: f.liquidity,
      venue: f.venue,
      executed_at: f.executedAt.toISOString(),
      created_at: f.createdAt.toISOString(),
      arrival: f.arrival,
      arrival_exception: null,
      overfilled_quantity: overfilled.toFixed(),
    });
  });
  if (o.end) {
    const { reason, errorCode } = END_REASON[o.end.status];
    entry({
      action: END_ACTION[o.end.status],
      fromStatus: status,
      toStatus: o.end.status,
      reason,
      errorCode,
      details: null,
      occurredAt: o.end.at,
    });
    status = o.end.status;
  }
  if (status !== totals.status)
    throw new Error(`order ${o.id}: its log ends ${status}, its totals say ${totals.status}`);
  out.byStatus[status] = (out.byStatus[status] ?? 0) + 1;
  const lastFill = o.fills[o.fills.length - 1];
  const updatedAt = [o.submittedAt, o.acceptedAt, lastFill?.createdAt, o.end?.at]
    .filter((d): d is Date => !!d)
    .reduce((a, b) => (a > b ? a : b));
  out.orders.push({
    id: o.id,
    trader_id: book.traderId,
    position_id: o.fills[0]?.positionId ?? null,
    client_order_id: o.clientOrderId,
    symbol: book.symbol,
    side: o.side,
    order_type: o.type,
    time_in_force: o.tif,
    quantity: o.quantity.toFixed(),
    price: o.limit?.toFixed() ?? null,
    status,
    base_status: base,
    filled_quantity: totals.filledQuantity.toFixed(),
    overfilled_quantity: totals.overfilledQuantity.toFixed(),
    fill_notional: totals.fillNotional.toFixed(),
    average_fill_price: totals.averageFillPrice?.toFixed() ?? null,
    filled_at: totals.filledAt?.toISOString() ?? null,
    source: 'API',
    created_at: o.submittedAt.toISOString(),
    updated_at: updatedAt.toISOString(),
    submitted_at: o.submittedAt.toISOString(),
    canceled_at: o.end?.status === OrderStatus.CANCELLED ? o.end.at.toISOString() : null,
    expired_at: o.end?.status === OrderStatus.EXPIRED ? o.end.at.toISOString() : null,
  });
}

/**
 * What the server's fast path logs for a fill into a flat book (`planBook` from no open position reports
 * `replayed: true` and the position it opened): the book change of that one fill.
 */
function openedFromFlat(book: Book, m: Dec, f: GenFill): JsonObject {
  const state = applyFill(FLAT, f, m).state;
  const change: BookChange = {
    traderId: book.traderId,
    symbol: book.symbol,
    replayed: true,
    replayedFrom: f.executedAt.toISOString(),
    positions: [
      {
        id: f.positionId!,
        before: null,
        after: {
          quantity: state.quantity.toFixed(),
          averageEntryPrice: averageEntryPrice(state, m)!.toFixed(),
          costBasis: state.costBasis.toFixed(),
          realizedPnl: state.realizedPnl.toFixed(),
          totalCommission: state.totalCommission.toFixed(),
          status: 'OPEN',
        },
      },
    ],
    removedPositions: [],
    fillsMoved: 0,
  };
  return bookChangeJson(change);
}

const POSITION_COLUMNS =
  'id, trader_id, symbol, quantity, average_entry_price, cost_basis, realized_pnl, total_commission, status, opened_at, ' +
  'closed_at, flipped_from_id, contract_multiplier, rules_version, created_at, updated_at, version';
const ORDER_COLUMNS =
  'id, trader_id, position_id, client_order_id, symbol, side, order_type, time_in_force, quantity, price, status, base_status, ' +
  'filled_quantity, overfilled_quantity, fill_notional, average_fill_price, filled_at, source, created_at, updated_at, ' +
  'submitted_at, canceled_at, expired_at';
const FILL_COLUMNS =
  'id, order_id, trader_id, symbol, position_id, exec_id, quantity, price, commission, liquidity, venue, executed_at, ' +
  'created_at, arrival, arrival_exception, overfilled_quantity';
const insertSql = (table: string, columns: string) =>
  `INSERT INTO ${table} (${columns}) SELECT ${columns} FROM jsonb_populate_recordset(NULL::${table}, $1::jsonb)`;

/** One chunk in one transaction: positions, orders, fills, then the log through the chain trigger. */
async function writeChunk(ds: DataSource, json: { positions: string; orders: string; fills: string; entries: string }) {
  await ds.transaction(async (m) => {
    // A build, not a trade: no need to wait for each commit's flush.
    await m.query(`SET LOCAL synchronous_commit = off; SET LOCAL tradetrail.role = 'admin'`);
    await m.query(insertSql('positions', POSITION_COLUMNS), [json.positions]);
    await m.query(insertSql('orders', ORDER_COLUMNS), [json.orders]);
    await m.query(insertSql('fills', FILL_COLUMNS), [json.fills]);
    await m.query(logInsertSql('$1'), [json.entries]);
  });
}

/** Orders per book: the first trader's books share `share` of them, the other books the rest, evenly. */
function orderCounts(orders: number, traders: number, perTrader: number, share: number): number[] {
  const even = (total: number, n: number) =>
    Array.from({ length: n }, (_, i) => Math.floor(total / n) + (i < total % n ? 1 : 0));
  const first = traders > 1 && share > 0 ? Math.round(orders * share) : 0;
  const counts = first
    ? [...even(first, perTrader), ...even(orders - first, (traders - 1) * perTrader)]
    : even(orders, traders * perTrader);
  if (counts.some((c) => c < 1)) throw new RangeError(`${orders} orders cannot fill ${traders * perTrader} books`);
  return counts;
}

/**
 * Fills a freshly migrated database (see the file comment). The process seal key must be set
 * (`setSealKey`): entries are sealed as the server seals them.
 */
export async function buildComplianceData(ds: DataSource, opts: ComplianceDataOptions): Promise<ComplianceData> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const traderCount = opts.traders ?? Math.max(1, Math.ceil(opts.orders / 1000));
  const perTrader = opts.symbolsPerTrader ?? Math.min(10, INSTRUMENTS.length);
  if (perTrader < 1 || perTrader > INSTRUMENTS.length) {
    throw new RangeError(`symbolsPerTrader must be 1 to ${INSTRUMENTS.length}`);
  }
  const bookCount = traderCount * perTrader;
  const counts = orderCounts(opts.orders, traderCount, perTrader, opts.largestTraderShare ?? 0);
  const chunkOrders = opts.ordersPerChunk ?? 1000;
  const seed = opts.seed ?? 20261125;
  const mix = opts.netting;
  if (mix && Math.abs(mix.increase + mix.reduce + mix.close + mix.flip - 1) > 1e-9) {
    throw new RangeError('the netting shares must sum to 1');
  }
  const shape: BookShape = {
    netting: mix
      ? { increase: mix.increase, reduce: mix.increase + mix.reduce, close: mix.increase + mix.reduce + mix.close }
      : NETTING,
    fillsPerFilledOrder: opts.fillsPerFilledOrder ?? FILLS_PER_FILLED_ORDER,
  };
  const t0 = Date.now();

  const traderIds = Array.from({ length: traderCount }, () => newId());
  await ds.transaction(async (m) => {
    await m.query(`SET LOCAL tradetrail.role = 'admin'`);
    await m.query(
      `INSERT INTO traders (id, name, external_ref, created_at)
       SELECT id, 'Bench trader ' || n, 'CB-' || n, $2 FROM unnest($1::uuid[]) WITH ORDINALITY AS t(id, n)`,
      [traderIds, new Date(START - 30 * DAY_MS).toISOString()],
    );
  });

  const books: Book[] = [];
  const seq: Sequence = { orders: 0, arrival: 0 };
  const totals = { orders: 0, fills: 0, positions: 0, entries: 0 };
  const byStatus: Record<string, number> = {};
  // Chunks are written by `writers` connections at once (books are independent), while the next is generated.
  const writers = opts.writers ?? 2;
  const writing: Promise<void>[] = [];
  let chunk: Chunk | null = null;
  const flush = async (c: Chunk) => {
    // Seal while the previous chunk is being written; send this one when it is done.
    const json = {
      positions: JSON.stringify(c.positions),
      orders: JSON.stringify(c.orders),
      fills: JSON.stringify(c.fills),
      entries: logRowsJson(GATEWAY, c.entries),
    };
    totals.orders += c.orders.length;
    totals.fills += c.fills.length;
    totals.positions += c.positions.length;
    totals.entries += c.entries.length;
    for (const [s, n] of Object.entries(c.byStatus)) byStatus[s] = (byStatus[s] ?? 0) + n;
    if (writing.length >= writers) await writing.shift();
    const write = writeChunk(ds, json);
    write.catch(() => undefined); // awaited later; never an unhandled rejection meanwhile
    writing.push(write);
  };
  let lastReport = 0;
  for (let b = 0; b < bookCount; b++) {
    const book = { traderId: traderIds[Math.floor(b / perTrader)], symbol: '' };
    const inst = INSTRUMENTS[(Math.floor(b / perTrader) * 7 + (b % perTrader)) % INSTRUMENTS.length];
    book.symbol = inst.symbol;
    books.push(book);
    const count = counts[b];
    chunk ??= { positions: [], orders: [], fills: [], entries: [], byStatus: {} };
    // The overfills go to the last books (small ones: the first trader may be a large account).
    const overfillAt = opts.anomalies && b >= bookCount - OVERFILLS ? Math.min(4, count - 1) : -1;
    generateBook(random(seed * 7919 + b), book, inst, count, seq, overfillAt, shape, chunk);
    if (chunk.orders.length >= chunkOrders || b === bookCount - 1) {
      await flush(chunk);
      chunk = null;
      if (Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        log(`  building: ${totals.orders} of ${opts.orders} orders (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
      }
    } else if (b % 4 === 3) await nextTurn(); // let the statements of the previous chunk go out
  }
  await Promise.all(writing);

  // Fills the server records next arrive after these.
  await ds.query(`SELECT setval('fills_arrival_seq', $1::bigint + 1, false)`, [seq.arrival]);
  const planted = opts.anomalies ? await plantAnomalies(ds) : [];
  const seconds = (Date.now() - t0) / 1000;
  const rows = traderCount + totals.orders + totals.fills + totals.positions + totals.entries;
  log(
    `  built ${totals.orders} orders, ${totals.fills} fills, ${totals.positions} positions, ${totals.entries} log entries ` +
      `(${traderCount} traders, ${bookCount} books) in ${seconds.toFixed(1)} s = ${Math.round(rows / seconds)} rows/s`,
  );
  const mid = START + Math.floor(SPAN_DAYS / 2) * DAY_MS;
  return {
    traders: traderCount,
    books,
    ...totals,
    ordersByStatus: byStatus,
    from: new Date(START),
    to: new Date(START + (SPAN_DAYS + 1) * DAY_MS),
    day: { from: new Date(mid), to: new Date(mid + DAY_MS) },
    seconds,
    rowsPerSecond: rows / seconds,
    planted,
  };
}

/**
 * The known problems, planted as someone with the database's superuser password would (no trigger
 * guards these tables; CHECK constraints still hold, so the values stay legal). The overfills were
 * written by the build itself, as the server records them: valid data that the report lists for review.
 */
async function plantAnomalies(ds: DataSource): Promise<PlantedAnomaly[]> {
  return ds.transaction(async (m) => {
    await m.query(`SET LOCAL tradetrail.role = 'admin'`);
    // The books of the overfills stay untouched: they are replayed through the services as they are.
    const spared = `(trader_id, symbol) NOT IN (SELECT trader_id, symbol FROM fills WHERE overfilled_quantity > 0)`;
    // Victims spread over the books: ids are time-ordered, so the first ones by id would all be the
    // first book's (a hash of the id orders them at random, the same way for the same data).
    const scattered = `ORDER BY md5(id::text)`;
    type Hit = { id: string; trader_id: string; symbol: string };
    const hits = (rows: Hit[]) => ({
      ids: rows.map((r) => r.id),
      books: rows.map((r) => ({ traderId: r.trader_id, symbol: r.symbol })),
    });
    const unlinked = (await m.query(
      `UPDATE orders o SET position_id = NULL
       WHERE o.id IN (SELECT id FROM orders WHERE status = 'FILLED' AND position_id IS NOT NULL AND ${spared}
                      ${scattered} LIMIT 10)
       RETURNING o.id, o.trader_id, o.symbol`,
    )) as [Hit[], number];
    const pnl = (await m.query(
      `UPDATE positions p SET realized_pnl = realized_pnl + 1.23
       WHERE p.id IN (SELECT id FROM positions WHERE ${spared} ${scattered} LIMIT 5)
       RETURNING p.id, p.trader_id, p.symbol`,
    )) as [Hit[], number];
    const filled = (await m.query(
      `UPDATE orders o SET filled_quantity = filled_quantity - 1
       WHERE o.id IN (SELECT id FROM orders WHERE status = 'PARTIAL' AND filled_quantity >= 2
                        AND filled_quantity = trunc(filled_quantity) AND ${spared} ${scattered} LIMIT 5)
       RETURNING o.id, o.trader_id, o.symbol`,
    )) as [Hit[], number];
    const overfills = (await m.query(
      `SELECT f.id, f.trader_id, f.symbol FROM fills f WHERE f.overfilled_quantity > 0 ORDER BY f.id`,
    )) as Hit[];
    return [
      {
        type: 'UNLINKED_FILLED_ORDER',
        count: unlinked[0].length,
        what: 'FILLED orders whose position_id was set to NULL',
        alsoAs: [],
        ...hits(unlinked[0]),
      },
      {
        type: 'REPLAY_MISMATCH',
        count: pnl[0].length,
        what: 'positions whose realized_pnl was raised by 1.23',
        alsoAs: [],
        ...hits(pnl[0]),
      },
      {
        type: 'ORDER_FILL_MISMATCH',
        count: filled[0].length,
        what: 'PARTIAL orders whose filled_quantity was lowered by 1',
        alsoAs: ['ORDER_LOG_MISMATCH'],
        ...hits(filled[0]),
      },
      {
        type: 'EXECUTION_EXCEPTION',
        count: overfills.length,
        what: 'fills beyond their order’s quantity (OVERFILL), recorded as the server records them',
        alsoAs: [],
        ...hits(overfills),
      },
    ];
  });
}

/** Runs `work` as the server's request role with admin rights, in a transaction that is always rolled back. */
async function rolledBack<T>(ds: DataSource, work: (m: EntityManager) => Promise<T>): Promise<T> {
  const runner = ds.createQueryRunner();
  await runner.connect();
  await runner.startTransaction();
  try {
    await runner.query(`SET LOCAL ROLE ${APPLICATION_ROLE}; SET LOCAL tradetrail.role = 'admin'`);
    return await work(runner.manager);
  } finally {
    await runner.rollbackTransaction();
    await runner.release();
  }
}

export interface ComplianceCheck {
  books: number;
  booksUnchanged: number;
  /** Books with a planted anomaly that `recalculateBook` would correct (it must: they are wrong). */
  anomalyBooks: number;
  anomalyBooksChanged: number;
  orders: number;
  ordersValid: number;
  /** Books replayed through the server's services (`replayThroughServices`), and those that differ. */
  replayed: number;
  replayedDifferent: number;
  failures: string[];
}

/**
 * The server's own checks on a sample: `recalculateBook` on `books` random books (rolled back) must
 * change nothing, and must change each book a planted position anomaly is in; `verifyOrderLog` on
 * `orders` random orders (chain, seals, and the order against its log) must find nothing.
 */
export async function checkComplianceData(
  ds: DataSource,
  data: ComplianceData,
  key: LogKey,
  sample: { books: number; orders: number; replays: number },
): Promise<ComplianceCheck> {
  const rnd = random(7);
  const bookKey = (b: Book) => `${b.traderId}|${b.symbol}`;
  const tampered = new Set(
    data.planted.filter((p) => p.type !== 'EXECUTION_EXCEPTION').flatMap((p) => p.books.map(bookKey)),
  );
  const clean = data.books.filter((b) => !tampered.has(bookKey(b)));
  const picked = new Map<string, Book>();
  while (picked.size < Math.min(sample.books, clean.length)) {
    const b = rnd.pick(clean);
    picked.set(bookKey(b), b);
  }
  const failures: string[] = [];
  let unchanged = 0;
  const who: Actor = { actor: 'bench-check', source: 'RECONCILIATION' };
  for (const b of picked.values()) {
    const r = await rolledBack(ds, (m) => recalculateBook(m, who, b.traderId, b.symbol));
    if (!r.changed) unchanged++;
    else
      failures.push(
        `recalculateBook changed book ${b.symbol} of ${b.traderId}: ${JSON.stringify(r.change).slice(0, 800)}`,
      );
  }
  const positionBooks = new Map(
    data.planted.filter((p) => p.type === 'REPLAY_MISMATCH').flatMap((p) => p.books.map((b) => [bookKey(b), b])),
  );
  let anomalyChanged = 0;
  for (const b of positionBooks.values()) {
    const r = await rolledBack(ds, (m) => recalculateBook(m, who, b.traderId, b.symbol));
    if (r.changed) anomalyChanged++;
    else failures.push(`recalculateBook left the altered book ${b.symbol} of ${b.traderId} unchanged`);
  }

  const skip = new Set(data.planted.filter((p) => p.type === 'ORDER_FILL_MISMATCH').flatMap((p) => p.ids));
  const orderIds = (
    (await rolledBack(ds, (m) =>
      m.query(`SELECT id FROM orders TABLESAMPLE SYSTEM (1) REPEATABLE (7) LIMIT $1`, [sample.orders + skip.size]),
    )) as { id: string }[]
  )
    .map((r) => r.id)
    .filter((id) => !skip.has(id))
    .slice(0, sample.orders);
  let valid = 0;
  for (const id of orderIds) {
    const v = await rolledBack(ds, (m) => verifyOrderLog(m, id, key));
    if (v.valid) valid++;
    else failures.push(`verifyOrderLog(${id}): ${v.problems.map((p) => `${p.kind} ${p.message}`).join('; ')}`);
  }

  // A few small books (not the first trader's, a large account), and the books of the overfills.
  const small = [...picked.values()].filter((b) => b.traderId !== data.books[0].traderId).slice(0, sample.replays);
  const overfills = data.planted.filter((p) => p.type === 'EXECUTION_EXCEPTION').flatMap((p) => p.books);
  const replays = [...new Map([...small, ...overfills].map((b) => [bookKey(b), b])).values()];
  const differences = await replayThroughServices(ds, replays);
  failures.push(...differences);
  return {
    replayed: replays.length,
    replayedDifferent: differences.length,
    books: picked.size,
    booksUnchanged: unchanged,
    anomalyBooks: positionBooks.size,
    anomalyBooksChanged: anomalyChanged,
    orders: orderIds.length,
    ordersValid: valid,
    failures,
  };
}

/** A book's rows as the comparison sees them: no record times, hashes, seals or arrival numbers. */
async function bookRows(m: EntityManager, book: Book) {
  const q = (sql: string) => m.query(sql, [book.traderId, book.symbol]) as Promise<Record<string, unknown>[]>;
  const positions = await q(
    `SELECT id, quantity::text, average_entry_price::text, cost_basis::text, realized_pnl::text, total_commission::text,
       status, opened_at, closed_at, flipped_from_id, contract_multiplier::text, rules_version, version
     FROM positions WHERE trader_id = $1 AND symbol = $2 ORDER BY opened_at, id`,
  );
  const orders = await q(
    `SELECT id, client_order_id, side, order_type, time_in_force, quantity::text, price::text, status, base_status,
       filled_quantity::text, overfilled_quantity::text, fill_notional::text, average_fill_price::text, position_id,
       submitted_at, filled_at, canceled_at, expired_at, source
     FROM orders WHERE trader_id = $1 AND symbol = $2 ORDER BY submitted_at, id`,
  );
  const fills = await q(
    `SELECT id, order_id, position_id, exec_id, quantity::text, price::text, commission::text, liquidity, venue,
       executed_at, arrival_exception, overfilled_quantity::text
     FROM fills WHERE trader_id = $1 AND symbol = $2 ORDER BY executed_at, arrival`,
  );
  const entries = await q(
    `SELECT l.order_id, l.seq, l.action, l.from_status, l.to_status, l.reason, l.error_code, l.actor, l.source, l.details,
       l.occurred_at
     FROM execution_logs l JOIN orders o ON o.id = l.order_id
     WHERE o.trader_id = $1 AND o.symbol = $2 ORDER BY o.submitted_at, l.seq`,
  );
  return { positions, orders, fills, entries };
}

/**
 * The strongest check of "as the server would have written it": each book's events (submission,
 * acceptance, every execution, cancel / reject / expiry, in event time) are sent through the server's
 * own services (`submitOrder`, `changeOrderStatus`, `applyExecutions`) for a new trader, in a
 * transaction that is rolled back, and the rows they write — positions, orders, fills and every log
 * entry with its details — are compared with the built ones, ids mapped. Returns the differences.
 */
export async function replayThroughServices(ds: DataSource, books: Book[]): Promise<string[]> {
  const differences: string[] = [];
  for (const book of books) {
    await rolledBack(ds, async (m) => {
      const built = await bookRows(m, book);
      const [{ id: traderId }] = (await m.query(`INSERT INTO traders (name) VALUES ('Replay') RETURNING id`)) as {
        id: string;
      }[];
      const replica = { traderId, symbol: book.symbol };
      // The events, in event time (each order's events end before the next order is submitted).
      type Event = { at: Date; run: (ids: Map<string, string>) => Promise<unknown> };
      const events: Event[] = [];
      for (const o of built.orders) {
        const id = o.id as string;
        const dec = (v: unknown) => (v === null ? null : new Dec(v as string));
        events.push({
          at: o.submitted_at as Date,
          run: async (ids) => {
            const input = {
              traderId,
              clientOrderId: o.client_order_id as string,
              symbol: book.symbol,
              side: o.side as OrderSide,
              orderType: o.order_type as OrderType,
              timeInForce: o.time_in_force as TimeInForce,
              quantity: new Dec(o.quantity as string),
              price: dec(o.price),
              submittedAt: o.submitted_at as Date,
            };
            ids.set(id, (await submitOrder(m, GATEWAY, input)).id);
          },
        });
      }
      for (const e of built.entries) {
        const to = e.to_status as OrderStatus;
        if (!['ACCEPTED', 'CANCELLED', 'REJECTED', 'EXPIRED'].includes(e.action as string)) continue;
        events.push({
          at: e.occurred_at as Date,
          run: (ids) =>
            changeOrderStatus(m, GATEWAY, ids.get(e.order_id as string)!, {
              to: to as OrderEvent['to'],
              reason: e.reason as string | null,
              errorCode: e.error_code as string | null,
              occurredAt: e.occurred_at as Date,
            }),
        });
      }
      for (const f of built.fills) {
        events.push({
          at: f.executed_at as Date,
          run: async (ids) => {
            const [outcome] = await applyExecutions(m, GATEWAY, [
              Object.assign(new RecordExecutionInput(), {
                orderId: ids.get(f.order_id as string)!,
                execId: `${f.exec_id as string}-r`,
                quantity: new Dec(f.quantity as string),
                price: new Dec(f.price as string),
                commission: new Dec(f.commission as string),
                liquidity: f.liquidity as Liquidity,
                venue: f.venue as string,
                executedAt: f.executed_at as Date,
              }),
            ]);
            if (outcome.status !== 'APPLIED') throw new Error(`execution ${f.exec_id as string}: ${outcome.status}`);
          },
        });
      }
      events.sort((a, b) => a.at.getTime() - b.at.getTime());
      const ids = new Map<string, string>([[book.traderId, traderId]]);
      for (const e of events) await e.run(ids);

      // Ids of the replica's rows for the built ones: orders by client id, fills by exec id, positions by place.
      const copy = await bookRows(m, replica);
      for (const f of built.fills) {
        const twin = copy.fills.find((c) => c.exec_id === `${f.exec_id as string}-r`);
        if (twin) ids.set(f.id as string, twin.id as string).set(f.exec_id as string, twin.exec_id as string);
      }
      built.positions.forEach((p, i) => copy.positions[i] && ids.set(p.id as string, copy.positions[i].id as string));
      const mapped = (rows: Record<string, unknown>[]) => {
        let text = JSON.stringify(rows);
        for (const [from, to] of ids) text = text.split(from).join(to);
        return JSON.parse(text) as Record<string, unknown>[];
      };
      for (const table of ['positions', 'orders', 'fills', 'entries'] as const) {
        const expected = mapped(built[table]).map((r) => JSON.stringify(r));
        const actual = JSON.parse(JSON.stringify(copy[table])).map((r: unknown) => JSON.stringify(r)) as string[];
        const at = expected.findIndex((r, i) => r !== actual[i]);
        if (at >= 0 || expected.length !== actual.length) {
          const i = at >= 0 ? at : Math.min(expected.length, actual.length);
          differences.push(
            `book ${book.symbol} of ${book.traderId}, ${table} (${expected.length} built, ${actual.length} by the services), ` +
              `first difference at row ${i}:\n    built:    ${expected[i]}\n    services: ${actual[i]}`,
          );
        }
      }
    });
  }
  return differences;
}
