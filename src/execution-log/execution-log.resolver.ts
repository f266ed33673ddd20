import { Arg, Args, Ctx, Field, FieldResolver, ID, Int, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { assertId } from '../ids';
import type { Context } from '../context';
import { Order } from '../order/order.entity';
import { connectionType, type ConnectionResult } from '../pagination';
import { ExecutionLog } from './execution-log.entity';
import { ExecutionLogsArgs } from './execution-log.inputs';
import { listExecutionLogs, verifyChain } from './execution-log.service';

@ObjectType({ description: "The result of recomputing an order's hash chain." })
export class ChainVerification {
  @Field(() => ID)
  orderId!: string;

  @Field()
  valid!: boolean;

  @Field(() => Int)
  entries!: number;

  @Field(() => Int, { nullable: true, description: 'seq of the first entry that is missing, moved or changed.' })
  firstBrokenSeq!: number | null;

  @Field(() => String, { nullable: true })
  problem!: string | null;
}

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

  @Query(() => ChainVerification, { description: "Recomputes an order's hash chain and names the first broken entry." })
  verifyExecutionLog(@Arg('orderId', () => ID) orderId: string, @Ctx() ctx: Context): Promise<ChainVerification> {
    const id = assertId(orderId, 'orderId');
    return ctx.db.run((m) => verifyChain(m, id));
  }

  @FieldResolver(() => Order)
  async order(@Root() log: ExecutionLog, @Ctx() ctx: Context): Promise<Order> {
    return (await ctx.loaders.orderById.load(log.orderId)) as Order;
  }
}
