/**
 * `npm run ledger:upgrade`: replays every book that still has positions computed by the earlier
 * netting rules (see src/position/ledger-upgrade.ts). `npm start` does this itself after migrating.
 */
import 'reflect-metadata';
import AppDataSource, { dataSourceOptions } from '../ormconfig';
import { config } from '../src/config';
import { resolveDatabase } from '../src/db';
import { upgradeLedger } from '../src/position/ledger-upgrade';

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(
      'Usage: npm run ledger:upgrade\n\nReplays every book whose positions were computed by the earlier netting rules.',
    );
    return;
  }
  const db = await resolveDatabase(config());
  try {
    AppDataSource.setOptions(dataSourceOptions(db.url));
    await AppDataSource.initialize();
    if (await AppDataSource.showMigrations()) {
      throw new Error('The database has pending migrations; run `npm run migration:run` (or `npm start`) first.');
    }
    const summary = await upgradeLedger(AppDataSource);
    console.log(`Ledger upgrade: ${summary.books} book(s) replayed, ${summary.changed} changed.`);
  } finally {
    if (AppDataSource.isInitialized) await AppDataSource.destroy();
    await db.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
