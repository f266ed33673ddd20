import { Args, Ctx, FieldResolver, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import { Order } from '../order/order.entity';
import { connectionType, type ConnectionResult } from '../pagination';
import { ExecutionLog } from './execution-log.entity';
import { ExecutionLogsArgs } from './execution-log.inputs';
import { listExecutionLogs } from './execution-log.service';

export const ExecutionLogConnection = connectionType(ExecutionLog, 'ExecutionLog');

@Resolver(() => ExecutionLog)
export class ExecutionLogResolver {
  @Query(() => ExecutionLogConnection, { description: 'Audit trail entries across orders.' })
  executionLogs(
    @Args(() => ExecutionLogsArgs) args: ExecutionLogsArgs,
    @Ctx() ctx: Context,
  ): Promise<ConnectionResult<ExecutionLog>> {
    return listExecutionLogs(ctx.db, args);
  }

  @FieldResolver(() => Order)
  async order(@Root() log: ExecutionLog, @Ctx() ctx: Context): Promise<Order> {
    return (await ctx.loaders.orderById.load(log.orderId)) as Order;
  }
}
