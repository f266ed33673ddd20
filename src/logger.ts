import pino from 'pino';
import { config } from './config';

/** Structured JSON logs on stdout (pino: fast, maintained, one line per event). */
export const logger = pino({
  name: 'tradetrail',
  level: config().logLevel,
  redact: ['req.headers.authorization', '*.password'],
});
