import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type DocumentNode,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  parse,
  specifiedRules,
  validate,
} from 'graphql';
import { getComplexity } from 'graphql-query-complexity';
import { CloseCode } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { decodeJwt } from 'jose';
import type { DataSource } from 'typeorm';
import type { PostgresDataSourceOptions } from 'typeorm/driver/postgres/PostgresDataSourceOptions';
import { type WebSocket, WebSocketServer } from 'ws';
import { DEVELOPMENT_ADMIN, type Principal, type TokenVerifier } from '../auth';
import type { Config } from '../config';
import type { LogAccess } from '../context';
import { makeFormatError, UnauthenticatedError } from '../errors';
import { armor, costEstimator } from '../limits';
import { type Logger, logger as defaultLogger } from '../logger';
import { CLOSE_TRY_AGAIN_LATER, Limiter, LiveHub } from './feed';
import { LiveContext, type LiveSession } from './live.context';
import { ChangeListener, type ListenerOptions } from './notifications';

export interface LiveOptions {
  /** The schema `buildTradetrailSchema` built (the one HTTP serves). */
  schema: GraphQLSchema;
  dataSource: DataSource;
  cfg: Config;
  /** The verifier of the HTTP path: the same tokens, the same answers. */
  verify: TokenVerifier;
  log: LogAccess;
  logger?: Logger;
  /** Bytes given to one socket and not yet sent beyond which its subscriber is dropped as too slow. */
  maxBufferedBytes?: number;
  /** Reconnection and heartbeat of the LISTEN connection. */
  listener?: ListenerOptions;
}

export interface LiveSubscriptions {
  /** Subscriptions open on this server. */
  open(): number;
  /** Resolves true once this process listens for changes (false after `timeoutMs`). */
  listening(timeoutMs?: number): Promise<boolean>;
  /** Closes every subscription socket with `code` (1001, "going away", for a shutdown) and the LISTEN connection. */
  close(code?: number): Promise<void>;
}

/** 4 MiB: a few large events (an order with its whole trail) fit; a client that stops reading does not. */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** A client's message may be as large as an HTTP request's body. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** How long a subscription waits for the LISTEN connection before it is told to come back (1013). */
const LISTEN_WAIT_MS = 5000;

const hubs = new Set<LiveHub>();

/** Subscriptions open in this process (for metrics). */
export function openSubscriptions(): number {
  let n = 0;
  for (const hub of hubs) n += hub.size;
  return n;
}

/** The live feed's gauges and counters in this process (for metrics). */
export function liveStats(): { openSubscriptions: number; queuedNotifications: number; droppedAsTooSlow: number } {
  const stats = { openSubscriptions: 0, queuedNotifications: 0, droppedAsTooSlow: 0 };
  for (const hub of hubs) {
    stats.openSubscriptions += hub.size;
    stats.queuedNotifications += hub.queued;
    stats.droppedAsTooSlow += hub.droppedAsTooSlow;
  }
  return stats;
}

/** A close frame's reason holds at most 123 bytes. */
function closeReason(text: string): string {
  if (Buffer.byteLength(text) <= 123) return text;
  let cut = text.slice(0, 120);
  while (Buffer.byteLength(cut) > 120) cut = cut.slice(0, -1);
  return `${cut}…`;
}

/** `connection_init`'s payload: `{ authorization: "Bearer …" }` or `{ token: "…" }`. */
function authorizationOf(params: Readonly<Record<string, unknown>> | undefined): string | undefined {
  const authorization = params?.authorization ?? params?.Authorization;
  if (typeof authorization === 'string' && authorization) return authorization;
  const token = params?.token;
  if (typeof token === 'string' && token) return /^Bearer\s/i.test(token) ? token : `Bearer ${token}`;
  return undefined;
}

/** When a verified token expires (ms since the epoch), undefined if it does not say. */
function expiryOf(authorization: string): number | undefined {
  try {
    const exp = decodeJwt(authorization.replace(/^Bearer\s+/i, '')).exp;
    return typeof exp === 'number' ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const requestError = (message: string, code: string, extra: Record<string, unknown> = {}): GraphQLError =>
  new GraphQLError(message, { extensions: { code, ...extra } });

interface Connection {
  principal: Principal;
  expiry: NodeJS.Timeout | undefined;
}

/**
 * GraphQL subscriptions over WebSocket (the graphql-transport-ws protocol of the graphql-ws package)
 * on `server`'s port, at `/graphql`, on the schema HTTP serves. The token comes in `connection_init`
 * and is verified as HTTP's are (a missing or refused one closes with 4401; an expired one, later,
 * with 4403); the limits of HTTP apply (tokens, depth, aliases, cost); each event is read with the
 * subscriber's identity. Only subscriptions: queries and mutations go over HTTP. Changes come from
 * the database: one LISTEN connection per process hears every commit, whichever process made it.
 */
export function attachSubscriptions(server: Server, options: LiveOptions): LiveSubscriptions {
  const { schema, dataSource, cfg, verify } = options;
  const log = options.logger ?? defaultLogger;
  const db = dataSource.options as PostgresDataSourceOptions;
  const listenUrl = cfg.listenUrl ?? db.url;
  if (!listenUrl)
    throw new Error('attachSubscriptions: no URL to LISTEN on (TRADETRAIL_LISTEN_URL or the database URL)');

  const hub = new LiveHub(cfg.subscriptionQueue, options.maxBufferedBytes ?? MAX_BUFFERED_BYTES, log);
  hubs.add(hub);
  const session: LiveSession = {
    dataSource,
    statementTimeoutMs: cfg.statementTimeoutMs,
    log: options.log,
    hub,
    // Half the pool at most: the write path must never wait behind live readers.
    reads: new Limiter(Math.max(1, Math.floor((db.poolSize ?? cfg.dbPoolMax) / 2))),
  };
  const listener = new ChangeListener(
    listenUrl,
    { onChange: (change) => hub.dispatch(change), onInterrupted: () => hub.interrupted() },
    log,
    options.listener,
  );
  listener.start();

  const connections = new WeakMap<WebSocket, Connection>();
  const rules = [...specifiedRules, ...armor(cfg).validationRules];
  const formatError = makeFormatError({
    logInternal: (error) => log.error({ err: error }, 'internal error in a subscription'),
  });
  /** As HTTP answers: our errors and GraphQL's as they are, anything else masked. */
  const format = (error: GraphQLError): GraphQLFormattedError => {
    // An error thrown by an event stream reaches us wrapped by graphql-ws (no path): unwrap it.
    const inner = !error.path && error.originalError instanceof GraphQLError ? error.originalError : error;
    return formatError(inner.toJSON(), inner.path || !inner.originalError ? inner : inner.originalError);
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  useServer(
    {
      schema,
      isProd: cfg.nodeEnv === 'production',
      onConnect: async (ctx) => {
        const socket = ctx.extra.socket;
        let principal: Principal = DEVELOPMENT_ADMIN;
        let expiresAt: number | undefined;
        if (cfg.auth !== 'disabled') {
          const authorization = authorizationOf(ctx.connectionParams);
          if (!authorization) {
            socket.close(
              CloseCode.Unauthorized,
              'Authentication required: send connection_init with { "authorization": "Bearer <token>" }.',
            );
            return false;
          }
          try {
            principal = await verify(authorization);
          } catch (error) {
            if (!(error instanceof UnauthenticatedError)) throw error;
            socket.close(CloseCode.Unauthorized, closeReason(error.message));
            return false;
          }
          expiresAt = expiryOf(authorization);
        }
        const connection: Connection = { principal, expiry: undefined };
        const expire = (): void => {
          const left = (expiresAt ?? Infinity) - Date.now();
          if (left === Infinity) return;
          // A subscription outlives no token: at its expiry the socket closes (a client may reconnect with a new one).
          if (left <= 0) socket.close(CloseCode.Forbidden, 'The token has expired: reconnect with a fresh one.');
          else connection.expiry = setTimeout(expire, Math.min(left, 2 ** 31 - 1));
        };
        expire();
        connections.set(socket, connection);
        return true;
      },
      onSubscribe: async (ctx, _id, payload) => {
        const socket = ctx.extra.socket;
        const connection = connections.get(socket);
        if (!connection) return [requestError('The connection is not authenticated.', 'UNAUTHENTICATED')];
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: cfg.maxTokens });
        } catch (error) {
          return [requestError((error as Error).message, 'GRAPHQL_PARSE_FAILED')];
        }
        // In production no "Did you mean …?" (as over HTTP, where graphql-armor's plugin removes them).
        const invalid = validate(schema, document, rules).map((e) =>
          cfg.nodeEnv === 'production' && / Did you mean .*\?$/.test(e.message)
            ? new GraphQLError(e.message.replace(/ Did you mean .*\?$/, ''), {
                nodes: e.nodes,
                extensions: e.extensions,
              })
            : e,
        );
        if (invalid.length) {
          return invalid.map((e) =>
            e.extensions.code
              ? e
              : new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } }),
          );
        }
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) {
          return [
            requestError(
              'Name the operation to run (operationName): the query holds none of that name, or several.',
              'BAD_REQUEST',
            ),
          ];
        }
        if (operation.operation !== 'subscription') {
          return [
            requestError(
              `Only subscriptions are served over WebSocket; send ${operation.operation === 'mutation' ? 'mutations' : 'queries'} as HTTP POST to /graphql.`,
              'BAD_REQUEST',
            ),
          ];
        }
        const variables = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
        if (variables.errors) {
          return variables.errors.map(
            (e) => new GraphQLError(e.message, { nodes: e.nodes, extensions: { code: 'BAD_USER_INPUT' } }),
          );
        }
        const cost = getComplexity({
          schema,
          query: document,
          variables: payload.variables ?? {},
          operationName: payload.operationName ?? undefined,
          estimators: [costEstimator],
        });
        if (cost > cfg.maxCost) {
          return [
            requestError(
              `The subscription costs ${cost} per event, more than the limit of ${cfg.maxCost}: ask for fewer items (first) or fewer nested lists.`,
              'QUERY_TOO_COSTLY',
              { cost, maxCost: cfg.maxCost },
            ),
          ];
        }
        if (!(await listener.whenListening(LISTEN_WAIT_MS))) {
          socket.close(
            CLOSE_TRY_AGAIN_LATER,
            'Live events are unavailable (no database connection to listen on): try again later.',
          );
          return [requestError('Live events are unavailable right now: try again later.', 'DATABASE_UNAVAILABLE')];
        }
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: new LiveContext(session, connection.principal, socket),
        };
      },
      onNext: async (_ctx, _id, _payload, args, result) => {
        // The event is resolved: its transaction ends before it is sent, however slowly the client reads.
        if (args.contextValue instanceof LiveContext) await args.contextValue.nextEvent();
        if (result.errors?.length) return { ...result, errors: result.errors.map(format) };
        return undefined;
      },
      onError: (_ctx, _id, _payload, errors) => errors.map(format),
      onClose: (ctx) => {
        const connection = connections.get(ctx.extra.socket);
        if (connection?.expiry) clearTimeout(connection.expiry);
      },
    },
    wss,
  );

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname.replace(/\/+$/, '');
    if (path !== '/graphql') {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request));
  };
  server.on('upgrade', onUpgrade);

  let closing: Promise<void> | undefined;
  return {
    open: () => hub.size,
    listening: (timeoutMs = LISTEN_WAIT_MS) => listener.whenListening(timeoutMs),
    close(code = 1001) {
      closing ??= (async () => {
        server.off('upgrade', onUpgrade);
        const reason = code === 1001 ? 'The server is going away: reconnect.' : 'The server closed the connection.';
        hub.closeAll(code, reason);
        const sockets = [...wss.clients];
        const closed = Promise.all(
          sockets.map((s) => (s.readyState === s.CLOSED ? undefined : new Promise((r) => s.once('close', r)))),
        );
        for (const socket of sockets) socket.close(code, reason);
        await listener.stop();
        // A client that stopped reading never answers the close: it is cut off after a moment.
        const grace = new Promise((r) => setTimeout(r, 2000).unref());
        await Promise.race([closed, grace]);
        for (const socket of wss.clients) socket.terminate();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        hubs.delete(hub);
      })();
      return closing;
    },
  };
}
