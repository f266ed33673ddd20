import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApolloServer } from '@apollo/server';
import type { Pool, PoolClient } from 'pg';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { type Config, parseConfig } from '../src/config';
import type { Principal, TokenVerifier } from '../src/auth';
import { type Context, createContext, type LogAccess } from '../src/context';
import { LogIntegrator } from '../src/execution-log/log-integrator';
import { TEST_LOG_KEY } from './log-key';
import { buildTradetrailSchema } from '../src/schema';
import { type App, type AppOptions, createApollo, createApp } from '../src/server';
import { withDatabase } from '../src/db';
import { loadDemoData } from '../src/demo-data';
import { endParkedConnections } from '../src/request-db';

/** Connection string of the test server with another database name. */
export function databaseUrl(database: string): string {
  return withDatabase(adminUrl(), database);
}

export function adminUrl(): string {
  const url = process.env.TRADETRAIL_TEST_ADMIN_URL;
  if (!url) throw new Error('TRADETRAIL_TEST_ADMIN_URL is not set: run the tests with `npm test` (jest globalSetup).');
  return url;
}

export async function adminQuery(sql: string): Promise<void> {
  const admin = new Client({ connectionString: adminUrl() });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A database of its own for one test file: a copy of the migrated template. */
export async function createTestDatabase(
  migrated = true,
): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const template = process.env.TRADETRAIL_TEST_TEMPLATE!;
  const name = `${template}_${randomBytes(4).toString('hex')}`;
  await adminQuery(migrated ? `CREATE DATABASE "${name}" TEMPLATE "${template}"` : `CREATE DATABASE "${name}"`);
  return { name, url: databaseUrl(name), drop: () => adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

/** Counts the round trips of the pool's clients to PostgreSQL (`count`) and logs every statement they carry. */
export class StatementCounter {
  count = 0;
  log: string[] = [];
  /** Where each round trip's statements start in `log`. */
  trips: number[] = [];
  /** The distinct connections the statements since `reset` went through. */
  clients = new Set<PoolClient>();
  attach(pool: Pool): void {
    const wrapped = new WeakSet<PoolClient>();
    pool.on('acquire', (client: PoolClient) => {
      if (wrapped.has(client)) return;
      wrapped.add(client);
      const original = client.query.bind(client) as (...args: unknown[]) => unknown;
      (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
        this.count += 1;
        this.trips.push(this.log.length);
        this.clients.add(client);
        const q = args[0];
        // Statements sent ahead of a query in its round trip (the transaction start: PipelinedQuery).
        for (const ahead of (q as { ahead?: { text: string }[] } | null)?.ahead ?? []) this.log.push(ahead.text);
        this.log.push(typeof q === 'string' ? q : String((q as { text?: string })?.text ?? q));
        return original(...args);
      };
    });
  }
  /** The statements of each round trip, each cut to `width` characters. */
  byTrip(width = 60): string[][] {
    return this.trips.map((start, i) =>
      this.log.slice(start, this.trips[i + 1]).map((s) => s.replace(/\s+/g, ' ').slice(0, width)),
    );
  }
  reset(): void {
    this.count = 0;
    this.log = [];
    this.trips = [];
    this.clients = new Set();
  }
}

export interface TestApp {
  dataSource: DataSource;
  apollo: ApolloServer<Context>;
  statements: StatementCounter;
  /** The log integrator of this app: no background rounds unless `integrationMs`; call integrateAll(). */
  integrator: LogIntegrator;
  /** Runs an operation through Apollo with a fresh request context; returns `data` and `errors`. */
  /** As `principal` (default: the app's principal, an admin unless given). */
  run<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    principal?: Principal,
  ): Promise<{
    data?: T | null;
    errors?: readonly { message: string; extensions?: Record<string, unknown>; path?: unknown }[];
  }>;
  close(): Promise<void>;
}

export const testConfig = parseConfig({ NODE_ENV: 'test' });

/** Apollo over a DataSource pointed at `url`, as the server builds it. */
export const ADMIN: Principal = { sub: 'test-admin', role: 'admin', traderId: null };
export const SERVICE: Principal = { sub: 'test-gateway', role: 'service', traderId: null };
export const COMPLIANCE: Principal = { sub: 'test-compliance', role: 'compliance', traderId: null };
export const traderPrincipal = (traderId: string): Principal => ({ sub: traderId, role: 'trader', traderId });

export async function startTestApp(
  url: string,
  options: {
    poolMax?: number;
    principal?: Principal;
    integrationMs?: number;
    checkpointFile?: string;
    /** TRADETRAIL_PREPARED_STATEMENTS (default: on). */
    preparedStatements?: boolean;
    /** TRADETRAIL_READ_COMMIT_DELAY_MS (default: the configuration's). */
    readCommitDelayMs?: number;
  } = {},
): Promise<TestApp> {
  const dataSource = new DataSource(
    dataSourceOptions(url, options.poolMax ?? 4, false, {
      preparedStatements: options.preparedStatements ?? testConfig.preparedStatements,
      readCommitDelayMs: options.readCommitDelayMs ?? testConfig.readCommitDelayMs,
    }),
  );
  await dataSource.initialize();
  const statements = new StatementCounter();
  statements.attach((dataSource.driver as unknown as { master: Pool }).master);
  const apollo = createApollo(await buildTradetrailSchema(), testConfig);
  await apollo.start();
  const integrator = new LogIntegrator(dataSource, TEST_LOG_KEY, {
    intervalMs: options.integrationMs ?? 0,
    checkpointFile: options.checkpointFile,
    log: { info: () => undefined, error: () => undefined },
  });
  integrator.start();
  const log = { key: TEST_LOG_KEY, known: () => integrator.knownCheckpoint() };
  return {
    dataSource,
    apollo,
    statements,
    integrator,
    async run(query, variables, principal) {
      const response = await apollo.executeOperation(
        { query, variables },
        {
          contextValue: createContext(
            dataSource,
            principal ?? options.principal ?? ADMIN,
            testConfig.statementTimeoutMs,
            log,
          ),
        },
      );
      if (response.body.kind !== 'single') throw new Error('incremental delivery is not used');
      return response.body.singleResult as never;
    },
    async close() {
      await integrator.stop();
      await apollo.stop();
      await endParkedConnections(dataSource);
      await dataSource.destroy();
    },
  };
}

/**
 * A migrated test database with the demo data loaded and its log integrated into the tree (a template
 * for scenario copies); `inspect` may read from it before its app closes.
 */
export async function createDemoDatabase<T = void>(
  inspect?: (app: TestApp) => Promise<T>,
): Promise<{ db: { name: string; url: string; drop: () => Promise<void> }; seen: T | undefined }> {
  const db = await createTestDatabase();
  const app = await startTestApp(db.url);
  try {
    await loadDemoData(app.dataSource);
    await app.integrator.integrateAll();
    return { db, seen: inspect ? await inspect(app) : undefined };
  } finally {
    await app.close();
  }
}

/**
 * Runs `work` on a fresh copy of the database `templateName` (CREATE DATABASE … TEMPLATE), with an app
 * on it and a superuser connection whose triggers are bypassed (`session_replication_role = replica`),
 * as someone with the database's superuser password would tamper with it; drops the copy afterwards.
 */
export async function onTamperableCopy(
  templateName: string,
  work: (ctx: { app: TestApp; su: Client }) => Promise<void>,
  options: { checkpointFile?: string; readCommitDelayMs?: number } = {},
): Promise<void> {
  const name = `${templateName}_c${randomBytes(3).toString('hex')}`;
  await adminQuery(`CREATE DATABASE "${name}" TEMPLATE "${templateName}"`);
  const app = await startTestApp(databaseUrl(name), options);
  const su = new Client({ connectionString: databaseUrl(name) });
  await su.connect();
  await su.query(`SET session_replication_role = replica`);
  try {
    await work({ app, su });
  } finally {
    await su.end();
    await app.close();
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  }
}

/** The HTTP application as the server builds it (createApp), listening on a free port of 127.0.0.1. */
export interface ListeningApp extends App {
  server: Server;
  /** http://127.0.0.1:<port> */
  base: string;
  /** Stops listening (open connections closed) and stops Apollo; the DataSource stays the caller's. */
  close(): Promise<void>;
}

export async function listenApp(
  dataSource: DataSource,
  cfg: Config,
  verify: TokenVerifier,
  log: LogAccess = { key: TEST_LOG_KEY, known: () => undefined },
  options: AppOptions = {},
): Promise<ListeningApp> {
  const app = await createApp(dataSource, cfg, verify, log, options);
  const server: Server = await new Promise((resolve) => {
    const s = app.app.listen(0, '127.0.0.1', () => resolve(s));
  });
  return {
    ...app,
    server,
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await app.apollo.stop();
    },
  };
}
