import { Arg, Args, Ctx, Field, FieldResolver, ID, Mutation, ObjectType, Query, Resolver, Root } from 'type-graphql';
import { requireRole } from '../auth';
import type { Context } from '../context';
import { Fill } from '../fill/fill.entity';
import { assertId } from '../ids';
import { PositionOrdersArgs } from '../order/order.inputs';
import { OrderConnection } from '../order/order.resolver';
import { Order } from '../order/order.entity';
import { connectionType, type ConnectionResult } from '../pagination';
import { Trader } from '../trader/trader.entity';
import { Position } from './position.entity';
import { LinkOrderArgs, PositionsArgs, UnlinkOrderArgs } from './position.inputs';
import { linkOrderToPosition, listPositions, recalculatePosition, unlinkOrder } from './position.service';

@ObjectType()
export class RecalculationResult {
  @Field(() => Position)
  position!: Position;

  @Field({ description: 'False when the stored figures already matched the replay of the fills.' })
  changed!: boolean;
}

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

  @Mutation(() => Order, {
    description:
      'Links an order to a position of the same trader and symbol by hand; its fills move with it and both positions are recomputed.',
  })
  linkOrderToPosition(@Args(() => LinkOrderArgs) a: LinkOrderArgs, @Ctx() ctx: Context): Promise<Order> {
    requireRole(ctx.principal, ['service', 'admin'], 'link orders to positions');
    return ctx.db.run((m) => linkOrderToPosition(m, ctx.who, a.orderId, a.positionId, a.reason ?? null));
  }

  @Mutation(() => Order, {
    description: 'Unlinks an order from its position; its fills leave it and the position is recomputed.',
  })
  unlinkOrder(@Args(() => UnlinkOrderArgs) a: UnlinkOrderArgs, @Ctx() ctx: Context): Promise<Order> {
    requireRole(ctx.principal, ['service', 'admin'], 'unlink orders');
    return ctx.db.run((m) => unlinkOrder(m, ctx.who, a.orderId, a.reason ?? null));
  }

  @Mutation(() => RecalculationResult, {
    description: "Replays the position's fills and corrects it, logging what changed.",
  })
  async recalculatePosition(
    @Arg('positionId', () => ID) positionId: string,
    @Ctx() ctx: Context,
  ): Promise<RecalculationResult> {
    requireRole(ctx.principal, ['admin'], 'recalculate positions');
    const r = await ctx.db.run((m) => recalculatePosition(m, ctx.who, assertId(positionId, 'positionId')));
    return { position: r.after, changed: r.changed };
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
