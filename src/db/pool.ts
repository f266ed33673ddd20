import type { Pool } from 'pg';
import type { DataSource } from 'typeorm';

/** The connections of a DataSource's pool right now. */
export interface PoolStats {
  /** Connections lent to a request (or a background job) right now. */
  inUse: number;
  /** Open connections waiting in the pool for the next request. */
  idle: number;
  /** Requests waiting for a connection because every one is in use. */
  waiting: number;
  /** The most connections the pool opens. */
  max: number;
}

/**
 * The node-postgres pool behind a TypeORM DataSource, read for metrics. TypeORM does not expose its
 * pool: its PostgresDriver keeps it in `master` (`undefined` before `initialize` and after `destroy`);
 * `totalCount`, `idleCount`, `waitingCount` and `options.max` are pg-pool's own public properties
 * (pg-pool defaults `max` to 10).
 * Checked against typeorm 1.1.1, pg 8.23.1 and pg-pool 3.14.0. Undefined when there is no pool.
 */
export function poolStats(dataSource: DataSource): PoolStats | undefined {
  const pool = (dataSource.driver as unknown as { master?: Pool }).master;
  if (!pool) return undefined;
  return {
    inUse: pool.totalCount - pool.idleCount,
    idle: pool.idleCount,
    waiting: pool.waitingCount,
    max: pool.options.max ?? 10,
  };
}
