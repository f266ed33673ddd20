import type { EntityManager } from 'typeorm';
import { type BinaryRow, binaryRows } from '../db/binary-fetch';
import { arrayElements, BufferPool, ByteWriter, OID, RecordReader, writeJson } from '../db/binary-values';
import { NotFoundError } from '../errors';
import { ENTRY_FIELDS } from '../execution-log/entry-encoding';
import {
  findCheckpoint,
  inclusionProofsOfLeaves,
  type LeafRow,
  type StoredCheckpointRow,
} from '../execution-log/proof.service';
import {
  TRAIL_FORMAT,
  TRAIL_VERSION,
  type TrailCheckpointRecord,
  type TrailHeaderRecord,
} from '../execution-log/trail';
import { SqlWhere } from '../request-db';

/**
 * The export of a trail (issue 9 point 4; README "Exporting a trail"): the orders of an order, a
 * position or a trader, optionally those created in [from, to), each with its fills (and their
 * corrections) and its log entries with their inclusion proofs against the latest checkpoint, as
 * NDJSON (the trail format of trail.ts, which `npm run verify` reads, plus `order`, `fill` and `end`
 * records that verifiers of version 1 ignore) or as one CSV table.
 *
 * Memory does not grow with the export: the rows come from one server-side cursor (`DECLARE … BINARY
 * CURSOR` inside the request's transaction, `FETCH 1000` at a time; this works through PgBouncer's
 * transaction pooling) that already yields them in output order, and a batch is written, waiting for
 * the client to take it, before the one after the next is fetched (at most two batches in memory). A
 * batch costs at most two statements: the FETCH (whose entry rows carry their leaf in the Merkle tree)
 * and the tree nodes their proofs need; both run while the batch before is formatted and written.
 *
 * The rows stay binary from PostgreSQL to the response: each is a record of its columns in binary
 * form, read without node-postgres's per-row objects and text (binary-fetch.ts), and written as NDJSON
 * or CSV bytes straight from the binary values (binary-values.ts: exact numerics, microsecond times).
 * Having PostgreSQL write every record as JSON text cost it more CPU than finding the rows, and this
 * process as much again to take that text apart and put it back together.
 *
 * This reads orders, fills, corrections and log entries with its own SQL instead of their modules'
 * loaders (STYLE.md asks otherwise): loaders materialise whole lists, and a streamed export has to
 * read them as one ordered cursor. Row-level security applies all the same (the caller's transaction
 * runs as tradetrail_app with the request's identity).
 */
export type ExportKind = 'order' | 'position' | 'trader';
export type ExportFormat = 'ndjson' | 'csv';

export interface ExportRequest {
  kind: ExportKind;
  /** A UUID, lower case (checked by the caller). */
  id: string;
  /** ISO 8601 times (checked by the caller), passed to PostgreSQL as they are (microseconds kept). */
  from?: string;
  to?: string;
  format: ExportFormat;
}

/** Where an export is written: the HTTP response, or anything else that takes text with back-pressure. */
export interface ExportSink {
  /** True once the reader went away: the export stops at the next batch. */
  readonly closed: boolean;
  /** Called once, when the export is sure to start (every check passed): send the headers. */
  start(contentType: string, extension: string, checkpoint: StoredCheckpointRow | null): void;
  /**
   * Resolves when the reader can take more (or is gone). `written` is called once the chunk's bytes
   * are handed on (its buffer may then be used again), if they ever are.
   */
  write(chunk: string | Buffer, written?: () => void): Promise<void>;
}

export interface ExportCounts {
  orders: number;
  fills: number;
  corrections: number;
  entries: number;
  /** Entries with an inclusion proof against the checkpoint. */
  proven: number;
}

/** Rows per FETCH (and per batch of inclusion proofs). */
export const EXPORT_BATCH = 1000;

const CURSOR = 'tradetrail_export';

/**
 * What each record holds, in order: its NDJSON key (CSV columns are their snake_case) and the column.
 * Rows come from a BINARY cursor as records (`ROW(…)`) and are written here from their binary values
 * (RecordReader): numerics as their exact text (`"20.000000000"`, never a float), times as UTC with
 * microseconds, enums as their text.
 */
type Fields = readonly (readonly [key: string, sql: string])[];

const ORDER_FIELDS: Fields = [
  ['id', 'o.id'],
  ['traderId', 'o.trader_id'],
  ['positionId', 'o.position_id'],
  ['clientOrderId', 'o.client_order_id'],
  ['brokerOrderId', 'o.broker_order_id'],
  ['symbol', 'o.symbol'],
  ['side', 'o.side::text'],
  ['orderType', 'o.order_type::text'],
  ['timeInForce', 'o.time_in_force::text'],
  ['quantity', 'o.quantity'],
  ['price', 'o.price'],
  ['stopPrice', 'o.stop_price'],
  ['stopLoss', 'o.stop_loss'],
  ['takeProfit', 'o.take_profit'],
  ['status', 'o.status::text'],
  ['baseStatus', 'o.base_status::text'],
  ['brokerStatus', 'o.broker_status'],
  ['filledQuantity', 'o.filled_quantity'],
  ['overfilledQuantity', 'o.overfilled_quantity'],
  ['fillNotional', 'o.fill_notional'],
  ['averageFillPrice', 'o.average_fill_price'],
  ['tradeId', 'o.trade_id'],
  ['strategyType', 'o.strategy_type::text'],
  ['source', 'o.source::text'],
  ['replacesOrderId', 'o.replaces_order_id'],
  ['parentOrderId', 'o.parent_order_id'],
  ['createdAt', 'o.created_at'],
  ['updatedAt', 'o.updated_at'],
  ['submittedAt', 'o.submitted_at'],
  ['filledAt', 'o.filled_at'],
  ['canceledAt', 'o.canceled_at'],
  ['expiredAt', 'o.expired_at'],
  ['expiresAt', 'o.expires_at'],
];

/** A `fill` record, as recorded (never changed); its `corrections` say what it became. */
const FILL_FIELDS: Fields = [
  ['id', 'f.id'],
  ['orderId', 'f.order_id'],
  ['traderId', 'f.trader_id'],
  ['positionId', 'f.position_id'],
  ['symbol', 'f.symbol'],
  ['execId', 'f.exec_id'],
  ['venue', 'f.venue'],
  ['quantity', 'f.quantity'],
  ['price', 'f.price'],
  ['commission', 'f.commission'],
  ['liquidity', 'f.liquidity::text'],
  ['overfilledQuantity', 'f.overfilled_quantity'],
  ['arrival', 'f.arrival::text'],
  ['arrivalException', 'f.arrival_exception::text'],
  ['executedAt', 'f.executed_at'],
  ['createdAt', 'f.created_at'],
];

/** One correction or bust of a fill, oldest first in the fill's `corrections`. */
const CORRECTION_FIELDS: Fields = [
  ['id', 'c.id'],
  ['fillId', 'c.fill_id'],
  ['correctionId', 'c.correction_id'],
  ['kind', 'c.kind::text'],
  ['quantity', 'c.quantity'],
  ['price', 'c.price'],
  ['commission', 'c.commission'],
  ['previousQuantity', 'c.previous_quantity'],
  ['previousPrice', 'c.previous_price'],
  ['previousCommission', 'c.previous_commission'],
  ['reason', 'c.reason'],
  ['actor', 'c.actor'],
  ['source', 'c.source'],
  ['createdAt', 'c.created_at'],
];

/** A log entry's fields: exactly the canonical encoding's (ENTRY_FIELDS), which the verifier hashes. */
const ENTRY_COLUMNS: Record<(typeof ENTRY_FIELDS)[number], string> = {
  id: 'l.id',
  orderId: 'l.order_id',
  traderId: 'l.trader_id',
  seq: 'l.seq',
  action: 'l.action::text',
  fromStatus: 'l.from_status::text',
  toStatus: 'l.to_status::text',
  reason: 'l.reason',
  errorCode: 'l.error_code',
  retryAttempt: 'l.retry_attempt',
  actor: 'l.actor',
  source: 'l.source',
  details: 'l.details',
  occurredAt: 'l.occurred_at',
  recordedAt: 'l.recorded_at',
  prevHash: 'l.prev_hash',
  hash: 'l.hash',
  seal: 'l.seal',
};
const ENTRY_EXPORT_FIELDS: Fields = ENTRY_FIELDS.map((key) => [key, ENTRY_COLUMNS[key]] as const);

/** The fields of each kind of record (for tests that check the records against PostgreSQL's own JSON of them). */
export const EXPORT_FIELDS = { order: ORDER_FIELDS, fill: FILL_FIELDS, correction: CORRECTION_FIELDS } as const;

const row = (fields: Fields) => `ROW(${fields.map(([, sql]) => sql).join(', ')})`;
/** `"key":` of each field, for writing a record's members. */
const jsonKeys = (fields: Fields) => fields.map(([key]) => `${JSON.stringify(key)}:`);
const ORDER_KEYS = jsonKeys(ORDER_FIELDS);
const FILL_KEYS = jsonKeys(FILL_FIELDS);
const CORRECTION_KEYS = jsonKeys(CORRECTION_FIELDS);
const ENTRY_KEYS = jsonKeys(ENTRY_EXPORT_FIELDS);

/**
 * One row of the export's cursor, in output order: its kind (0 order, 1 fill, 2 entry) and its record
 * (the bytes of the `ROW(…)`, a view into the fetched data). An entry's record ends with its leaf in
 * the Merkle tree (index and hash; NULL when it is not in the tree yet), read when the batch is fetched.
 */
interface CursorRow {
  k: 0 | 1 | 2;
  record: Buffer;
  /** An entry's leaf index and hash; null when it is not in the tree yet (and for the other kinds). */
  leaf: LeafRow | null;
  /** A fill's corrections: where each one's record starts in `record` (empty for the other kinds). */
  corrections: number[];
}

/**
 * The rows of the export, in output order: for each order (by created_at, then id) the order (k 0),
 * its fills (k 1, in execution time, then arrival; each with its corrections, oldest first, as an
 * array of records) and its log entries (k 2, in seq order; exactly the canonical encoding's fields,
 * then the entry's leaf in the Merkle tree: one index look-up in the cursor instead of a statement per
 * batch). The orders are selected and sorted first (an index look-up of the trader, the position or the
 * order) and each order's few rows are sorted on their own (an incremental sort), so PostgreSQL sorts
 * only the orders themselves. The values stay binary: PostgreSQL neither formats nor escapes them
 * (formatting them as JSON text there cost it more than reading the rows).
 */
function cursorSql(request: ExportRequest, where: SqlWhere): string {
  const id = where.param(request.id);
  if (request.kind === 'order') where.conditions.push(`o.id = ${id}::uuid`);
  else if (request.kind === 'trader') where.conditions.push(`o.trader_id = ${id}::uuid`);
  // A position's orders: those linked to it, and those with a fill in it (a flip's order is linked to
  // the position of its first fill). Both sides are index look-ups.
  else
    where.conditions.push(
      `o.id IN (SELECT p.id FROM orders p WHERE p.position_id = ${id}::uuid
                UNION SELECT f.order_id FROM fills f WHERE f.position_id = ${id}::uuid)`,
    );
  where.add(`o.created_at >= ?::timestamptz`, request.from).add(`o.created_at < ?::timestamptz`, request.to);
  const corrections = `(SELECT array_agg(${row(CORRECTION_FIELDS)} ORDER BY c.seq) FROM fill_corrections c WHERE c.fill_id = f.id)`;
  // The orders, sorted on their own first: the trail's rows then come in order with a sort per order
  // (an incremental sort). Left to itself, a cursor's plan walks every order by time and filters out the
  // other traders' (a fast start, but at 1,000,000 orders it read 1.6 million pages instead of 0.7).
  return `SELECT x.k, x.r
    FROM (SELECT * FROM orders o ${where} ORDER BY o.created_at, o.id) o
    CROSS JOIN LATERAL (
      SELECT 0 AS k, NULL::timestamptz AS t, 0::bigint AS n, ${row(ORDER_FIELDS)} AS r
      UNION ALL
      SELECT 1, f.executed_at, f.arrival, ROW(${FILL_FIELDS.map(([, sql]) => sql).join(', ')}, ${corrections})
      FROM fills f WHERE f.order_id = o.id
      UNION ALL
      SELECT 2, NULL, l.seq, ROW(${ENTRY_EXPORT_FIELDS.map(([, sql]) => sql).join(', ')}, ll.leaf_index, ll.leaf_hash)
      FROM execution_logs l LEFT JOIN log_leaves ll ON ll.entry_id = l.id
      WHERE l.order_id = o.id
    ) x
    ORDER BY o.created_at, o.id, x.k, x.t, x.n`;
}

/** The checks before anything is sent: the thing exported must exist and be visible (row-level security). */
async function assertVisible(m: EntityManager, request: ExportRequest): Promise<void> {
  const table = { order: 'orders', position: 'positions', trader: 'traders' }[request.kind];
  const rows = (await m.query(`SELECT 1 FROM ${table} WHERE id = $1::uuid`, [request.id])) as unknown[];
  // The same answer for "does not exist" and "not yours": existence is not revealed.
  if (!rows.length) throw new NotFoundError(`There is no ${request.kind} ${request.id} that you may see.`);
}

/** An entry's inclusion proof: its leaf index and the proof's hashes. */
interface EntryProof {
  leafIndex: number;
  hashes: Buffer[];
}

/** A batch of cursor rows, with the inclusion proof of each entry (none: pending). */
interface Batch {
  rows: CursorRow[];
  /** By the entry's position in `rows`. */
  proofs: Map<number, EntryProof>;
}

/** Readers of a record and of the records inside it (a fill's corrections). */
const OUTER = new RecordReader();
const INNER = new RecordReader();

/** The starts of a fill's corrections (its record's field after FILL_FIELDS, an array of records). */
function correctionsOf(fill: Buffer): number[] {
  OUTER.open(fill, 0);
  for (let i = 0; i <= FILL_FIELDS.length; i++) OUTER.next();
  return OUTER.start < 0 ? [] : (arrayElements(fill, OUTER.start) as number[]);
}

/** Formats batches: one buffer per batch (memory follows the batch, not the export). */
interface Writer {
  contentType: string;
  extension: string;
  begin(header: TrailHeaderRecord, checkpoint: StoredCheckpointRow | null): string;
  rows(batch: Batch, pool: BufferPool): Buffer;
  end(counts: ExportCounts): string;
}

/**
 * NDJSON: the trail format (trail.ts), each order followed by its fills and its entries: an `order`
 * or `fill` record is `{"type":…,` + the record's members, an `entry` record is `TrailEntryRecord` with
 * the entry's canonical fields (the verifier parses and JCS-encodes them, as for writeTrail's output).
 * Compact JSON, keys in the order of the field lists above.
 */
const NDJSON: Writer = {
  contentType: 'application/x-ndjson',
  extension: 'ndjson',
  begin(header, checkpoint) {
    let text = `${JSON.stringify(header)}\n`;
    if (checkpoint) {
      text += `${JSON.stringify({ type: 'checkpoint', note: checkpoint.note } satisfies TrailCheckpointRecord)}\n`;
    }
    return text;
  },
  rows({ rows, proofs }, pool) {
    const out = new ByteWriter(BATCH_BYTES, pool);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r.k === 0) {
        out.bytes(ORDER_START);
        writeMembers(out, r.record, ORDER_KEY_BYTES);
        out.bytes(LINE_END);
      } else if (r.k === 1) {
        out.bytes(FILL_START);
        writeMembers(out, r.record, FILL_KEY_BYTES);
        out.bytes(CORRECTIONS_START);
        r.corrections.forEach((at, c) => {
          if (c > 0) out.bytes(ELEMENT_SEPARATOR);
          out.byte(0x7b);
          writeMembers(out, r.record, CORRECTION_KEY_BYTES, at, INNER);
          out.byte(0x7d);
        });
        out.bytes(CORRECTIONS_END);
      } else writeEntryLine(out, r.record, proofs.get(i));
    }
    return out.take();
  },
  // Lets a reader tell a complete export from a truncated one (a trail cannot show its own end).
  end: (counts) => `${JSON.stringify({ type: 'end', ...counts })}\n`,
};

/**
 * `{"type":"entry","entry":{…},"leafIndex":…,"inclusionProof":…}` (TrailEntryRecord): the entry's members,
 * its leaf and its proof as JSON.stringify would write them (hex needs no escaping).
 */
function writeEntryLine(out: ByteWriter, record: Buffer, proof: EntryProof | undefined): void {
  out.bytes(ENTRY_START);
  writeMembers(out, record, ENTRY_KEY_BYTES);
  if (!proof) return out.bytes(ENTRY_PENDING_END);
  out.bytes(ENTRY_LEAF);
  out.int(proof.leafIndex);
  out.bytes(ENTRY_PROOF);
  proof.hashes.forEach((hash, i) => {
    // `"<hex>"`, with a comma before all but the first, written straight into the batch (a cache of
    // each distinct node's text saved nothing measurable and made garbage).
    out.room(67);
    if (i > 0) out.byte(0x2c);
    out.byte(0x22);
    out.hex(hash);
    out.byte(0x22);
  });
  out.bytes(ENTRY_PROVEN_END);
}

/**
 * Room for a batch: 1,000 rows with their proofs against a tree of millions of leaves take up to about
 * 1.7 MB of NDJSON (1.5 MB of CSV). A batch that outgrows its buffer is copied into one twice as large,
 * which the pool cannot take back (at 1.5 MB, the size before, that was every batch of a large trader's
 * export: 0.8 s of copying per 1,000,000 rows and 3 MB of garbage per batch).
 */
const BATCH_BYTES = 1 << 22;

/** The fixed pieces of NDJSON lines, as bytes. */
const ascii = (text: string) => Buffer.from(text, 'latin1');
const ORDER_START = ascii('{"type":"order",');
const FILL_START = ascii('{"type":"fill",');
const CORRECTIONS_START = ascii(',"corrections":[');
/** What PostgreSQL's json_agg wrote between the corrections, kept. */
const ELEMENT_SEPARATOR = ascii(', ');
const CORRECTIONS_END = ascii(']}\n');
const LINE_END = ascii('}\n');
const ENTRY_START = ascii('{"type":"entry","entry":{');
const ENTRY_PENDING_END = ascii('},"leafIndex":null,"inclusionProof":null}\n');
const ENTRY_LEAF = ascii('},"leafIndex":');
const ENTRY_PROOF = ascii(',"inclusionProof":[');
const ENTRY_PROVEN_END = ascii(']}\n');
const keyBytes = (keys: readonly string[]) => keys.map((key, i) => ascii(i === 0 ? key : `,${key}`));
const ORDER_KEY_BYTES = keyBytes(ORDER_KEYS);
const FILL_KEY_BYTES = keyBytes(FILL_KEYS);
const CORRECTION_KEY_BYTES = keyBytes(CORRECTION_KEYS);
const ENTRY_KEY_BYTES = keyBytes(ENTRY_KEYS);

/** A record's members (`"id":"…","traderId":"…",…`), `keys` (with their commas) for its first fields. */
function writeMembers(out: ByteWriter, buf: Buffer, keys: readonly Buffer[], at = 0, reader = OUTER): void {
  reader.open(buf, at);
  for (const key of keys) {
    reader.next();
    out.bytes(key);
    writeJson(reader, out);
  }
}

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * The CSV's columns: `record_type` (order, fill, correction, log_entry, checkpoint), then the union of
 * what the kinds need, named as their NDJSON keys in snake_case. A column several kinds share means
 * the same for each (`quantity`: the order's, the fill's, or the corrected quantity; `reason`, `actor`,
 * `source`: the correction's or the entry's), except `id`, the row's own id; `order_id` and `fill_id`
 * name what the row belongs to (an order row's `order_id` is its own id, a fill's `fill_id` too), so a
 * spreadsheet filter on `order_id` shows one order's whole trail.
 */
const CHECKPOINT_COLUMNS = ['tree_size', 'root_hash', 'signed_at', 'note'];
const CSV_COLUMNS: readonly string[] = [
  ...new Set([
    'record_type',
    'id',
    'order_id',
    'fill_id',
    'trader_id',
    ...[ORDER_FIELDS, FILL_FIELDS, CORRECTION_FIELDS].flatMap((fields) => fields.map(([key]) => snake(key))),
    ...ENTRY_FIELDS.map(snake),
    'leaf_index',
    'inclusion_proof',
    ...CHECKPOINT_COLUMNS,
  ]),
];
const COLUMN = new Map(CSV_COLUMNS.map((c, i) => [c, i]));
/** Where each record key goes in a CSV row (keys of all kinds, computed once). */
const KEY_COLUMN = new Map(
  [ORDER_FIELDS, FILL_FIELDS, CORRECTION_FIELDS, ENTRY_EXPORT_FIELDS]
    .flatMap((fields) => fields.map(([key]) => key))
    .map((key) => [key, COLUMN.get(snake(key))!]),
);

function csvRow(recordType: string, values: Record<string, unknown>, also: Record<string, unknown> = {}): unknown[] {
  const row: unknown[] = new Array(CSV_COLUMNS.length).fill(null);
  row[0] = recordType;
  for (const key in values) {
    const column = KEY_COLUMN.get(key);
    if (column !== undefined) row[column] = values[key];
  }
  for (const key in also) row[COLUMN.get(key)!] = also[key];
  return row;
}

/** A plain number (`-1.5`, `10.000000000`): a spreadsheet reads it as a number, not a formula. */
const PLAIN_NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/**
 * Protection against formula injection (OWASP "CSV injection"): a cell a spreadsheet would run as a
 * formula (= + - @, or a tab or carriage return first) gets a leading single quote; plain numbers
 * stay numbers.
 */
export function neutraliseFormula(value: string): string {
  return /^[=+\-@\t\r]/.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
}

/** What makes a field quoted (RFC 4180: a comma, a quote or a line break; a bare CR or LF too). */
const NEEDS_QUOTES = /[",\r\n]/;

/** One field: null empty, a string with formulas neutralised, a number as JavaScript prints it; quoted when needed. */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') text = neutraliseFormula(value);
  else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else if (typeof value === 'boolean') text = value ? '1' : '';
  else text = JSON.stringify(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * One CSV record, ending with CRLF (RFC 4180). Written here rather than by csv-stringify (the `csv`
 * project), whose output it reproduces byte for byte for these values (record_delimiter 'windows',
 * quoted_match /[\r\n]/, cast.string neutraliseFormula; test/export.test.ts checks it): with ~90
 * mostly empty columns per record, csv-stringify's per-field work made it the largest cost of a CSV
 * export. Measured on 100,000 such records (6.9.0, Node 20): its sync API in slices of 100 1.15 s, its
 * streaming API 1.5 s, this 0.36 s. Its own `escape_formulas` would also quote `-1.5`, so the
 * formula protection is neutraliseFormula in either case.
 */
export function csvLine(values: readonly unknown[]): string {
  const fields = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) fields[i] = csvField(values[i]);
  return `${fields.join(',')}\r\n`;
}

/** The positions of a record's fields (its type, start and end; start -1 for NULL), for random access. */
class FieldTable {
  buf!: Buffer;
  readonly oid = new Uint32Array(64);
  readonly start = new Int32Array(64);
  readonly end = new Int32Array(64);
  private readonly reader = new RecordReader();
  read(buf: Buffer, at: number): this {
    this.buf = buf;
    const count = this.reader.open(buf, at);
    for (let i = 0; i < count; i++) {
      this.reader.next();
      this.oid[i] = this.reader.oid;
      this.start[i] = this.reader.start;
      this.end[i] = this.reader.end;
    }
    return this;
  }
}
const OWN = new FieldTable();
const INNER_FIELDS = new FieldTable();

/** Sources of a CSV column besides the row's own fields (which are their index, 0 and up). */
const NONE = -1;
/** A field of the record the row sits in (a correction's fill): OUTER_FIELD + its index. */
const OUTER_FIELD = 1000;
const DETAILS_JSON = -2;
const LEAF_INDEX = -3;
const INCLUSION_PROOF = -4;

interface CsvPlan {
  /** `record_type`'s value. */
  type: Buffer;
  /** The columns after the first that this kind of record fills, in order: where each value comes from. */
  sources: Int16Array;
  /** The commas before each of them (after the previous one), as bytes: the empty columns between. */
  gaps: Buffer[];
  /** The commas after the last of them, up to the end of the row. */
  tail: Buffer;
}

/** `n` commas. */
const commas = (n: number) => ascii(','.repeat(n));

function csvPlan(recordType: string, fields: Fields, also: Record<string, number>): CsvPlan {
  const all = new Int16Array(CSV_COLUMNS.length - 1).fill(NONE);
  fields.forEach(([key], i) => (all[KEY_COLUMN.get(key)! - 1] = i));
  for (const [column, source] of Object.entries(also)) all[COLUMN.get(column)! - 1] = source;
  // Most of the ~90 columns are empty for any one kind: only the filled ones are visited per row.
  const sources: number[] = [];
  const gaps: Buffer[] = [];
  let last = -1;
  all.forEach((source, column) => {
    if (source === NONE) return;
    sources.push(source);
    gaps.push(commas(column - last));
    last = column;
  });
  return { type: ascii(recordType), sources: Int16Array.from(sources), gaps, tail: commas(all.length - 1 - last) };
}
const fieldIndex = (fields: Fields, key: string) => fields.findIndex(([k]) => k === key);
const CSV_ORDER = csvPlan('order', ORDER_FIELDS, { order_id: fieldIndex(ORDER_FIELDS, 'id') });
const CSV_FILL = csvPlan('fill', FILL_FIELDS, { fill_id: fieldIndex(FILL_FIELDS, 'id') });
const CSV_CORRECTION = csvPlan('correction', CORRECTION_FIELDS, {
  order_id: OUTER_FIELD + fieldIndex(FILL_FIELDS, 'orderId'),
  trader_id: OUTER_FIELD + fieldIndex(FILL_FIELDS, 'traderId'),
});
const CSV_LOG_ENTRY = csvPlan('log_entry', ENTRY_EXPORT_FIELDS, {
  details: DETAILS_JSON,
  leaf_index: LEAF_INDEX,
  inclusion_proof: INCLUSION_PROOF,
});
const DETAILS = fieldIndex(ENTRY_EXPORT_FIELDS, 'details');
const CRLF = ascii('\r\n');

/**
 * One CSV record of a cursor row, byte for byte what csvLine writes for the values JSON.parse gives
 * for the row's JSON (csvRow with the same extra columns): a field needs no string unless it must be
 * quoted or neutralised.
 */
function writeCsvRow(out: ByteWriter, plan: CsvPlan, own: FieldTable, outer?: FieldTable, proof?: EntryProof): void {
  out.bytes(plan.type);
  const { sources, gaps } = plan;
  for (let i = 0; i < sources.length; i++) {
    out.bytes(gaps[i]);
    const source = sources[i];
    if (source >= OUTER_FIELD) writeCsvField(out, outer!, source - OUTER_FIELD);
    else if (source >= 0) writeCsvField(out, own, source);
    else if (source === DETAILS_JSON) {
      if (own.start[DETAILS] >= 0) out.utf8(csvField(JSON.stringify(fieldValue(own, DETAILS))));
    } else if (source === LEAF_INDEX) {
      if (proof) out.int(proof.leafIndex);
    } else if (source === INCLUSION_PROOF && proof) {
      proof.hashes.forEach((hash, i) => {
        if (i > 0) out.byte(0x20);
        out.hex(hash);
      });
    }
  }
  out.bytes(plan.tail);
  out.bytes(CRLF);
}

const READER = new RecordReader();
/** Field `i` of a table as the value JSON.parse gives for its JSON. */
function fieldValue(table: FieldTable, i: number): unknown {
  READER.buf = table.buf;
  READER.oid = table.oid[i];
  READER.start = table.start[i];
  READER.end = table.end[i];
  return READER.value();
}

/** A first character that makes a spreadsheet read a cell as a formula (see neutraliseFormula). */
const FORMULA_START = new Set([0x3d, 0x2b, 0x2d, 0x40, 0x09, 0x0d]);

/** Field `i` as csvField writes its value. */
function writeCsvField(out: ByteWriter, table: FieldTable, i: number): void {
  const s = table.start[i];
  if (s < 0) return;
  const b = table.buf;
  switch (table.oid[i]) {
    case OID.uuid:
      return out.uuid(b, s);
    case OID.timestamptz:
      out.timestamptz(b, s);
      return;
    case OID.numeric:
      // Always a plain number (never quoted, never neutralised), except -Infinity.
      if (b.readUInt16BE(s + 4) !== 0xf000) return out.numeric(b, s);
      break;
    case OID.text:
    case OID.varchar:
    case OID.bpchar: {
      const e = table.end[i];
      let plain = e === s || !FORMULA_START.has(b[s]);
      for (let j = s; plain && j < e; j++) {
        const c = b[j];
        if (c === 0x22 || c === 0x2c || c === 0x0d || c === 0x0a) plain = false;
      }
      if (plain) return out.bytes(b, s, e);
      break;
    }
  }
  out.utf8(csvField(fieldValue(table, i)));
}

const CSV: Writer = {
  contentType: 'text/csv; charset=utf-8',
  extension: 'csv',
  begin(_header, checkpoint) {
    // A byte order mark, so that spreadsheets read the file as UTF-8; then the header row.
    const rows: unknown[][] = [[...CSV_COLUMNS]];
    if (checkpoint) {
      rows.push(
        csvRow(
          'checkpoint',
          {},
          {
            tree_size: checkpoint.treeSize,
            root_hash: checkpoint.rootHash.toString('hex'),
            signed_at: checkpoint.signedAt.toISOString(),
            note: checkpoint.note,
          },
        ),
      );
    }
    return `\ufeff${rows.map(csvLine).join('')}`;
  },
  rows({ rows, proofs }, pool) {
    const out = new ByteWriter(BATCH_BYTES, pool);
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i];
      if (r.k === 0) writeCsvRow(out, CSV_ORDER, OWN.read(r.record, 0));
      else if (r.k === 1) {
        writeCsvRow(out, CSV_FILL, OWN.read(r.record, 0));
        for (const at of r.corrections) {
          // Its order and trader are its fill's (OWN still holds the fill's fields).
          writeCsvRow(out, CSV_CORRECTION, INNER_FIELDS.read(r.record, at), OWN);
        }
      } else writeCsvRow(out, CSV_LOG_ENTRY, OWN.read(r.record, 0), undefined, proofs.get(i));
    }
    return out.take();
  },
  end: () => '',
};

const EXPORT_WRITERS: Record<ExportFormat, Writer> = { ndjson: NDJSON, csv: CSV };

/**
 * Writes the export of `request` to `sink`, reading with `m` (the caller's transaction: REPEATABLE READ,
 * READ ONLY, as the request's identity, so row-level security applies and every row comes from one
 * snapshot). Throws NotFoundError before anything is sent when the order, position or trader is not
 * visible. Stops early, without error, when the sink closes.
 *
 * PostgreSQL and this process work at the same time: the next batch's FETCH and proof statement are
 * sent before the current batch is formatted and written (one statement at a time on the connection
 * all the same: the proof statement follows its FETCH).
 */
export async function writeExport(m: EntityManager, request: ExportRequest, sink: ExportSink): Promise<ExportCounts> {
  const writer = EXPORT_WRITERS[request.format];
  await assertVisible(m, request);
  const checkpoint = await findCheckpoint(m);
  const where = new SqlWhere();
  const sql = cursorSql(request, where);
  await m.query(`DECLARE ${CURSOR} BINARY NO SCROLL CURSOR FOR ${sql}`, where.params);
  // The FETCH and then the statement of its proofs, one after the other on the connection; the loop
  // starts the next batch's before it formats and writes the current one.
  const fetch = async (): Promise<Batch> => {
    const rows = (await binaryRows(m.queryRunner!, `FETCH ${EXPORT_BATCH} FROM ${CURSOR}`)).map(cursorRow);
    return { rows, proofs: await proofsOf(m, rows, checkpoint) };
  };
  const start = (): Promise<Batch> => {
    const batch = fetch();
    // Handled where it is awaited (or in `finally`); this only keeps a failure while the current
    // batch is written from counting as an unhandled rejection.
    batch.catch(() => undefined);
    return batch;
  };

  sink.start(writer.contentType, writer.extension, checkpoint);
  const header: TrailHeaderRecord = {
    type: 'header',
    format: TRAIL_FORMAT,
    version: TRAIL_VERSION,
    createdAt: new Date().toISOString(),
  };
  await sink.write(writer.begin(header, checkpoint));
  const counts: ExportCounts = { orders: 0, fills: 0, corrections: 0, entries: 0, proven: 0 };
  const pool = new BufferPool(BATCH_BYTES);
  let next: Promise<Batch> | null = start();
  try {
    while (next && !sink.closed) {
      const batch: Batch = await next;
      next = null;
      if (!batch.rows.length) break;
      if (batch.rows.length === EXPORT_BATCH) next = start();
      count(batch, counts);
      const bytes = writer.rows(batch, pool);
      await sink.write(bytes, () => pool.release(bytes));
    }
  } finally {
    // A batch still being read when the reader went away (or formatting failed) ends before the transaction does.
    await next?.catch(() => undefined);
  }
  if (!sink.closed) await sink.write(writer.end(counts));
  return counts;
}

/**
 * The inclusion proofs of a batch's entries against the checkpoint (one statement: the tree nodes; none
 * without a checkpoint or entries in the tree). Entries outside it (not integrated yet, or after it)
 * have none: pending.
 */
async function proofsOf(
  m: EntityManager,
  rows: CursorRow[],
  checkpoint: StoredCheckpointRow | null,
): Promise<Batch['proofs']> {
  const proofs: Batch['proofs'] = new Map();
  if (!checkpoint) return proofs;
  const ids: number[] = [];
  const leaves: LeafRow[] = [];
  rows.forEach((r, i) => {
    if (r.leaf) {
      ids.push(i);
      leaves.push(r.leaf);
    }
  });
  if (!ids.length) return proofs;
  (await inclusionProofsOfLeaves(m, leaves, checkpoint)).forEach((proof, i) => {
    if (!(proof instanceof Error)) proofs.set(ids[i], { leafIndex: proof.leafIndex, hashes: proof.hashes });
  });
  return proofs;
}

/**
 * A fetched row (its kind as int4, its record): an entry's leaf is read from its record's last fields,
 * a fill's corrections are found in its record's last one.
 */
function cursorRow([k, record]: BinaryRow): CursorRow {
  const kind = k!.readInt32BE(0) as CursorRow['k'];
  let leaf: LeafRow | null = null;
  if (kind === 2) {
    OUTER.open(record!, 0);
    for (let i = 0; i < ENTRY_EXPORT_FIELDS.length; i++) OUTER.next();
    // The leaf index (int8: exact as a number far beyond any log's size) and its hash; NULL: not in the tree yet.
    if (OUTER.next()) {
      const leafIndex = Number(record!.readBigInt64BE(OUTER.start));
      if (OUTER.next()) leaf = { leafIndex, leafHash: record!.subarray(OUTER.start, OUTER.end) };
    }
  }
  return { k: kind, record: record!, leaf, corrections: kind === 1 ? correctionsOf(record!) : [] };
}

function count({ rows, proofs }: Batch, counts: ExportCounts): void {
  for (const r of rows) {
    if (r.k === 0) counts.orders += 1;
    else if (r.k === 2) counts.entries += 1;
    else {
      counts.fills += 1;
      counts.corrections += r.corrections.length;
    }
  }
  counts.proven += proofs.size;
}
