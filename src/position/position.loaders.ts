import type DataLoader from 'dataloader';
import { loaderById } from '../loaders';
import type { RequestDb } from '../request-db';
import { Position } from './position.entity';

export interface PositionLoaders {
  positionById: DataLoader<string, Position | null>;
}

export function createPositionLoaders(db: RequestDb): PositionLoaders {
  return { positionById: loaderById(db, Position) };
}
