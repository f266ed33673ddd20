/** `npm run seed`: loads the demo data set into the configured database (DATABASE_URL, else embedded). */
import 'reflect-metadata';
import AppDataSource, { dataSourceOptions } from '../ormconfig';
import { config } from '../src/config';
import { resolveDatabase } from '../src/db';
import { loadDemoData } from '../src/demo-data';

async function main(): Promise<void> {
  const db = await resolveDatabase(config());
  try {
    AppDataSource.setOptions(dataSourceOptions(db.url));
    await AppDataSource.initialize();
    const pending = await AppDataSource.showMigrations();
    if (pending)
      throw new Error('The database has pending migrations; run `npm run migration:run` (or `npm start`) first.');
    const summary = await loadDemoData(AppDataSource);
    console.log(`Demo data loaded: ${JSON.stringify(summary)}`);
  } finally {
    if (AppDataSource.isInitialized) await AppDataSource.destroy();
    await db.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
