import { loaderById, loaderByParent, type ProjectedLoader, type Row } from '../loaders';
import type { RequestDb } from '../request-db';
import { Position } from './position.entity';

export interface PositionLoaders {
  positionById: ProjectedLoader<Row<Position> | null>;
  /** The position a flip opened from each position (at most one). */
  positionsByFlippedFromId: ProjectedLoader<Row<Position>[]>;
}

export function createPositionLoaders(db: RequestDb): PositionLoaders {
  return {
    positionById: loaderById(db, Position),
    positionsByFlippedFromId: loaderByParent(db, Position, 'flipped_from_id', 't."opened_at", t."id"'),
  };
}
