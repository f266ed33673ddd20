import { loaderById, loaderByParent, type ProjectedLoader, type Row } from '../loaders';
import type { RequestDb } from '../request-db';
import { FillCorrection } from './fill-correction.entity';
import { Fill } from './fill.entity';

export interface FillLoaders {
  fillById: ProjectedLoader<Row<Fill> | null>;
  fillsByOrderId: ProjectedLoader<Row<Fill>[]>;
  fillsByPositionId: ProjectedLoader<Row<Fill>[]>;
  correctionsByFillId: ProjectedLoader<Row<FillCorrection>[]>;
}

/** Fills come in execution order, the order in which a position replays them. */
const EXECUTION_ORDER = 't."executed_at", t."arrival"';

export function createFillLoaders(db: RequestDb): FillLoaders {
  return {
    fillById: loaderById(db, Fill),
    fillsByOrderId: loaderByParent(db, Fill, 'order_id', EXECUTION_ORDER),
    fillsByPositionId: loaderByParent(db, Fill, 'position_id', EXECUTION_ORDER),
    correctionsByFillId: loaderByParent(db, FillCorrection, 'fill_id', 't."seq"'),
  };
}
