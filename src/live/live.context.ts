import type { DataSource } from 'typeorm';
import type { Principal } from '../auth';
import { type Context, createContext, type Loaders, type LogAccess } from '../context';
import type { Actor } from '../execution-log/execution-log.service';
import type { RequestDb } from '../request-db';
import type { Inbox, Interest, LiveHub, Limiter, Subscriber } from './feed';

/** What every subscription of one server shares. */
export interface LiveSession {
  dataSource: DataSource;
  statementTimeoutMs: number;
  log: LogAccess;
  hub: LiveHub;
  /** Subscription reads hold at most this many of the pool's connections at once. */
  reads: Limiter;
}

/**
 * The context of one subscription. A subscription lives long, so its reads cannot be one request's
 * transaction: each event gets a fresh request context (a `RequestDb` with the subscriber's identity,
 * so row-level security applies, and fresh loaders), in which its rows are read and its selection is
 * resolved; `nextEvent` commits it (a read-only transaction) and releases the connection before the
 * event is sent, so a slow client never holds a connection.
 */
export class LiveContext implements Context {
  readonly who: Actor;
  private current: Context;
  private holdsRead = false;
  private ended = false;

  constructor(
    private readonly session: LiveSession,
    readonly principal: Principal,
    readonly subscriber: Subscriber,
  ) {
    this.who = { actor: principal.sub, source: 'API' };
    this.current = this.fresh();
  }

  get db(): RequestDb {
    return this.current.db;
  }
  get loaders(): Loaders {
    return this.current.loaders;
  }
  get log(): LogAccess {
    return this.session.log;
  }

  /** This subscription's feed of announced ids. */
  feed(interest: Interest): Inbox {
    return this.session.hub.open(interest, this.subscriber);
  }

  /** Before an event's reads: waits for a turn among the subscription reads. */
  async beginEvent(): Promise<void> {
    if (this.holdsRead || this.ended) return;
    await this.session.reads.acquire();
    this.holdsRead = true;
  }

  /** The event is resolved: its transaction ends, and the next event starts afresh. */
  async nextEvent(): Promise<void> {
    if (this.ended) return;
    const done = this.current;
    this.current = this.fresh();
    await this.finish(done);
  }

  /** The subscription ends. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    await this.finish(this.current);
  }

  private async finish(context: Context): Promise<void> {
    try {
      await context.db.finish(true);
    } finally {
      if (this.holdsRead) {
        this.holdsRead = false;
        this.session.reads.release();
      }
    }
  }

  private fresh(): Context {
    return createContext(this.session.dataSource, this.principal, this.session.statementTimeoutMs, this.session.log);
  }
}
