import pg from 'pg';
import type { DataSource, EntityManager, EntityTarget, ObjectLiteral, QueryRunner } from 'typeorm';
import { type Principal, ROLES } from './auth';
import { DatabaseUnavailableError, isConnectionError, isReadOnlyError, ReadOnlyError } from './errors';
import { ParkedConnections } from './db/parked-connections';
import { isUuid } from './ids';

export type TransactionMode = 'read' | 'write';

/** The role every request's statements run as (see the ApplicationRole migration). */
export const APPLICATION_ROLE = 'tradetrail_app';

/**
 * The one database connection of a GraphQL request. Every statement of the request, loaders
 * included, goes through `run`, on one QueryRunner inside one transaction (READ ONLY for queries),
 * so per-request settings apply to all of them. Statements run one at a time (node-postgres
 * deprecates overlapping queries on one client). The connection is taken on first use and given
 * back by `finish`, which the Apollo plugin calls on every path.
 */
export class RequestDb {
  private runner: QueryRunner | undefined;
  private opening: Promise<QueryRunner> | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private finished = false;

  constructor(
    readonly dataSource: DataSource,
    private readonly identity: Principal,
    readonly statementTimeoutMs: number,
    private mode: TransactionMode = 'read',
    /** A snapshot another transaction exported (`pg_export_snapshot()`): a read that sees exactly what it sees. */
    private readonly snapshot?: string,
  ) {}

  /**
   * Runs `fn` in a transaction of its own (as `principal`) and ends it: committed (a read simply
   * ended) when `fn` succeeds, rolled back when it throws, whose error is passed on; a failed commit
   * throws too. The connection is back in the pool when this returns.
   */
  static async transaction<T>(
    dataSource: DataSource,
    principal: Principal,
    statementTimeoutMs: number,
    mode: TransactionMode,
    fn: (manager: EntityManager) => Promise<T>,
    snapshot?: string,
  ): Promise<T> {
    const db = new RequestDb(dataSource, principal, statementTimeoutMs, mode, snapshot);
    let result: T;
    try {
      result = await db.run(fn);
    } catch (error) {
      await db.finish(false).catch(() => undefined);
      throw error;
    }
    await db.finish(true);
    return result;
  }

  /** Set once the operation type is known, before any statement runs. */
  setMode(mode: TransactionMode): void {
    if (this.runner || this.opening) throw new Error('transaction mode must be set before the first statement');
    this.mode = mode;
  }

  /** Runs `fn` with the request's EntityManager, after any statement already queued. */
  run<T>(fn: (manager: EntityManager) => Promise<T>): Promise<T> {
    const result = this.queue.then(async () => {
      const runner = await this.open();
      try {
        return await fn(runner.manager);
      } catch (error) {
        throw databaseError(error);
      }
    });
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** A read statement of raw SQL through the request's connection, unnamed (see `read`). */
  query<T = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<T[]> {
    return this.read<T>(undefined, sql, params);
  }

  /**
   * A read statement (a loader's, a page's, a count's), as a named prepared statement when `name` is
   * given and prepared statements are on. Reads asked for before the connection is free (in practice: in
   * the same tick, as the loaders of sibling fields dispatch) go to PostgreSQL together, in one round trip
   * (one extended-protocol exchange, one Sync), with the transaction's start when it has not been sent:
   * their statements still run one after the other, each with its own rows. When one fails, the rest are
   * skipped and every one of them gets its error (the transaction is aborted, as it would be after any
   * failed statement).
   */
  read<T = Record<string, unknown>>(name: string | undefined, text: string, values: unknown[]): Promise<T[]> {
    return new Promise<T[]>((resolve, reject) => {
      if (!this.reads) {
        const reads: PendingRead[] = (this.reads = []);
        void this.run(async (m) => {
          this.reads = undefined;
          await sendReads(m, reads);
        }).catch((error: unknown) => {
          for (const r of reads) r.reject(error);
        });
      }
      this.reads.push({ name, text, values, resolve: resolve as (rows: unknown[]) => void, reject });
    });
  }
  /** Reads waiting for the connection, sent together when it is free. */
  private reads: PendingRead[] | undefined;

  private open(): Promise<QueryRunner> {
    if (this.finished) return Promise.reject(new Error('the request has finished; its connection is released'));
    this.opening ??= (async () => {
      // A connection whose last read-only transaction still owes its COMMIT (see finish) goes first: the
      // COMMIT rides ahead of this transaction's start, in its first exchange.
      const parked = parkedOf(this.dataSource)?.take();
      const runner = parked ?? this.dataSource.createQueryRunner();
      try {
        if (!parked) await runner.connect();
        // The transaction's start goes with the request's first statement (see deferBegin).
        deferBegin(runner, this.beginStatements());
      } catch (error) {
        // Never hand a half-open transaction back to the pool: the pool discards this client.
        await discard(runner, error);
        this.opening = undefined;
        throw databaseError(error);
      }
      this.runner = runner;
      return runner;
    })();
    return this.opening;
  }

  /**
   * One round trip: the transaction with its access mode, and the application role (transaction-local). A read sees
   * one snapshot (REPEATABLE READ), so a page, its totalCount and its nested fields agree.
   */
  private async begin(runner: QueryRunner): Promise<void> {
    dropPendingBegin(runner);
    await runner.query(afterOwedCommit(runner, this.beginStatements()).simple);
    // TypeORM's startTransaction would send START TRANSACTION alone; tell the runner one is open so
    // that its commit/rollback (and anything using the manager) treat it as the transaction.
    Object.assign(runner, { isTransactionActive: true, transactionDepth: 1 });
  }

  /**
   * The transaction, then in one statement the role, the identity the row-level security policies read,
   * the statement timeout and no JIT: all transaction-local (a pooled connection never carries them into
   * the next request). The values are inlined, so they are checked first: a role from the fixed list, a UUID
   * or nothing, a whole number.
   */
  private beginStatements(): TransactionStart {
    const { role, traderId } = this.identity;
    if (!(ROLES as readonly string[]).includes(role) || (traderId !== null && !isUuid(traderId))) {
      throw new Error('refusing to open a transaction for an invalid identity');
    }
    const mode = this.mode === 'read' ? ' ISOLATION LEVEL REPEATABLE READ, READ ONLY' : '';
    if (
      this.snapshot !== undefined &&
      (this.mode !== 'read' || !/^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/i.test(this.snapshot))
    ) {
      throw new Error('refusing to open a transaction on an invalid snapshot');
    }
    const transaction = [
      `START TRANSACTION${mode}`,
      ...(this.snapshot === undefined ? [] : [`SET TRANSACTION SNAPSHOT '${this.snapshot}'`]),
    ];
    // One statement for every setting (`set_config(…, true)` is `SET LOCAL`; for `role`, `SET LOCAL ROLE`,
    // membership checked the same way), a prepared one where the start rides with a statement: PostgreSQL
    // parses and plans it once per connection, where five `SET LOCAL`s were five statements each time.
    // No JIT compilation: Tradetrail's statements are index look-ups and bounded scans, and where the
    // planner cannot estimate a join (a range per row: the tree's leaves of a proof) it overestimates
    // the cost, and compiling took ~100 ms for a statement that runs in 2 (README "Exporting a trail").
    const values = [APPLICATION_ROLE, role, traderId ?? '', String(Math.trunc(this.statementTimeoutMs))];
    const settings = (p: (i: number) => string) =>
      `SELECT set_config('role', ${p(0)}, true), set_config('tradetrail.role', ${p(1)}, true), ` +
      `set_config('tradetrail.trader_id', ${p(2)}, true), set_config('statement_timeout', ${p(3)}, true), ` +
      `set_config('jit', 'off', true)`;
    return {
      ahead: [
        // Named too (parsed once per connection), but for the snapshot's, whose text varies.
        ...transaction.map((text, i) => ({ name: i === 0 ? `tt_start_${this.mode}` : undefined, text, values: [] })),
        { name: 'tt_settings', text: settings((i) => `$${i + 1}`), values },
      ],
      simple: [...transaction, settings((i) => `'${values[i]}'`)].join('; '),
    };
  }

  /**
   * Writes that must outlive a failed request: the audit entry of a refused attempt (a replayed
   * execution with a conflicting payload). They run, after the rollback, in a transaction of their own.
   */
  afterRollback(write: (manager: EntityManager) => Promise<void>): void {
    this.survivors.push(write);
  }
  private readonly survivors: ((manager: EntityManager) => Promise<void>)[] = [];

  /** What to do once the request's transaction has committed (counting what it wrote, for metrics). */
  afterCommit(done: () => void): void {
    this.committed.push(done);
  }
  private readonly committed: (() => void)[] = [];

  /** Commits (or rolls back) and releases the connection. Safe to call more than once. */
  async finish(commit: boolean): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    await this.queue;
    const runner = this.runner ?? (this.opening ? await this.opening.catch(() => undefined) : undefined);
    if (!runner) return;
    try {
      // No statement ran: no transaction was ever started on the server, nothing to end (but the
      // COMMIT a parked connection still owes, sent now).
      if (dropPendingBegin(runner)) {
        if (commit) for (const done of this.committed) done();
        await endParked(runner);
        return;
      }
      // A read-only transaction that read what it read: its COMMIT changes nothing the response says, so
      // it need not cost a round trip of its own. The connection is parked, and the COMMIT goes ahead of
      // the next transaction's start on it, or on its own after `readCommitDelayMs` (ParkedConnections).
      const lot = parkedOf(this.dataSource);
      if (commit && lot && this.mode === 'read' && runner.isTransactionActive && !this.committed.length) {
        Object.assign(runner, { isTransactionActive: false, transactionDepth: 0, [OWES_COMMIT]: true });
        lot.park(runner);
        return;
      }
      if (runner.isTransactionActive) {
        if (commit) await runner.commitTransaction();
        else await runner.rollbackTransaction();
        if (commit) for (const done of this.committed) done();
      }
      if (!commit && this.survivors.length) {
        this.mode = 'write';
        await this.begin(runner);
        for (const write of this.survivors) await write(runner.manager);
        await runner.commitTransaction();
      }
      await runner.release();
    } catch (error) {
      await discard(runner, error);
      if (commit && !isConnectionError(error)) throw error;
    }
  }
}

/**
 * A failure of the database itself, as the client should see it: a lost connection is
 * DATABASE_UNAVAILABLE, a write refused by a read-only database (a hot standby) READ_ONLY; anything
 * else is returned as it is.
 */
function databaseError(error: unknown): unknown {
  if (isConnectionError(error)) return new DatabaseUnavailableError();
  if (isReadOnlyError(error)) return new ReadOnlyError();
  return error;
}

/** Gives a connection back to the pool with its error, so that the pool closes it instead of reusing it. */
async function discard(runner: QueryRunner, error: unknown): Promise<void> {
  await (runner as unknown as { releasePostgresConnection(e: unknown): Promise<void> })
    .releasePostgresConnection(error instanceof Error ? error : new Error(String(error)))
    .catch(() => undefined);
}

/** Builds an entity from a raw row the way TypeORM would (types, transformers), for hand-written SQL. */
export function hydrate<T extends ObjectLiteral>(
  manager: EntityManager,
  target: EntityTarget<T>,
  row: Record<string, unknown>,
): T {
  const metadata = manager.connection.getMetadata(target);
  const entity = metadata.create() as T;
  for (const column of metadata.columns) {
    const value = row[column.databaseName];
    column.setEntityValue(
      entity,
      value === undefined ? undefined : manager.connection.driver.prepareHydratedValue(value, column),
    );
  }
  return entity;
}

/**
 * A row of an entity's table (`alias`) as jsonb, its numeric and bigint columns as text: exact through
 * JSON, for `hydrate` (from the entity's metadata, so a column added later is covered too).
 */
export function jsonRowSql(manager: EntityManager, target: EntityTarget<ObjectLiteral>, alias: string): string {
  const metadata = manager.connection.getMetadata(target);
  let sql = jsonRowCache.get(metadata)?.get(alias);
  if (sql === undefined) {
    const exact = metadata.columns.filter((c) => ['numeric', 'decimal', 'bigint', 'int8'].includes(String(c.type)));
    const texts = exact.map((c) => `'${c.databaseName}', ${alias}.${c.databaseName}::text`);
    sql = texts.length ? `to_jsonb(${alias}) || jsonb_build_object(${texts.join(', ')})` : `to_jsonb(${alias})`;
    jsonRowCache.set(metadata, (jsonRowCache.get(metadata) ?? new Map()).set(alias, sql));
  }
  return sql;
}
const jsonRowCache = new WeakMap<object, Map<string, string>>();

/** Table name of an entity, quoted, for hand-written SQL. */
export function tableOf(manager: EntityManager, target: EntityTarget<ObjectLiteral>): string {
  return `"${manager.connection.getMetadata(target).tableName}"`;
}

/** Collects WHERE conditions with numbered parameters ($1, $2, …). */
export class SqlWhere {
  readonly conditions: string[] = [];
  constructor(readonly params: unknown[] = []) {}

  /** Adds a parameter and returns its placeholder. */
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  /** Adds `sql` with each `?` replaced by the next value, when `values` has no undefined. */
  add(sql: string, ...values: unknown[]): this {
    if (values.some((v) => v === undefined)) return this;
    let i = 0;
    this.conditions.push(sql.replace(/\?/g, () => this.param(values[i++])));
    return this;
  }

  toString(): string {
    return this.conditions.length ? `WHERE ${this.conditions.join(' AND ')}` : '';
  }
}

/**
 * Rows of a hand-written statement. (TypeORM's `query()` answers UPDATE and DELETE with
 * `[rows, rowCount]` and everything else with the rows.)
 */
export async function sqlRows<T = Record<string, unknown>>(
  manager: EntityManager,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const result = (await manager.query(sql, params)) as unknown;
  if (/^\s*(UPDATE|DELETE)\b/i.test(sql) && Array.isArray(result) && result.length === 2 && Array.isArray(result[0])) {
    return result[0] as T[];
  }
  return result as T[];
}

interface PgClientLike {
  query(query: object, callback: (error: Error | null, result: unknown) => void): void;
}

/**
 * Tradetrail's own settings of a DataSource, carried on its options (`dataSourceOptions` in
 * ormconfig.ts puts them there; TypeORM keeps an option it does not know: `setOptions` is an
 * `Object.assign`, checked against TypeORM 1.1.1).
 */
export interface TradetrailSettings {
  /**
   * Send the hot write statements as named prepared statements (TRADETRAIL_PREPARED_STATEMENTS).
   * Off: every statement is unnamed, as a pooler in transaction mode that cannot track prepared
   * statements needs (PgBouncer before 1.21): a named statement lives on one server connection, and
   * the pooler hands the next transaction another one.
   */
  preparedStatements: boolean;
  /**
   * How long a read-only request's connection waits, its COMMIT not yet sent, for the next request to
   * send it ahead of its own transaction (TRADETRAIL_READ_COMMIT_DELAY_MS; 0: each read commits on its
   * own). See `RequestDb.finish`.
   */
  readCommitDelayMs?: number;
}

/** Whether `dataSource` may send named prepared statements (true unless its options say otherwise). */
export function preparedStatementsOn(dataSource: DataSource): boolean {
  return settingsOf(dataSource).preparedStatements !== false;
}

/** The DataSource's own settings (`TradetrailSettings`; empty when its options carry none). */
function settingsOf(dataSource: DataSource): Partial<TradetrailSettings> {
  return (dataSource.options as { tradetrail?: Partial<TradetrailSettings> }).tradetrail ?? {};
}

/**
 * Like `sqlRows`, as a named prepared statement: each pooled connection parses and plans it once.
 * For the hot, fixed statements of the write path. With prepared statements off (the DataSource's
 * `preparedStatements`), the same text is sent unnamed. (Outside a request's connection it runs unnamed.)
 */
export async function preparedRows<T = Record<string, unknown>>(
  manager: EntityManager,
  /** The statement's name; undefined sends it unnamed (parsed and planned for this execution only). */
  name: string | undefined,
  text: string,
  values: unknown[],
  /**
   * Statements to run first, in the same round trip (each with its own snapshot, as any statement):
   * unnamed, parameters as text, results ignored.
   */
  before: AheadStatement[] = [],
): Promise<T[]> {
  const runner = manager.queryRunner;
  const client = (runner as unknown as { databaseConnection?: PgClientLike } | undefined)?.databaseConnection;
  if (!runner || !client) {
    for (const b of before) await manager.query(b.text, b.values);
    return sqlRows<T>(manager, text, values);
  }
  const prepared = preparedStatementsOn(manager.connection);
  // The transaction's start, when no statement sent it yet (see deferBegin), goes first.
  const ahead = [...startOf(runner, prepared), ...before];
  const results = await exchange(client, ahead, { name: prepared ? name : undefined, text, values });
  return results[results.length - 1].rows as T[];
}

/**
 * A statement sent ahead of another in the same exchange: unnamed (parsed for this execution), or named
 * (parsed in the exchange when the connection has not parsed it yet: see PipelinedQuery).
 */
export interface AheadStatement {
  name?: string;
  text: string;
  values: unknown[];
}

/** A read waiting for the request's connection (RequestDb.read). */
interface PendingRead {
  name: string | undefined;
  text: string;
  values: unknown[];
  resolve(rows: unknown[]): void;
  reject(error: unknown): void;
}

/**
 * Sends `reads` in one exchange, after the transaction's start if it is still pending, and gives each
 * its rows.
 */
async function sendReads(manager: EntityManager, reads: PendingRead[]): Promise<void> {
  const runner = manager.queryRunner!;
  const client = (runner as unknown as { databaseConnection: PgClientLike }).databaseConnection;
  const prepared = preparedStatementsOn(manager.connection);
  const statements = reads.map((r) => ({ name: prepared ? r.name : undefined, text: r.text, values: r.values }));
  const results = await exchange(
    client,
    [...startOf(runner, prepared), ...statements.slice(0, -1)],
    statements.at(-1)!,
  );
  const first = results.length - reads.length;
  reads.forEach((read, i) => read.resolve(results[first + i].rows));
}

/** `ahead`, then `last`, in one exchange (one Sync): every statement's result, `last`'s last. */
async function exchange(
  client: PgClientLike,
  ahead: AheadStatement[],
  last: AheadStatement,
): Promise<{ rows: unknown[] }[]> {
  const config =
    last.name === undefined ? { text: last.text, values: last.values } : (last as Required<AheadStatement>);
  const named = last.name !== undefined || ahead.some((a) => a.name !== undefined);
  try {
    return await new Promise<{ rows: unknown[] }[]>((resolve, reject) => {
      client.query(new PipelinedQuery(ahead, config), (error: Error | null, result: unknown) =>
        error ? reject(error) : resolve(Array.isArray(result) ? result : [result as { rows: unknown[] }]),
      );
    });
  } catch (error) {
    throw named ? misplacedStatement(error) : databaseError(error);
  }
}

/** A PostgreSQL array literal of texts (for a `$n::uuid[]` or `$n::text[]` parameter sent as text). */
export function textArray(values: readonly string[]): string {
  return `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`;
}

const PARKED = new WeakMap<DataSource, ParkedConnections<QueryRunner> | null>();
/** The DataSource's parked connections (null when its reads commit at once). */
function parkedOf(dataSource: DataSource): ParkedConnections<QueryRunner> | null {
  let lot = PARKED.get(dataSource);
  if (lot === undefined) {
    const ms = settingsOf(dataSource).readCommitDelayMs ?? 0;
    lot = ms > 0 ? new ParkedConnections<QueryRunner>(ms, usable, endParked) : null;
    PARKED.set(dataSource, lot);
  }
  return lot;
}

/** Commits every parked connection's transaction and gives it back to the pool (before the pool closes). */
export async function endParkedConnections(dataSource: DataSource): Promise<void> {
  await PARKED.get(dataSource)?.endAll();
}

/** A connection that still owes the COMMIT of its last (read-only) transaction. */
const OWES_COMMIT = Symbol('tradetrail.owesCommit');
type Owing = QueryRunner & { [OWES_COMMIT]?: boolean };

/**
 * The COMMIT `runner` owes, as a statement to send first (none when it owes nothing); taken: the caller
 * sends it. Named `tt_commit` (parsed once per connection; startOf drops the name when prepared
 * statements are off).
 */
function owedCommit(runner: QueryRunner): AheadStatement[] {
  if (!(runner as Owing)[OWES_COMMIT]) return [];
  delete (runner as Owing)[OWES_COMMIT];
  return [{ name: 'tt_commit', text: 'COMMIT', values: [] }];
}

/** Whether a parked connection is still open (node-postgres marks a client lost or ending). */
function usable(runner: QueryRunner): boolean {
  const client = (runner as unknown as { databaseConnection?: { _ending?: boolean; _queryable?: boolean } })
    .databaseConnection;
  return !!client && !client._ending && client._queryable !== false && !runner.isReleased;
}

/**
 * A connection back to the pool, after the COMMIT it still owes when parked (a parked connection nobody
 * took, or one a request took and ran nothing on); discarded if that fails. Never throws.
 */
async function endParked(runner: QueryRunner): Promise<void> {
  try {
    const owed = owedCommit(runner);
    if (owed.length) await runner.query(owed[0].text);
    await runner.release();
  } catch (error) {
    await discard(runner, error);
  }
}

/** A transaction's start, as statements to send ahead of another one, and as one simple query. */
interface TransactionStart {
  ahead: AheadStatement[];
  simple: string;
}

const PENDING_BEGIN = Symbol('tradetrail.pendingBegin');
const WRAPPED = Symbol('tradetrail.queryWrapped');
type Deferring = QueryRunner & { [PENDING_BEGIN]?: TransactionStart; [WRAPPED]?: boolean };

/**
 * The statements of the transaction's start still to send ahead of `runner`'s first statement, now
 * taken (none once sent); unnamed unless `prepared`.
 */
function startOf(runner: QueryRunner, prepared: boolean): AheadStatement[] {
  const ahead = takePendingBegin(runner)?.ahead ?? [];
  return prepared ? ahead : ahead.map(({ text, values }) => ({ text, values }));
}

/**
 * The transaction start `deferBegin` left on `runner` for its first statement, now taken (undefined once
 * sent), behind the COMMIT the connection still owes, if any: the caller sends it.
 */
function takePendingBegin(runner: QueryRunner): TransactionStart | undefined {
  const pending = dropPendingBegin(runner);
  return pending && afterOwedCommit(runner, pending);
}

/** `start` behind the COMMIT `runner` still owes (taken: the caller sends it), or `start` when it owes none. */
function afterOwedCommit(runner: QueryRunner, start: TransactionStart): TransactionStart {
  const owed = owedCommit(runner);
  if (!owed.length) return start;
  return { ahead: [...owed, ...start.ahead], simple: `${owed[0].text}; ${start.simple}` };
}

/** The pending transaction start, dropped unsent (a COMMIT the connection owes stays owed). */
function dropPendingBegin(runner: QueryRunner): TransactionStart | undefined {
  const pending = (runner as Deferring)[PENDING_BEGIN];
  delete (runner as Deferring)[PENDING_BEGIN];
  return pending;
}

/**
 * Sends a write transaction's start (`START TRANSACTION`, the role and the identity settings) with its
 * first statement instead of on its own: one round trip fewer. The first statement sent through
 * `preparedRows` carries it (extended protocol, one Sync: see PipelinedQuery); any other first statement
 * (TypeORM's `query`, e.g. a loader or `m.query`) sends it alone first, as before. A request that runs
 * no statement starts no transaction.
 */
function deferBegin(runner: QueryRunner, start: TransactionStart): void {
  (runner as Deferring)[PENDING_BEGIN] = start;
  Object.assign(runner, { isTransactionActive: true, transactionDepth: 1 });
  // A parked connection's runner serves its next request: wrapped once.
  if ((runner as Deferring)[WRAPPED]) return;
  (runner as Deferring)[WRAPPED] = true;
  const query = runner.query.bind(runner);
  runner.query = (async (...args: Parameters<QueryRunner['query']>) => {
    const pending = takePendingBegin(runner);
    if (pending) await query(pending.simple);
    return query(...args);
  }) as QueryRunner['query'];
}

/**
 * node-postgres's Query, preceded by other statements (the transaction start, the book locks, the
 * other reads of a tick) in the same extended-protocol exchange: Parse (unless the connection has
 * parsed that named statement; Close first for a new name)/Bind/Describe/Execute for each, then the
 * query's own, one Sync, one ReadyForQuery. PostgreSQL runs them in order, each with a snapshot of its
 * own, and stops at the first error (the rest is skipped up to the Sync); the callback gets every
 * statement's result, the query's last. Relies on Query's `submit`/`prepare(connection)`, the
 * connection's parse/bind/describe/execute/close writers and its `parsedStatements`, and on the client
 * counting every ParseComplete as the query's own statement's: checked against pg 8.23.1.
 */
const PgQuery = (pg as unknown as { Query: new (config: object) => object }).Query;
/** node-postgres's own conversion of a parameter to its text (arrays as array literals, dates, JSON). */
const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;
class PipelinedQuery extends (PgQuery as new (config: object) => {
  name?: string;
  submit(connection: unknown): unknown;
  prepare(connection: unknown): void;
  handleError(error: unknown, connection: unknown): void;
}) {
  /** Named statements this exchange parses: after an error, whether each was is not known. */
  private readonly parsing: string[] = [];
  constructor(
    private readonly ahead: AheadStatement[],
    config: { name?: string; text: string; values: unknown[] },
  ) {
    // Extended protocol always: node-postgres sends a statement without parameters as a simple Query,
    // which would skip `prepare` — and with it the statements ahead (the transaction's start).
    super({ ...config, queryMode: 'extended' });
  }
  override submit(connection: unknown): unknown {
    const c = connection as PgConnection;
    if (this.name && uncertainOf(c).has(this.name)) {
      // Its Parse was in a failed exchange: node-postgres is to parse it again, after a Close (prepare).
      delete c.parsedStatements[this.name];
      uncertainOf(c).delete(this.name);
      this.closeFirst = true;
    }
    if (
      this.name &&
      c.parsedStatements[this.name] === undefined &&
      c.submittedNamedStatements?.[this.name] === undefined
    ) {
      this.parsing.push(this.name);
    }
    return super.submit(connection);
  }
  /** Close this statement's name before parsing it (it may or may not exist on the server). */
  private closeFirst = false;
  override prepare(connection: unknown): void {
    const c = connection as PgConnection;
    // Closing a statement that does not exist is no error: a name whose Parse may or may not have run
    // (an earlier exchange failed after it) is closed and parsed again.
    if (this.closeFirst) c.close({ type: 'S', name: this.name! });
    for (const { name, text, values } of this.ahead) {
      if (name === undefined) c.parse({ text, name: '', types: [] });
      else if (c.parsedStatements[name] === undefined || uncertainOf(c).has(name)) {
        c.close({ type: 'S', name });
        c.parse({ text, name, types: [] });
        c.parsedStatements[name] = text;
        uncertainOf(c).delete(name);
        this.parsing.push(name);
      }
      c.bind({ portal: '', statement: name ?? '', values, valueMapper: prepareValue });
      c.describe({ type: 'P', name: '' }); // a statement with rows describes them before they come
      c.execute({ portal: '', rows: 0 });
    }
    super.prepare(connection);
  }
  override handleError(error: unknown, connection: unknown): void {
    // PostgreSQL skips everything after the failure up to the Sync: a statement this exchange parsed
    // may exist or not. (The client also took the ParseCompletes of the statements ahead for this
    // one's.) Each is closed and parsed again on its next use.
    const c = connection as PgConnection;
    for (const name of this.parsing) {
      delete c.parsedStatements[name];
      uncertainOf(c).add(name);
    }
    super.handleError(error, connection);
  }
}

/** node-postgres's connection, as PipelinedQuery writes to it (checked against pg 8.23.1). */
interface PgConnection {
  parsedStatements: Record<string, string | undefined>;
  submittedNamedStatements?: Record<string, string | undefined>;
  parse(m: { text: string; name: string; types: unknown[] }): void;
  bind(m: { portal: string; statement: string; values: unknown[]; valueMapper: (v: unknown) => unknown }): void;
  describe(m: { type: string; name: string }): void;
  execute(m: { portal: string; rows: number }): void;
  close(m: { type: 'S'; name: string }): void;
  [UNCERTAIN]?: Set<string>;
}
const UNCERTAIN = Symbol('tradetrail.uncertainStatements');
/** The connection's named statements whose Parse was in a failed exchange. */
function uncertainOf(c: PgConnection): Set<string> {
  return (c[UNCERTAIN] ??= new Set());
}

/**
 * PostgreSQL's answer when a named statement is not on the server connection (26000,
 * "prepared statement … does not exist") or another one of that name is (42P05, "… already exists"):
 * the connection's transactions run on different server connections, as behind a pooler in
 * transaction mode. Said in the server's log with what to do (the client sees an internal error).
 */
function misplacedStatement(error: unknown): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== '26000' && code !== '42P05') return databaseError(error);
  return new Error(
    `${(error as Error).message}: this connection's named statements are not where it prepared them, as behind a ` +
      'pooler in transaction mode that does not track prepared statements (PgBouncer before 1.21, or without ' +
      'max_prepared_statements). Set TRADETRAIL_PREPARED_STATEMENTS=false.',
    { cause: error },
  );
}
