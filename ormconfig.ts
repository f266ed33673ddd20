import 'reflect-metadata';
import path from 'node:path';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { LoggerOptions } from 'typeorm/logger/LoggerOptions';
import { config } from './src/config';
import { ExecutionLog } from './src/execution-log/execution-log.entity';
import { Fill } from './src/fill/fill.entity';
import { FillCorrection } from './src/fill/fill-correction.entity';
import { TypeOrmPinoLogger } from './src/logger';
import { Order } from './src/order/order.entity';
import { Position } from './src/position/position.entity';
import type { TradetrailSettings } from './src/request-db';
import { Trader } from './src/trader/trader.entity';

export const ENTITIES = [Trader, Position, Order, Fill, FillCorrection, ExecutionLog];

/**
 * Options shared by the server, the tests and the TypeORM CLI. Never `synchronize`: migrations only.
 * They carry Tradetrail's own settings of the connection (`tradetrail`, read by `src/request-db.ts`).
 */
export function dataSourceOptions(
  url: string,
  poolMax = config().dbPoolMax,
  logging: LoggerOptions = config().logSql ? 'all' : ['error', 'warn', 'migration'],
  settings: TradetrailSettings = {
    preparedStatements: config().preparedStatements,
    readCommitDelayMs: config().readCommitDelayMs,
  },
): DataSourceOptions & { tradetrail: TradetrailSettings } {
  return {
    tradetrail: settings,
    type: 'postgres',
    url,
    entities: ENTITIES,
    migrations: [path.join(__dirname, 'migrations', '*.{ts,js}')],
    migrationsTableName: 'typeorm_migrations',
    migrationsTransactionMode: 'each',
    synchronize: false,
    migrationsRun: false,
    // No extension is created: `gen_random_uuid()` is built in from PostgreSQL 13, and the log's hashes
    // use the core `sha256()`. `uuidExtension` only makes TypeORM write `gen_random_uuid()` (not
    // uuid-ossp's `uuid_generate_v4()`) into generated migrations and the drift check.
    uuidExtension: 'pgcrypto',
    installExtensions: false,
    applicationName: 'tradetrail',
    logging,
    logger: new TypeOrmPinoLogger(logging),
    maxQueryExecutionTime: 1000,
    poolSize: poolMax,
    extra: { connectionTimeoutMillis: 5000, idleTimeoutMillis: 30000 },
  };
}

/**
 * The DataSource. The TypeORM CLI reads it through `npm run migration:*`, which sets DATABASE_URL
 * (starting the embedded server when needed); the server points it at the resolved database with
 * `setOptions` before `initialize`.
 */
const AppDataSource = new DataSource({
  ...dataSourceOptions(
    config().databaseUrl ?? 'postgres://set-DATABASE_URL-or-use-the-npm-scripts@127.0.0.1:1/none',
    2,
    ['error', 'warn', 'migration', 'schema'],
  ),
  // The CLI prints for a person; the server replaces these options (JSON logs) with setOptions.
  logger: 'simple-console',
});
export default AppDataSource;
