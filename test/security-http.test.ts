import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { createVerifier, mintToken } from '../src/auth';
import { type Config, parseConfig } from '../src/config';
import { makeFormatError } from '../src/errors';
import { RequestDb } from '../src/request-db';
import { createApp } from '../src/server';
import { createTestDatabase, StatementCounter } from './harness';
import { TEST_LOG_KEY } from './log-key';

const TEST_LOG = { key: TEST_LOG_KEY, known: () => undefined };

const SECRET = 'a-security-test-secret-of-at-least-32-chars';
let ds: DataSource;
let drop: () => Promise<void>;
const statements = new StatementCounter();
const servers: { close(): Promise<void> }[] = [];

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  ds = new DataSource(dataSourceOptions(db.url, 4, false));
  await ds.initialize();
  statements.attach((ds.driver as unknown as { master: Pool }).master);
});
afterAll(async () => {
  for (const s of servers) await s.close();
  await ds?.destroy();
  await drop?.();
});

/** A real HTTP server (production settings unless overridden) and a way to POST to it. */
async function serve(
  env: Record<string, string> = {},
): Promise<
  (body: unknown, token?: string | null, headers?: Record<string, string>) => Promise<{ status: number; body: any }>
> {
  const cfg: Config = parseConfig({ NODE_ENV: 'production', TRADETRAIL_JWT_SECRET: SECRET, ...env });
  const { app, apollo } = await createApp(ds, cfg, createVerifier(cfg, cfg.jwtSecret), TEST_LOG);
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push({ close: async () => (await new Promise((r) => server.close(r)), await apollo.stop()) });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`;
  const admin = await mintToken(SECRET, { sub: 'sec-admin', role: 'admin' });
  return async (body, token = admin, headers = {}) => {
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...headers,
      },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: await res.json() };
  };
}

describe('authentication', () => {
  it('answers 401 UNAUTHENTICATED, with no data, for missing, malformed, expired, forged or role-less tokens', async () => {
    const post = await serve();
    const q = { query: '{ traders { totalCount } }' };
    const expired = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
    const forged = await mintToken('another-secret-that-is-at-least-32-characters', { sub: 'x', role: 'admin' });
    const noRole = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .setExpirationTime('1h')
      .sign(new TextEncoder().encode(SECRET));
    const noExp = await new SignJWT({ role: 'admin' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('x')
      .sign(new TextEncoder().encode(SECRET));
    const badTrader = await mintToken(SECRET, { sub: 'alice', role: 'trader' });
    const cases: [string | null, Record<string, string>, RegExp][] = [
      [null, {}, /Authentication required: send Authorization: Bearer <token>/],
      [null, { authorization: 'Basic dXNlcjpwYXNz' }, /must be "Bearer <token>"/],
      ['not.a.jwt', {}, /malformed/],
      [expired, {}, /expired/],
      [forged, {}, /signature does not verify/],
      [noRole, {}, /role claim must be one of trader, service, compliance, admin/],
      [noExp, {}, /exp/],
      [badTrader, {}, /trader's id/],
    ];
    for (const [token, headers, message] of cases) {
      const res = await post(q, token, headers);
      expect(res.status).toBe(401);
      expect(res.body.data).toBeUndefined();
      expect(res.body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(res.body.errors[0].message).toMatch(message);
    }
    expect((await post(q)).body).toEqual({ data: { traders: { totalCount: 0 } } });
  });

  it('verifies RS256 tokens with a configured public key, and refuses HS256 ones there', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const post = await serve({
      TRADETRAIL_JWT_SECRET: '',
      TRADETRAIL_JWT_PUBLIC_KEY: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    });
    const rs = await new SignJWT({ role: 'compliance' })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('auditor')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await post({ query: '{ traders { totalCount } }' }, rs)).status).toBe(200);
    const hs = await mintToken(SECRET, { sub: 'x', role: 'admin' });
    const refused = await post({ query: '{ traders { totalCount } }' }, hs);
    expect(refused.status).toBe(401);
  });

  it('verifies ES256 tokens against a JWKS file', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'tt-jwks-')), 'jwks.json');
    writeFileSync(
      file,
      JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] }),
    );
    const post = await serve({ TRADETRAIL_JWT_SECRET: '', TRADETRAIL_JWT_JWKS_FILE: file });
    const es = await new SignJWT({ role: 'service' })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setSubject('gateway')
      .setExpirationTime('5m')
      .sign(privateKey);
    expect((await post({ query: '{ traders { totalCount } }' }, es)).status).toBe(200);
  });

  it('refuses a role its writes with FORBIDDEN', async () => {
    const post = await serve();
    const compliance = await mintToken(SECRET, { sub: 'auditor', role: 'compliance' });
    const res = await post(
      { query: 'mutation { recalculatePosition(positionId: "3f1b2c4d-0000-4000-8000-000000000000") { changed } }' },
      compliance,
    );
    expect(res.body.errors[0]).toMatchObject({
      extensions: { code: 'FORBIDDEN' },
      message: 'A compliance may not recalculate positions; that needs the role admin.',
    });
  });
});

describe('query limits: 400 with a clear message, before any SQL', () => {
  const nested = (depth: number): string =>
    depth === 0 ? 'id' : `position { orders { edges { node { ${nested(depth - 1)} } } } }`;
  const cases: [string, unknown, RegExp][] = [
    ['depth', { query: `{ fill(id: "3f1b2c4d-0000-4000-8000-000000000000") { ${nested(4)} } }` }, /depth limit of 12/i],
    [
      'aliases',
      { query: `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: traders { totalCount }`).join(' ')} }` },
      /aliases limit of 15/i,
    ],
    [
      'tokens',
      { query: `{ traders(filter: { nameContains: "x" }) { totalCount ${'__typename '.repeat(5000)} } }` },
      /more that 5000 tokens/i,
    ],
    [
      'cost',
      {
        query:
          '{ positions(first: 500) { edges { node { orders(first: 500) { edges { node { fills { id } } } } } } } }',
      },
      /costs \d+, more than the limit of 200000/,
    ],
  ];
  it.each(cases)('refuses too much %s', async (_what, body, message) => {
    const post = await serve();
    statements.reset();
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.body.errors[0].message).toMatch(message);
    expect(statements.count).toBe(0);
  });

  it("remembers costs per query and variables, never letting one request lower another's", async () => {
    const post = await serve();
    const costly =
      'query($n: Int!, $m: Int!) { positions(first: $n) { edges { node { orders(first: $m) { edges { node { fills { id } } } } } } } }';
    expect((await post({ query: costly, variables: { n: 2, m: 2 } })).status).toBe(200);
    // The same text with other variables is counted again: refused.
    const big = await post({ query: costly, variables: { n: 500, m: 500 } });
    expect(big.status).toBe(400);
    expect(big.body.errors[0].extensions.code).toBe('QUERY_TOO_COSTLY');
    // A cost that no variable changes: a request with variables that do not fit is refused as bad
    // input, and the next one with fitting variables is still counted (and refused).
    const fixed =
      'query($s: String!) { positions(first: 500, filter: { symbol: $s }) { edges { node { orders(first: 500) { edges { node { fills { id } } } } } } } }';
    const badVariables = await post({ query: fixed, variables: { s: 5 } });
    expect(badVariables.status).toBe(400);
    expect(badVariables.body.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    for (let i = 0; i < 2; i++) {
      const again = await post({ query: fixed, variables: { s: 'AAPL' } });
      expect(again.status).toBe(400);
      expect(again.body.errors[0].extensions.code).toBe('QUERY_TOO_COSTLY');
    }
  });

  it('refuses batched operations', async () => {
    const post = await serve();
    const res = await post([{ query: '{ traders { totalCount } }' }, { query: '{ traders { totalCount } }' }]);
    expect(res.status).toBe(400);
  });

  it('the audit-trail query of the statement-count test stays within the default cost', async () => {
    const post = await serve();
    const res = await post({
      query:
        '{ positions(first: 100) { edges { node { trader { id } orders(first: 50) { edges { node { fills { id } executionLogs { id } } } } } } } }',
    });
    expect(res.status).toBe(200);
  });
});

describe('production hygiene', () => {
  it('has no introspection and no "Did you mean" hints', async () => {
    const post = await serve();
    const intro = await post({ query: '{ __schema { types { name } } }' });
    expect(intro.status).toBe(400);
    expect(JSON.stringify(intro.body)).toMatch(/introspection/i);
    const typo = await post({ query: '{ tradres { totalCount } }' });
    expect(typo.status).toBe(400);
    expect(JSON.stringify(typo.body)).not.toMatch(/Did you mean/);
  });

  it('has introspection when TRADETRAIL_INTROSPECTION=true', async () => {
    const post = await serve({ TRADETRAIL_INTROSPECTION: 'true' });
    expect((await post({ query: '{ __schema { queryType { name } } }' })).body).toEqual({
      data: { __schema: { queryType: { name: 'Query' } } },
    });
  });
});

describe('statement timeout', () => {
  it('stops a runaway statement with a clear error and leaves the connection clean', async () => {
    const pool = (ds.driver as unknown as { master: Pool }).master;
    const db = new RequestDb(ds, { sub: 'x', role: 'admin', traderId: null }, 200);
    const error = await db.query('SELECT pg_sleep(2)').then(
      () => null,
      (e: unknown) => e,
    );
    expect((error as { code?: string }).code).toBe('57014');
    const formatted = makeFormatError({ logInternal: () => undefined })({ message: 'x' }, error);
    expect(formatted).toMatchObject({
      extensions: { code: 'STATEMENT_TIMEOUT' },
      message: expect.stringMatching(/statement timeout/),
    });
    await db.finish(false);
    expect(pool.totalCount - pool.idleCount).toBe(0);
    const { rows } = await pool.query(`SHOW statement_timeout`);
    expect(rows[0].statement_timeout).toBe('0');
    const next = new RequestDb(ds, { sub: 'x', role: 'admin', traderId: null }, 200);
    expect(await next.query('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await next.finish(true);
  });
});
