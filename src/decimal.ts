import Decimal from 'decimal.js';
import type { ValueTransformer } from 'typeorm';

/**
 * Exact decimal arithmetic for every quantity and price. 60 significant digits is far beyond
 * `numeric(30,9)` inputs; averages are rounded explicitly (see `roundAverage`).
 */
export const Dec = Decimal.clone({ precision: 60, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -60, toExpPos: 60 });
export type Dec = Decimal;

/** Averages (fill price, entry price) are stored with 18 decimal places, rounded half to even. */
export const AVERAGE_SCALE = 18;
export function roundAverage(value: Decimal): Decimal {
  return value.toDecimalPlaces(AVERAGE_SCALE, Decimal.ROUND_HALF_EVEN);
}

/** Canonical text of a decimal: no exponent, no trailing zeros ("150.25", "-3", "0.000000001"). */
export function decimalToString(value: Decimal): string {
  return value.toFixed();
}

/** `numeric` column <-> Decimal. PostgreSQL returns numerics as strings, so nothing passes through a float. */
export const decimalTransformer: ValueTransformer = {
  to: (value: Decimal | string | null | undefined) =>
    value === null || value === undefined ? value : typeof value === 'string' ? value : decimalToString(value),
  from: (value: string | null) => (value === null ? null : new Dec(value)),
};
