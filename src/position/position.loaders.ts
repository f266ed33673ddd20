import type DataLoader from 'dataloader';
import { loaderById, loaderByParent } from '../loaders';
import type { RequestDb } from '../request-db';
import { Position } from './position.entity';

export interface PositionLoaders {
  positionById: DataLoader<string, Position | null>;
  /** The position a flip opened from each position (at most one). */
  positionsByFlippedFromId: DataLoader<string, Position[]>;
}

export function createPositionLoaders(db: RequestDb): PositionLoaders {
  return {
    positionById: loaderById(db, Position),
    positionsByFlippedFromId: loaderByParent(db, Position, 'flipped_from_id', '"opened_at", "id"'),
  };
}
