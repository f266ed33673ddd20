import { GraphQLScalarType, Kind } from 'graphql';
import { GraphQLDateTimeISO } from 'graphql-scalars';
import { BadUserInputError } from './errors';
import { Dec, decimalToString } from './decimal';

const DECIMAL_TEXT = /^-?(0|[1-9]\d{0,29})(\.\d{1,18})?$/;
/** Canonical decimal text (what `decimalToString` and the read path's `trim_scale` write): passed through as it is. */
const CANONICAL_DECIMAL = /^(0|-?[1-9]\d*(\.\d*[1-9])?|-?0\.\d*[1-9])$/;

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
    if (typeof value === 'string') return CANONICAL_DECIMAL.test(value) ? value : decimalToString(parseDecimal(value));
    if (Dec.isDecimal(value)) return decimalToString(value as Dec);
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

/** Times a request may carry: from the Unix epoch up to (not including) 2200, in UTC. */
export const EARLIEST_TIME = new Date('1970-01-01T00:00:00Z');
export const LATEST_TIME = new Date('2200-01-01T00:00:00Z');

function inTimeRange(value: Date): Date {
  if (value < EARLIEST_TIME || value >= LATEST_TIME) {
    throw new BadUserInputError(
      `Times must be from ${EARLIEST_TIME.toISOString()} up to (not including) ${LATEST_TIME.toISOString()}; got ${value.toISOString()}.`,
    );
  }
  return value;
}

/**
 * graphql-scalars' DateTimeISO (RFC 3339 date-times, which refuses impossible dates such as month 13
 * or 30 February), with the range a trading record can have: 1970 to 2200. Outputs are unchanged.
 */
/** A time as the read path reads it (`Row`) and `Date.toISOString` prints it: passed through as it is. */
const ISO_UTC_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const serializeTime = GraphQLDateTimeISO.serialize.bind(GraphQLDateTimeISO);

export const DateTimeScalar = new GraphQLScalarType<Date, string>({
  ...GraphQLDateTimeISO.toConfig(),
  serialize: (value) => (typeof value === 'string' && ISO_UTC_MILLIS.test(value) ? value : serializeTime(value)),
  description: `${GraphQLDateTimeISO.description ?? ''} Inputs must lie from 1970-01-01T00:00:00Z up to (not including) 2200-01-01T00:00:00Z.`,
  parseValue: (value) => inTimeRange(GraphQLDateTimeISO.parseValue(value) as Date),
  parseLiteral: (ast, variables) => inTimeRange(GraphQLDateTimeISO.parseLiteral(ast, variables) as Date),
});

/** A JSON object as stored in a `jsonb` column (broker payloads, log details). */
export type JsonObject = Record<string, unknown>;
