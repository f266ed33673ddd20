/**
 * Connections held back from the pool for a few milliseconds, each with something still to send (a
 * read-only transaction's COMMIT: see `RequestDb.finish`). The next request takes the most recently
 * parked one and sends what is owed in its own first exchange; one nobody takes within `ms` is ended
 * (`end`: the COMMIT on its own, then back to the pool). The pool never sees a connection in a
 * transaction, so its other users (the log integrator, the scheduler, health checks, TypeORM) are
 * untouched; they wait at most `ms` for a connection when every one of them is parked.
 */
export class ParkedConnections<C> {
  private readonly parked: { connection: C; at: number }[] = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** How long a connection may wait for the next request before it is ended. */
    readonly ms: number,
    /** Whether a parked connection can still be used (not lost meanwhile). */
    private readonly usable: (connection: C) => boolean,
    /** Sends what is owed and gives the connection back to the pool (or discards it); never throws. */
    private readonly end: (connection: C) => Promise<void>,
  ) {}

  /** Connections parked right now. */
  get size(): number {
    return this.parked.length;
  }

  park(connection: C): void {
    this.parked.push({ connection, at: Date.now() });
    this.schedule();
  }

  /** The most recently parked connection that is still usable (others are ended), or undefined. */
  take(): C | undefined {
    for (let p = this.parked.pop(); p; p = this.parked.pop()) {
      if (this.usable(p.connection)) return p.connection;
      void this.end(p.connection);
    }
    return undefined;
  }

  /** Ends every parked connection now (at shutdown, before the pool closes). */
  async endAll(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.all(this.parked.splice(0).map((p) => this.end(p.connection)));
  }

  private schedule(): void {
    if (this.timer || !this.parked.length) return;
    // The oldest is first: connections are taken from the end.
    const wait = Math.max(0, this.parked[0].at + this.ms - Date.now());
    this.timer = setTimeout(() => this.sweep(), wait);
  }

  private sweep(): void {
    this.timer = undefined;
    const due = Date.now() - this.ms;
    let n = 0;
    while (n < this.parked.length && this.parked[n].at <= due) n++;
    for (const p of this.parked.splice(0, n)) void this.end(p.connection);
    this.schedule();
  }
}
