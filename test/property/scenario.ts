import { D, type Lifecycle, type ModelInput, type Side, text } from './model';

/**
 * Seeded scenarios for the ledger property test: traders, symbols, orders and their life before any
 * fill, fills, replays, corrections and busts, and several delivery plans (orderings and batchings
 * of the same events). Everything is plain JSON so that a failing scenario can be printed, shrunk
 * and replayed.
 */

// ---------------------------------------------------------------------------------------------
// Random numbers

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Rng {
  private readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  float(): number {
    return this.next();
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)];
  }
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [xs[i], xs[j]] = [xs[j], xs[i]];
    }
    return xs;
  }
  /** A random decimal with `places` decimals whose integer part has at most `intDigits` digits; > 0. */
  decimal(intDigits: number, places: number): string {
    if (intDigits + places === 0) intDigits = 1;
    for (;;) {
      let digits = '';
      const n = intDigits + places;
      for (let i = 0; i < n; i++) digits += String(this.int(0, 9));
      const v = new D(digits.length ? digits : '0').dividedBy(new D(10).pow(places));
      if (v.greaterThan(0)) return text(v);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scenario shape

export interface ScOrder {
  /** The order's clientOrderId (unique per trader). */
  key: string;
  /** Index of the trader (each delivery plan gets fresh traders). */
  trader: number;
  symbol: string;
  side: Side;
  quantity: string;
}

/** What happens to orders before any fill is delivered, in this sequence. */
export type SetupOp =
  | { op: 'submit'; order: string }
  | { op: 'accept' | 'cancel' | 'expire' | 'reject'; order: string }
  /** replaceOrder(order) creates the order `by` (its quantity taken from `by`). */
  | { op: 'replace'; order: string; by: string };

export interface ScFill {
  key: string;
  execId: string;
  venue: string | null;
  order: string;
  quantity: string;
  price: string;
  commission: string;
  /** False: the commission (then 0) is left out of the input (the server's default). */
  sendCommission: boolean;
  /** Event time, ms since the epoch; distinct within a book. */
  executedAt: number;
}

export interface ReplayChange {
  order?: string;
  quantity?: string;
  price?: string;
  commission?: string;
  /** Not part of the payload compared: a replay with another executedAt is still a duplicate. */
  executedAt?: number;
  /** Send commission explicitly (as "0") or leave it out; not a change of payload. */
  sendCommission?: boolean;
}

export type ScEvent =
  | { id: number; kind: 'fill'; fill: string }
  /** A replay of a fill's execution: exact (DUPLICATE) unless it changes the order or a number (CONFLICT). */
  | { id: number; kind: 'replay'; fill: string; change: ReplayChange; conflict: boolean }
  | {
      id: number;
      kind: 'correct';
      fill: string;
      correctionId: string;
      quantity?: string;
      price?: string;
      commission?: string;
    }
  | { id: number; kind: 'bust'; fill: string; correctionId: string }
  /** The same correction or bust sent again: DUPLICATE. */
  | { id: number; kind: 'correctionReplay'; of: number };

export type ScCall = { kind: 'single' | 'batch'; events: number[] };
export interface Plan {
  calls: ScCall[];
}

export interface Scenario {
  seed: number;
  traders: number;
  /** Symbol -> contract multiplier. */
  symbols: Record<string, number>;
  orders: ScOrder[];
  setup: SetupOp[];
  fills: ScFill[];
  events: ScEvent[];
  plans: Plan[];
}

export type Expected = 'APPLIED' | 'DUPLICATE' | 'CONFLICT';

export function expectedOutcome(e: ScEvent): Expected {
  switch (e.kind) {
    case 'fill':
    case 'correct':
    case 'bust':
      return 'APPLIED';
    case 'replay':
      return e.conflict ? 'CONFLICT' : 'DUPLICATE';
    case 'correctionReplay':
      return 'DUPLICATE';
  }
}

// ---------------------------------------------------------------------------------------------
// What a scenario means: the model's input and the expected log counts

export interface OrderFacts {
  lifecycle: Lifecycle;
  accepted: boolean;
}

export function orderFacts(sc: Scenario): Map<string, OrderFacts> {
  const facts = new Map<string, OrderFacts>();
  for (const s of sc.setup) {
    if (s.op === 'submit') facts.set(s.order, { lifecycle: 'PENDING', accepted: false });
    else if (s.op === 'replace') {
      facts.get(s.order)!.lifecycle = 'REPLACED';
      facts.set(s.by, { lifecycle: 'PENDING', accepted: false });
    } else {
      const f = facts.get(s.order)!;
      if (s.op === 'accept') {
        f.lifecycle = 'ACCEPTED';
        f.accepted = true;
      } else f.lifecycle = ({ cancel: 'CANCELLED', expire: 'EXPIRED', reject: 'REJECTED' } as const)[s.op];
    }
  }
  return facts;
}

/** The final effective values of every fill: corrections in their (fixed) sequence, then a bust. */
export function effectiveFills(
  sc: Scenario,
): Map<string, { quantity: string; price: string; commission: string; busted: boolean; corrections: number }> {
  const out = new Map(
    sc.fills.map((f) => [
      f.key,
      { quantity: f.quantity, price: f.price, commission: f.commission, busted: false, corrections: 0 },
    ]),
  );
  for (const e of sc.events) {
    if (e.kind === 'correct') {
      const f = out.get(e.fill)!;
      if (e.quantity !== undefined) f.quantity = e.quantity;
      if (e.price !== undefined) f.price = e.price;
      if (e.commission !== undefined) f.commission = e.commission;
      f.corrections += 1;
    } else if (e.kind === 'bust') {
      const f = out.get(e.fill)!;
      f.busted = true;
      f.corrections += 1;
    }
  }
  return out;
}

export const traderName = (i: number): string => `T${i}`;

export function modelInput(sc: Scenario): ModelInput {
  const facts = orderFacts(sc);
  const eff = effectiveFills(sc);
  return {
    orders: sc.orders.map((o) => ({
      key: o.key,
      trader: traderName(o.trader),
      symbol: o.symbol,
      side: o.side,
      quantity: o.quantity,
      lifecycle: facts.get(o.key)!.lifecycle,
      accepted: facts.get(o.key)!.accepted,
    })),
    fills: sc.fills.map((f, i) => {
      const e = eff.get(f.key)!;
      return {
        key: f.key,
        order: f.order,
        executedAt: f.executedAt,
        arrival: i,
        quantity: e.quantity,
        price: e.price,
        commission: e.commission,
        busted: e.busted,
      };
    }),
    multiplier: (symbol) => sc.symbols[symbol] ?? 1,
  };
}

/** Log actions whose count per order does not depend on the delivery order. */
export const COUNTED_ACTIONS = [
  'SUBMITTED',
  'ACCEPTED',
  'CANCELLED',
  'EXPIRED',
  'REPLACED',
  'REJECTED',
  'CORRECTED',
  'BUSTED',
  'DUPLICATE_IGNORED',
] as const;
export type CountedAction = (typeof COUNTED_ACTIONS)[number];

export function expectedLogCounts(sc: Scenario): Record<string, Partial<Record<CountedAction, number>>> {
  const counts: Record<string, Partial<Record<CountedAction, number>>> = {};
  const bump = (order: string, a: CountedAction): void => {
    counts[order] ??= {};
    counts[order][a] = (counts[order][a] ?? 0) + 1;
  };
  for (const o of sc.orders) counts[o.key] = {};
  for (const s of sc.setup) {
    if (s.op === 'submit') bump(s.order, 'SUBMITTED');
    else if (s.op === 'replace') {
      bump(s.order, 'REPLACED');
      bump(s.by, 'SUBMITTED');
    } else
      bump(
        s.order,
        ({ accept: 'ACCEPTED', cancel: 'CANCELLED', expire: 'EXPIRED', reject: 'REJECTED' } as const)[s.op],
      );
  }
  const fillOrder = new Map(sc.fills.map((f) => [f.key, f.order]));
  for (const e of sc.events) {
    if (e.kind === 'correct') bump(fillOrder.get(e.fill)!, 'CORRECTED');
    else if (e.kind === 'bust') bump(fillOrder.get(e.fill)!, 'BUSTED');
    else if (e.kind === 'replay' && e.conflict) bump(e.change.order ?? fillOrder.get(e.fill)!, 'DUPLICATE_IGNORED');
  }
  return counts;
}

// ---------------------------------------------------------------------------------------------
// Generation

export interface GenOptions {
  maxTraders: number;
  maxSymbols: number;
  maxOrders: number;
  maxFillsPerOrder: number;
  plans: number;
  maxBatch: number;
}

export const SMALL: GenOptions = {
  maxTraders: 2,
  maxSymbols: 2,
  maxOrders: 5,
  maxFillsPerOrder: 3,
  plans: 2,
  maxBatch: 4,
};

export const OPTION_SYMBOL = 'SPY240426C00555000';
const SYMBOLS: readonly [string, number][] = [
  ['AAPL', 1],
  [OPTION_SYMBOL, 100],
  ['BTC/USD', 1],
  ['MSFT', 1],
];
const VENUES = [null, null, 'XNAS', 'ARCA'] as const;
export const BASE_TIME = Date.UTC(2026, 0, 5, 14, 30, 0);

/** A book's scale: quantities are small multiples of `unit`, prices have `priceDigits`/`pricePlaces`. */
interface BookScale {
  unit: D;
  priceDigits: number;
  pricePlaces: number;
}

function bookScale(rng: Rng): BookScale {
  // Quantities from 0.000000001 to ~10^12, prices from 0.000000001 to ~10^12, 0–9 decimals.
  const kind = rng.int(0, 5);
  let unit: D;
  if (kind === 0)
    unit = new D(rng.int(1, 9)).dividedBy(new D(10).pow(9)); // 1e-9 … 9e-9
  else if (kind === 1)
    unit = new D(rng.decimal(0, rng.int(1, 9))); // below 1, up to 9 places
  else if (kind === 2)
    unit = new D(rng.int(1, 1000)); // whole shares
  else if (kind === 3) unit = new D(rng.decimal(rng.int(1, 3), rng.int(0, 4)));
  else if (kind === 4)
    unit = new D(rng.int(1, 9)).times(new D(10).pow(rng.int(9, 11))); // 10^9 … ~10^12
  else unit = new D(rng.decimal(rng.int(7, 11), rng.int(0, 9))); // huge with decimals
  const p = rng.int(0, 5);
  const [priceDigits, pricePlaces] =
    p === 0
      ? [0, 9]
      : p === 1
        ? [rng.int(1, 3), rng.int(0, 9)]
        : p === 2
          ? [12, rng.int(0, 9)]
          : [rng.int(1, 6), rng.int(0, 4)];
  return { unit, priceDigits, pricePlaces };
}

function price(rng: Rng, s: BookScale): string {
  return rng.decimal(s.priceDigits, s.pricePlaces);
}
function commission(rng: Rng): string {
  return rng.chance(0.4) ? '0' : rng.decimal(rng.int(0, 3), rng.int(0, 9));
}
function multiple(rng: Rng, s: BookScale, max = 4): string {
  return text(s.unit.times(rng.int(1, max)));
}

export function generate(seed: number, opts: GenOptions = SMALL): Scenario {
  const rng = new Rng(seed);
  const traders = rng.int(1, opts.maxTraders);
  const symbolCount = rng.int(1, opts.maxSymbols);
  const pool = rng.shuffle([...SYMBOLS]);
  // The option symbol in about half the scenarios.
  if (rng.chance(0.5) && !pool.slice(0, symbolCount).some(([s]) => s === OPTION_SYMBOL)) {
    pool.unshift(SYMBOLS[1]);
  }
  const symbols: Record<string, number> = {};
  for (const [s, m] of pool.slice(0, symbolCount)) symbols[s] = m;
  const books: { trader: number; symbol: string; scale: BookScale }[] = [];
  for (let t = 0; t < traders; t++)
    for (const s of Object.keys(symbols)) books.push({ trader: t, symbol: s, scale: bookScale(rng) });
  // Few books per scenario, so that orders interact.
  const used = rng.shuffle([...books]).slice(0, rng.int(1, Math.min(books.length, 3)));

  const orders: ScOrder[] = [];
  const setup: SetupOp[] = [];
  const later: SetupOp[] = [];
  const fills: ScFill[] = [];
  const scaleOf = new Map<string, BookScale>();
  let orderNo = 0;
  let fillNo = 0;

  const addFills = (o: ScOrder, scale: BookScale, count: number): D => {
    let sum = new D(0);
    for (let i = 0; i < count; i++) {
      const q = multiple(rng, scale);
      sum = sum.plus(q);
      const c = commission(rng);
      fills.push({
        key: `f${fillNo++}`,
        execId: '',
        venue: null,
        order: o.key,
        quantity: q,
        price: price(rng, scale),
        commission: c,
        sendCommission: c !== '0' || rng.chance(0.5),
        executedAt: 0,
      });
    }
    return sum;
  };
  const orderQuantity = (scale: BookScale, filled: D): string => {
    if (filled.isZero()) return multiple(rng, scale);
    const r = rng.float();
    if (r < 0.6) return text(filled); // filled exactly
    if (r < 0.8) return text(filled.plus(scale.unit.times(rng.int(1, 3)))); // partial
    // Overfilled: less than the fills (at least one unit).
    const less = filled.minus(scale.unit.times(rng.int(1, 3)));
    return text(less.greaterThan(0) ? less : scale.unit);
  };

  const nOrders = rng.int(2, opts.maxOrders);
  for (let i = 0; i < nOrders; i++) {
    const book = rng.pick(used);
    scaleOf.set(`${book.trader}/${book.symbol}`, book.scale);
    const o: ScOrder = {
      key: `o${orderNo++}`,
      trader: book.trader,
      symbol: book.symbol,
      side: rng.chance(0.5) ? 'BUY' : 'SELL',
      quantity: '',
    };
    orders.push(o);
    setup.push({ op: 'submit', order: o.key });
    const fate = rng.float();
    // Exceptions (fills on REPLACED / REJECTED orders) get at most one or two fills.
    const exceptional = fate >= 0.72;
    const count = exceptional ? rng.int(0, 2) : rng.int(rng.chance(0.15) ? 0 : 1, opts.maxFillsPerOrder);
    o.quantity = orderQuantity(book.scale, addFills(o, book.scale, count));
    if (fate < 0.1) {
      // PENDING: never acknowledged (fills still arrive).
    } else if (fate < 0.55) later.push({ op: 'accept', order: o.key });
    else if (fate < 0.63) {
      if (rng.chance(0.5)) later.push({ op: 'accept', order: o.key });
      later.push({ op: 'cancel', order: o.key });
    } else if (fate < 0.72) later.push({ op: 'accept', order: o.key }, { op: 'expire', order: o.key });
    else if (fate < 0.82) {
      if (rng.chance(0.5)) later.push({ op: 'accept', order: o.key });
      later.push({ op: 'reject', order: o.key });
    } else {
      // Cancel/replace: the replacement is an order of its own with its own fills.
      const r: ScOrder = { ...o, key: `o${orderNo++}`, quantity: '' };
      orders.push(r);
      const filled = addFills(r, book.scale, rng.int(0, opts.maxFillsPerOrder));
      r.quantity = orderQuantity(book.scale, filled);
      later.push({ op: 'accept', order: o.key }, { op: 'replace', order: o.key, by: r.key });
      if (rng.chance(0.7)) later.push({ op: 'accept', order: r.key });
    }
  }
  setup.push(...later);

  // Event times: distinct within a book (a random permutation of slots), with odd milliseconds.
  const orderOf = new Map(orders.map((o) => [o.key, o]));
  const perBook = new Map<string, ScFill[]>();
  for (const f of fills) {
    const o = orderOf.get(f.order)!;
    const k = `${o.trader}/${o.symbol}`;
    if (!perBook.has(k)) perBook.set(k, []);
    perBook.get(k)!.push(f);
  }
  for (const list of perBook.values()) {
    const slots = rng.shuffle(list.map((_, i) => i));
    list.forEach((f, i) => {
      f.executedAt = BASE_TIME + slots[i] * 1000 + rng.int(0, 999);
    });
  }
  // Exec ids: mostly fresh; sometimes the same id at another venue (another execution).
  fills.forEach((f, i) => {
    const reuse = i > 0 && rng.chance(0.1) ? fills[rng.int(0, i - 1)] : null;
    if (reuse) {
      const venues = VENUES.filter(
        (v) => v !== reuse.venue && !fills.some((g) => g.execId === reuse.execId && g.venue === v),
      );
      if (venues.length > 0) {
        f.execId = reuse.execId;
        f.venue = rng.pick(venues);
        return;
      }
    }
    f.execId = `X${i}`;
    f.venue = rng.pick(VENUES);
  });

  // Events.
  const events: ScEvent[] = [];
  let eventNo = 0;
  let correctionNo = 0;
  for (const f of fills) events.push({ id: eventNo++, kind: 'fill', fill: f.key });
  for (const f of fills) {
    const scale = scaleOf.get(`${orderOf.get(f.order)!.trader}/${orderOf.get(f.order)!.symbol}`)!;
    if (rng.chance(0.15)) {
      const change: ReplayChange = {};
      if (rng.chance(0.3)) change.executedAt = f.executedAt + rng.int(1, 5000);
      if (f.commission === '0' && rng.chance(0.5)) change.sendCommission = !f.sendCommission;
      events.push({ id: eventNo++, kind: 'replay', fill: f.key, change, conflict: false });
    }
    if (rng.chance(0.12)) {
      const change: ReplayChange = {};
      const what = rng.int(0, 3);
      if (what === 0 && orders.length > 1) change.order = rng.pick(orders.filter((o) => o.key !== f.order)).key;
      else if (what === 1) change.quantity = text(new D(f.quantity).plus(scale.unit));
      else if (what === 2) change.price = text(new D(f.price).plus(new D(10).pow(-scale.pricePlaces)));
      else change.commission = text(new D(f.commission).plus('0.01'));
      events.push({ id: eventNo++, kind: 'replay', fill: f.key, change, conflict: true });
    }
    // Corrections (each a change of one to three numbers), then maybe a bust.
    const corrections = rng.chance(0.2) ? rng.int(1, 2) : 0;
    const current = { quantity: f.quantity, price: f.price, commission: f.commission };
    for (let c = 0; c < corrections; c++) {
      const e: ScEvent = { id: eventNo++, kind: 'correct', fill: f.key, correctionId: `C${correctionNo++}` };
      const which = rng.int(1, 7);
      if (which & 1) {
        let q = multiple(rng, scale, 5);
        if (q === current.quantity) q = text(new D(q).plus(scale.unit));
        e.quantity = current.quantity = q;
      }
      if (which & 2) {
        let p = price(rng, scale);
        if (p === current.price) p = text(new D(p).plus(new D(10).pow(-scale.pricePlaces)));
        e.price = current.price = p;
      }
      if (which & 4) {
        let c2 = commission(rng);
        if (c2 === current.commission) c2 = text(new D(c2).plus('0.5'));
        e.commission = current.commission = c2;
      }
      events.push(e);
      if (rng.chance(0.3)) events.push({ id: eventNo++, kind: 'correctionReplay', of: e.id });
    }
    if (rng.chance(0.1)) {
      const b: ScEvent = { id: eventNo++, kind: 'bust', fill: f.key, correctionId: `C${correctionNo++}` };
      events.push(b);
      if (rng.chance(0.3)) events.push({ id: eventNo++, kind: 'correctionReplay', of: b.id });
    }
  }

  const sc: Scenario = { seed, traders, symbols, orders, setup, fills, events, plans: [] };
  for (let p = 0; p < opts.plans; p++) sc.plans.push(makePlan(rng, sc, opts.maxBatch));
  return sc;
}

/** What must be delivered before an event: its fill, the corrections before it, its original. */
export function dependencies(sc: Scenario): Map<number, number[]> {
  const fillEvent = new Map<string, number>();
  for (const e of sc.events) if (e.kind === 'fill') fillEvent.set(e.fill, e.id);
  const byId = new Map(sc.events.map((e) => [e.id, e]));
  const deps = new Map<number, number[]>();
  const lastCorrection = new Map<string, number>();
  const correctionsOf = new Map<string, number[]>();
  for (const e of sc.events) {
    const d: number[] = [];
    if (e.kind === 'replay' || e.kind === 'correct' || e.kind === 'bust') {
      const f = fillEvent.get(e.fill);
      if (f !== undefined) d.push(f);
    }
    if (e.kind === 'correct') {
      const prev = lastCorrection.get(e.fill);
      if (prev !== undefined) d.push(prev);
      lastCorrection.set(e.fill, e.id);
      correctionsOf.set(e.fill, [...(correctionsOf.get(e.fill) ?? []), e.id]);
    }
    if (e.kind === 'correctionReplay') {
      d.push(e.of);
      const of = byId.get(e.of);
      if (of?.kind === 'correct') correctionsOf.set(of.fill, [...(correctionsOf.get(of.fill) ?? []), e.id]);
    }
    deps.set(e.id, d);
  }
  // A bust comes after every correction (and correction replay) of its fill.
  for (const e of sc.events) if (e.kind === 'bust') deps.get(e.id)!.push(...(correctionsOf.get(e.fill) ?? []));
  return deps;
}

/** A random delivery plan: a random topological order of the events, cut into calls. */
export function makePlan(rng: Rng, sc: Scenario, maxBatch: number): Plan {
  const deps = dependencies(sc);
  const done = new Set<number>();
  const pending = sc.events.map((e) => e.id);
  const order: number[] = [];
  while (pending.length > 0) {
    const ready = pending.filter((id) => deps.get(id)!.every((d) => done.has(d)));
    const id = rng.pick(ready);
    pending.splice(pending.indexOf(id), 1);
    done.add(id);
    order.push(id);
  }
  const byId = new Map(sc.events.map((e) => [e.id, e]));
  const isExecution = (id: number): boolean => ['fill', 'replay'].includes(byId.get(id)!.kind);
  const calls: ScCall[] = [];
  for (let i = 0; i < order.length;) {
    if (!isExecution(order[i]) || rng.chance(0.35)) {
      calls.push({ kind: 'single', events: [order[i++]] });
      continue;
    }
    const size = rng.int(1, maxBatch);
    const events: number[] = [];
    while (events.length < size && i < order.length && isExecution(order[i])) events.push(order[i++]);
    calls.push({ kind: 'batch', events });
  }
  return { calls };
}

// ---------------------------------------------------------------------------------------------
// Shrinking

function withoutEvents(sc: Scenario, drop: Set<number>): Scenario {
  // Replays of a dropped correction go with it.
  let changed = true;
  while (changed) {
    changed = false;
    for (const e of sc.events)
      if (e.kind === 'correctionReplay' && drop.has(e.of) && !drop.has(e.id)) {
        drop.add(e.id);
        changed = true;
      }
  }
  return {
    ...sc,
    events: sc.events.filter((e) => !drop.has(e.id)),
    plans: sc.plans.map((p) => ({
      calls: p.calls
        .map((c) => ({ ...c, events: c.events.filter((id) => !drop.has(id)) }))
        .filter((c) => c.events.length > 0),
    })),
  };
}

function withoutFills(sc: Scenario, keys: Set<string>): Scenario {
  const drop = new Set(sc.events.filter((e) => 'fill' in e && keys.has(e.fill)).map((e) => e.id));
  const s = withoutEvents(sc, drop);
  return { ...s, fills: s.fills.filter((f) => !keys.has(f.key)) };
}

function withoutOrder(sc: Scenario, key: string): Scenario {
  // The order, its replacement (made by replacing it), and their fills; a replacement's original stays.
  const keys = new Set([key]);
  for (const s of sc.setup) if (s.op === 'replace' && keys.has(s.order)) keys.add(s.by);
  let s = withoutFills(sc, new Set(sc.fills.filter((f) => keys.has(f.order)).map((f) => f.key)));
  const drop = new Set(
    s.events
      .filter((e) => e.kind === 'replay' && e.change.order !== undefined && keys.has(e.change.order))
      .map((e) => e.id),
  );
  s = withoutEvents(s, drop);
  return {
    ...s,
    orders: s.orders.filter((o) => !keys.has(o.key)),
    setup: s.setup.filter((op) => !keys.has(op.order) && !(op.op === 'replace' && keys.has(op.by))),
  };
}

/** Smaller variants of a failing scenario, roughly biggest cut first. */
export function shrinkCandidates(sc: Scenario): Scenario[] {
  const out: Scenario[] = [];
  if (sc.plans.length > 1)
    for (let i = 0; i < sc.plans.length; i++) out.push({ ...sc, plans: sc.plans.filter((_, j) => j !== i) });
  // Big cuts first (halves, quarters, … of the fills), then one thing at a time.
  for (let n = Math.floor(sc.fills.length / 2); n >= 2; n = Math.floor(n / 2))
    for (let i = 0; i < sc.fills.length; i += n)
      out.push(withoutFills(sc, new Set(sc.fills.slice(i, i + n).map((f) => f.key))));
  for (const o of sc.orders)
    if (!sc.setup.some((s) => s.op === 'replace' && s.by === o.key)) out.push(withoutOrder(sc, o.key));
  for (const o of sc.orders)
    if (sc.setup.some((s) => s.op === 'replace' && s.by === o.key)) out.push(withoutOrder(sc, o.key));
  for (const f of sc.fills) out.push(withoutFills(sc, new Set([f.key])));
  for (const e of sc.events) if (e.kind !== 'fill') out.push(withoutEvents(sc, new Set([e.id])));
  // Setup steps that are not needed for the ones after them.
  sc.setup.forEach((s, i) => {
    if (s.op === 'submit' || s.op === 'replace') return;
    if (s.op === 'accept' && sc.setup.some((t) => t.op === 'replace' && t.order === s.order)) return;
    out.push({ ...sc, setup: sc.setup.filter((_, j) => j !== i) });
  });
  // Simpler deliveries: batches into single calls.
  sc.plans.forEach((p, i) => {
    if (!p.calls.some((c) => c.kind === 'batch')) return;
    const calls = p.calls.flatMap((c) => c.events.map((id): ScCall => ({ kind: 'single', events: [id] })));
    out.push({ ...sc, plans: sc.plans.map((q, j) => (j === i ? { calls } : q)) });
  });
  // Simpler numbers: commissions to zero.
  if (sc.fills.some((f) => f.commission !== '0'))
    out.push({ ...sc, fills: sc.fills.map((f) => ({ ...f, commission: '0', sendCommission: true })) });
  return out.filter((c) => isValid(c));
}

/** A scenario the generator could have made: references resolve, plans hold every event once in dependency order. */
export function isValid(sc: Scenario): boolean {
  const ids = new Set(sc.events.map((e) => e.id));
  const fills = new Set(sc.fills.map((f) => f.key));
  const orders = new Set(sc.orders.map((o) => o.key));
  if (sc.fills.some((f) => !orders.has(f.order))) return false;
  for (const e of sc.events) {
    if ('fill' in e && !fills.has(e.fill)) return false;
    if (e.kind === 'correctionReplay' && !ids.has(e.of)) return false;
    if (e.kind === 'replay' && e.change.order !== undefined && !orders.has(e.change.order)) return false;
  }
  for (const f of sc.fills) if (!sc.events.some((e) => e.kind === 'fill' && e.fill === f.key)) return false;
  // Every correction changes something (one that changes nothing is refused, a different case).
  const current = new Map(
    sc.fills.map((f) => [f.key, { quantity: f.quantity, price: f.price, commission: f.commission }]),
  );
  for (const e of sc.events) {
    if (e.kind !== 'correct') continue;
    const c = current.get(e.fill)!;
    const next = {
      quantity: e.quantity ?? c.quantity,
      price: e.price ?? c.price,
      commission: e.commission ?? c.commission,
    };
    if (next.quantity === c.quantity && next.price === c.price && next.commission === c.commission) return false;
    current.set(e.fill, next);
  }
  const deps = dependencies(sc);
  for (const p of sc.plans) {
    const seen = new Set<number>();
    for (const c of p.calls)
      for (const id of c.events) {
        if (seen.has(id) || !ids.has(id) || !deps.get(id)!.every((d) => seen.has(d))) return false;
        seen.add(id);
      }
    if (seen.size !== ids.size) return false;
  }
  return sc.plans.length > 0;
}

export function size(sc: Scenario): number {
  return sc.orders.length + sc.fills.length + sc.events.length + sc.setup.length + sc.plans.length;
}

/**
 * Greedy shrinking: keeps the first smaller variant that still fails, until none does or the budget
 * of attempts is spent. `fails` runs the scenario for real.
 */
export async function shrink(
  sc: Scenario,
  fails: (candidate: Scenario) => Promise<boolean>,
  options: { attempts?: number; deadline?: number; log?: (line: string) => void } = {},
): Promise<Scenario> {
  const budget = options.attempts ?? 300;
  const deadline = options.deadline ?? Infinity;
  const log = options.log ?? (() => undefined);
  let best = sc;
  let attempts = 0;
  for (let progress = true; progress && attempts < budget;) {
    progress = false;
    for (const candidate of shrinkCandidates(best)) {
      if (attempts++ >= budget || Date.now() > deadline) return best;
      if (await fails(candidate)) {
        best = candidate;
        progress = true;
        log(
          `  shrunk to size ${size(best)} (${best.orders.length} orders, ${best.fills.length} fills, ${best.events.length} events)`,
        );
        break;
      }
    }
  }
  return best;
}
