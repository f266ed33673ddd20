import 'reflect-metadata';
import type { Server } from 'node:http';
import AppDataSource, { dataSourceOptions } from '../ormconfig';
import { createVerifier, DEVELOPMENT_ADMIN, localSecret, type TokenVerifier } from './auth';
import { ComplianceScheduler } from './compliance/scheduler';
import { type Config, config, secretsInDataDir } from './config';
import { resolveDatabase } from './db';
import { hasData, loadDemoData } from './demo-data';
import { logger } from './logger';
import { setSealKey } from './execution-log/entry-encoding';
import { LogIntegrator } from './execution-log/log-integrator';
import { LogKeyError, loadLogKey } from './execution-log/log-key';
import { upgradeLedger } from './position/ledger-upgrade';
import { createApp } from './server';

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

/** `npm start`: database (embedded unless DATABASE_URL), migrations, demo data, GraphQL on HTTP. */
async function main(): Promise<void> {
  const started = Date.now();
  const cfg = config();
  // The log key first: a server that cannot sign never touches the database.
  let loaded: ReturnType<typeof loadLogKey>;
  try {
    loaded = loadLogKey(cfg);
  } catch (error) {
    if (!(error instanceof LogKeyError)) throw error;
    console.error(`Configuration error: ${error.message}`);
    process.exit(1);
  }
  const logKey = loaded.key;
  setSealKey(logKey.sealKey);
  const db = await resolveDatabase(cfg, (line) => logger.debug({ postgres: line.trim() }, 'embedded postgres'));
  loaded.save?.();
  logger.info(
    { database: db.url.replace(/:[^:@/]*@/, ':***@'), embedded: !cfg.databaseUrl, freshDataDir: db.freshDataDir },
    cfg.databaseUrl ? 'using DATABASE_URL' : `embedded PostgreSQL ready (data in ${cfg.dataDir})`,
  );

  AppDataSource.setOptions(dataSourceOptions(db.url));
  await AppDataSource.initialize();
  const applied = await AppDataSource.runMigrations({ transaction: 'each' });
  logger.info({ applied: applied.map((m) => m.name) }, `${applied.length} pending migration(s) applied`);
  const upgraded = await upgradeLedger(AppDataSource);
  if (upgraded.books) logger.info(upgraded, 'positions of the earlier netting rules replayed in event time');

  const wantDemo = cfg.demoData === 'on' || (cfg.demoData === 'auto' && !cfg.databaseUrl);
  if (wantDemo && !(await hasData(AppDataSource.manager))) {
    const summary = await loadDemoData(AppDataSource);
    logger.info(summary, 'demo data loaded (TRADETRAIL_DEMO_DATA=off to skip)');
  }

  // Tokens: a configured key, or on the embedded default a secret kept in the data directory.
  let verify: TokenVerifier = async () => DEVELOPMENT_ADMIN;
  if (cfg.auth === 'disabled') {
    logger.warn(
      'AUTHENTICATION IS DISABLED (TRADETRAIL_AUTH=disabled): every request acts as an admin. Development only.',
    );
    console.warn(
      '\n  !!! Authentication is disabled: every request acts as an admin. Never do this outside development. !!!\n',
    );
  } else {
    const secret =
      cfg.jwtSecret ??
      (cfg.databaseUrl || cfg.jwtPublicKey || cfg.jwtJwksFile ? undefined : localSecret(cfg.dataDir, true));
    verify = createVerifier(cfg, secret);
  }

  const integrator = new LogIntegrator(AppDataSource, logKey, {
    intervalMs: cfg.logIntegrationMs,
    checkpointFile: cfg.checkpointFile,
    log: logger,
  });
  integrator.start();
  const compliance = new ComplianceScheduler(AppDataSource, logKey, {
    dataQualityMinutes: cfg.dataQualityMinutes,
    alertThreshold: cfg.dataQualityAlertThreshold,
    reconcileMinutes: cfg.reconcileMinutes,
    reconcileMaxFixes: cfg.reconcileMaxFixes,
    statementTimeoutMs: cfg.statementTimeoutMs,
    log: logger,
  });
  compliance.start();
  logger.info(
    { verifierKey: logKey.verifierKey, checkpointFile: cfg.checkpointFile ?? null },
    'log checkpoints are signed with this key',
  );

  const { app, apollo } = await createApp(AppDataSource, cfg, verify, {
    key: logKey,
    known: () => integrator.knownCheckpoint(),
  });
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(cfg.port, cfg.host, () => resolve(s));
    s.on('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : cfg.port;
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

  let stopping = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const closed = new Promise((resolve) => server.close(resolve));
    server.closeAllConnections(); // keep-alive clients must not hold the shutdown
    await closed;
    await integrator.stop();
    await compliance.stop();
    await apollo.stop();
    await AppDataSource.destroy();
    await db.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((error: unknown) => {
  console.error('Tradetrail could not start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
