import { createClient, type Client as WsClient } from 'graphql-ws';
import { Client as PgClient } from 'pg';
import pino from 'pino';
import { DataSource } from 'typeorm';
import WebSocket from 'ws';
import { dataSourceOptions } from '../ormconfig';
import { createVerifier, mintToken, type TokenVerifier } from '../src/auth';
import { type Config, parseConfig } from '../src/config';
import { attachSubscriptions, liveStats, type LiveSubscriptions, openSubscriptions } from '../src/live/subscriptions';
import { Dec } from '../src/decimal';
import { OrderStatus } from '../src/order/order.entity';
import { makeLogs, makeOrder, makeTrader, makeTraders } from './factories';
import { createTestDatabase, type ListeningApp, listenApp } from './harness';
import { TEST_LOG_KEY } from './log-key';
import { PROCESS_SECRET, startServerProcess, stopServerProcess } from './server-process';

/**
 * Subscriptions over graphql-ws, fed by PostgreSQL's LISTEN/NOTIFY: isolation by row-level security,
 * authentication, nothing for what rolls back, fan-out across processes, slow subscribers dropped.
 */

const SECRET = 'a-subscriptions-test-secret-of-32-characters';
const TEST_LOG = { key: TEST_LOG_KEY, known: () => undefined };
const quiet = pino({ level: 'silent' });

const ORDER_SUB = `subscription($f: OrderUpdatedFilter) { orderUpdated(filter: $f) {
  id traderId symbol status filledQuantity clientOrderId trader { id name } } }`;
const POSITION_SUB = `subscription($f: PositionUpdatedFilter) { positionUpdated(filter: $f) { id traderId symbol quantity status } }`;
const LOG_SUB = `subscription($f: ExecutionLoggedFilter) { executionLogged(filter: $f) {
  id traderId orderId seq action details order { id status } } }`;
const EXCEPTION_SUB = `subscription { exceptionRecorded { id traderId orderId action reason } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`;
const RECORD_MANY = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied } }`;

interface Served {
  app: ListeningApp;
  live: LiveSubscriptions;
  ws: string;
  origin: string;
}

async function serve(ds: DataSource, cfg: Config, verify: TokenVerifier, maxBufferedBytes?: number): Promise<Served> {
  const app = await listenApp(ds, cfg, verify, TEST_LOG);
  const live = attachSubscriptions(app.server, {
    schema: app.schema,
    dataSource: ds,
    cfg,
    verify,
    log: TEST_LOG,
    logger: quiet,
    maxBufferedBytes,
  });
  expect(await live.listening(10_000)).toBe(true);
  return { app, live, ws: `${app.base.replace(/^http/, 'ws')}/graphql`, origin: app.base };
}

async function unserve(s: Served | undefined): Promise<void> {
  if (!s) return;
  await s.live.close();
  await s.app.close();
}

/** Polls until `check` is true (or fails the test after `ms`). */
async function until(check: () => boolean | Promise<boolean>, ms = 15_000, what = 'the condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Connection {
  client: WsClient;
  closed: Promise<{ code: number; reason: string }>;
  /** The client's socket, once connected. */
  socket?: WebSocket;
}
const connections: WsClient[] = [];

function connect(url: string, connectionParams?: Record<string, unknown>): Connection {
  let resolveClosed!: (event: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((r) => (resolveClosed = r));
  const connection: Partial<Connection> = { closed };
  const client = createClient({
    url,
    webSocketImpl: WebSocket,
    connectionParams,
    retryAttempts: 0,
    on: {
      connected: (socket) => (connection.socket = socket as WebSocket),
      closed: (event) => {
        const e = event as { code: number; reason: unknown };
        resolveClosed({ code: e.code, reason: String(e.reason) });
      },
    },
  });
  connections.push(client);
  connection.client = client;
  return connection as Connection;
}

interface Sub {
  events: any[];
  errors: any[];
  completed: boolean;
  waitFor(predicate: (event: any) => boolean, what?: string): Promise<any>;
}

function subscribe(c: Connection, query: string, variables: Record<string, unknown> = {}): Sub {
  const sub: Sub = {
    events: [],
    errors: [],
    completed: false,
    async waitFor(predicate, what = 'an event') {
      await until(
        () => sub.events.some(predicate),
        15_000,
        `${what} (got ${JSON.stringify(sub.events).slice(0, 400)})`,
      );
      return sub.events.find(predicate);
    },
  };
  c.client.subscribe(
    { query, variables },
    {
      next: (result) => {
        if (result.errors) sub.errors.push(...result.errors);
        if (result.data) sub.events.push(Object.values(result.data)[0]);
      },
      error: (error) => sub.errors.push(...(Array.isArray(error) ? error : [error])),
      complete: () => (sub.completed = true),
    },
  );
  return sub;
}

let ds: DataSource;
let drop: () => Promise<void>;
let dbUrl: string;
let cfg: Config;
let verify: TokenVerifier;
let main: Served;
let su: PgClient;
let traderA: string;
let traderB: string;
let tokenA: string;
let tokenB: string;
let service: string;
let compliance: string;
let n = 0;

async function gql(origin: string, token: string, query: string, variables: Record<string, unknown> = {}) {
  const res = await fetch(`${origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return (await res.json()) as { data?: any; errors?: any[] };
}

/** A fill through the API (a service's token): updates the order, the position, appends log entries. */
async function record(orderId: string, quantity = '10', origin = main.origin) {
  const answer = await gql(origin, service, RECORD, {
    input: {
      orderId,
      execId: `x-${++n}`,
      quantity,
      price: '100',
      executedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    },
  });
  expect(answer.errors).toBeUndefined();
  return answer.data.recordExecution;
}

async function newOrder(traderId: string, symbol: string, quantity = '1000') {
  return makeOrder(ds.manager, { traderId, symbol, status: OrderStatus.ACCEPTED, quantity: new Dec(quantity) });
}

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  dbUrl = db.url;
  ds = new DataSource(dataSourceOptions(db.url, 4, false));
  await ds.initialize();
  cfg = parseConfig({ NODE_ENV: 'test', TRADETRAIL_REQUEST_LOG: 'false', TRADETRAIL_METRICS: 'false' });
  verify = createVerifier(cfg, SECRET);
  main = await serve(ds, cfg, verify);
  su = new PgClient({ connectionString: db.url });
  await su.connect();
  traderA = (await makeTrader(ds.manager, { name: 'Alice' })).id;
  traderB = (await makeTrader(ds.manager, { name: 'Bob' })).id;
  tokenA = await mintToken(SECRET, { sub: traderA, role: 'trader' });
  tokenB = await mintToken(SECRET, { sub: traderB, role: 'trader' });
  service = await mintToken(SECRET, { sub: 'live-test-gateway', role: 'service' });
  compliance = await mintToken(SECRET, { sub: 'live-test-compliance', role: 'compliance' });
});

afterEach(async () => {
  await Promise.all(connections.splice(0).map((c) => c.dispose()));
  await until(() => main.live.open() === 0, 5000, 'the subscriptions to end');
});

afterAll(async () => {
  await unserve(main);
  await su?.end();
  await ds?.destroy();
  await drop?.();
});

describe('subscriptions over graphql-ws', () => {
  it('gives each trader only their own orders, positions and log entries; compliance receives both', async () => {
    const orderA = await newOrder(traderA, 'AAPL');
    const orderB = await newOrder(traderB, 'MSFT');
    // The orders' own notifications reach the LISTEN connection a moment after their commit: heard before
    // anyone subscribes, they go to no one (a subscription that started first would get an ACCEPTED event).
    await new Promise((resolve) => setTimeout(resolve, 500));
    const a = connect(main.ws, { authorization: `Bearer ${tokenA}` });
    const b = connect(main.ws, { token: tokenB }); // the other form of connection_init's payload
    const c = connect(main.ws, { authorization: `Bearer ${compliance}` });
    const subs = {
      aOrders: subscribe(a, ORDER_SUB),
      aPositions: subscribe(a, POSITION_SUB),
      aLogs: subscribe(a, LOG_SUB),
      bOrders: subscribe(b, ORDER_SUB),
      bPositions: subscribe(b, POSITION_SUB),
      bLogs: subscribe(b, LOG_SUB),
      cOrders: subscribe(c, ORDER_SUB),
      cPositions: subscribe(c, POSITION_SUB),
      cLogs: subscribe(c, LOG_SUB),
    };
    await until(() => main.live.open() === 9, 10_000, 'nine subscriptions');
    expect(openSubscriptions()).toBe(9);

    await record(orderA.id); // A: 10
    await record(orderB.id); // B: 10
    // Last, for each trader, a fill every subscription hears: notifications arrive in commit order, so
    // once it has arrived, anything of the other trader's would have arrived before it.
    await record(orderA.id); // A: 20
    await record(orderB.id); // B: 20
    const is20 = (x: string) => Number(x) === 20;
    for (const [own, orders, positions, logs] of [
      [traderA, subs.aOrders, subs.aPositions, subs.aLogs],
      [traderB, subs.bOrders, subs.bPositions, subs.bLogs],
    ] as const) {
      const ownOrder = own === traderA ? orderA.id : orderB.id;
      await orders.waitFor((o) => o.id === ownOrder && is20(o.filledQuantity), 'the order at 20');
      await positions.waitFor((p) => is20(p.quantity), 'the position at 20');
      await logs.waitFor((e) => e.orderId === ownOrder && e.seq === 3, 'the second fill’s entry');
      for (const sub of [orders, positions, logs]) {
        expect(sub.errors).toEqual([]);
        expect(sub.events.length).toBeGreaterThan(0);
        expect(sub.events.filter((e) => e.traderId !== own)).toEqual([]);
      }
      // One event per change, each the row as read after its commit: at least as new as the change (on a
      // busy machine the first may already show the second fill).
      expect(orders.events.map((o) => [o.id, o.status])).toEqual([
        [ownOrder, 'PARTIAL'],
        [ownOrder, 'PARTIAL'],
      ]);
      expect([10, 20]).toContain(Number(orders.events[0].filledQuantity));
      // Nested fields are resolved in the event's own request context (the subscriber's identity).
      expect(orders.events[0].trader).toEqual({ id: own, name: own === traderA ? 'Alice' : 'Bob' });
      expect(positions.events).toHaveLength(2);
      expect([10, 20]).toContain(Number(positions.events[0].quantity));
      // Entries of one order in seq order: EXECUTED, POSITION_LINKED, then the second EXECUTED.
      expect(logs.events.map((e) => [e.seq, e.action])).toEqual([
        [1, 'EXECUTED'],
        [2, 'POSITION_LINKED'],
        [3, 'EXECUTED'],
      ]);
    }
    await subs.cOrders.waitFor((o) => o.id === orderB.id && is20(o.filledQuantity));
    await subs.cPositions.waitFor((p) => p.traderId === traderB && is20(p.quantity));
    await subs.cLogs.waitFor((e) => e.orderId === orderB.id && e.seq === 3);
    expect(subs.cOrders.events.map((o) => o.traderId)).toEqual([traderA, traderB, traderA, traderB]);
    expect(new Set(subs.cPositions.events.map((p) => p.traderId))).toEqual(new Set([traderA, traderB]));
    expect(subs.cLogs.events).toHaveLength(6);
  });

  it('refuses a missing, malformed or wrongly signed token (4401), and closes when the token expires (4403)', async () => {
    const stranger = await mintToken('another-secret-of-at-least-32-characters', { sub: 'x', role: 'compliance' });
    for (const [params, reason] of [
      [undefined, /^Authentication required: send connection_init with \{ "authorization": "Bearer <token>" \}\.$/],
      [{ authorization: 'Bearer not-a-token' }, /^The token is malformed\.$/],
      [{ authorization: 'Basic dXNlcjpwYXNz' }, /^The Authorization header must be "Bearer <token>"\.$/],
      [{ token: stranger }, /^The token's signature does not verify\.$/],
    ] as const) {
      const c = connect(main.ws, params);
      const sub = subscribe(c, ORDER_SUB);
      expect(await c.closed).toEqual({ code: 4401, reason: expect.stringMatching(reason) });
      await until(() => sub.errors.length > 0, 5000, 'the subscription to fail');
      expect(sub.events).toEqual([]);
    }
    expect(main.live.open()).toBe(0);

    // A subscription outlives no token.
    const brief = await mintToken(SECRET, { sub: 'brief', role: 'compliance' }, '3s');
    const c = connect(main.ws, { token: brief });
    subscribe(c, ORDER_SUB);
    await until(() => main.live.open() === 1, 5000, 'the subscription');
    expect(await c.closed).toEqual({ code: 4403, reason: 'The token has expired: reconnect with a fresh one.' });
    await until(() => main.live.open() === 0, 5000, 'the subscription to end');
  });

  it("gives a trader nothing of another's: neither with their filter, nor when a notification claims the row is theirs", async () => {
    const orderA = await newOrder(traderA, 'NVDA');
    const orderB = await newOrder(traderB, 'NVDA');
    const a = connect(main.ws, { authorization: `Bearer ${tokenA}` });
    const c = connect(main.ws, { authorization: `Bearer ${compliance}` });
    const aFilteredOnB = subscribe(a, ORDER_SUB, { f: { traderId: traderB } });
    const aOnB = subscribe(a, ORDER_SUB, { f: { orderId: orderB.id } });
    const aAll = subscribe(a, ORDER_SUB);
    const cAll = subscribe(c, ORDER_SUB);
    await until(() => main.live.open() === 4, 10_000, 'four subscriptions');
    await record(orderB.id);
    // A forged notification, as anyone who can connect could send: B's order announced as A's. Only
    // ids travel; A reads the row as A, and row-level security hides it. Then one that is not a change.
    await su.query(`SELECT pg_notify('tradetrail_events', $1)`, [
      JSON.stringify({ table: 'orders', byTrader: { [traderA]: [orderB.id] } }),
    ]);
    await su.query(`SELECT pg_notify('tradetrail_events', 'not a change')`);
    await record(orderA.id); // after everything above, in commit order
    await aAll.waitFor((o) => o.id === orderA.id);
    await cAll.waitFor((o) => o.id === orderA.id);
    expect(aAll.events.map((o) => o.id)).toEqual([orderA.id]);
    expect(aFilteredOnB.events).toEqual([]);
    expect(aOnB.events).toEqual([]);
    // Compliance reads everything: B's fill, the forged announcement (read as compliance), then A's fill.
    expect(cAll.events.map((o) => o.id)).toEqual([orderB.id, orderB.id, orderA.id]);
    expect([...aAll.errors, ...cAll.errors]).toEqual([]);
  });

  it('sends nothing for a write that rolls back: in SQL, and a mutation the database refuses after writing', async () => {
    const order = await newOrder(traderA, 'TSLA');
    const huge = await newOrder(traderA, 'HUGE', '900000000000000000000');
    const c = connect(main.ws, { authorization: `Bearer ${compliance}` });
    const orders = subscribe(c, ORDER_SUB, { f: { orderId: order.id } });
    const positions = subscribe(c, POSITION_SUB, { f: { traderId: traderA, symbol: 'TSLA' } });
    const logs = subscribe(c, LOG_SUB, { f: { orderId: order.id } });
    await until(() => main.live.open() === 3, 10_000, 'three subscriptions');

    // The trigger fires inside the transaction; NOTIFY waits for the commit, which never comes.
    await su.query('BEGIN');
    await su.query(`UPDATE orders SET updated_at = clock_timestamp() WHERE id = $1`, [order.id]);
    await su.query('ROLLBACK');
    await su.query(`UPDATE orders SET updated_at = clock_timestamp() WHERE id = $1`, [order.id]);
    await orders.waitFor(() => true);
    expect(orders.events).toHaveLength(1); // the rolled-back one would have come first

    await record(order.id); // TSLA position: 10
    await positions.waitFor((p) => Number(p.quantity) === 10);
    // One request: a TSLA fill (its position is updated by a statement that succeeds) and two fills of
    // 9×10²⁰ that open a HUGE position its column cannot hold: the database refuses, all rolls back.
    const refused = await gql(main.origin, service, RECORD_MANY, {
      inputs: [
        { orderId: order.id, execId: 'tsla-refused', quantity: '10', price: '100', executedAt: '2026-02-01T00:00:00Z' },
        ...[1, 2].map((i) => ({
          orderId: huge.id,
          execId: `huge-${i}`,
          quantity: '900000000000000000000',
          price: '1',
          executedAt: `2026-02-0${i}T00:00:00Z`,
        })),
      ],
    });
    expect(refused.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(refused.errors?.[0].message).toMatch(/nothing was written/);
    await record(order.id); // TSLA position: 20, after the refused request in commit order
    await positions.waitFor((p) => Number(p.quantity) === 20);
    // One event for each committed fill; one for the refused request would make three.
    expect(positions.events).toHaveLength(2);
    await logs.waitFor((e) => e.seq === 3);
    expect(logs.events.map((e) => [e.seq, e.action])).toEqual([
      [1, 'EXECUTED'],
      [2, 'POSITION_LINKED'],
      [3, 'EXECUTED'],
    ]);
    expect(logs.events.map((e) => e.details.execId).filter(Boolean)).not.toContain('tsla-refused');
  });

  it('announces exceptions (an overfill) to compliance and to their trader only', async () => {
    const orderA = await newOrder(traderA, 'AMD', '10');
    const orderB = await newOrder(traderB, 'AMD', '10');
    const a = connect(main.ws, { token: tokenA });
    const b = connect(main.ws, { token: tokenB });
    const c = connect(main.ws, { token: compliance });
    const [aEx, bEx, cEx] = [subscribe(a, EXCEPTION_SUB), subscribe(b, EXCEPTION_SUB), subscribe(c, EXCEPTION_SUB)];
    await until(() => main.live.open() === 3, 10_000, 'three subscriptions');
    await record(orderA.id, '5'); // no exception
    await record(orderA.id, '15'); // beyond the order's 10: OVERFILL
    await record(orderB.id, '12'); // B's OVERFILL, last
    await bEx.waitFor((e) => e.orderId === orderB.id);
    await cEx.waitFor((e) => e.orderId === orderB.id);
    await aEx.waitFor((e) => e.orderId === orderA.id);
    expect(cEx.events.map((e) => [e.traderId, e.action])).toEqual([
      [traderA, 'EXCEPTION'],
      [traderB, 'EXCEPTION'],
    ]);
    expect(cEx.events[0].reason).toMatch(/beyond its quantity/);
    expect(aEx.events.map((e) => e.orderId)).toEqual([orderA.id]);
    expect(bEx.events.map((e) => e.orderId)).toEqual([orderB.id]);
  });

  it('serves only subscriptions over WebSocket, checks arguments and limits, and answers a subscription over HTTP', async () => {
    const c = connect(main.ws, { token: compliance });
    const query = subscribe(c, '{ traders { totalCount } }');
    const mutation = subscribe(c, 'mutation { expireOrder(orderId: "00000000-0000-4000-8000-000000000000") { id } }');
    const badFilter = subscribe(c, ORDER_SUB, { f: { traderId: 'nope' } });
    const badVariable = subscribe(c, ORDER_SUB, { f: { status: ['NOPE'] } });
    const unknown = subscribe(c, 'subscription { nope }');
    const deep = subscribe(
      c,
      'subscription { orderUpdated { position { orders(first: 500) { edges { node { fills { order { fills { order { executionLogs { id } } } } } } } } } } }',
    );
    const all = [query, mutation, badFilter, badVariable, unknown, deep];
    await until(() => all.every((s) => s.errors.length > 0), 10_000, 'every subscription to be refused');
    expect(query.errors[0]).toMatchObject({
      message: 'Only subscriptions are served over WebSocket; send queries as HTTP POST to /graphql.',
      extensions: { code: 'BAD_REQUEST' },
    });
    expect(mutation.errors[0].message).toMatch(/send mutations as HTTP POST/);
    expect(badFilter.errors[0]).toMatchObject({
      message: expect.stringMatching(/filter\.traderId must be a UUID/),
      extensions: { code: 'BAD_USER_INPUT' },
    });
    expect(badVariable.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(unknown.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(deep.errors[0].extensions.code).toBe('QUERY_TOO_COSTLY');
    expect(main.live.open()).toBe(0);

    const overHttp = await gql(main.origin, compliance, 'subscription { orderUpdated { id } }');
    expect(overHttp.errors?.[0].message).toMatch(/Subscriptions are served over WebSocket/);
    // Another path on the port is not a WebSocket endpoint.
    const elsewhere = new WebSocket(main.ws.replace('/graphql', '/elsewhere'), 'graphql-transport-ws');
    const refused = await new Promise<string>((resolve) => {
      elsewhere.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
      elsewhere.on('error', (e) => resolve(e.message));
    });
    expect(refused).toMatch(/404/);
  });

  it('closes a subscriber that stops reading with 1008 and keeps its queue bounded, while another keeps up', async () => {
    const limited = parseConfig({
      NODE_ENV: 'test',
      TRADETRAIL_REQUEST_LOG: 'false',
      TRADETRAIL_METRICS: 'false',
      TRADETRAIL_SUBSCRIPTION_QUEUE: '10',
    });
    const second = await serve(ds, limited, verify);
    try {
      const order = await newOrder(traderA, 'SLOW');
      // A long trail, so that each event is large (about 170 KB): the socket's buffers fill after a few dozen.
      await makeLogs(
        ds.manager,
        Array.from({ length: 300 }, (_, i) => ({
          orderId: order.id,
          traderId: traderA,
          reason: `entry ${i} `.padEnd(400, '.'),
        })),
      );
      const f = { f: { orderId: order.id } };
      const slow = connect(second.ws, { token: compliance });
      const fast = connect(second.ws, { token: compliance });
      const slowSub = subscribe(
        slow,
        `subscription($f: OrderUpdatedFilter) { orderUpdated(filter: $f) { id updatedAt executionLogs { id seq reason hash prevHash } } }`,
        f,
      );
      const fastSub = subscribe(
        fast,
        `subscription($f: OrderUpdatedFilter) { orderUpdated(filter: $f) { id updatedAt } }`,
        f,
      );
      await until(() => second.live.open() === 2 && !!slow.socket, 10_000, 'two subscriptions');
      slow.socket!.pause(); // the client stops reading: its TCP window closes, the server's buffers fill

      let updates = 0;
      let maxQueued = 0;
      const droppedBefore = liveStats().droppedAsTooSlow;
      while (second.live.open() === 2 && updates < 3000) {
        await su.query(`UPDATE orders SET updated_at = clock_timestamp() WHERE id = $1`, [order.id]);
        updates += 1;
        // The other subscriber is never held up: it has every update before the next one is made.
        await until(() => fastSub.events.length === updates, 10_000, `update ${updates} at the fast subscriber`);
        maxQueued = Math.max(maxQueued, liveStats().queuedNotifications);
      }
      expect(second.live.open()).toBe(1);
      expect(liveStats().droppedAsTooSlow).toBe(droppedBefore + 1);
      expect(maxQueued).toBeLessThanOrEqual(10);
      expect(liveStats().queuedNotifications).toBe(0);
      console.log(
        `slow subscriber: dropped after ${updates} updates of ~170 KB events; it had read ${slowSub.events.length}`,
      );

      slow.socket!.resume(); // it reads what was sent before the close, then the close
      expect(await slow.closed).toEqual({
        code: 1008,
        reason: 'Too slow: more than 10 notifications waiting. Read faster, or subscribe to less.',
      });
      expect(slowSub.events.length).toBeLessThan(updates);
      expect(fastSub.errors).toEqual([]);

      // close(): every subscription socket goes away with 1001, and so does the LISTEN connection.
      const listeners = async () =>
        Number(
          (
            await su.query(
              `SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'tradetrail-listen' AND datname = current_database()`,
            )
          ).rows[0].n,
        );
      expect(await listeners()).toBe(2); // the main server's and this one's
      await second.live.close();
      expect(await fast.closed).toEqual({ code: 1001, reason: 'The server is going away: reconnect.' });
      expect(second.live.open()).toBe(0);
      await until(async () => (await listeners()) === 1, 5000, 'the LISTEN connection to close');
    } finally {
      await unserve(second);
    }
  });

  it('announces a statement of many rows in a few notifications of ids grouped by trader, each under 6,200 bytes', async () => {
    const listen = new PgClient({ connectionString: dbUrl });
    await listen.connect();
    const payloads: string[] = [];
    listen.on('notification', (m) => payloads.push(m.payload ?? ''));
    await listen.query('LISTEN tradetrail_events');
    const heard = async (): Promise<string[]> => {
      await su.query(`SELECT pg_notify('tradetrail_events', 'end')`);
      await until(() => payloads.includes('end'), 5000, 'the end marker');
      return payloads.splice(0).filter((p) => p !== 'end');
    };
    try {
      const traders = await makeTraders(ds.manager, 200);
      await heard();
      // The worst case for the size: 200 orders of 200 traders in one statement, one id per trader key.
      const inserted = (
        await su.query(
          `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity, status)
           SELECT id, 'many', 'MANY', 'BUY', 'MARKET', 1, 'ACCEPTED' FROM traders WHERE id = ANY($1) RETURNING id, trader_id`,
          [traders.map((t) => t.id)],
        )
      ).rows as { id: string; trader_id: string }[];
      const orderMessages = (await heard()).map((p) => ({ bytes: Buffer.byteLength(p), ...JSON.parse(p) }));
      expect(orderMessages.length).toBeGreaterThan(1);
      expect(orderMessages.length).toBeLessThanOrEqual(4);
      for (const m of orderMessages) {
        expect(m.table).toBe('orders');
        expect(m.bytes).toBeLessThan(6200);
      }
      const announced = orderMessages.flatMap((m) =>
        Object.entries(m.byTrader as Record<string, string[]>).flatMap(([t, ids]) => ids.map((id) => `${t}/${id}`)),
      );
      expect(announced.sort()).toEqual(inserted.map((r) => `${r.trader_id}/${r.id}`).sort());

      // One trader's 150 entries (the usual shape, at its largest): one message.
      await su.query(
        `INSERT INTO execution_logs (order_id, trader_id, action, actor, source, occurred_at)
         SELECT $1, $2, 'EXECUTED', 'test', 'API', now() FROM generate_series(1, 150)`,
        [inserted[0].id, inserted[0].trader_id],
      );
      const [one, ...none] = await heard();
      expect(none).toEqual([]);
      expect(Buffer.byteLength(one)).toBeLessThan(6200);
      expect(Object.values(JSON.parse(one).byTrader as Record<string, string[]>)[0]).toHaveLength(150);

      // 1,000 log entries of 40 orders in one statement: about 7 messages of ~150 ids, none for another table.
      const orders = inserted.slice(1, 41);
      await su.query(
        `INSERT INTO execution_logs (order_id, trader_id, action, actor, source, occurred_at)
         SELECT o.id, o.trader_id, 'EXECUTED', 'test', 'API', now() FROM orders o, generate_series(1, 25) g WHERE o.id = ANY($1)`,
        [orders.map((o) => o.id)],
      );
      const logMessages = (await heard()).map((p) => JSON.parse(p));
      expect(logMessages.map((m) => m.table)).toEqual(logMessages.map(() => 'execution_logs'));
      expect(logMessages.length).toBeGreaterThanOrEqual(6);
      expect(logMessages.length).toBeLessThanOrEqual(8);
      const ids = logMessages.flatMap((m) => Object.values(m.byTrader as Record<string, string[]>).flat());
      const stored = (
        await su.query(`SELECT id FROM execution_logs WHERE order_id = ANY($1)`, [orders.map((o) => o.id)])
      ).rows.map((r) => r.id);
      expect(ids.sort()).toEqual(stored.sort());
    } finally {
      await listen.end();
    }
  });

  it('fans out across processes: a client of process B receives what process A wrote; SIGTERM closes it with 1001', async () => {
    // Two real server processes (src/index.ts, as `npm start` runs it) on one database of their own.
    const db = await createTestDatabase();
    const setup = new PgClient({ connectionString: db.url });
    await setup.connect();
    const [{ id: trader }] = (await setup.query(`INSERT INTO traders (name) VALUES ('Carol') RETURNING id`)).rows;
    await setup.end();
    const env = { TRADETRAIL_LOG_INTEGRATION_MS: '0', LOG_LEVEL: 'warn' };
    const [processA, processB] = await Promise.all([startServerProcess(db.url, env), startServerProcess(db.url, env)]);
    try {
      const token = await mintToken(PROCESS_SECRET, { sub: trader, role: 'trader' });
      const onB = connect(`${processB.origin.replace('http', 'ws')}/graphql`, { authorization: `Bearer ${token}` });
      const orders = subscribe(onB, ORDER_SUB);
      // B's subscription is registered a moment after the socket connects: submit through A until B hears one.
      const submitted: string[] = [];
      await until(
        async () => {
          const clientOrderId = `fan-out-${submitted.length + 1}`;
          const answer = await gql(
            processA.origin,
            token,
            `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`,
            {
              input: {
                traderId: trader,
                clientOrderId,
                symbol: 'IBM',
                side: 'BUY',
                orderType: 'MARKET',
                quantity: '5',
              },
            },
          );
          expect(answer.errors).toBeUndefined();
          submitted.push(clientOrderId);
          await new Promise((r) => setTimeout(r, 300));
          return orders.events.length > 0;
        },
        30_000,
        'process B to deliver an order written through process A',
      );
      expect(orders.errors).toEqual([]);
      expect(orders.events[0]).toMatchObject({ traderId: trader, symbol: 'IBM', status: 'PENDING' });
      expect(submitted).toContain(orders.events[0].clientOrderId);

      // A shutdown tells subscribers to go elsewhere (1001) instead of waiting for them.
      const started = Date.now();
      expect(await stopServerProcess(processB)).toBe(0);
      expect(await onB.closed).toEqual({ code: 1001, reason: 'The server is going away: reconnect.' });
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await Promise.all([stopServerProcess(processA), stopServerProcess(processB)]);
      await db.drop();
    }
  }, 120_000);

  it('when the LISTEN connection is lost, closes subscriptions with 1013, reconnects, and serves again', async () => {
    const order = await newOrder(traderA, 'LOST');
    const before = connect(main.ws, { token: compliance });
    subscribe(before, ORDER_SUB, { f: { orderId: order.id } });
    await until(() => main.live.open() === 1, 10_000, 'the subscription');
    await su.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'tradetrail-listen' AND datname = current_database()`,
    );
    expect(await before.closed).toEqual({
      code: 1013,
      reason: 'Live events were interrupted (database connection lost): reconnect, then re-read what changed.',
    });
    expect(await main.live.listening(10_000)).toBe(true);
    const after = connect(main.ws, { token: compliance });
    const sub = subscribe(after, ORDER_SUB, { f: { orderId: order.id } });
    await until(() => main.live.open() === 1, 10_000, 'the new subscription');
    await record(order.id);
    expect(await sub.waitFor((o) => o.id === order.id)).toMatchObject({ status: 'PARTIAL' });
  });
});
