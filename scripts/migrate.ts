/** `npm run migrate`: applies pending migrations under the migration lock, for deployments that migrate apart from start. */
import { commandLine } from './cli';

// The command line before the modules below load (TypeORM, the entities): --help answers at once.
commandLine(
  {
    name: 'migrate',
    synopsis: '',
    about:
      'Applies the pending migrations to the configured database (DATABASE_URL, else the embedded one),\n' +
      'then replays the books the earlier netting rules computed, exactly as `npm start` does at start,\n' +
      'under the same advisory lock: it can run while servers start or run. For deployments that set\n' +
      'TRADETRAIL_MIGRATE_ON_START=false and migrate in a step of their own. Exit status 0 when the\n' +
      'database is current afterwards.',
    options: {},
  },
  () => undefined,
);

import 'reflect-metadata';
import AppDataSource, { dataSourceOptions } from '../ormconfig';
import { config } from '../src/config';
import { resolveDatabase } from '../src/db';
import { migrate } from '../src/db/migrate';
import { runScript } from './migrated-db';

runScript(async () => {
  const db = await resolveDatabase(config());
  try {
    AppDataSource.setOptions(dataSourceOptions(db.url, 2));
    await AppDataSource.initialize();
    const done = await migrate(AppDataSource, db.url);
    console.log(
      done.applied.length
        ? `Applied ${done.applied.length} migration(s): ${done.applied.join(', ')}.`
        : 'No pending migration: the database is current.',
    );
    if (done.upgradedBooks) console.log(`Replayed ${done.upgradedBooks} book(s) of the earlier netting rules.`);
  } finally {
    if (AppDataSource.isInitialized) await AppDataSource.destroy();
    await db.stop();
  }
});
