import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { config } from '../src/config';
import { freePort, startEmbeddedPostgres, withDatabase } from '../src/db';

/** A benchmark's own database: a scratch one on DATABASE_URL's server, or on a temporary embedded server. */
export interface ScratchDatabase {
  url: string;
  /** Drops the database and stops (and removes) the embedded server, if one was started. */
  drop(): Promise<void>;
}

export async function scratchDatabase(prefix: string): Promise<ScratchDatabase> {
  let stopDb = async (): Promise<void> => {};
  let adminUrl = config().databaseUrl;
  let tmp: string | undefined;
  if (!adminUrl) {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-bench-'));
    chmodSync(tmp, 0o755);
    const db = await startEmbeddedPostgres({
      dataDir: path.join(tmp, 'pgdata'),
      port: await freePort(),
      database: 'postgres',
    });
    adminUrl = db.url;
    stopDb = db.stop;
  }
  const name = `${prefix}_${Date.now().toString(36)}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  return {
    url: withDatabase(adminUrl, name),
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.end();
      await stopDb();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    },
  };
}
