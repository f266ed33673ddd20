import pino from 'pino';
import { AbstractLogger, type LogLevel, type LogMessage } from 'typeorm';
import { config } from './config';

export type Logger = pino.Logger;

/**
 * A logger as the server's: JSON lines, Tradetrail's name and redactions. `destination`: where the
 * lines go (default: stdout); tests give a stream of their own to read what was logged.
 */
export function createLogger(level: string = config().logLevel, destination?: pino.DestinationStream): Logger {
  const options = { name: 'tradetrail', level, redact: ['req.headers.authorization', '*.password'] };
  return destination ? pino(options, destination) : pino(options);
}

/** Structured JSON logs on stdout (pino: fast, maintained, one line per event). */
export const logger = createLogger();

/** Parameters as logged: at most 2,000 characters (a batch statement's arrays would flood the log). */
function brief(parameters: unknown): unknown {
  const text = JSON.stringify(parameters, (_k, v: unknown) =>
    v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? '<bytes>' : v,
  );
  return text.length <= 2000 ? parameters : `${text.slice(0, 2000)}… (${text.length} characters)`;
}

/** TypeORM's messages through the same JSON log, filtered by the DataSource's `logging` option. */
export class TypeOrmPinoLogger extends AbstractLogger {
  protected writeLog(level: LogLevel, message: LogMessage | string | number | (LogMessage | string | number)[]): void {
    for (const m of this.prepareLogMessages(message, { highlightSql: false, appendParameterAsComment: false })) {
      const fields = { typeorm: m.type ?? level, ...(m.parameters?.length ? { parameters: brief(m.parameters) } : {}) };
      const text = `${m.prefix ? `${m.prefix} ` : ''}${m.message}`;
      if (level === 'error' || m.type === 'query-error') logger.error(fields, text);
      else if (level === 'warn' || m.type === 'query-slow') logger.warn(fields, text);
      else if (level === 'schema') logger.debug(fields, text);
      else logger.info(fields, text);
    }
  }
}
