import { GraphQLScalarType, Kind } from 'graphql';
import { BadUserInputError } from './errors';
import { Dec, decimalToString } from './decimal';

const DECIMAL_TEXT = /^-?(0|[1-9]\d{0,29})(\.\d{1,18})?$/;

function parseDecimal(text: unknown): Dec {
  if (typeof text !== 'string' || !DECIMAL_TEXT.test(text)) {
    throw new BadUserInputError(
      `Decimal values are strings of digits with an optional sign and fraction, such as "150.25" or "-0.5"; got ${JSON.stringify(text)}.`,
    );
  }
  return new Dec(text);
}

/**
 * Exact decimal, serialised as a string ("150.25") so that no JSON number and no float ever
 * carries a price or a quantity. Inputs must be strings as well.
 */
export const DecimalScalar = new GraphQLScalarType<Dec, string>({
  name: 'Decimal',
  description:
    'An exact decimal number carried as a string, e.g. "150.25". Never a float: quantities and prices keep every digit.',
  serialize(value) {
    if (Dec.isDecimal(value)) return decimalToString(value as Dec);
    if (typeof value === 'string') return decimalToString(parseDecimal(value));
    throw new TypeError('Decimal fields must be resolved from a Decimal or a decimal string.');
  },
  parseValue: parseDecimal,
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING) {
      throw new BadUserInputError('Decimal literals must be quoted strings, such as "150.25".');
    }
    return parseDecimal(ast.value);
  },
});

/** A JSON object as stored in a `jsonb` column (broker payloads, log details). */
export type JsonObject = Record<string, unknown>;
