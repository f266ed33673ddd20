import { randomUUID } from 'node:crypto';
import { Client, type Notification } from 'pg';
import { isUuid } from '../ids';

/** The channel the database announces committed changes on (migration LiveNotifications). */
export const CHANNEL = 'tradetrail_events';

export const LIVE_TABLES = ['orders', 'positions', 'execution_logs'] as const;
export type LiveTable = (typeof LIVE_TABLES)[number];

/**
 * One notification: the ids of the rows one statement inserted or updated in one table, grouped by
 * trader. Ids only: every subscriber reads the rows itself, through its own identity. The trader ids
 * are a routing hint (a subscriber skips what cannot be its own), never a permission.
 */
export interface Change {
  table: LiveTable;
  byTrader: ReadonlyMap<string, readonly string[]>;
}

/**
 * A notification's payload, `{"table":"orders","byTrader":{"<trader id>":["<id>",…],…}}`, or null when
 * it is not one (anyone who can connect may NOTIFY on the channel: nothing in it is trusted beyond ids).
 */
export function parseChange(payload: string | undefined): Change | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload ?? '');
  } catch {
    return null;
  }
  const { table, byTrader } = (parsed ?? {}) as { table?: unknown; byTrader?: unknown };
  if (!(LIVE_TABLES as readonly unknown[]).includes(table) || !byTrader || typeof byTrader !== 'object') return null;
  const map = new Map<string, string[]>();
  for (const [traderId, ids] of Object.entries(byTrader)) {
    if (!isUuid(traderId) || !Array.isArray(ids)) return null;
    if (!ids.every((id) => typeof id === 'string' && isUuid(id))) return null;
    map.set(
      traderId.toLowerCase(),
      (ids as string[]).map((id) => id.toLowerCase()),
    );
  }
  return { table: table as LiveTable, byTrader: map };
}

export interface ListenerLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** How long a probe (a NOTIFY this connection sends itself) may take to come back. */
const PROBE_MS = 5000;

export interface ListenerOptions {
  /** First wait before reconnecting; doubled after each failed attempt, up to `maxDelayMs`. */
  minDelayMs?: number;
  maxDelayMs?: number;
  /**
   * A probe this often: a NOTIFY the connection must hear itself. Finds a connection that died without
   * a word (a NAT's idle timeout) and keeps it alive.
   */
  heartbeatMs?: number;
}

/**
 * The one LISTEN connection of a process: a node-postgres Client of its own (a pooled connection
 * would be handed to requests), on `url`. Each notification on the channel goes to `onChange`. When
 * the connection is lost it says so (`onInterrupted`: what was committed meanwhile was not heard) and
 * reconnects with exponential backoff until `stop`. It listens only once it has heard its own probe:
 * through a pooler in transaction mode LISTEN is accepted and then hears nothing, which is said loudly
 * rather than left silent.
 */
export class ChangeListener {
  private client: Client | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Gives up on the current connection (its loop moves on). */
  private abandon: ((reason: string) => void) | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly probes = new Map<string, () => void>();
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly heartbeatMs: number;

  constructor(
    private readonly url: string,
    private readonly handlers: { onChange(change: Change): void; onInterrupted(): void },
    private readonly log: ListenerLog,
    options: ListenerOptions = {},
  ) {
    this.minDelayMs = options.minDelayMs ?? 250;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.heartbeatMs = options.heartbeatMs ?? 30_000;
  }

  /** Whether the channel is being listened to right now. */
  get listening(): boolean {
    return this.client !== undefined;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Resolves true once listening (at once if it is), false after `timeoutMs` or on `stop`. */
  whenListening(timeoutMs: number): Promise<boolean> {
    if (this.listening) return Promise.resolve(true);
    if (this.stopped) return Promise.resolve(false);
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.listening);
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    this.abandon?.('stopped');
    for (const waiter of [...this.waiters]) waiter();
    const client = this.client;
    this.client = undefined;
    // end() waits for the server's goodbye, which a dead connection never sends.
    const moment = () => new Promise((r) => setTimeout(r, 2000).unref());
    await Promise.race([client?.end().catch(() => undefined), moment()]);
    // A connection attempt in progress gives up on its own (connectionTimeoutMillis, the probe's wait).
    await Promise.race([this.running, moment()]);
  }

  private async loop(): Promise<void> {
    let failures = 0;
    let everListened = false;
    while (!this.stopped) {
      const client = new Client({
        connectionString: this.url,
        application_name: 'tradetrail-listen',
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        connectionTimeoutMillis: 10_000,
      });
      let markLost!: (reason: string) => void;
      const lost = new Promise<string>((resolve) => (markLost = resolve));
      client.on('error', (error) => markLost(error.message));
      client.on('end', () => markLost('the connection ended'));
      client.on('notification', (message: Notification) => this.notified(message));
      this.abandon = markLost;
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANNEL}`);
        await this.probe(client);
      } catch (error) {
        client.end().catch(() => undefined);
        if (this.stopped) return;
        const delayMs = this.delay(failures++);
        this.log.error(
          { err: error, attempt: failures, retryInMs: delayMs },
          `the LISTEN connection could not be opened; retrying in ${delayMs} ms`,
        );
        await this.sleep(delayMs);
        continue;
      }
      if (this.stopped) {
        await client.end().catch(() => undefined);
        return;
      }
      this.client = client;
      failures = 0;
      this.log.info({ channel: CHANNEL }, everListened ? 'LISTEN connection re-established' : 'listening for changes');
      everListened = true;
      for (const waiter of [...this.waiters]) waiter();

      let probing = false;
      const heartbeat = setInterval(() => {
        if (probing) return;
        probing = true;
        this.probe(client)
          // A dead connection that never said so: give up on it (end() may never complete on a dead socket).
          .catch((error: Error) => markLost(error.message))
          .finally(() => (probing = false));
      }, this.heartbeatMs);
      heartbeat.unref();
      const reason = await lost;
      clearInterval(heartbeat);
      if (this.stopped) return;
      this.client = undefined;
      client.end().catch(() => undefined);
      this.log.warn(
        { reason },
        'the LISTEN connection was lost: changes committed until it is back are not delivered; open subscriptions are closed (1013) so that clients reconnect and re-read',
      );
      this.handlers.onInterrupted();
      await this.sleep(this.delay(failures++));
    }
  }

  /** Sends the channel a probe and waits to hear it: proof that this connection receives notifications. */
  private async probe(client: Client): Promise<void> {
    const id = randomUUID();
    let timer: NodeJS.Timeout | undefined;
    const heard = new Promise<void>((resolve, reject) => {
      this.probes.set(id, resolve);
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `the LISTEN connection did not hear its own NOTIFY within ${PROBE_MS} ms (behind a pooler in transaction mode? point TRADETRAIL_LISTEN_URL at PostgreSQL itself)`,
            ),
          ),
        PROBE_MS,
      );
    });
    try {
      await Promise.all([client.query(`SELECT pg_notify('${CHANNEL}', $1)`, [JSON.stringify({ probe: id })]), heard]);
    } finally {
      clearTimeout(timer);
      this.probes.delete(id);
    }
  }

  private notified(message: Notification): void {
    if (message.channel !== CHANNEL) return;
    const probe = /^\{"probe":"([0-9a-f-]{36})"\}$/.exec(message.payload ?? '');
    if (probe) {
      this.probes.get(probe[1])?.(); // another process's probe: nothing to do
      return;
    }
    const change = parseChange(message.payload);
    if (!change) {
      this.log.warn(
        { payload: message.payload?.slice(0, 200) },
        `ignored a notification on ${CHANNEL} that is not a change`,
      );
      return;
    }
    this.handlers.onChange(change);
  }

  /** Exponential backoff with jitter: min, 2×min, … up to max. */
  private delay(failures: number): number {
    const base = Math.min(this.maxDelayMs, this.minDelayMs * 2 ** Math.min(failures, 20));
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
