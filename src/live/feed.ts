import type { Change, LiveTable } from './notifications';

/** The client end of a subscription: its WebSocket, as far as the feed needs it. */
export interface Subscriber {
  /** Bytes given to the socket and not yet sent. */
  readonly bufferedAmount: number;
  close(code: number, reason: string): void;
}

/** What one subscription wants announced: a table, and optionally only some traders' or rows' ids. */
export interface Interest {
  table: LiveTable;
  /** Only these traders' rows (a trader's own id, or a filter's); null: every trader. */
  traders: ReadonlySet<string> | null;
  /** Only these rows (a filter naming one id); null: every row. */
  ids: ReadonlySet<string> | null;
}

export const CLOSE_TOO_SLOW = 1008;
export const CLOSE_TRY_AGAIN_LATER = 1013;

/**
 * The announced ids one subscription has not read yet, one entry per notification (one statement's
 * changes to one table: up to ~150 ids), at most `limit` of them. An async iterator whose `return`
 * ends a pending `next` at once (an async generator's would wait for the next notification).
 */
export class Inbox implements AsyncIterableIterator<string[]> {
  private readonly queue: string[][] = [];
  private waiting: ((result: IteratorResult<string[]>) => void) | undefined;
  private closed = false;

  constructor(
    readonly interest: Interest,
    readonly subscriber: Subscriber,
    private readonly limit: number,
    private readonly onClose: (inbox: Inbox) => void,
  ) {}

  get size(): number {
    return this.queue.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Queues what of `change` this subscription wants; false when that would exceed the limit. */
  offer(change: Change): boolean {
    if (this.closed || change.table !== this.interest.table) return true;
    const ids = this.pick(change);
    if (!ids.length) return true;
    if (this.waiting) {
      const resolve = this.waiting;
      this.waiting = undefined;
      resolve({ value: ids, done: false });
      return true;
    }
    if (this.queue.length >= this.limit) return false;
    this.queue.push(ids);
    return true;
  }

  private pick(change: Change): string[] {
    const { traders, ids } = this.interest;
    const picked: string[] = [];
    for (const [traderId, rowIds] of change.byTrader) {
      if (traders && !traders.has(traderId)) continue;
      for (const id of rowIds) if (!ids || ids.has(id)) picked.push(id);
    }
    return picked;
  }

  next(): Promise<IteratorResult<string[]>> {
    const value = this.queue.shift();
    if (value) return Promise.resolve({ value, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => (this.waiting = resolve));
  }

  return(): Promise<IteratorResult<string[]>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Stops the subscription's feed: nothing more is queued, the queue is dropped, a pending `next` ends. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.queue.length = 0;
    this.waiting?.({ value: undefined, done: true });
    this.waiting = undefined;
    this.onClose(this);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

export interface FeedLog {
  warn(fields: object, message: string): void;
}

/**
 * The subscriptions of one process and the notifications they are fed. A subscriber that falls
 * behind — more than `queueLimit` notifications queued for one of its subscriptions, or more than
 * `maxBufferedBytes` given to its socket and not sent — is closed with 1008: its memory never grows
 * without bound, and it never holds the others up.
 */
export class LiveHub {
  private readonly inboxes = new Set<Inbox>();
  private dropped = 0;

  constructor(
    private readonly queueLimit: number,
    private readonly maxBufferedBytes: number,
    private readonly log: FeedLog,
  ) {}

  /** Open subscriptions. */
  get size(): number {
    return this.inboxes.size;
  }

  /** Notifications queued and not yet read, over all subscriptions. */
  get queued(): number {
    let n = 0;
    for (const inbox of this.inboxes) n += inbox.size;
    return n;
  }

  /** Subscribers closed as too slow since the start. */
  get droppedAsTooSlow(): number {
    return this.dropped;
  }

  open(interest: Interest, subscriber: Subscriber): Inbox {
    const inbox = new Inbox(interest, subscriber, this.queueLimit, (i) => this.inboxes.delete(i));
    this.inboxes.add(inbox);
    return inbox;
  }

  dispatch(change: Change): void {
    for (const inbox of this.inboxes) {
      if (!inbox.offer(change)) {
        this.tooSlow(inbox.subscriber, `more than ${this.queueLimit} notifications waiting`);
      } else if (inbox.subscriber.bufferedAmount > this.maxBufferedBytes) {
        this.tooSlow(inbox.subscriber, `more than ${this.maxBufferedBytes} bytes unsent`);
      }
    }
  }

  /** Changes may have been missed (the LISTEN connection was lost): every subscriber is told to come back. */
  interrupted(): void {
    this.closeAll(
      CLOSE_TRY_AGAIN_LATER,
      'Live events were interrupted (database connection lost): reconnect, then re-read what changed.',
    );
  }

  /** Closes every subscriber's socket with `code` and ends their subscriptions' feeds. */
  closeAll(code: number, reason: string): void {
    for (const subscriber of new Set([...this.inboxes].map((i) => i.subscriber))) this.close(subscriber, code, reason);
  }

  private tooSlow(subscriber: Subscriber, why: string): void {
    this.dropped += 1;
    this.log.warn({ why }, 'a subscriber could not keep up and was closed (1008)');
    this.close(subscriber, CLOSE_TOO_SLOW, `Too slow: ${why}. Read faster, or subscribe to less.`);
  }

  private close(subscriber: Subscriber, code: number, reason: string): void {
    // The feeds stop now: the socket's close handshake may wait behind data a stalled client never reads.
    for (const inbox of [...this.inboxes]) if (inbox.subscriber === subscriber) inbox.close();
    subscriber.close(code, reason);
  }
}

/** At most `permits` holders at once; the others wait their turn (first come, first served). */
export class Limiter {
  private readonly waiting: (() => void)[] = [];
  constructor(private free: number) {}

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}
