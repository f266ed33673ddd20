import { v7 as uuidv7 } from 'uuid';
import { BadUserInputError } from './errors';

/**
 * A new row id: a time-ordered UUID (version 7, RFC 9562: the Unix milliseconds first, then 74 random
 * bits; the `uuid` package keeps the ids one process makes in a millisecond in order). Rows written
 * together sit together in every index that leads with an id, so inserts append at an index's right
 * edge and a trail read in time order finds its rows on pages already in memory (migration
 * TimeOrderedIds, which makes the database's own default, `tradetrail_uuid_v7()`, the same kind).
 * Like any id it reveals when its row was made, which every row's `createdAt` says anyway; its 74
 * random bits keep it unguessable, and row-level security, not secrecy of ids, guards the rows.
 */
export function newId(): string {
  return uuidv7();
}

/** The id columns' default (the entities' metadata; the migration TimeOrderedIds sets it). */
export const NEW_ID_SQL = (): string => 'tradetrail_uuid_v7()';

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
