import DataLoader from 'dataloader';
import { LoaderFamily, loaderById, loaderByParent, type ProjectedLoader, type Row } from '../loaders';
import type { RequestDb } from '../request-db';
import { ExecutionLog } from './execution-log.entity';
import { type InclusionProofResult, inclusionProofs, type LeafRow, leavesOf } from './proof.service';

export interface ExecutionLogLoaders {
  logById: ProjectedLoader<Row<ExecutionLog> | null>;
  logsByOrderId: ProjectedLoader<Row<ExecutionLog>[]>;
  /** Where each entry sits in the tree (null until integrated). */
  leafByEntryId: DataLoader<string, LeafRow | null>;
  /** Inclusion proofs by entry id, one loader per tree size asked for (null: the latest checkpoint). */
  inclusionProofs: LoaderFamily<number | null, string, InclusionProofResult>;
}

export function createExecutionLogLoaders(db: RequestDb): ExecutionLogLoaders {
  return {
    logById: loaderById(db, ExecutionLog),
    logsByOrderId: loaderByParent(db, ExecutionLog, 'order_id', 't."seq"'),
    leafByEntryId: new DataLoader(async (ids) => {
      const found = await db.run((m) => leavesOf(m, ids));
      return ids.map((id) => found.get(id) ?? null);
    }),
    inclusionProofs: new LoaderFamily(
      (treeSize) => new DataLoader((ids) => db.run((m) => inclusionProofs(m, ids, treeSize))),
    ),
  };
}
