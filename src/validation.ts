import type { ApolloServerPlugin } from '@apollo/server';
import { registerDecorator, validateSync, type ValidationOptions } from 'class-validator';
import { type DocumentNode, GraphQLError, Kind, visit } from 'graphql';
import { BadUserInputError, flattenValidation } from './errors';
import { Dec } from './decimal';

/**
 * Quantities, prices and commissions are `numeric(30,9)` columns: at most 21 digits before the
 * decimal point and 9 after.
 */
export const MAX_DECIMAL_PLACES = 9;
export const MAX_INTEGER_DIGITS = 21;
const COLUMN_LIMIT = new Dec(10).pow(MAX_INTEGER_DIGITS);

function decimalRule(name: string, test: (d: Dec) => boolean, message: (property: string) => string) {
  return (options?: ValidationOptions) =>
    (target: object, property: string): void => {
      registerDecorator({
        name,
        target: target.constructor,
        propertyName: property,
        options: { message: message(property), ...options },
        validator: {
          validate: (value: unknown) =>
            value === null || value === undefined || (Dec.isDecimal(value) && test(value as Dec)),
        },
      });
    };
}

export const IsPositiveDecimal = decimalRule(
  'isPositiveDecimal',
  (d) => d.gt(0),
  (p) => `${p} must be greater than 0.`,
);
export const IsNonNegativeDecimal = decimalRule(
  'isNonNegativeDecimal',
  (d) => d.gte(0),
  (p) => `${p} must be 0 or more.`,
);
/** Whether a decimal fits a `numeric(30,9)` column: at most 21 digits before the decimal point and 9 after. */
export const fitsNumericColumn = (d: Dec): boolean =>
  d.decimalPlaces() <= MAX_DECIMAL_PLACES && d.abs().lt(COLUMN_LIMIT);

/** What a `numeric(30,9)` column holds: at most 21 digits before the decimal point and 9 after. */
export const FitsNumericColumn = decimalRule(
  'fitsNumericColumn',
  fitsNumericColumn,
  (p) =>
    `${p} must have at most ${MAX_INTEGER_DIGITS} digits before the decimal point and ${MAX_DECIMAL_PLACES} after (what its column holds).`,
);

/** class-validator on one object, as a BAD_USER_INPUT naming the first bad field (null when valid). */
export function validationError(input: object): BadUserInputError | null {
  const failures = flattenValidation(validateSync(input, { forbidUnknownValues: false }));
  if (!failures.length) return null;
  return new BadUserInputError(failures.map((f) => f.message).join(' '), { field: failures[0].field });
}

/** Why a text cannot be stored as it is (PostgreSQL text holds neither NUL nor half a UTF-16 pair), or null. */
export function badTextReason(text: string): string | null {
  if (text.includes('\u0000')) return 'contains a NUL character (U+0000), which cannot be stored';
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(text)) {
    return 'contains an unpaired surrogate (half of a UTF-16 pair), which is not text';
  }
  return null;
}

/** The first string in a JSON-like value (variables) that cannot be stored, with its path. */
function findBadText(value: unknown, path: string): { path: string; reason: string } | null {
  if (typeof value === 'string') {
    const reason = badTextReason(value);
    return reason ? { path, reason } : null;
  }
  if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const found = findBadText(item, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`);
      if (found) return found;
    }
  }
  return null;
}

/** Per parsed document (Apollo hands the same document object for the same query text): its literals never change. */
const literalsChecked = new WeakMap<DocumentNode, string | null>();

function badTextInDocument(document: DocumentNode): string | null {
  const known = literalsChecked.get(document);
  if (known !== undefined) return known;
  let reason: string | null = null;
  visit(document, {
    StringValue(node) {
      reason ??= badTextReason(node.value);
    },
  });
  literalsChecked.set(document, reason);
  return reason;
}

/**
 * Before any resolver runs: the request names an operation that exists (an unknown `operationName`
 * is a 400 naming the operations there are), and no string in its variables or its literals holds a
 * NUL or an unpaired surrogate (PostgreSQL cannot store them; node-postgres would silently replace a
 * lone surrogate). Every text argument of the API is covered, whatever its field.
 */
export const inputGuardPlugin: ApolloServerPlugin = {
  async requestDidStart() {
    return {
      async didResolveOperation({ request, document, operation }) {
        const http = { status: 400 };
        if (!operation) {
          const names = document.definitions.flatMap((d) =>
            d.kind === Kind.OPERATION_DEFINITION ? [d.name?.value ?? '(anonymous)'] : [],
          );
          throw new GraphQLError(
            request.operationName
              ? `operationName is "${request.operationName}", but the query has no operation of that name (it has: ${names.join(', ')}).`
              : `The query holds ${names.length} operations (${names.join(', ')}); name the one to run with operationName.`,
            { extensions: { code: 'BAD_REQUEST', http } },
          );
        }
        const bad = findBadText(request.variables ?? {}, 'variables');
        if (bad) {
          throw new BadUserInputError(`${bad.path} ${bad.reason}.`, {
            field: bad.path.replace(/^variables\./, ''),
            http,
          });
        }
        const literal = badTextInDocument(document);
        if (literal) throw new BadUserInputError(`A string in the query ${literal}.`, { http });
      },
    };
  },
};
