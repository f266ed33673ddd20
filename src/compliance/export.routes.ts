import express from 'express';
import { GraphQLError } from 'graphql';
import type { DataSource } from 'typeorm';
import { DEVELOPMENT_ADMIN, type Principal, requireRole, requireSelf, type TokenVerifier } from '../auth';
import type { Config } from '../config';
import { BadUserInputError, makeFormatError } from '../errors';
import { assertId } from '../ids';
import { logger } from '../logger';
import { RequestDb } from '../request-db';
import { EARLIEST_TIME, LATEST_TIME } from '../scalars';
import { type ExportFormat, type ExportKind, type ExportRequest, type ExportSink, writeExport } from './export';

/**
 * `GET /export/positions/:id`, `/export/orders/:id`, `/export/traders/:id` (README "Exporting a
 * trail"): `format=ndjson|csv` (or `Accept: text/csv`), optional `from` / `to`. The same tokens,
 * roles and row-level security as GraphQL; the export runs in one REPEATABLE READ, READ ONLY
 * transaction on one pooled connection (a RequestDb: the same per-request settings), released on
 * every path, also when the client goes away mid-stream.
 */
const KINDS: Record<string, ExportKind> = { positions: 'position', orders: 'order', traders: 'trader' };
const PARAMETERS = new Set(['format', 'from', 'to']);

/** ISO 8601 (RFC 3339 profile): a date (UTC midnight), or a date and time with Z or an offset. */
const ISO_TIME = /^(\d{4}-\d{2}-\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2}))?$/i;

function time(value: string | undefined, field: 'from' | 'to'): string | undefined {
  if (value === undefined) return undefined;
  const match = ISO_TIME.exec(value);
  const text = match && value.length === match[1].length ? `${match[1]}T00:00:00Z` : value;
  // Dates that do not exist (2026-02-30) fail the round trip; PostgreSQL gets the text (microseconds kept).
  const day = match ? new Date(`${match[1]}T00:00:00Z`) : undefined;
  if (
    !day ||
    Number.isNaN(day.getTime()) ||
    day.toISOString().slice(0, 10) !== match![1] ||
    Number.isNaN(Date.parse(text))
  ) {
    throw new BadUserInputError(
      `${field} must be an ISO 8601 time with a zone, such as "2026-11-25T14:30:00Z" or "2026-11-25T15:30:00+01:00", or a date ("2026-11-25", midnight UTC); got ${JSON.stringify(value)}.`,
      { field },
    );
  }
  if (Date.parse(text) < EARLIEST_TIME.getTime() || Date.parse(text) >= LATEST_TIME.getTime()) {
    throw new BadUserInputError(
      `${field} must be from ${EARLIEST_TIME.toISOString()} up to (not including) ${LATEST_TIME.toISOString()}; got ${JSON.stringify(value)}.`,
      { field },
    );
  }
  return text;
}

/** The request's parameters, checked: anything wrong is BAD_USER_INPUT before any SQL runs. */
function parseExportRequest(
  kind: ExportKind,
  id: string,
  query: Record<string, unknown>,
  acceptsCsv: boolean,
): ExportRequest {
  const unknown = Object.keys(query).filter((key) => !PARAMETERS.has(key));
  if (unknown.length) {
    throw new BadUserInputError(
      `Unknown query parameter ${unknown.map((k) => JSON.stringify(k)).join(', ')}: an export takes format, from and to.`,
      { field: unknown[0] },
    );
  }
  const single = (field: string): string | undefined => {
    const value = query[field];
    if (value === undefined || typeof value === 'string') return value;
    throw new BadUserInputError(`Give ${field} at most once.`, { field });
  };
  const format = single('format') ?? (acceptsCsv ? 'csv' : 'ndjson');
  if (format !== 'ndjson' && format !== 'csv') {
    throw new BadUserInputError(`format must be ndjson or csv; got ${JSON.stringify(format)}.`, { field: 'format' });
  }
  const from = time(single('from'), 'from');
  const to = time(single('to'), 'to');
  if (from !== undefined && to !== undefined && Date.parse(from) > Date.parse(to)) {
    throw new BadUserInputError('from must not be after to (from is included, to excluded).', { field: 'from' });
  }
  return { kind, id: assertId(id), from, to, format: format as ExportFormat };
}

/** HTTP status of an error code (GraphQL answers 200 with errors; a download needs a status). */
const STATUS: Record<string, number> = {
  BAD_USER_INPUT: 400,
  BAD_REQUEST: 400,
  CONFLICT: 409,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  DATABASE_UNAVAILABLE: 503,
  READ_ONLY: 503,
  STATEMENT_TIMEOUT: 503,
};

/** The GraphQL error masking (errors.ts), so that an export fails exactly as a query would. */
const formatError = makeFormatError({
  logInternal: (error) => logger.error({ err: error }, 'internal error while exporting a trail'),
  logRefused: (error) => logger.warn({ err: error }, "the database refused an export's parameters"),
});

function sendError(res: express.Response, error: unknown): void {
  const formatted = formatError(
    error instanceof GraphQLError
      ? error.toJSON()
      : { message: error instanceof Error ? error.message : String(error) },
    error,
  );
  const { http: _http, ...extensions } = formatted.extensions ?? {};
  res.status(STATUS[String(extensions.code)] ?? 500).json({ errors: [{ message: formatted.message, extensions }] });
}

/** The HTTP response as an export's sink: back-pressure ('drain'), and `closed` once the client is gone. */
class ResponseSink implements ExportSink {
  closed = false;
  constructor(
    private readonly res: express.Response,
    private readonly filename: string,
  ) {
    res.on('close', () => {
      if (!res.writableFinished) this.closed = true;
    });
  }

  start(contentType: string, extension: string, checkpoint: { treeSize: number } | null): void {
    this.res.status(200).set({
      'Content-Type': contentType,
      'Content-Disposition': `attachment; filename="${this.filename}.${extension}"`,
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      // The size of the checkpoint the proofs are against, or "none" (every entry is then pending).
      'X-Tradetrail-Checkpoint': checkpoint ? String(checkpoint.treeSize) : 'none',
    });
  }

  write(chunk: string | Buffer, written?: () => void): Promise<void> {
    if (this.closed || !chunk.length) return Promise.resolve();
    // The callback runs once the bytes are flushed to the socket (with an error when they never will be).
    if (this.res.write(chunk, written && ((error) => error || written()))) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }
}

export function exportRoutes(dataSource: DataSource, cfg: Config, verify: TokenVerifier): express.Router {
  const router = express.Router();
  router.get('/export/:kind/:id', async (req, res, next) => {
    const kind = KINDS[req.params.kind];
    if (!kind) return next();
    let principal: Principal;
    let request: ExportRequest;
    try {
      principal = cfg.auth === 'disabled' ? DEVELOPMENT_ADMIN : await verify(req.headers.authorization);
      requireRole(principal, ['trader', 'compliance', 'admin'], 'export a trail');
      request = parseExportRequest(
        kind,
        req.params.id,
        req.query,
        !req.query.format && req.accepts(['application/x-ndjson', 'text/csv']) === 'text/csv',
      );
      if (kind === 'trader') requireSelf(principal, request.id, 'export the trail');
    } catch (error) {
      return sendError(res, error);
    }

    const sink = new ResponseSink(res, `tradetrail-${kind}-${request.id}`);
    let failure: unknown;
    try {
      // Ended (read only) or rolled back, and released, before the client sees the end.
      await RequestDb.transaction(dataSource, principal, cfg.statementTimeoutMs, 'read', (m) =>
        writeExport(m, request, sink),
      );
    } catch (error) {
      failure = error;
    }
    if (failure === undefined) {
      if (!sink.closed) res.end();
    } else if (!res.headersSent) {
      sendError(res, failure);
    } else {
      // Mid-stream: the status is sent, so the response is cut off (the client sees an incomplete transfer).
      logger.error({ err: failure }, 'a trail export failed while streaming');
      res.destroy();
    }
  });
  return router;
}
