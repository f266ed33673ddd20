import { type ChildProcess, spawn } from 'node:child_process';
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

/**
 * A benchmark database that outlives the run, on DATABASE_URL's server: created (dropped first if it
 * exists) when `create`, else reused as an earlier run left it. Never dropped by `drop`.
 */
export async function keptDatabase(name: string, create: boolean): Promise<ScratchDatabase> {
  const adminUrl = config().databaseUrl;
  if (!adminUrl) throw new Error('a kept benchmark database needs DATABASE_URL');
  if (create) {
    const admin = new Client({ connectionString: adminUrl });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await admin.query(`CREATE DATABASE "${name}"`);
    } finally {
      await admin.end();
    }
  }
  return { url: withDatabase(adminUrl, name), drop: async () => {} };
}

export interface RunningServer {
  url: string;
  pid: number;
  /** SIGTERM, and waits for the process to exit. */
  stop(): Promise<void>;
}

/**
 * The real server in its own process, as deployed (production mode, the token secret and the log key
 * through the environment, no demo data), on `databaseUrl`; resolves once it serves.
 */
export async function startServer(
  databaseUrl: string,
  keys: { jwtSecret: string; logKeyPem: string },
  /** The compiled entry point: this build's by default. */
  entry = path.join(__dirname, '..', 'src', 'index.js'),
  /** More settings (e.g. TRADETRAIL_STATEMENT_TIMEOUT_MS). */
  env: Record<string, string> = {},
  /** The Node.js binary that runs it: this process's by default. */
  node = process.execPath,
): Promise<RunningServer> {
  const port = await freePort();
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : [];
  const child = spawn(node, [...profile, entry], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      NODE_ENV: 'production',
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'error',
      TRADETRAIL_DEMO_DATA: 'off',
      TRADETRAIL_JWT_SECRET: keys.jwtSecret,
      TRADETRAIL_LOG_SIGNING_KEY: keys.logKeyPem,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return serving(child, port, 'Tradetrail GraphQL:', 'the server');
}

/** A server process once it printed `banner` (it serves on `port`); SIGTERM and wait to stop it. */
export async function serving(child: ChildProcess, port: number, banner: string, what: string): Promise<RunningServer> {
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => String(d).includes(banner) && resolve());
    child.on('exit', (code) => reject(new Error(`${what} exited with ${code}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
