import { chmod, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { freePort, startEmbeddedPostgres, withDatabase } from '../src/db';

/**
 * Once per `npm test`: a PostgreSQL (DATABASE_URL if set, else a fresh embedded one) and a template
 * database migrated with the real migrations. Each test file clones the template.
 */

export default async function globalSetup(): Promise<void> {
  const started = Date.now();
  let adminUrl = process.env.DATABASE_URL;
  let stop = async (): Promise<void> => {};
  if (!adminUrl) {
    const tmp = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-test-'));
    await chmod(tmp, 0o755); // as root, PostgreSQL runs as the `postgres` user, who must reach the data directory
    const dataDir = path.join(tmp, 'pgdata');
    const db = await startEmbeddedPostgres({ dataDir, port: await freePort(), database: 'postgres' });
    adminUrl = db.url;
    stop = db.stop;
    process.env.TRADETRAIL_TEST_DATA_DIR = dataDir;
  }
  const template = `tt_template_${process.pid}_${Date.now().toString(36)}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${template}"`);
  await admin.end();

  const ds = new DataSource(dataSourceOptions(withDatabase(adminUrl, template), 2, false));
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  await ds.destroy();

  process.env.TRADETRAIL_TEST_ADMIN_URL = adminUrl;
  process.env.TRADETRAIL_TEST_TEMPLATE = template;
  (globalThis as Record<string, unknown>).__tradetrailStop = stop;
  console.log(
    `\n[test] PostgreSQL ${process.env.DATABASE_URL ? 'from DATABASE_URL' : 'embedded'}; template ${template} migrated in ${Date.now() - started} ms`,
  );
}
