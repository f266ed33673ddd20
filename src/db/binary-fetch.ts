import type { QueryRunner } from 'typeorm';

/**
 * A statement whose rows come in PostgreSQL's binary format (a `FETCH` from a `BINARY` cursor), read as
 * raw bytes: each row an array of its fields' bytes (views into the received data; null for SQL NULL).
 * node-postgres decodes every field of a row as UTF-8 text, which binary data does not survive, and
 * builds an object per row; this takes the connection's data itself while the rows come, and gives it
 * back for the statement's end (CommandComplete, ReadyForQuery) or its error, which node-postgres then
 * handles as for any query (the pattern of the pg-copy-streams package, which does the same for COPY).
 *
 * Relies on node-postgres's connection reading its socket through one 'data' listener, on `Client#query`
 * taking a Submittable (`submit(connection)`, `handleCommandComplete`, `handleReadyForQuery`,
 * `handleError`) and on the connection's `query(text)` writer: checked against pg 8.23.1 and
 * pg-protocol 1.10.
 */
export type BinaryRow = (Buffer | null)[];

interface PgConnection {
  stream: NodeJS.EventEmitter & { listeners(event: 'data'): ((chunk: Buffer) => void)[] };
  query(text: string): void;
}
interface PgClient {
  query(submittable: BinaryFetch): unknown;
}

const DATA_ROW = 0x44; // 'D'
const ROW_DESCRIPTION = 0x54; // 'T'
/** Messages node-postgres handles between rows (notices, parameter changes, notifications). */
const ASIDE = new Set([0x4e /* N */, 0x53 /* S */, 0x41 /* A */]);

class BinaryFetch {
  readonly rows: BinaryRow[] = [];
  readonly done: Promise<BinaryRow[]>;
  private settle!: (error: Error | null) => void;
  private connection?: PgConnection;
  private pgData?: (chunk: Buffer) => void;
  /** The start of a message that continues in the next chunks, and its length so far. */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly onData = (chunk: Buffer): void => this.read(chunk);

  constructor(readonly text: string) {
    this.done = new Promise((resolve, reject) => {
      this.settle = (error) => (error ? reject(error) : resolve(this.rows));
    });
  }

  /** An error returned (not thrown) is node-postgres's way for a Submittable to fail before it is sent. */
  submit(connection: PgConnection): Error | undefined {
    this.connection = connection;
    const listeners = connection.stream.listeners('data');
    if (listeners.length !== 1) return new Error(`expected one reader of the connection, found ${listeners.length}`);
    this.pgData = listeners[0];
    connection.stream.removeListener('data', this.pgData);
    connection.stream.on('data', this.onData);
    connection.query(this.text);
    return undefined;
  }

  private read(chunk: Buffer): void {
    let buf = chunk;
    if (this.pending.length) {
      // A message cut by an earlier chunk's end: completed from this chunk's first bytes (its parts
      // joined once, however many chunks it spans; the rest of this chunk is not copied).
      const before = this.pendingBytes;
      const head =
        this.pending[0].length >= 5 ? this.pending[0] : Buffer.concat([...this.pending, chunk.subarray(0, 5)]);
      const need = head.length >= 5 ? 1 + head.readUInt32BE(1) - before : Infinity;
      if (chunk.length < need) {
        this.pending.push(chunk);
        this.pendingBytes += chunk.length;
        return;
      }
      const message = Buffer.concat([...this.pending, chunk.subarray(0, need)], before + need);
      this.pending = [];
      this.pendingBytes = 0;
      if (!this.message(message, 0, message.length)) return this.detach(Buffer.concat([message, chunk.subarray(need)]));
      buf = chunk.subarray(need);
    }
    let at = 0;
    while (buf.length - at >= 5) {
      const end = at + 1 + buf.readUInt32BE(at + 1);
      if (end > buf.length) {
        if (!this.ours(buf[at])) return this.detach(buf.subarray(at));
        break;
      }
      if (!this.message(buf, at, end)) return this.detach(buf.subarray(at));
      at = end;
    }
    if (at < buf.length) {
      // Kept for the next chunk (a copy: the rest of this chunk is small, the chunk may be large).
      this.pending = [Buffer.from(buf.subarray(at))];
      this.pendingBytes = buf.length - at;
    }
  }

  /** Whether the message with this code is read here (rows, their description, and messages between them). */
  private ours(code: number): boolean {
    return code === DATA_ROW || code === ROW_DESCRIPTION || ASIDE.has(code);
  }

  /** Reads one whole message; false when it is the statement's end or error (node-postgres reads it). */
  private message(buf: Buffer, at: number, end: number): boolean {
    const code = buf[at];
    if (!this.ours(code)) return false;
    if (code === DATA_ROW) this.rows.push(dataRow(buf, at + 5));
    else if (code !== ROW_DESCRIPTION) this.pgData!(buf.subarray(at, end));
    return true;
  }

  private detach(rest: Buffer): void {
    const stream = this.connection!.stream;
    stream.removeListener('data', this.onData);
    stream.on('data', this.pgData!);
    this.pgData!(rest);
  }

  handleCommandComplete(): void {}
  handleReadyForQuery(): void {
    this.settle(null);
  }
  handleError(error: Error): void {
    // The connection's reader is node-postgres's again (an error message ends the hijack; a broken
    // connection ends everything).
    const stream = this.connection?.stream;
    if (stream && this.pgData && stream.listeners('data').includes(this.onData)) {
      stream.removeListener('data', this.onData);
      stream.on('data', this.pgData);
    }
    this.settle(error);
  }
  // Never called while the rows are read here; present because node-postgres may probe for them.
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
}

/** A DataRow's fields (int16 count, then each an int32 length, -1 for NULL, and its bytes). */
function dataRow(buf: Buffer, at: number): BinaryRow {
  const count = buf.readInt16BE(at);
  at += 2;
  const fields: BinaryRow = new Array(count);
  for (let i = 0; i < count; i++) {
    const length = buf.readInt32BE(at);
    at += 4;
    if (length < 0) fields[i] = null;
    else {
      fields[i] = buf.subarray(at, at + length);
      at += length;
    }
  }
  return fields;
}

/**
 * Runs `text` (a simple-protocol statement without parameters, such as `FETCH 1000 FROM c` of a cursor
 * declared BINARY) on the query runner's connection and resolves with its rows as raw fields.
 */
export function binaryRows(runner: QueryRunner, text: string): Promise<BinaryRow[]> {
  const client = (runner as unknown as { databaseConnection?: PgClient }).databaseConnection;
  if (!client) throw new Error('binaryRows needs a connected query runner');
  const fetch = new BinaryFetch(text);
  client.query(fetch);
  return fetch.done;
}
