import { registerDecorator, validateSync, type ValidationOptions } from 'class-validator';
import { BadUserInputError, flattenValidation } from './errors';
import { Dec } from './decimal';

/** Quantities and prices carry at most 9 decimal places (the scale of their `numeric(30,9)` columns). */
export const MAX_DECIMAL_PLACES = 9;

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
export const HasAtMostNineDecimals = decimalRule(
  'hasAtMostNineDecimals',
  (d) => d.decimalPlaces() <= MAX_DECIMAL_PLACES,
  (p) => `${p} has more than ${MAX_DECIMAL_PLACES} decimal places.`,
);

/** class-validator on one object, as a BAD_USER_INPUT naming the first bad field (null when valid). */
export function validationError(input: object): BadUserInputError | null {
  const failures = flattenValidation(validateSync(input, { forbidUnknownValues: false }));
  if (!failures.length) return null;
  return new BadUserInputError(failures.map((f) => f.message).join(' '), { field: failures[0].field });
}
