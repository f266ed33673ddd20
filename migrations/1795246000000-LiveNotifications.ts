import type { MigrationInterface, QueryRunner } from 'typeorm';

/** One trigger per table and event: PostgreSQL allows transition tables only on single-event triggers. */
const TRIGGERS = [
  { table: 'orders', event: 'INSERT' },
  { table: 'orders', event: 'UPDATE' },
  { table: 'positions', event: 'INSERT' },
  { table: 'positions', event: 'UPDATE' },
  { table: 'execution_logs', event: 'INSERT' },
] as const;

/**
 * Live subscriptions (src/live): every statement that inserts or updates orders or positions, or
 * appends to the execution log, announces the ids it wrote on the channel `tradetrail_events` — one
 * statement-level trigger per table, reading its transition table, so a statement writing 1,000 rows
 * sends a handful of notifications, not 1,000. A notification is
 * `{"table":"orders","byTrader":{"<trader id>":["<id>",…],…}}`: ids only (every subscriber reads the
 * rows itself, through its own identity), grouped by trader as a routing hint, cut into messages of
 * at most ~6,100 bytes (PostgreSQL refuses payloads of 8,000 bytes or more): about 150 ids each. The
 * usual statement (up to 150 rows of one trader) is one message, built without sorting; otherwise a
 * width of 39 bytes per id and 43 more per trader key sums to at most 6,000 per message, plus one id
 * and one repeated trader key at a boundary, plus the envelope. NOTIFY is transactional: delivered
 * when the transaction commits, in commit order, and never for one that rolls back.
 */
export class LiveNotifications1795246000000 implements MigrationInterface {
  name = 'LiveNotifications1795246000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION "tradetrail_notify_changes"() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        written integer;
        low text;
        high text;
        all_ids text;
        message text;
      BEGIN
        SELECT count(*), min(trader_id::text), max(trader_id::text), string_agg(id::text, '","')
          INTO written, low, high, all_ids FROM changed;
        IF written = 0 THEN
          RETURN NULL;
        END IF;
        -- The usual statement (one request's rows of one trader): one message, nothing to sort.
        IF low = high AND written <= 150 THEN
          PERFORM pg_notify('tradetrail_events', '{"table":"' || TG_TABLE_NAME || '","byTrader":{"' || low || '":["' || all_ids || '"]}}');
          RETURN NULL;
        END IF;
        FOR message IN
          SELECT '{"table":"' || TG_TABLE_NAME || '","byTrader":{' || string_agg(ids, ',') || '}}'
          FROM (
            SELECT chunk, '"' || trader_id || '":["' || string_agg(id::text, '","') || '"]' AS ids
            FROM (
              SELECT id, trader_id, (sum(width) OVER (ORDER BY trader_id, id) - 1) / 6000 AS chunk
              FROM (
                SELECT id, trader_id,
                       39 + CASE WHEN lag(trader_id) OVER (ORDER BY trader_id, id) IS DISTINCT FROM trader_id
                                 THEN 43 ELSE 0 END AS width
                FROM changed
              ) widths
            ) chunks
            GROUP BY chunk, trader_id
          ) per_trader
          GROUP BY chunk
        LOOP
          PERFORM pg_notify('tradetrail_events', message);
        END LOOP;
        RETURN NULL;
      END
      $$`);
    for (const { table, event } of TRIGGERS) {
      await q.query(
        `CREATE TRIGGER "${table}_${event.toLowerCase()}_notify" AFTER ${event} ON "${table}" REFERENCING NEW TABLE AS changed
         FOR EACH STATEMENT EXECUTE FUNCTION "tradetrail_notify_changes"()`,
      );
    }
  }

  public async down(q: QueryRunner): Promise<void> {
    for (const { table, event } of [...TRIGGERS].reverse()) {
      await q.query(`DROP TRIGGER "${table}_${event.toLowerCase()}_notify" ON "${table}"`);
    }
    await q.query(`DROP FUNCTION "tradetrail_notify_changes"()`);
  }
}
