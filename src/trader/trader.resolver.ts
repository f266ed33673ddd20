import { listSelection, type Row, type View } from '../loaders';
import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Args, Ctx, ID, Info, Query, Resolver } from 'type-graphql';
import type { Context } from '../context';
import { assertId } from '../ids';
import { connectionType, type ConnectionResult } from '../pagination';
import { Trader } from './trader.entity';
import { TradersArgs } from './trader.inputs';
import { listTraders } from './trader.service';

export const TraderConnection = connectionType(Trader, 'Trader');

@Resolver(() => Trader)
export class TraderResolver {
  @Query(() => Trader, { nullable: true, description: 'A trader by id; null when there is none.' })
  trader(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<View<Trader> | null> {
    return ctx.loaders.traderById.load(assertId(id));
  }

  @Query(() => TraderConnection)
  traders(
    @Args(() => TradersArgs) args: TradersArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<ConnectionResult<Row<Trader>>> {
    return listTraders(ctx.db, args, listSelection(ctx.db, info, Trader));
  }
}
