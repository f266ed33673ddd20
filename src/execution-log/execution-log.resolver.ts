import { listSelection, type Row, type View } from '../loaders';
import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Int, Query, Resolver, Root } from 'type-graphql';
import { requireRole } from '../auth';
import { assertId } from '../ids';
import type { Context } from '../context';
import { BadUserInputError } from '../errors';
import { Order } from '../order/order.entity';
import { connectionType, type ConnectionResult } from '../pagination';
import { type Checkpoint, CheckpointError, verifyCheckpoint } from './checkpoint';
import { ExecutionLog } from './execution-log.entity';
import { ExecutionLogsArgs } from './execution-log.inputs';
import { listExecutionLogs } from './execution-log.service';
import { verifyLedger, verifyOrderLog } from './log-verification.service';
import { consistencyProof, findCheckpoint, type StoredCheckpointRow } from './proof.service';
import {
  ChainVerification,
  ConsistencyProof,
  InclusionProof,
  LedgerVerification,
  LogCheckpoint,
  LogSigningKey,
} from './verifiable-log.types';

export const ExecutionLogConnection = connectionType(ExecutionLog, 'ExecutionLog');

/** A stored checkpoint for the API, with whether it verifies with this server's key. */
export function checkpointView(row: StoredCheckpointRow, ctx: Context): LogCheckpoint {
  let verified = true;
  let signature = '';
  let previousTreeSize: number | null = null;
  try {
    const c = verifyCheckpoint(row.note, ctx.log.key);
    verified = c.treeSize === row.treeSize && c.rootHash.equals(row.rootHash);
    signature = c.signature.toString('base64');
    previousTreeSize = c.previous?.treeSize ?? null;
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    verified = false;
  }
  return {
    treeSize: row.treeSize,
    rootHash: row.rootHash.toString('hex'),
    timestamp: row.signedAt,
    note: row.note,
    signature,
    previousTreeSize,
    verified,
  };
}

@Resolver(() => ExecutionLog)
export class ExecutionLogResolver {
  @Query(() => ExecutionLogConnection, { description: 'Audit trail entries across orders.' })
  executionLogs(
    @Args(() => ExecutionLogsArgs) args: ExecutionLogsArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<ConnectionResult<Row<ExecutionLog>>> {
    return listExecutionLogs(ctx.db, args, listSelection(ctx.db, info, ExecutionLog));
  }

  @Query(() => ChainVerification, {
    description:
      "Verifies one order's trail: its hash chain, every entry's seal, an inclusion proof of every entry the latest signed checkpoint covers, no entry of the order deleted from the tree, and the order's state against its log. NOT_FOUND for an order that does not exist.",
  })
  verifyExecutionLog(@Arg('orderId', () => ID) orderId: string, @Ctx() ctx: Context): Promise<ChainVerification> {
    const id = assertId(orderId, 'orderId');
    return ctx.db.run((m) => verifyOrderLog(m, id, ctx.log.key));
  }

  @Query(() => LedgerVerification, {
    description:
      'Verifies the whole log against its signed checkpoints (compliance, admin): every entry recomputed in tree order, every checkpoint’s root, the checkpoints’ own chain, entries outside the tree, and, when given, your own earlier checkpoint (its signed note) for consistency. Names the first missing, altered, inserted or reordered entry.',
  })
  async verifyLedger(
    @Arg('checkpoint', () => String, {
      nullable: true,
      description: 'A signed checkpoint note you kept (latestCheckpoint.note, or a line of the checkpoint file).',
    })
    checkpoint: string | null,
    @Ctx() ctx: Context,
  ): Promise<LedgerVerification> {
    requireRole(ctx.principal, ['compliance', 'admin'], 'verify the whole ledger');
    let supplied: Checkpoint | undefined;
    if (checkpoint !== null && checkpoint !== undefined) {
      try {
        supplied = verifyCheckpoint(checkpoint, ctx.log.key);
      } catch (error) {
        if (!(error instanceof CheckpointError)) throw error;
        throw new BadUserInputError(`The checkpoint you supplied is refused: ${error.message}.`, {
          field: 'checkpoint',
        });
      }
    }
    const result = await ctx.db.run((m) => verifyLedger(m, ctx.log.key, { supplied, known: ctx.log.known() }));
    return { ...result, firstProblem: result.problems[0] ?? null };
  }

  @Query(() => LogCheckpoint, { nullable: true, description: 'The newest signed checkpoint (null before the first).' })
  async latestCheckpoint(@Ctx() ctx: Context): Promise<LogCheckpoint | null> {
    const row = await ctx.db.run((m) => findCheckpoint(m));
    return row && checkpointView(row, ctx);
  }

  @Query(() => LogCheckpoint, { nullable: true, description: 'The signed checkpoint of exactly this tree size.' })
  async checkpoint(@Arg('treeSize', () => Int) treeSize: number, @Ctx() ctx: Context): Promise<LogCheckpoint | null> {
    if (treeSize < 1) throw new BadUserInputError('treeSize must be at least 1.', { field: 'treeSize' });
    const row = await ctx.db.run((m) => findCheckpoint(m, treeSize));
    return row && checkpointView(row, ctx);
  }

  @Query(() => ConsistencyProof, {
    description:
      'Proof (RFC 9162 §2.1.4) that the checkpoint of fromSize is a prefix of the one of toSize (default: the latest).',
  })
  async consistencyProof(
    @Arg('fromSize', () => Int) fromSize: number,
    @Arg('toSize', () => Int, { nullable: true }) toSize: number | null,
    @Ctx() ctx: Context,
  ): Promise<ConsistencyProof> {
    const proof = await ctx.db.run((m) => consistencyProof(m, fromSize, toSize));
    return {
      from: checkpointView(proof.from, ctx),
      to: checkpointView(proof.to, ctx),
      hashes: proof.hashes.map((h) => h.toString('hex')),
    };
  }

  @Query(() => LogSigningKey, { description: 'The public key that verifies every checkpoint.' })
  logSigningKey(@Ctx() ctx: Context): LogSigningKey {
    return {
      keyName: ctx.log.key.name,
      verifierKey: ctx.log.key.verifierKey,
      publicKeyPem: ctx.log.key.publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    };
  }

  @FieldResolver(() => Order)
  async order(@Root() log: View<ExecutionLog>, @Ctx() ctx: Context): Promise<View<Order>> {
    return (await ctx.loaders.orderById.load(log.orderId)) as View<Order>;
  }

  @FieldResolver(() => Int, {
    nullable: true,
    description: 'The entry’s global position in the Merkle tree; null until it is integrated (about a second).',
  })
  async leafIndex(@Root() log: View<ExecutionLog>, @Ctx() ctx: Context): Promise<number | null> {
    return (await ctx.loaders.leafByEntryId.load(log.id))?.leafIndex ?? null;
  }

  @FieldResolver(() => InclusionProof, {
    description:
      'Proof (RFC 9162 §2.1.3) that this entry is in the signed checkpoint of treeSize (default: the latest). CONFLICT while the entry is newer than that checkpoint.',
  })
  async inclusionProof(
    @Root() log: View<ExecutionLog>,
    @Arg('treeSize', () => Int, { nullable: true }) treeSize: number | null,
    @Ctx() ctx: Context,
  ): Promise<InclusionProof> {
    const proof = await ctx.loaders.inclusionProofs.for(treeSize ?? null).load(log.id);
    return {
      leafIndex: proof.leafIndex,
      treeSize: proof.treeSize,
      leafHash: proof.leafHash.toString('hex'),
      hashes: proof.hashes.map((h) => h.toString('hex')),
      checkpoint: checkpointView(proof.checkpoint, ctx),
    };
  }
}
