/**
 * `npm run bench:compliance [-- --orders 1000000]`: the compliance toolkit at scale. Builds N orders
 * with their fills, positions and sealed log entries set-based (`compliance-data.ts`, with a known set
 * of planted problems), checks a sample with the server's own `recalculateBook` and `verifyOrderLog`,
 * starts the real server in its own process, waits until its integrator has taken every entry into
 * the Merkle tree, then measures over HTTP with a compliance token: the data-quality report over the
 * whole range and over one day, the reconcile dry run, `verifyLedger`, and a 1,000,000-row export
 * (NDJSON and CSV, the largest trader), each with the server's and this process's peak RSS (sampled
 * every 50 ms). Prints numbers; exits non-zero only when the data fails its own checks. Uses
 * DATABASE_URL's server when set (a scratch database, dropped afterwards), else a
 * temporary embedded PostgreSQL.
 */
import { commandLine, keptName, keptOptions, usageError, wholeNumber } from './cli';

/** The measurements, in the order they run. */
const STEPS = ['report', 'reconcile', 'verify', 'export'] as const;
type Step = (typeof STEPS)[number];

function steps(value: string | undefined): ReadonlySet<Step> {
  if (value === undefined) return new Set(STEPS);
  const named = value.split(',').map((s) => s.trim());
  const unknown = named.filter((s) => !(STEPS as readonly string[]).includes(s));
  if (unknown.length || !named.length)
    usageError(`--only takes a comma-separated list of ${STEPS.join(', ')} (got "${value}")`);
  return new Set(named as Step[]);
}

// The command line before the modules below load (TypeORM, the services): --help answers at once.
const args = commandLine(
  {
    name: 'bench:compliance',
    synopsis: '[--orders N] [--traders N] [--statement-timeout-ms N] [--keep NAME | --reuse NAME] [--only STEPS]',
    about:
      'The compliance toolkit at scale: builds N orders with their fills, positions and sealed log entries\n' +
      "(with a known set of planted problems), checks a sample with the server's own code, starts the real\n" +
      'server, waits for its log integration, then times over HTTP the data-quality report (whole range\n' +
      'and one day), the reconcile dry run, verifyLedger and the export of the largest trader, with peak\n' +
      'RSS. Prints numbers; exits 1 only when the data fails its own checks.',
    options: {
      orders: { type: 'string', value: 'N', help: 'orders to build (at least 1000)', default: '1000000' },
      traders: {
        type: 'string',
        value: 'N',
        help: 'traders (at least 2); the first holds 15% of the orders (the export)',
        default: 'one per 1,000 orders',
      },
      'statement-timeout-ms': {
        type: 'string',
        value: 'N',
        help: "the server's TRADETRAIL_STATEMENT_TIMEOUT_MS (at least 100)",
        default: "the server's, 10000",
      },
      ...keptOptions('building (a 1,000,000-order build takes ~15 min)'),
      only: {
        type: 'string',
        value: 'STEPS',
        help: `the measurements to run, comma-separated: ${STEPS.join(', ')}`,
        default: 'all of them',
      },
    },
    notes:
      "Uses DATABASE_URL's server when set (a scratch database, dropped afterwards), else a temporary\n" +
      'embedded PostgreSQL.',
  },
  ({ values }) => ({
    orders: wholeNumber(values.orders, '--orders', 1000) ?? 1_000_000,
    traders: wholeNumber(values.traders, '--traders', 2),
    statementTimeout: wholeNumber(values['statement-timeout-ms'], '--statement-timeout-ms', 100, 3_600_000),
    keep: keptName(values.keep, '--keep'),
    reuse: keptName(values.reuse, '--reuse'),
    only: steps(values.only),
  }),
);

import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { mintToken } from '../src/auth';
import { config } from '../src/config';
import { setSealKey } from '../src/execution-log/entry-encoding';
import { generateLogKeyPem, logKeyFromPem } from '../src/execution-log/log-key';
import { cpuSeconds, exportOnce, postgresCpu, rssMb } from './bench-export';
import { keptDatabase, type RunningServer, scratchDatabase, startServer } from './bench-db';
import { buildComplianceData, checkComplianceData, type ComplianceData } from './compliance-data';

/** The peak RSS (MB) of the server process and of this one while `work` runs, sampled every 50 ms. */
async function measured<T>(
  serverPid: number,
  work: () => Promise<T>,
): Promise<{ result: T; seconds: number; serverMb: number; selfMb: number }> {
  let serverMb = rssMb(serverPid);
  let selfMb = process.memoryUsage.rss() / 2 ** 20;
  const sample = () => {
    serverMb = Math.max(serverMb, rssMb(serverPid));
    selfMb = Math.max(selfMb, process.memoryUsage.rss() / 2 ** 20);
  };
  const timer = setInterval(sample, 50);
  const t0 = process.hrtime.bigint();
  try {
    const result = await work();
    sample();
    return { result, seconds: Number(process.hrtime.bigint() - t0) / 1e9, serverMb, selfMb };
  } finally {
    clearInterval(timer);
  }
}

interface GraphQLAnswer<T> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** One GraphQL request over HTTP, with no client-side timeout (a full verification takes minutes). */
function graphql<T>(url: string, token: string, query: string, variables: object = {}): Promise<GraphQLAnswer<T>> {
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}/graphql`,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${token}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as GraphQLAnswer<T>);
          } catch {
            reject(new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A field the server does not have yet is a validation error, reported as such rather than a crash. */
const missingField = (a: GraphQLAnswer<unknown>): boolean =>
  !!a.errors?.some((e) => e.extensions?.code === 'GRAPHQL_VALIDATION_FAILED' && /Cannot query field/.test(e.message));
const errorText = (a: GraphQLAnswer<unknown>): string =>
  (missingField(a) ? 'not available (field missing): ' : 'error: ') +
  (a.errors ?? []).map((e) => `${e.extensions?.code ?? ''} ${e.message}`).join('; ');

const REPORT = `query($from: DateTimeISO, $to: DateTimeISO, $full: Boolean) { dataQualityReport(from: $from, to: $to, full: $full) {
  issueCount filledOrders linkedFilledOrders linkRate complete changedBooks changedOrders totals { type severity count } } }`;
const RECONCILE = `mutation($from: DateTimeISO, $to: DateTimeISO) { reconcile(from: $from, to: $to, apply: false) {
  proposed fixed failed deferred fixes { kinds status } leftAlone { type } } }`;
const VERIFY = `query { verifyLedger { valid treeSize checkpointSize entriesVerified pendingEntries moreProblems
  problems { kind message } } }`;
const CHECKPOINT = `query { latestCheckpoint { treeSize } }`;

interface Reconciliation {
  proposed: number;
  fixed: number;
  failed: number;
  deferred: number;
  fixes: { kinds: string[]; status: string }[];
  leftAlone: { type: string }[];
}

interface Report {
  issueCount: number;
  filledOrders: number;
  linkedFilledOrders: number;
  linkRate: number;
  complete: boolean;
  changedBooks: number | null;
  changedOrders: number | null;
  totals: { type: string; severity: string; count: number }[];
}

/** One line of the results table. */
interface Line {
  what: string;
  seconds: number | null;
  result: string;
  serverMb: number | null;
  selfMb: number | null;
}

const mb = (x: number | null) => (x === null ? '' : `${x.toFixed(0)} MB`);
const secs = (x: number | null) => (x === null ? '' : `${x.toFixed(2)} s`);

function printTable(lines: Line[]): void {
  const rows = [['what', 'wall time', 'result', 'server peak RSS', 'bench peak RSS']].concat(
    lines.map((l) => [l.what, secs(l.seconds), l.result, mb(l.serverMb), mb(l.selfMb)]),
  );
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const [n, r] of rows.entries()) {
    console.log(`  ${r.map((c, i) => (i === 1 || i > 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')}`);
    if (n === 0) console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  }
}

/** "planted 10 / found 10" per planted type (whole range only), and every other type the report found. */
function reportLine(report: Report, data: ComplianceData, whole: boolean): string {
  if (!whole) data = { ...data, planted: [] };
  const found = new Map(report.totals.map((t) => [t.type, t.count]));
  const planted = data.planted.map(
    (p) =>
      `${p.type} planted ${p.count} / found ${found.get(p.type) ?? 0}` +
      p.alsoAs.map((a) => ` (${a} found ${found.get(a) ?? 0})`).join(''),
  );
  const other = report.totals
    .filter((t) => t.count > 0 && !data.planted.some((p) => p.type === t.type || p.alsoAs.includes(t.type)))
    .map((t) => `${t.type} ${t.count}`);
  const how = report.complete
    ? 'complete check'
    : `incremental: ${report.changedBooks} books, ${report.changedOrders ?? 'every'} orders re-checked`;
  return (
    `${how}; ${report.issueCount} issues; filled orders ${report.filledOrders}, linked ${report.linkedFilledOrders} ` +
    `(link rate ${report.linkRate})${[...planted, ...(other.length ? [`found: ${other.join(', ')}`] : [])].map((x) => `; ${x}`).join('')}`
  );
}

/** The data of a kept build, its dates back from JSON. */
function reviveData(d: ComplianceData): ComplianceData {
  const day = { from: new Date(d.day.from), to: new Date(d.day.to) };
  return { ...d, from: new Date(d.from), to: new Date(d.to), day };
}

async function main(): Promise<void> {
  const { orders, traders, statementTimeout, keep, reuse, only } = args;
  const scratch =
    keep || reuse ? await keptDatabase((keep ?? reuse)!, !!keep) : await scratchDatabase('tt_bench_compliance');
  const keptFile = path.join(os.tmpdir(), `tradetrail-bench-${keep ?? reuse}.json`);
  // No slow-query warnings: the build's statements carry megabytes of JSON.
  const ds = new DataSource({ ...dataSourceOptions(scratch.url, 4, false), maxQueryExecutionTime: undefined });
  // The server's log key: the build seals entries with it, the server integrates and verifies them.
  const kept = reuse
    ? (JSON.parse(readFileSync(keptFile, 'utf8')) as { pem: string; data: ComplianceData })
    : undefined;
  const pem = kept?.pem ?? generateLogKeyPem();
  const key = logKeyFromPem(pem, 'tradetrail');
  setSealKey(key.sealKey);
  const lines: Line[] = [];
  const done = (line: Line) => {
    lines.push(line);
    console.log(`  ${line.what}: ${secs(line.seconds)}${line.result ? `, ${line.result}` : ''}`);
  };
  let server: RunningServer | undefined;
  let failed = false;
  try {
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    const [{ server_version: version }] = (await ds.query(`SHOW server_version`)) as { server_version: string }[];
    console.log(
      `Tradetrail compliance benchmark: ${orders} orders (${os.cpus().length} cores, Node ${process.version}, ` +
        `PostgreSQL ${version} ${config().databaseUrl ? 'from DATABASE_URL' : 'embedded'}; ` +
        `statement timeout ${statementTimeout ?? config().statementTimeoutMs} ms)`,
    );

    // 1. The data, and the server's own checks on a sample of it (or the data an earlier --keep built).
    let data: ComplianceData;
    if (kept) {
      data = reviveData(kept.data);
      console.log(`  reusing ${reuse}: ${data.orders} orders, ${data.fills} fills, ${data.entries} log entries`);
    } else {
      let selfPeak = 0;
      const sampler = setInterval(() => (selfPeak = Math.max(selfPeak, process.memoryUsage.rss() / 2 ** 20)), 50);
      data = await buildComplianceData(ds, { orders, traders, anomalies: true, largestTraderShare: 0.15 });
      clearInterval(sampler);
      done({
        what: 'build (set-based)',
        seconds: data.seconds,
        result:
          `${data.orders} orders, ${data.fills} fills, ${data.positions} positions, ${data.entries} log entries ` +
          `= ${Math.round(data.rowsPerSecond)} rows/s; ` +
          Object.entries(data.ordersByStatus)
            .sort(([, a], [, b]) => b - a)
            .map(([s, n]) => `${s} ${n}`)
            .join(', '),
        serverMb: null,
        selfMb: selfPeak,
      });
      const t1 = Date.now();
      await ds.query(`VACUUM ANALYZE`);
      done({ what: 'VACUUM ANALYZE', seconds: (Date.now() - t1) / 1000, result: '', serverMb: null, selfMb: null });
      const t2 = Date.now();
      const check = await checkComplianceData(ds, data, key, { books: 50, orders: 200, replays: 3 });
      const checkOk =
        check.booksUnchanged === check.books &&
        check.anomalyBooksChanged === check.anomalyBooks &&
        check.ordersValid === check.orders &&
        check.replayedDifferent === 0;
      failed ||= !checkOk;
      done({
        what: 'sample checks (server code)',
        seconds: (Date.now() - t2) / 1000,
        result:
          `recalculateBook: ${check.booksUnchanged}/${check.books} books unchanged, ${check.anomalyBooksChanged}/${check.anomalyBooks} ` +
          `tampered books it would correct; verifyOrderLog: ${check.ordersValid}/${check.orders} orders valid; ` +
          `${check.replayed - check.replayedDifferent}/${check.replayed} books identical when replayed through the services` +
          (checkOk ? '' : ' — FAILED'),
        serverMb: null,
        selfMb: null,
      });
      for (const f of check.failures.slice(0, 8)) console.error(`  check failed: ${f}`);
      if (keep) writeFileSync(keptFile, JSON.stringify({ pem, data: { ...data, books: [] } }));
    }

    // 2. The server, as deployed: its own process, a token key and the log key through the environment.
    const secret = randomUUID() + randomUUID();
    const token = await mintToken(secret, { sub: 'bench-compliance', role: 'compliance' });
    const adminToken = await mintToken(secret, { sub: 'bench-admin', role: 'admin' });
    const t3 = Date.now();
    server = await startServer(
      scratch.url,
      { jwtSecret: secret, logKeyPem: pem },
      undefined,
      statementTimeout ? { TRADETRAIL_STATEMENT_TIMEOUT_MS: String(statementTimeout) } : {},
    );
    const { pid, url } = server;

    // 3. Integration of every entry into the tree, by the server's integrator.
    const integration = await measured(pid, async () => {
      let last = Date.now();
      let progress = { size: -1, at: Date.now() };
      for (;;) {
        const a = await graphql<{ latestCheckpoint: { treeSize: number } | null }>(url, token, CHECKPOINT);
        const size = a.data?.latestCheckpoint?.treeSize ?? 0;
        if (size >= data.entries) return size;
        if (a.errors) throw new Error(errorText(a));
        if (size !== progress.size) progress = { size, at: Date.now() };
        if (Date.now() - progress.at > 300_000)
          throw new Error(`integration stalled at ${size} of ${data.entries} entries`);
        if (Date.now() - last > 15_000) {
          last = Date.now();
          console.log(`  integrating: ${size} of ${data.entries} entries (${((Date.now() - t3) / 1000).toFixed(0)} s)`);
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    });
    const integrated = integration.result;
    done({
      what: 'server start + log integration',
      seconds: (Date.now() - t3) / 1000,
      result: `${integrated} entries in the signed tree = ${Math.round(integrated / integration.seconds)} entries/s`,
      serverMb: integration.serverMb,
      selfMb: integration.selfMb,
    });

    // 4. The compliance toolkit over HTTP.
    const range = { from: data.from.toISOString(), to: data.to.toISOString() };
    const day = { from: data.day.from.toISOString(), to: data.day.to.toISOString() };
    const report = async (what: string, variables: object, whole: boolean) => {
      const r = await measured(pid, () => graphql<{ dataQualityReport: Report }>(url, token, REPORT, variables));
      const answer = r.result;
      done({
        what,
        seconds: r.seconds,
        result: answer.data ? reportLine(answer.data.dataQualityReport, data, whole) : errorText(answer),
        serverMb: r.serverMb,
        selfMb: r.selfMb,
      });
    };
    // The first report checks everything and keeps its result as the baseline; the next ones re-check
    // only what changed since (nothing here, so they measure the change detection).
    if (only.has('report')) {
      await report(`dataQualityReport(full: true), whole range (${SPAN(data)})`, { ...range, full: true }, true);
      for (let i = 1; i <= 3; i++) await report(`dataQualityReport, whole range, incremental (${i} of 3)`, range, true);
      await report(`dataQualityReport, one day (${day.from.slice(0, 10)})`, day, false);
    }
    if (only.has('reconcile')) {
      // A dry run changes nothing; it needs the right to fix, so it is asked as an admin.
      const reconcile = await measured(pid, () =>
        graphql<{ reconcile: Reconciliation }>(url, adminToken, RECONCILE, range),
      );
      const rec = reconcile.result.data?.reconcile;
      const kinds = new Map<string, number>();
      for (const kind of (rec?.fixes ?? []).flatMap((f) => f.kinds)) kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
      done({
        what: 'reconcile(apply: false), whole range',
        seconds: reconcile.seconds,
        result: rec
          ? `${rec.proposed} books to fix (${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}), ${rec.deferred} deferred, ` +
            `${rec.leftAlone.length} issues left alone; fixed ${rec.fixed}, failed ${rec.failed}`
          : errorText(reconcile.result),
        serverMb: reconcile.serverMb,
        selfMb: reconcile.selfMb,
      });
    }

    type Verification = {
      valid: boolean;
      treeSize: number;
      entriesVerified: number;
      pendingEntries: number;
      moreProblems: number;
      problems: { kind: string; message: string }[];
    };
    if (only.has('verify')) {
      const verify = await measured(pid, () => graphql<{ verifyLedger: Verification }>(url, token, VERIFY));
      const v = verify.result.data?.verifyLedger;
      failed ||= !v?.valid;
      done({
        what: 'verifyLedger (every entry)',
        seconds: verify.seconds,
        result: v
          ? `${v.valid ? 'valid' : 'INVALID'}: ${v.entriesVerified} entries verified = ${Math.round(v.entriesVerified / verify.seconds)}/s, ` +
            `tree ${v.treeSize}, pending ${v.pendingEntries}` +
            (v.problems.length
              ? `; ${v.problems.length + v.moreProblems} problems, first: ${v.problems[0].message}`
              : '')
          : errorText(verify.result),
        serverMb: verify.serverMb,
        selfMb: verify.selfMb,
      });
    }

    // 5. The export of the largest trader (about 1,000,000 rows at the default size).
    if (only.has('export')) {
      const [whale, small] = (await ds.query(
        `SELECT t.id, (SELECT count(*) FROM orders o WHERE o.trader_id = t.id)::int
         + (SELECT count(*) FROM fills f WHERE f.trader_id = t.id)::int
         + (SELECT count(*) FROM fill_corrections c WHERE c.trader_id = t.id)::int
         + (SELECT count(*) FROM execution_logs l WHERE l.trader_id = t.id)::int AS rows
       FROM traders t WHERE t.external_ref IN ('CB-1', 'CB-2') ORDER BY t.external_ref`,
      )) as { id: string; rows: number }[];
      // Warm-up (JIT, plans) on a small trader, not reported.
      for (const format of ['ndjson', 'csv'])
        await exportOnce(url, `/export/traders/${small.id}?format=${format}`, token);
      const pgCpu = await postgresCpu(ds);
      const cpu = (seconds: number) => (Number.isNaN(seconds) ? 'n/a' : `${seconds.toFixed(2)} s`);
      for (const format of ['ndjson', 'csv'] as const) {
        const cpu0 = { server: cpuSeconds(pid), pg: pgCpu() };
        const r = await measured(pid, () => exportOnce(url, `/export/traders/${whale.id}?format=${format}`, token));
        const e = r.result;
        const note =
          e.status !== 200 ? ` (HTTP ${e.status})` : e.rows !== whale.rows ? ` (expected ${whale.rows} rows)` : '';
        done({
          what: `export of the largest trader, ${format}`,
          seconds: e.seconds,
          result:
            `${e.rows} rows, ${(e.bytes / 2 ** 20).toFixed(0)} MB = ${Math.round(e.rowsPerSecond)} rows/s${note}; ` +
            `CPU: server ${cpu(cpuSeconds(pid) - cpu0.server)}, PostgreSQL ${cpu(cpu0.pg())}`,
          serverMb: r.serverMb,
          selfMb: r.selfMb,
        });
      }
    }
  } finally {
    if (lines.length) {
      console.log('');
      printTable(lines);
      console.log('');
    }
    await server?.stop();
    if (ds.isInitialized) await ds.destroy();
    await scratch.drop();
  }
  if (failed) process.exitCode = 1;
}

const SPAN = (d: ComplianceData) => `${d.from.toISOString().slice(0, 10)} to ${d.to.toISOString().slice(0, 10)}`;

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
