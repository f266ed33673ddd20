import type DataLoader from 'dataloader';
import { loaderById } from '../loaders';
import type { RequestDb } from '../request-db';
import { Trader } from './trader.entity';

export interface TraderLoaders {
  traderById: DataLoader<string, Trader | null>;
}

export function createTraderLoaders(db: RequestDb): TraderLoaders {
  return { traderById: loaderById(db, Trader) };
}
