import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The role every GraphQL request runs as (`SET LOCAL ROLE tradetrail_app` at the start of its
 * transaction): not the owner, not a superuser, no BYPASSRLS. It may read and write traders,
 * positions, orders and fills, and only read and append the execution log. Roles are cluster-wide,
 * so it is created only when missing, and `down` drops it only when no other database uses it.
 */
export class ApplicationRole1795240000000 implements MigrationInterface {
  name = 'ApplicationRole1795240000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`
      DO $$ BEGIN
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tradetrail_app') THEN
          CREATE ROLE tradetrail_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
        END IF;
      END $$`);
    // The connecting user must be able to SET ROLE to it (a superuser always can).
    await q.query(`
      DO $$ BEGIN
        IF NOT pg_has_role(current_user, 'tradetrail_app', 'MEMBER') THEN
          EXECUTE format('GRANT tradetrail_app TO %I', current_user);
        END IF;
      END $$`);
    await q.query(`GRANT USAGE ON SCHEMA public TO tradetrail_app`);
    await q.query(`GRANT SELECT, INSERT, UPDATE ON traders, positions, orders, fills TO tradetrail_app`);
    await q.query(`GRANT SELECT, INSERT ON execution_logs TO tradetrail_app`);
    await q.query(`REVOKE UPDATE, DELETE, TRUNCATE ON execution_logs FROM PUBLIC`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`REVOKE ALL ON traders, positions, orders, fills, execution_logs FROM tradetrail_app`);
    await q.query(`REVOKE USAGE ON SCHEMA public FROM tradetrail_app`);
    await q.query(`
      DO $$ BEGIN
        DROP ROLE tradetrail_app;
      EXCEPTION WHEN dependent_objects_still_exist OR object_in_use THEN
        RAISE NOTICE 'tradetrail_app is still used by another database; kept';
      END $$`);
  }
}
