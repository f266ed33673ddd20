import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Traders, positions, orders, fills and the append-only execution log (DOMAIN.md §1).
 * The execution log is numbered, hash-chained and made append-only by triggers: whoever inserts,
 * `seq`, `prev_hash`, `recorded_at` and `hash` are set by the database, and UPDATE, DELETE and
 * TRUNCATE are refused for every role, the owner included.
 */
export class Initial1795235823695 implements MigrationInterface {
  name = 'Initial1795235823695';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TYPE "position_status" AS ENUM ('OPEN', 'CLOSED')`);
    await q.query(`CREATE TYPE "order_side" AS ENUM ('BUY', 'SELL')`);
    await q.query(`CREATE TYPE "order_type" AS ENUM ('MARKET', 'LIMIT', 'STOP', 'STOP_LIMIT')`);
    await q.query(`CREATE TYPE "time_in_force" AS ENUM ('DAY', 'GTC', 'IOC', 'FOK', 'OPG', 'CLS')`);
    await q.query(
      `CREATE TYPE "order_status" AS ENUM ('PENDING', 'ACCEPTED', 'PARTIAL', 'FILLED', 'CANCELLED', 'REJECTED', 'EXPIRED', 'REPLACED')`,
    );
    await q.query(`CREATE TYPE "order_source" AS ENUM ('API', 'ALPACA', 'RECONCILIATION')`);
    await q.query(
      `CREATE TYPE "strategy_type" AS ENUM ('SINGLE_LEG', 'VERTICAL_SPREAD', 'STRADDLE', 'STRANGLE', 'IRON_CONDOR', 'CUSTOM')`,
    );
    await q.query(`CREATE TYPE "liquidity" AS ENUM ('MAKER', 'TAKER')`);
    await q.query(
      `CREATE TYPE "execution_log_action" AS ENUM ('SUBMITTED', 'APPROVED', 'ACCEPTED', 'EXECUTED', 'FILLED', 'REJECTED', 'CANCELLED', 'EXPIRED', 'REPLACED', 'RECOVERED', 'POSITION_LINKED', 'POSITION_UNLINKED', 'DUPLICATE_IGNORED')`,
    );

    await q.query(`
      CREATE TABLE "traders" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "name" character varying(200) NOT NULL,
        "external_ref" character varying(100),
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "pk_traders" PRIMARY KEY ("id")
      )`);
    await q.query(`CREATE UNIQUE INDEX "uq_traders_external_ref" ON "traders" ("external_ref")`);
    await q.query(`CREATE INDEX "idx_traders_name" ON "traders" ("name")`);

    await q.query(`
      CREATE TABLE "positions" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "trader_id" uuid NOT NULL,
        "symbol" character varying(64) NOT NULL,
        "quantity" numeric(30,9) NOT NULL DEFAULT '0',
        "average_entry_price" numeric NOT NULL DEFAULT '0',
        "realized_pnl" numeric NOT NULL DEFAULT '0',
        "total_commission" numeric NOT NULL DEFAULT '0',
        "status" "position_status" NOT NULL DEFAULT 'OPEN',
        "opened_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "closed_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "version" integer NOT NULL DEFAULT '1',
        CONSTRAINT "pk_positions" PRIMARY KEY ("id"),
        CONSTRAINT "fk_positions_trader" FOREIGN KEY ("trader_id") REFERENCES "traders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "chk_positions_closed_is_flat" CHECK ("status" <> 'CLOSED' OR "quantity" = 0),
        CONSTRAINT "chk_positions_closed_at" CHECK (("status" = 'CLOSED') = ("closed_at" IS NOT NULL)),
        CONSTRAINT "chk_positions_total_commission" CHECK ("total_commission" >= 0),
        CONSTRAINT "chk_positions_average_entry_price" CHECK ("average_entry_price" >= 0)
      )`);
    // One OPEN position per trader and symbol; any number of CLOSED ones.
    await q.query(
      `CREATE UNIQUE INDEX "uq_positions_open_trader_symbol" ON "positions" ("trader_id", "symbol") WHERE "status" = 'OPEN'`,
    );
    await q.query(`CREATE INDEX "idx_positions_trader_opened" ON "positions" ("trader_id", "opened_at")`);
    await q.query(`CREATE INDEX "idx_positions_symbol" ON "positions" ("symbol")`);
    await q.query(`CREATE INDEX "idx_positions_status" ON "positions" ("status")`);

    await q.query(`
      CREATE TABLE "orders" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "trader_id" uuid NOT NULL,
        "position_id" uuid,
        "client_order_id" character varying(48) NOT NULL,
        "broker_order_id" character varying(64),
        "symbol" character varying(64) NOT NULL,
        "side" "order_side" NOT NULL,
        "order_type" "order_type" NOT NULL,
        "time_in_force" "time_in_force" NOT NULL DEFAULT 'DAY',
        "quantity" numeric(30,9) NOT NULL,
        "price" numeric(30,9),
        "stop_price" numeric(30,9),
        "stop_loss" numeric(30,9),
        "take_profit" numeric(30,9),
        "status" "order_status" NOT NULL DEFAULT 'PENDING',
        "broker_status" character varying(32),
        "filled_quantity" numeric(30,9) NOT NULL DEFAULT '0',
        "average_fill_price" numeric,
        "trade_id" uuid,
        "strategy_type" "strategy_type",
        "raw_data" jsonb,
        "source" "order_source" NOT NULL DEFAULT 'API',
        "replaces_order_id" uuid,
        "parent_order_id" uuid,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "submitted_at" TIMESTAMP WITH TIME ZONE,
        "filled_at" TIMESTAMP WITH TIME ZONE,
        "canceled_at" TIMESTAMP WITH TIME ZONE,
        "expired_at" TIMESTAMP WITH TIME ZONE,
        "expires_at" TIMESTAMP WITH TIME ZONE,
        CONSTRAINT "pk_orders" PRIMARY KEY ("id"),
        CONSTRAINT "fk_orders_trader" FOREIGN KEY ("trader_id") REFERENCES "traders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "fk_orders_position" FOREIGN KEY ("position_id") REFERENCES "positions" ("id") ON DELETE SET NULL,
        CONSTRAINT "fk_orders_replaces_order" FOREIGN KEY ("replaces_order_id") REFERENCES "orders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "fk_orders_parent_order" FOREIGN KEY ("parent_order_id") REFERENCES "orders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "chk_orders_quantity_positive" CHECK ("quantity" > 0),
        CONSTRAINT "chk_orders_price_positive" CHECK ("price" IS NULL OR "price" > 0),
        CONSTRAINT "chk_orders_stop_price_positive" CHECK ("stop_price" IS NULL OR "stop_price" > 0),
        CONSTRAINT "chk_orders_filled_quantity_nonnegative" CHECK ("filled_quantity" >= 0),
        CONSTRAINT "chk_orders_filled_quantity_max" CHECK ("filled_quantity" <= "quantity"),
        CONSTRAINT "chk_orders_limit_requires_price" CHECK ("order_type" NOT IN ('LIMIT', 'STOP_LIMIT') OR "price" IS NOT NULL),
        CONSTRAINT "chk_orders_stop_requires_stop_price" CHECK ("order_type" NOT IN ('STOP', 'STOP_LIMIT') OR "stop_price" IS NOT NULL),
        CONSTRAINT "chk_orders_filled_status" CHECK (("status" = 'FILLED') = ("filled_quantity" = "quantity"))
      )`);
    await q.query(
      `CREATE UNIQUE INDEX "uq_orders_trader_client_order_id" ON "orders" ("trader_id", "client_order_id")`,
    );
    await q.query(`CREATE UNIQUE INDEX "uq_orders_broker_order_id" ON "orders" ("broker_order_id")`);
    await q.query(`CREATE INDEX "idx_orders_position_id" ON "orders" ("position_id")`);
    await q.query(`CREATE INDEX "idx_orders_position_created" ON "orders" ("position_id", "created_at")`);
    await q.query(`CREATE INDEX "idx_orders_trader_created" ON "orders" ("trader_id", "created_at" DESC)`);
    await q.query(`CREATE INDEX "idx_orders_status" ON "orders" ("status")`);
    await q.query(`CREATE INDEX "idx_orders_trader_status" ON "orders" ("trader_id", "status")`);
    await q.query(`CREATE INDEX "idx_orders_trade_id" ON "orders" ("trade_id")`);
    await q.query(`CREATE INDEX "idx_orders_symbol_created" ON "orders" ("symbol", "created_at")`);
    await q.query(`CREATE INDEX "idx_orders_replaces_order_id" ON "orders" ("replaces_order_id")`);
    await q.query(`CREATE INDEX "idx_orders_parent_order_id" ON "orders" ("parent_order_id")`);

    await q.query(`
      CREATE TABLE "fills" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "order_id" uuid NOT NULL,
        "position_id" uuid,
        "exec_id" character varying(128) NOT NULL,
        "quantity" numeric(30,9) NOT NULL,
        "price" numeric(30,9) NOT NULL,
        "commission" numeric(30,9) NOT NULL DEFAULT '0',
        "liquidity" "liquidity",
        "venue" character varying(32),
        "executed_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "pk_fills" PRIMARY KEY ("id"),
        CONSTRAINT "fk_fills_order" FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE CASCADE,
        CONSTRAINT "fk_fills_position" FOREIGN KEY ("position_id") REFERENCES "positions" ("id") ON DELETE SET NULL,
        CONSTRAINT "chk_fills_quantity_positive" CHECK ("quantity" > 0),
        CONSTRAINT "chk_fills_price_positive" CHECK ("price" > 0),
        CONSTRAINT "chk_fills_commission_nonnegative" CHECK ("commission" >= 0)
      )`);
    await q.query(`CREATE UNIQUE INDEX "uq_fills_order_exec_id" ON "fills" ("order_id", "exec_id")`);
    await q.query(`CREATE INDEX "idx_fills_order" ON "fills" ("order_id")`);
    await q.query(`CREATE INDEX "idx_fills_timestamp" ON "fills" ("executed_at" DESC)`);
    await q.query(`CREATE INDEX "idx_fills_position" ON "fills" ("position_id")`);

    await q.query(`
      CREATE TABLE "execution_logs" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "order_id" uuid NOT NULL,
        "trader_id" uuid NOT NULL,
        "seq" integer NOT NULL,
        "action" "execution_log_action" NOT NULL,
        "from_status" "order_status",
        "to_status" "order_status",
        "reason" character varying(500),
        "error_code" character varying(64),
        "retry_attempt" integer,
        "actor" character varying(128) NOT NULL,
        "source" character varying(32) NOT NULL,
        "details" jsonb,
        "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "recorded_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp(),
        "prev_hash" character(64),
        "hash" character(64) NOT NULL,
        CONSTRAINT "pk_execution_logs" PRIMARY KEY ("id"),
        CONSTRAINT "fk_execution_logs_order" FOREIGN KEY ("order_id") REFERENCES "orders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "fk_execution_logs_trader" FOREIGN KEY ("trader_id") REFERENCES "traders" ("id") ON DELETE RESTRICT,
        CONSTRAINT "chk_execution_logs_seq_positive" CHECK ("seq" >= 1)
      )`);
    await q.query(`CREATE UNIQUE INDEX "uq_execution_logs_order_seq" ON "execution_logs" ("order_id", "seq")`);
    await q.query(
      `CREATE INDEX "idx_execution_logs_trader_recorded" ON "execution_logs" ("trader_id", "recorded_at" DESC)`,
    );
    await q.query(`CREATE INDEX "idx_execution_logs_action" ON "execution_logs" ("action")`);
    await q.query(`CREATE INDEX "idx_execution_logs_recorded" ON "execution_logs" ("recorded_at")`);

    // The canonical content an entry's hash covers: every column but the hash, as jsonb text
    // (jsonb prints keys in a fixed order), times in UTC with microseconds.
    await q.query(`
      CREATE FUNCTION "execution_log_canonical"(e "execution_logs") RETURNS text
      LANGUAGE sql IMMUTABLE AS $$
        SELECT jsonb_build_array(
          e.id, e.order_id, e.trader_id, e.seq, e.action, e.from_status, e.to_status, e.reason,
          e.error_code, e.retry_attempt, e.actor, e.source, e.details,
          to_char(e.occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
          to_char(e.recorded_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
        )::text
      $$`);
    await q.query(`
      CREATE FUNCTION "execution_log_hash"(prev_hash text, e "execution_logs") RETURNS text
      LANGUAGE sql IMMUTABLE AS $$
        SELECT encode(sha256(convert_to(coalesce(prev_hash, '') || execution_log_canonical(e), 'UTF8')), 'hex')
      $$`);
    // Appends are serialised per order by a lock on the order row (NO KEY UPDATE does not conflict
    // with the KEY SHARE lock a fill's foreign key takes), then numbered and chained.
    await q.query(`
      CREATE FUNCTION "execution_logs_chain"() RETURNS trigger
      LANGUAGE plpgsql AS $$
      DECLARE
        last_seq integer;
        last_hash text;
      BEGIN
        PERFORM 1 FROM orders WHERE id = NEW.order_id FOR NO KEY UPDATE;
        SELECT seq, hash INTO last_seq, last_hash
          FROM execution_logs WHERE order_id = NEW.order_id ORDER BY seq DESC LIMIT 1;
        NEW.seq := coalesce(last_seq, 0) + 1;
        NEW.prev_hash := last_hash;
        NEW.recorded_at := clock_timestamp();
        NEW.hash := execution_log_hash(NEW.prev_hash, NEW);
        RETURN NEW;
      END
      $$`);
    await q.query(`
      CREATE FUNCTION "execution_logs_append_only"() RETURNS trigger
      LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'execution_logs is append-only: % is not allowed', TG_OP
          USING ERRCODE = 'insufficient_privilege',
                HINT = 'Corrections are recorded as new entries (e.g. RECOVERED), never by changing old ones.';
      END
      $$`);
    await q.query(
      `CREATE TRIGGER "execution_logs_chain" BEFORE INSERT ON "execution_logs" FOR EACH ROW EXECUTE FUNCTION execution_logs_chain()`,
    );
    await q.query(
      `CREATE TRIGGER "execution_logs_no_update_delete" BEFORE UPDATE OR DELETE ON "execution_logs" FOR EACH ROW EXECUTE FUNCTION execution_logs_append_only()`,
    );
    await q.query(
      `CREATE TRIGGER "execution_logs_no_truncate" BEFORE TRUNCATE ON "execution_logs" FOR EACH STATEMENT EXECUTE FUNCTION execution_logs_append_only()`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP FUNCTION "execution_log_hash"(text, "execution_logs")`);
    await q.query(`DROP FUNCTION "execution_log_canonical"("execution_logs")`);
    await q.query(`DROP TABLE "execution_logs"`);
    await q.query(`DROP FUNCTION "execution_logs_append_only"()`);
    await q.query(`DROP FUNCTION "execution_logs_chain"()`);
    await q.query(`DROP TABLE "fills"`);
    await q.query(`DROP TABLE "orders"`);
    await q.query(`DROP TABLE "positions"`);
    await q.query(`DROP TABLE "traders"`);
    await q.query(
      `DROP TYPE "execution_log_action", "liquidity", "strategy_type", "order_source", "order_status", "time_in_force", "order_type", "order_side", "position_status"`,
    );
  }
}
