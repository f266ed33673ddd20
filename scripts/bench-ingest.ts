/**
 * `npm run bench:ingest`: records executions through the GraphQL HTTP endpoint and prints fills/s
 * and latency — single `recordExecution` calls at concurrency 10, and `recordExecutions` batches of
 * 500 — with the CPU each fill cost the server and PostgreSQL (Linux /proc). Prints numbers, asserts
 * nothing. Uses DATABASE_URL when set (a scratch database is created on that server and dropped
 * afterwards), else a temporary embedded PostgreSQL.
 * Then the cost of event time: one out-of-order fill into a 1,000-fill book, and a bust.
 * Then the floor: the very statements the server sent for one recordExecution and for one batch of
 * 500 (recorded by a proxy, scripts/bench-floor.ts), replayed by pgbench — PostgreSQL alone.
 *   npm run bench:ingest -- --single 5000 --batches 40 --books 5 --floor-seconds 10
 * BENCH_CPU_PROF=DIR writes a CPU profile of the server (node --cpu-prof) into DIR;
 * BENCH_FLOOR_SCRIPTS=DIR keeps the floor's pgbench scripts.
 */
import { commandLine, usageError, wholeNumber } from './cli';

function onOff(raw: string | undefined, option: string): boolean | undefined {
  if (raw === undefined) return undefined;
  if (raw === 'on' || raw === 'off') return raw === 'on';
  return usageError(`${option} must be on or off; got ${JSON.stringify(raw)}`);
}

// The command line before the modules below load (TypeORM, autocannon): --help answers at once.
const { SINGLE, BATCHES, BOOKS, PREPARED, FLOOR_SECONDS } = commandLine(
  {
    name: 'bench:ingest',
    synopsis: '[--single N] [--batches N] [--books N] [--prepared-statements on|off] [--floor-seconds N]',
    about:
      'Records executions through the GraphQL HTTP endpoint of the real server (its own process) and prints\n' +
      'fills/s and latency: single recordExecution calls at concurrency 10, recordExecutions batches of 500;\n' +
      'then the cost of event time (an out-of-order fill into a 1,000-fill book, and a bust); then the floor:\n' +
      "the server's own statements for one recordExecution and one batch, replayed by pgbench (PostgreSQL\n" +
      'alone). Prints numbers, asserts nothing.',
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
      'floor-seconds': {
        type: 'string',
        value: 'N',
        help: 'seconds of each pgbench run of the floor (the same SQL, PostgreSQL alone); 0: no floor',
        default: '10',
      },
    },
    notes:
      'Uses DATABASE_URL when set (a scratch database on that server, dropped afterwards), else a temporary\n' +
      'embedded PostgreSQL. BENCH_CPU_PROF=DIR writes a CPU profile of the server (node --cpu-prof) into DIR.\n' +
      'The floor needs pgbench (Debian: postgresql-client); BENCH_FLOOR_SCRIPTS=DIR keeps its scripts in DIR.',
  },
  ({ values }) => ({
    SINGLE: wholeNumber(values.single, '--single', 1) ?? 5000,
    BATCHES: wholeNumber(values.batches, '--batches', 1) ?? 40,
    BOOKS: wholeNumber(values.books, '--books', 1) ?? 5,
    PREPARED: onOff(values['prepared-statements'], '--prepared-statements'),
    FLOOR_SECONDS: wholeNumber(values['floor-seconds'], '--floor-seconds', 0, 3600) ?? 10,
  }),
);

import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import autocannon from 'autocannon';
import { Client } from 'pg';
import { DataSource, type EntityManager } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { mintToken } from '../src/auth';
import { config } from '../src/config';
import { generateLogKeyPem } from '../src/execution-log/log-key';
import { scratchDatabase, startServer } from './bench-db';
import {
  pgbenchPath,
  pgbenchScript,
  perClientScript,
  type PgbenchResult,
  type RoundTrip,
  runPgbench,
  StatementRecorder,
  transactionOf,
} from './bench-floor';

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
  const keys = { jwtSecret: secret, logKeyPem: generateLogKeyPem(), token };
  const server = await startServer(scratch.url, keys, undefined, {
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

  const database = new URL(scratch.url).pathname.slice(1);
  const cpu = () => ({
    server: cpuSeconds(server.pid),
    postgres: postgresCpuSeconds(database),
    bench: process.cpuUsage(),
  });
  const cpuPerFill = (before: ReturnType<typeof cpu>, fills: number): string => {
    const after = cpu();
    const bench = process.cpuUsage(before.bench);
    const ms = (seconds: number) => ((seconds * 1000) / fills).toFixed(2);
    if (after.server === undefined || before.server === undefined) return '';
    const pg = after.postgres && before.postgres !== undefined ? after.postgres - before.postgres : undefined;
    return (
      `\n    CPU per fill: server ${ms(after.server - before.server)} ms` +
      (pg ? `, PostgreSQL ${ms(pg)} ms (its processes for this database)` : '') +
      `, load generator ${ms((bench.user + bench.system) / 1e6)} ms`
    );
  };
  let cpuBefore = cpu();
  const single = await run({
    connections: 10,
    amount: SINGLE,
    body: () => JSON.stringify({ query: RECORD, variables: { input: execution() } }),
  });
  const singleCpu = cpuPerFill(cpuBefore, SINGLE);
  cpuBefore = cpu();
  const batched = await run({
    connections: 2,
    amount: BATCHES,
    body: () =>
      JSON.stringify({ query: RECORD_MANY, variables: { inputs: Array.from({ length: BATCH_SIZE }, execution) } }),
  });
  const batchCpu = cpuPerFill(cpuBefore, BATCHES * BATCH_SIZE);

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
      `latency p50 ${single.latency.p50} ms, p99 ${single.latency.p99} ms; failed requests ${failures(single)}${singleCpu}`,
  );
  console.log(
    `  recordExecutions, batches of ${BATCH_SIZE}, concurrency 2: ${rate(BATCHES * BATCH_SIZE, batched.seconds)}; ` +
      `batch latency p50 ${batched.latency.p50} ms, p99 ${batched.latency.p99} ms; failed requests ${failures(batched)}${batchCpu}`,
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
      `p50 ${Math.round(delay.p50)} ms, p99 ${Math.round(delay.p99)} ms, max ${Math.round(delay.max)} ms (${delay.checkpoints} checkpoints)`,
  );
  await server.stop();

  if (FLOOR_SECONDS > 0) {
    await floor({
      url: scratch.url,
      ds,
      keys,
      prepared,
      orders,
      execution,
      rates: { single: SINGLE / single.seconds, batch: (BATCHES * BATCH_SIZE) / batched.seconds },
    });
  }
  console.log('');
  await ds.destroy();
  await scratch.drop();
}

/**
 * The floor: the statements the server sent for one recordExecution (one per book, 20 books) and for
 * one recordExecutions of 500, recorded by a proxy during calibration requests to a server of their
 * own, then replayed by pgbench — PostgreSQL alone, at the benchmark's concurrency (10 clients, each
 * on a book of its own, as the round-robin requests above mostly are; 2 clients for the batches,
 * which lock every book and so run one at a time, as above). Each pgbench transaction inserts fresh
 * ids and commits; a LISTEN connection reads every notification, as the server's does.
 */
async function floor(options: {
  url: string;
  ds: DataSource;
  keys: { jwtSecret: string; logKeyPem: string; token: string };
  prepared: boolean;
  orders: string[];
  execution: () => { orderId: string; execId: string };
  rates: { single: number; batch: number };
}): Promise<void> {
  const pgbench = pgbenchPath();
  if (!pgbench) {
    console.log('  floor: skipped: pgbench is not installed (Debian: apt-get install postgresql-client)');
    return;
  }
  const { url, ds, keys } = options;
  const target = new URL(url);
  const recorder = new StatementRecorder({ host: target.hostname, port: Number(target.port || 5432) });
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(await recorder.listen());
  const profile = process.env.BENCH_CPU_PROF;
  delete process.env.BENCH_CPU_PROF; // the calibration server is not profiled
  const calibration = await startServer(proxied.toString(), keys, undefined, {
    TRADETRAIL_PREPARED_STATEMENTS: String(options.prepared),
    TRADETRAIL_LOG_INTEGRATION_MS: '0',
  });
  if (profile !== undefined) process.env.BENCH_CPU_PROF = profile;
  const post = async (query: string, variables: Record<string, unknown>): Promise<void> => {
    const res = await fetch(`${calibration.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await res.json()) as { errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
  };
  // What a recorded transaction inserted that must be new in each replay: its execution ids, its
  // fills' ids and its log entries' ids (recorded since it started: nothing else writes meanwhile).
  const asAdmin = <T>(work: (m: EntityManager) => Promise<T>): Promise<T> =>
    ds.transaction(async (m) => {
      await m.query(`SET LOCAL tradetrail.role = 'admin'`);
      return work(m);
    });
  const record = async (query: string, variables: Record<string, unknown>, execIds: string[]) => {
    const [{ since }] = (await ds.query(`SELECT clock_timestamp() AS since`)) as { since: Date }[];
    const connections = await recorder.record(() => post(query, variables));
    const trips = transactionOf(connections, /INSERT INTO execution_logs/);
    if (!trips) throw new Error('the calibration request sent no transaction that the recorder could read');
    const inserted = await asAdmin(
      async (m) =>
        (await m.query(
          `SELECT id::text FROM fills WHERE exec_id = ANY($1::text[])
           UNION ALL SELECT id::text FROM execution_logs WHERE recorded_at >= $2`,
          [execIds, since],
        )) as { id: string }[],
    );
    return { trips, fresh: [...execIds, ...inserted.map((r) => r.id)] };
  };
  const shape = (trips: RoundTrip[]) => {
    const statements = trips.reduce(
      (n, t) => n + t.reduce((k, s) => k + (s.protocol === 'simple' ? s.sql.split(';').length : 1), 0),
      0,
    );
    return `${trips.length} round trips, ${statements} statements`;
  };
  let singles: { trips: RoundTrip[]; fresh: string[] }[] = [];
  let batch: { trips: RoundTrip[]; fresh: string[] };
  try {
    // The books are open (the benchmark above ran), so a replay only updates positions; one warm-up
    // call per book prepares the statements on the server's connections.
    const books = options.orders.slice(0, 20);
    for (const orderId of books) await post(RECORD, { input: { ...options.execution(), orderId } });
    singles = [];
    for (const orderId of books) {
      const input = { ...options.execution(), orderId };
      singles.push(await record(RECORD, { input }, [input.execId]));
    }
    const inputs = Array.from({ length: BATCH_SIZE }, options.execution);
    batch = await record(
      RECORD_MANY,
      { inputs },
      inputs.map((i) => i.execId),
    );
  } finally {
    await calibration.stop();
    await recorder.close();
  }

  const listener = new Client({ connectionString: url });
  await listener.connect();
  let heard = 0;
  listener.on('notification', () => (heard += 1));
  await listener.query('LISTEN tradetrail_events');
  try {
    const countFills = async (): Promise<number> =>
      asAdmin(async (m) => ((await m.query(`SELECT count(*)::int AS n FROM fills`)) as { n: number }[])[0].n);
    // The replays really write: every committed pgbench transaction inserted its fills.
    const checked = async (fillsPerTx: number, result: PgbenchResult, before: number): Promise<string> => {
      const inserted = (await countFills()) - before;
      return inserted === result.transactions * fillsPerTx
        ? `${inserted} fills inserted`
        : `${inserted} fills inserted, expected ${result.transactions * fillsPerTx}!`;
    };
    const mode = (trips: RoundTrip[]) =>
      trips.flat().some((s) => s.protocol === 'extended' && s.name !== '') ? 'prepared' : 'extended';
    let before = await countFills();
    const single = await runPgbench(
      pgbench,
      url,
      perClientScript(singles.map((s) => pgbenchScript(s.trips, s.fresh))),
      {
        clients: 10,
        seconds: FLOOR_SECONDS,
        mode: mode(singles[0].trips),
        name: 'floor-recordExecution',
      },
    );
    const singleWrites = await checked(1, single, before);
    before = await countFills();
    const many = await runPgbench(pgbench, url, pgbenchScript(batch.trips, batch.fresh), {
      clients: 2,
      seconds: FLOOR_SECONDS,
      mode: mode(batch.trips),
      name: 'floor-recordExecutions',
    });
    const manyWrites = await checked(BATCH_SIZE, many, before);
    const share = (server: number, floorRate: number) =>
      `the server above reached ${Math.round((100 * server) / floorRate)}% of it`;
    console.log(
      `  floor (PostgreSQL alone: the server's own statements, recorded by a proxy during calibration requests and replayed by\n` +
        `  pgbench ${single.version}, each transaction with fresh ids and committed, in the server's round trips (pipelines);\n` +
        `  a LISTEN connection read the ${heard} notifications; ${FLOOR_SECONDS} s per run):`,
    );
    console.log(
      `    recordExecution (${shape(singles[0].trips)}; pgbench -M ${mode(singles[0].trips)}), 10 clients, each on its own book: ` +
        `${Math.round(single.tps)} fills/s, latency avg ${single.latencyMs.toFixed(2)} ms` +
        `${single.failed ? `, ${single.failed} failed` : ''} (${singleWrites}); ${share(options.rates.single, single.tps)}`,
    );
    console.log(
      `    recordExecutions of ${BATCH_SIZE} (${shape(batch.trips)}; pgbench -M ${mode(batch.trips)}), 2 clients (each batch locks every book): ` +
        `${Math.round(many.tps * BATCH_SIZE)} fills/s (${many.tps.toFixed(1)} batches/s), latency avg ${many.latencyMs.toFixed(1)} ms` +
        `${many.failed ? `, ${many.failed} failed` : ''} (${manyWrites}); ${share(options.rates.batch, many.tps * BATCH_SIZE)}`,
    );
  } catch (error) {
    console.log(`  floor: failed: ${(error as Error).message}`);
  } finally {
    await listener.end();
  }
}

/** CPU seconds (user + system) of a process so far; undefined where /proc cannot tell (not Linux). */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

/** CPU seconds of the PostgreSQL processes serving `database` on this machine (their title names it). */
function postgresCpuSeconds(database: string): number | undefined {
  let total: number | undefined;
  for (const entry of existsSync('/proc') ? readdirSync('/proc') : []) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(` ${database} `)) continue;
    } catch {
      continue;
    }
    total = (total ?? 0) + (cpuSeconds(Number(entry)) ?? 0);
  }
  return total;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
