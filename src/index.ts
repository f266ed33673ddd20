import 'reflect-metadata';
import AppDataSource, { dataSourceOptions } from '../ormconfig';
import { createVerifier, DEVELOPMENT_ADMIN, localSecret, type TokenVerifier } from './auth';
import { ComplianceScheduler } from './compliance/scheduler';
import { type Config, config, ConfigError, secretsInDataDir } from './config';
import { resolveDatabase } from './db';
import { migrate, pendingMigrations, withMigrationLock } from './db/migrate';
import { Lifecycle, Shutdown } from './http/lifecycle';
import { listenMetrics } from './http/metrics';
import { hasData, loadDemoData } from './demo-data';
import { logger } from './logger';
import { setSealKey } from './execution-log/entry-encoding';
import { LogIntegrator } from './execution-log/log-integrator';
import { LogKeyError, loadLogKey } from './execution-log/log-key';
import { attachSubscriptions, liveStats } from './live/subscriptions';
import { createApp } from './server';
import { endParkedConnections } from './request-db';

/**
 * NODE_ENV=production on the embedded database: the secrets generated into its data directory sit next
 * to the data (and in its backups). Said loudly, last, on stderr, and as a warning in the log.
 */
function warnOfSecretsInDataDir(cfg: Config): void {
  const kept = secretsInDataDir(cfg);
  if (!kept.length) return;
  logger.warn(
    { dataDir: cfg.dataDir, secrets: kept.map((k) => k.secret), set: [...kept.map((k) => k.instead), 'DATABASE_URL'] },
    `NODE_ENV=production on the embedded PostgreSQL: ${kept.map((k) => k.secret).join(' and ')} ` +
      `${kept.length > 1 ? 'are' : 'is'} kept in its data directory, next to the data; whoever can read it can ` +
      `${kept.map((k) => k.risk).join(' and ')}. Set ${kept.map((k) => k.instead).join(', ')} and DATABASE_URL.`,
  );
  console.error(
    [
      '',
      `  !!! NODE_ENV=production on the embedded PostgreSQL, with secrets generated into its data directory`,
      `  !!! ${cfg.dataDir}, next to the data. Whoever can read it (or a backup of it) has them:`,
      ...kept.map((k) => `  !!!   - ${k.secret}: they can ${k.risk}. Set ${k.instead}.`),
      `  !!! And set DATABASE_URL: a PostgreSQL server of your own, backed up, rather than the embedded one.`,
      '',
    ].join('\n'),
  );
}

/**
 * Every check of the configuration that needs no database, before the database is touched: the log's
 * signing key, and the key tokens are verified with (with DATABASE_URL one must be configured; on the
 * embedded database a secret is kept in its data directory). Returns the verifier, or `embedded` when
 * the data directory's secret is to be used once the database is up.
 */
function checkConfiguration(cfg: Config): {
  logKey: ReturnType<typeof loadLogKey>;
  verify: TokenVerifier | 'embedded';
} {
  try {
    const logKey = loadLogKey(cfg);
    if (cfg.auth === 'disabled') return { logKey, verify: async () => DEVELOPMENT_ADMIN };
    const configured = cfg.jwtSecret || cfg.jwtPublicKey || cfg.jwtJwksFile;
    if (!configured && !cfg.databaseUrl) return { logKey, verify: 'embedded' };
    return { logKey, verify: createVerifier(cfg, cfg.jwtSecret) };
  } catch (error) {
    const known = error instanceof LogKeyError || error instanceof ConfigError;
    const file = (error as NodeJS.ErrnoException).code === 'ENOENT' ? ` (${(error as Error).message})` : '';
    if (!known && !file) throw error;
    console.error(`Configuration error: ${known ? (error as Error).message : `a key file cannot be read${file}.`}`);
    process.exit(1);
  }
}

/** `npm start`: database (embedded unless DATABASE_URL), migrations, demo data, GraphQL on HTTP. */
async function main(): Promise<void> {
  const started = Date.now();
  const cfg = config();
  // 1. Everything that can be checked without the database: a bad setting never touches it.
  const checked = checkConfiguration(cfg);
  const logKey = checked.logKey.key;
  setSealKey(logKey.sealKey);

  // 2. The port: bound before the database starts (a port in use stops here), answering 503 until ready.
  const http = new Lifecycle();
  stopping = new Shutdown(http, cfg.shutdownTimeoutMs, logger);
  process.on('SIGINT', () => void stopping?.stop('SIGINT'));
  process.on('SIGTERM', () => void stopping?.stop('SIGTERM'));
  const { port } = await http.listen(cfg.port, cfg.host);

  // 3. The database, migrated under an advisory lock (several processes may start together).
  // Our shutdown stops the embedded PostgreSQL, last: not the package's own signal handlers.
  const db = await resolveDatabase(cfg, (line) => logger.debug({ postgres: line.trim() }, 'embedded postgres'), true);
  stopping.add('embedded PostgreSQL', () => db.stop());
  checked.logKey.save?.();
  logger.info(
    { database: db.url.replace(/:[^:@/]*@/, ':***@'), embedded: !cfg.databaseUrl, freshDataDir: db.freshDataDir },
    cfg.databaseUrl ? 'using DATABASE_URL' : `embedded PostgreSQL ready (data in ${cfg.dataDir})`,
  );
  AppDataSource.setOptions(dataSourceOptions(db.url));
  await AppDataSource.initialize();
  stopping.add('database pool', async () => {
    // Reads' COMMITs still owed (RequestDb.finish) first, then the pool.
    await endParkedConnections(AppDataSource);
    await AppDataSource.destroy();
  });
  if (cfg.migrateOnStart) {
    const migrated = await migrate(AppDataSource, db.url);
    logger.info({ applied: migrated.applied }, `${migrated.applied.length} pending migration(s) applied`);
    if (migrated.upgradedBooks) {
      logger.info({ books: migrated.upgradedBooks }, 'positions of the earlier netting rules replayed in event time');
    }
  } else {
    const pending = await pendingMigrations(AppDataSource);
    if (pending.length) {
      logger.warn(
        { pending },
        `${pending.length} migration(s) pending and TRADETRAIL_MIGRATE_ON_START=false: /ready answers 503 until \`npm run migrate\` applies them`,
      );
    }
  }
  const wantDemo = cfg.demoData === 'on' || (cfg.demoData === 'auto' && !cfg.databaseUrl);
  if (wantDemo && !(await pendingMigrations(AppDataSource)).length) {
    const summary = await withMigrationLock(db.url, async () =>
      (await hasData(AppDataSource.manager)) ? undefined : loadDemoData(AppDataSource),
    );
    if (summary) logger.info(summary, 'demo data loaded (TRADETRAIL_DEMO_DATA=off to skip)');
  }

  // Tokens: a configured key, or on the embedded default a secret kept in the data directory.
  const verify = checked.verify === 'embedded' ? createVerifier(cfg, localSecret(cfg.dataDir, true)) : checked.verify;
  if (cfg.auth === 'disabled') {
    logger.warn(
      'AUTHENTICATION IS DISABLED (TRADETRAIL_AUTH=disabled): every request acts as an admin. Development only.',
    );
    console.warn(
      '\n  !!! Authentication is disabled: every request acts as an admin. Never do this outside development. !!!\n',
    );
  }

  const integrator = new LogIntegrator(AppDataSource, logKey, {
    intervalMs: cfg.logIntegrationMs,
    checkpointFile: cfg.checkpointFile,
    log: logger,
  });
  integrator.start();
  stopping.add('log integrator', () => integrator.stop());
  const compliance = new ComplianceScheduler(AppDataSource, logKey, {
    dataQualityMinutes: cfg.dataQualityMinutes,
    alertThreshold: cfg.dataQualityAlertThreshold,
    reconcileMinutes: cfg.reconcileMinutes,
    reconcileMaxFixes: cfg.reconcileMaxFixes,
    statementTimeoutMs: cfg.statementTimeoutMs,
    log: logger,
  });
  compliance.start();
  stopping.add('compliance scheduler', () => compliance.stop());
  logger.info(
    { verifierKey: logKey.verifierKey, checkpointFile: cfg.checkpointFile ?? null },
    'log checkpoints are signed with this key',
  );

  // /ready answers 503 once the shutdown starts (the lifecycle); /metrics reads the scheduler's counters.
  const { app, apollo, schema, metrics } = await createApp(
    AppDataSource,
    cfg,
    verify,
    { key: logKey, known: () => integrator.knownCheckpoint() },
    { lifecycle: http },
  );
  metrics?.watch({ compliance, live: liveStats });
  if (metrics && cfg.metricsPort !== undefined) {
    const metricsServer = await listenMetrics(metrics, cfg.metricsPort, cfg.metricsHost);
    stopping.add('metrics listener', () => new Promise((resolve) => metricsServer.close(resolve)));
    const address = metricsServer.address();
    const metricsPort = typeof address === 'object' && address ? address.port : cfg.metricsPort;
    logger.info(
      { url: `http://${cfg.metricsHost}:${metricsPort}/metrics` },
      'metrics are served on a port of their own',
    );
  }
  stopping.add('Apollo', () => apollo.stop());
  // Subscriptions over WebSocket, same port and path (src/live). server.close() would wait for their
  // sockets: they are closed (1001) as the drain starts, with the LISTEN connection.
  const live = attachSubscriptions(http.server, {
    schema,
    dataSource: AppDataSource,
    cfg,
    verify,
    log: { key: logKey, known: () => integrator.knownCheckpoint() },
  });
  http.onDrain(() => live.close());
  http.serve(app);

  const host = cfg.host === '0.0.0.0' || cfg.host === '::' ? 'localhost' : cfg.host;
  const url = `http://${host}:${port}/graphql`;
  logger.info({ url, ms: Date.now() - started }, 'Tradetrail is serving');
  warnOfSecretsInDataDir(cfg);
  console.log(`
  Tradetrail GraphQL: ${url}   (ready in ${((Date.now() - started) / 1000).toFixed(1)} s)
${cfg.queryPage ? `  GraphQL IDE:       http://${host}:${port}/   (GraphiQL, in the browser; no internet needed)\n` : ''}  Log public key:    ${logKey.verifierKey}
                     (checkpoints: http://${host}:${port}/log/checkpoint; keep copies to prove the trail later)

  Try (tokens: npm run token -- --role compliance, or --trader <id>):
    curl -s ${url} -H 'content-type: application/json' -H "authorization: Bearer $(npm run -s token -- --role compliance)" \\
      -d '{"query":"{ positions(first: 3) { edges { node { symbol quantity status trader { name } orders(first: 5) { edges { node { side quantity status fills { quantity price } } } } } } } }"}'
`);
}

/** The shutdown of this process, once the HTTP side exists. */
let stopping: Shutdown | undefined;

main().catch(async (error: unknown) => {
  console.error('Tradetrail could not start:', error instanceof Error ? error.message : error);
  // What started is stopped (the embedded PostgreSQL above all: no orphan), then exit 1.
  await stopping?.stop('start failed', 1);
  process.exit(1);
});
