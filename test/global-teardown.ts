import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';

export default async function globalTeardown(): Promise<void> {
  const adminUrl = process.env.TRADETRAIL_TEST_ADMIN_URL;
  const template = process.env.TRADETRAIL_TEST_TEMPLATE;
  if (adminUrl && template) {
    // Drop the template and any database a crashed test file left behind.
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    const { rows } = await admin.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 ORDER BY datname = $2`,
      [`${template}%`, template],
    );
    for (const { datname } of rows) {
      await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).catch(() => undefined);
    }
    await admin.end();
  }
  const stop = (globalThis as Record<string, unknown>).__tradetrailStop as (() => Promise<void>) | undefined;
  await stop?.();
  const dataDir = process.env.TRADETRAIL_TEST_DATA_DIR;
  if (dataDir) await rm(path.dirname(dataDir), { recursive: true, force: true });
}
