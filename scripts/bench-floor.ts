/**
 * The floor of `bench:ingest`: what PostgreSQL alone does with the very statements the server sends.
 *
 * 1. `StatementRecorder` is a TCP proxy in front of PostgreSQL. The server of a calibration run
 *    connects through it; while recording, it reads the frontend messages of the wire protocol
 *    (Query, Parse, Bind, Sync: nothing is changed, every byte is forwarded as it came) and keeps, per
 *    connection, the statements with their parameter values, grouped in round trips (a simple Query
 *    is one; extended-protocol messages up to a Sync are one).
 * 2. `pgbenchScript` turns the round trips of one request into a pgbench script: each parameter
 *    inlined as a literal (with the statement's own casts), round trips of several statements sent
 *    as one pgbench pipeline (`\startpipeline` … `\endpipeline`), so PostgreSQL sees the same
 *    statements in the same round trips. Values that must be new in every transaction (the ids the
 *    request inserted, its execution ids) end with a token replaced, in SQL, by 12 hex digits of a
 *    per-transaction random number: every pgbench transaction inserts fresh rows and commits.
 * 3. `runPgbench` runs /usr/bin/pgbench and reads its transactions per second and latency.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface RecordedStatement {
  sql: string;
  /** Parameter values as the client sent them (text format), null for NULL. */
  params: (string | null)[];
  /** The prepared statement's name ('' for an unnamed statement or a simple query). */
  name: string;
  protocol: 'simple' | 'extended';
}

/** Statements answered by one ReadyForQuery: one client → server → client trip. */
export type RoundTrip = RecordedStatement[];

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

class ConnectionReader {
  private buffer: Buffer = Buffer.alloc(0);
  private startup = true;
  /** Text of each prepared statement of this connection, by name ('' is the unnamed one). */
  private readonly statements = new Map<string, string>();
  private pending: RecordedStatement[] = [];
  readonly trips: RoundTrip[] = [];
  recording = false;

  feed(chunk: Buffer): void {
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (this.startup) {
        if (this.buffer.length < 8) return;
        const length = this.buffer.readInt32BE(0);
        if (this.buffer.length < length) return;
        const code = this.buffer.readInt32BE(4);
        this.buffer = this.buffer.subarray(length);
        if (code !== SSL_REQUEST && code !== GSS_REQUEST) this.startup = false;
        continue;
      }
      if (this.buffer.length < 5) return;
      const type = String.fromCharCode(this.buffer[0]);
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return;
      this.message(type, this.buffer.subarray(5, 1 + length));
      this.buffer = this.buffer.subarray(1 + length);
    }
  }

  private message(type: string, body: Buffer): void {
    let at = 0;
    const cstring = () => {
      const end = body.indexOf(0, at);
      const text = body.toString('utf8', at, end);
      at = end + 1;
      return text;
    };
    switch (type) {
      case 'Q': {
        const sql = cstring();
        if (this.recording) this.trips.push([{ sql, params: [], name: '', protocol: 'simple' }]);
        break;
      }
      case 'P': {
        const name = cstring();
        this.statements.set(name, cstring());
        break;
      }
      case 'B': {
        cstring(); // portal
        const name = cstring();
        const formats: number[] = [];
        const nFormats = body.readInt16BE(at);
        at += 2;
        for (let i = 0; i < nFormats; i++, at += 2) formats.push(body.readInt16BE(at));
        const nParams = body.readInt16BE(at);
        at += 2;
        const params: (string | null)[] = [];
        for (let i = 0; i < nParams; i++) {
          const length = body.readInt32BE(at);
          at += 4;
          if (length < 0) {
            params.push(null);
            continue;
          }
          const format = formats.length === 1 ? formats[0] : (formats[i] ?? 0);
          if (format !== 0) throw new Error('a binary parameter was sent: the recorder reads text parameters only');
          params.push(body.toString('utf8', at, at + length));
          at += length;
        }
        if (this.recording) {
          this.pending.push({ sql: this.statements.get(name) ?? '', params, name, protocol: 'extended' });
        }
        break;
      }
      case 'S':
        if (this.pending.length) this.trips.push(this.pending);
        this.pending = [];
        break;
    }
  }
}

/** A TCP proxy in front of PostgreSQL that records the statements sent through it (see the top). */
export class StatementRecorder {
  private readonly server: net.Server;
  private readonly readers = new Set<ConnectionReader>();
  private readonly sockets = new Set<net.Socket>();

  constructor(target: { host: string; port: number }) {
    this.server = net.createServer((client) => {
      const reader = new ConnectionReader();
      this.readers.add(reader);
      const upstream = net.connect(target.port, target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.setNoDelay(true);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.pipe(client);
      client.on('data', (chunk: Buffer) => {
        upstream.write(chunk);
        try {
          reader.feed(chunk);
        } catch {
          this.readers.delete(reader); // a message it cannot read: it stops recording this connection
        }
      });
    });
  }

  /** Listens on 127.0.0.1; resolves with the port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve((this.server.address() as net.AddressInfo).port));
    });
  }

  /** Runs `fn` while recording; returns the round trips of every connection that sent something meanwhile. */
  async record(fn: () => Promise<void>): Promise<RoundTrip[][]> {
    const marks = new Map([...this.readers].map((r) => [r, r.trips.length]));
    for (const r of this.readers) r.recording = true;
    try {
      await fn();
    } finally {
      for (const r of this.readers) r.recording = false;
    }
    return [...this.readers].map((r) => r.trips.slice(marks.get(r) ?? 0)).filter((trips) => trips.length);
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** The statements of one simple Query, split on the semicolons outside quotes. */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  let start = 0;
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (quote) {
      if (sql.startsWith(quote, i)) {
        i += quote.length - 1;
        quote = null;
      }
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === '$') {
      const tag = /^\$[A-Za-z_]*\$/.exec(sql.slice(i));
      if (tag) {
        quote = tag[0];
        i += quote.length - 1;
      }
    } else if (c === ';') {
      out.push(sql.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(sql.slice(start).trim());
  return out.filter(Boolean);
}

/** The round trips of one transaction: from its START TRANSACTION (or BEGIN) to its COMMIT, on one connection. */
export function transactionOf(connections: RoundTrip[][], mark: RegExp): RoundTrip[] | undefined {
  for (const trips of connections) {
    const all = trips.flat();
    if (!all.some((s) => mark.test(s.sql))) continue;
    const begin = trips.findLastIndex((t) => t.some((s) => /^\s*(START TRANSACTION|BEGIN)\b/i.test(s.sql)));
    const end = trips.findIndex((t, i) => i >= begin && t.some((s) => /^\s*COMMIT\b/i.test(s.sql)));
    if (begin >= 0 && end >= begin) return trips.slice(begin, end + 1);
  }
  return undefined;
}

const FRESH = '@@R@@';
/**
 * A string literal of `value`. pgbench takes every `:name` of a command for one of its variables,
 * inside quotes too, so colons are written as the escape `\x3a` (of an E'' literal).
 */
const literal = (value: string): string =>
  value.includes(':')
    ? `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''").replace(/:/g, '\\x3a')}'`
    : `'${value.replace(/'/g, "''")}'`;

/**
 * A pgbench script replaying `trips`. Each occurrence of a `fresh` value (longest first) gets a
 * per-transaction suffix: a UUID keeps its first 24 characters and gets 12 new hex digits, any
 * other value gets 12 hex digits appended.
 */
export function pgbenchScript(trips: RoundTrip[], fresh: string[]): string {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const sorted = [...new Set(fresh)].filter(Boolean).sort((a, b) => b.length - a.length);
  const renew = (value: string): string => {
    let out = value;
    for (const f of sorted) out = out.split(f).join(uuid.test(f) ? f.slice(0, 24) + FRESH : f + FRESH);
    return out;
  };
  const hex = `lpad(to_hex(:r::bigint), 12, '0')`;
  const inline = (s: RecordedStatement): string =>
    s.sql.replace(/\$(\d+)/g, (_m, n: string) => {
      const value = s.params[Number(n) - 1];
      if (value === null || value === undefined) return 'NULL';
      const renewed = renew(value);
      return renewed === value ? literal(value) : `replace(${literal(renewed)}, '${FRESH}', ${hex})`;
    });
  const lines = ['\\set r random(1, 281474976710655)'];
  const variable = /(?<!:):(?!:|r::bigint\))[A-Za-z_]/;
  for (const trip of trips) {
    const statements = trip.flatMap((s) =>
      s.protocol === 'simple' ? splitStatements(s.sql) : [inline(s).trim().replace(/;\s*$/, '')],
    );
    if (statements.length > 1) lines.push('\\startpipeline');
    for (const sql of statements) {
      if (variable.test(sql))
        throw new Error(`a statement holds a colon pgbench would read as a variable: ${sql.slice(0, 80)}`);
      lines.push(`${sql};`);
    }
    if (statements.length > 1) lines.push('\\endpipeline');
  }
  return lines.join('\n') + '\n';
}

/** One script that replays the i-th of `scripts` in client i (modulo their number): each client keeps to one book. */
export function perClientScript(scripts: string[]): string {
  if (scripts.length === 1) return scripts[0];
  return (
    scripts
      .map(
        (s, i) =>
          `${i === 0 ? '\\if' : '\\elif'} :client_id % ${scripts.length} = ${i}\n${s.replace(/^\\set r .*\n/, '')}`,
      )
      .reduce((all, s) => all + s, '\\set r random(1, 281474976710655)\n') + '\\endif\n'
  );
}

export function pgbenchPath(): string | undefined {
  for (const p of ['/usr/bin/pgbench', '/usr/local/bin/pgbench']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v pgbench'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

export interface PgbenchResult {
  tps: number;
  latencyMs: number;
  transactions: number;
  failed: number;
  version: string;
}

/** Runs pgbench on `script` against `url` (no vacuum, no initial tables) and reads its summary. */
export async function runPgbench(
  pgbench: string,
  url: string,
  script: string,
  options: { clients: number; seconds: number; mode: 'prepared' | 'extended'; name: string },
): Promise<PgbenchResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-floor-'));
  const file = path.join(dir, `${options.name}.sql`);
  writeFileSync(file, script);
  // BENCH_FLOOR_SCRIPTS=DIR keeps a copy of each script.
  if (process.env.BENCH_FLOOR_SCRIPTS)
    writeFileSync(path.join(process.env.BENCH_FLOOR_SCRIPTS, `${options.name}.sql`), script);
  const u = new URL(url);
  const env = {
    ...process.env,
    PGHOST: u.hostname,
    PGPORT: u.port || '5432',
    PGUSER: decodeURIComponent(u.username),
    PGPASSWORD: decodeURIComponent(u.password),
    PGDATABASE: decodeURIComponent(u.pathname.slice(1)),
  };
  const args = ['-n', '-M', options.mode, '-c', String(options.clients), '-j', String(Math.min(options.clients, 2))];
  args.push('-T', String(options.seconds), '-f', file);
  try {
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve) => {
        const child = spawn(pgbench, args, { env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d));
        child.stderr.on('data', (d: Buffer) => (stderr += d));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      },
    );
    const tps = /tps = ([\d.]+)/.exec(stdout);
    if (code !== 0 || !tps) {
      throw new Error(`pgbench failed (exit ${code}): ${(stderr || stdout).trim().split('\n').slice(-3).join(' | ')}`);
    }
    return {
      tps: Number(tps[1]),
      latencyMs: Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1] ?? NaN),
      transactions: Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? NaN),
      failed: Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0),
      version:
        /pgbench \(PostgreSQL\) ([\d.]+)/.exec(spawnSync(pgbench, ['--version'], { encoding: 'utf8' }).stdout)?.[1] ??
        '?',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
