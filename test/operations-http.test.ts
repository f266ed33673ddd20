import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { createVerifier, mintToken } from '../src/auth';
import { ComplianceScheduler } from '../src/compliance/scheduler';
import { parseConfig } from '../src/config';
import { LogIntegrator } from '../src/execution-log/log-integrator';
import { listenMetrics } from '../src/http/metrics';
import { createLogger } from '../src/logger';
import { OrderStatus } from '../src/order/order.entity';
import { type AppOptions, createApp } from '../src/server';
import { makeOrder, makeTrader } from './factories';
import { adminQuery, createTestDatabase, type ListeningApp, listenApp } from './harness';
import { TEST_LOG_KEY } from './log-key';

const SECRET = 'an-operations-test-secret-of-32-characters-or-more';
const TEST_LOG = { key: TEST_LOG_KEY, known: () => undefined };
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Every line a logger wrote, as parsed JSON and as raw text. */
class CapturedLog {
  readonly raw: string[] = [];
  readonly logger = createLogger('debug', { write: (line: string) => void this.raw.push(line) });
  /** The request lines written since line `from`. */
  requests(from = 0): Record<string, any>[] {
    return this.raw
      .slice(from)
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'request completed' || l.msg === 'request aborted');
  }
}

/** The app on a free port, with `env` as its configuration. */
function serve(ds: DataSource, env: Record<string, string> = {}, options: AppOptions = {}): Promise<ListeningApp> {
  const cfg = parseConfig({ NODE_ENV: 'test', TRADETRAIL_QUERY_PAGE: 'false', ...env });
  return listenApp(ds, cfg, createVerifier(cfg, SECRET), TEST_LOG, options);
}

/** Prometheus text: the value of the one sample named `name` whose labels include `labels`. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** Waits until `check` passes (the response's 'close' event, where a request is counted, may come a tick late). */
async function eventually<T>(check: () => Promise<T>, ms = 3000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() > until) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

let ds: DataSource;
let drop: () => Promise<void>;
let main: ListeningApp;
let log: CapturedLog;
const lifecycle = { shuttingDown: false };
let admin: string;
let service: string;
let trader: string;

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  ds = new DataSource(dataSourceOptions(db.url, 2, false));
  await ds.initialize();
  log = new CapturedLog();
  main = await serve(ds, {}, { lifecycle, requestLogger: log.logger });
  admin = await mintToken(SECRET, { sub: 'ops-admin', role: 'admin' });
  service = await mintToken(SECRET, { sub: 'ops-gateway', role: 'service' });
  trader = await mintToken(SECRET, { sub: randomUUID(), role: 'trader' });
});
afterAll(async () => {
  await main?.close();
  await ds?.destroy();
  await drop?.();
});

const gql = (base: string, token: string | undefined, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${base}/graphql`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: JSON.stringify(body),
  });

const scrape = async (base = main.base): Promise<string> => {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};

describe('/metrics', () => {
  it('times GraphQL requests by operation name and type, with bounded labels', async () => {
    const before = await scrape();
    const count = (text: string, operation: string, type: string) =>
      sample(text, 'tradetrail_graphql_request_duration_seconds_count', { operation, type }) ?? 0;
    expect((await gql(main.base, admin, { query: 'query TraderCount { traders { totalCount } }' })).status).toBe(200);
    expect((await gql(main.base, admin, { query: '{ traders { totalCount } }' })).status).toBe(200);
    // A long name is (other): a client cannot grow the label set with names of its own making.
    const long = `Q${'x'.repeat(80)}`;
    expect((await gql(main.base, admin, { query: `query ${long} { traders { totalCount } }` })).status).toBe(200);
    await eventually(async () => {
      const text = await scrape();
      expect(count(text, 'TraderCount', 'query')).toBe(count(before, 'TraderCount', 'query') + 1);
      expect(count(text, '(anonymous)', 'query')).toBe(count(before, '(anonymous)', 'query') + 1);
      expect(count(text, '(other)', 'query')).toBe(count(before, '(other)', 'query') + 1);
      expect(text).not.toContain(long);
      expect(
        sample(text, 'tradetrail_graphql_request_duration_seconds_bucket', {
          operation: 'TraderCount',
          type: 'query',
          le: '+Inf',
        }),
      ).toBe(count(text, 'TraderCount', 'query'));
      expect(
        sample(text, 'tradetrail_graphql_request_duration_seconds_sum', { operation: 'TraderCount' }),
      ).toBeGreaterThan(0);
    });
    // Prometheus's own process metrics are there too.
    const text = await scrape();
    expect(sample(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(sample(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('caps the number of distinct operation names', async () => {
    const cfg = parseConfig({ NODE_ENV: 'test' });
    const app = await createApp(ds, cfg, createVerifier(cfg, SECRET), TEST_LOG);
    try {
      for (let i = 0; i < 150; i++) app.metrics!.observeGraphql({ type: 'query', name: `Op${i}` }, 0.001);
      const text = await app.metrics!.text();
      const names = new Set(
        [...text.matchAll(/^tradetrail_graphql_request_duration_seconds_count\{operation="([^"]*)"/gm)].map(
          (m) => m[1],
        ),
      );
      expect(names.size).toBe(101); // 100 names and (other)
      expect(sample(text, 'tradetrail_graphql_request_duration_seconds_count', { operation: '(other)' })).toBe(50);
    } finally {
      await app.apollo.stop();
    }
  });

  it('counts errors by extensions.code: refused, unauthenticated and malformed requests', async () => {
    const errors = (text: string, code: string) => sample(text, 'tradetrail_graphql_errors_total', { code }) ?? 0;
    const before = await scrape();
    const forbidden = await gql(main.base, trader, {
      query: `mutation { recordExecution(input: { orderId: "${randomUUID()}", execId: "x", quantity: "1", price: "1", executedAt: "2026-01-01T00:00:00Z" }) { status } }`,
    });
    expect(((await forbidden.json()) as any).errors[0].extensions.code).toBe('FORBIDDEN');
    expect((await gql(main.base, 'not-a-token', { query: '{ traders { totalCount } }' })).status).toBe(401);
    expect((await fetch(`${main.base}/graphql?query=${encodeURIComponent('{ traders { totalCount } }')}`)).status).toBe(
      400, // CSRF prevention: refused before Apollo's pipeline
    );
    expect((await gql(main.base, admin, { query: '{ traders { nope } }' })).status).toBe(400);
    await eventually(async () => {
      const text = await scrape();
      expect(errors(text, 'FORBIDDEN')).toBe(errors(before, 'FORBIDDEN') + 1);
      expect(errors(text, 'UNAUTHENTICATED')).toBe(errors(before, 'UNAUTHENTICATED') + 1);
      expect(errors(text, 'BAD_REQUEST')).toBe(errors(before, 'BAD_REQUEST') + 1);
      expect(errors(text, 'GRAPHQL_VALIDATION_FAILED')).toBe(errors(before, 'GRAPHQL_VALIDATION_FAILED') + 1);
      // The refused ones are timed too, as what they were resolved to (or not).
      expect(
        sample(text, 'tradetrail_graphql_request_duration_seconds_count', {
          operation: '(anonymous)',
          type: 'mutation',
        }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        sample(text, 'tradetrail_graphql_request_duration_seconds_count', { operation: '(unknown)', type: 'unknown' }),
      ).toBeGreaterThanOrEqual(3);
    });
  });

  it('reports the database pool: in use, idle, waiting and its size', async () => {
    const pool = async () => {
      const text = await scrape();
      return {
        inUse: sample(text, 'tradetrail_db_pool_connections', { state: 'in_use' }),
        idle: sample(text, 'tradetrail_db_pool_connections', { state: 'idle' }),
        waiting: sample(text, 'tradetrail_db_pool_waiting'),
        max: sample(text, 'tradetrail_db_pool_max'),
      };
    };
    await ds.query('SELECT 1');
    expect(await pool()).toEqual({ inUse: 0, idle: expect.any(Number), waiting: 0, max: 2 });
    const held = [ds.createQueryRunner(), ds.createQueryRunner()];
    await held[0].connect();
    expect((await pool()).inUse).toBe(1);
    await held[1].connect();
    // Both connections are lent: the next query waits for one.
    const waiting = ds.query('SELECT 1');
    expect(await pool()).toEqual({ inUse: 2, idle: 0, waiting: 1, max: 2 });
    for (const runner of held) await runner.release();
    await waiting;
    await eventually(async () => expect((await pool()).inUse).toBe(0));
  });

  it('counts executions applied, duplicate, refused and applied as exceptions, and the checkpoint lag', async () => {
    const executions = (text: string, status: string) =>
      sample(text, 'tradetrail_executions_total', { status }) ?? Number.NaN;
    const exceptions = (text: string, reason: string) =>
      sample(text, 'tradetrail_execution_exceptions_total', { reason }) ?? Number.NaN;
    const before = await scrape();
    const owner = await makeTrader(ds.manager);
    const order = await makeOrder(ds.manager, { traderId: owner.id }); // 10 to fill
    const rejected = await makeOrder(ds.manager, {
      traderId: owner.id,
      status: OrderStatus.REJECTED,
      baseStatus: OrderStatus.REJECTED,
    });
    const record = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status fill { exception } } }`;
    const input = (orderId: string, execId: string, quantity = '4') => ({
      orderId,
      execId,
      venue: 'XNAS',
      quantity,
      price: '100',
      executedAt: '2026-03-02T15:00:00Z',
    });
    const run = async (query: string, variables: unknown): Promise<any> =>
      (await gql(main.base, service, { query, variables })).json();
    expect((await run(record, { input: input(order.id, 'E1') })).data.recordExecution.status).toBe('APPLIED');
    expect((await run(record, { input: input(order.id, 'E1') })).data.recordExecution.status).toBe('DUPLICATE');
    expect((await run(record, { input: input(order.id, 'E1', '5') })).errors[0].extensions.code).toBe('CONFLICT');
    expect((await run(record, { input: input(rejected.id, 'E2') })).data.recordExecution).toEqual({
      status: 'APPLIED',
      fill: { exception: 'ORDER_REJECTED' },
    });
    const batch = await run(
      `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied duplicates refused } }`,
      { inputs: [input(order.id, 'E3', '7'), input(order.id, 'E1'), input(order.id, 'E4', '-1')] },
    );
    expect(batch.data.recordExecutions).toEqual({ applied: 1, duplicates: 1, refused: 1 });

    const text = await scrape();
    expect(executions(text, 'applied') - executions(before, 'applied')).toBe(3);
    expect(executions(text, 'duplicate') - executions(before, 'duplicate')).toBe(2);
    expect(executions(text, 'refused') - executions(before, 'refused')).toBe(2);
    // On the rejected order, and beyond the order's quantity (4 + 7 of 10).
    expect(exceptions(text, 'ORDER_REJECTED') - exceptions(before, 'ORDER_REJECTED')).toBe(1);
    expect(exceptions(text, 'OVERFILL') - exceptions(before, 'OVERFILL')).toBe(1);
    expect(exceptions(text, 'ORDER_REPLACED') - exceptions(before, 'ORDER_REPLACED')).toBe(0);

    // No integrator runs here: the new entries wait for a checkpoint.
    const entries = Number((await ds.query(`SELECT count(*) AS n FROM execution_logs`))[0].n);
    expect(entries).toBeGreaterThan(0);
    await eventually(async () => {
      const lag = await scrape();
      expect(sample(lag, 'tradetrail_log_pending_entries')).toBe(entries);
      expect(sample(lag, 'tradetrail_log_pending_oldest_seconds')).toBeGreaterThanOrEqual(0);
      expect(sample(lag, 'tradetrail_log_checkpoint_tree_size')).toBe(0);
      expect(sample(lag, 'tradetrail_log_checkpoint_age_seconds')).toBeNaN();
    });
    const integrator = new LogIntegrator(ds, TEST_LOG_KEY, { intervalMs: 0, log: silent });
    await integrator.integrateAll();
    await eventually(async () => {
      const lag = await scrape();
      expect(sample(lag, 'tradetrail_log_pending_entries')).toBe(0);
      expect(sample(lag, 'tradetrail_log_pending_oldest_seconds')).toBe(0);
      expect(sample(lag, 'tradetrail_log_checkpoint_tree_size')).toBe(entries);
      expect(sample(lag, 'tradetrail_log_checkpoint_age_seconds')).toBeLessThan(60);
    });
  });

  it('reports what the scheduled checks found, and the open subscriptions', async () => {
    let text = await scrape();
    expect(sample(text, 'tradetrail_data_quality_issues', { type: 'EXECUTION_EXCEPTION' })).toBeUndefined();
    const scheduler = new ComplianceScheduler(ds, TEST_LOG_KEY, {
      dataQualityMinutes: 0,
      alertThreshold: 1_000_000,
      reconcileMinutes: 0,
      reconcileMaxFixes: 10,
      statementTimeoutMs: 10_000,
      log: silent,
    });
    main.metrics!.watch({ compliance: scheduler });
    expect(await scheduler.runReport()).toBe(true);
    text = await scrape();
    for (const [type, n] of Object.entries(scheduler.counters.issuesByType)) {
      expect(sample(text, 'tradetrail_data_quality_issues', { type })).toBe(n);
    }
    // The exceptions recorded above are issues of the report; every type has a sample.
    expect(sample(text, 'tradetrail_data_quality_issues', { type: 'EXECUTION_EXCEPTION' })).toBeGreaterThan(0);
    expect(sample(text, 'tradetrail_data_quality_issues', { type: 'BROKEN_LOG' })).toBe(0);
    expect(sample(text, 'tradetrail_scheduled_runs_total', { job: 'data_quality', result: 'ran' })).toBe(1);
    expect(sample(text, 'tradetrail_data_quality_report_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);

    expect(sample(text, 'tradetrail_subscriptions_open')).toBe(0);
    main.metrics!.subscriptionsOpen.set(3);
    expect(sample(await scrape(), 'tradetrail_subscriptions_open')).toBe(3);
    main.metrics!.watch({ live: () => ({ openSubscriptions: 5, queuedNotifications: 7, droppedAsTooSlow: 2 }) });
    text = await scrape();
    expect(sample(text, 'tradetrail_subscriptions_open')).toBe(5);
    expect(sample(text, 'tradetrail_subscription_notifications_queued')).toBe(7);
    expect(sample(text, 'tradetrail_subscribers_dropped_total')).toBe(2);
  });

  it('serves /metrics only on a port of its own when TRADETRAIL_METRICS_PORT is set', async () => {
    const own = await serve(ds, { TRADETRAIL_METRICS_PORT: '0' });
    const listener = await listenMetrics(own.metrics!, 0, '127.0.0.1');
    const metricsBase = `http://127.0.0.1:${(listener.address() as { port: number }).port}`;
    try {
      expect((await gql(own.base, admin, { query: 'query OnItsOwnPort { traders { totalCount } }' })).status).toBe(200);
      expect((await fetch(`${own.base}/metrics`)).status).toBe(404);
      await eventually(async () =>
        expect(
          sample(await scrape(metricsBase), 'tradetrail_graphql_request_duration_seconds_count', {
            operation: 'OnItsOwnPort',
          }),
        ).toBe(1),
      );
      expect((await fetch(`${metricsBase}/graphql`)).status).toBe(404);
      expect((await fetch(`${metricsBase}/metrics`, { method: 'POST' })).status).toBe(404);
    } finally {
      await new Promise((resolve) => listener.close(resolve));
      await own.close();
    }
  });

  it('serves no /metrics with TRADETRAIL_METRICS=false', async () => {
    const off = await serve(ds, { TRADETRAIL_METRICS: 'false' });
    try {
      expect(off.metrics).toBeUndefined();
      const res = await fetch(`${off.base}/metrics`);
      expect(res.status).toBe(404);
      expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect((await gql(off.base, admin, { query: '{ traders { totalCount } }' })).status).toBe(200);
    } finally {
      await off.close();
    }
  });
});

describe('/health and /ready', () => {
  it('answers /health always, /ready when ready, and 503 from /ready once shutting down', async () => {
    const health = await fetch(`${main.base}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${main.base}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      failed: [],
      checks: { process: 'running', database: 'up', migrations: 'current' },
    });
    expect(await (await fetch(`${main.base}/healthz`)).json()).toEqual({ status: 'ok', database: 'up' });

    lifecycle.shuttingDown = true;
    try {
      const stopping = await fetch(`${main.base}/ready`);
      expect(stopping.status).toBe(503);
      expect(await stopping.json()).toEqual({
        status: 'not ready',
        failed: ['process'],
        checks: { process: 'shutting down', database: 'not checked', migrations: 'not checked' },
      });
      expect((await fetch(`${main.base}/health`)).status).toBe(200);
    } finally {
      lifecycle.shuttingDown = false;
    }
    expect((await fetch(`${main.base}/ready`)).status).toBe(200);
  });

  it('answers 503 from /ready while a migration is missing, and while the database is unreachable', async () => {
    const db = await createTestDatabase();
    const other = new DataSource(dataSourceOptions(db.url, 2, false));
    await other.initialize();
    const app = await serve(other);
    try {
      const [newest] = (await other.query(
        `SELECT id, timestamp, name FROM typeorm_migrations ORDER BY timestamp DESC LIMIT 1`,
      )) as { id: number; timestamp: string; name: string }[];
      await other.query(`DELETE FROM typeorm_migrations WHERE id = $1`, [newest.id]);
      const missing = await fetch(`${app.base}/ready`);
      expect(missing.status).toBe(503);
      expect(await missing.json()).toEqual({
        status: 'not ready',
        failed: ['migrations'],
        checks: { process: 'running', database: 'up', migrations: 'pending' },
        pendingMigrations: [newest.name],
      });
      await other.query(`INSERT INTO typeorm_migrations (timestamp, name) VALUES ($1, $2)`, [
        newest.timestamp,
        newest.name,
      ]);
      expect((await fetch(`${app.base}/ready`)).status).toBe(200);

      // The database goes away: it takes no connection, and the pool's are cut.
      await adminQuery(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS false`);
      await adminQuery(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${db.name}'`);
      const down = await fetch(`${app.base}/ready`);
      expect(down.status).toBe(503);
      expect(await down.json()).toEqual({
        status: 'not ready',
        failed: ['database'],
        checks: { process: 'running', database: 'down', migrations: 'not checked' },
      });
      expect((await fetch(`${app.base}/health`)).status).toBe(200);
      expect((await fetch(`${app.base}/healthz`)).status).toBe(503);

      await adminQuery(`ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS true`);
      await eventually(async () => expect((await fetch(`${app.base}/ready`)).status).toBe(200));
    } finally {
      await app.close();
      await other.destroy().catch(() => undefined);
      await db.drop();
    }
  });
});

describe('request log', () => {
  it('writes one line per request, without query strings, variables, tokens or cookies', async () => {
    const marker = `MARKER-${randomUUID()}`;
    const before = log.raw.length;
    const named = await gql(
      main.base,
      admin,
      {
        query: 'query Lookup($symbol: String) { positions(filter: { symbol: $symbol }) { totalCount } }',
        variables: { symbol: marker },
      },
      { 'x-request-id': 'req-from-the-caller.1', cookie: `session=${marker}` },
    );
    expect(named.status).toBe(200);
    expect(named.headers.get('x-request-id')).toBe('req-from-the-caller.1');
    // The variables in the query string of a GET must not reach the log either.
    const q = encodeURIComponent(
      'query ByGet($symbol: String) { positions(filter: { symbol: $symbol }) { totalCount } }',
    );
    const v = encodeURIComponent(JSON.stringify({ symbol: marker }));
    const get = await fetch(`${main.base}/graphql?query=${q}&variables=${v}`, {
      headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${admin}` },
    });
    expect(get.status).toBe(200);
    const forbidden = await gql(
      main.base,
      trader,
      {
        query: `mutation Cancel($id: ID!) { recordExecution(input: { orderId: $id, execId: "${marker}", quantity: "1", price: "1", executedAt: "2026-01-01T00:00:00Z" }) { status } }`,
        variables: { id: randomUUID() },
      },
      { 'x-request-id': 'has a space' },
    );
    const generated = forbidden.headers.get('x-request-id')!;
    expect(generated).toMatch(/^[0-9a-f-]{36}$/);
    const badToken = `${marker}.not.a.jwt`;
    expect(
      (await gql(main.base, badToken, { query: '{ traders { totalCount } }' }, { 'x-request-id': 'x'.repeat(129) }))
        .status,
    ).toBe(401);
    const tooBig = await gql(main.base, admin, {
      query: '{ traders { totalCount } }',
      variables: { pad: marker.repeat(40_000) },
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.headers.get('x-request-id')).toBeTruthy();
    const notFound = await fetch(`${main.base}/nowhere?token=${marker}`);
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('x-request-id')).toBeTruthy();

    const lines = await eventually(async () => {
      const found = log.requests(before);
      expect(found).toHaveLength(6);
      return found;
    });
    expect(log.raw.length - before).toBe(6);
    const [first, second, third, fourth, fifth, sixth] = lines;
    expect(first).toEqual({
      level: 30,
      time: expect.any(Number),
      pid: process.pid,
      hostname: expect.any(String),
      name: 'tradetrail',
      reqId: 'req-from-the-caller.1',
      method: 'POST',
      path: '/graphql',
      status: 200,
      ms: expect.any(Number),
      operation: 'Lookup',
      operationType: 'query',
      role: 'admin',
      msg: 'request completed',
    });
    expect(first.ms).toBeGreaterThan(0);
    expect(second).toMatchObject({ method: 'GET', path: '/graphql', status: 200, operation: 'ByGet', role: 'admin' });
    expect(third).toMatchObject({
      reqId: generated,
      operation: 'Cancel',
      operationType: 'mutation',
      role: 'trader',
      errors: ['FORBIDDEN'],
    });
    expect(fourth).toMatchObject({ status: 401, errors: ['UNAUTHENTICATED'] });
    expect(fourth.reqId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fourth).not.toHaveProperty('role');
    expect(fourth).not.toHaveProperty('operation');
    expect(fifth).toMatchObject({ status: 413, path: '/graphql', errors: ['BAD_REQUEST'] });
    expect(sixth).toMatchObject({ status: 404, path: '/nowhere', method: 'GET' });

    const written = log.raw.join('');
    expect(written).not.toContain(marker);
    expect(written).not.toContain(admin);
    expect(written).not.toContain(trader);
    expect(written).not.toMatch(/authorization|cookie|variables|Bearer/i);
  });

  it('logs probes and scrapes at debug level only', async () => {
    const before = log.raw.length;
    for (const path of ['/health', '/ready', '/healthz', '/metrics']) {
      expect((await fetch(`${main.base}${path}`)).status).toBe(200);
    }
    const lines = await eventually(async () => {
      const found = log.requests(before);
      expect(found).toHaveLength(4);
      return found;
    });
    expect(lines.map((l) => [l.path, l.level])).toEqual([
      ['/health', 20],
      ['/ready', 20],
      ['/healthz', 20],
      ['/metrics', 20],
    ]);
  });

  it('writes no request line with TRADETRAIL_REQUEST_LOG=false, and still returns the request id', async () => {
    const quiet = new CapturedLog();
    const off = await serve(ds, { TRADETRAIL_REQUEST_LOG: 'false' }, { requestLogger: quiet.logger });
    try {
      const res = await gql(off.base, admin, { query: '{ traders { totalCount } }' }, { 'x-request-id': 'abc' });
      expect(res.status).toBe(200);
      expect(res.headers.get('x-request-id')).toBe('abc');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(quiet.raw).toEqual([]);
    } finally {
      await off.close();
    }
  });
});
