import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { DataQualityIssueType } from '../compliance/data-quality.types';
import type { ComplianceCounters } from '../compliance/scheduler';
import { poolStats } from '../db/pool';
import { type IntegrationLag, integrationLag } from '../execution-log/log-integrator';
import { executionCounters } from '../fill/execution.counters';
import type { GraphqlTrace } from './request-log';

/** Operation names longer than this are counted as `(other)`. */
export const MAX_OPERATION_NAME = 64;
/** Distinct operation names kept as labels; the ones seen after these are counted as `(other)`. */
export const MAX_OPERATION_NAMES = 100;
/** Distinct error codes kept as labels (Tradetrail's and Apollo's are about 20). */
const MAX_ERROR_CODES = 50;
const ERROR_CODE = /^[A-Z][A-Z0-9_]{0,39}$/;
/** The integration lag is read from the database at most this often (several gauges share one read). */
const LAG_CACHE_MS = 1000;
/** A scrape waits at most this long for the integration lag (a database that is down). */
const LAG_TIMEOUT_MS = 2000;

/** What other parts of the process report, read at each scrape. */
export interface MetricsSources {
  /** The scheduled compliance work: its counters (issues of the latest data-quality report, runs, fixes). */
  compliance?: { readonly counters: ComplianceCounters };
  /** The live feed (src/live `liveStats`): subscriptions open, notifications queued, subscribers dropped. */
  live?: () => { openSubscriptions: number; queuedNotifications: number; droppedAsTooSlow: number };
}

/**
 * Tradetrail's Prometheus metrics (README "Operations"): one registry per application, served as
 * text at `/metrics`. Request metrics are fed once per HTTP request (never per field); everything
 * else is read when scraped.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Open GraphQL subscriptions: read from `watch({ live })` at each scrape, or `set`/`inc`/`dec` it. */
  readonly subscriptionsOpen: Gauge;
  private readonly requestDuration: Histogram<'operation' | 'type'>;
  private readonly errors: Counter<'code'>;
  private readonly operationNames = new Set<string>();
  private readonly errorCodes = new Set<string>();
  private readonly sources: MetricsSources = {};
  private lag: { at: number; value: Promise<IntegrationLag | undefined> } | undefined;

  constructor(
    private readonly dataSource: DataSource,
    options: { defaultMetrics?: boolean } = {},
  ) {
    const registers = [this.registry];
    // Read at each scrape (`watch` fills this object in).
    const sources = this.sources;
    const lag = () => this.integrationLag();
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.requestDuration = new Histogram({
      name: 'tradetrail_graphql_request_duration_seconds',
      help: 'GraphQL requests over HTTP, from their arrival (headers read) to the last byte of the response, by operation name and type.',
      labelNames: ['operation', 'type'],
      buckets: [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.errors = new Counter({
      name: 'tradetrail_graphql_errors_total',
      help: 'Errors in GraphQL responses, by extensions.code (each error of a response counts).',
      labelNames: ['code'],
      registers,
    });

    new Gauge({
      name: 'tradetrail_db_pool_connections',
      help: 'Connections of the database pool, by state: in_use (lent to a request or a job) or idle.',
      labelNames: ['state'],
      registers,
      collect() {
        const stats = poolStats(dataSource);
        this.set({ state: 'in_use' }, stats?.inUse ?? 0);
        this.set({ state: 'idle' }, stats?.idle ?? 0);
      },
    });
    new Gauge({
      name: 'tradetrail_db_pool_waiting',
      help: 'Requests waiting for a database connection because all are in use.',
      registers,
      collect() {
        this.set(poolStats(dataSource)?.waiting ?? 0);
      },
    });
    new Gauge({
      name: 'tradetrail_db_pool_max',
      help: 'The most connections the database pool opens (TRADETRAIL_DB_POOL_MAX).',
      registers,
      collect() {
        this.set(poolStats(dataSource)?.max ?? 0);
      },
    });

    // Counts kept by their owners (monotonic, from the process's start), copied at each scrape.
    new Counter({
      name: 'tradetrail_executions_total',
      help: 'Executions recorded by recordExecution(s), by status: applied (committed), duplicate (committed replay), refused.',
      labelNames: ['status'],
      registers,
      collect() {
        this.reset();
        this.inc({ status: 'applied' }, executionCounters.applied);
        this.inc({ status: 'duplicate' }, executionCounters.duplicate);
        this.inc({ status: 'refused' }, executionCounters.refused);
      },
    });
    new Counter({
      name: 'tradetrail_execution_exceptions_total',
      help: 'Executions applied as exceptions (part of the applied ones), by reason: ORDER_REPLACED, ORDER_REJECTED, OVERFILL.',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(executionCounters.exceptions)) this.inc({ reason }, n);
      },
    });

    this.subscriptionsOpen = new Gauge({
      name: 'tradetrail_subscriptions_open',
      help: 'GraphQL subscriptions open now.',
      registers,
      collect() {
        const live = sources.live?.();
        if (live) this.set(live.openSubscriptions);
      },
    });
    new Gauge({
      name: 'tradetrail_subscription_notifications_queued',
      help: 'Notifications queued for subscribers and not yet sent.',
      registers,
      collect() {
        this.set(sources.live?.().queuedNotifications ?? 0);
      },
    });
    new Counter({
      name: 'tradetrail_subscribers_dropped_total',
      help: 'Subscribers disconnected because they read too slowly (their queue or socket buffer was full).',
      registers,
      collect() {
        this.reset();
        this.inc(sources.live?.().droppedAsTooSlow ?? 0);
      },
    });

    new Gauge({
      name: 'tradetrail_data_quality_issues',
      help: 'Issues the latest scheduled data-quality report found, by type (no sample before the first report).',
      labelNames: ['type'],
      registers,
      collect() {
        const counters = sources.compliance?.counters;
        this.reset();
        if (!counters?.lastReportAt) return;
        for (const type of Object.values(DataQualityIssueType)) this.set({ type }, counters.issuesByType[type] ?? 0);
      },
    });
    new Gauge({
      name: 'tradetrail_data_quality_report_timestamp_seconds',
      help: 'When the latest scheduled data-quality report of this process finished (Unix time; 0: none yet).',
      registers,
      collect() {
        const at = sources.compliance?.counters.lastReportAt;
        this.set(at ? at.getTime() / 1000 : 0);
      },
    });
    new Counter({
      name: 'tradetrail_scheduled_runs_total',
      help: 'Scheduled compliance runs, by job (data_quality, reconcile) and result: ran, or skipped (another process held the lock, or the database was read-only).',
      labelNames: ['job', 'result'],
      registers,
      collect() {
        this.reset();
        const c = sources.compliance?.counters;
        if (!c) return;
        this.inc({ job: 'data_quality', result: 'ran' }, c.reportRuns);
        this.inc({ job: 'data_quality', result: 'skipped' }, c.reportSkipped);
        this.inc({ job: 'reconcile', result: 'ran' }, c.reconcileRuns);
        this.inc({ job: 'reconcile', result: 'skipped' }, c.reconcileSkipped);
      },
    });
    new Counter({
      name: 'tradetrail_scheduled_failures_total',
      help: 'Scheduled compliance runs that failed (the error is in the log).',
      registers,
      collect() {
        this.reset();
        this.inc(sources.compliance?.counters.failures ?? 0);
      },
    });
    new Counter({
      name: 'tradetrail_reconcile_fixes_total',
      help: 'Books scheduled reconciliations fixed, by result: applied or failed.',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        const c = sources.compliance?.counters;
        if (!c) return;
        this.inc({ result: 'applied' }, c.fixesApplied);
        this.inc({ result: 'failed' }, c.fixesFailed);
      },
    });

    const lagGauge = (name: string, help: string, pick: (lag: IntegrationLag) => number | null) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          const value = await lag();
          // NaN: unknown (the database did not answer, or there is no checkpoint yet).
          this.set(value ? (pick(value) ?? Number.NaN) : Number.NaN);
        },
      });
    lagGauge(
      'tradetrail_log_pending_entries',
      'Execution-log entries recorded but not yet in the Merkle tree, so in no signed checkpoint (counted up to 100000).',
      (lag) => lag.pendingEntries,
    );
    lagGauge(
      'tradetrail_log_pending_oldest_seconds',
      'Age of the oldest execution-log entry not yet in a signed checkpoint (0 when none waits): the checkpoint lag.',
      (lag) => lag.oldestPendingSeconds,
    );
    lagGauge(
      'tradetrail_log_checkpoint_tree_size',
      'Tree size of the latest signed checkpoint (0 before the first).',
      (lag) => lag.checkpointSize ?? 0,
    );
    lagGauge(
      'tradetrail_log_checkpoint_age_seconds',
      'Seconds since the latest checkpoint was signed (NaN before the first; one is signed only when entries were added).',
      (lag) => lag.checkpointAgeSeconds,
    );
  }

  /** Other parts of the process that report (the compliance scheduler, the subscriptions). */
  watch(sources: MetricsSources): void {
    Object.assign(this.sources, sources);
  }

  /** One GraphQL request over HTTP, when its response is done. */
  observeGraphql(trace: GraphqlTrace, seconds: number): void {
    this.requestDuration.observe({ operation: this.operationLabel(trace), type: trace.type ?? 'unknown' }, seconds);
    for (const code of trace.errorCodes ?? []) this.errors.inc({ code: this.errorCodeLabel(code) });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The metrics as Prometheus text. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * The operation's name as a label, bounded: `(unknown)` when no operation was resolved, `(anonymous)`
   * for one without a name, `(other)` for a long name or a new one once MAX_OPERATION_NAMES are kept.
   * (Names come only from documents that were authenticated, parsed and validated.)
   */
  private operationLabel(trace: GraphqlTrace): string {
    if (!trace.type) return '(unknown)';
    const name = trace.name;
    if (!name) return '(anonymous)';
    if (name.length > MAX_OPERATION_NAME) return '(other)';
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return '(other)';
    this.operationNames.add(name);
    return name;
  }

  private errorCodeLabel(code: string): string {
    if (!ERROR_CODE.test(code)) return '(other)';
    if (this.errorCodes.has(code)) return code;
    if (this.errorCodes.size >= MAX_ERROR_CODES) return '(other)';
    this.errorCodes.add(code);
    return code;
  }

  /** The integration lag, read once for the four gauges of a scrape; undefined when the database did not answer. */
  private integrationLag(): Promise<IntegrationLag | undefined> {
    if (!this.lag || Date.now() - this.lag.at > LAG_CACHE_MS) {
      this.lag = { at: Date.now(), value: withTimeout(integrationLag(this.dataSource), LAG_TIMEOUT_MS) };
    }
    return this.lag.value;
  }
}

/** `promise`'s value, or undefined when it fails or takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.catch(() => undefined),
    new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** `GET /metrics`: the Prometheus text (no token: serve it where only the scraper reaches). */
export function serveMetrics(metrics: Metrics): (req: IncomingMessage, res: ServerResponse) => void {
  return (_req, res) => {
    metrics.text().then(
      (text) => {
        res.statusCode = 200;
        res.setHeader('content-type', metrics.contentType);
        res.setHeader('cache-control', 'no-store');
        res.end(text);
      },
      () => {
        res.statusCode = 500;
        res.setHeader('content-type', 'text/plain; charset=utf-8');
        res.end('The metrics could not be collected.\n');
      },
    );
  };
}

/**
 * `/metrics` on a listener of its own (TRADETRAIL_METRICS_PORT, on TRADETRAIL_METRICS_HOST): nothing
 * else is served there, and `/metrics` is then not served on the GraphQL port.
 */
export function listenMetrics(metrics: Metrics, port: number, host: string): Promise<Server> {
  const handle = serveMetrics(metrics);
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path === '/metrics' && (req.method === 'GET' || req.method === 'HEAD')) return handle(req, res);
    res.statusCode = 404;
    res.setHeader('content-type', 'text/plain; charset=utf-8');
    res.end('Not found: this port serves GET /metrics only.\n');
  });
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(
        new Error(
          error.code === 'EADDRINUSE'
            ? `TRADETRAIL_METRICS_PORT ${port} on ${host} is already in use: set it to a free port.`
            : `Could not listen for metrics on ${host}:${port}: ${error.message}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve(server));
  });
}
