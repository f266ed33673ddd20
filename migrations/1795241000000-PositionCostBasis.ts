import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The exact cost of a position's open quantity. Deriving the average entry price from it (instead of
 * from the previous, rounded average) keeps the average exact however many fills built it, in any order.
 */
export class PositionCostBasis1795241000000 implements MigrationInterface {
  name = 'PositionCostBasis1795241000000';

  public async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "positions" ADD "cost_basis" numeric NOT NULL DEFAULT '0'`);
    await q.query(`UPDATE "positions" SET "cost_basis" = abs("quantity") * "average_entry_price"`);
    await q.query(`ALTER TABLE "positions" ADD CONSTRAINT "chk_positions_cost_basis" CHECK ("cost_basis" >= 0)`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE "positions" DROP CONSTRAINT "chk_positions_cost_basis"`);
    await q.query(`ALTER TABLE "positions" DROP COLUMN "cost_basis"`);
  }
}
