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

const PASSED_THROUGH = new Set([
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'FORBIDDEN',
  'UNAUTHENTICATED',
  'DATABASE_UNAVAILABLE',
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
 * anything else as a masked INTERNAL_SERVER_ERROR (no SQL, no stack, no database message: those go
 * to the server's log only).
 */
export function makeFormatError(options: { logInternal: (error: unknown) => void }) {
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
