import http from 'node:http';
import type { RequestListener, Server } from 'node:http';

/** Where the process is: starting (not ready), serving, or stopping (no new requests). */
export type Phase = 'starting' | 'serving' | 'stopping';

/**
 * The HTTP side of the process's life: the listener is bound first (a port in use stops the process
 * before the database is touched), answers 503 while the process starts, serves the application once
 * it is ready, and on shutdown takes no new request but lets the ones in flight finish.
 */
export class Lifecycle {
  phase: Phase = 'starting';
  private readonly inFlight = new Set<http.ServerResponse>();
  private handler: RequestListener | undefined;
  private drained: (() => void) | undefined;
  private readonly drainHooks: (() => Promise<unknown>)[] = [];
  readonly server: Server;

  constructor() {
    this.server = http.createServer((req, res) => this.handle(req, res));
    // A keep-alive connection should not outlive a quiet client for long (Node's default is 5 s).
    this.server.keepAliveTimeout = 5_000;
  }

  get shuttingDown(): boolean {
    return this.phase === 'stopping';
  }

  /** Requests being answered right now. */
  get requestsInFlight(): number {
    return this.inFlight.size;
  }

  /** Binds the port; a port in use (or any other listen error) rejects with a message naming it. */
  listen(port: number, host: string): Promise<{ port: number }> {
    return new Promise((resolve, reject) => {
      const failed = (error: NodeJS.ErrnoException): void => {
        const where = `${host}:${port}`;
        reject(
          new Error(
            error.code === 'EADDRINUSE'
              ? `Port ${port} on ${host} is already in use: another process listens on ${where}. Stop it, or set PORT to a free port.`
              : error.code === 'EACCES'
                ? `No permission to listen on ${where} (ports below 1024 need privileges): set PORT to 1024 or above.`
                : `Could not listen on ${where}: ${error.message}`,
          ),
        );
      };
      this.server.once('error', failed);
      this.server.listen(port, host, () => {
        this.server.off('error', failed);
        const address = this.server.address();
        resolve({ port: typeof address === 'object' && address ? address.port : port });
      });
    });
  }

  /**
   * Closes long-lived connections when the drain starts: `server.close()` waits for every connection,
   * upgraded ones (WebSocket subscriptions) included, and only their owner can close those.
   */
  onDrain(close: () => Promise<unknown>): void {
    this.drainHooks.push(close);
  }

  /** From now on requests reach `handler`. */
  serve(handler: RequestListener): void {
    this.handler = handler;
    this.phase = 'serving';
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.phase !== 'serving' || !this.handler) {
      // Never started: a client may send it again, here once ready or to another process.
      const starting = this.phase === 'starting';
      if (!starting) res.setHeader('connection', 'close');
      // The process is alive while it starts and while it stops; it is not ready.
      const alive = req.url === '/health';
      res.statusCode = alive ? 200 : 503;
      res.setHeader('content-type', 'application/json');
      res.setHeader('retry-after', starting ? '1' : '0');
      res.end(
        JSON.stringify(
          alive
            ? { status: starting ? 'starting' : 'stopping' }
            : {
                errors: [
                  {
                    message: starting
                      ? 'Tradetrail is starting; try again in a moment.'
                      : 'Tradetrail is shutting down: this request was not started. Send it again (to another process).',
                    extensions: { code: starting ? 'STARTING' : 'SHUTTING_DOWN' },
                  },
                ],
              },
        ),
      );
      return;
    }
    this.inFlight.add(res);
    const finished = (): void => {
      if (this.inFlight.delete(res) && this.inFlight.size === 0) this.drained?.();
    };
    res.on('finish', finished);
    res.on('close', finished);
    this.handler(req, res);
  }

  /**
   * Stops taking requests: no new connection is accepted, a new request on an open connection gets 503
   * SHUTTING_DOWN (with `Connection: close`), idle connections are closed, and the requests in flight
   * finish and are answered. Resolves when the last one is answered, or after `timeoutMs`, when the
   * connections still open are cut (`false`: requests were cut).
   */
  async drain(timeoutMs: number): Promise<boolean> {
    this.phase = 'stopping';
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const hooks = Promise.all(this.drainHooks.map((close) => close().catch(() => undefined)));
    // A response still to come ends its keep-alive connection.
    for (const res of this.inFlight) if (!res.headersSent) res.setHeader('connection', 'close');
    const idle = setInterval(() => this.server.closeIdleConnections(), 100);
    this.server.closeIdleConnections();
    let cut = false;
    try {
      if (this.inFlight.size > 0) {
        const drained = new Promise<void>((resolve) => (this.drained = resolve));
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)));
        await Promise.race([drained, timeout]);
        clearTimeout(timer);
        cut = this.inFlight.size > 0;
      }
    } finally {
      clearInterval(idle);
      this.server.closeAllConnections();
    }
    await hooks;
    await closed;
    return !cut;
  }
}

/** Waits for `promise` at most `ms` milliseconds (false: it had not settled). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms))),
  ]);
  clearTimeout(timer);
  return settled;
}

interface Step {
  name: string;
  stop: () => Promise<unknown>;
}

/**
 * The process's shutdown: the HTTP side drains (not ready, no new requests, the ones in flight
 * answered, bounded by `timeoutMs`); then what was started stops, in reverse order of start (the
 * subscriptions, Apollo, the scheduler, the log integrator, the database pool, the embedded
 * PostgreSQL). Each step is bounded, so one that hangs cannot hold the process; then it exits.
 */
export class Shutdown {
  private readonly steps: Step[] = [];
  private running: Promise<void> | undefined;

  constructor(
    private readonly http: Lifecycle,
    private readonly timeoutMs: number,
    private readonly log: {
      info(o: object, msg: string): void;
      warn(o: object, msg: string): void;
    },
    private readonly exit: (code: number) => void = (code) => process.exit(code),
  ) {}

  /** What to stop, registered as it starts. */
  add(name: string, stop: () => Promise<unknown>): void {
    this.steps.push({ name, stop });
  }

  /** Runs the shutdown once (later calls wait for the same one), then exits with `code`. */
  stop(reason: string, code = 0): Promise<void> {
    this.running ??= this.run(reason, code);
    return this.running;
  }

  private async run(reason: string, code: number): Promise<void> {
    const started = Date.now();
    this.log.info({ reason, inFlight: this.http.requestsInFlight }, 'shutting down: not ready, no new requests');
    const answered = await this.http.drain(this.timeoutMs);
    if (!answered) {
      this.log.warn({ timeoutMs: this.timeoutMs }, 'requests still running at the shutdown timeout were cut off');
    }
    for (const step of [...this.steps].reverse()) {
      if (!(await within(step.stop(), STEP_MS))) {
        this.log.warn({ step: step.name, ms: STEP_MS }, 'a shutdown step did not finish in time; going on');
      }
    }
    this.log.info({ reason, ms: Date.now() - started }, 'stopped');
    this.exit(code);
  }
}

/** At most this long for each step after the HTTP drain. */
const STEP_MS = 5_000;
