/**
 * PostGraphile 5 on Tradetrail's database, for `npm run bench:reads` only (run by bench/'s Node 24):
 * the V4 preset (names close to V4's: `allOrders`, `positionById`, `fillsByOrderIdList`), schema
 * `public` introspected at start, no GraphiQL, no explain, no watch, no mutations, a pool of
 * PG_POOL_MAX connections. Tokens are checked as Tradetrail checks them (`src/auth.ts`: HS256 with
 * TRADETRAIL_JWT_SECRET, `sub`, `role` and `exp` required, a trader's `sub` a UUID, a verified token
 * remembered for at most a minute), and each request runs with the settings Tradetrail's request
 * transaction sets (`src/request-db.ts` beginSql) through `pgSettings`, which PostGraphile applies with
 * `set_config(…, true)` inside a transaction of its own: the role `tradetrail_app` (row-level security
 * applies), `tradetrail.role`, `tradetrail.trader_id` and the statement timeout.
 *
 * Environment: DATABASE_URL, TRADETRAIL_JWT_SECRET, PORT, HOST (default 127.0.0.1), PG_POOL_MAX (default
 * 10), TRADETRAIL_STATEMENT_TIMEOUT_MS (default 10000). Prints `PostGraphile GraphQL: <url>` once it serves.
 */
import { createServer } from 'node:http';
import process from 'node:process';
import { TextEncoder } from 'node:util';
import { jwtVerify } from 'jose';
import { postgraphile } from 'postgraphile';
import { makePgService } from 'postgraphile/adaptors/pg';
import { grafserv } from 'postgraphile/grafserv/node';
import { makeV4Preset } from 'postgraphile/presets/v4';

const env = (name, fallback) => {
  const value = process.env[name] ?? fallback;
  if (value === undefined) throw new Error(`${name} is required`);
  return value;
};

const ROLES = ['trader', 'service', 'compliance', 'admin'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const key = new TextEncoder().encode(env('TRADETRAIL_JWT_SECRET'));
const statementTimeout = String(Math.trunc(Number(env('TRADETRAIL_STATEMENT_TIMEOUT_MS', '10000'))));

/** Verified tokens, as Tradetrail keeps them: until they expire, at most a minute, at most 10,000. */
const verified = new Map();

/** The request's identity from `Authorization: Bearer <JWT>`, checked as `createVerifier` checks it. */
async function identity(authorization) {
  const cached = authorization ? verified.get(authorization) : undefined;
  if (cached && cached.until > Date.now()) return cached.identity;
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!match) throw new Error('Authentication required: send Authorization: Bearer <token>.');
  const { payload } = await jwtVerify(match[1], key, { algorithms: ['HS256'], requiredClaims: ['exp', 'sub'] });
  if (typeof payload.role !== 'string' || !ROLES.includes(payload.role)) {
    throw new Error(`The token's role claim must be one of ${ROLES.join(', ')}.`);
  }
  if (payload.role === 'trader' && !UUID.test(payload.sub)) {
    throw new Error("A trader token's sub must be the trader's id (a UUID).");
  }
  const result = { role: payload.role, traderId: payload.role === 'trader' ? payload.sub.toLowerCase() : '' };
  if (verified.size >= 10_000) verified.clear();
  verified.set(authorization, { identity: result, until: Math.min(payload.exp * 1000, Date.now() + 60_000) });
  return result;
}

const preset = {
  extends: [makeV4Preset({ simpleCollections: 'both', disableDefaultMutations: true, graphiql: false })],
  pgServices: [
    makePgService({
      connectionString: env('DATABASE_URL'),
      schemas: ['public'],
      poolConfig: { max: Number(env('PG_POOL_MAX', '10')) },
      pubsub: false,
    }),
  ],
  grafast: {
    explain: false,
    async context(requestContext) {
      const { role, traderId } = await identity(requestContext.node?.req.headers.authorization);
      return {
        pgSettings: {
          role: 'tradetrail_app',
          'tradetrail.role': role,
          'tradetrail.trader_id': traderId,
          statement_timeout: statementTimeout,
        },
      };
    },
  },
  grafserv: { graphqlPath: '/graphql', graphiql: false, watch: false, websockets: false },
};

const pgl = postgraphile(preset);
const server = createServer();
await pgl.createServ(grafserv).addTo(server);
// Introspect and build the schema before the first request, as a deployed server would.
await pgl.getSchema();
const host = env('HOST', '127.0.0.1');
server.listen(Number(env('PORT')), host, () => {
  process.stdout.write(`PostGraphile GraphQL: http://${host}:${server.address().port}/graphql\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  Promise.resolve(pgl.release()).finally(() => process.exit(0));
});
