/** `npm run seed`: loads the demo data set into the configured database (DATABASE_URL, else embedded). */
import 'reflect-metadata';
import { loadDemoData } from '../src/demo-data';
import { runScript, withMigratedDatabase } from './migrated-db';

runScript(async () => {
  const summary = await withMigratedDatabase(loadDemoData);
  console.log(`Demo data loaded: ${JSON.stringify(summary)}`);
});
