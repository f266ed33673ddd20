import { Arg, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { requireRole } from '../auth';
import type { Context } from '../context';
import { BadUserInputError } from '../errors';
import { appendLogs } from '../execution-log/execution-log.service';
import { assertId } from '../ids';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { validationError } from '../validation';
import { Fill } from './fill.entity';
import {
  type ExecutionError,
  ExecutionResult,
  ExecutionStatus,
  MAX_BATCH,
  RecordExecutionInput,
  RecordExecutionsPayload,
} from './fill.inputs';
import { applyExecutions, type ExecutionOutcome } from './fill.service';

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
  fill(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Fill | null> {
    return ctx.loaders.fillById.load(assertId(id));
  }

  @Mutation(() => ExecutionResult, {
    description:
      'Records one execution: the fill, its order, the position, the link and the log, atomically. The same execId with the same ' +
      'quantity and price returns the recorded fill (DUPLICATE); with another payload it is refused (CONFLICT) and logged.',
  })
  async recordExecution(
    @Arg('input', () => RecordExecutionInput) input: RecordExecutionInput,
    @Ctx() ctx: Context,
  ): Promise<ExecutionResult> {
    requireRole(ctx.principal, ['service', 'admin'], 'record executions');
    const [outcome] = await ctx.db.run((m) => applyExecutions(m, ctx.who, [input]));
    if (outcome.status === 'REFUSED') {
      keepAudit(ctx, outcome);
      throw outcome.error;
    }
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
      const error = validationError(input);
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
    return {
      applied: count(ExecutionStatus.APPLIED),
      duplicates: count(ExecutionStatus.DUPLICATE),
      refused: count(ExecutionStatus.REFUSED),
      results,
    };
  }

  @FieldResolver(() => Order)
  async order(@Root() fill: Fill, @Ctx() ctx: Context): Promise<Order> {
    return (await ctx.loaders.orderById.load(fill.orderId)) as Order;
  }

  @FieldResolver(() => Position, { nullable: true, description: 'The position this fill was applied to.' })
  position(@Root() fill: Fill, @Ctx() ctx: Context): Promise<Position | null> | null {
    return fill.positionId ? ctx.loaders.positionById.load(fill.positionId) : null;
  }
}
