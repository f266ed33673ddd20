import { BadUserInputError } from './errors';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** Ids are UUIDs; anything else is refused before it reaches SQL. */
export function assertId(value: string, field = 'id'): string {
  if (!isUuid(value)) {
    throw new BadUserInputError(
      `${field} must be a UUID such as "0b9f3c1e-8d7a-4c21-9a57-2f7e6d1c4b3a"; got ${JSON.stringify(value)}.`,
      {
        field,
      },
    );
  }
  return value.toLowerCase();
}

export const UUID_MESSAGE = (field: string): { message: string } => ({
  message: `${field} must be a UUID such as "0b9f3c1e-8d7a-4c21-9a57-2f7e6d1c4b3a".`,
});
