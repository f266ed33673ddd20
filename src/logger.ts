import pino from 'pino';
import type { Logger as TypeOrmLogger } from 'typeorm';
import { config } from './config';

/** Structured JSON logs on stdout (pino: fast, maintained, one line per event). */
export const logger = pino({
  name: 'tradetrail',
  level: config().logLevel,
  redact: ['req.headers.authorization', '*.password'],
});

/** TypeORM's messages through the same JSON log (SQL text only at debug level or with TRADETRAIL_LOG_SQL). */
export class TypeOrmPinoLogger implements TypeOrmLogger {
  constructor(private readonly logSql: boolean) {}

  logQuery(query: string, parameters?: unknown[]): void {
    if (this.logSql) logger.info({ query, parameters }, 'sql');
  }
  logQueryError(error: string | Error, query: string, parameters?: unknown[]): void {
    logger.error({ err: error, query, parameters }, 'sql failed');
  }
  logQuerySlow(time: number, query: string): void {
    logger.warn({ ms: time, query }, 'slow sql');
  }
  logSchemaBuild(message: string): void {
    logger.debug(message);
  }
  logMigration(message: string): void {
    logger.info(message);
  }
  log(level: 'log' | 'info' | 'warn', message: unknown): void {
    logger[level === 'warn' ? 'warn' : 'info'](String(message));
  }
}
