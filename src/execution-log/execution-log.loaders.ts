import type DataLoader from 'dataloader';
import { loaderByParent } from '../loaders';
import type { RequestDb } from '../request-db';
import { ExecutionLog } from './execution-log.entity';

export interface ExecutionLogLoaders {
  logsByOrderId: DataLoader<string, ExecutionLog[]>;
}

export function createExecutionLogLoaders(db: RequestDb): ExecutionLogLoaders {
  return { logsByOrderId: loaderByParent(db, ExecutionLog, 'order_id', '"seq"') };
}
