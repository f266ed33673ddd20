import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DataSource, QueryRunner } from 'typeorm';
import { isReadOnlyError, ReadOnlyError } from '../errors';
import {
  type Checkpoint,
  CheckpointError,
  lastCheckpointNote,
  noteHash,
  signCheckpoint,
  verifiedStoredCheckpoint,
  verifyCheckpoint,
} from './checkpoint';
import { findCheckpoint } from './proof.service';
import { type CanonicalEntry, canonicalColumnsSql, entryLeafHash, sealIsValid } from './entry-encoding';
import type { LogKey } from './log-key';
import { CompactRange, type NodeId, rightEdge } from './merkle';
import { MIN_STORED_LEVEL, nodeKey, rangeHashes, readNodes } from './tree.store';

/** The advisory lock only one integrator holds at a time (any process, one database). */
const INTEGRATOR_LOCK = 7_346_521_908_112_233;
/** Entries hashed between two turns of the event loop (about 2 ms of work). */
const YIELD_EVERY = 100;

export interface IntegrationResult {
  /** False when another integrator held the lock: nothing was done. */
  acquired: boolean;
  integrated: number;
  /** Entries refused because they carry no valid seal (not written by Tradetrail). */
  refused: string[];
  treeSize: number;
  /** More entries are waiting (the batch was full). */
  more: boolean;
  /** The last entry this round read. */
  last?: Cursor;
  checkpoint?: Checkpoint;
}

/** A place in the integration order (tx, recorded_at, id). */
export interface Cursor {
  tx: string;
  recordedAt: string;
  id: string;
}

/** Signing refused: the tree no longer contains a checkpoint this process knows. */
export class TreeTamperedError extends Error {
  override name = 'TreeTamperedError';
}

export interface IntegratorLog {
  info(fields: object, message: string): void;
  /** Conditions an operator should know of that are not failures (a read-only database); default: `error`. */
  warn?(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface IntegratorOptions {
  /** Milliseconds between rounds; 0: no background rounds (integrateOnce still works). */
  intervalMs: number;
  batchSize?: number;
  /** While the database is read-only (a hot standby), milliseconds between tries (at least intervalMs); default 5000. */
  readOnlyRetryMs?: number;
  /** Append-only file every new checkpoint is written to (one JSON object per line). */
  checkpointFile?: string;
  log: IntegratorLog;
  /** Called after each checkpoint is committed (metrics, subscriptions). */
  onCheckpoint?: (checkpoint: Checkpoint) => void;
}

export interface KnownCheckpoint {
  treeSize: number;
  rootHash: Buffer;
  note: string;
  source: 'process' | 'file';
}

/** `lastError` while the database is read-only. */
const READ_ONLY = Symbol('read-only');

/**
 * Takes new log entries into the global Merkle tree and signs a checkpoint of every new size.
 *
 * Writers never wait for it: each entry records the transaction that wrote it (`tx`). A round reads,
 * in one snapshot, every entry at or above the stored horizon that is not yet a leaf, appends those
 * with a valid seal as leaves (and the perfect-subtree hashes they complete), and moves the horizon to
 * the snapshot's xmin: every transaction below it has ended, so every entry it wrote was seen. A round
 * is one transaction under an advisory lock: one integrator at a time across processes, and a crash
 * leaves nothing half done.
 *
 * Before it signs, the round checks that the tree still contains the latest checkpoint in the
 * database and the newest one this process knows from outside the database (the ones it signed, or
 * the checkpoint file's last line): a rolled-back or rewritten tree is never signed.
 */
export class LogIntegrator {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private known: KnownCheckpoint | undefined;
  private lastError: string | typeof READ_ONLY | undefined;

  constructor(
    private readonly dataSource: DataSource,
    private readonly key: LogKey,
    private readonly options: IntegratorOptions,
  ) {
    this.known = readCheckpointFile(options.checkpointFile, key);
  }

  /** The newest checkpoint this process knows from outside the database. */
  knownCheckpoint(): KnownCheckpoint | undefined {
    return this.known;
  }

  start(): void {
    if (this.options.intervalMs <= 0 || this.timer) return;
    this.stopped = false;
    const tick = async (): Promise<void> => {
      this.timer = undefined;
      let next = this.options.intervalMs;
      try {
        await this.integrateAll();
        if (this.lastError === READ_ONLY) {
          this.options.log.info({}, 'the database accepts writes again: log integration resumed');
        }
        this.lastError = undefined;
      } catch (error) {
        if (isReadOnlyError(error)) {
          // A hot standby (or read-only mode): said once, tried again now and then, not every interval.
          if (this.lastError !== READ_ONLY) {
            (this.options.log.warn ?? this.options.log.error).call(
              this.options.log,
              { retryMs: this.retryMs() },
              'the database is read-only (a hot standby, or read-only mode): this process integrates no log entries ' +
                `and signs no checkpoint; trying again every ${this.retryMs() / 1000} s (TRADETRAIL_LOG_INTEGRATION_MS=0 ` +
                'turns integration off on a server that only reads)',
            );
          }
          this.lastError = READ_ONLY;
          next = this.retryMs();
        } else {
          const message = error instanceof Error ? error.message : String(error);
          if (message !== this.lastError) {
            this.options.log.error(
              { err: error, tamper: error instanceof TreeTamperedError },
              error instanceof TreeTamperedError
                ? 'LOG TAMPERING: the tree no longer contains a signed checkpoint; no checkpoint is signed until this is investigated'
                : 'log integration failed; retrying',
            );
          }
          this.lastError = message;
        }
      }
      if (!this.stopped) this.schedule(tick, next);
    };
    this.schedule(tick, this.options.intervalMs);
  }

  private retryMs(): number {
    return Math.max(this.options.intervalMs, this.options.readOnlyRetryMs ?? 5000);
  }

  /** The next round, in `ms`; the timer never keeps the process alive on its own. */
  private schedule(tick: () => Promise<void>, ms: number): void {
    this.timer = setTimeout(() => void (this.running = tick()), ms);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.running.catch(() => undefined);
  }

  /** Rounds until nothing is waiting. */
  async integrateAll(): Promise<IntegrationResult[]> {
    const results: IntegrationResult[] = [];
    let after: Cursor | undefined;
    for (;;) {
      const result = await this.integrateOnce(after);
      results.push(result);
      if (!result.acquired || !result.more) return results;
      after = result.last;
    }
  }

  /** One round. `after`: where the previous round of the same pass stopped (a backlog is read in order, not re-sorted). */
  async integrateOnce(after?: Cursor): Promise<IntegrationResult> {
    const runner = this.dataSource.createQueryRunner();
    await runner.connect();
    let result: IntegrationResult;
    try {
      await runner.query(
        // Index walks and nested loops only: the pending read must walk the tx index in order and stop at
        // its LIMIT, never hash every leaf nor scan the whole log — the planner's estimates of a growing
        // log lag behind (never analyzed after a bulk load, autovacuum off: seen scanning 445,000 entries
        // four times a second). No parallel workers either: a round reads a few rows; and no JIT (an
        // overestimated plan was compiled for ~100 ms).
        `START TRANSACTION; SET LOCAL tradetrail.role = 'compliance'; SET LOCAL statement_timeout = 120000; SET LOCAL jit = off;
         SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off; SET LOCAL enable_seqscan = off;
         SET LOCAL max_parallel_workers_per_gather = 0`,
      );
      result = await this.round(runner, after);
      await runner.query(result.acquired ? 'COMMIT' : 'ROLLBACK');
    } catch (error) {
      await runner.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      await runner.release();
    }
    if (result.checkpoint) this.publish(result.checkpoint);
    return result;
  }

  private async round(q: QueryRunner, after: Cursor | undefined): Promise<IntegrationResult> {
    // Read-only (a hot standby): said before any write is tried, so that no statement fails (and
    // neither this process's log nor PostgreSQL's fills up with them while it waits).
    const [{ ok, readOnly }] = (await q.query(
      `SELECT pg_try_advisory_xact_lock($1) AS ok, current_setting('transaction_read_only') = 'on' AS "readOnly"`,
      [INTEGRATOR_LOCK],
    )) as { ok: boolean; readOnly: boolean }[];
    if (readOnly) throw new ReadOnlyError();
    if (!ok) return { acquired: false, integrated: 0, refused: [], treeSize: -1, more: false };
    const [state] = (await q.query(
      `SELECT tree_size::text AS size, tx_horizon::text AS horizon FROM log_tree_state WHERE id = 1 FOR UPDATE`,
    )) as { size: string; horizon: string }[];
    const size = Number(state.size);
    const batch = this.options.batchSize ?? 5000;
    const rows = (await q.query(
      `WITH snap AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin)
       SELECT snap.xmin::text AS "horizon", e.*
       FROM snap LEFT JOIN LATERAL (
         SELECT ${canonicalColumnsSql('l')}, l.tx::text AS tx FROM execution_logs l
         WHERE l.tx >= $1 AND NOT EXISTS (SELECT 1 FROM log_leaves x WHERE x.entry_id = l.id)
           ${after ? `AND l.tx >= $2::bigint AND (l.tx, l.recorded_at, l.id) > ($2::bigint, $3::timestamptz, $4::uuid)` : ''}
         ORDER BY l.tx, l.recorded_at, l.id
         LIMIT ${batch + 1}
       ) e ON true`,
      after ? [state.horizon, after.tx, after.recordedAt, after.id] : [state.horizon],
    )) as (CanonicalEntry & { horizon: string; tx: string | null })[];
    const pending = rows.filter((r) => r.id !== null);
    const more = pending.length > batch;
    if (more) pending.length = batch;
    // The horizon moves to the snapshot's xmin once everything at or above the old one was read.
    const horizon = more || after ? state.horizon : rows[0].horizon;
    const lastRow = pending[pending.length - 1];
    const last = lastRow && { tx: lastRow.tx!, recordedAt: lastRow.recordedAt, id: lastRow.id };

    const edge = rightEdge(size);
    const stored = await readNodes(q, edge);
    const range = new CompactRange(
      size,
      edge.map((n) => stored.get(nodeKey(n))!),
    );
    const leaves: { index: number; entry: CanonicalEntry; hash: Buffer }[] = [];
    const nodes: { node: NodeId; hash: Buffer }[] = [];
    const refused: string[] = [];
    for (const [i, entry] of pending.entries()) {
      // The server's requests share this event loop: hashing a large round never holds them up for long.
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await nextTurn();
      // Entries written before the verifiable log (tx 0, set by its migration) carry no seal.
      if (!sealIsValid(this.key.sealKey, entry) && !(entry.tx === '0' && entry.seal === null)) {
        refused.push(entry.id);
        continue;
      }
      const hash = entryLeafHash(entry);
      leaves.push({ index: range.size, entry, hash });
      range.append(hash, (node, h) => {
        if (node.level >= MIN_STORED_LEVEL) nodes.push({ node, hash: h });
      });
    }
    if (refused.length) {
      this.options.log.error(
        { refused },
        'LOG TAMPERING: entries without a valid seal were found in the execution log (not written by Tradetrail); they are kept out of the tree',
      );
    }
    if (leaves.length) {
      await q.query(
        `INSERT INTO log_leaves (leaf_index, entry_id, order_id, seq, leaf_hash)
         SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::uuid[], $4::int[], $5::bytea[])`,
        [
          leaves.map((l) => String(l.index)),
          leaves.map((l) => l.entry.id),
          leaves.map((l) => l.entry.orderId),
          leaves.map((l) => l.entry.seq),
          leaves.map((l) => l.hash),
        ],
      );
    }
    if (nodes.length) {
      await q.query(
        `INSERT INTO merkle_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])`,
        [nodes.map((n) => n.node.level), nodes.map((n) => String(n.node.index)), nodes.map((n) => n.hash)],
      );
    }
    await q.query(
      `UPDATE log_tree_state SET tree_size = $1, tx_horizon = GREATEST(tx_horizon, $2::bigint),
         integrated_at = CASE WHEN $1 > tree_size THEN clock_timestamp() ELSE integrated_at END WHERE id = 1`,
      [String(range.size), horizon],
    );
    let checkpoint: Checkpoint | undefined;
    if (range.size > size) {
      const previous = await this.assertContainsKnown(q, range);
      checkpoint = signCheckpoint(this.key, range.size, range.root(), new Date(), previous);
      await q.query(`INSERT INTO log_checkpoints (tree_size, root_hash, signed_at, note) VALUES ($1, $2, $3, $4)`, [
        String(checkpoint.treeSize),
        checkpoint.rootHash,
        checkpoint.timestamp,
        checkpoint.note,
      ]);
    }
    return { acquired: true, integrated: leaves.length, refused, treeSize: range.size, more, last, checkpoint };
  }

  /**
   * The new tree must contain the latest stored checkpoint and the newest one known outside the
   * database, and that one must still be stored. Returns the checkpoint the new one follows.
   */
  private async assertContainsKnown(q: QueryRunner, range: CompactRange): Promise<Checkpoint['previous']> {
    const latest = await findCheckpoint(q);
    const references: { treeSize: number; rootHash: Buffer; what: string }[] = [];
    if (latest) {
      try {
        const c = verifiedStoredCheckpoint(latest, this.key);
        references.push({ ...c, what: `the latest stored checkpoint (size ${c.treeSize})` });
      } catch (error) {
        if (!(error instanceof CheckpointError)) throw error;
        throw new TreeTamperedError(
          `the latest stored checkpoint (size ${latest.treeSize}) is not valid: ${error.message}`,
        );
      }
    }
    if (this.known) {
      references.push({ ...this.known, what: `the checkpoint of size ${this.known.treeSize} known to this process` });
      if (!latest || latest.treeSize < this.known.treeSize) {
        throw new TreeTamperedError(
          `the checkpoint of size ${this.known.treeSize} known to this process is no longer in the database (the latest stored one has size ${latest?.treeSize ?? 'none'})`,
        );
      }
    }
    for (const ref of references) {
      if (ref.treeSize > range.size) {
        throw new TreeTamperedError(`the tree has ${range.size} leaves, fewer than ${ref.what}: it was rolled back`);
      }
      const [root] =
        ref.treeSize === range.size ? [range.root()] : await rangeHashes(q, [{ start: 0, end: ref.treeSize }]);
      if (!root.equals(ref.rootHash)) {
        throw new TreeTamperedError(`the tree's first ${ref.treeSize} leaves no longer hash to ${ref.what}`);
      }
    }
    return latest ? { treeSize: latest.treeSize, noteHash: noteHash(latest.note) } : null;
  }

  /** After commit: the checkpoint leaves the database (structured log, optional file). */
  private publish(checkpoint: Checkpoint): void {
    const record = {
      treeSize: checkpoint.treeSize,
      rootHash: checkpoint.rootHash.toString('hex'),
      timestamp: checkpoint.timestamp.toISOString(),
      note: checkpoint.note,
    };
    this.options.log.info({ checkpoint: record }, 'log checkpoint signed');
    if (this.options.checkpointFile) {
      try {
        appendFileSync(this.options.checkpointFile, `${JSON.stringify(record)}\n`, { flag: 'a', mode: 0o644 });
      } catch (error) {
        this.options.log.error(
          { err: error, file: this.options.checkpointFile },
          'could not append the checkpoint file',
        );
      }
    }
    this.known = {
      treeSize: checkpoint.treeSize,
      rootHash: checkpoint.rootHash,
      note: checkpoint.note,
      source: 'process',
    };
    this.options.onCheckpoint?.(checkpoint);
  }
}

/** The last checkpoint of an append-only checkpoint file, verified; undefined when none. */
export function readCheckpointFile(file: string | undefined, key: LogKey): KnownCheckpoint | undefined {
  if (!file || !existsSync(file)) return undefined;
  const note = lastCheckpointNote(readFileSync(file, 'utf8'));
  if (note === undefined) return undefined;
  const c = verifyCheckpoint(note, key);
  return { treeSize: c.treeSize, rootHash: c.rootHash, note, source: 'file' };
}

/** How far the signed tree is behind the log (for the metrics endpoint). */
export interface IntegrationLag {
  /** Committed entries not yet leaves, so in no signed checkpoint (counted up to the cap given). */
  pendingEntries: number;
  /** Seconds since the oldest of them was recorded; 0 when none is waiting. */
  oldestPendingSeconds: number;
  /** The latest signed checkpoint's tree size and age in seconds; null before the first one. */
  checkpointSize: number | null;
  checkpointAgeSeconds: number | null;
}

/**
 * The integration lag, read from the database, so that any process (integrating or not) can report
 * it: the entries an integration round would read next (at or above the horizon, not yet leaves),
 * and the latest checkpoint. Cheap: the pending entries are found through the `tx` index from the
 * horizon on, and at most `cap` of them are counted.
 */
export async function integrationLag(dataSource: DataSource, cap = 100_000): Promise<IntegrationLag> {
  const runner = dataSource.createQueryRunner();
  await runner.connect();
  try {
    // As the integrator reads them: the log's row-level security lets the compliance role read every
    // entry; nested loops only (never hash every leaf).
    await runner.query(
      `START TRANSACTION READ ONLY; SET LOCAL tradetrail.role = 'compliance'; SET LOCAL statement_timeout = 5000; SET LOCAL jit = off;
       SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off`,
    );
    const [row] = (await runner.query(
      `WITH pending AS (
         SELECT l.recorded_at FROM execution_logs l
         WHERE l.tx >= (SELECT tx_horizon FROM log_tree_state WHERE id = 1)
           AND NOT EXISTS (SELECT 1 FROM log_leaves x WHERE x.entry_id = l.id)
         LIMIT $1
       )
       SELECT (SELECT count(*) FROM pending)::int AS "pending",
              (SELECT extract(epoch FROM clock_timestamp() - min(recorded_at)) FROM pending)::float8 AS "oldest",
              c.tree_size::text AS "size",
              extract(epoch FROM clock_timestamp() - c.signed_at)::float8 AS "age"
       FROM (SELECT 1) one
       LEFT JOIN LATERAL (SELECT tree_size, signed_at FROM log_checkpoints ORDER BY tree_size DESC LIMIT 1) c ON true`,
      [cap],
    )) as { pending: number; oldest: number | null; size: string | null; age: number | null }[];
    await runner.query('COMMIT');
    return {
      pendingEntries: row.pending,
      oldestPendingSeconds: Math.max(0, row.oldest ?? 0),
      checkpointSize: row.size === null ? null : Number(row.size),
      checkpointAgeSeconds: row.age === null ? null : Math.max(0, row.age),
    };
  } catch (error) {
    await runner.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
