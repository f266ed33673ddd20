import type { MigrationInterface, QueryRunner } from 'typeorm';

const TABLES = ['traders', 'positions', 'orders', 'fills', 'execution_logs'];

/**
 * Row-level security, forced (it applies to the table owner too; only superusers bypass it), on
 * every table. Each request's transaction says who it is with transaction-local settings
 * (`SET LOCAL tradetrail.role`, `tradetrail.trader_id`); a missing or empty setting means no rows.
 * - trader: their own rows only (a fill through its order);
 * - service, admin: every row, read and write;
 * - compliance: every row, read only.
 * execution_logs has SELECT and INSERT policies only: no UPDATE or DELETE policy at all.
 */
export class RowLevelSecurity1795242000000 implements MigrationInterface {
  name = 'RowLevelSecurity1795242000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      CREATE FUNCTION tradetrail_can_read(owner uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT CASE current_setting('tradetrail.role', true)
          WHEN 'admin' THEN true
          WHEN 'service' THEN true
          WHEN 'compliance' THEN true
          WHEN 'trader' THEN owner = nullif(current_setting('tradetrail.trader_id', true), '')::uuid
          ELSE false
        END
      $$`);
    await q.query(`
      CREATE FUNCTION tradetrail_can_write(owner uuid) RETURNS boolean LANGUAGE sql STABLE AS $$
        SELECT CASE current_setting('tradetrail.role', true)
          WHEN 'admin' THEN true
          WHEN 'service' THEN true
          WHEN 'trader' THEN owner = nullif(current_setting('tradetrail.trader_id', true), '')::uuid
          ELSE false
        END
      $$`);
    for (const table of TABLES) {
      await q.query(`ALTER TABLE "${table}" ENABLE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" FORCE ROW LEVEL SECURITY`);
    }
    await q.query(`CREATE POLICY traders_read ON traders FOR SELECT USING (tradetrail_can_read(id))`);
    await q.query(`CREATE POLICY traders_insert ON traders FOR INSERT WITH CHECK (tradetrail_can_write(id))`);
    await q.query(
      `CREATE POLICY traders_update ON traders FOR UPDATE USING (tradetrail_can_write(id)) WITH CHECK (tradetrail_can_write(id))`,
    );
    for (const table of ['positions', 'orders']) {
      await q.query(`CREATE POLICY ${table}_read ON ${table} FOR SELECT USING (tradetrail_can_read(trader_id))`);
      await q.query(
        `CREATE POLICY ${table}_insert ON ${table} FOR INSERT WITH CHECK (tradetrail_can_write(trader_id))`,
      );
      await q.query(
        `CREATE POLICY ${table}_update ON ${table} FOR UPDATE USING (tradetrail_can_write(trader_id)) WITH CHECK (tradetrail_can_write(trader_id))`,
      );
    }
    // A fill belongs to its order's trader. CASE fixes the evaluation order: roles that see every
    // row never run the per-row look-up of the order.
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
    await q.query(
      `CREATE POLICY execution_logs_read ON execution_logs FOR SELECT USING (tradetrail_can_read(trader_id))`,
    );
    await q.query(
      `CREATE POLICY execution_logs_insert ON execution_logs FOR INSERT WITH CHECK (tradetrail_can_write(trader_id))`,
    );
  }

  public async down(q: QueryRunner): Promise<void> {
    for (const table of TABLES) {
      const policies = (await q.query(
        `SELECT policyname FROM pg_policies WHERE schemaname = 'public' AND tablename = $1`,
        [table],
      )) as {
        policyname: string;
      }[];
      for (const { policyname } of policies) await q.query(`DROP POLICY "${policyname}" ON "${table}"`);
      await q.query(`ALTER TABLE "${table}" NO FORCE ROW LEVEL SECURITY`);
      await q.query(`ALTER TABLE "${table}" DISABLE ROW LEVEL SECURITY`);
    }
    await q.query(`DROP FUNCTION tradetrail_can_write(uuid)`);
    await q.query(`DROP FUNCTION tradetrail_can_read(uuid)`);
  }
}
