import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The first page of `positions` (newest opened first, the default) and of `orders` across traders
 * (newest first) is an index walk that stops after the page, not a scan and sort of every row: the
 * keyset (sort column, id) of each list's default order. Columns that change on every fill
 * (`updated_at`) get no index: it would cost every position update its HOT update.
 */
export class ListOrderIndexes1795247000000 implements MigrationInterface {
  name = 'ListOrderIndexes1795247000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX "idx_positions_opened" ON "positions" ("opened_at", "id")`);
    await q.query(`CREATE INDEX "idx_orders_created" ON "orders" ("created_at", "id")`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP INDEX "idx_orders_created"`);
    await q.query(`DROP INDEX "idx_positions_opened"`);
  }
}
