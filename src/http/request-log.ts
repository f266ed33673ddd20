import { randomUUID } from 'node:crypto';
import type { ApolloServerPlugin } from '@apollo/server';
import type express from 'express';
import type { Context } from '../context';
import type { Logger } from '../logger';
import type { Metrics } from './metrics';

/**
 * What the request log and the metrics know of one HTTP request: its id, and for GraphQL what Apollo
 * resolved. It is kept on `res.locals.trace`; it never holds a header, a token, a query string, the
 * query text or its variables.
 */
export interface RequestTrace {
  id: string;
  /** Set when the request reached `/graphql`. */
  graphql?: GraphqlTrace;
}

export interface GraphqlTrace {
  /** The operation's type; undefined when it was never resolved (refused before: auth, parse, validation). */
  type?: 'query' | 'mutation' | 'subscription';
  /** The operation's name from the document (null: anonymous); undefined when never resolved. */
  name?: string | null;
  /** The caller's role, once the token was verified. */
  role?: string;
  /** The `extensions.code` of each error of the response, in order (at most MAX_ERROR_CODES). */
  errorCodes?: string[];
}

/** A response with more errors than this keeps the codes of the first ones only. */
const MAX_ERROR_CODES = 100;

/** An incoming `x-request-id` is kept when it is 1 to 128 printable ASCII characters (no space, no control). */
const SANE_REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The request's id: the caller's `x-request-id` when it is sane, else a new UUID. */
export function requestId(incoming: string | string[] | undefined): string {
  return typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/** Probes and scrapes are logged at debug level only, so that they do not flood the log. */
const PROBES = new Set(['/health', '/healthz', '/ready', '/metrics']);
const MAX_PATH = 256;

/** The path of a request URL, without its query string (which may carry a query and its variables). */
export function pathOf(url: string): string {
  const end = url.search(/[?#]/);
  const path = end < 0 ? url : url.slice(0, end);
  return path.length <= MAX_PATH ? path : `${path.slice(0, MAX_PATH)}…`;
}

export function traceOf(res: express.Response): RequestTrace | undefined {
  return res.locals.trace as RequestTrace | undefined;
}

/**
 * The first middleware: gives the request its id (the `x-request-id` response header, on every
 * response), and when the response is done, or the client went away, feeds the metrics and writes
 * one log line (`log`: undefined when the request log is off).
 */
export function observeRequests(options: { log?: Logger; metrics?: Metrics }): express.RequestHandler {
  const { log, metrics } = options;
  return (req, res, next) => {
    const trace: RequestTrace = { id: requestId(req.headers['x-request-id']) };
    res.setHeader('x-request-id', trace.id);
    res.locals.trace = trace;
    if (log || metrics) {
      const started = performance.now();
      res.once('close', () => {
        const seconds = (performance.now() - started) / 1000;
        const graphql = trace.graphql;
        // Apollo refuses some requests before its pipeline and any plugin hook (CSRF prevention, a batch):
        // all of them BAD_REQUEST.
        if (graphql && !graphql.errorCodes && graphql.role === undefined && res.statusCode >= 400) {
          graphql.errorCodes = ['BAD_REQUEST'];
        }
        if (graphql) metrics?.observeGraphql(graphql, seconds);
        if (log) writeLine(log, req.method, pathOf(req.originalUrl), res, trace, seconds);
      });
    }
    next();
  };
}

function writeLine(
  log: Logger,
  method: string,
  path: string,
  res: express.Response,
  trace: RequestTrace,
  seconds: number,
): void {
  const level = PROBES.has(path) ? 'debug' : res.statusCode >= 500 ? 'warn' : 'info';
  if (!log.isLevelEnabled(level)) return;
  const fields: Record<string, unknown> = {
    reqId: trace.id,
    method,
    path,
    status: res.statusCode,
    ms: Math.round(seconds * 10_000) / 10,
  };
  // The client went away before the response was complete.
  if (!res.writableFinished) fields.aborted = true;
  const graphql = trace.graphql;
  if (graphql) {
    if (graphql.type) {
      fields.operation = graphql.name ?? null;
      fields.operationType = graphql.type;
    }
    if (graphql.role) fields.role = graphql.role;
    if (graphql.errorCodes?.length) fields.errors = [...new Set(graphql.errorCodes)];
  }
  log[level](fields, fields.aborted ? 'request aborted' : 'request completed');
}

/** Middleware of the `/graphql` route: from here on the request is traced as a GraphQL request. */
export const traceGraphql: express.RequestHandler = (_req, res, next) => {
  const trace = traceOf(res);
  if (trace) trace.graphql = {};
  next();
};

/**
 * The request's trace on its context, for the Apollo plugin (which sees the context only). A symbol
 * property: Apollo hands each operation a shallow copy of the context (`cloneObject`, an
 * `Object.assign`, which copies own symbol properties too; checked against @apollo/server 5.5.1), so
 * the context object itself cannot be the key of a WeakMap. Nothing else sees the property.
 */
const TRACE = Symbol('tradetrail.trace');
type Traced = { [TRACE]?: GraphqlTrace };

/** The context factory's result: the caller's role is known, and the plugin will find the trace. */
export function traceContext<C extends Context>(res: express.Response, context: C): C {
  const graphql = traceOf(res)?.graphql;
  if (graphql) {
    graphql.role = context.principal.role;
    (context as Traced)[TRACE] = graphql;
  }
  return context;
}

/** The context could not be created (a refused token): the response carries this error alone. */
export function traceContextFailure(res: express.Response, error: unknown): void {
  const graphql = traceOf(res)?.graphql;
  if (graphql) graphql.errorCodes = [codeOf((error as { extensions?: unknown } | null)?.extensions)];
}

/** An HTTP-level error answered on a GraphQL route (a body too large, malformed JSON). */
export function traceHttpError(res: express.Response, code: string): void {
  const graphql = traceOf(res)?.graphql;
  if (graphql) graphql.errorCodes = [code];
}

function codeOf(extensions: unknown): string {
  const code = (extensions as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : 'INTERNAL_SERVER_ERROR';
}

/**
 * Request-level only (no per-field hook): when the response is ready, what Apollo resolved (the
 * operation's name and type) and the codes of the errors it is about to send (as formatted).
 */
export const requestTracePlugin: ApolloServerPlugin<Context> = {
  async requestDidStart({ contextValue }) {
    const trace = (contextValue as Traced)[TRACE];
    if (!trace) return;
    return {
      async willSendResponse({ operation, operationName, response }) {
        if (operation) {
          trace.type = operation.operation;
          trace.name = operationName;
        }
        const body = response.body;
        const errors = body.kind === 'single' ? body.singleResult.errors : body.initialResult.errors;
        trace.errorCodes = (errors ?? []).slice(0, MAX_ERROR_CODES).map((e) => codeOf(e.extensions));
      },
    };
  },
};
