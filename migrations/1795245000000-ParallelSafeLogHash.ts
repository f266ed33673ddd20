import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The log's hash functions are pure (IMMUTABLE already): marked PARALLEL SAFE, so that a scan that
 * recomputes every entry's hash (the data-quality report's BROKEN_LOG check) may run in parallel workers.
 */
export class ParallelSafeLogHash1795245000000 implements MigrationInterface {
  name = 'ParallelSafeLogHash1795245000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION "execution_log_canonical"("execution_logs") PARALLEL SAFE`);
    await q.query(`ALTER FUNCTION "execution_log_hash"(text, "execution_logs") PARALLEL SAFE`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION "execution_log_hash"(text, "execution_logs") PARALLEL UNSAFE`);
    await q.query(`ALTER FUNCTION "execution_log_canonical"("execution_logs") PARALLEL UNSAFE`);
  }
}
