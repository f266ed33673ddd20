import type { DataSource } from 'typeorm';
import type { Principal } from './auth';
import { type ComplianceLoaders, createComplianceLoaders } from './compliance/audit-summary';
import type { Actor } from './execution-log/execution-log.service';
import type { KnownCheckpoint } from './execution-log/log-integrator';
import type { LogKey } from './execution-log/log-key';
import { createExecutionLogLoaders, type ExecutionLogLoaders } from './execution-log/execution-log.loaders';
import { createFillLoaders, type FillLoaders } from './fill/fill.loaders';
import { createOrderLoaders, type OrderLoaders } from './order/order.loaders';
import { createPositionLoaders, type PositionLoaders } from './position/position.loaders';
import { RequestDb } from './request-db';
import { createTraderLoaders, type TraderLoaders } from './trader/trader.loaders';

export type Loaders = TraderLoaders &
  PositionLoaders &
  OrderLoaders &
  FillLoaders &
  ExecutionLogLoaders &
  ComplianceLoaders;

/** What every resolver receives: the request's database connection, its DataLoaders, and who is asking. */
export interface Context {
  db: RequestDb;
  loaders: Loaders;
  principal: Principal;
  /** Written into every log entry the request makes: the token's subject. */
  who: Actor;
  log: LogAccess;
}

/** The verifiable log as requests see it: the key (verifies checkpoints and seals), and the newest checkpoint known outside the database. */
export interface LogAccess {
  key: LogKey;
  known: () => KnownCheckpoint | undefined;
}

/** A fresh context per request: loaders are never shared between requests. */
export function createContext(
  dataSource: DataSource,
  principal: Principal,
  statementTimeoutMs: number,
  log: LogAccess,
): Context {
  const db = new RequestDb(dataSource, principal, statementTimeoutMs);
  return {
    db,
    principal,
    log,
    who: { actor: principal.sub, source: 'API' },
    loaders: {
      ...createTraderLoaders(db),
      ...createPositionLoaders(db),
      ...createOrderLoaders(db),
      ...createFillLoaders(db),
      ...createExecutionLogLoaders(db),
      ...createComplianceLoaders(db),
    },
  };
}
