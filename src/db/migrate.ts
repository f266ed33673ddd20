import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { upgradeLedger } from '../position/ledger-upgrade';

/** The advisory lock every process takes to migrate (any process, one database). */
export const MIGRATION_LOCK = 7_346_521_908_000_001;

export interface Migrated {
  /** Migrations this call applied (none when another process had applied them). */
  applied: string[];
  /** Books whose positions the earlier netting rules computed, replayed in event time. */
  upgradedBooks: number;
}

/**
 * Runs `work` while holding the migration lock: a transaction-level advisory lock held by an open
 * transaction on a connection of its own, so that it also holds through a pooler in transaction mode
 * (PgBouncer pins the server connection of an open transaction). Several processes starting at once
 * on an empty database take turns: the first migrates, the others then find nothing to do. A process
 * that finds the lock taken does not wait on it holding a connection (behind a small pool, the
 * holder needs a second one to migrate): it tries again in a fresh short transaction a moment later.
 */
export async function withMigrationLock<T>(url: string, work: () => Promise<T>, timeoutMs = 600_000): Promise<T> {
  const lock = new Client({ connectionString: url, application_name: 'tradetrail-migrate' });
  lock.on('error', () => undefined); // a lost lock connection fails the COMMIT below
  await lock.connect();
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      await lock.query('BEGIN');
      const [{ ok }] = (await lock.query('SELECT pg_try_advisory_xact_lock($1) AS ok', [MIGRATION_LOCK])).rows as {
        ok: boolean;
      }[];
      if (ok) break;
      await lock.query('ROLLBACK');
      if (Date.now() > deadline) {
        throw new Error(`Another process has held the migration lock for over ${timeoutMs / 1000} s; is it stuck?`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200 + Math.random() * 300));
    }
    const result = await work();
    await lock.query('COMMIT');
    return result;
  } finally {
    await lock.end().catch(() => undefined);
  }
}

/**
 * Applies pending migrations and replays the books of the earlier netting rules, under the
 * migration lock (each migration in its own transaction, as `migration:run` does).
 */
export async function migrate(dataSource: DataSource, url: string): Promise<Migrated> {
  return withMigrationLock(url, async () => {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    const upgraded = await upgradeLedger(dataSource);
    return { applied: applied.map((m) => m.name), upgradedBooks: upgraded.books };
  });
}

/** The names of the migrations the code knows that the database has not applied, oldest first. */
export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  const table = dataSource.options.migrationsTableName ?? 'migrations';
  const exists = (await dataSource.query(`SELECT to_regclass($1) IS NOT NULL AS "exists"`, [table])) as {
    exists: boolean;
  }[];
  const done = new Set(
    exists[0].exists
      ? ((await dataSource.query(`SELECT name FROM "${table}"`)) as { name: string }[]).map((r) => r.name)
      : [],
  );
  return dataSource.migrations.map((m) => m.name ?? m.constructor.name).filter((name) => !done.has(name));
}
