import { config } from '../config';
import { Dec } from '../decimal';

/**
 * An OCC option symbol: a root of 1–6 characters (Alpaca writes it compact, the OCC standard pads it
 * to 6 with spaces), then YYMMDD, C or P, and the strike × 1000 in 8 digits (DOMAIN.md §6).
 */
const OCC = /^[A-Z0-9.]{1,6} *\d{6}[CP]\d{8}$/;

export function isOccOptionSymbol(symbol: string): boolean {
  return OCC.test(symbol);
}

/**
 * The contract multiplier of a symbol: the configured one (TRADETRAIL_CONTRACT_MULTIPLIERS), else
 * 100 for a US equity option named by its OCC symbol, else 1.
 */
export function contractMultiplier(symbol: string, overrides = config().contractMultipliers): Dec {
  const configured = overrides[symbol];
  if (configured !== undefined) return new Dec(configured);
  return new Dec(isOccOptionSymbol(symbol) ? 100 : 1);
}
