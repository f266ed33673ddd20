import type { DataSource } from 'typeorm';
import AppDataSource, { dataSourceOptions } from '../ormconfig';
import { config } from '../src/config';
import { resolveDatabase } from '../src/db';
import { setSealKey } from '../src/execution-log/entry-encoding';
import { loadLogKey } from '../src/execution-log/log-key';

/**
 * Runs `work` on the configured database (DATABASE_URL, else the embedded one, started for the
 * command or reused from a running `npm start`), which must be fully migrated; always cleans up.
 */
export async function withMigratedDatabase<T>(work: (dataSource: DataSource) => Promise<T>): Promise<T> {
  // Entries this command writes are sealed with the log key, as the server's are.
  const logKey = loadLogKey(config());
  setSealKey(logKey.key.sealKey);
  const db = await resolveDatabase(config());
  logKey.save?.();
  try {
    AppDataSource.setOptions(dataSourceOptions(db.url));
    await AppDataSource.initialize();
    if (await AppDataSource.showMigrations()) {
      throw new Error('The database has pending migrations; run `npm run migration:run` (or `npm start`) first.');
    }
    return await work(AppDataSource);
  } finally {
    if (AppDataSource.isInitialized) await AppDataSource.destroy();
    await db.stop();
  }
}

/** The entry point of a script: one clear line and exit code 1 on failure. */
export function runScript(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
