import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { mintToken } from '../src/auth';
import { Dec } from '../src/decimal';
import { freePort } from '../src/db';
import { makeOrders, makeTrader } from './factories';
import { createTestDatabase } from './harness';
import { TEST_LOG_KEY_PEM } from './log-key';
import { PROCESS_SECRET, ROOT, startServerProcess, stopServerProcess } from './server-process';

/**
 * The process's life as an operator sees it: a graceful shutdown that answers what it started and
 * starts nothing more, a start that fails fast and clearly, migrations that several processes can
 * run at once, and `npm start` that leaves no orphan behind.
 */

const gatewayToken = () => mintToken(PROCESS_SECRET, { sub: 'lifecycle-gateway', role: 'service' });

interface Outcome {
  batch: number;
  kind: 'answered' | 'not started' | 'failed';
  detail: string;
  /** When the answer (or the failure) came. */
  at: number;
}

/** POST over a keep-alive agent; what became of it: a real answer, a refusal before it started, or a failure. */
function post(
  agent: http.Agent,
  origin: string,
  token: string,
  body: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${origin}/graphql`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('graceful shutdown', () => {
  it('SIGTERM during a burst of writes: each request is answered for real or never started; nothing acknowledged is lost, nothing refused was written', async () => {
    const db = await createTestDatabase();
    const ds = new DataSource(dataSourceOptions(db.url, 2, false));
    await ds.initialize();
    const batches = 40;
    const perBatch = 200;
    const trader = await makeTrader(ds.manager);
    const orders = await makeOrders(
      ds.manager,
      Array.from({ length: batches }, (_, i) => ({
        traderId: trader.id,
        symbol: `SHUT${i}`,
        quantity: new Dec(100_000),
      })),
    );
    const server = await startServerProcess(db.url, {
      TRADETRAIL_SHUTDOWN_TIMEOUT_MS: '60000',
      TRADETRAIL_DB_POOL_MAX: '4',
    });
    const token = await gatewayToken();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const mutation = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;
    const send = async (batch: number): Promise<Outcome> => {
      const inputs = Array.from({ length: perBatch }, (_, j) => ({
        orderId: orders[batch].id,
        execId: `shut-${batch}-${j}`,
        quantity: '1',
        price: '100',
        executedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, j)).toISOString(),
      }));
      try {
        const { status, text } = await post(
          agent,
          server.origin,
          token,
          JSON.stringify({ query: mutation, variables: { inputs } }),
        );
        const body = JSON.parse(text) as {
          data?: { recordExecutions: { applied: number } };
          errors?: { extensions: { code: string } }[];
        };
        if (status === 200 && body.data?.recordExecutions.applied === perBatch)
          return { batch, kind: 'answered', detail: '', at: Date.now() };
        if (status === 503 && body.errors?.[0].extensions.code === 'SHUTTING_DOWN')
          return { batch, kind: 'not started', detail: '503', at: Date.now() };
        return { batch, kind: 'failed', detail: `HTTP ${status} ${text.slice(0, 200)}`, at: Date.now() };
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
        // Refused, or reset while it waited on a connection the server had closed: it never reached a resolver.
        return {
          batch,
          kind: code === 'ECONNREFUSED' ? 'not started' : 'failed',
          detail: String(code),
          at: Date.now(),
        };
      }
    };
    try {
      // A keep-alive connection, open before the signal: a request on it afterwards is refused (503), not run.
      const first = await send(0);
      expect(first.kind).toBe('answered');
      const inFlight = Array.from({ length: batches / 2 - 1 }, (_, i) => send(i + 1));
      await new Promise((r) => setTimeout(r, 300));
      const signalled = Date.now();
      server.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 50));
      const late = Array.from({ length: batches / 2 }, (_, i) => send(batches / 2 + i));
      const outcomes = [first, ...(await Promise.all(inFlight)), ...(await Promise.all(late))];
      const lastAnswer = Date.now();
      const code = await server.exited;
      const exitedAfterLast = Date.now() - lastAnswer;

      // What the database holds, batch by batch.
      const rows = (await ds.query(
        `SELECT split_part(exec_id, '-', 2)::int AS batch, count(*)::int AS n FROM fills WHERE exec_id LIKE 'shut-%' GROUP BY 1`,
      )) as { batch: number; n: number }[];
      const written = new Map(rows.map((r) => [r.batch, r.n]));
      const problems: string[] = [];
      for (const o of outcomes) {
        const n = written.get(o.batch) ?? 0;
        if (o.kind === 'answered' && n !== perBatch)
          problems.push(`batch ${o.batch} was acknowledged but ${n} fills are stored`);
        if (o.kind !== 'answered' && n !== 0)
          problems.push(`batch ${o.batch} got ${o.kind} (${o.detail}) but ${n} fills were written`);
        if (o.kind === 'failed' && !/ECONNRESET|socket hang up/.test(o.detail))
          problems.push(`batch ${o.batch}: ${o.detail}`);
      }
      expect(problems).toEqual([]);
      // Requests running at the signal went on and were answered for real after it; none sent after it ran.
      const answeredAfter = outcomes.filter((o) => o.kind === 'answered' && o.at > signalled + 100);
      expect(answeredAfter.length).toBeGreaterThan(3);
      expect(outcomes.slice(batches / 2).every((o) => o.kind !== 'answered')).toBe(true);
      expect(code).toBe(0);
      expect(exitedAfterLast).toBeLessThan(8_000);
      expect(server.output()).toMatch(/shutting down: not ready, no new requests/);
      expect(server.output()).toMatch(/"msg":"stopped"/);
      console.log(
        `shutdown: ${outcomes.filter((o) => o.kind === 'answered').length} answered (${answeredAfter.length} after SIGTERM), ${outcomes.filter((o) => o.kind !== 'answered').length} never started; exit ${Date.now() - signalled} ms after SIGTERM`,
      );
    } finally {
      agent.destroy();
      server.child.kill('SIGKILL');
      await ds.destroy();
      await db.drop();
    }
  }, 180_000);
});

/**
 * A start that must fail before the database: DATABASE_URL names a port nothing listens on (9), so a
 * server that went on to the database would fail differently, and later.
 */
function startOnNoDatabase(env: Record<string, string>) {
  return spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/index.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: '0',
      DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none',
      TRADETRAIL_JWT_SECRET: PROCESS_SECRET,
      TRADETRAIL_LOG_SIGNING_KEY: TEST_LOG_KEY_PEM,
      ...env,
    },
  });
}

describe('safe start', () => {
  it('a port in use is a clear error and exit 1, before the database is touched', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const run = startOnNoDatabase({ PORT: String(port) });
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(new RegExp(`Port ${port} on 127.0.0.1 is already in use`));
      expect(run.stdout + run.stderr).not.toMatch(/ECONNREFUSED|Tradetrail GraphQL:/);
    } finally {
      blocker.close();
    }
  });

  it('with DATABASE_URL and no token key, refuses to start before touching the database', () => {
    const run = startOnNoDatabase({ TRADETRAIL_JWT_SECRET: '' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/Configuration error: No key to verify tokens with/);
    expect(run.stdout + run.stderr).not.toMatch(/ECONNREFUSED|could not start/);
  });

  it('three processes started at once on an empty database all come up, and migrate it once', async () => {
    const db = await createTestDatabase(false);
    const servers = await Promise.allSettled([1, 2, 3].map(() => startServerProcess(db.url)));
    try {
      const failed = servers.flatMap((s) => (s.status === 'rejected' ? [String(s.reason).slice(0, 2000)] : []));
      expect(failed).toEqual([]);
      const token = await gatewayToken();
      for (const s of servers) {
        if (s.status !== 'fulfilled') continue;
        const res = await fetch(`${s.value.origin}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: '{"query":"{ orders { totalCount } }"}',
        });
        expect(await res.json()).toEqual({ data: { orders: { totalCount: 0 } } });
      }
      const applied = servers.map((s) =>
        s.status === 'fulfilled' ? /(\d+) pending migration\(s\) applied/.exec(s.value.output())?.[1] : null,
      );
      // One process migrated; the others waited for its lock and found nothing left to do.
      expect(applied.filter((n) => n !== '0')).toHaveLength(1);
      const client = new Client({ connectionString: db.url });
      await client.connect();
      const { rows } = await client.query(
        `SELECT name, count(*)::int AS n FROM typeorm_migrations GROUP BY name HAVING count(*) > 1`,
      );
      await client.end();
      expect(rows).toEqual([]);
    } finally {
      await Promise.all(servers.map((s) => (s.status === 'fulfilled' ? stopServerProcess(s.value) : undefined)));
      await db.drop();
    }
  }, 240_000);

  it('with TRADETRAIL_MIGRATE_ON_START=false it migrates nothing; npm run migrate does, once', async () => {
    const db = await createTestDatabase(false);
    const server = await startServerProcess(db.url, { TRADETRAIL_MIGRATE_ON_START: 'false' });
    const migrate = () =>
      spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'scripts/migrate.ts'], {
        cwd: ROOT,
        encoding: 'utf8',
        timeout: 120_000,
        env: { ...process.env, NODE_ENV: 'development', DATABASE_URL: db.url, LOG_LEVEL: 'warn' },
      });
    try {
      expect(server.output()).toMatch(/migration\(s\) pending and TRADETRAIL_MIGRATE_ON_START=false/);
      const client = new Client({ connectionString: db.url });
      await client.connect();
      expect((await client.query(`SELECT to_regclass('orders') AS t`)).rows[0].t).toBeNull();
      const first = migrate();
      expect(first.stderr).toBe('');
      expect(first.status).toBe(0);
      expect(first.stdout).toMatch(/Applied \d+ migration\(s\): Initial1795235823695/);
      expect((await client.query(`SELECT to_regclass('orders') AS t`)).rows[0].t).toBe('orders');
      await client.end();
      const again = migrate();
      expect(again.status).toBe(0);
      expect(again.stdout).toMatch(/No pending migration: the database is current/);
    } finally {
      await stopServerProcess(server);
      await db.drop();
    }
  }, 240_000);
});

describe('npm start', () => {
  it('forwards SIGTERM: node and the embedded PostgreSQL stop with it, no orphan', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-npm-start-'));
    await chmod(dir, 0o755);
    const pgPort = await freePort();
    const { DATABASE_URL: _db, ...env } = process.env;
    const npm = spawn('npm', ['start'], {
      cwd: ROOT,
      env: {
        ...env,
        NODE_ENV: 'development',
        PORT: '0',
        LOG_LEVEL: 'info',
        TRADETRAIL_DATA_DIR: path.join(dir, 'pgdata'),
        TRADETRAIL_PG_PORT: String(pgPort),
        TRADETRAIL_DEMO_DATA: 'off',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    npm.stdout.on('data', (d) => (out += d));
    npm.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => npm.on('exit', resolve));
    try {
      let done = false;
      void exited.then(() => (done = true));
      for (let i = 0; i < 1800 && !done && !/Tradetrail GraphQL:/.test(out); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(out).toMatch(/Tradetrail GraphQL:/);
      const nodePid = Number(/"pid":(\d+)/.exec(out)![1]);
      npm.kill('SIGTERM');
      // npm reports the signal it was stopped by (143 = 128 + SIGTERM) once its child has exited.
      expect([0, 143]).toContain(await exited);
      // The server process is gone, and so is its PostgreSQL.
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 50 && alive(nodePid); i++) await new Promise((r) => setTimeout(r, 100));
      expect(alive(nodePid)).toBe(false);
      const listening = await new Promise((resolve) => {
        const s = net.connect(pgPort, '127.0.0.1');
        s.on('connect', () => (s.destroy(), resolve(true)));
        s.on('error', () => resolve(false));
      });
      expect(listening).toBe(false);
      expect(out).toMatch(/"msg":"stopped"/);
    } finally {
      npm.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
