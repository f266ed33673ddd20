import Decimal from 'decimal.js';

/**
 * An independent replay model of the issue 7 ledger rules (notes/ledger-contract.md, DOMAIN.md
 * §2–§4), written from the rules and not from src/. It takes a book's final facts (each order's
 * life before its fills, each fill's effective values after corrections and busts) and says what
 * every position, fill and order must look like. Nothing here depends on the order in which the
 * facts arrived, except the arrival rank that breaks executedAt ties.
 */

/** 120 significant digits: every product and sum of numeric(30,9) inputs here is exact. */
export const D = Decimal.clone({
  precision: 120,
  rounding: Decimal.ROUND_HALF_EVEN,
  toExpNeg: -300,
  toExpPos: 300,
});
export type D = Decimal;

export type Side = 'BUY' | 'SELL';
/** What an order's own events (before any fill) left it as. */
export type Lifecycle = 'PENDING' | 'ACCEPTED' | 'CANCELLED' | 'EXPIRED' | 'REJECTED' | 'REPLACED';
export type FillException = 'OVERFILL' | 'ORDER_REPLACED' | 'ORDER_REJECTED';
export type OrderStatus = Lifecycle | 'PARTIAL' | 'FILLED';

export interface ModelOrder {
  key: string;
  trader: string;
  symbol: string;
  side: Side;
  quantity: string;
  /** The status the order had when its fills arrived (all fills arrive after the order's own events). */
  lifecycle: Lifecycle;
  /** Whether the venue acknowledged it (an ACCEPTED event), which decides ACCEPTED vs PENDING without fills. */
  accepted: boolean;
}

export interface ModelFill {
  key: string;
  order: string;
  /** Event time in ms since the epoch. */
  executedAt: number;
  /** Arrival rank (tie-breaker only). */
  arrival: number;
  /** Effective values: the original ones after the corrections; ignored when busted. */
  quantity: string;
  price: string;
  commission: string;
  busted: boolean;
}

export interface ModelInput {
  orders: ModelOrder[];
  fills: ModelFill[];
  /** Contract multiplier of a symbol (1 for equities, 100 for OCC options). */
  multiplier: (symbol: string) => number;
}

export interface PositionOut {
  quantity: string;
  costBasis: string;
  averageEntryPrice: string;
  realizedPnl: string;
  totalCommission: string;
  status: 'OPEN' | 'CLOSED';
  openedAt: string;
  closedAt: string | null;
  /** Index (in its book) of the position this one was flipped from / to. */
  flippedFrom: number | null;
  flippedTo: number | null;
}

export interface FillOut {
  /** Index of the position in the fill's book; null when busted. */
  position: number | null;
  exception: FillException | null;
  overfilledQuantity: string;
}

export interface OrderOut {
  status: OrderStatus;
  filledQuantity: string;
  overfilledQuantity: string;
  averageFillPrice: string | null;
  /** Index, in the order's book, of the position of its first effective fill; null without one. */
  position: number | null;
}

export interface ModelResult {
  /** Positions per book (key `bookKey(trader, symbol)`), in opening order. */
  books: Record<string, PositionOut[]>;
  fills: Record<string, FillOut>;
  orders: Record<string, OrderOut>;
}

export const bookKey = (trader: string, symbol: string): string => `${trader}/${symbol}`;

/** Canonical text of a decimal: no exponent, no trailing zeros ("150.25", "-3", "0"). */
export function text(d: D): string {
  const s = d.toFixed();
  return s === '-0' ? '0' : s;
}

const SCALE = 18;

/**
 * a / b rounded half to even to 18 decimal places, exactly: truncate, then decide the last digit
 * from the exact remainder (no double rounding). Only for a >= 0, b > 0.
 */
export function divRound18(a: D, b: D): D {
  if (!b.greaterThan(0) || a.lessThan(0)) throw new RangeError('divRound18 needs a >= 0 and b > 0');
  const t = a.dividedBy(b).toDecimalPlaces(SCALE, Decimal.ROUND_DOWN);
  const ulp = new D(10).pow(-SCALE);
  let r = a.minus(t.times(b)); // exact: well within 120 digits for numeric(30,9) inputs
  let q = t;
  // The quotient above is rounded to 120 digits before the truncation; should that ever have crossed
  // an 18-place boundary, step back (or on) to the exact truncation.
  while (r.lessThan(0)) {
    q = q.minus(ulp);
    r = r.plus(ulp.times(b));
  }
  while (r.greaterThanOrEqualTo(ulp.times(b))) {
    q = q.plus(ulp);
    r = r.minus(ulp.times(b));
  }
  const twice = r.times(2);
  const half = ulp.times(b);
  if (twice.greaterThan(half)) return q.plus(ulp);
  if (twice.lessThan(half)) return q;
  // An exact tie: to the even last digit.
  const lastDigit = q.times(new D(10).pow(SCALE)).mod(10);
  return lastDigit.mod(2).isZero() ? q : q.plus(ulp);
}

interface OpenPosition {
  index: number;
  quantity: D; // signed
  costBasis: D; // non-negative magnitude
  averageEntryPrice: D;
  realizedPnl: D;
  totalCommission: D;
  status: 'OPEN' | 'CLOSED';
  openedAt: number;
  closedAt: number | null;
  flippedFrom: number | null;
  flippedTo: number | null;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** Orders fills by event time, then arrival. */
export function byEventTime<T extends { executedAt: number; arrival: number }>(a: T, b: T): number {
  return a.executedAt - b.executedAt || a.arrival - b.arrival;
}

/** Replays one book's effective fills (sorted by event time): the positions and each fill's position index. */
export function replayBook(
  fills: { key: string; side: Side; quantity: D; price: D; commission: D; executedAt: number }[],
  multiplier: number,
): { positions: OpenPosition[]; positionOf: Map<string, number> } {
  const m = new D(multiplier);
  const positions: OpenPosition[] = [];
  const positionOf = new Map<string, number>();
  let open: OpenPosition | null = null;
  const openNew = (signed: D, price: D, at: number, flippedFrom: number | null): OpenPosition => {
    const costBasis = signed.abs().times(price).times(m);
    const p: OpenPosition = {
      index: positions.length,
      quantity: signed,
      costBasis,
      averageEntryPrice: divRound18(costBasis, signed.abs().times(m)),
      realizedPnl: new D(0),
      totalCommission: new D(0),
      status: 'OPEN',
      openedAt: at,
      closedAt: null,
      flippedFrom,
      flippedTo: null,
    };
    positions.push(p);
    return p;
  };

  for (const f of fills) {
    const q = f.quantity;
    if (!q.greaterThan(0)) throw new RangeError(`fill ${f.key} has a non-positive effective quantity`);
    const s = f.side === 'BUY' ? q : q.negated();
    if (open === null) {
      open = openNew(s, f.price, f.executedAt, null);
    } else if (open.quantity.lessThan(0) === s.lessThan(0)) {
      open.quantity = open.quantity.plus(s);
      open.costBasis = open.costBasis.plus(q.times(f.price).times(m));
      open.averageEntryPrice = divRound18(open.costBasis, open.quantity.abs().times(m));
    } else {
      const held = open.quantity.abs();
      const long = open.quantity.greaterThan(0);
      const closing = D.min(q, held);
      const removed = q.lessThan(held) ? divRound18(open.costBasis.times(q), held) : open.costBasis;
      const cash = closing.times(f.price).times(m);
      open.realizedPnl = open.realizedPnl.plus(long ? cash.minus(removed) : removed.minus(cash));
      open.costBasis = open.costBasis.minus(removed);
      open.quantity = open.quantity.plus(long ? closing.negated() : closing);
      if (q.lessThan(held)) {
        open.averageEntryPrice = divRound18(open.costBasis, open.quantity.abs().times(m));
      } else {
        // Close (the average keeps its last open value), and on a flip the rest opens a new position.
        open.status = 'CLOSED';
        open.closedAt = f.executedAt;
        open.costBasis = new D(0);
        const old: OpenPosition = open;
        open = null;
        if (q.greaterThan(held)) {
          const rest = q.minus(held);
          open = openNew(f.side === 'BUY' ? rest : rest.negated(), f.price, f.executedAt, old.index);
          old.flippedTo = open.index;
        }
      }
    }
    const target: OpenPosition = open ?? positions[positions.length - 1];
    target.totalCommission = target.totalCommission.plus(f.commission);
    positionOf.set(f.key, target.index);
    if (open !== null && open.quantity.isZero()) open = null;
  }
  return { positions, positionOf };
}

export function runModel(input: ModelInput): ModelResult {
  const orders = new Map(input.orders.map((o) => [o.key, o]));
  const result: ModelResult = { books: {}, fills: {}, orders: {} };

  // Positions, book by book.
  const perBook = new Map<string, ModelFill[]>();
  for (const f of input.fills) {
    const o = orders.get(f.order);
    if (!o) throw new Error(`fill ${f.key} names an unknown order ${f.order}`);
    const k = bookKey(o.trader, o.symbol);
    if (!perBook.has(k)) perBook.set(k, []);
    perBook.get(k)!.push(f);
  }
  const positionOf = new Map<string, number>();
  const books = new Map(input.orders.map((o) => [bookKey(o.trader, o.symbol), o.symbol]));
  for (const [k, symbol] of [...books].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const fills = (perBook.get(k) ?? []).filter((f) => !f.busted).sort(byEventTime);
    const replay = replayBook(
      fills.map((f) => ({
        key: f.key,
        side: orders.get(f.order)!.side,
        quantity: new D(f.quantity),
        price: new D(f.price),
        commission: new D(f.commission),
        executedAt: f.executedAt,
      })),
      input.multiplier(symbol),
    );
    for (const [fk, i] of replay.positionOf) positionOf.set(fk, i);
    result.books[k] = replay.positions.map((p) => ({
      quantity: text(p.quantity),
      costBasis: text(p.costBasis),
      averageEntryPrice: text(p.averageEntryPrice),
      realizedPnl: text(p.realizedPnl),
      totalCommission: text(p.totalCommission),
      status: p.status,
      openedAt: iso(p.openedAt),
      closedAt: p.closedAt === null ? null : iso(p.closedAt),
      flippedFrom: p.flippedFrom,
      flippedTo: p.flippedTo,
    }));
  }

  // Orders and their fills' exceptions, walking each order's effective fills by event time.
  const fillsOf = new Map<string, ModelFill[]>();
  for (const f of input.fills) {
    if (!fillsOf.has(f.order)) fillsOf.set(f.order, []);
    fillsOf.get(f.order)!.push(f);
  }
  for (const o of input.orders) {
    const all = (fillsOf.get(o.key) ?? []).slice().sort(byEventTime);
    const effective = all.filter((f) => !f.busted);
    const quantity = new D(o.quantity);
    let cumulative = new D(0);
    let notional = new D(0);
    const statusException: FillException | null =
      o.lifecycle === 'REPLACED' ? 'ORDER_REPLACED' : o.lifecycle === 'REJECTED' ? 'ORDER_REJECTED' : null;
    for (const f of all) {
      if (f.busted) {
        result.fills[f.key] = { position: null, exception: statusException, overfilledQuantity: '0' };
        continue;
      }
      const q = new D(f.quantity);
      const before = cumulative;
      cumulative = cumulative.plus(q);
      notional = notional.plus(q.times(new D(f.price)));
      // The part of this fill beyond the order's quantity.
      const over = D.max(0, cumulative.minus(D.max(before, quantity)));
      result.fills[f.key] = {
        position: positionOf.get(f.key)!,
        exception: statusException ?? (over.greaterThan(0) ? 'OVERFILL' : null),
        overfilledQuantity: text(over),
      };
    }
    let status: OrderStatus;
    if (o.lifecycle === 'REPLACED' || o.lifecycle === 'REJECTED') status = o.lifecycle;
    else if (cumulative.greaterThanOrEqualTo(quantity)) status = 'FILLED';
    else if (o.lifecycle === 'CANCELLED' || o.lifecycle === 'EXPIRED') status = o.lifecycle;
    else if (cumulative.greaterThan(0)) status = 'PARTIAL';
    // A fill (even one busted since) means the venue worked the order.
    else status = o.accepted || all.length > 0 ? 'ACCEPTED' : 'PENDING';
    result.orders[o.key] = {
      status,
      filledQuantity: text(D.min(cumulative, quantity)),
      overfilledQuantity: text(D.max(0, cumulative.minus(quantity))),
      averageFillPrice: cumulative.isZero() ? null : text(divRound18(notional, cumulative)),
      position: effective.length === 0 ? null : positionOf.get(effective[0].key)!,
    };
  }
  return result;
}

/**
 * Each position's exact cash flow and held quantity from what a snapshot says (each fill's position,
 * side and effective values, and the flip links), per the rule "a closed position's realizedPnl =
 * Σ sells q·p·m − Σ buys q·p·m over its fills, the flip fill counting only its closing part".
 * Independent of the replay: a flip fill sits in the successor, and the part of it that closed the
 * predecessor is the predecessor's net quantity.
 */
export function cashFlows(
  positions: { flippedFrom: number | null; flippedTo: number | null; openedAt: string }[],
  fills: { position: number | null; side: Side; quantity: string; price: string; executedAt: string }[],
  multiplier: number,
): { cash: D[]; net: D[] } {
  // net: the quantity each position holds at the end (0 once closed); cash: its cash flow.
  const m = new D(multiplier);
  const net = positions.map(() => new D(0));
  const cash = positions.map(() => new D(0));
  for (const f of fills) {
    if (f.position === null) continue;
    const s = f.side === 'BUY' ? new D(f.quantity) : new D(f.quantity).negated();
    net[f.position] = net[f.position].plus(s);
    cash[f.position] = cash[f.position].minus(s.times(f.price).times(m));
  }
  positions.forEach((p, i) => {
    // Predecessors come first (lower index), so net[i] is final here.
    const to = p.flippedTo;
    if (to === null) return;
    const flip = fills.find((f) => f.position === to && f.executedAt === positions[to].openedAt);
    if (!flip) throw new Error(`position ${to} has no fill at its openedAt, so no flip fill`);
    const closing = net[i]; // signed units held when the flip fill closed them
    cash[i] = cash[i].plus(closing.times(flip.price).times(m));
    cash[to] = cash[to].minus(closing.times(flip.price).times(m));
    net[to] = net[to].plus(closing);
    net[i] = new D(0);
  });
  return { cash, net };
}
