import express from 'express';
import type { DataSource } from 'typeorm';
import { pendingMigrations } from '../db/migrate';

/** What readiness needs to know of the process's life (the Lifecycle of src/http/lifecycle.ts is one). */
export interface LifecycleState {
  readonly shuttingDown: boolean;
}

/** A probe waits at most this long for the database (a pool with every connection in use waits too). */
const PROBE_TIMEOUT_MS = 2000;

type Outcome<T> = { ok: true; value: T } | { ok: false; reason: 'down' | 'timeout' };

async function bounded<T>(work: Promise<T>, ms: number): Promise<Outcome<T>> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<Outcome<T>>((resolve) => {
    timer = setTimeout(() => resolve({ ok: false, reason: 'timeout' }), ms);
  });
  const done = work.then(
    (value): Outcome<T> => ({ ok: true, value }),
    (): Outcome<T> => ({ ok: false, reason: 'down' }),
  );
  try {
    return await Promise.race([done, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface Readiness {
  ready: boolean;
  body: {
    status: 'ready' | 'not ready';
    /** The checks that failed, in the order they are made. */
    failed: ('process' | 'database' | 'migrations')[];
    checks: {
      process: 'running' | 'shutting down';
      database: 'up' | 'down' | 'timeout' | 'not checked';
      migrations: 'current' | 'pending' | 'not checked';
    };
    /** The migrations the code has that the database has not applied. */
    pendingMigrations?: string[];
  };
}

/**
 * Readiness: the process is not shutting down, the database answers a cheap query, and every
 * migration the code knows is applied. Once the migrations were found current, that is remembered
 * (they are applied at start, never undone by a running server), so a probe then costs one `SELECT 1`.
 */
export class ReadinessCheck {
  private migrationsCurrent = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly lifecycle: LifecycleState | undefined,
    private readonly timeoutMs = PROBE_TIMEOUT_MS,
  ) {}

  async check(): Promise<Readiness> {
    const body: Readiness['body'] = {
      status: 'not ready',
      failed: [],
      checks: { process: 'running', database: 'not checked', migrations: 'not checked' },
    };
    if (this.lifecycle?.shuttingDown) {
      body.checks.process = 'shutting down';
      body.failed.push('process');
      return { ready: false, body };
    }
    const ping = await bounded(this.dataSource.query('SELECT 1'), this.timeoutMs);
    body.checks.database = ping.ok ? 'up' : ping.reason;
    if (!ping.ok) {
      body.failed.push('database');
      return { ready: false, body };
    }
    if (!this.migrationsCurrent) {
      const pending = await bounded(pendingMigrations(this.dataSource), this.timeoutMs);
      if (!pending.ok) {
        body.checks.database = pending.reason;
        body.failed.push('database');
        return { ready: false, body };
      }
      if (pending.value.length) {
        body.checks.migrations = 'pending';
        body.pendingMigrations = pending.value;
        body.failed.push('migrations');
        return { ready: false, body };
      }
      this.migrationsCurrent = true;
    }
    body.checks.migrations = 'current';
    body.status = 'ready';
    return { ready: true, body };
  }
}

/**
 * The probes, without a token: `/health` (liveness: the process runs; no database access),
 * `/ready` (readiness, above) and `/healthz` (the database answers; kept for existing monitors).
 */
export function healthRoutes(dataSource: DataSource, lifecycle: LifecycleState | undefined): express.Router {
  const readiness = new ReadinessCheck(dataSource, lifecycle);
  const router = express.Router();
  router.get('/health', (_req, res) => {
    res.set('cache-control', 'no-store').json({ status: 'ok' });
  });
  router.get('/ready', async (_req, res) => {
    const { ready, body } = await readiness.check();
    res
      .status(ready ? 200 : 503)
      .set('cache-control', 'no-store')
      .json(body);
  });
  router.get('/healthz', async (_req, res) => {
    try {
      await dataSource.query('SELECT 1');
      res.json({ status: 'ok', database: 'up' });
    } catch {
      res.status(503).json({ status: 'degraded', database: 'down' });
    }
  });
  return router;
}
