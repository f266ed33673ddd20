import type { GraphQLResolveInfo } from 'graphql';
import { listSelection, prefetch, type Row, selection, type View } from '../loaders';
import {
  Arg,
  Args,
  Ctx,
  Field,
  FieldResolver,
  ID,
  Info,
  Int,
  Mutation,
  ObjectType,
  Query,
  Resolver,
  Root,
} from 'type-graphql';
import { requireRole } from '../auth';
import type { Context } from '../context';
import { Fill } from '../fill/fill.entity';
import { assertId } from '../ids';
import { PositionOrdersArgs } from '../order/order.inputs';
import { OrderConnection } from '../order/order.resolver';
import { Order } from '../order/order.entity';
import { connectionType, type ConnectionResult, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from '../pagination';
import { Trader } from '../trader/trader.entity';
import { Position } from './position.entity';
import { BookArgs, LinkOrderArgs, PositionsArgs, UnlinkOrderArgs } from './position.inputs';
import {
  linkOrderToPosition,
  listPositions,
  recalculateBook,
  recalculatePosition,
  unlinkOrder,
} from './position.service';

@ObjectType({ simpleResolvers: true })
export class RecalculationResult {
  @Field(() => Position)
  position!: Position;

  @Field({ description: 'False when the stored figures already matched the replay of the fills.' })
  changed!: boolean;
}

@ObjectType({ simpleResolvers: true, description: 'What a recalculation of a book (one trader, one symbol) changed.' })
export class BookRecalculation {
  @Field({ description: 'False when the stored positions, fills and orders already matched the replay of the fills.' })
  changed!: boolean;

  @Field(() => [Position], { description: 'The positions of the book after the replay, oldest first.' })
  positions!: Position[];

  @Field(() => [ID], { description: 'Positions no fill explains any more, removed.' })
  removedPositionIds!: string[];

  @Field(() => Int, { description: 'Fills that moved to another position.' })
  fillsMoved!: number;
}

export const PositionConnection = connectionType(Position, 'Position');

/** A position's fills, the columns `info` asks for (its field resolver, and prefetched with `position(id)`). */
function fillsOf(ctx: Context, info: GraphQLResolveInfo, positionId: string): Promise<View<Fill>[]> {
  return ctx.loaders.fillsByPositionId.for(selection(ctx.db, info, Fill)).load(positionId);
}

/** A page of a position's orders, like `fillsOf`. */
function ordersPageOf(
  ctx: Context,
  info: GraphQLResolveInfo,
  positionId: string,
  args: Pick<PositionOrdersArgs, 'first' | 'after' | 'status'>,
) {
  const projection = selection(ctx.db, info, Order, true);
  return ctx.loaders.ordersPageByPositionId
    .for({ first: args.first, after: args.after, status: args.status, projection })
    .load(positionId);
}

@Resolver(() => Position)
export class PositionResolver {
  @Query(() => Position, { nullable: true, description: 'A position by id; null when there is none.' })
  position(
    @Arg('id', () => ID) id: string,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<View<Position> | null> {
    const positionId = assertId(id);
    const position = ctx.loaders.positionById.for(selection(ctx.db, info, Position)).load(positionId);
    prefetch(info, {
      fills: (child) => fillsOf(ctx, child, positionId),
      orders: (child, a) => {
        const args = a as Partial<PositionOrdersArgs>;
        // A later page, or a size the resolver will refuse, is left to the resolver.
        const first = args.first ?? DEFAULT_PAGE_SIZE;
        if (args.after != null || !Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) return undefined;
        return ordersPageOf(ctx, child, positionId, { first, after: args.after, status: args.status });
      },
    });
    return position;
  }

  @Query(() => PositionConnection)
  positions(
    @Args(() => PositionsArgs) args: PositionsArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<ConnectionResult<Row<Position>>> {
    return listPositions(ctx.db, args, listSelection(ctx.db, info, Position));
  }

  @Mutation(() => Order, {
    description:
      'Links an order to a position of the same trader and symbol by hand: an order without fills to any; an order with fills only to the position of its first fill (positions follow fills in event time).',
  })
  linkOrderToPosition(@Args(() => LinkOrderArgs) a: LinkOrderArgs, @Ctx() ctx: Context): Promise<View<Order>> {
    requireRole(ctx.principal, ['service', 'admin'], 'link orders to positions');
    return ctx.db.run((m) => linkOrderToPosition(m, ctx.who, a.orderId, a.positionId, a.reason ?? null));
  }

  @Mutation(() => Order, {
    description: 'Unlinks an order from its position; its fills leave it and the position is recomputed.',
  })
  unlinkOrder(@Args(() => UnlinkOrderArgs) a: UnlinkOrderArgs, @Ctx() ctx: Context): Promise<View<Order>> {
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

  @Mutation(() => BookRecalculation, {
    description:
      "Replays a whole book (a trader's fills in one symbol) in event time and corrects positions, fills' positions and orders, logging what changed (admin).",
  })
  async recalculateBook(@Args(() => BookArgs) a: BookArgs, @Ctx() ctx: Context): Promise<BookRecalculation> {
    requireRole(ctx.principal, ['admin'], 'recalculate books');
    const r = await ctx.db.run((m) => recalculateBook(m, ctx.who, a.traderId.toLowerCase(), a.symbol));
    return {
      changed: r.changed,
      positions: r.positions,
      removedPositionIds: r.change.removedPositions,
      fillsMoved: r.change.fillsMoved,
    };
  }

  @FieldResolver(() => Position, { nullable: true, description: 'The position this one was opened from by a flip.' })
  flippedFrom(@Root() position: View<Position>, @Ctx() ctx: Context): Promise<View<Position> | null> | null {
    return position.flippedFromId ? ctx.loaders.positionById.load(position.flippedFromId) : null;
  }

  @FieldResolver(() => Position, {
    nullable: true,
    description: 'The position the flip that closed this one opened (its closing fill belongs to that one).',
  })
  async flippedTo(@Root() position: View<Position>, @Ctx() ctx: Context): Promise<View<Position> | null> {
    return (await ctx.loaders.positionsByFlippedFromId.load(position.id))[0] ?? null;
  }

  @FieldResolver(() => Trader)
  async trader(@Root() position: View<Position>, @Ctx() ctx: Context): Promise<View<Trader>> {
    return (await ctx.loaders.traderById.load(position.traderId)) as View<Trader>;
  }

  @FieldResolver(() => OrderConnection, { description: 'The orders linked to this position, oldest first.' })
  async orders(
    @Root() position: View<Position>,
    @Args(() => PositionOrdersArgs) args: PositionOrdersArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<ConnectionResult<Row<Order>>> {
    const page = await ordersPageOf(ctx, info, position.id, args);
    return { ...page, count: () => ctx.loaders.orderCountByPositionId.for(args.status ?? null).load(position.id) };
  }

  @FieldResolver(() => [Fill], { description: 'Every fill applied to this position, in execution order.' })
  fills(
    @Root() position: View<Position>,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<View<Fill>[]> {
    return fillsOf(ctx, info, position.id);
  }
}
