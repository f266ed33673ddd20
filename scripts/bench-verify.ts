/**
 * `npm run bench:verify [-- --entries 1000000]`: the verifiable log at scale. Writes N sealed,
 * chained log entries (10 per order), integrates them into the Merkle tree (timed), then runs the full
 * `verifyLedger` (time and peak memory), one order's `verifyExecutionLog`, and an inclusion proof.
 * Prints numbers, asserts nothing. Uses DATABASE_URL when set (a scratch database is created and
 * dropped on that server; it needs a superuser to write entries fast with the triggers bypassed),
 * else a temporary embedded PostgreSQL.
 */
import { commandLine, wholeNumber } from './cli';

// The command line before the modules below load (TypeORM, the entities): --help answers at once.
const args = commandLine(
  {
    name: 'bench:verify',
    synopsis: '[--entries N]',
    about:
      'The verifiable log at scale: writes N sealed, chained log entries (10 per order), integrates them into\n' +
      "the Merkle tree, then times the full verifyLedger, one order's verifyExecutionLog and an inclusion\n" +
      'proof. Prints numbers, asserts nothing.',
    options: {
      entries: {
        type: 'string',
        value: 'N',
        help: 'log entries to write, integrate and verify (at least 10)',
        default: '1000000',
      },
    },
    notes:
      "Uses DATABASE_URL's server when set (a scratch database, dropped afterwards; a superuser is needed),\n" +
      'else a temporary embedded PostgreSQL.',
  },
  ({ values }) => ({ entries: wholeNumber(values.entries, '--entries', 10) ?? 1_000_000 }),
);

import 'reflect-metadata';
import { createHash } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { canonicalTime, computeSeal, type SealedFields } from '../src/execution-log/entry-encoding';
import { newId } from '../src/ids';
import { LogIntegrator } from '../src/execution-log/log-integrator';
import { logKeyFromSeed } from '../src/execution-log/log-key';
import { verifyLedger, verifyOrderLog } from '../src/execution-log/log-verification.service';
import { inclusionProofs } from '../src/execution-log/proof.service';
import { scratchDatabase } from './bench-db';

const PER_ORDER = 10;
const CHUNK_ORDERS = 500;

/** Peak RSS and heap while `work` runs, sampled every 20 ms. */
async function peakMemory<T>(work: () => Promise<T>): Promise<{ result: T; rssMb: number; heapMb: number }> {
  let rss = process.memoryUsage().rss;
  let heap = process.memoryUsage().heapUsed;
  const timer = setInterval(() => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed);
  }, 20);
  try {
    const result = await work();
    return { result, rssMb: rss / 2 ** 20, heapMb: heap / 2 ** 20 };
  } finally {
    clearInterval(timer);
  }
}

async function main(): Promise<void> {
  const { entries } = args;
  const orderCount = Math.ceil(entries / PER_ORDER);
  const scratch = await scratchDatabase('tt_bench_verify');
  const ds = new DataSource(dataSourceOptions(scratch.url, 4, false));
  const key = logKeyFromSeed(createHash('sha256').update('bench').digest(), 'tradetrail');
  try {
    await ds.initialize();
    await ds.runMigrations({ transaction: 'each' });
    const [{ id: traderId }] = await ds.query(`INSERT INTO traders (name) VALUES ('Bench') RETURNING id`);

    // 1. The entries: sealed as the server seals them, chained as the trigger chains them (set-based,
    // one statement per chunk and seq, with the triggers bypassed).
    const t0 = Date.now();
    for (let first = 0; first < orderCount; first += CHUNK_ORDERS) {
      const count = Math.min(CHUNK_ORDERS, orderCount - first);
      await ds.transaction(async (m) => {
        await m.query(`SET LOCAL session_replication_role = replica`);
        const orders = (
          (await m.query(
            `INSERT INTO orders (trader_id, client_order_id, symbol, side, order_type, quantity, status)
             SELECT $1, 'v-' || g, 'SYM' || (g % 50), 'BUY', 'MARKET', 10, 'ACCEPTED'
             FROM generate_series($2::int, $3::int) g RETURNING id`,
            [traderId, first, first + count - 1],
          )) as { id: string }[]
        ).map((o) => o.id);
        for (let seq = 1; seq <= PER_ORDER; seq++) {
          const occurredAt = new Date(Date.UTC(2026, 0, 1, 0, 0, seq));
          const rows = orders.map((orderId) => {
            const f: SealedFields = {
              id: newId(),
              orderId,
              traderId,
              action: 'RECOVERED',
              fromStatus: 'ACCEPTED',
              toStatus: 'ACCEPTED',
              reason: 'bench',
              errorCode: null,
              actor: 'bench',
              source: 'BENCH',
              details: { seq, note: 'bench entry' },
              occurredAt: canonicalTime(occurredAt),
            };
            return { ...f, seal: computeSeal(key.sealKey, f) };
          });
          await m.query(
            `INSERT INTO execution_logs (id, order_id, trader_id, seq, action, from_status, to_status, reason, actor, source,
               details, occurred_at, recorded_at, prev_hash, hash, tx, seal)
             SELECT r.id, r.order_id, r.trader_id, $2, 'RECOVERED', 'ACCEPTED', 'ACCEPTED', r.reason, r.actor, r.source,
               r.details, $3, now(), p.hash,
               execution_log_hash(p.hash, ROW(r.id, r.order_id, r.trader_id, $2, 'RECOVERED', 'ACCEPTED', 'ACCEPTED',
                 r.reason, NULL, NULL, r.actor, r.source, r.details, $3::timestamptz, now(), p.hash, '', 0,
                 r.seal)::execution_logs),
               pg_current_xact_id()::text::bigint, r.seal
             FROM jsonb_to_recordset($1::jsonb) AS r(id uuid, order_id uuid, trader_id uuid, reason text,
               actor text, source text, details jsonb, seal text)
             LEFT JOIN execution_logs p ON p.order_id = r.order_id AND p.seq = $2 - 1`,
            [
              JSON.stringify(rows.map((r) => ({ ...r, order_id: r.orderId, trader_id: r.traderId }))),
              seq,
              occurredAt.toISOString(),
            ],
          );
        }
      });
      process.stdout.write(`\r  writing entries: ${Math.min((first + count) * PER_ORDER, orderCount * PER_ORDER)}`);
    }
    const written = (Date.now() - t0) / 1000;
    console.log(`\n  wrote ${orderCount * PER_ORDER} entries in ${written.toFixed(1)} s`);
    await ds.query(`VACUUM ANALYZE execution_logs`);

    // 2. Integration into the tree.
    const integrator = new LogIntegrator(ds, key, {
      intervalMs: 0,
      log: { info: () => undefined, error: (f, msg) => console.error(msg, f) },
    });
    const t1 = Date.now();
    const rounds = await integrator.integrateAll();
    const integrateS = (Date.now() - t1) / 1000;
    const size = rounds[rounds.length - 1].treeSize;
    console.log(
      `  integrated ${size} entries in ${integrateS.toFixed(1)} s (${Math.round(size / integrateS)} entries/s, ${rounds.length} rounds)`,
    );
    await ds.query(`VACUUM ANALYZE log_leaves, merkle_nodes`);

    // 3. Full verification, as `verifyLedger` runs it for a request (one snapshot, read only).
    const read = async <T>(work: (m: EntityManager) => Promise<T>): Promise<T> =>
      ds.transaction('REPEATABLE READ', async (m) => {
        await m.query(`SET LOCAL tradetrail.role = 'compliance'`);
        return work(m);
      });
    const t2 = Date.now();
    const { result, rssMb, heapMb } = await peakMemory(() => read((m) => verifyLedger(m, key)));
    const verifyS = (Date.now() - t2) / 1000;
    console.log(
      `  verifyLedger: ${result.valid ? 'valid' : 'INVALID'}, ${result.entriesVerified} entries in ${verifyS.toFixed(1)} s ` +
        `(${Math.round(result.entriesVerified / verifyS)} entries/s); peak RSS ${rssMb.toFixed(0)} MB, peak heap ${heapMb.toFixed(0)} MB`,
    );
    const [{ id: orderId }] = await read((m) => m.query(`SELECT order_id AS id FROM execution_logs LIMIT 1`));
    const t3 = Date.now();
    const order = await read((m) => verifyOrderLog(m, orderId, key));
    console.log(
      `  verifyExecutionLog of one order (${order.entries} entries): ${order.valid ? 'valid' : 'INVALID'} in ${Date.now() - t3} ms`,
    );
    const [{ id: entryId }] = await read((m) => m.query(`SELECT entry_id AS id FROM log_leaves WHERE leaf_index = 0`));
    const t4 = Date.now();
    const [proof] = await read((m) => inclusionProofs(m, [entryId], null));
    console.log(
      `  inclusion proof of leaf 0 in a tree of ${size}: ${'hashes' in proof ? proof.hashes.length : 0} hashes in ${Date.now() - t4} ms`,
    );
    const [sizes] = await ds.query(
      `SELECT pg_size_pretty(pg_total_relation_size('log_leaves')) AS leaves, pg_size_pretty(pg_total_relation_size('merkle_nodes')) AS nodes,
              pg_size_pretty(pg_total_relation_size('execution_logs')) AS entries`,
    );
    console.log(`  storage: execution_logs ${sizes.entries}, log_leaves ${sizes.leaves}, merkle_nodes ${sizes.nodes}`);
  } finally {
    if (ds.isInitialized) await ds.destroy();
    await scratch.drop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.stack : error);
  process.exit(1);
});
