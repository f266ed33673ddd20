import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The event-time ledger (DOMAIN.md §2–§4):
 * - fills carry their book (trader_id, symbol) and an arrival number, so a book replays in
 *   (executed_at, arrival) order straight from one index; exec ids are unique per venue (a null venue
 *   is one venue), not per order;
 * - a fill the venue reports on a REPLACED or REJECTED order, or beyond the order's quantity, is an
 *   exception: recorded and applied, never dropped. The excess over an order's quantity is modelled
 *   (orders.overfilled_quantity, fills.overfilled_quantity), so `filled_quantity <= quantity` still holds;
 * - orders keep the status their events gave them (base_status); PARTIAL/FILLED are derived from it
 *   and the fills, so a bust can take FILLED back;
 * - corrections and busts are immutable records that point at the fill (fill_corrections);
 * - a flip closes a position and opens a new one, linked by flipped_from_id; positions carry the
 *   contract multiplier they were computed with and the version of the rules (rules_version: rows
 *   written before this migration are 1 and are replayed by `npm run ledger:upgrade`, which `npm start`
 *   runs).
 */
export class EventTimeLedger1795243000000 implements MigrationInterface {
  name = 'EventTimeLedger1795243000000';

  public async up(q: QueryRunner): Promise<void> {
    // Row-level security is forced (it binds the owner too): the data changes below act as admin.
    await q.query(`SET LOCAL tradetrail.role = 'admin'`);
    const duplicates = (await q.query(
      `SELECT venue, exec_id, count(*)::int AS n FROM fills GROUP BY venue, exec_id HAVING count(*) > 1 LIMIT 5`,
    )) as { venue: string | null; exec_id: string; n: number }[];
    if (duplicates.length) {
      throw new Error(
        `Exec ids must be unique per venue, but ${duplicates
          .map((d) => `"${d.exec_id}" (venue ${d.venue ?? 'none'}) is recorded ${d.n} times`)
          .join('; ')}. Resolve them before upgrading.`,
      );
    }

    // Log actions of this ledger (kept by down(): PostgreSQL cannot drop an enum value in use).
    for (const action of ['CORRECTED', 'BUSTED', 'EXCEPTION']) {
      await q.query(`ALTER TYPE "execution_log_action" ADD VALUE IF NOT EXISTS '${action}'`);
    }

    // Fills: their book, arrival order, exception and overfill.
    await q.query(`CREATE TYPE "fill_exception" AS ENUM ('OVERFILL', 'ORDER_REPLACED', 'ORDER_REJECTED')`);
    await q.query(`CREATE SEQUENCE "fills_arrival_seq" AS bigint`);
    await q.query(`GRANT USAGE ON SEQUENCE "fills_arrival_seq" TO tradetrail_app`);
    await q.query(`
      ALTER TABLE "fills"
        ADD "trader_id" uuid,
        ADD "symbol" varchar(64),
        ADD "arrival" bigint NOT NULL DEFAULT nextval('fills_arrival_seq'),
        ADD "arrival_exception" "fill_exception",
        ADD "overfilled_quantity" numeric(30,9) NOT NULL DEFAULT '0'`);
    await q.query(`ALTER SEQUENCE "fills_arrival_seq" OWNED BY "fills"."arrival"`);
    await q.query(`
      UPDATE fills f SET trader_id = o.trader_id, symbol = o.symbol,
        arrival = r.n
      FROM orders o, (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM fills) r
      WHERE o.id = f.order_id AND r.id = f.id`);
    await q.query(`SELECT setval('fills_arrival_seq', coalesce((SELECT max(arrival) FROM fills), 0) + 1, false)`);
    await q.query(`ALTER TABLE "fills" ALTER "trader_id" SET NOT NULL, ALTER "symbol" SET NOT NULL`);
    // Not bounded by "quantity": a correction can raise a fill's effective quantity above the recorded one.
    await q.query(
      `ALTER TABLE "fills" ADD CONSTRAINT "chk_fills_overfilled_quantity" CHECK ("overfilled_quantity" >= 0)`,
    );
    await q.query(`DROP INDEX "uq_fills_order_exec_id"`);
    // exec_id first: under row-level security only leakproof conditions reach an index, and
    // `exec_id = $1` is one where `coalesce(venue, '') = $1` is not.
    await q.query(`CREATE UNIQUE INDEX "uq_fills_venue_exec_id" ON "fills" ("exec_id", (coalesce("venue", '')))`);
    await q.query(`CREATE INDEX "idx_fills_book" ON "fills" ("trader_id", "symbol", "executed_at", "arrival")`);

    // Orders: the status from events alone, and the excess over the quantity.
    await q.query(`ALTER TABLE "orders" ADD "base_status" "order_status"`);
    await q.query(`ALTER TABLE "orders" ADD "overfilled_quantity" numeric(30,9) NOT NULL DEFAULT '0'`);
    // The exact Σ q·p of each order's fills: the average fill price is derived from it.
    await q.query(`ALTER TABLE "orders" ADD "fill_notional" numeric NOT NULL DEFAULT '0'`);
    await q.query(
      `UPDATE orders o SET fill_notional = s.n FROM (SELECT order_id, sum(quantity * price) AS n FROM fills GROUP BY order_id) s WHERE s.order_id = o.id`,
    );
    await q.query(`
      UPDATE orders o SET base_status = CASE
        WHEN o.status NOT IN ('PARTIAL', 'FILLED') THEN o.status
        ELSE coalesce((SELECT l.to_status FROM execution_logs l
                       WHERE l.order_id = o.id AND l.action IN ('CANCELLED', 'EXPIRED') ORDER BY l.seq DESC LIMIT 1),
                      'ACCEPTED')
      END`);
    await q.query(`ALTER TABLE "orders" ALTER "base_status" SET NOT NULL, ALTER "base_status" SET DEFAULT 'PENDING'`);
    await q.query(`ALTER TABLE "orders" DROP CONSTRAINT "chk_orders_filled_status"`);
    await q.query(`
      ALTER TABLE "orders"
        ADD CONSTRAINT "chk_orders_filled_status" CHECK (
          ("status" <> 'FILLED' OR "filled_quantity" = "quantity") AND
          ("filled_quantity" < "quantity" OR "status" IN ('FILLED', 'REPLACED', 'REJECTED'))),
        ADD CONSTRAINT "chk_orders_overfilled_quantity" CHECK (
          "overfilled_quantity" >= 0 AND ("overfilled_quantity" = 0 OR "filled_quantity" = "quantity")),
        ADD CONSTRAINT "chk_orders_base_status" CHECK ("base_status" NOT IN ('PARTIAL', 'FILLED'))`);

    // Positions: flip links, multiplier, rules version; the replay may remove a position it no longer needs.
    await q.query(`
      ALTER TABLE "positions"
        ADD "flipped_from_id" uuid,
        ADD "contract_multiplier" numeric NOT NULL DEFAULT '1',
        ADD "rules_version" smallint NOT NULL DEFAULT '1'`);
    await q.query(`ALTER TABLE "positions" ALTER "rules_version" SET DEFAULT '2'`);
    await q.query(
      `ALTER TABLE "positions" ADD CONSTRAINT "fk_positions_flipped_from" FOREIGN KEY ("flipped_from_id") REFERENCES "positions" ("id") ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED`,
    );
    await q.query(
      `ALTER TABLE "positions" ADD CONSTRAINT "chk_positions_contract_multiplier" CHECK ("contract_multiplier" > 0)`,
    );
    await q.query(`CREATE INDEX "idx_positions_flipped_from" ON "positions" ("flipped_from_id")`);
    await q.query(`CREATE INDEX "idx_positions_book_opened" ON "positions" ("trader_id", "symbol", "opened_at")`);
    await q.query(`GRANT DELETE ON positions TO tradetrail_app`);
    await q.query(`CREATE POLICY positions_delete ON positions FOR DELETE USING (tradetrail_can_write(trader_id))`);

    // Fill policies: the owner is on the row now (no per-row look-up of the order).
    await q.query(`DROP POLICY fills_read ON fills`);
    await q.query(`DROP POLICY fills_insert ON fills`);
    await q.query(`DROP POLICY fills_update ON fills`);
    await q.query(`CREATE POLICY fills_read ON fills FOR SELECT USING (tradetrail_can_read(trader_id))`);
    await q.query(`CREATE POLICY fills_insert ON fills FOR INSERT WITH CHECK (tradetrail_can_write(trader_id))`);
    await q.query(
      `CREATE POLICY fills_update ON fills FOR UPDATE USING (tradetrail_can_write(trader_id)) WITH CHECK (tradetrail_can_write(trader_id))`,
    );

    // Corrections and busts: append-only, like the log.
    await q.query(`CREATE TYPE "fill_correction_kind" AS ENUM ('CORRECTION', 'BUST')`);
    await q.query(`
      CREATE TABLE "fill_corrections" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "fill_id" uuid NOT NULL,
        "trader_id" uuid NOT NULL,
        "symbol" varchar(64) NOT NULL,
        "correction_id" varchar(128) NOT NULL,
        "kind" "fill_correction_kind" NOT NULL,
        "quantity" numeric(30,9),
        "price" numeric(30,9),
        "commission" numeric(30,9),
        "previous_quantity" numeric(30,9) NOT NULL,
        "previous_price" numeric(30,9) NOT NULL,
        "previous_commission" numeric(30,9) NOT NULL,
        "reason" varchar(500) NOT NULL,
        "actor" varchar(128) NOT NULL,
        "source" varchar(32) NOT NULL,
        "seq" bigint GENERATED ALWAYS AS IDENTITY,
        "created_at" timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT "pk_fill_corrections" PRIMARY KEY ("id"),
        CONSTRAINT "fk_fill_corrections_fill" FOREIGN KEY ("fill_id") REFERENCES "fills" ("id") ON DELETE RESTRICT,
        CONSTRAINT "fk_fill_corrections_trader" FOREIGN KEY ("trader_id") REFERENCES "traders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "chk_fill_corrections_values" CHECK (
          ("kind" = 'BUST' AND "quantity" IS NULL AND "price" IS NULL AND "commission" IS NULL) OR
          ("kind" = 'CORRECTION' AND "quantity" > 0 AND "price" > 0 AND "commission" >= 0))
      )`);
    await q.query(`CREATE UNIQUE INDEX "uq_fill_corrections_correction_id" ON "fill_corrections" ("correction_id")`);
    await q.query(`CREATE INDEX "idx_fill_corrections_fill" ON "fill_corrections" ("fill_id", "seq")`);
    await q.query(`CREATE INDEX "idx_fill_corrections_book" ON "fill_corrections" ("trader_id", "symbol")`);
    await q.query(`
      CREATE FUNCTION "append_only"() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
          USING ERRCODE = 'insufficient_privilege',
                HINT = 'A change to a recorded execution is a new correction or bust, never an edit.';
      END
      $$`);
    await q.query(
      `CREATE TRIGGER "fill_corrections_no_update_delete" BEFORE UPDATE OR DELETE ON "fill_corrections" FOR EACH ROW EXECUTE FUNCTION append_only()`,
    );
    await q.query(
      `CREATE TRIGGER "fill_corrections_no_truncate" BEFORE TRUNCATE ON "fill_corrections" FOR EACH STATEMENT EXECUTE FUNCTION append_only()`,
    );
    await q.query(`GRANT SELECT, INSERT ON fill_corrections TO tradetrail_app`);
    await q.query(`REVOKE UPDATE, DELETE, TRUNCATE ON fill_corrections FROM PUBLIC`);
    await q.query(`ALTER TABLE "fill_corrections" ENABLE ROW LEVEL SECURITY`);
    await q.query(`ALTER TABLE "fill_corrections" FORCE ROW LEVEL SECURITY`);
    await q.query(
      `CREATE POLICY fill_corrections_read ON fill_corrections FOR SELECT USING (tradetrail_can_read(trader_id))`,
    );
    await q.query(
      `CREATE POLICY fill_corrections_insert ON fill_corrections FOR INSERT WITH CHECK (tradetrail_can_write(trader_id))`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "fill_corrections"`);
    await q.query(`DROP FUNCTION "append_only"()`);
    await q.query(`DROP TYPE "fill_correction_kind"`);
    await q.query(`DROP POLICY fills_read ON fills`);
    await q.query(`DROP POLICY fills_insert ON fills`);
    await q.query(`DROP POLICY fills_update ON fills`);
    const fillOwner = (all: string, check: string) =>
      `CASE WHEN current_setting('tradetrail.role', true) IN (${all}) THEN true
            WHEN current_setting('tradetrail.role', true) = 'trader'
              THEN EXISTS (SELECT 1 FROM orders o WHERE o.id = fills.order_id AND ${check}(o.trader_id))
            ELSE false END`;
    const read = fillOwner(`'admin', 'service', 'compliance'`, 'tradetrail_can_read');
    const write = fillOwner(`'admin', 'service'`, 'tradetrail_can_write');
    await q.query(`CREATE POLICY fills_read ON fills FOR SELECT USING (${read})`);
    await q.query(`CREATE POLICY fills_insert ON fills FOR INSERT WITH CHECK (${write})`);
    await q.query(`CREATE POLICY fills_update ON fills FOR UPDATE USING (${write}) WITH CHECK (${write})`);
    await q.query(`DROP POLICY positions_delete ON positions`);
    await q.query(`REVOKE DELETE ON positions FROM tradetrail_app`);
    await q.query(`DROP INDEX "idx_positions_book_opened"`);
    await q.query(`DROP INDEX "idx_positions_flipped_from"`);
    await q.query(`
      ALTER TABLE "positions" DROP CONSTRAINT "chk_positions_contract_multiplier",
        DROP CONSTRAINT "fk_positions_flipped_from",
        DROP COLUMN "rules_version", DROP COLUMN "contract_multiplier", DROP COLUMN "flipped_from_id"`);
    await q.query(`
      ALTER TABLE "orders" DROP CONSTRAINT "chk_orders_base_status", DROP CONSTRAINT "chk_orders_overfilled_quantity",
        DROP CONSTRAINT "chk_orders_filled_status"`);
    await q.query(
      `ALTER TABLE "orders" ADD CONSTRAINT "chk_orders_filled_status" CHECK (("status" = 'FILLED') = ("filled_quantity" = "quantity"))`,
    );
    await q.query(
      `ALTER TABLE "orders" DROP COLUMN "fill_notional", DROP COLUMN "overfilled_quantity", DROP COLUMN "base_status"`,
    );
    await q.query(`DROP INDEX "idx_fills_book"`);
    await q.query(`DROP INDEX "uq_fills_venue_exec_id"`);
    await q.query(`CREATE UNIQUE INDEX "uq_fills_order_exec_id" ON "fills" ("order_id", "exec_id")`);
    await q.query(`
      ALTER TABLE "fills" DROP CONSTRAINT "chk_fills_overfilled_quantity",
        DROP COLUMN "overfilled_quantity", DROP COLUMN "arrival_exception", DROP COLUMN "arrival",
        DROP COLUMN "symbol", DROP COLUMN "trader_id"`);
    await q.query(`DROP TYPE "fill_exception"`);
  }
}
