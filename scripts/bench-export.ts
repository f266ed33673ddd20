/**
 * `npm run bench:export [-- --rows 100000,1000000] [--baseline DIR]`: the streamed export of a trail over HTTP. Builds,
 * with set-based SQL, one trader per size with orders of 5 rows each (the order, 2 fills, 2 sealed and
 * chained log entries), integrates the entries into the Merkle tree, starts the real server in its own
 * process, and exports each trader as NDJSON and as CSV with a compliance token: rows/s, MB/s and the
 * server's peak RSS during each export (sampled from /proc/<pid>/status), to show that memory does not
 * grow with the rows, and the CPU time each export cost the server, PostgreSQL (all its processes, when
 * it runs on this machine) and this client (which reads the download), from /proc. Prints numbers, asserts nothing. Uses DATABASE_URL's server when set (a scratch
 * database, dropped afterwards), else a temporary embedded PostgreSQL. BENCH_CPU_PROF=DIR writes a CPU
 * profile of the server (node --cpu-prof) into DIR.
 *
 * `--baseline DIR` compares with another build of the server (DIR is its output directory, e.g. the
 * previous commit checked out elsewhere and built with `npx tsc -p tsconfig.build.json --outDir DIR`;
 * it must find this checkout's node_modules, e.g. through a symlink next to DIR): both servers run on
 * the same data, and each export runs on the baseline and then on this build, back to back, so that
 * both see the same load on the machine.
 *
 * `buildExportData` and `exportOnce` are exported for other benchmarks (and the export test).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { commandLine, usageError } from './cli';

/** Rows of the export per built order: the order, its 2 fills, its 2 log entries. */
export const ROWS_PER_ORDER = 5;

// Run as a script (not imported): the command line before the modules below load, so --help answers at once.
const args =
  require.main === module
    ? commandLine(
        {
          name: 'bench:export',
          synopsis: '[--rows N,N,…] [--baseline DIR]',
          about:
            'The streamed export of a trail over HTTP: builds one trader per size (orders of 5 rows each),\n' +
            'integrates the log, starts the real server in its own process and exports each trader as NDJSON and\n' +
            "as CSV with a compliance token: rows/s, MB/s, the server's peak RSS and the CPU time of the server,\n" +
            'PostgreSQL and this client. Prints numbers, asserts nothing.',
          options: {
            rows: {
              type: 'string',
              value: 'N,N,…',
              help: `the export sizes in rows, comma-separated, each at least ${ROWS_PER_ORDER}`,
              default: '100000,1000000',
            },
            baseline: {
              type: 'string',
              value: 'DIR',
              help:
                "another build's output directory (e.g. the previous commit built with `npx tsc -p\n" +
                'tsconfig.build.json --outDir DIR`, with node_modules reachable from it): both servers run\n' +
                'on the same data, each export on the baseline and then on this build',
              default: 'none',
            },
          },
          notes:
            "Uses DATABASE_URL's server when set (a scratch database, dropped afterwards), else a temporary\n" +
            'embedded PostgreSQL. BENCH_CPU_PROF=DIR writes a CPU profile of the server into DIR.',
        },
        ({ values }) => {
          const rows = (values.rows ?? '100000,1000000').split(',').map((n) => n.trim());
          if (!rows.every((n) => /^\d+$/.test(n) && Number(n) >= ROWS_PER_ORDER)) {
            usageError(
              `--rows takes a comma-separated list of whole numbers of at least ${ROWS_PER_ORDER}, e.g. 100000,1000000; got "${values.rows}"`,
            );
          }
          const baseline = values.baseline && path.resolve(values.baseline, 'src', 'index.js');
          if (baseline && !existsSync(baseline)) {
            usageError(`--baseline takes the output directory of another build (there is no ${baseline})`);
          }
          return { rows: rows.map(Number), baseline: baseline || undefined };
        },
      )
    : undefined;

import 'reflect-metadata';
import { createHash, randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { mintToken } from '../src/auth';
import { config } from '../src/config';
import { setSealKey } from '../src/execution-log/entry-encoding';
import { ExecutionLogAction } from '../src/execution-log/execution-log.entity';
import { type LogEntry, logInsertSql, logRowsJson } from '../src/execution-log/execution-log.service';
import { LogIntegrator } from '../src/execution-log/log-integrator';
import { logKeyFromSeed, logKeyPem } from '../src/execution-log/log-key';
import { OrderStatus } from '../src/order/order.entity';
import { type RunningServer, scratchDatabase, startServer } from './bench-db';

const CHUNK = 4_000;

export interface BuiltTrail {
  traderId: string;
  orders: number;
  /** Data rows an export of the trader holds (orders + fills + corrections + entries). */
  rows: number;
}

/**
 * `orders` FILLED orders of one trader (a new one unless `traderId`), each with 2 fills and 2 log
 * entries, in chunks of 4,000 orders: orders and fills by `generate_series`, entries in one
 * statement per chunk through the chain trigger (numbered and hashed by the database) and sealed with
 * the process's seal key (`setSealKey`; the server that integrates or serves them needs the same log
 * key). Orders are created 1 ms apart from `start`, so time ranges select predictable ones.
 */
export async function buildExportData(
  ds: DataSource,
  options: { orders: number; traderId?: string; start?: Date; prefix?: string },
): Promise<BuiltTrail> {
  const start = options.start ?? new Date(Date.UTC(2026, 0, 5, 14, 30));
  const prefix = options.prefix ?? randomUUID().slice(0, 8);
  const traderId =
    options.traderId ??
    (
      (await ds.query(`INSERT INTO traders (name) VALUES ($1) RETURNING id`, [`Export ${prefix}`])) as { id: string }[]
    )[0].id;
  for (let first = 0; first < options.orders; first += CHUNK) {
    const last = Math.min(options.orders, first + CHUNK) - 1;
    await ds.transaction(async (m) => {
      // Writes as an admin would, so that row-level security passes for a non-superuser owner too.
      await m.query(`SET LOCAL tradetrail.role = 'admin'`);
      const orders = (await m.query(
        `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity, status, base_status,
           filled_quantity, fill_notional, average_fill_price, submitted_at, filled_at, created_at, updated_at)
         SELECT $1, $2 || '-' || g, 'SYM' || (g % 50), CASE WHEN g % 2 = 0 THEN 'BUY'::order_side ELSE 'SELL'::order_side END,
           'MARKET', 10, 'FILLED', 'ACCEPTED', 10, 1002.5, 100.25, t, t, t, t
         FROM generate_series($3::int, $4::int) g, LATERAL (SELECT $5::timestamptz + g * interval '1 millisecond' AS t) x
         RETURNING id, created_at`,
        [traderId, prefix, first, last, start.toISOString()],
      )) as { id: string; created_at: Date }[];
      await m.query(
        `INSERT INTO fills (order_id, trader_id, symbol, exec_id, quantity, price, commission, venue, executed_at)
         SELECT o.id, o.trader_id, o.symbol, $2 || '-' || o.client_order_id || '-' || i, 5, 100 + i * 0.25, 0.01, 'XNAS',
           o.created_at + i * interval '100 microseconds'
         FROM orders o, generate_series(0, 1) i WHERE o.id = ANY($1::uuid[])`,
        [orders.map((o) => o.id), prefix],
      );
      const entries = orders.flatMap((o): LogEntry[] => [
        {
          orderId: o.id,
          traderId,
          action: ExecutionLogAction.SUBMITTED,
          toStatus: OrderStatus.PENDING,
          occurredAt: o.created_at,
        },
        {
          orderId: o.id,
          traderId,
          action: ExecutionLogAction.FILLED,
          fromStatus: OrderStatus.ACCEPTED,
          toStatus: OrderStatus.FILLED,
          details: { filledQuantity: '10', averageFillPrice: '100.25' },
          occurredAt: o.created_at,
        },
      ]);
      await m.query(logInsertSql('$1'), [logRowsJson({ actor: 'bench', source: 'BENCH' }, entries)]);
    });
  }
  return { traderId, orders: options.orders, rows: options.orders * ROWS_PER_ORDER };
}

export interface ExportMeasurement {
  status: number;
  /** Data rows received (records other than the header, checkpoint and end records / the CSV header row). */
  rows: number;
  bytes: number;
  seconds: number;
  rowsPerSecond: number;
  /** Peak RSS of process `pid` while the export ran (sampled every 20 ms), when a pid is given. */
  peakRssMb: number | null;
}

/** CPU time (user + system) of a process, in seconds (Linux); NaN when it cannot be read. */
export function cpuSeconds(pid: number): number {
  try {
    // After the command name (which may hold spaces): [0] state, [1] parent pid, [11] utime and [12] stime in clock ticks (USER_HZ, 100 per second).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * The CPU time the PostgreSQL server `ds` uses (its postmaster's children) spends from `start()` until
 * the function it returns is called, when the server runs on this machine; NaN otherwise (a server
 * elsewhere). A process that exits in between is not counted.
 */
export async function postgresCpu(ds: DataSource): Promise<() => () => number> {
  const [{ pid }] = (await ds.query(`SELECT pg_backend_pid() AS pid`)) as { pid: number }[];
  let postmaster: string;
  try {
    postmaster = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1];
  } catch {
    return () => () => NaN;
  }
  const snapshot = (): Map<string, number> => {
    const cpu = new Map<string, number>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1].split(' ');
        if (fields[1] === postmaster) cpu.set(entry, (Number(fields[11]) + Number(fields[12])) / 100);
      } catch {
        // Gone meanwhile.
      }
    }
    return cpu;
  };
  return () => {
    const before = snapshot();
    return () => {
      let total = 0;
      for (const [child, cpu] of snapshot()) total += cpu - (before.get(child) ?? 0);
      return total;
    };
  };
}

/** Resident set size of a process, in MB (Linux). */
export function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/**
 * Downloads one export (`path` such as `/export/traders/<id>?format=csv`) and measures it: rows
 * counted as they arrive (NDJSON: lines; CSV: CRLF record ends, a line break inside a quoted field being
 * a bare LF), without keeping the body. node:http rather than fetch: its web streams would cost this
 * process (which shares the cores with the server) several times more CPU per MB.
 */
export async function exportOnce(
  baseUrl: string,
  exportPath: string,
  token: string,
  serverPid?: number,
): Promise<ExportMeasurement> {
  let peak = serverPid ? rssMb(serverPid) : NaN;
  const timer = serverPid ? setInterval(() => (peak = Math.max(peak, rssMb(serverPid))), 20) : undefined;
  const t0 = process.hrtime.bigint();
  try {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) =>
      http
        .get(`${baseUrl}${exportPath}`, { headers: { authorization: `Bearer ${token}` } }, resolve)
        .on('error', reject),
    );
    const csv = (res.headers['content-type'] ?? '').startsWith('text/csv');
    let bytes = 0;
    let records = 0;
    let previous = 0;
    for await (const buf of res as AsyncIterable<Buffer>) {
      bytes += buf.length;
      for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) {
        if (!csv || (i > 0 ? buf[i - 1] : previous) === 13) records += 1;
      }
      if (buf.length) previous = buf[buf.length - 1];
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    // NDJSON: the header and end records, and the checkpoint record; CSV: the header row and the checkpoint row.
    const overhead =
      res.statusCode !== 200 ? records : (csv ? 1 : 2) + (res.headers['x-tradetrail-checkpoint'] === 'none' ? 0 : 1);
    const rows = records - overhead;
    return {
      status: res.statusCode ?? 0,
      rows,
      bytes,
      seconds,
      rowsPerSecond: rows / seconds,
      peakRssMb: serverPid ? peak : null,
    };
  } finally {
    if (timer) clearInterval(timer);
  }
}

async function main(): Promise<void> {
  const { rows: rowCounts, baseline } = args!;
  const scratch = await scratchDatabase('tt_bench_export');
  const ds = new DataSource(dataSourceOptions(scratch.url, 4, false));
  const key = logKeyFromSeed(createHash('sha256').update('bench export').digest(), 'tradetrail');
  setSealKey(key.sealKey);
  const servers: { label: string; server: RunningServer }[] = [];
  try {
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });

    const traders: BuiltTrail[] = [];
    for (const rows of rowCounts) {
      const t0 = Date.now();
      traders.push(await buildExportData(ds, { orders: Math.ceil(rows / ROWS_PER_ORDER) }));
      console.log(`  built ${traders[traders.length - 1].rows} rows in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    }
    const t1 = Date.now();
    const rounds = await new LogIntegrator(ds, key, {
      intervalMs: 0,
      log: { info: () => undefined, error: (f, msg) => console.error(msg, f) },
    }).integrateAll();
    console.log(
      `  integrated ${rounds[rounds.length - 1].treeSize} entries into the tree in ${((Date.now() - t1) / 1000).toFixed(1)} s`,
    );
    await ds.query(`VACUUM ANALYZE`);

    const secret = randomUUID() + randomUUID();
    const token = await mintToken(secret, { sub: 'bench-compliance', role: 'compliance' });
    const keys = { jwtSecret: secret, logKeyPem: logKeyPem(key) };
    if (baseline) servers.push({ label: 'baseline', server: await startServer(scratch.url, keys, baseline) });
    servers.push({ label: baseline ? 'this build' : '', server: await startServer(scratch.url, keys) });

    // Warm-up (JIT, plans), not reported.
    for (const { server } of servers) {
      await exportOnce(server.url, `/export/traders/${traders[0].traderId}?format=ndjson`, token);
      await exportOnce(server.url, `/export/traders/${traders[0].traderId}?format=csv`, token);
    }

    console.log(
      `\nTradetrail export benchmark (${os.cpus().length} cores, Node ${process.version}, PostgreSQL ${config().databaseUrl ? 'from DATABASE_URL' : 'embedded'}; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')})`,
    );
    for (const { label, server } of servers) {
      console.log(`  server RSS before the exports${label ? ` (${label})` : ''}: ${rssMb(server.pid).toFixed(0)} MB`);
    }
    const pgCpu = await postgresCpu(ds);
    const seconds = (cpu: number) => (Number.isNaN(cpu) ? 'n/a' : `${cpu.toFixed(2)} s`);
    for (const trader of traders) {
      for (const format of ['ndjson', 'csv'] as const) {
        for (const { label, server } of servers) {
          const cpu0 = { server: cpuSeconds(server.pid), pg: pgCpu(), client: process.cpuUsage() };
          const r = await exportOnce(
            server.url,
            `/export/traders/${trader.traderId}?format=${format}`,
            token,
            server.pid,
          );
          const ok =
            r.status === 200 && r.rows === trader.rows ? '' : ` (status ${r.status}, expected ${trader.rows} rows)`;
          console.log(
            `  ${format.padEnd(6)} ${String(r.rows).padStart(9)} rows, ${(r.bytes / 2 ** 20).toFixed(0).padStart(5)} MB in ` +
              `${r.seconds.toFixed(2).padStart(6)} s = ${Math.round(r.rowsPerSecond).toLocaleString('en-US').padStart(9)} rows/s, ` +
              `${(r.bytes / 2 ** 20 / r.seconds).toFixed(1)} MB/s; server peak RSS ${r.peakRssMb!.toFixed(0)} MB${ok}` +
              (label ? ` (${label})` : ''),
          );
          const client = process.cpuUsage(cpu0.client);
          console.log(
            `           CPU: server ${seconds(cpuSeconds(server.pid) - cpu0.server)}, PostgreSQL ${seconds(cpu0.pg())}, ` +
              `this client ${seconds((client.user + client.system) / 1e6)}`,
          );
        }
      }
    }
    console.log(
      `  load average after: ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    console.log('');
  } finally {
    for (const { server } of servers) await server.stop();
    if (ds.isInitialized) await ds.destroy();
    await scratch.drop();
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.stack : error);
    process.exit(1);
  });
}
