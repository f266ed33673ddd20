import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The chain trigger's function: numbers, chains and stamps each entry; `withTx` also records its transaction. */
function chainFunction(withTx: boolean): string {
  return `
    CREATE OR REPLACE FUNCTION "execution_logs_chain"() RETURNS trigger
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
      NEW.recorded_at := clock_timestamp();${withTx ? '\n      NEW.tx := pg_current_xact_id()::text::bigint;' : ''}
      NEW.hash := execution_log_hash(NEW.prev_hash, NEW);
      RETURN NEW;
    END
    $$`;
}

/**
 * The verifiable log (DOMAIN.md §7):
 * - every entry carries the transaction that wrote it (`tx`, set by the chain trigger) and a seal: an
 *   HMAC the server computes over what it asked the database to store, with a key the database never
 *   holds, so an entry the server did not write is recognised;
 * - `log_leaves` places each entry in one global, append-only Merkle tree (RFC 9162); `merkle_nodes`
 *   keeps the hash of every complete subtree of 16 leaves or more (smaller ones are recomputed from
 *   their leaves), so proofs need O(log n) reads; `log_tree_state` is the
 *   integrator's progress (tree size, and the transaction horizon below which every entry is in the tree);
 * - `log_checkpoints` keeps the signed checkpoints (tree size, root, time) in the C2SP signed-note format.
 * Leaves, nodes and checkpoints are append-only; only the integrator (the connecting user, not the
 * request role) writes them. Requests may read them: hashes reveal nothing.
 */
export class VerifiableLog1795244000000 implements MigrationInterface {
  name = 'VerifiableLog1795244000000';

  public async up(q: QueryRunner): Promise<void> {
    // Entries written before this migration get tx 0 (committed before any later snapshot) and no
    // seal: the integrator's first round takes them into the tree, and only that round accepts unsealed ones.
    await q.query(`ALTER TABLE "execution_logs" ADD "tx" bigint NOT NULL DEFAULT 0, ADD "seal" character(64)`);
    await q.query(`ALTER TABLE "execution_logs" ALTER "tx" DROP DEFAULT`);
    await q.query(`CREATE INDEX "idx_execution_logs_tx" ON "execution_logs" ("tx")`);
    await q.query(chainFunction(true));

    await q.query(`
      CREATE TABLE "log_leaves" (
        "leaf_index" bigint NOT NULL,
        "entry_id" uuid NOT NULL,
        "order_id" uuid NOT NULL,
        "seq" integer NOT NULL,
        "leaf_hash" bytea NOT NULL,
        CONSTRAINT "pk_log_leaves" PRIMARY KEY ("leaf_index"),
        CONSTRAINT "uq_log_leaves_entry" UNIQUE ("entry_id"),
        CONSTRAINT "chk_log_leaves_index" CHECK ("leaf_index" >= 0),
        CONSTRAINT "chk_log_leaves_hash" CHECK (octet_length("leaf_hash") = 32)
      )`);
    await q.query(`CREATE INDEX "idx_log_leaves_order" ON "log_leaves" ("order_id", "seq")`);
    await q.query(`
      CREATE TABLE "merkle_nodes" (
        "level" smallint NOT NULL,
        "idx" bigint NOT NULL,
        "hash" bytea NOT NULL,
        CONSTRAINT "pk_merkle_nodes" PRIMARY KEY ("level", "idx"),
        CONSTRAINT "chk_merkle_nodes_level" CHECK ("level" BETWEEN 4 AND 62),
        CONSTRAINT "chk_merkle_nodes_hash" CHECK (octet_length("hash") = 32)
      )`);
    await q.query(`
      CREATE TABLE "log_tree_state" (
        "id" smallint NOT NULL DEFAULT 1,
        "tree_size" bigint NOT NULL DEFAULT 0,
        "tx_horizon" bigint NOT NULL DEFAULT 0,
        "integrated_at" timestamptz,
        CONSTRAINT "pk_log_tree_state" PRIMARY KEY ("id"),
        CONSTRAINT "chk_log_tree_state_one" CHECK ("id" = 1)
      )`);
    await q.query(`INSERT INTO "log_tree_state" DEFAULT VALUES`);
    await q.query(`
      CREATE TABLE "log_checkpoints" (
        "tree_size" bigint NOT NULL,
        "root_hash" bytea NOT NULL,
        "signed_at" timestamptz NOT NULL,
        "note" text NOT NULL,
        CONSTRAINT "pk_log_checkpoints" PRIMARY KEY ("tree_size"),
        CONSTRAINT "chk_log_checkpoints_size" CHECK ("tree_size" >= 1)
      )`);
    for (const table of ['log_leaves', 'merkle_nodes', 'log_checkpoints']) {
      await q.query(
        `CREATE TRIGGER "${table}_no_update_delete" BEFORE UPDATE OR DELETE ON "${table}" FOR EACH ROW EXECUTE FUNCTION append_only()`,
      );
      await q.query(
        `CREATE TRIGGER "${table}_no_truncate" BEFORE TRUNCATE ON "${table}" FOR EACH STATEMENT EXECUTE FUNCTION append_only()`,
      );
    }
    await q.query(`GRANT SELECT ON log_leaves, merkle_nodes, log_tree_state, log_checkpoints TO tradetrail_app`);
    await q.query(`REVOKE UPDATE, DELETE, TRUNCATE ON log_leaves, merkle_nodes, log_checkpoints FROM PUBLIC`);
  }

  public async down(q: QueryRunner): Promise<void> {
    await q.query(`DROP TABLE "log_checkpoints", "log_tree_state", "merkle_nodes", "log_leaves"`);
    await q.query(chainFunction(false));
    await q.query(`DROP INDEX "idx_execution_logs_tx"`);
    await q.query(`ALTER TABLE "execution_logs" DROP COLUMN "seal", DROP COLUMN "tx"`);
  }
}
