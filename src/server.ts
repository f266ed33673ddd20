import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
  ApolloServerPluginUsageReportingDisabled,
} from '@apollo/server/plugin/disabled';
import { expressMiddleware } from '@as-integrations/express5';
import express from 'express';
import type { GraphQLSchema } from 'graphql';
import type { DataSource } from 'typeorm';
import type { Config } from './config';
import { exportRoutes } from './compliance/export.routes';
import { type Context, createContext, type LogAccess } from './context';
import { findCheckpoint } from './execution-log/proof.service';
import { healthRoutes, type LifecycleState } from './http/health';
import { ideRoutes } from './http/ide';
import { Metrics, serveMetrics } from './http/metrics';
import {
  observeRequests,
  requestTracePlugin,
  traceContext,
  traceContextFailure,
  traceGraphql,
  traceHttpError,
} from './http/request-log';
import { DEVELOPMENT_ADMIN, type TokenVerifier } from './auth';
import { makeFormatError } from './errors';
import { armor, costLimitPlugin } from './limits';
import { type Logger, logger } from './logger';
import { APPLICATION_ROLE } from './request-db';
import { buildTradetrailSchema } from './schema';
import { inputGuardPlugin } from './validation';
import { compiledExecution } from './executor';

/**
 * Gives every request one database connection in one transaction: READ ONLY for queries, read-write
 * for mutations. Committed when the request succeeded, rolled back otherwise, released on every path.
 */
export const requestDbPlugin: ApolloServerPlugin<Context> = {
  async requestDidStart() {
    return {
      async didResolveOperation({ operation, contextValue }) {
        contextValue.db.setMode(operation?.operation === 'mutation' ? 'write' : 'read');
      },
      async willSendResponse({ contextValue, errors }) {
        await contextValue.db.finish(!errors?.length);
      },
    };
  },
};

export function createApollo(
  schema: GraphQLSchema,
  cfg: Config,
  extraPlugins: ApolloServerPlugin<Context>[] = [],
): ApolloServer<Context> {
  const protection = armor(cfg);
  return new ApolloServer<Context>({
    gateway: compiledExecution(schema),
    ...protection,
    plugins: [
      // First: an operation that does not exist, or text that cannot be stored, stops here (HTTP 400).
      inputGuardPlugin,
      ...protection.plugins,
      costLimitPlugin(schema, cfg.maxCost),
      requestDbPlugin,
      ...extraPlugins,
      ApolloServerPluginLandingPageDisabled(),
      // No per-field instrumentation: nothing here uses cache hints or Apollo's usage reporting.
      ApolloServerPluginCacheControlDisabled(),
      ApolloServerPluginUsageReportingDisabled(),
    ],
    introspection: cfg.introspection,
    // More tokens than this is a parse error (HTTP 400) before any validation or SQL.
    parseOptions: { maxTokens: cfg.maxTokens },
    includeStacktraceInErrorResponses: false,
    csrfPrevention: true,
    // The process shuts down in its own order (src/http/lifecycle.ts): Apollo does not act on signals.
    stopOnTerminationSignals: false,
    formatError: makeFormatError({
      logInternal: (error) => logger.error({ err: error }, 'internal error while handling a GraphQL request'),
      logRefused: (error) => logger.warn({ err: error }, "the database refused a request's values"),
    }),
  });
}

const EXAMPLES_DIR = path.join(__dirname, '..', '..', 'examples');
function readExample(name: string): string {
  for (const dir of [EXAMPLES_DIR, path.join(__dirname, '..', 'examples')]) {
    try {
      return readFileSync(path.join(dir, name), 'utf8');
    } catch {
      // try the next location (compiled vs. ts-node layouts)
    }
  }
  return '';
}

export interface App {
  app: express.Express;
  apollo: ApolloServer<Context>;
  /**
   * The metrics this app feeds (undefined with `metrics` off). With `metricsPort` set they are not
   * served on the app's port: `listenMetrics(metrics, cfg.metricsPort, cfg.metricsHost)` serves them.
   */
  metrics: Metrics | undefined;
  /** The schema `/graphql` serves (subscriptions over WebSocket share it: src/live). */
  schema: GraphQLSchema;
}

export interface AppOptions {
  /** `/ready` answers 503 once `shuttingDown` is true (the process's Lifecycle). */
  lifecycle?: LifecycleState;
  /** The metrics to serve and feed; default: new ones when `cfg.metrics` is on. */
  metrics?: Metrics;
  /** Where request log lines go; default: the process's logger (tests give one of their own). */
  requestLogger?: Logger;
}

/**
 * The HTTP application: `/graphql`, the offline GraphQL IDE at `/` (its files under `/ide/`), the probes
 * (`/health`, `/ready`, `/healthz`), `/metrics` (unless on a port of its own, or off), the log's public key and
 * latest checkpoint (`/log/public-key`, `/log/checkpoint`: public, so that anyone can keep copies), and the
 * exports of a trail (`/export/{positions,orders,traders}/:id`). Every response carries an `x-request-id`;
 * each request is one line of the request log (`cfg.requestLog`).
 */
export async function createApp(
  dataSource: DataSource,
  cfg: Config,
  verify: TokenVerifier,
  log: LogAccess,
  options: AppOptions = {},
): Promise<App> {
  const metrics = cfg.metrics ? (options.metrics ?? new Metrics(dataSource)) : undefined;
  const requestLog = cfg.requestLog ? (options.requestLogger ?? logger) : undefined;
  const schema = await buildTradetrailSchema();
  const apollo = createApollo(schema, cfg, metrics || requestLog ? [requestTracePlugin] : []);
  await apollo.start();
  const app = express();
  app.disable('x-powered-by');
  // No ETag: Express would hash every response body (SHA-1 over a 400 KB GraphQL answer) for a header
  // no GraphQL client uses (answers are POSTed and never revalidated).
  app.set('etag', false);

  // First: the request id, the request log line and the request metrics, for every response.
  app.use(observeRequests({ log: requestLog, metrics }));
  app.use(healthRoutes(dataSource, options.lifecycle));
  // Not behind the GraphQL token: on the GraphQL port only when no port of its own is set.
  if (metrics && cfg.metricsPort === undefined) app.get('/metrics', serveMetrics(metrics));

  app.get('/log/public-key', (_req, res) => {
    res.json({
      keyName: log.key.name,
      verifierKey: log.key.verifierKey,
      publicKeyPem: log.key.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    });
  });
  // The latest signed checkpoint as a signed note (text/plain), for monitors that keep copies.
  app.get('/log/checkpoint', async (_req, res) => {
    try {
      const row = await dataSource.transaction(async (m) => {
        await m.query(`SET LOCAL ROLE ${APPLICATION_ROLE}`);
        return findCheckpoint(m);
      });
      if (!row) res.status(404).type('text/plain').send('No checkpoint has been signed yet.\n');
      else res.type('text/plain').send(row.note);
    } catch {
      res.status(503).type('text/plain').send('The database is not reachable.\n');
    }
  });

  if (cfg.queryPage) {
    // The GraphQL IDE (GraphiQL, served from node_modules: no internet needed) at `/` and `GET /graphql`.
    app.use(
      ideRoutes({
        exampleQuery: readExample('position-audit-trail.graphql'),
        exampleVariables: readExample('position-audit-trail.variables.json') || '{}',
        auth: cfg.auth,
      }),
    );
  }

  // Streamed exports of a trail (NDJSON, CSV): same tokens, roles and row-level security as /graphql.
  app.use(exportRoutes(dataSource, cfg, verify));

  app.use(
    '/graphql',
    traceGraphql,
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req, res }) => {
        let principal;
        try {
          principal = cfg.auth === 'disabled' ? DEVELOPMENT_ADMIN : await verify(req.headers.authorization);
        } catch (error) {
          traceContextFailure(res, error);
          throw error;
        }
        return traceContext(res, createContext(dataSource, principal, cfg.statementTimeoutMs, log));
      },
    }),
  );
  // Body-parser and other HTTP-level failures: a GraphQL-shaped JSON error, never a stack trace.
  app.use(
    (
      error: { status?: number; type?: string },
      _req: express.Request,
      res: express.Response,
      next: express.NextFunction,
    ) => {
      if (res.headersSent) return next(error);
      const status = error.status && error.status >= 400 && error.status < 600 ? error.status : 500;
      traceHttpError(res, status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR');
      const message =
        error.type === 'entity.too.large'
          ? 'The request body is larger than 1 MB.'
          : error.type === 'entity.parse.failed'
            ? 'The request body is not valid JSON.'
            : status < 500
              ? 'The request could not be read.'
              : 'Internal server error.';
      if (status >= 500) logger.error({ err: error }, 'HTTP error');
      res
        .status(status)
        .json({ errors: [{ message, extensions: { code: status < 500 ? 'BAD_REQUEST' : 'INTERNAL_SERVER_ERROR' } }] });
    },
  );
  return { app, apollo, metrics, schema };
}
