import type DataLoader from 'dataloader';
import { loaderById, loaderByParent } from '../loaders';
import type { RequestDb } from '../request-db';
import { FillCorrection } from './fill-correction.entity';
import { Fill } from './fill.entity';

export interface FillLoaders {
  fillById: DataLoader<string, Fill | null>;
  fillsByOrderId: DataLoader<string, Fill[]>;
  fillsByPositionId: DataLoader<string, Fill[]>;
  correctionsByFillId: DataLoader<string, FillCorrection[]>;
}

/** Fills come in execution order, the order in which a position replays them. */
const EXECUTION_ORDER = '"executed_at", "arrival"';

export function createFillLoaders(db: RequestDb): FillLoaders {
  return {
    fillById: loaderById(db, Fill),
    fillsByOrderId: loaderByParent(db, Fill, 'order_id', EXECUTION_ORDER),
    fillsByPositionId: loaderByParent(db, Fill, 'position_id', EXECUTION_ORDER),
    correctionsByFillId: loaderByParent(db, FillCorrection, 'fill_id', '"seq"'),
  };
}
