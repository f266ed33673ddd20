import { Dec, roundAverage } from '../decimal';

/** The numbers of a position that fills change (DOMAIN.md §4). */
export interface PositionState {
  quantity: Dec;
  averageEntryPrice: Dec;
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

export const FLAT: PositionState = {
  quantity: new Dec(0),
  averageEntryPrice: new Dec(0),
  realizedPnl: new Dec(0),
  totalCommission: new Dec(0),
};

/**
 * Applies one fill to a position, exactly: increase (weighted average entry), reduce (realize PnL
 * at the unchanged average), close at exactly zero, or flip (realize on the old quantity, open the
 * remainder at the fill price). Realized PnL is gross; commission is summed apart.
 */
export function applyFill(state: PositionState, fill: FillEffect): { state: PositionState; change: PositionChange } {
  const { quantity: q0, averageEntryPrice: avg0 } = state;
  const s = fill.signedQuantity;
  if (s.isZero()) throw new RangeError('a fill has a non-zero quantity');
  const totalCommission = state.totalCommission.plus(fill.commission);

  if (q0.isZero() || q0.isNegative() === s.isNegative()) {
    const quantity = q0.plus(s);
    const averageEntryPrice = roundAverage(
      q0.abs().times(avg0).plus(s.abs().times(fill.price)).dividedBy(quantity.abs()),
    );
    return {
      state: { quantity, averageEntryPrice, realizedPnl: state.realizedPnl, totalCommission },
      change: q0.isZero() ? 'OPEN' : 'INCREASE',
    };
  }

  // Opposite sign: realize PnL on the part that closes.
  const closing = Dec.min(s.abs(), q0.abs());
  const perUnit = q0.isPositive() ? fill.price.minus(avg0) : avg0.minus(fill.price);
  const realizedPnl = state.realizedPnl.plus(closing.times(perUnit));
  const quantity = q0.plus(s);
  if (quantity.isZero()) {
    return { state: { quantity, averageEntryPrice: avg0, realizedPnl, totalCommission }, change: 'CLOSE' };
  }
  if (quantity.isNegative() === q0.isNegative()) {
    return { state: { quantity, averageEntryPrice: avg0, realizedPnl, totalCommission }, change: 'REDUCE' };
  }
  return { state: { quantity, averageEntryPrice: fill.price, realizedPnl, totalCommission }, change: 'FLIP' };
}

/** Replays fills in order from flat: recomputing a position. */
export function replayFills(fills: FillEffect[]): PositionState {
  return fills.reduce((state, fill) => applyFill(state, fill).state, FLAT);
}

/** Average fill price of an order: Σ(qᵢ·pᵢ) / Σqᵢ, rounded to 18 places; null without fills. */
export function averageFillPrice(fills: { quantity: Dec; price: Dec }[]): Dec | null {
  const total = fills.reduce((sum, f) => sum.plus(f.quantity), new Dec(0));
  if (total.isZero()) return null;
  return roundAverage(fills.reduce((sum, f) => sum.plus(f.quantity.times(f.price)), new Dec(0)).dividedBy(total));
}
