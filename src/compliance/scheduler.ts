import type { DataSource } from 'typeorm';
import type { Principal } from '../auth';
import type { LogKey } from '../execution-log/log-key';
import { RequestDb } from '../request-db';
import { reportIssues, saveBaseline } from './baseline';
import type { DataQualityIssueType } from './data-quality.types';
import { reconcile } from './reconcile.service';
import { ReconcileFixStatus } from './reconcile.types';

/** Advisory locks: one scheduled report and one scheduled reconciliation at a time, across processes. */
export const REPORT_LOCK = 7_346_521_908_112_301;
export const RECONCILE_LOCK = 7_346_521_908_112_302;

/** Who scheduled work acts as: its entries say `system:reconcile`. */
const REPORTER: Principal = { sub: 'system:data-quality', role: 'compliance', traderId: null };
const RECONCILER: Principal = { sub: 'system:reconcile', role: 'admin', traderId: null };

export interface SchedulerOptions {
  dataQualityMinutes: number;
  alertThreshold: number;
  reconcileMinutes: number;
  reconcileMaxFixes: number;
  statementTimeoutMs: number;
  log: {
    info(fields: object, message: string): void;
    warn(fields: object, message: string): void;
    error(fields: object, message: string): void;
  };
}

/** What scheduled work did last, for a metrics endpoint. */
export interface ComplianceCounters {
  reportRuns: number;
  reportSkipped: number;
  lastReportAt: Date | null;
  lastReportMs: number | null;
  issuesByType: Partial<Record<DataQualityIssueType, number>>;
  issueCount: number | null;
  reconcileRuns: number;
  reconcileSkipped: number;
  lastReconcileAt: Date | null;
  fixesApplied: number;
  fixesFailed: number;
  failures: number;
}

/**
 * Scheduled compliance work (off by default; README "Compliance"): the data-quality report every N
 * minutes, with a warning log line naming the counts when they pass the alert threshold, and a
 * reconciliation that applies the safe fixes. Each run takes a transaction-level advisory try-lock
 * first: with several server processes on one database, one runs and the others skip that turn.
 */
export class ComplianceScheduler {
  private timers: NodeJS.Timeout[] = [];
  private running = new Set<Promise<unknown>>();
  readonly counters: ComplianceCounters = {
    reportRuns: 0,
    reportSkipped: 0,
    lastReportAt: null,
    lastReportMs: null,
    issuesByType: {},
    issueCount: null,
    reconcileRuns: 0,
    reconcileSkipped: 0,
    lastReconcileAt: null,
    fixesApplied: 0,
    fixesFailed: 0,
    failures: 0,
  };

  /** The last scheduled reconciliation found the database read-only (said once, until it is writable again). */
  private readOnly = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly key: LogKey,
    private readonly options: SchedulerOptions,
  ) {}

  start(): void {
    const every = (minutes: number, run: () => Promise<unknown>) => {
      if (minutes <= 0) return;
      const timer = setInterval(() => this.track(run()), minutes * 60_000);
      timer.unref();
      this.timers.push(timer);
    };
    every(this.options.dataQualityMinutes, () => this.runReport());
    every(this.options.reconcileMinutes, () => this.runReconcile());
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await Promise.all([...this.running]);
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((error: unknown) => {
      this.counters.failures += 1;
      this.options.log.error({ err: error }, 'scheduled compliance work failed');
    });
    this.running.add(guarded);
    void guarded.finally(() => this.running.delete(guarded));
  }

  /** One scheduled report; false when another process held the lock. */
  async runReport(): Promise<boolean> {
    const started = Date.now();
    const counts = await RequestDb.transaction(
      this.dataSource,
      REPORTER,
      this.options.statementTimeoutMs,
      'read',
      async (m) => {
        if (!(await tryLock(m, REPORT_LOCK)).ok) return null;
        const byType: Partial<Record<DataQualityIssueType, number>> = {};
        // A complete check: the scheduled report is also what renews the baseline from scratch.
        const run = await reportIssues(
          m,
          { from: null, to: null },
          {
            key: this.key,
            full: true,
            second: {
              dataSource: this.dataSource,
              principal: REPORTER,
              statementTimeoutMs: this.options.statementTimeoutMs,
            },
          },
          (row) => {
            byType[row.type] = (byType[row.type] ?? 0) + 1;
          },
        );
        // Saved while the lock is held (in a transaction of its own).
        if (run.next && this.key) {
          await saveBaseline(this.dataSource, REPORTER, this.options.statementTimeoutMs, this.key, run.next);
        }
        return byType;
      },
    );
    if (!counts) {
      this.counters.reportSkipped += 1;
      return false;
    }
    const issueCount = Object.values(counts).reduce((n, c) => n + c, 0);
    Object.assign(this.counters, {
      reportRuns: this.counters.reportRuns + 1,
      lastReportAt: new Date(),
      lastReportMs: Date.now() - started,
      issuesByType: counts,
      issueCount,
    });
    const fields = { issueCount, issues: counts, ms: this.counters.lastReportMs };
    if (issueCount > this.options.alertThreshold) {
      this.options.log.warn(
        fields,
        `data-quality report: ${issueCount} issue(s), above the alert threshold of ${this.options.alertThreshold}: ${Object.entries(
          counts,
        )
          .map(([type, n]) => `${n} ${type}`)
          .join(', ')}`,
      );
    } else {
      this.options.log.info(fields, 'data-quality report');
    }
    return true;
  }

  /** One scheduled reconciliation with the safe fixes applied; false when another process held the lock. */
  async runReconcile(): Promise<boolean> {
    const result = await RequestDb.transaction(
      this.dataSource,
      RECONCILER,
      this.options.statementTimeoutMs,
      'write',
      async (m) => {
        // The lock is held by this planning transaction until every fix (each in its own) is done.
        const lock = await tryLock(m, RECONCILE_LOCK);
        if (!lock.ok) return null;
        // A hot standby (or read-only mode): no fix could be written, so nothing is planned.
        if (lock.readOnly) return 'read-only' as const;
        return reconcile(
          m,
          this.dataSource,
          RECONCILER,
          { actor: RECONCILER.sub, source: 'RECONCILIATION' },
          this.options.statementTimeoutMs,
          { from: null, to: null },
          { apply: true, maxFixes: this.options.reconcileMaxFixes },
        );
      },
    );
    if (!result || result === 'read-only') {
      this.counters.reconcileSkipped += 1;
      if (result && !this.readOnly) {
        this.options.log.warn(
          {},
          'scheduled reconciliation skipped: the database is read-only (a hot standby, or read-only mode); it runs again when the database accepts writes',
        );
      }
      this.readOnly = result === 'read-only';
      return false;
    }
    this.readOnly = false;
    const applied = result.fixes.filter((f) => f.status === ReconcileFixStatus.APPLIED).length;
    const failed = result.fixes.filter((f) => f.status === ReconcileFixStatus.FAILED).length;
    Object.assign(this.counters, {
      reconcileRuns: this.counters.reconcileRuns + 1,
      lastReconcileAt: new Date(),
      fixesApplied: this.counters.fixesApplied + applied,
      fixesFailed: this.counters.fixesFailed + failed,
    });
    const fields = { applied, failed, leftAlone: result.leftAlone.length, deferred: result.deferred };
    if (applied || failed) this.options.log.warn(fields, `reconciliation: ${applied} book(s) fixed, ${failed} failed`);
    else this.options.log.info(fields, 'reconciliation: nothing to fix');
    return true;
  }
}

/** The run's advisory lock (false: another process holds it), and whether the transaction is read-only. */
async function tryLock(
  m: { query(sql: string, params: unknown[]): Promise<unknown> },
  key: number,
): Promise<{ ok: boolean; readOnly: boolean }> {
  const [row] = (await m.query(
    `SELECT pg_try_advisory_xact_lock($1) AS ok, current_setting('transaction_read_only') = 'on' AS "readOnly"`,
    [key],
  )) as { ok: boolean; readOnly: boolean }[];
  return row;
}
