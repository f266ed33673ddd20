import type { GraphQLResolveInfo } from 'graphql';
import { listSelection, prefetch, type Row, selection, type View } from '../loaders';
import { Arg, Args, Ctx, FieldResolver, ID, Info, Mutation, Query, Resolver, Root } from 'type-graphql';
import { requireRole, requireSelf } from '../auth';
import type { Context } from '../context';
import { ExecutionLog } from '../execution-log/execution-log.entity';
import { Fill } from '../fill/fill.entity';
import { assertId } from '../ids';
import { connectionType, type ConnectionResult } from '../pagination';
import { Position } from '../position/position.entity';
import { Trader } from '../trader/trader.entity';
import { Order, OrderStatus } from './order.entity';
import {
  AcceptOrderArgs,
  CancelOrderArgs,
  OrderEventArgs,
  OrdersArgs,
  RejectOrderArgs,
  ReplaceOrderArgs,
  SubmitOrderInput,
} from './order.inputs';
import { changeOrderStatus, listOrders, replaceOrder, submitOrder } from './order.service';

export const OrderConnection = connectionType(Order, 'Order');

/** An order's fills, the columns `info` asks for (its field resolver, and prefetched with `order(id)`). */
function fillsOf(ctx: Context, info: GraphQLResolveInfo, orderId: string): Promise<View<Fill>[]> {
  return ctx.loaders.fillsByOrderId.for(selection(ctx.db, info, Fill)).load(orderId);
}

/** An order's log entries, like `fillsOf`. */
function logsOf(ctx: Context, info: GraphQLResolveInfo, orderId: string): Promise<View<ExecutionLog>[]> {
  return ctx.loaders.logsByOrderId.for(selection(ctx.db, info, ExecutionLog)).load(orderId);
}

@Resolver(() => Order)
export class OrderResolver {
  @Query(() => Order, { nullable: true, description: 'An order by id; null when there is none.' })
  order(
    @Arg('id', () => ID) id: string,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<View<Order> | null> {
    const orderId = assertId(id);
    const order = ctx.loaders.orderById.for(selection(ctx.db, info, Order)).load(orderId);
    prefetch(info, {
      fills: (child) => fillsOf(ctx, child, orderId),
      executionLogs: (child) => logsOf(ctx, child, orderId),
    });
    return order;
  }

  @Query(() => OrderConnection)
  orders(
    @Args(() => OrdersArgs) args: OrdersArgs,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<ConnectionResult<Row<Order>>> {
    return listOrders(ctx.db, args, listSelection(ctx.db, info, Order));
  }

  @Mutation(() => Order, {
    description: 'A new PENDING order. Idempotent on (traderId, clientOrderId): a retry returns the same order.',
  })
  submitOrder(
    @Arg('input', () => SubmitOrderInput) input: SubmitOrderInput,
    @Ctx() ctx: Context,
  ): Promise<View<Order>> {
    requireRole(ctx.principal, ['trader', 'service', 'admin'], 'submit orders');
    requireSelf(ctx.principal, input.traderId, 'submit orders');
    return ctx.db.run((m) => submitOrder(m, ctx.who, input));
  }

  @Mutation(() => Order, { description: 'The venue acknowledged the order: PENDING -> ACCEPTED.' })
  acceptOrder(@Args(() => AcceptOrderArgs) a: AcceptOrderArgs, @Ctx() ctx: Context): Promise<View<Order>> {
    requireRole(ctx.principal, ['service', 'admin'], 'accept orders');
    return ctx.db.run((m) =>
      changeOrderStatus(m, ctx.who, a.orderId, {
        to: OrderStatus.ACCEPTED,
        brokerOrderId: a.brokerOrderId,
        occurredAt: a.occurredAt,
      }),
    );
  }

  @Mutation(() => Order, { description: 'Cancels a working order (PENDING, ACCEPTED or PARTIAL).' })
  cancelOrder(@Args(() => CancelOrderArgs) a: CancelOrderArgs, @Ctx() ctx: Context): Promise<View<Order>> {
    requireRole(ctx.principal, ['trader', 'service', 'admin'], 'cancel orders');
    return ctx.db.run((m) =>
      changeOrderStatus(m, ctx.who, a.orderId, {
        to: OrderStatus.CANCELLED,
        reason: a.reason,
        occurredAt: a.occurredAt,
      }),
    );
  }

  @Mutation(() => Order, { description: 'The venue rejected the order (from PENDING or ACCEPTED).' })
  rejectOrder(@Args(() => RejectOrderArgs) a: RejectOrderArgs, @Ctx() ctx: Context): Promise<View<Order>> {
    requireRole(ctx.principal, ['service', 'admin'], 'reject orders');
    return ctx.db.run((m) =>
      changeOrderStatus(m, ctx.who, a.orderId, {
        to: OrderStatus.REJECTED,
        reason: a.reason,
        errorCode: a.errorCode,
        occurredAt: a.occurredAt,
      }),
    );
  }

  @Mutation(() => Order, { description: 'The order expired (e.g. a DAY order at the close).' })
  expireOrder(@Args(() => OrderEventArgs) a: OrderEventArgs, @Ctx() ctx: Context): Promise<View<Order>> {
    requireRole(ctx.principal, ['service', 'admin'], 'expire orders');
    return ctx.db.run((m) =>
      changeOrderStatus(m, ctx.who, a.orderId, { to: OrderStatus.EXPIRED, occurredAt: a.occurredAt }),
    );
  }

  @Mutation(() => Order, {
    description: 'Cancel/replace: the order becomes REPLACED and the returned new order references it (replacesOrder).',
  })
  replaceOrder(@Args(() => ReplaceOrderArgs) a: ReplaceOrderArgs, @Ctx() ctx: Context): Promise<View<Order>> {
    requireRole(ctx.principal, ['service', 'admin'], 'replace orders');
    return ctx.db.run((m) => replaceOrder(m, ctx.who, a.orderId, a.input, a.occurredAt));
  }

  @FieldResolver(() => Trader)
  async trader(@Root() order: View<Order>, @Ctx() ctx: Context): Promise<View<Trader>> {
    return (await ctx.loaders.traderById.load(order.traderId)) as View<Trader>;
  }

  @FieldResolver(() => Position, { nullable: true, description: 'The position this order built; null while unlinked.' })
  position(
    @Root() order: View<Order>,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<View<Position> | null> | null {
    return order.positionId
      ? ctx.loaders.positionById.for(selection(ctx.db, info, Position)).load(order.positionId)
      : null;
  }

  @FieldResolver(() => [Fill], { description: 'Fills in execution order.' })
  fills(@Root() order: View<Order>, @Ctx() ctx: Context, @Info() info: GraphQLResolveInfo): Promise<View<Fill>[]> {
    return fillsOf(ctx, info, order.id);
  }

  @FieldResolver(() => [ExecutionLog], { description: 'The audit trail of this order, by seq.' })
  executionLogs(
    @Root() order: View<Order>,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
  ): Promise<View<ExecutionLog>[]> {
    return logsOf(ctx, info, order.id);
  }

  @FieldResolver(() => Order, { nullable: true, description: 'The order this one replaced.' })
  replacesOrder(@Root() order: View<Order>, @Ctx() ctx: Context): Promise<View<Order> | null> | null {
    return order.replacesOrderId ? ctx.loaders.orderById.load(order.replacesOrderId) : null;
  }

  @FieldResolver(() => Order, { nullable: true, description: 'The multi-leg parent of a leg.' })
  parentOrder(@Root() order: View<Order>, @Ctx() ctx: Context): Promise<View<Order> | null> | null {
    return order.parentOrderId ? ctx.loaders.orderById.load(order.parentOrderId) : null;
  }
}
