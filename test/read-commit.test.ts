import type { Pool } from 'pg';
import { Client } from 'pg';
import { RequestDb } from '../src/request-db';
import { makeTrader } from './factories';
import { ADMIN, adminUrl, createTestDatabase, startTestApp, type TestApp, traderPrincipal } from './harness';

/**
 * A read-only request's COMMIT does not cost a round trip of its own (TRADETRAIL_READ_COMMIT_DELAY_MS):
 * the connection is parked, and the COMMIT goes ahead of the next transaction's start on it, or on its
 * own once the delay has passed. None of it may change what a request sees or who it is: the next
 * transaction is a new one, with its own snapshot and its own identity.
 */
describe('the COMMIT of a read', () => {
  let db: { name: string; url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  /** One connection (every request shares it), its reads parked for `delayMs`. */
  async function withApp(delayMs: number, fn: (app: TestApp) => Promise<void>): Promise<void> {
    const app = await startTestApp(db.url, { poolMax: 1, readCommitDelayMs: delayMs });
    try {
      await fn(app);
    } finally {
      await app.close();
    }
  }
  const poolOf = (app: TestApp) => (app.dataSource.driver as unknown as { master: Pool }).master;
  const checkedOut = (app: TestApp) => poolOf(app).totalCount - poolOf(app).idleCount;
  /** A statement in a request of its own, as `principal`. */
  async function readAs<T>(app: TestApp, principal = ADMIN, sql: string, params: unknown[] = []): Promise<T[]> {
    const request = new RequestDb(app.dataSource, principal, 10_000, 'read');
    try {
      return await request.read<T>(undefined, sql, params);
    } finally {
      await request.finish(true);
    }
  }
  /** The state of the application's connections, as the server sees them. */
  async function serverStates(): Promise<string[]> {
    const admin = new Client({ connectionString: adminUrl() });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ state: string }>(
        `SELECT state FROM pg_stat_activity WHERE datname = $1 AND application_name = 'tradetrail'`,
        [db.name],
      );
      return rows.map((r) => r.state);
    } finally {
      await admin.end();
    }
  }

  it("rides ahead of the next request's start, in its first exchange", async () => {
    await withApp(5_000, async (app) => {
      const query = `{ traders(first: 1) { totalCount } }`;
      await app.run(query);
      app.statements.reset();
      await app.run(query);
      const first = app.statements.byTrip(200);
      // [the last request's COMMIT, start, settings, the page, its count]: no round trip for a COMMIT.
      expect(first).toHaveLength(1);
      expect(first[0][0]).toBe('COMMIT');
      expect(first[0][1]).toMatch(/^START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY/);
      expect(checkedOut(app)).toBe(1); // parked, with its transaction open
      expect(await serverStates()).toEqual(['idle in transaction']);
    });
  });

  it('is sent on its own once the delay has passed: no connection stays in a transaction', async () => {
    await withApp(50, async (app) => {
      await app.run(`{ traders(first: 1) { totalCount } }`);
      expect(checkedOut(app)).toBe(1);
      app.statements.reset();
      await new Promise((r) => setTimeout(r, 300));
      expect(app.statements.log).toEqual(['COMMIT']);
      expect(checkedOut(app)).toBe(0);
      expect(await serverStates()).toEqual(['idle']);
    });
  });

  it('lets the next request see what committed meanwhile, as itself', async () => {
    await withApp(5_000, async (app) => {
      const trader = await makeTrader(app.dataSource.manager, { name: 'Before' });
      const other = await makeTrader(app.dataSource.manager, { name: 'Other' });
      const who = `SELECT current_setting('tradetrail.trader_id') AS trader, now()::text AS started,
                          (SELECT name FROM traders WHERE id = $1) AS name`;
      const [a] = await readAs<{ trader: string; started: string; name: string }>(
        app,
        traderPrincipal(trader.id),
        who,
        [trader.id],
      );
      expect(a).toMatchObject({ trader: trader.id, name: 'Before' });
      expect(checkedOut(app)).toBe(1);
      // Another connection commits a change while the read's transaction is still open.
      const admin = new Client({ connectionString: db.url });
      await admin.connect();
      await admin.query(`UPDATE traders SET name = 'After' WHERE id = $1`, [trader.id]);
      await admin.end();
      await new Promise((r) => setTimeout(r, 5));
      // The same connection, a new transaction: the new name, another trader's identity, a later start.
      const [b] = await readAs<{ trader: string; started: string; name: string | null }>(
        app,
        traderPrincipal(other.id),
        who,
        [trader.id],
      );
      expect(b.trader).toBe(other.id);
      expect(b.name).toBeNull(); // row-level security: the other trader does not see the first one
      expect(b.started).not.toBe(a.started);
      const [c] = await readAs<{ name: string }>(app, ADMIN, `SELECT name FROM traders WHERE id = $1`, [trader.id]);
      expect(c.name).toBe('After');
    });
  });

  it('goes ahead of a write, which commits', async () => {
    await withApp(5_000, async (app) => {
      const trader = await makeTrader(app.dataSource.manager, { name: 'Old' });
      await readAs(app, ADMIN, `SELECT 1`);
      app.statements.reset();
      await RequestDb.transaction(app.dataSource, ADMIN, 10_000, 'write', (m) =>
        m.query(`UPDATE traders SET name = 'New' WHERE id = $1`, [trader.id]),
      );
      expect(app.statements.log[0]).toMatch(/^COMMIT; START TRANSACTION;/);
      expect(app.statements.log.at(-1)).toBe('COMMIT');
      expect(checkedOut(app)).toBe(0); // a write commits at once
      const check = new Client({ connectionString: db.url });
      await check.connect();
      const { rows } = await check.query(`SELECT name FROM traders WHERE id = $1`, [trader.id]);
      await check.end();
      expect(rows).toEqual([{ name: 'New' }]);
    });
  });

  it('sends it at once for a request that ran nothing, and leaves a failed request rolled back', async () => {
    await withApp(5_000, async (app) => {
      await readAs(app, ADMIN, `SELECT 1`);
      app.statements.reset();
      const idle = new RequestDb(app.dataSource, ADMIN, 10_000, 'read');
      await idle.run(async () => undefined); // takes the connection, sends nothing
      await idle.finish(true);
      expect(app.statements.log).toEqual(['COMMIT']);
      expect(checkedOut(app)).toBe(0);

      await readAs(app, ADMIN, `SELECT 1`);
      const failing = new RequestDb(app.dataSource, ADMIN, 10_000, 'read');
      await expect(failing.read(undefined, `SELECT 1/0`, [])).rejects.toThrow(/division by zero/);
      await failing.finish(false);
      expect(checkedOut(app)).toBe(0);
      expect(await serverStates()).toEqual(['idle']);
      expect(await readAs(app, ADMIN, `SELECT 2 AS two`)).toEqual([{ two: 2 }]);
    });
  });

  it('replaces a parked connection the server has closed', async () => {
    await withApp(5_000, async (app) => {
      const [{ pid }] = await readAs<{ pid: number }>(app, ADMIN, `SELECT pg_backend_pid() AS pid`);
      const admin = new Client({ connectionString: adminUrl() });
      await admin.connect();
      await admin.query(`SELECT pg_terminate_backend($1)`, [pid]);
      await admin.end();
      await new Promise((r) => setTimeout(r, 200));
      const [next] = await readAs<{ pid: number }>(app, ADMIN, `SELECT pg_backend_pid() AS pid`);
      expect(next.pid).not.toBe(pid);
    });
  });

  it('is sent before the pool closes', async () => {
    const app = await startTestApp(db.url, { poolMax: 1, readCommitDelayMs: 60_000 });
    await app.run(`{ traders(first: 1) { totalCount } }`);
    expect(await serverStates()).toEqual(['idle in transaction']);
    app.statements.reset();
    const started = Date.now();
    await app.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(app.statements.log).toEqual(['COMMIT']);
    // The backend leaves pg_stat_activity a moment after its client has gone.
    for (let i = 0; i < 50 && (await serverStates()).length; i++) await new Promise((r) => setTimeout(r, 50));
    expect(await serverStates()).toEqual([]);
  });
});
