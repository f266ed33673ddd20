import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';

/**
 * The errors a client can receive, each with a stable `extensions.code` and, where it matters, the
 * HTTP status. Anything that is not one of these is masked by `formatError` outside development.
 */
export type ErrorCode =
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'FORBIDDEN'
  | 'UNAUTHENTICATED'
  | 'DATABASE_UNAVAILABLE'
  | 'READ_ONLY'
  | 'INTERNAL_SERVER_ERROR';

abstract class TradetrailError extends GraphQLError {
  constructor(message: string, code: ErrorCode, extra: Record<string, unknown> = {}, httpStatus?: number) {
    super(message, {
      extensions: { code, ...extra, ...(httpStatus === undefined ? {} : { http: { status: httpStatus } }) },
    });
  }
}

export class BadUserInputError extends TradetrailError {
  constructor(message: string, extra: { field?: string } & Record<string, unknown> = {}) {
    super(message, 'BAD_USER_INPUT', extra);
  }
}

export class NotFoundError extends TradetrailError {
  constructor(message: string) {
    super(message, 'NOT_FOUND');
  }
}

export class ConflictError extends TradetrailError {
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(message, 'CONFLICT', extra);
  }
}

export class ForbiddenError extends TradetrailError {
  constructor(message: string) {
    super(message, 'FORBIDDEN');
  }
}

export class UnauthenticatedError extends TradetrailError {
  constructor(message: string) {
    super(message, 'UNAUTHENTICATED', {}, 401);
  }
}

export class DatabaseUnavailableError extends TradetrailError {
  constructor() {
    super(
      'The database is not reachable right now, so nothing was read or written. Try again in a few seconds.',
      'DATABASE_UNAVAILABLE',
      {},
      503,
    );
  }
}

export const READ_ONLY_MESSAGE =
  'The database is read-only (a hot standby, or read-only mode): nothing was written. Send writes to the primary.';

/** A write on a database that accepts only reads: a hot standby, or `default_transaction_read_only`. */
export class ReadOnlyError extends TradetrailError {
  constructor() {
    super(READ_ONLY_MESSAGE, 'READ_ONLY', {}, 503);
  }
}

/**
 * A write refused because the database is read-only: PostgreSQL's SQLSTATE 25006
 * (read_only_sql_transaction), or a ReadOnlyError already.
 */
export function isReadOnlyError(error: unknown): boolean {
  return error instanceof ReadOnlyError || (error as { code?: unknown } | null)?.code === '25006';
}

/** Connection-level failures from node-postgres / the OS, as opposed to errors in a statement. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : '';
  return (
    [
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
      'EPIPE',
      'ENOTFOUND',
      'EHOSTUNREACH',
      '57P01',
      '57P02',
      '57P03',
    ].includes(code) ||
    code.startsWith('08') ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      message,
    )
  );
}

export interface ValidationFailure {
  property: string;
  constraints?: Record<string, string>;
  children?: ValidationFailure[];
}

export function flattenValidation(errors: ValidationFailure[], prefix = ''): { field: string; message: string }[] {
  return errors.flatMap((e) => {
    const field = prefix ? `${prefix}.${e.property}` : e.property;
    return [
      ...Object.values(e.constraints ?? {}).map((message) => ({ field, message })),
      ...flattenValidation(e.children ?? [], field),
    ];
  });
}

/**
 * What a PostgreSQL error caused by a request's values means for the person who sent it: SQLSTATE
 * class 22 (data exception: a value the column cannot hold) and class 23 (integrity constraint) are
 * the request's fault, never an internal error. Input is validated before any SQL runs; this is the
 * safety net for what validation cannot see (a sum of fills beyond what a column holds, a race with
 * another writer on a unique key). Anything else: null.
 */
export function inputErrorFromDatabase(
  error: unknown,
): { code: 'BAD_USER_INPUT' | 'CONFLICT'; message: string; constraint?: string } | null {
  const e = error as { code?: unknown; constraint?: unknown } | null;
  const sqlState = typeof e?.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) ? e.code : '';
  const constraint = typeof e?.constraint === 'string' ? e.constraint : undefined;
  const refused = 'was refused by the database and nothing was written';
  if (sqlState.startsWith('22')) {
    const what: Record<string, string> = {
      '22003':
        'A number is larger than the database holds: quantities, prices and commissions have at most 21 digits before the decimal point and 9 after, and so do the positions and orders they add up to.',
      '22001': 'A text value is longer than the database holds for it.',
      '22007': 'A date or time is not valid.',
      '22008': 'A date or time is outside the range accepted (1970-01-01T00:00:00Z up to 2200-01-01T00:00:00Z).',
      '22021': 'A text value contains a character the database cannot store (NUL, or an unpaired surrogate).',
      '22P05': 'A text value contains a character the database cannot store (NUL, or an unpaired surrogate).',
      '22P02': 'A value is not in the form expected (an id must be a UUID, a number must be digits).',
      '22012': 'A computation divided by zero: a quantity or price of 0 where a positive one is needed.',
    };
    return {
      code: 'BAD_USER_INPUT',
      message: `${what[sqlState] ?? 'A value is not valid data.'} The request ${refused}.`,
    };
  }
  if (sqlState === '23505' || sqlState === '23P01') {
    return {
      code: 'CONFLICT',
      message: `This would record something twice that must be unique${constraint ? ` (${constraint})` : ''}; another request may have recorded it at the same moment. The request ${refused}; read the current state and retry if needed.`,
      constraint,
    };
  }
  if (sqlState.startsWith('23')) {
    const what: Record<string, string> = {
      '23502': 'A required value is missing',
      '23503': 'It names a record that does not exist (or no longer exists)',
      '23514': 'A value breaks a rule of the data',
    };
    return {
      code: 'BAD_USER_INPUT',
      message: `${what[sqlState] ?? 'It breaks a rule of the data'}${constraint ? ` (${constraint})` : ''}. The request ${refused}.`,
      constraint,
    };
  }
  return null;
}

const PASSED_THROUGH = new Set([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'UNAUTHENTICATED',
  'DATABASE_UNAVAILABLE',
  'READ_ONLY',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_TOO_COSTLY',
]);

/**
 * Apollo `formatError`: the client sees our own errors and GraphQL's as they are; class-validator
 * failures as one readable BAD_USER_INPUT naming the field; a lost database as DATABASE_UNAVAILABLE;
 * a write on a read-only database (a hot standby) as READ_ONLY; anything else as a masked
 * INTERNAL_SERVER_ERROR (no SQL, no stack, no database message: those go to the server's log only).
 */
export function makeFormatError(options: {
  logInternal: (error: unknown) => void;
  /** A database error the request's values caused (answered as BAD_USER_INPUT or CONFLICT). */
  logRefused?: (error: unknown) => void;
}) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const validationErrors = (original as { extensions?: { validationErrors?: ValidationFailure[] } } | null)
      ?.extensions?.validationErrors;
    if (original instanceof GraphQLError && Array.isArray(validationErrors)) {
      const failures = flattenValidation(validationErrors);
      return {
        message: failures.map((f) => f.message).join(' ') || 'The arguments are not valid.',
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: 'BAD_USER_INPUT', field: failures[0]?.field, fields: failures },
      };
    }
    if ((original as { code?: unknown } | null)?.code === '57014') {
      return {
        message:
          'The request ran longer than the statement timeout and was stopped; ask for less (smaller first, narrower filters).',
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: 'STATEMENT_TIMEOUT' },
      };
    }
    if (isConnectionError(original)) {
      const e = new DatabaseUnavailableError();
      return {
        message: e.message,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: 'DATABASE_UNAVAILABLE' },
      };
    }
    if (isReadOnlyError(original)) {
      return {
        message: READ_ONLY_MESSAGE,
        locations: formatted.locations,
        path: formatted.path,
        extensions: { code: 'READ_ONLY' },
      };
    }
    const fromDatabase = inputErrorFromDatabase(original);
    if (fromDatabase) {
      options.logRefused?.(original);
      return {
        message: fromDatabase.message,
        locations: formatted.locations,
        path: formatted.path,
        extensions: {
          code: fromDatabase.code,
          ...(fromDatabase.constraint ? { constraint: fromDatabase.constraint } : {}),
        },
      };
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && PASSED_THROUGH.has(code)) {
      const { stacktrace: _stack, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    options.logInternal(original);
    return {
      message: 'Internal server error.',
      locations: formatted.locations,
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}
