/**
 * `npm run ledger:upgrade`: replays every book that still has positions computed by the earlier
 * netting rules (see src/position/ledger-upgrade.ts). `npm start` does this itself after migrating.
 */
import { commandLine } from './cli';

// The command line before the modules below load (TypeORM, the entities): --help answers at once.
commandLine(
  {
    name: 'ledger:upgrade',
    synopsis: '',
    about:
      'Replays, in event time, every book whose positions were computed by the earlier netting rules, on\n' +
      'the configured database (DATABASE_URL, else the embedded one). `npm start` does this itself after\n' +
      'migrating; the database must be migrated.',
    options: {},
  },
  () => undefined,
);

import 'reflect-metadata';
import { upgradeLedger } from '../src/position/ledger-upgrade';
import { runScript, withMigratedDatabase } from './migrated-db';

runScript(async () => {
  const summary = await withMigratedDatabase(upgradeLedger);
  console.log(`Ledger upgrade: ${summary.books} book(s) replayed, ${summary.changed} changed.`);
});
