import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The chain trigger computes each entry's hash with `execution_log_hash(prev_hash, e)`, which calls
 * `execution_log_canonical(e)`. Both were declared IMMUTABLE, but their bodies call STABLE functions
 * (`to_char`, `jsonb_build_array`, `convert_to`), and PostgreSQL never inlines a SQL function whose body
 * is more volatile than its declaration: every appended entry ran both as separate SQL-function calls
 * (an executor start and end each, about half of the cost of an append). Declared STABLE — what they
 * are — they are inlined into the trigger's expression (and into the verifications and the data-quality
 * check that recompute hashes). The hash is the same expression, so every stored hash stays valid.
 */
export class InlinedLogHash1795248000000 implements MigrationInterface {
  name = 'InlinedLogHash1795248000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION "execution_log_canonical"("execution_logs") STABLE`);
    await q.query(`ALTER FUNCTION "execution_log_hash"(text, "execution_logs") STABLE`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER FUNCTION "execution_log_hash"(text, "execution_logs") IMMUTABLE`);
    await q.query(`ALTER FUNCTION "execution_log_canonical"("execution_logs") IMMUTABLE`);
  }
}
