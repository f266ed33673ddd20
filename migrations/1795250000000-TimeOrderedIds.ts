import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The tables whose ids the database makes when an insert gives none. */
const TABLES = ['traders', 'positions', 'orders', 'fills', 'fill_corrections', 'execution_logs'];

/**
 * New ids are time-ordered UUIDs (version 7, RFC 9562: 48 bits of Unix milliseconds, then 74 random
 * bits), here for the rows the database numbers itself and in `src/ids.ts` for those the server
 * numbers. Existing ids stay as they are: every column is still a plain `uuid`.
 *
 * Why: with random (version 4) ids, the primary keys and the indexes that lead with an id (a fill's
 * or an entry's order, an entry's leaf) put each new row on a random page, and reading a trail in
 * time order probes a random page of each of them per row. Time-ordered ids put rows written together
 * next to each other in every such index: inserts touch the index's right edge, and an export or a
 * trail read walks the indexes nearly in order, from pages already in memory.
 *
 * `tradetrail_uuid_v7()` is plain SQL, so that it works on every supported PostgreSQL (the built-in
 * `uuidv7()` arrives with 18): the bytes of a random UUID with its first 48 bits replaced by the
 * milliseconds of `clock_timestamp()` and the version nibble set to 7 (bits 52 and 53 added to the 4).
 */
export class TimeOrderedIds1795250000000 implements MigrationInterface {
  name = 'TimeOrderedIds1795250000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION "tradetrail_uuid_v7"() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
        SELECT encode(
          set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
            52, 1), 53, 1),
          'hex')::uuid
      $$`);
    for (const table of TABLES) {
      await q.query(`ALTER TABLE "${table}" ALTER COLUMN "id" SET DEFAULT "tradetrail_uuid_v7"()`);
    }
  }

  public async down(q: QueryRunner): Promise<void> {
    for (const table of TABLES) {
      await q.query(`ALTER TABLE "${table}" ALTER COLUMN "id" SET DEFAULT gen_random_uuid()`);
    }
    await q.query(`DROP FUNCTION "tradetrail_uuid_v7"()`);
  }
}
