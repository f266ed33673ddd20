import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import type { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { main as verifyCli } from '../scripts/verify';
import { buildExportData } from '../scripts/bench-export';
import { createVerifier, mintToken, type Role } from '../src/auth';
import { parseConfig } from '../src/config';
import { csvLine, EXPORT_BATCH, EXPORT_FIELDS, neutraliseFormula } from '../src/compliance/export';
import { canonicalColumnsSql } from '../src/execution-log/entry-encoding';
import { TrailVerifier, verifyTrail } from '../src/execution-log/trail';
import { makeTrader } from './factories';
import { createTestDatabase, listenApp, SERVICE, StatementCounter, startTestApp, type TestApp } from './harness';
import { TEST_LOG_KEY } from './log-key';

/** Issue 9 point 4: the streamed export of a trail over HTTP (NDJSON and CSV), its roles, and its cost. */
const SECRET = 'an-export-test-secret-of-at-least-32-characters';
const cfg = parseConfig({ NODE_ENV: 'test' });

interface Served {
  base: string;
  pool: Pool;
  statements: StatementCounter;
  close(): Promise<void>;
}

/** The real HTTP application (createApp) on its own pool, as the server runs it. */
async function serve(url: string, poolMax = 3): Promise<Served> {
  // Each read commits on its own: the statements checked below are an export's own (test/read-commit.test.ts).
  const ds = new DataSource(
    dataSourceOptions(url, poolMax, false, { preparedStatements: cfg.preparedStatements, readCommitDelayMs: 0 }),
  );
  await ds.initialize();
  const pool = (ds.driver as unknown as { master: Pool }).master;
  const statements = new StatementCounter();
  statements.attach(pool);
  const app = await listenApp(ds, cfg, createVerifier(cfg, SECRET));
  return {
    base: app.base,
    pool,
    statements,
    async close() {
      await app.close();
      await ds.destroy();
    },
  };
}

const token = (role: Role, sub: string = `export-test-${role}`) => mintToken(SECRET, { sub, role });
/**
 * A GET on a connection of its own (`Connection: close`). The 100,000-row tests parse their download in one
 * go, which holds the event loop past the server's keep-alive timeout: a kept-alive connection the server
 * has closed meanwhile could carry the next request and fail it with ECONNRESET.
 */
const get = async (base: string, url: string, bearer?: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${url}`, {
    headers: { connection: 'close', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}), ...headers },
  });
const ndjsonLines = (text: string) => text.split('\n').filter((l) => l !== '');
const records = (text: string) => ndjsonLines(text).map((l) => JSON.parse(l) as Record<string, any>);
/** Any line break outside quotes ends a record, as in a spreadsheet: a field with a bare LF must be quoted. */
const csvRows = (text: string) =>
  parse(text, { bom: true, columns: true, record_delimiter: ['\r\n', '\n', '\r'] }) as Record<string, string>[];
const countBy = (rows: Record<string, unknown>[], key: string) => {
  const counts: Record<string, number> = {};
  for (const r of rows) counts[String(r[key])] = (counts[String(r[key])] ?? 0) + 1;
  return counts;
};
const poolIdle = (pool: Pool) => pool.totalCount > 0 && pool.idleCount === pool.totalCount && pool.waitingCount === 0;
async function until(condition: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!condition() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return condition();
}

/** A database of its own for a describe block: the test app (GraphQL as a gateway, the integrator) and the HTTP env.app. */
function ownDatabase(): { app: TestApp; http: Served } {
  const env = {} as { app: TestApp; http: Served; drop?: () => Promise<void> };
  beforeAll(async () => {
    const db = await createTestDatabase();
    env.drop = db.drop;
    env.app = await startTestApp(db.url);
    env.http = await serve(db.url);
  });
  afterAll(async () => {
    await env.http?.close();
    await env.app?.close();
    await env.drop?.();
  });
  return env;
}

describe('exporting trails (small data, over HTTP)', () => {
  const env = ownDatabase();
  let dir: string;
  let alice: string;
  let bob: string;
  /** Alice's orders: o1 buys 10 (position p1), o2 sells 20 in two fills (closes p1, opens p2), o3 and o4 are cancelled, o5 is newer than the checkpoint. */
  const o: Record<string, string> = {};
  let p1: string;
  let p2: string;
  let bobOrder: string;
  let bobPosition: string;
  let latestNote: string;

  const gql = async (query: string, variables: Record<string, unknown>) => {
    const res = await env.app.run(query, variables, SERVICE);
    if (res.errors) throw new Error(JSON.stringify(res.errors));
    return res.data as any;
  };
  let n = 0;
  const submit = async (traderId: string, input: Record<string, unknown> = {}) =>
    (
      await gql(`mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`, {
        input: {
          traderId,
          clientOrderId: `E-${++n}`,
          symbol: 'AAPL',
          side: 'BUY',
          orderType: 'MARKET',
          quantity: '10',
          ...input,
        },
      })
    ).submitOrder.id as string;
  const fill = (orderId: string, quantity: string, price: string, execId = `EX-${++n}`) =>
    gql(`mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`, {
      input: {
        orderId,
        execId,
        venue: 'XNAS',
        quantity,
        price,
        executedAt: new Date(Date.UTC(2026, 0, 2, 15, 0, ++n)).toISOString(),
      },
    });
  const cancel = (orderId: string, reason: string) =>
    gql(`mutation($orderId: ID!, $reason: String) { cancelOrder(orderId: $orderId, reason: $reason) { status } }`, {
      orderId,
      reason,
    });
  /** What the database holds for some orders, read as a superuser: the oracle the exports are checked against. */
  const expected = async (orderIds: string[]) => {
    const [row] = await env.app.dataSource.query(
      `SELECT (SELECT count(*)::int FROM fills WHERE order_id = ANY($1::uuid[])) AS fills,
              (SELECT count(*)::int FROM fill_corrections c JOIN fills f ON f.id = c.fill_id WHERE f.order_id = ANY($1::uuid[])) AS corrections,
              (SELECT count(*)::int FROM execution_logs WHERE order_id = ANY($1::uuid[])) AS entries`,
      [orderIds],
    );
    return { orders: orderIds.length, ...row } as {
      orders: number;
      fills: number;
      corrections: number;
      entries: number;
    };
  };
  const createdAt = async (orderId: string): Promise<string> =>
    (
      await env.app.dataSource.query(
        `SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS t FROM orders WHERE id = $1`,
        [orderId],
      )
    )[0].t;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-export-'));
    alice = (await makeTrader(env.app.dataSource.manager, { name: 'Alice' })).id;
    bob = (await makeTrader(env.app.dataSource.manager, { name: 'Bob' })).id;

    o.o1 = await submit(alice);
    await fill(o.o1, '10', '100.123456789', 'EX-CORRECTED');
    o.o2 = await submit(alice, { side: 'SELL', quantity: '20' });
    await fill(o.o2, '10', '101');
    await fill(o.o2, '10', '102');
    await gql(`mutation($input: CorrectExecutionInput!) { correctExecution(input: $input) { status } }`, {
      input: {
        correctionId: 'C-1',
        execId: 'EX-CORRECTED',
        venue: 'XNAS',
        price: '100.5',
        reason: 'venue price correction',
      },
    });
    o.o3 = await submit(alice, { symbol: 'MSFT', clientOrderId: '@SUM(1+1)' });
    await cancel(o.o3, '=HYPERLINK("http://evil.example","click")');
    o.o4 = await submit(alice, { symbol: 'MSFT' });
    await cancel(o.o4, '-1.5');
    bobOrder = await submit(bob);
    await fill(bobOrder, '10', '99');
    const positions = await env.app.dataSource.query(
      `SELECT order_id, position_id FROM fills WHERE order_id = ANY($1::uuid[]) ORDER BY arrival`,
      [[o.o1, o.o2, bobOrder]],
    );
    [p1, , p2, bobPosition] = positions.map((r: { position_id: string }) => r.position_id);
    await env.app.integrator.integrateAll();
    latestNote = (await env.app.dataSource.query(`SELECT note FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1`))[0]
      .note;
    // After the checkpoint: its entry is pending in every export.
    o.o5 = await submit(alice, { symbol: 'NVDA' });
  }, 120_000);
  afterAll(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('sets the flip up as the tests expect: p1 and p2 are two positions, o2 linked to p1 with a fill in p2', async () => {
    expect(p1).toBeTruthy();
    expect(p2).toBeTruthy();
    expect(p2).not.toBe(p1);
    const [{ position_id }] = await env.app.dataSource.query(`SELECT position_id FROM orders WHERE id = $1`, [o.o2]);
    expect(position_id).toBe(p1);
  });

  it('exports an order as an NDJSON trail that the offline verifier accepts', async () => {
    const res = await get(env.http.base, `/export/orders/${o.o1}`, await token('compliance'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="tradetrail-order-${o.o1}.ndjson"`);
    const text = await res.text();
    const recs = records(text);
    expect(recs.map((r) => r.type)).toEqual([
      'header',
      'checkpoint',
      'order',
      'fill',
      ...recs.filter((r) => r.type === 'entry').map(() => 'entry'),
      'end',
    ]);
    expect(recs[0]).toMatchObject({ format: 'tradetrail-trail', version: 1 });
    expect(recs[1].note).toBe(latestNote);
    const [dbOrder] = await env.app.dataSource.query(
      `SELECT quantity::text AS q, filled_quantity::text AS f, average_fill_price::text AS a FROM orders WHERE id = $1`,
      [o.o1],
    );
    expect(recs[2]).toMatchObject({ id: o.o1, traderId: alice, quantity: dbOrder.q, filledQuantity: dbOrder.f });
    expect(recs[2].averageFillPrice).toBe(dbOrder.a);
    // The fill as recorded (numbers as stored, never floats), with its correction.
    expect(recs[3]).toMatchObject({
      orderId: o.o1,
      execId: 'EX-CORRECTED',
      quantity: '10.000000000',
      price: '100.123456789',
    });
    expect(recs[3].corrections).toEqual([
      expect.objectContaining({
        correctionId: 'C-1',
        kind: 'CORRECTION',
        price: '100.500000000',
        previousPrice: '100.123456789',
      }),
    ]);
    const entries = recs.filter((r) => r.type === 'entry');
    expect(entries.map((e) => e.entry.seq)).toEqual(entries.map((_, i) => i + 1));
    expect(entries.length).toBe((await expected([o.o1])).entries);
    const report = verifyTrail(ndjsonLines(text), TEST_LOG_KEY);
    expect(report).toMatchObject({ valid: true, entries: entries.length, proven: entries.length, pending: 0 });
    expect(recs[recs.length - 1]).toEqual({
      type: 'end',
      orders: 1,
      fills: 1,
      corrections: 1,
      entries: entries.length,
      proven: entries.length,
    });

    const file = path.join(dir, 'order.ndjson');
    writeFileSync(file, text);
    const out: string[] = [];
    const code = await verifyCli(['--public-key', TEST_LOG_KEY.verifierKey, file], {
      out: (t) => out.push(t),
      err: (t) => out.push(t),
    });
    expect(out.join('\n')).toContain('VALID');
    expect(code).toBe(0);
  });

  it('exports a position: the orders linked to it and the orders with a fill in it, each with its whole chain', async () => {
    const bearer = await token('compliance');
    const ordersOf = async (positionId: string) => {
      const res = await get(env.http.base, `/export/positions/${positionId}`, bearer);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(verifyTrail(ndjsonLines(text), TEST_LOG_KEY).valid).toBe(true);
      return records(text);
    };
    const first = await ordersOf(p1);
    expect(first.filter((r) => r.type === 'order').map((r) => r.id)).toEqual([o.o1, o.o2]);
    const second = await ordersOf(p2);
    // o2 is linked to p1 (its first fill's position) but its second fill opened p2.
    expect(second.filter((r) => r.type === 'order').map((r) => r.id)).toEqual([o.o2]);
    expect(second.filter((r) => r.type === 'fill').map((r) => r.positionId)).toEqual([p1, p2]);
    const want = await expected([o.o2]);
    expect(second.filter((r) => r.type === 'entry').length).toBe(want.entries);
    expect(second.filter((r) => r.type === 'fill').length).toBe(want.fills);
  });

  it('exports a trader, all or over [from, to) by creation time, with entries newer than the checkpoint pending', async () => {
    const bearer = await token('trader', alice);
    const all = await get(env.http.base, `/export/traders/${alice}`, bearer);
    expect(all.status).toBe(200);
    const text = await all.text();
    const recs = records(text);
    const ids = [o.o1, o.o2, o.o3, o.o4, o.o5];
    expect(recs.filter((r) => r.type === 'order').map((r) => r.id)).toEqual(ids);
    const want = await expected(ids);
    expect(recs[recs.length - 1]).toMatchObject({ type: 'end', ...want });
    const report = verifyTrail(ndjsonLines(text), TEST_LOG_KEY);
    expect(report.valid).toBe(true);
    expect(report.pending).toBe(1);
    expect(report.proven).toBe(want.entries - 1);
    const pending = recs.filter((r) => r.type === 'entry' && r.leafIndex === null);
    expect(pending.map((r) => r.entry.orderId)).toEqual([o.o5]);

    // Microseconds count: from is o2's creation time exactly (included), to is o4's (excluded).
    const from = await createdAt(o.o2);
    const to = await createdAt(o.o4);
    const ranged = await get(env.http.base, `/export/traders/${alice}?from=${from}&to=${to}`, bearer);
    expect(ranged.status).toBe(200);
    const rangedText = await ranged.text();
    expect(
      records(rangedText)
        .filter((r) => r.type === 'order')
        .map((r) => r.id),
    ).toEqual([o.o2, o.o3]);
    expect(verifyTrail(ndjsonLines(rangedText), TEST_LOG_KEY).valid).toBe(true);
    const empty = records(
      await (await get(env.http.base, `/export/traders/${alice}?from=2001-01-01&to=2001-01-02`, bearer)).text(),
    );
    expect(empty.map((r) => r.type)).toEqual(['header', 'checkpoint', 'end']);
  });

  it('exports CSV with a header row, one row per order, fill, correction and entry, quoted per RFC 4180 and with formulas neutralised', async () => {
    const bearer = await token('compliance');
    const res = await get(env.http.base, `/export/traders/${alice}?format=csv`, bearer);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="tradetrail-trader-${alice}.csv"`);
    const text = await res.text();
    const header = text
      .replace(/^\ufeff/, '')
      .split('\r\n')[0]
      .split(',');
    expect(header.slice(0, 5)).toEqual(['record_type', 'id', 'order_id', 'fill_id', 'trader_id']);
    expect(header).toEqual(
      expect.arrayContaining(['quantity', 'price', 'exec_id', 'seq', 'hash', 'leaf_index', 'inclusion_proof', 'note']),
    );
    const rows = csvRows(text);
    const want = await expected([o.o1, o.o2, o.o3, o.o4, o.o5]);
    expect(countBy(rows, 'record_type')).toEqual({
      checkpoint: 1,
      order: want.orders,
      fill: want.fills,
      correction: want.corrections,
      log_entry: want.entries,
    });
    // The checkpoint's note has line breaks: quoted, it comes back whole.
    expect(rows[0]).toMatchObject({ record_type: 'checkpoint', note: latestNote });
    const order3 = rows.find((r) => r.record_type === 'order' && r.id === o.o3)!;
    expect(order3.client_order_id).toBe("'@SUM(1+1)");
    expect(order3.quantity).toBe('10.000000000');
    const reasons = rows.filter((r) => r.record_type === 'log_entry' && r.action === 'CANCELLED').map((r) => r.reason);
    expect(reasons).toEqual([`'=HYPERLINK("http://evil.example","click")`, '-1.5']);
    expect(text).toContain(`"'=HYPERLINK(""http://evil.example"",""click"")"`);
    const correction = rows.find((r) => r.record_type === 'correction')!;
    expect(correction).toMatchObject({
      order_id: o.o1,
      correction_id: 'C-1',
      price: '100.500000000',
      previous_price: '100.123456789',
    });
    const proven = rows.filter((r) => r.record_type === 'log_entry' && r.leaf_index !== '');
    expect(proven.length).toBe(want.entries - 1);
    expect(proven[0].inclusion_proof).toMatch(/^[0-9a-f]{64}( [0-9a-f]{64})*$/);

    // Accept: text/csv chooses CSV too; an order and a position give their rows only.
    const byAccept = await get(env.http.base, `/export/orders/${o.o2}`, bearer, { accept: 'text/csv' });
    expect(byAccept.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const orderRows = csvRows(await byAccept.text());
    const o2 = await expected([o.o2]);
    expect(countBy(orderRows, 'record_type')).toEqual({
      checkpoint: 1,
      order: 1,
      fill: o2.fills,
      log_entry: o2.entries,
    });
    const positionRows = csvRows(await (await get(env.http.base, `/export/positions/${p1}?format=csv`, bearer)).text());
    expect(positionRows.filter((r) => r.record_type === 'order').map((r) => r.id)).toEqual([o.o1, o.o2]);
  });

  it('allows traders their own trail only, refuses gateways, and answers bad requests before reading', async () => {
    const aliceToken = await token('trader', alice);
    const cases: [string, string | undefined, number, string | null][] = [
      [`/export/traders/${alice}`, aliceToken, 200, null],
      [`/export/orders/${o.o1}?format=csv`, aliceToken, 200, null],
      [`/export/positions/${p1}`, aliceToken, 200, null],
      [`/export/traders/${bob}`, aliceToken, 403, 'FORBIDDEN'],
      [`/export/orders/${bobOrder}`, aliceToken, 404, 'NOT_FOUND'],
      [`/export/positions/${bobPosition}`, aliceToken, 404, 'NOT_FOUND'],
      [`/export/orders/${o.o1}`, await token('service'), 403, 'FORBIDDEN'],
      [`/export/traders/${alice}`, await token('admin'), 200, null],
      [`/export/orders/${o.o1}`, undefined, 401, 'UNAUTHENTICATED'],
      [`/export/orders/${o.o1}`, 'not-a-token', 401, 'UNAUTHENTICATED'],
      [`/export/orders/00000000-0000-4000-8000-000000000000`, await token('compliance'), 404, 'NOT_FOUND'],
      [`/export/orders/42`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?format=xlsx`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?from=yesterday`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?from=2026-02-30`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?from=2026-11-25T10:00:00`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?from=2026-11-26&to=2026-11-25`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?format=csv&format=ndjson`, await token('compliance'), 400, 'BAD_USER_INPUT'],
      [`/export/orders/${o.o1}?frm=2026-11-25`, await token('compliance'), 400, 'BAD_USER_INPUT'],
    ];
    for (const [url, bearer, status, code] of cases) {
      const res = await get(env.http.base, url, bearer);
      const body = await res.text();
      expect({ url, status: res.status }).toEqual({ url, status });
      if (code) {
        expect(res.headers.get('content-type')).toMatch(/^application\/json/);
        const parsed = JSON.parse(body);
        expect(parsed.errors[0].extensions.code).toBe(code);
        expect(parsed.errors[0].message).toEqual(expect.any(String));
        expect(body).not.toMatch(/SELECT|at .*\.ts/);
      }
    }
    // Refusals hold no connection.
    expect(await until(() => poolIdle(env.http.pool))).toBe(true);
  });

  // Last in this block: it adds a trader and orders the tests above do not expect.
  it('writes every record as PostgreSQL’s row_to_json writes it, awkward text, corrections and pending entries included', async () => {
    const carol = (await makeTrader(env.app.dataSource.manager, { name: 'Carol' })).id;
    const awkward = await submit(carol, { clientOrderId: 'naïve "q" \\\\ 日本 😀', quantity: '12.000000001' });
    await fill(awkward, '3.5', '0.000000001', 'EX-AWK');
    await gql(`mutation($input: CorrectExecutionInput!) { correctExecution(input: $input) { status } }`, {
      input: {
        correctionId: 'C-AWK',
        execId: 'EX-AWK',
        venue: 'XNAS',
        price: '12345678.9',
        reason: '+"quoted",\nline',
      },
    });
    await cancel(awkward, 'tab\there, bell \u0007, CR\r, emoji 😀, backslash \\');
    const plain = await submit(carol, { symbol: 'MSFT', clientOrderId: 'comma,only' });
    await fill(plain, '1', '99.99');

    // The reference: each record as the export's earlier version had PostgreSQL write it (row_to_json,
    // numerics as their text, times by to_char), from the same columns.
    const db = env.app.dataSource;
    const columns = async (fields: readonly (readonly [string, string])[], from: string) => {
      const [types] = (await db.query(
        `SELECT ${fields.map(([, sql], i) => `pg_typeof(${sql})::text AS t${i}`).join(', ')} FROM ${from} LIMIT 1`,
      )) as Record<string, string>[];
      return fields
        .map(([key, sql], i) => {
          const type = types[`t${i}`];
          const expression =
            type === 'numeric'
              ? `${sql}::text`
              : type === 'timestamp with time zone'
                ? `to_char(${sql} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
                : sql;
          return `${expression} AS "${key}"`;
        })
        .join(', ');
    };
    const byId = async (sql: string) =>
      new Map(((await db.query(sql, [carol])) as { id: string; json: string }[]).map((r) => [r.id, r.json]));
    const orders = await byId(
      `SELECT o.id, row_to_json(r)::text AS json FROM orders o
       CROSS JOIN LATERAL (SELECT ${await columns(EXPORT_FIELDS.order, 'orders o')}) r WHERE o.trader_id = $1`,
    );
    const fills = await byId(
      `SELECT f.id, row_to_json(r)::text AS json FROM fills f CROSS JOIN LATERAL (SELECT ${await columns(EXPORT_FIELDS.fill, 'fills f')},
         coalesce((SELECT json_agg(row_to_json(cr) ORDER BY c.seq) FROM fill_corrections c
           CROSS JOIN LATERAL (SELECT ${await columns(EXPORT_FIELDS.correction, 'fill_corrections c')}) cr
           WHERE c.fill_id = f.id), '[]') AS "corrections") r WHERE f.trader_id = $1`,
    );
    const entries = await byId(
      `SELECT l.id, row_to_json(r)::text AS json FROM execution_logs l
       CROSS JOIN LATERAL (SELECT ${canonicalColumnsSql('l')}) r WHERE l.trader_id = $1`,
    );
    expect([orders.size, fills.size, entries.size]).toEqual([2, 2, (await expected([awkward, plain])).entries]);

    const bearer = await token('compliance');
    const lines = ndjsonLines(await (await get(env.http.base, `/export/traders/${carol}`, bearer)).text());
    const seen = { order: 0, fill: 0, entry: 0 };
    for (const line of lines) {
      const record = JSON.parse(line) as Record<string, any>;
      if (record.type === 'order' || record.type === 'fill') {
        const json = (record.type === 'order' ? orders : fills).get(record.id)!;
        expect(line).toBe(`{"type":"${record.type}",${json.slice(1)}`);
        seen[record.type as 'order' | 'fill'] += 1;
      } else if (record.type === 'entry') {
        expect(line).toBe(
          `{"type":"entry","entry":${entries.get(record.entry.id)},"leafIndex":null,"inclusionProof":null}`,
        );
        seen.entry += 1;
      }
    }
    expect(seen).toEqual({ order: 2, fill: 2, entry: entries.size });
    const awkwardOrder = lines.map((l) => JSON.parse(l) as Record<string, any>).find((r) => r.id === awkward)!;
    expect(awkwardOrder.clientOrderId).toBe('naïve "q" \\\\ 日本 😀');

    // CSV: every cell the value of that JSON (null empty, numbers as printed, formulas neutralised,
    // details as compact JSON), and quoted wherever needed, or the rows would not parse back.
    const rows = csvRows(await (await get(env.http.base, `/export/traders/${carol}?format=csv`, bearer)).text());
    const cell = (value: unknown) =>
      value === null || value === undefined
        ? ''
        : typeof value === 'string'
          ? neutraliseFormula(value)
          : typeof value === 'number'
            ? String(value)
            : JSON.stringify(value);
    const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    const sameCells = (row: Record<string, string>, json: string, skip: string[] = []) => {
      const values = JSON.parse(json) as Record<string, unknown>;
      for (const [key, value] of Object.entries(values)) {
        if (!skip.includes(key)) expect([key, row[snake(key)]]).toEqual([key, cell(value)]);
      }
      return values;
    };
    expect(countBy(rows, 'record_type')).toEqual({
      checkpoint: 1,
      order: 2,
      fill: 2,
      correction: 1,
      log_entry: entries.size,
    });
    for (const row of rows) {
      if (row.record_type === 'order') sameCells(row, orders.get(row.id)!);
      else if (row.record_type === 'fill') sameCells(row, fills.get(row.id)!, ['corrections']);
      else if (row.record_type === 'correction') {
        const fill = JSON.parse(fills.get(row.fill_id)!) as { corrections: Record<string, unknown>[]; orderId: string };
        sameCells(row, JSON.stringify(fill.corrections.find((c) => c.id === row.id)));
        expect(row.order_id).toBe(fill.orderId);
      } else if (row.record_type === 'log_entry') sameCells(row, entries.get(row.id)!);
    }
    expect(rows.find((r) => r.record_type === 'correction')!.reason).toBe(`'+"quoted",\nline`);
  });
});

describe('exporting before any checkpoint', () => {
  const env = ownDatabase();
  it('still exports, with every entry pending and no checkpoint record, which the verifier does not call valid', async () => {
    const traderId = (await makeTrader(env.app.dataSource.manager)).id;
    const res = await env.app.run(
      `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`,
      { input: { traderId, clientOrderId: 'N-1', symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity: '1' } },
      SERVICE,
    );
    const orderId = (res.data as any).submitOrder.id;
    const out = await get(env.http.base, `/export/orders/${orderId}`, await token('compliance'));
    expect(out.status).toBe(200);
    expect(out.headers.get('x-tradetrail-checkpoint')).toBe('none');
    const text = await out.text();
    const recs = records(text);
    expect(recs.map((r) => r.type)).toEqual(['header', 'order', 'entry', 'end']);
    expect(recs[2]).toMatchObject({ leafIndex: null, inclusionProof: null });
    const report = verifyTrail(ndjsonLines(text), TEST_LOG_KEY);
    expect(report).toMatchObject({ valid: false, entries: 1, pending: 1, proven: 0 });
    // Nothing in it is proven, so the verifier does not call it valid (it still checks the chains).
    expect(report.problems.map((p) => p.message)).toEqual([
      'The trail has entries before its checkpoint record: the checkpoint must come first.',
      'The trail has no checkpoint record.',
    ]);
    const csv = csvRows(
      await (await get(env.http.base, `/export/orders/${orderId}?format=csv`, await token('compliance'))).text(),
    );
    expect(csv.map((r) => r.record_type)).toEqual(['order', 'log_entry']);
  });
});

describe('exporting 100,000 rows', () => {
  const env = ownDatabase();
  let traderId: string;
  let other: string;
  let someOrder: string;
  const ORDERS = 20_000; // × (1 order + 2 fills + 2 entries) = 100,000 rows
  beforeAll(async () => {
    ({ traderId } = await buildExportData(env.app.dataSource, { orders: ORDERS }));
    other = (await makeTrader(env.app.dataSource.manager)).id;
    await env.app.integrator.integrateAll();
    await env.app.dataSource.query('ANALYZE');
    someOrder = (await env.app.dataSource.query(`SELECT id FROM orders WHERE trader_id = $1 LIMIT 1`, [traderId]))[0]
      .id;
  }, 180_000);
  it('streams a trader’s 100,000 rows as a valid trail, in a constant number of statements per 1,000 rows', async () => {
    env.http.statements.reset();
    const res = await get(env.http.base, `/export/traders/${traderId}`, await token('trader', traderId));
    expect(res.status).toBe(200);
    // Verified as it arrives, line by line (the verifier keeps per order only its last hash).
    const verifier = new TrailVerifier(TEST_LOG_KEY);
    const types: Record<string, number> = {};
    const decoder = new TextDecoder();
    let rest = '';
    const take = (line: string) => {
      if (!line) return;
      verifier.push(line);
      const type = /^\{"type":"(\w+)"/.exec(line)![1];
      types[type] = (types[type] ?? 0) + 1;
    };
    for await (const chunk of res.body!) {
      const lines = (rest + decoder.decode(chunk as Uint8Array, { stream: true })).split('\n');
      rest = lines.pop()!;
      lines.forEach(take);
    }
    take(rest);
    expect(types).toEqual({ header: 1, checkpoint: 1, order: ORDERS, fill: 2 * ORDERS, entry: 2 * ORDERS, end: 1 });
    const report = verifier.finish();
    expect(report).toMatchObject({ valid: true, entries: 2 * ORDERS, proven: 2 * ORDERS, pending: 0 });

    // 100,000 cursor rows: 100 full FETCHes and one empty one, each with at most two more statements
    // (the leaves and the nodes of that batch's proofs); a few more to open, check and commit.
    expect(await until(() => poolIdle(env.http.pool))).toBe(true);
    const fetches = env.http.statements.log.filter((s) => s.startsWith('FETCH')).length;
    expect(fetches).toBe(Math.floor((5 * ORDERS) / EXPORT_BATCH) + 1);
    expect(env.http.statements.count).toBeLessThanOrEqual(3 * fetches + 6);
    expect(env.http.statements.clients.size).toBe(1);
    // One read-only snapshot as the trader, with the settings of every request; a server-side cursor.
    expect(env.http.statements.log[0]).toBe(
      `START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; SELECT set_config('role', 'tradetrail_app', true), ` +
        `set_config('tradetrail.role', 'trader', true), set_config('tradetrail.trader_id', '${traderId}', true), ` +
        `set_config('statement_timeout', '${cfg.statementTimeoutMs}', true), set_config('jit', 'off', true)`,
    );
    expect(
      env.http.statements.log.filter((s) => s.startsWith('DECLARE tradetrail_export BINARY NO SCROLL CURSOR')),
    ).toHaveLength(1);
    expect(env.http.statements.log[env.http.statements.log.length - 1]).toBe('COMMIT');
  });

  it('streams the same 100,000 rows as CSV', async () => {
    const res = await get(env.http.base, `/export/traders/${traderId}?format=csv`, await token('compliance'));
    expect(res.status).toBe(200);
    // Arrays, not objects: only the record type is counted.
    const rows = parse(await res.text(), { bom: true, record_delimiter: ['\r\n', '\n', '\r'] }) as string[][];
    const header = rows[0];
    const types = countBy(
      rows.slice(1).map((r) => ({ type: r[0] })),
      'type',
    );
    expect(header![0]).toBe('record_type');
    expect(types).toEqual({
      checkpoint: 1,
      order: ORDERS,
      fill: 2 * ORDERS,
      log_entry: 2 * ORDERS,
    });
  });

  it('refuses another trader', async () => {
    const bearer = await token('trader', other);
    expect((await get(env.http.base, `/export/traders/${traderId}`, bearer)).status).toBe(403);
    expect((await get(env.http.base, `/export/orders/${someOrder}`, bearer)).status).toBe(404);
    const own = records(await (await get(env.http.base, `/export/traders/${other}`, bearer)).text());
    expect(own.map((r) => r.type)).toEqual(['header', 'checkpoint', 'end']);
  });

  it('stops reading and gives the connection back when the client goes away mid-stream', async () => {
    env.http.statements.reset();
    const controller = new AbortController();
    const res = await fetch(`${env.http.base}/export/traders/${traderId}?format=csv`, {
      headers: { authorization: `Bearer ${await token('compliance')}` },
      signal: controller.signal,
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    controller.abort();
    await reader.read().catch(() => undefined);
    expect(await until(() => poolIdle(env.http.pool))).toBe(true);
    // It stopped: far fewer than the 101 FETCHes of the whole export.
    const fetches = env.http.statements.log.filter((s) => s.startsWith('FETCH')).length;
    expect(fetches).toBeGreaterThan(0);
    expect(fetches).toBeLessThan(50);
    // The connection is sound: the next export on it completes.
    const again = await get(env.http.base, `/export/orders/${someOrder}`, await token('compliance'));
    expect(records(await again.text()).map((r) => r.type)).toEqual([
      'header',
      'checkpoint',
      'order',
      'fill',
      'fill',
      'entry',
      'entry',
      'end',
    ]);
  });
});

describe('the CSV formatter', () => {
  it('writes byte for byte what csv-stringify writes with the options it stands for, awkward values included', () => {
    const values: unknown[] = [
      'plain',
      '',
      null,
      undefined,
      'a,b',
      'say "hi"',
      '"',
      ',',
      'line\nbreak',
      'cr\rcr',
      'crlf\r\n',
      '=1+2',
      '+1',
      '-1.5',
      '+2e10',
      '-x',
      '@SUM(1)',
      '\tTAB',
      '\rCR',
      '=HYPERLINK("http://evil.example","click")',
      '10.000000000',
      'ünïcødé — ✓ 😀',
      7,
      -3,
      0,
      1.5,
      true,
      false,
      { a: [1, '"x"'] },
    ];
    const rows = [values, [...values].reverse(), ['only'], [null, null]];
    const reference = stringify(rows, {
      record_delimiter: 'windows',
      quoted_match: /[\r\n]/,
      cast: { string: neutraliseFormula },
    });
    expect(rows.map(csvLine).join('')).toBe(reference);
  });
});
