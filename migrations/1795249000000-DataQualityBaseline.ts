import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The data-quality report's baseline (README "Compliance", "How the report stays fast"): what the last
 * complete check found, and where it stood, so that the next report re-checks only what changed since.
 *
 * - `dq_baseline` (one row): the snapshot the check saw (`xmin`, the oldest transaction still running
 *   then: every row version written by a later transaction counts as changed; `held`, the books and
 *   orders with such versions the check already saw, re-checked next time), the number of log
 *   entries and tree leaves older than it, the integrator's horizon, and an HMAC (keyed from the log
 *   key, which the database never holds) over all of it and over the two tables below, so that an
 *   edited baseline is ignored rather than trusted.
 * - `dq_baseline_books`: per table and book, how many row versions older than `xmin` there were; a
 *   book with fewer now had rows deleted or rewritten (even moved to another book).
 * - `dq_baseline_issues`: every issue the check found.
 *
 * Only the compliance and admin roles (who may run the report) read or write them.
 */
export class DataQualityBaseline1795249000000 implements MigrationInterface {
  name = 'DataQualityBaseline1795249000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE TABLE "dq_baseline" (
        "id" smallint NOT NULL DEFAULT 1,
        "snapshot_xmin" bigint NOT NULL,
        "held" jsonb NOT NULL,
        "taken_at" timestamptz NOT NULL,
        "log_entries" bigint NOT NULL,
        "log_leaves" bigint NOT NULL,
        "tx_horizon" bigint NOT NULL,
        "mac" text NOT NULL,
        CONSTRAINT "pk_dq_baseline" PRIMARY KEY ("id"),
        CONSTRAINT "chk_dq_baseline_one" CHECK ("id" = 1)
      )`);
    await q.query(`
      CREATE TABLE "dq_baseline_books" (
        "tbl" varchar(32) NOT NULL,
        "trader_id" uuid NOT NULL,
        "symbol" varchar(64) NOT NULL,
        "old_rows" bigint NOT NULL,
        CONSTRAINT "pk_dq_baseline_books" PRIMARY KEY ("tbl", "trader_id", "symbol")
      )`);
    await q.query(`
      CREATE TABLE "dq_baseline_issues" (
        "n" integer NOT NULL,
        "issue" jsonb NOT NULL,
        CONSTRAINT "pk_dq_baseline_issues" PRIMARY KEY ("n")
      )`);
    const allowed = `current_setting('tradetrail.role', true) IN ('compliance', 'admin')`;
    for (const table of ['dq_baseline', 'dq_baseline_books', 'dq_baseline_issues']) {
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
      await q.query(`CREATE POLICY "${table}_reporters" ON "${table}" USING (${allowed}) WITH CHECK (${allowed})`);
      await q.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON "${table}" TO tradetrail_app`);
    }
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "dq_baseline_issues", "dq_baseline_books", "dq_baseline"`);
  }
}
