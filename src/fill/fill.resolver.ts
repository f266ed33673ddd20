import { Arg, Ctx, FieldResolver, ID, Query, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import { assertId } from '../ids';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { Fill } from './fill.entity';

@Resolver(() => Fill)
export class FillResolver {
  @Query(() => Fill, { nullable: true, description: 'A fill by id; null when there is none.' })
  fill(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Fill | null> {
    return ctx.loaders.fillById.load(assertId(id));
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
