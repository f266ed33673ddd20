/**
 * `npm run ledger:upgrade`: replays every book that still has positions computed by the earlier
 * netting rules (see src/position/ledger-upgrade.ts). `npm start` does this itself after migrating.
 */
import 'reflect-metadata';
import { upgradeLedger } from '../src/position/ledger-upgrade';
import { runScript, withMigratedDatabase } from './migrated-db';

runScript(async () => {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(
      'Usage: npm run ledger:upgrade\n\nReplays, in event time, every book whose positions were computed by the earlier netting rules.',
    );
    return;
  }
  const summary = await withMigratedDatabase(upgradeLedger);
  console.log(`Ledger upgrade: ${summary.books} book(s) replayed, ${summary.changed} changed.`);
});
