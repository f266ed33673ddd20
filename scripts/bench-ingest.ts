/**
 * `npm run bench:ingest`: records executions through the GraphQL HTTP endpoint and prints fills/s
 * and latency — single `recordExecution` calls at concurrency 10, and `recordExecutions` batches of
 * 500. Prints numbers, asserts nothing. Uses DATABASE_URL when set (a scratch database is created
 * on that server and dropped afterwards), else a temporary embedded PostgreSQL.
 * Then the cost of event time: one out-of-order fill into a 1,000-fill book, and a bust.
 *   npm run bench:ingest -- --single 5000 --batches 40 --books 5
 * BENCH_CPU_PROF=DIR writes a CPU profile of the server (node --cpu-prof) into DIR.
 */
import { commandLine, usageError, wholeNumber } from './cli';

function onOff(raw: string | undefined, option: string): boolean | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'on' || raw === 'off') return raw === 'on';
  return usageError(`${option} must be on or off; got ${JSON.stringify(raw)}`);
}

// The command line before the modules below load (TypeORM, autocannon): --help answers at once.
const { SINGLE, BATCHES, BOOKS, PREPARED } = commandLine(
  {
    name: 'bench:ingest',
    synopsis: '[--single N] [--batches N] [--books N] [--prepared-statements on|off]',
    about:
      'Records executions through the GraphQL HTTP endpoint of the real server (its own process) and prints\n' +
      'fills/s and latency: single recordExecution calls at concurrency 10, recordExecutions batches of 500;\n' +
      'then the cost of event time (an out-of-order fill into a 1,000-fill book, and a bust). Prints\n' +
      'numbers, asserts nothing.',
    options: {
      single: { type: 'string', value: 'N', help: 'single recordExecution calls', default: '5000' },
      batches: { type: 'string', value: 'N', help: 'recordExecutions calls of 500 fills each', default: '40' },
      books: {
        type: 'string',
        value: 'N',
        help: '1,000-fill books for the out-of-order fill and the bust',
        default: '5',
      },
      'prepared-statements': {
        type: 'string',
        value: 'on|off',
        help: "the server's named prepared statements (TRADETRAIL_PREPARED_STATEMENTS): off as behind PgBouncer",
        default: 'TRADETRAIL_PREPARED_STATEMENTS, else on',
      },
    },
    notes:
      'Uses DATABASE_URL when set (a scratch database on that server, dropped afterwards), else a temporary\n' +
      'embedded PostgreSQL. BENCH_CPU_PROF=DIR writes a CPU profile of the server (node --cpu-prof) into DIR.',
  },
  ({ values }) => ({
    SINGLE: wholeNumber(values.single, '--single', 1) ?? 5000,
    BATCHES: wholeNumber(values.batches, '--batches', 1) ?? 40,
    BOOKS: wholeNumber(values.books, '--books', 1) ?? 5,
    PREPARED: onOff(values['prepared-statements'], '--prepared-statements'),
  }),
);

import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import autocannon from 'autocannon';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { mintToken } from '../src/auth';
import { config } from '../src/config';
import { generateLogKeyPem } from '../src/execution-log/log-key';
import { scratchDatabase, startServer } from './bench-db';

const BATCH_SIZE = 500;
const ORDERS = 200;

const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`;
const RECORD_MANY = `mutation($inputs: [RecordExecutionInput!]!) { recordExecutions(inputs: $inputs) { applied refused } }`;
const BUST = `mutation($input: BustExecutionInput!) { bustExecution(input: $input) { status } }`;

async function main(): Promise<void> {
  const scratch = await scratchDatabase('tt_bench');

  const ds = new DataSource(dataSourceOptions(scratch.url, 20, false));
  await ds.initialize();
  await ds.runMigrations({ transaction: 'each' });
  const [{ id: traderId }] = await ds.query(`INSERT INTO traders (name) VALUES ('Bench') RETURNING id`);
  const orders: string[] = (
    await ds.query(
      `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity, status)
       SELECT $1, 'bench-' || g, 'SYM' || (g % 20), CASE WHEN g % 2 = 0 THEN 'BUY'::order_side ELSE 'SELL'::order_side END,
              'MARKET', 1000000000, 'ACCEPTED' FROM generate_series(1, $2) g RETURNING id`,
      [traderId, ORDERS],
    )
  ).map((r: { id: string }) => r.id);

  const secret = randomUUID() + randomUUID();
  const token = await mintToken(secret, { sub: 'bench-gateway', role: 'service' });
  // The server as it is deployed: its own process (the load generator must not share its event loop).
  const prepared = PREPARED ?? config().preparedStatements;
  const server = await startServer(scratch.url, { jwtSecret: secret, logKeyPem: generateLogKeyPem() }, undefined, {
    TRADETRAIL_PREPARED_STATEMENTS: String(prepared),
  });
  const { url } = server;

  let n = 0;
  const execution = () => ({
    orderId: orders[n % ORDERS],
    execId: `E${n++}-${randomUUID().slice(0, 8)}`,
    quantity: '1.5',
    price: (100 + (n % 1000) / 100).toFixed(2),
    commission: '0.01',
    executedAt: new Date().toISOString(),
  });
  // autocannon notices the end of an `amount` run on its 1-second tick, so the time is taken from
  // the last response instead.
  const run = (opts: { connections: number; amount: number; body: () => string }) =>
    new Promise<autocannon.Result & { seconds: number }>((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      let done = 0;
      let seconds = 0;
      const instance = autocannon(
        {
          url,
          connections: opts.connections,
          amount: opts.amount,
          timeout: 60,
          requests: [
            {
              method: 'POST',
              path: '/graphql',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
              setupRequest: (req) => ({ ...req, body: opts.body() }),
            },
          ],
        },
        (error, result) => (error ? reject(error) : resolve({ ...result, seconds })),
      );
      instance.on('response', () => {
        if (++done === opts.amount) seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      });
    });

  // Warm up (JIT, connections, plans).
  await run({
    connections: 4,
    amount: 200,
    body: () => JSON.stringify({ query: RECORD, variables: { input: execution() } }),
  });

  const single = await run({
    connections: 10,
    amount: SINGLE,
    body: () => JSON.stringify({ query: RECORD, variables: { input: execution() } }),
  });
  const batched = await run({
    connections: 2,
    amount: BATCHES,
    body: () =>
      JSON.stringify({ query: RECORD_MANY, variables: { inputs: Array.from({ length: BATCH_SIZE }, execution) } }),
  });

  // The cost of event time: one fill older than every fill of a 1,000-fill book (the replay covers
  // all of them), and a bust of the book's first fill; a fresh book for each of BOOKS samples.
  const post = async (query: string, variables: Record<string, unknown>): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  const lateMs: number[] = [];
  const bustMs: number[] = [];
  const base = Date.parse('2026-01-05T14:00:00Z');
  for (let b = 0; b < BOOKS; b++) {
    const [{ id: bookOrder }] = await ds.query(
      `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity, status)
       VALUES ($1, $2, $3, 'BUY', 'MARKET', 1000000000, 'ACCEPTED') RETURNING id`,
      [traderId, `book-${b}`, `BOOK${b}`],
    );
    for (let part = 0; part < 2; part++) {
      await post(RECORD_MANY, {
        inputs: Array.from({ length: 500 }, (_, i) => ({
          orderId: bookOrder,
          execId: `B${b}-${part * 500 + i}`,
          quantity: '1',
          price: (100 + ((part * 500 + i) % 97) / 100).toFixed(2),
          executedAt: new Date(base + (part * 500 + i + 1) * 1000).toISOString(),
        })),
      });
    }
    lateMs.push(
      await post(RECORD, {
        input: {
          orderId: bookOrder,
          execId: `B${b}-late`,
          quantity: '1',
          price: '99',
          executedAt: new Date(base).toISOString(),
        },
      }),
    );
    bustMs.push(
      await post(BUST, { input: { correctionId: `bust-${b}`, execId: `B${b}-0`, reason: 'benchmark bust' } }),
    );
  }
  const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);

  const [{ fills }] = await ds.query(`SELECT count(*)::int AS fills FROM fills`);
  const failures = (r: autocannon.Result) => r.non2xx + r.errors + r.timeouts;
  const rate = (fills: number, seconds: number) =>
    `${fills} fills in ${seconds.toFixed(2)} s = ${Math.round(fills / seconds)} fills/s`;
  console.log(
    `\nTradetrail ingestion benchmark (${os.cpus().length} cores, Node ${process.version}, PostgreSQL ${config().databaseUrl ? 'from DATABASE_URL' : 'embedded'}, ` +
      `prepared statements ${prepared ? 'on' : 'off'})`,
  );
  console.log(
    `  recordExecution, concurrency 10: ${rate(SINGLE, single.seconds)}; ` +
      `latency p50 ${single.latency.p50} ms, p99 ${single.latency.p99} ms; failed requests ${failures(single)}`,
  );
  console.log(
    `  recordExecutions, batches of ${BATCH_SIZE}, concurrency 2: ${rate(BATCHES * BATCH_SIZE, batched.seconds)}; ` +
      `batch latency p50 ${batched.latency.p50} ms, p99 ${batched.latency.p99} ms; failed requests ${failures(batched)}`,
  );
  console.log(
    `  one out-of-order fill before all 1,000 fills of a book (replays them all): median ${median(lateMs).toFixed(1)} ms ` +
      `(${lateMs.map((x) => x.toFixed(0)).join(', ')} ms over ${BOOKS} books)`,
  );
  console.log(
    `  bustExecution of that book's first fill (replays the book): median ${median(bustMs).toFixed(1)} ms ` +
      `(${bustMs.map((x) => x.toFixed(0)).join(', ')} ms)`,
  );
  console.log(`  fills in the database: ${fills} (expected ${200 + SINGLE + BATCHES * BATCH_SIZE + BOOKS * 1001})`);

  // The verifiable log: how long after an entry was recorded the first signed checkpoint covered it.
  const logged = async () =>
    (
      await ds.query(`SELECT (SELECT count(*) FROM execution_logs)::int AS entries,
        (SELECT tree_size FROM log_tree_state)::int AS integrated`)
    )[0] as { entries: number; integrated: number };
  const waitUntil = Date.now() + 30_000;
  let log = await logged();
  while (log.integrated < log.entries && Date.now() < waitUntil) {
    await new Promise((r) => setTimeout(r, 100));
    log = await logged();
  }
  const [delay] = await ds.query(`
    WITH d AS (
      SELECT extract(epoch FROM c.signed_at - l.recorded_at) * 1000 AS ms
      FROM log_leaves x JOIN execution_logs l ON l.id = x.entry_id
      CROSS JOIN LATERAL (SELECT signed_at FROM log_checkpoints c WHERE c.tree_size > x.leaf_index ORDER BY tree_size LIMIT 1) c)
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) AS p50, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
           max(ms) AS max, (SELECT count(*) FROM log_checkpoints)::int AS checkpoints FROM d`);
  console.log(
    `  log entries: ${log.entries}, in the signed tree: ${log.integrated}; recorded → covered by a signed checkpoint: ` +
      `p50 ${Math.round(delay.p50)} ms, p99 ${Math.round(delay.p99)} ms, max ${Math.round(delay.max)} ms (${delay.checkpoints} checkpoints)\n`,
  );

  await server.stop();
  await ds.destroy();
  await scratch.drop();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
