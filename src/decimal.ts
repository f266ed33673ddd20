import Decimal from 'decimal.js';
import type { ValueTransformer } from 'typeorm';

/**
 * Exact decimal arithmetic for every quantity and price. Sums and products of `numeric(30,9)` values
 * with a contract multiplier stay far below 200 significant digits, so they are exact; every division
 * goes through `divideRounded`, which is exact to the last place whatever the precision.
 */
export const Dec = Decimal.clone({ precision: 200, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -200, toExpPos: 200 });
export type Dec = Decimal;

/** Averages (fill price, entry price) and cost removed on a reduce: 18 decimal places, half to even. */
export const AVERAGE_SCALE = 18;

/**
 * a / b correctly rounded half to even at `places` decimals: an integer division with its exact
 * remainder, so no intermediate rounding can move the last digit.
 */
export function divideRounded(a: Decimal, b: Decimal, places: number = AVERAGE_SCALE): Decimal {
  if (b.isZero()) throw new RangeError('division by zero');
  const scale = new Dec(10).pow(places);
  const n = new Dec(a).times(scale);
  const d = new Dec(b);
  const q = n.dividedToIntegerBy(d); // truncated toward zero
  const r = n.minus(q.times(d)); // exact; |r| < |d|, sign of n
  const twice = r.abs().times(2);
  const cmp = twice.comparedTo(d.abs());
  const negative = n.isNegative() !== d.isNegative();
  let result = q;
  if (cmp > 0 || (cmp === 0 && !q.mod(2).isZero())) result = q.plus(negative ? -1 : 1);
  return result.dividedBy(scale);
}

export function roundAverage(value: Decimal): Decimal {
  return value.toDecimalPlaces(AVERAGE_SCALE, Decimal.ROUND_HALF_EVEN);
}

/** Canonical text of a decimal: no exponent, no trailing zeros ("150.25", "-3", "0.000000001"). */
export function decimalToString(value: Decimal): string {
  return value.toFixed();
}

/** Whether a decimal — a Decimal, or the canonical text the read path reads (`Row`) — is above zero. */
export function isPositive(value: Decimal | string): boolean {
  return typeof value === 'string' ? value !== '0' && !value.startsWith('-') : value.gt(0);
}

/** `numeric` column <-> Decimal. PostgreSQL returns numerics as strings, so nothing passes through a float. */
export const decimalTransformer: ValueTransformer = {
  to: (value: Decimal | string | null | undefined) =>
    value === null || value === undefined ? value : typeof value === 'string' ? value : decimalToString(value),
  from: (value: string | null) => (value === null ? null : new Dec(value)),
};

/** `bigint` column <-> number (values stay far below 2^53). */
export const bigintTransformer: ValueTransformer = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value === null ? null : Number(value)),
};
