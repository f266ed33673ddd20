import { Dec, roundAverage } from '../decimal';

/** The numbers of a position that fills change (DOMAIN.md §4). */
export interface PositionState {
  quantity: Dec;
  averageEntryPrice: Dec;
  /**
   * Exact cost of the open quantity (Σ|q|·p of the fills that opened or increased it, since the
   * last reduction). The average is derived from it, so it does not drift with the order of fills.
   */
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

export const FLAT: PositionState = {
  quantity: new Dec(0),
  averageEntryPrice: new Dec(0),
  costBasis: new Dec(0),
  realizedPnl: new Dec(0),
  totalCommission: new Dec(0),
};

/**
 * Applies one fill to a position, exactly: increase (weighted average entry), reduce (realize PnL
 * at the unchanged average), close at exactly zero, or flip (realize on the old quantity, open the
 * remainder at the fill price). Realized PnL is gross; commission is summed apart.
 */
export function applyFill(state: PositionState, fill: FillEffect): { state: PositionState; change: PositionChange } {
  const { quantity: q0, averageEntryPrice: avg0, realizedPnl: pnl0 } = state;
  const s = fill.signedQuantity;
  if (s.isZero()) throw new RangeError('a fill has a non-zero quantity');
  const totalCommission = state.totalCommission.plus(fill.commission);

  if (q0.isZero() || q0.isNegative() === s.isNegative()) {
    // Open or increase: the exact cost grows, the average is derived from it.
    const quantity = q0.plus(s);
    const costBasis = (q0.isZero() ? new Dec(0) : state.costBasis).plus(s.abs().times(fill.price));
    const averageEntryPrice = roundAverage(costBasis.dividedBy(quantity.abs()));
    const change = q0.isZero() ? 'OPEN' : 'INCREASE';
    return { state: { quantity, averageEntryPrice, costBasis, realizedPnl: pnl0, totalCommission }, change };
  }

  // Opposite sign: realize PnL on the part that closes, at the unchanged average.
  const closing = Dec.min(s.abs(), q0.abs());
  const perUnit = q0.isPositive() ? fill.price.minus(avg0) : avg0.minus(fill.price);
  const realizedPnl = pnl0.plus(closing.times(perUnit));
  const quantity = q0.plus(s);
  if (quantity.isZero()) {
    return {
      state: { quantity, averageEntryPrice: avg0, costBasis: new Dec(0), realizedPnl, totalCommission },
      change: 'CLOSE',
    };
  }
  if (quantity.isNegative() === q0.isNegative()) {
    const costBasis = quantity.abs().times(avg0);
    return { state: { quantity, averageEntryPrice: avg0, costBasis, realizedPnl, totalCommission }, change: 'REDUCE' };
  }
  // Flip: the remainder opens the other side at the fill price.
  const costBasis = quantity.abs().times(fill.price);
  return {
    state: { quantity, averageEntryPrice: fill.price, costBasis, realizedPnl, totalCommission },
    change: 'FLIP',
  };
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
