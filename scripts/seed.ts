/** `npm run seed`: loads the demo data set into the configured database (DATABASE_URL, else embedded). */
import { commandLine } from './cli';

// The command line before the modules below load (TypeORM, the entities): --help answers at once.
commandLine(
  {
    name: 'seed',
    synopsis: '',
    about:
      'Loads the demo data set (three traders, their positions, orders, fills and log entries) into the\n' +
      'configured database: DATABASE_URL, else the embedded one (started for the command, or reused while\n' +
      '`npm start` runs it). The database must be migrated (`npm run migration:run`, or `npm start` once).',
    options: {},
  },
  () => undefined,
);

import 'reflect-metadata';
import { loadDemoData } from '../src/demo-data';
import { runScript, withMigratedDatabase } from './migrated-db';

runScript(async () => {
  const summary = await withMigratedDatabase(loadDemoData);
  console.log(`Demo data loaded: ${JSON.stringify(summary)}`);
});
