import type { Server } from 'node:http';
import { Client, type Pool } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { createVerifier, mintToken } from '../src/auth';
import { ComplianceScheduler } from '../src/compliance/scheduler';
import { parseConfig } from '../src/config';
import { LogIntegrator } from '../src/execution-log/log-integrator';
import { createApp } from '../src/server';
import { makeTrader } from './factories';
import {
  adminQuery,
  COMPLIANCE,
  createTestDatabase,
  SERVICE,
  StatementCounter,
  startTestApp,
  type TestApp,
  traderPrincipal,
} from './harness';
import { TEST_LOG_KEY } from './log-key';

/**
 * A database that accepts only reads, as a hot standby does: `default_transaction_read_only = on`
 * for the database, so every new connection starts read-only transactions (PostgreSQL answers a
 * write with SQLSTATE 25006, as a standby does). Writes answer READ_ONLY and change nothing, reads
 * keep working, and the background workers say so once and try again later.
 */

const MESSAGE =
  'The database is read-only (a hot standby, or read-only mode): nothing was written. Send writes to the primary.';
const SECRET = 'a-read-only-test-secret-of-at-least-32-characters';

const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id status } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status position { id quantity } } }`;
const RECORD_MANY = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;
const CANCEL = `mutation($id: ID!) { cancelOrder(orderId: $id, reason: "read-only test") { status } }`;
const MINE = `{ positions { totalCount edges { node { symbol quantity } } } orders { totalCount } fills { totalCount } }`;

let db: { name: string; url: string; drop: () => Promise<void> };
let app: TestApp;
let traderId: string;
let working: string;

/** What a write would change, read as the superuser. */
async function snapshot(): Promise<Record<string, string>> {
  const su = new Client({ connectionString: db.url });
  await su.connect();
  try {
    const { rows } = await su.query(`SELECT
      (SELECT count(*) FROM traders)::text AS traders, (SELECT count(*) FROM orders)::text AS orders,
      (SELECT count(*) FROM fills)::text AS fills, (SELECT count(*) FROM positions)::text AS positions,
      (SELECT count(*) FROM execution_logs)::text AS logs, (SELECT count(*) FROM log_leaves)::text AS leaves,
      (SELECT tree_size::text FROM log_tree_state) AS tree,
      (SELECT string_agg(concat_ws('/', id, status, filled_quantity, updated_at), ',' ORDER BY id) FROM orders) AS orders_now,
      (SELECT string_agg(concat_ws('/', id, quantity, version), ',' ORDER BY id) FROM positions) AS positions_now`);
    return rows[0] as Record<string, string>;
  } finally {
    await su.end();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  // Written while the database accepts writes: a trader with an open position and a working order.
  const writer = await startTestApp(db.url, { principal: SERVICE });
  try {
    traderId = (await makeTrader(writer.dataSource.manager, { name: 'Standby Sam' })).id;
    const order = (
      await writer.run<{ submitOrder: { id: string } }>(SUBMIT, {
        input: { traderId, clientOrderId: 'ro-1', symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity: '10' },
      })
    ).data!.submitOrder.id;
    await writer.run(`mutation($id: ID!) { acceptOrder(orderId: $id) { status } }`, { id: order });
    const recorded = await writer.run(RECORD, {
      input: { orderId: order, execId: 'RO-1', quantity: '4', price: '101.5', executedAt: '2026-11-20T14:00:00Z' },
    });
    expect(recorded.errors).toBeUndefined();
    working = order;
  } finally {
    await writer.close();
  }
  await adminQuery(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
  // A new pool: its connections start read-only, as every connection to a standby does.
  app = await startTestApp(db.url, { principal: SERVICE, poolMax: 2 });
});

afterAll(async () => {
  await app?.close();
  await db?.drop();
});

describe('a read-only database (a hot standby)', () => {
  it('answers every kind of write READ_ONLY with a message a person understands, writes nothing, and keeps reading', async () => {
    const before = await snapshot();
    const writes: [string, Record<string, unknown>, Parameters<TestApp['run']>[2]][] = [
      [
        SUBMIT,
        {
          input: { traderId, clientOrderId: 'ro-2', symbol: 'MSFT', side: 'SELL', orderType: 'MARKET', quantity: '1' },
        },
        SERVICE,
      ],
      // One execution: the named-statement path of the write.
      [
        RECORD,
        {
          input: { orderId: working, execId: 'RO-2', quantity: '1', price: '102', executedAt: '2026-11-20T15:00:00Z' },
        },
        SERVICE,
      ],
      [
        RECORD_MANY,
        {
          inputs: [1, 2].map((i) => ({
            orderId: working,
            execId: `RO-B${i}`,
            quantity: '1',
            price: '102',
            executedAt: '2026-11-20T15:00:00Z',
          })),
        },
        SERVICE,
      ],
      [CANCEL, { id: working }, traderPrincipal(traderId)],
    ];
    for (const [query, variables, principal] of writes) {
      const res = await app.run(query, variables, principal);
      expect(res.data ?? null).toBeNull();
      expect(res.errors).toHaveLength(1);
      expect(res.errors![0].extensions?.code).toBe('READ_ONLY');
      expect(res.errors![0].message).toBe(MESSAGE);
    }
    expect(await snapshot()).toEqual(before);

    // Reads work, as a trader (row-level security applies) and as compliance.
    const mine = await app.run(MINE, {}, traderPrincipal(traderId));
    expect(mine.errors).toBeUndefined();
    expect(mine.data).toEqual({
      positions: { totalCount: 1, edges: [{ node: { symbol: 'AAPL', quantity: '4' } }] },
      orders: { totalCount: 1 },
      fills: { totalCount: 1 },
    });
    const all = await app.run(`{ traders { totalCount } executionLogs(first: 1) { totalCount } }`, {}, COMPLIANCE);
    expect(all.errors).toBeUndefined();
    expect(all.data).toEqual({ traders: { totalCount: 1 }, executionLogs: { totalCount: 4 } });
  });

  it('answers a write over HTTP with status 503 and READ_ONLY, and a query with 200', async () => {
    const cfg = parseConfig({ NODE_ENV: 'test' });
    const http = await createApp(app.dataSource, cfg, createVerifier(cfg, SECRET), {
      key: TEST_LOG_KEY,
      known: () => undefined,
    });
    const server: Server = await new Promise((resolve) => {
      const s = http.app.listen(0, '127.0.0.1', () => resolve(s));
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/graphql`;
      const token = await mintToken(SECRET, { sub: 'ro-gateway', role: 'service' });
      const post = (query: string, variables: Record<string, unknown> = {}) =>
        fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query, variables }),
        });
      const write = await post(SUBMIT, {
        input: { traderId, clientOrderId: 'ro-3', symbol: 'MSFT', side: 'BUY', orderType: 'MARKET', quantity: '1' },
      });
      expect(write.status).toBe(503);
      const body = (await write.json()) as { errors: { message: string; extensions: { code: string } }[] };
      expect(body.errors.map((e) => [e.extensions.code, e.message])).toEqual([['READ_ONLY', MESSAGE]]);
      const read = await post(`{ traders { totalCount } }`);
      expect(read.status).toBe(200);
      expect(await read.json()).toEqual({ data: { traders: { totalCount: 1 } } });
    } finally {
      await new Promise((resolve) => server.close(resolve));
      await http.apollo.stop();
    }
  });

  it('scheduled reconciliation skips with one warning; the scheduled report still runs (it only reads)', async () => {
    const lines: { level: string; message: string }[] = [];
    const log = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
    const scheduler = new ComplianceScheduler(app.dataSource, TEST_LOG_KEY, {
      dataQualityMinutes: 0,
      alertThreshold: 1000,
      reconcileMinutes: 0,
      reconcileMaxFixes: 10,
      statementTimeoutMs: 10_000,
      log: { info: log('info'), warn: log('warn'), error: log('error') },
    });
    expect(await scheduler.runReconcile()).toBe(false);
    expect(await scheduler.runReconcile()).toBe(false);
    expect(scheduler.counters.reconcileSkipped).toBe(2);
    expect(scheduler.counters.failures).toBe(0);
    expect(await scheduler.runReport()).toBe(true);
    expect(lines).toEqual([
      { level: 'warn', message: expect.stringMatching(/reconciliation skipped: the database is read-only/) },
      { level: 'info', message: 'data-quality report' },
    ]);
  });

  it('the log integrator says so once, tries again every readOnlyRetryMs (not every interval), and resumes when writes are accepted', async () => {
    // Idle connections close at once, so that a try after the database accepts writes again gets a
    // connection that started then (a setting of the database applies to new connections).
    const ds = new DataSource({
      ...dataSourceOptions(db.url, 1, false),
      extra: { connectionTimeoutMillis: 5000, idleTimeoutMillis: 20 },
    });
    await ds.initialize();
    const statements = new StatementCounter();
    statements.attach((ds.driver as unknown as { master: Pool }).master);
    const lines: { level: string; message: string }[] = [];
    const log = (level: string) => (_fields: object, message: string) => void lines.push({ level, message });
    const integrator = new LogIntegrator(ds, TEST_LOG_KEY, {
      intervalMs: 20,
      readOnlyRetryMs: 400,
      log: { info: log('info'), warn: log('warn'), error: log('error') },
    });
    try {
      integrator.start();
      await new Promise((r) => setTimeout(r, 1300));
      const tries = statements.log.filter((s) => s.startsWith('START TRANSACTION')).length;
      // At 20 ms it would be about 60; at 400 ms after the first: 4.
      expect(tries).toBeGreaterThanOrEqual(2);
      expect(tries).toBeLessThanOrEqual(5);
      expect(lines).toEqual([{ level: 'warn', message: expect.stringMatching(/^the database is read-only/) }]);
      // It asks before it writes: no statement fails (none would fill PostgreSQL's log while it waits).
      expect(statements.log.filter((s) => /FOR UPDATE|INSERT|UPDATE log_tree_state/.test(s))).toEqual([]);
      expect((await snapshot()).tree).toBe('0');

      await adminQuery(`ALTER DATABASE "${db.name}" RESET default_transaction_read_only`);
      for (let i = 0; i < 50 && lines.length < 3; i++) await new Promise((r) => setTimeout(r, 100));
      expect(lines.slice(1)).toEqual([
        { level: 'info', message: 'log checkpoint signed' },
        { level: 'info', message: 'the database accepts writes again: log integration resumed' },
      ]);
      const after = await snapshot();
      expect(after.tree).toBe(after.logs);
    } finally {
      await integrator.stop();
      await ds.destroy();
      await adminQuery(`ALTER DATABASE "${db.name}" SET default_transaction_read_only = on`);
    }
  });
});
