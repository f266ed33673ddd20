import { Dec, divideRounded } from '../decimal';

/**
 * The numbers of a position that fills change (DOMAIN.md §4). `costBasis` is the exact cost of the
 * open quantity (a magnitude: Σ|q|·p·m of what opened or increased it, less what reduces removed);
 * nothing is ever derived from a rounded average.
 */
export interface PositionState {
  /** Signed: + long, − short, 0 flat. */
  quantity: Dec;
  costBasis: Dec;
  realizedPnl: Dec;
  totalCommission: Dec;
}

export interface FillEffect {
  /** Signed quantity: + for BUY, − for SELL. */
  signedQuantity: Dec;
  price: Dec;
  commission: Dec;
}

export type PositionChange = 'OPEN' | 'INCREASE' | 'REDUCE' | 'CLOSE' | 'FLIP';

export const FLAT: PositionState = Object.freeze({
  quantity: new Dec(0),
  costBasis: new Dec(0),
  realizedPnl: new Dec(0),
  totalCommission: new Dec(0),
});

/** Display only, never an input: cost_basis / (|quantity| × multiplier), 18 places half-even; null when flat. */
export function averageEntryPrice(state: PositionState, multiplier: Dec): Dec | null {
  return state.quantity.isZero() ? null : divideRounded(state.costBasis, state.quantity.abs().times(multiplier));
}

export type Step =
  | { change: 'OPEN' | 'INCREASE' | 'REDUCE' | 'CLOSE'; state: PositionState }
  /** The position closes on its quantity; the remainder opens a new position (with the fill's commission). */
  | { change: 'FLIP'; state: PositionState; opened: PositionState };

/**
 * One fill applied to a position, exactly (DOMAIN.md §4), with contract multiplier `m`:
 * - open or increase: cost += |s|·p·m;
 * - reduce: removed = cost × |s| / |q| rounded half-even to 18 places, realized += proceeds − removed
 *   (signed for long and short), cost −= removed;
 * - close: removed = all the remaining cost, so a closed position's realized PnL is its exact cash flow;
 * - flip: close on |q|, then the remainder opens the other side at p as a new position.
 * Realized PnL is gross; the fill's commission goes to the position the fill ends in.
 */
export function applyFill(state: PositionState, fill: FillEffect, m: Dec): Step {
  const q0 = state.quantity;
  const s = fill.signedQuantity;
  if (s.isZero()) throw new RangeError('a fill has a non-zero quantity');
  const notional = (qty: Dec): Dec => qty.abs().times(fill.price).times(m);

  if (q0.isZero() || q0.isNegative() === s.isNegative()) {
    return {
      change: q0.isZero() ? 'OPEN' : 'INCREASE',
      state: {
        quantity: q0.plus(s),
        costBasis: (q0.isZero() ? new Dec(0) : state.costBasis).plus(notional(s)),
        realizedPnl: state.realizedPnl,
        totalCommission: state.totalCommission.plus(fill.commission),
      },
    };
  }

  const long = q0.isPositive();
  const realize = (qty: Dec, removed: Dec): Dec =>
    state.realizedPnl.plus(long ? notional(qty).minus(removed) : removed.minus(notional(qty)));
  if (s.abs().lt(q0.abs())) {
    const removed = divideRounded(state.costBasis.times(s.abs()), q0.abs());
    return {
      change: 'REDUCE',
      state: {
        quantity: q0.plus(s),
        costBasis: state.costBasis.minus(removed),
        realizedPnl: realize(s, removed),
        totalCommission: state.totalCommission.plus(fill.commission),
      },
    };
  }
  const closed: PositionState = {
    quantity: new Dec(0),
    costBasis: new Dec(0),
    realizedPnl: realize(q0, state.costBasis),
    totalCommission: state.totalCommission,
  };
  if (s.abs().eq(q0.abs())) {
    return { change: 'CLOSE', state: { ...closed, totalCommission: state.totalCommission.plus(fill.commission) } };
  }
  const rest = q0.plus(s);
  return {
    change: 'FLIP',
    state: closed,
    opened: {
      quantity: rest,
      costBasis: notional(rest),
      realizedPnl: new Dec(0),
      totalCommission: fill.commission,
    },
  };
}

/** A fill as the book sees it: its effect and its event time. */
export interface BookFill extends FillEffect {
  executedAt: Date;
}

/** One position of a book's replay. */
export interface Segment<F extends BookFill> {
  /** The fills whose position this is, in replay order (a flipping fill belongs to the position it opens). */
  fills: F[];
  state: PositionState;
  /** The last average entry price while open (display only). */
  averageEntryPrice: Dec;
  openedAt: Date;
  closedAt: Date | null;
  /** Opened by the flip of the segment before it. */
  flipped: boolean;
  /** How each of its fills changed it, and the quantity after it. */
  steps: Map<F, { change: PositionChange; quantity: Dec }>;
}

/**
 * Replays a book's fills (already in (executed_at, arrival) order) into its positions. `start` is the
 * position the replay continues (the open one, on the fast path), or null to start flat.
 */
export function netBook<F extends BookFill>(
  start: { state: PositionState; averageEntryPrice: Dec; openedAt: Date } | null,
  fills: F[],
  m: Dec,
): Segment<F>[] {
  const segments: Segment<F>[] = [];
  // The last open state of each segment: its average is computed once, at the end (display only).
  const lastOpen = new Map<Segment<F>, PositionState>();
  const open = (state: PositionState, openedAt: Date, flipped: boolean, averageEntryPrice = new Dec(0)): Segment<F> => {
    const segment: Segment<F> = {
      fills: [],
      state,
      averageEntryPrice,
      openedAt,
      closedAt: null,
      flipped,
      steps: new Map(),
    };
    segments.push(segment);
    return segment;
  };
  let current: Segment<F> | null = start ? open(start.state, start.openedAt, false, start.averageEntryPrice) : null;
  for (const f of fills) {
    current ??= open(FLAT, f.executedAt, false);
    const step = applyFill(current.state, f, m);
    current.state = step.state;
    if (step.change === 'FLIP') {
      current.closedAt = f.executedAt;
      current = open(step.opened, f.executedAt, true);
      current.fills.push(f);
      current.steps.set(f, { change: 'FLIP', quantity: step.opened.quantity });
      lastOpen.set(current, step.opened);
      continue;
    }
    current.fills.push(f);
    current.steps.set(f, { change: step.change, quantity: step.state.quantity });
    if (step.change === 'CLOSE') {
      current.closedAt = f.executedAt;
      current = null;
    } else {
      lastOpen.set(current, step.state);
    }
  }
  for (const [segment, state] of lastOpen) segment.averageEntryPrice = averageEntryPrice(state, m)!;
  return segments;
}

/** Average fill price of an order: Σ(qᵢ·pᵢ) / Σqᵢ, rounded to 18 places; null without fills. */
export function averageFillPrice(fills: { quantity: Dec; price: Dec }[]): Dec | null {
  const total = fills.reduce((sum, f) => sum.plus(f.quantity), new Dec(0));
  if (total.isZero()) return null;
  return divideRounded(
    fills.reduce((sum, f) => sum.plus(f.quantity.times(f.price)), new Dec(0)),
    total,
  );
}
