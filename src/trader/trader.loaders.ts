import { loaderById, type ProjectedLoader, type Row } from '../loaders';
import type { RequestDb } from '../request-db';
import { Trader } from './trader.entity';

export interface TraderLoaders {
  traderById: ProjectedLoader<Row<Trader> | null>;
}

export function createTraderLoaders(db: RequestDb): TraderLoaders {
  return { traderById: loaderById(db, Trader) };
}
