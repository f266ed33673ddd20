import type { EntityManager } from 'typeorm';
import { NotFoundError } from '../errors';
import { canonicalColumnsSql, ENTRY_FIELDS } from '../execution-log/entry-encoding';
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
  type TrailEntryRecord,
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
 * Memory does not grow with the export: the rows come from one server-side cursor (`DECLARE … CURSOR`
 * inside the request's transaction, `FETCH 1000` at a time; this works through PgBouncer's
 * transaction pooling) that already yields them in output order, and a batch is written, waiting for
 * the client to take it, before the one after the next is fetched (at most two batches in memory). A
 * batch costs at most two statements: the FETCH (whose entry rows carry their leaf in the Merkle tree)
 * and the tree nodes their proofs need; both run while the batch before is formatted and written.
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
  /** Resolves when the reader can take more (or is gone). */
  write(chunk: string): Promise<void>;
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

/** A time as text, UTC with microseconds (the entries' encoding writes times the same way). */
const utc = (column: string) => `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
/** numeric as stored: its text, never a float. */
const num = (column: string) => `${column}::text`;

/** What an `order` record holds (NDJSON keys; CSV columns are their snake_case). */
const ORDER_FIELDS: Record<string, string> = {
  id: 'o.id',
  traderId: 'o.trader_id',
  positionId: 'o.position_id',
  clientOrderId: 'o.client_order_id',
  brokerOrderId: 'o.broker_order_id',
  symbol: 'o.symbol',
  side: 'o.side',
  orderType: 'o.order_type',
  timeInForce: 'o.time_in_force',
  quantity: num('o.quantity'),
  price: num('o.price'),
  stopPrice: num('o.stop_price'),
  stopLoss: num('o.stop_loss'),
  takeProfit: num('o.take_profit'),
  status: 'o.status',
  baseStatus: 'o.base_status',
  brokerStatus: 'o.broker_status',
  filledQuantity: num('o.filled_quantity'),
  overfilledQuantity: num('o.overfilled_quantity'),
  fillNotional: num('o.fill_notional'),
  averageFillPrice: num('o.average_fill_price'),
  tradeId: 'o.trade_id',
  strategyType: 'o.strategy_type',
  source: 'o.source',
  replacesOrderId: 'o.replaces_order_id',
  parentOrderId: 'o.parent_order_id',
  createdAt: utc('o.created_at'),
  updatedAt: utc('o.updated_at'),
  submittedAt: utc('o.submitted_at'),
  filledAt: utc('o.filled_at'),
  canceledAt: utc('o.canceled_at'),
  expiredAt: utc('o.expired_at'),
  expiresAt: utc('o.expires_at'),
};

/** A `fill` record, as recorded (never changed); its `corrections` say what it became. */
const FILL_FIELDS: Record<string, string> = {
  id: 'f.id',
  orderId: 'f.order_id',
  traderId: 'f.trader_id',
  positionId: 'f.position_id',
  symbol: 'f.symbol',
  execId: 'f.exec_id',
  venue: 'f.venue',
  quantity: num('f.quantity'),
  price: num('f.price'),
  commission: num('f.commission'),
  liquidity: 'f.liquidity',
  overfilledQuantity: num('f.overfilled_quantity'),
  arrival: 'f.arrival::text',
  arrivalException: 'f.arrival_exception',
  executedAt: utc('f.executed_at'),
  createdAt: utc('f.created_at'),
};

/** One correction or bust of a fill, oldest first in the fill's `corrections`. */
const CORRECTION_FIELDS: Record<string, string> = {
  id: 'c.id',
  fillId: 'c.fill_id',
  correctionId: 'c.correction_id',
  kind: 'c.kind',
  quantity: num('c.quantity'),
  price: num('c.price'),
  commission: num('c.commission'),
  previousQuantity: num('c.previous_quantity'),
  previousPrice: num('c.previous_price'),
  previousCommission: num('c.previous_commission'),
  reason: 'c.reason',
  actor: 'c.actor',
  source: 'c.source',
  createdAt: utc('c.created_at'),
};

/** `SELECT <sql> AS "<key>", …`: row_to_json of it is the record, compact, keys in this order. */
const selectList = (fields: Record<string, string>) =>
  Object.entries(fields)
    .map(([key, sql]) => `${sql} AS "${key}"`)
    .join(', ');

/** One row of the export's cursor, in output order: its kind, its id, and its record as JSON text. */
interface CursorRow {
  k: 0 | 1 | 2;
  id: string;
  payload: string;
  /** A fill's number of corrections (0 for the other kinds). */
  corrections: number;
  /** An entry's leaf index (bigint as text) and leaf hash; null when it is not in the tree yet (and for the other kinds). */
  leaf: string | null;
  leaf_hash: Buffer | null;
}

/**
 * The rows of the export, in output order: for each order (by created_at, then id) the order (k 0),
 * its fills (k 1, in execution time, then arrival; each with its corrections) and its log entries
 * (k 2, in seq order; exactly the canonical encoding's fields, and the entry's leaf in the Merkle tree,
 * read here rather than through leavesOf: one index look-up in the cursor instead of a statement per
 * batch). The orders are selected and sorted first
 * (an index look-up of the trader, the position or the order) and each order's few rows are sorted on
 * their own (an incremental sort), so PostgreSQL sorts only the orders themselves. Records are JSON text made by PostgreSQL
 * (row_to_json: compact, numbers as their numeric text), so NDJSON passes them through unparsed.
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
  const corrections = `coalesce((SELECT json_agg(row_to_json(cr) ORDER BY c.seq)
    FROM fill_corrections c CROSS JOIN LATERAL (SELECT ${selectList(CORRECTION_FIELDS)}) cr
    WHERE c.fill_id = f.id), '[]')`;
  // The orders, sorted on their own first: the trail's rows then come in order with a sort per order
  // (an incremental sort). Left to itself, a cursor's plan walks every order by time and filters out the
  // other traders' (a fast start, but at 1,000,000 orders it read 1.6 million pages instead of 0.7).
  return `SELECT x.k, x.id, x.payload, x.corrections, x.leaf, x.leaf_hash
    FROM (SELECT * FROM orders o ${where} ORDER BY o.created_at, o.id) o
    CROSS JOIN LATERAL (
      SELECT 0 AS k, NULL::timestamptz AS t, 0::bigint AS n, o.id, row_to_json(r)::text AS payload, 0 AS corrections,
        NULL::text AS leaf, NULL::bytea AS leaf_hash
      FROM (SELECT ${selectList(ORDER_FIELDS)}) r
      UNION ALL
      SELECT 1, f.executed_at, f.arrival, f.id, row_to_json(r)::text, json_array_length(r.corrections), NULL, NULL
      -- OFFSET 0 keeps the subquery whole, so that the corrections are read once (not again for their count).
      FROM fills f CROSS JOIN LATERAL (SELECT ${selectList(FILL_FIELDS)}, ${corrections} AS "corrections" OFFSET 0) r
      WHERE f.order_id = o.id
      UNION ALL
      SELECT 2, NULL, l.seq, l.id, row_to_json(r)::text, 0, ll.leaf_index::text, ll.leaf_hash
      FROM execution_logs l CROSS JOIN LATERAL (SELECT ${canonicalColumnsSql('l')}) r
        LEFT JOIN log_leaves ll ON ll.entry_id = l.id
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

/** An entry's inclusion proof: its leaf index and the proof's hashes as hex. */
interface EntryProof {
  leafIndex: number;
  hashes: string[];
}

/** A batch of cursor rows, with the inclusion proof of each entry (none: pending). */
interface Batch {
  rows: CursorRow[];
  proofs: Map<string, EntryProof>;
}

/** Formats batches: one string per batch (kept small: memory follows the batch, not the export). */
interface Writer {
  contentType: string;
  extension: string;
  begin(header: TrailHeaderRecord, checkpoint: StoredCheckpointRow | null): string;
  rows(batch: Batch): string;
  end(counts: ExportCounts): string;
}

/**
 * NDJSON: the trail format (trail.ts), each order followed by its fills and its entries. The records
 * come from PostgreSQL as compact JSON text and are passed through: an `order` or `fill` record is
 * `{"type":…,` + the record's members, an `entry` record is `TrailEntryRecord` with the entry's
 * canonical fields as they are (the verifier parses and JCS-encodes them, as for writeTrail's output).
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
  rows({ rows, proofs }) {
    let text = '';
    for (const r of rows) {
      if (r.k === 0) text += `{"type":"order",${r.payload.slice(1)}\n`;
      else if (r.k === 1) text += `{"type":"fill",${r.payload.slice(1)}\n`;
      else text += entryLine(r.payload, proofs.get(r.id));
    }
    return text;
  },
  // Lets a reader tell a complete export from a truncated one (a trail cannot show its own end).
  end: (counts) => `${JSON.stringify({ type: 'end', ...counts })}\n`,
};

/**
 * `{"type":"entry","entry":{…},"leafIndex":…,"inclusionProof":…}` (TrailEntryRecord) around the entry's
 * JSON. The proof is written as JSON.stringify would write it (hex needs no escaping).
 */
function entryLine(entryJson: string, proof: EntryProof | undefined): string {
  if (!proof) return `{"type":"entry","entry":${entryJson},"leafIndex":null,"inclusionProof":null}\n`;
  const leafIndex: TrailEntryRecord['leafIndex'] = proof.leafIndex;
  const inclusionProof = proof.hashes.length ? `["${proof.hashes.join('","')}"]` : '[]';
  return `{"type":"entry","entry":${entryJson},"leafIndex":${leafIndex},"inclusionProof":${inclusionProof}}\n`;
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
    ...[ORDER_FIELDS, FILL_FIELDS, CORRECTION_FIELDS].flatMap((fields) => Object.keys(fields).map(snake)),
    ...ENTRY_FIELDS.map(snake),
    'leaf_index',
    'inclusion_proof',
    ...CHECKPOINT_COLUMNS,
  ]),
];
const COLUMN = new Map(CSV_COLUMNS.map((c, i) => [c, i]));
/** Where each record key goes in a CSV row (keys of all kinds, computed once). */
const KEY_COLUMN = new Map(
  [ORDER_FIELDS, FILL_FIELDS, CORRECTION_FIELDS, Object.fromEntries(ENTRY_FIELDS.map((f) => [f, '']))]
    .flatMap((fields) => Object.keys(fields))
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
  rows({ rows, proofs }) {
    const records: string[] = [];
    for (const r of rows) {
      const values = JSON.parse(r.payload) as Record<string, unknown>;
      if (r.k === 0) records.push(csvLine(csvRow('order', values, { order_id: r.id })));
      else if (r.k === 1) {
        records.push(csvLine(csvRow('fill', values, { fill_id: r.id })));
        for (const c of values.corrections as Record<string, unknown>[]) {
          records.push(csvLine(csvRow('correction', c, { order_id: values.orderId, trader_id: values.traderId })));
        }
      } else {
        const proof = proofs.get(r.id);
        records.push(
          csvLine(
            csvRow('log_entry', values, {
              details: values.details === null ? null : JSON.stringify(values.details),
              leaf_index: proof?.leafIndex ?? null,
              inclusion_proof: proof?.hashes.join(' ') ?? null,
            }),
          ),
        );
      }
    }
    return records.join('');
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
  await m.query(`DECLARE ${CURSOR} NO SCROLL CURSOR FOR ${sql}`, where.params);
  // The FETCH and then the statement of its proofs, one after the other on the connection; the loop
  // starts the next batch's before it formats and writes the current one.
  const fetch = async (): Promise<Batch> => {
    const rows = (await m.query(`FETCH ${EXPORT_BATCH} FROM ${CURSOR}`)) as CursorRow[];
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
  let next: Promise<Batch> | null = start();
  try {
    while (next && !sink.closed) {
      const batch: Batch = await next;
      next = null;
      if (!batch.rows.length) break;
      if (batch.rows.length === EXPORT_BATCH) next = start();
      count(batch, counts);
      await sink.write(writer.rows(batch));
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
 * have none: pending. The proofs of a batch's neighbouring leaves share most of their hashes (the
 * same Buffer for the same node): each is written as hex once.
 */
async function proofsOf(
  m: EntityManager,
  rows: CursorRow[],
  checkpoint: StoredCheckpointRow | null,
): Promise<Batch['proofs']> {
  const proofs: Batch['proofs'] = new Map();
  if (!checkpoint) return proofs;
  const ids: string[] = [];
  const leaves: LeafRow[] = [];
  for (const r of rows) {
    if (r.k === 2 && r.leaf !== null && r.leaf_hash !== null) {
      ids.push(r.id);
      leaves.push({ leafIndex: Number(r.leaf), leafHash: r.leaf_hash });
    }
  }
  if (!ids.length) return proofs;
  const hex = new Map<Buffer, string>();
  const toHex = (h: Buffer): string => {
    let text = hex.get(h);
    if (text === undefined) hex.set(h, (text = h.toString('hex')));
    return text;
  };
  (await inclusionProofsOfLeaves(m, leaves, checkpoint)).forEach((proof, i) => {
    if (!(proof instanceof Error)) proofs.set(ids[i], { leafIndex: proof.leafIndex, hashes: proof.hashes.map(toHex) });
  });
  return proofs;
}

function count({ rows, proofs }: Batch, counts: ExportCounts): void {
  for (const r of rows) {
    if (r.k === 0) counts.orders += 1;
    else if (r.k === 2) counts.entries += 1;
    else {
      counts.fills += 1;
      counts.corrections += r.corrections;
    }
  }
  counts.proven += proofs.size;
}
