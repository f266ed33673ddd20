import { splitStatements } from '../scripts/bench-floor';
import net from 'node:net';

/** One statement a client had PostgreSQL run: its text and its bound parameters (text format; null for NULL). */
export interface CapturedStatement {
  text: string;
  params: (string | null)[];
}

/**
 * One round trip: a simple Query (`Q`, possibly several `;`-separated statements, run as one) or an
 * extended-protocol sequence up to its Sync (Parse/Bind/Execute, one statement with pg).
 */
export interface RoundTrip {
  statements: CapturedStatement[];
  simple: boolean;
  /** Which client connection sent it (numbered from 1 in the order they connected). */
  connection: number;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

/**
 * A TCP proxy between a server and PostgreSQL, for the calibration pass of `bench:reads` only: it
 * forwards every byte both ways and reads the client's side of the protocol (v3) to record what the
 * server sent — simple Queries, and Parse/Bind/Execute with the parameters bound (named prepared
 * statements are resolved per connection). A connection that asks for TLS is forwarded unread and
 * counted in `unreadable`.
 */
export class StatementProxy {
  /** Round trips recorded since the last `reset`, in the order they reached the proxy. */
  roundTrips: RoundTrip[] = [];
  unreadable = 0;
  private readonly sockets = new Set<net.Socket>();
  private connections = 0;

  private constructor(
    private readonly target: { host: string; port: number },
    readonly port: number,
    private readonly server: net.Server,
  ) {}

  /** Listens on a free port of 127.0.0.1 and forwards to `databaseUrl`'s host and port. */
  static async start(databaseUrl: string): Promise<StatementProxy> {
    const url = new URL(databaseUrl);
    const target = { host: url.hostname || '127.0.0.1', port: Number(url.port || 5432) };
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new StatementProxy(target, (server.address() as net.AddressInfo).port, server);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** `databaseUrl` with its host and port replaced by the proxy's. */
  urlFor(databaseUrl: string): string {
    const url = new URL(databaseUrl);
    url.hostname = '127.0.0.1';
    url.port = String(this.port);
    return url.toString();
  }

  /** Forgets what was recorded (e.g. the server's start-up statements). */
  reset(): void {
    this.roundTrips = [];
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);
    const connection = ++this.connections;
    const reader = new ProtocolReader((trip) => this.roundTrips.push({ ...trip, connection }));
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (!reader.read(chunk) && !reader.counted) {
        reader.counted = true;
        this.unreadable++;
      }
    });
  }
}

/** Reads one connection's frontend messages; returns false once the stream cannot be read (TLS). */
class ProtocolReader {
  counted = false;
  private buffer: Buffer = Buffer.alloc(0);
  private started = false;
  private readable = true;
  /** Prepared statements of this connection by name ('' is the unnamed one), and bound portals. */
  private readonly prepared = new Map<string, string>();
  private readonly portals = new Map<string, CapturedStatement>();
  private pending: CapturedStatement[] = [];

  constructor(private readonly done: (trip: Omit<RoundTrip, 'connection'>) => void) {}

  read(chunk: Buffer): boolean {
    if (!this.readable) return false;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
    for (;;) {
      if (!this.started) {
        if (this.buffer.length < 8) return true;
        const length = this.buffer.readInt32BE(0);
        const code = this.buffer.readInt32BE(4);
        if (code === SSL_REQUEST || code === GSS_REQUEST) return (this.readable = false);
        if (this.buffer.length < length) return true;
        this.buffer = this.buffer.subarray(length);
        this.started = true;
        continue;
      }
      if (this.buffer.length < 5) return true;
      const length = this.buffer.readInt32BE(1);
      if (this.buffer.length < 1 + length) return true;
      this.message(String.fromCharCode(this.buffer[0]), this.buffer.subarray(5, 1 + length));
      this.buffer = this.buffer.subarray(1 + length);
    }
  }

  private message(type: string, body: Buffer): void {
    const cursor = new Cursor(body);
    switch (type) {
      case 'Q':
        this.done({ simple: true, statements: splitStatements(cursor.string()).map((text) => ({ text, params: [] })) });
        break;
      case 'P': {
        const name = cursor.string();
        this.prepared.set(name, cursor.string());
        break;
      }
      case 'B': {
        const portal = cursor.string();
        const text = this.prepared.get(cursor.string()) ?? '(unknown prepared statement)';
        const formats = cursor.int16();
        for (let i = 0; i < formats; i++) cursor.int16();
        const params: (string | null)[] = [];
        for (let i = cursor.int16(); i > 0; i--) params.push(cursor.bytes());
        this.portals.set(portal, { text, params });
        break;
      }
      case 'E': {
        const statement = this.portals.get(cursor.string());
        if (statement) this.pending.push(statement);
        break;
      }
      case 'S':
        if (this.pending.length) this.done({ simple: false, statements: this.pending });
        this.pending = [];
        break;
    }
  }
}

/** Reads the fields of one message. */
class Cursor {
  private at = 0;
  constructor(private readonly body: Buffer) {}
  string(): string {
    const end = this.body.indexOf(0, this.at);
    const value = this.body.toString('utf8', this.at, end);
    this.at = end + 1;
    return value;
  }
  int16(): number {
    this.at += 2;
    return this.body.readInt16BE(this.at - 2);
  }
  /** A parameter: its length, then as many bytes (text); -1 is NULL. */
  bytes(): string | null {
    const length = this.body.readInt32BE(this.at);
    this.at += 4;
    if (length < 0) return null;
    this.at += length;
    return this.body.toString('utf8', this.at - length, this.at);
  }
}
