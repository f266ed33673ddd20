import { listSelection, type Row, type View } from '../loaders';
import type { GraphQLResolveInfo } from 'graphql';
import { validateOrReject, type ValidationError } from 'class-validator';
import {
  Arg,
  Args,
  ArgumentValidationError,
  Ctx,
  FieldResolver,
  ID,
  Info,
  Mutation,
  Query,
  Resolver,
  Root,
} from 'type-graphql';
import { requireRole } from '../auth';
import type { Context } from '../context';
import { BadUserInputError } from '../errors';
import { appendLogs } from '../execution-log/execution-log.service';
import { assertId } from '../ids';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { validationError } from '../validation';
import { Dec, isPositive } from '../decimal';
import { connectionType, type ConnectionResult } from '../pagination';
import { DecimalScalar } from '../scalars';
import { correctExecution, type CorrectionRequest } from './correction.service';
import { countCommitted, countRefused } from './execution.counters';
import { FillCorrection, FillCorrectionKind } from './fill-correction.entity';
import { Fill, FillException } from './fill.entity';
import {
  BustExecutionInput,
  certainlyValidExecution,
  CorrectExecutionInput,
  CorrectionResult,
  FillsArgs,
  type ExecutionError,
  ExecutionResult,
  ExecutionStatus,
  MAX_BATCH,
  RecordExecutionInput,
  RecordExecutionsPayload,
} from './fill.inputs';
import { applyExecutions, type ExecutionOutcome, listFills } from './fill.service';

export const FillConnection = connectionType(Fill, 'Fill');

/**
 * recordExecution's input, validated as type-graphql would (class-validator, the same options, the same
 * ArgumentValidationError), except that the usual valid execution is recognised without it.
 */
async function validateExecution(input: unknown): Promise<void> {
  if (certainlyValidExecution(input as RecordExecutionInput)) return;
  try {
    await validateOrReject(input as object, { forbidUnknownValues: false, skipMissingProperties: true });
  } catch (errors) {
    throw new ArgumentValidationError(errors as ValidationError[]);
  }
}

/** A refused replay is logged even though the request fails: the entry is written again after the rollback. */
function keepAudit(ctx: Context, outcome: ExecutionOutcome): void {
  if (outcome.status === 'REFUSED' && outcome.audit) {
    const entry = outcome.audit;
    ctx.db.afterRollback((m) => appendLogs(m, ctx.who, [entry]));
  }
}

function toResult(index: number, outcome: ExecutionOutcome): ExecutionResult {
  if (outcome.status === 'REFUSED') {
    const ext = outcome.error.extensions as { code: string; field?: string };
    const error: ExecutionError = { code: ext.code, message: outcome.error.message, field: ext.field ?? null };
    return { index, status: ExecutionStatus.REFUSED, error };
  }
  return {
    index,
    status: ExecutionStatus[outcome.status],
    fill: outcome.fill,
    order: outcome.order,
    position: outcome.position,
  };
}

@Resolver(() => Fill)
export class FillResolver {
  @Query(() => Fill, { nullable: true, description: 'A fill by id; null when there is none.' })
  fill(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<View<Fill> | null> {
    return ctx.loaders.fillById.load(assertId(id));
  }

  @Query(() => FillConnection, {
    description: 'Fills, most recently executed first; filter for exceptions or busted executions.',
  })
  fills(
    @Args(() => FillsArgs) args: FillsArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<ConnectionResult<Row<Fill>>> {
    return listFills(ctx.db, args, listSelection(ctx.db, info, Fill));
  }

  @Mutation(() => CorrectionResult, {
    description:
      'Records a trade correction (FIX ExecType G): the original fill never changes; the order and the book are recomputed; CORRECTED is logged.',
  })
  correctExecution(
    @Arg('input', () => CorrectExecutionInput) input: CorrectExecutionInput,
    @Ctx() ctx: Context,
  ): Promise<CorrectionResult> {
    requireRole(ctx.principal, ['service', 'admin'], 'correct executions');
    return this.correct(ctx, { ...input, kind: FillCorrectionKind.CORRECTION });
  }

  @Mutation(() => CorrectionResult, {
    description:
      'Records a trade bust (FIX ExecType H): the execution did not happen. The order (a bust can take FILLED back) and the book are recomputed; BUSTED is logged.',
  })
  bustExecution(
    @Arg('input', () => BustExecutionInput) input: BustExecutionInput,
    @Ctx() ctx: Context,
  ): Promise<CorrectionResult> {
    requireRole(ctx.principal, ['service', 'admin'], 'bust executions');
    return this.correct(ctx, { ...input, kind: FillCorrectionKind.BUST });
  }

  private async correct(ctx: Context, request: CorrectionRequest): Promise<CorrectionResult> {
    const outcome = await ctx.db.run((m) => correctExecution(m, ctx.who, request));
    const fill = (await ctx.loaders.fillById.load(outcome.fillId)) as View<Fill>;
    return {
      status: ExecutionStatus[outcome.status],
      correction: outcome.correction,
      fill,
      order:
        outcome.status === 'DUPLICATE' ? ((await ctx.loaders.orderById.load(fill.orderId)) as never) : outcome.order,
    };
  }

  @Mutation(() => ExecutionResult, {
    description:
      'Records one execution: the fill, its order, the position, the link and the log, atomically. The same execId with the same ' +
      'quantity and price returns the recorded fill (DUPLICATE); with another payload it is refused (CONFLICT) and logged.',
  })
  async recordExecution(
    @Arg('input', () => RecordExecutionInput, { validateFn: validateExecution }) input: RecordExecutionInput,
    @Ctx() ctx: Context,
  ): Promise<ExecutionResult> {
    requireRole(ctx.principal, ['service', 'admin'], 'record executions');
    const [outcome] = await ctx.db.run((m) => applyExecutions(m, ctx.who, [input]));
    if (outcome.status === 'REFUSED') {
      countRefused(1);
      keepAudit(ctx, outcome);
      throw outcome.error;
    }
    ctx.db.afterCommit(() => countCommitted([outcome]));
    return toResult(0, outcome);
  }

  @Mutation(() => RecordExecutionsPayload, {
    description: `Records up to ${MAX_BATCH} executions in one transaction, each applied as recordExecution would; the result says per execution APPLIED, DUPLICATE or REFUSED with its error.`,
  })
  async recordExecutions(
    @Arg('inputs', () => [RecordExecutionInput], { validate: false }) inputs: RecordExecutionInput[],
    @Ctx() ctx: Context,
  ): Promise<RecordExecutionsPayload> {
    requireRole(ctx.principal, ['service', 'admin'], 'record executions');
    if (inputs.length > MAX_BATCH) {
      throw new BadUserInputError(
        `recordExecutions takes at most ${MAX_BATCH} executions; got ${inputs.length}. Split the batch.`,
        { field: 'inputs' },
      );
    }
    const results: ExecutionResult[] = new Array(inputs.length);
    const valid: { input: RecordExecutionInput; index: number }[] = [];
    inputs.forEach((input, index) => {
      const error = certainlyValidExecution(input) ? null : validationError(input);
      if (error) results[index] = toResult(index, { status: 'REFUSED', error });
      else valid.push({ input, index });
    });
    const outcomes = await ctx.db.run((m) =>
      applyExecutions(
        m,
        ctx.who,
        valid.map((v) => v.input),
      ),
    );
    outcomes.forEach((outcome, i) => {
      keepAudit(ctx, outcome);
      results[valid[i].index] = toResult(valid[i].index, outcome);
    });
    const count = (s: ExecutionStatus) => results.filter((r) => r.status === s).length;
    countRefused(count(ExecutionStatus.REFUSED));
    ctx.db.afterCommit(() => countCommitted(outcomes));
    return {
      applied: count(ExecutionStatus.APPLIED),
      duplicates: count(ExecutionStatus.DUPLICATE),
      refused: count(ExecutionStatus.REFUSED),
      results,
    };
  }

  @FieldResolver(() => [FillCorrection], { description: 'Corrections and busts of this execution, oldest first.' })
  corrections(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<View<FillCorrection>[]> {
    return ctx.loaders.correctionsByFillId.load(fill.id);
  }

  @FieldResolver(() => Boolean, { description: 'The execution was busted: it counts for nothing.' })
  async busted(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<boolean> {
    return (await this.latest(fill, ctx))?.kind === FillCorrectionKind.BUST;
  }

  @FieldResolver(() => DecimalScalar, { description: 'The quantity after corrections (0 when busted).' })
  async effectiveQuantity(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<Dec | string> {
    const c = await this.latest(fill, ctx);
    return c?.kind === FillCorrectionKind.BUST ? new Dec(0) : (c?.quantity ?? fill.quantity);
  }

  @FieldResolver(() => DecimalScalar, { description: 'The price after corrections.' })
  async effectivePrice(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<Dec | string> {
    return (await this.latest(fill, ctx))?.price ?? fill.price;
  }

  @FieldResolver(() => DecimalScalar, { description: 'The commission after corrections (0 when busted).' })
  async effectiveCommission(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<Dec | string> {
    const c = await this.latest(fill, ctx);
    return c?.kind === FillCorrectionKind.BUST ? new Dec(0) : (c?.commission ?? fill.commission);
  }

  @FieldResolver(() => FillException, {
    nullable: true,
    description: 'Why the fill was applied as an exception (DOMAIN §4); null for a normal fill.',
  })
  exception(@Root() fill: View<Fill>): FillException | null {
    return fill.arrivalException ?? (isPositive(fill.overfilledQuantity) ? FillException.OVERFILL : null);
  }

  private async latest(fill: View<Fill>, ctx: Context): Promise<View<FillCorrection> | undefined> {
    return (await ctx.loaders.correctionsByFillId.load(fill.id)).at(-1);
  }

  @FieldResolver(() => Order)
  async order(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<View<Order>> {
    return (await ctx.loaders.orderById.load(fill.orderId)) as View<Order>;
  }

  @FieldResolver(() => Position, { nullable: true, description: 'The position this fill was applied to.' })
  position(@Root() fill: View<Fill>, @Ctx() ctx: Context): Promise<View<Position> | null> | null {
    return fill.positionId ? ctx.loaders.positionById.load(fill.positionId) : null;
  }
}
