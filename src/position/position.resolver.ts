import { Arg, Args, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import { Fill } from '../fill/fill.entity';
import { assertId } from '../ids';
import { PositionOrdersArgs } from '../order/order.inputs';
import { OrderConnection } from '../order/order.resolver';
import type { Order } from '../order/order.entity';
import { connectionType, type ConnectionResult } from '../pagination';
import { Trader } from '../trader/trader.entity';
import { Position } from './position.entity';
import { PositionsArgs } from './position.inputs';
import { listPositions } from './position.service';

export const PositionConnection = connectionType(Position, 'Position');

@Resolver(() => Position)
export class PositionResolver {
  @Query(() => Position, { nullable: true, description: 'A position by id; null when there is none.' })
  position(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Position | null> {
    return ctx.loaders.positionById.load(assertId(id));
  }

  @Query(() => PositionConnection)
  positions(@Args(() => PositionsArgs) args: PositionsArgs, @Ctx() ctx: Context): Promise<ConnectionResult<Position>> {
    return listPositions(ctx.db, args);
  }

  @FieldResolver(() => Trader)
  async trader(@Root() position: Position, @Ctx() ctx: Context): Promise<Trader> {
    return (await ctx.loaders.traderById.load(position.traderId)) as Trader;
  }

  @FieldResolver(() => OrderConnection, { description: 'The orders linked to this position, oldest first.' })
  async orders(
    @Root() position: Position,
    @Args(() => PositionOrdersArgs) args: PositionOrdersArgs,
    @Ctx() ctx: Context,
  ): Promise<ConnectionResult<Order>> {
    const page = await ctx.loaders.ordersPageByPositionId
      .for({ first: args.first, after: args.after, status: args.status })
      .load(position.id);
    return { ...page, count: () => ctx.loaders.orderCountByPositionId.for(args.status ?? null).load(position.id) };
  }

  @FieldResolver(() => [Fill], { description: 'Every fill applied to this position, in execution order.' })
  fills(@Root() position: Position, @Ctx() ctx: Context): Promise<Fill[]> {
    return ctx.loaders.fillsByPositionId.load(position.id);
  }
}
