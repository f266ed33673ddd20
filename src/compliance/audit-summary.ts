import DataLoader from 'dataloader';
import { Ctx, Field, FieldResolver, Int, ObjectType, Resolver, Root } from 'type-graphql';
import type { Context } from '../context';
import { Dec } from '../decimal';
import { Position } from '../position/position.entity';
import type { RequestDb } from '../request-db';
import { DecimalScalar } from '../scalars';
import { replayedPositions } from './replay-check';

@ObjectType({
  simpleResolvers: true,
  description: "A position's audit summary: its stored figures against its fills and their replay.",
})
export class PositionAuditSummary {
  @Field(() => DecimalScalar, { description: 'The stored quantity.' })
  quantity!: string;

  @Field(() => DecimalScalar, {
    description: 'Σ signed effective quantities of the fills applied to it (busts left out).',
  })
  signedFillQuantity!: string;

  @Field(() => DecimalScalar, {
    description:
      'Quantity a flip carried into it (+/−) or out of it, as the replay of its book says: quantity = signedFillQuantity + carriedQuantity. 0 without flips.',
  })
  carriedQuantity!: string;

  @Field({ description: 'The stored quantity is its fills (with any flip carry).' })
  quantityConsistent!: boolean;

  @Field(() => DecimalScalar, { description: 'The stored realized PnL (gross).' })
  realizedPnl!: string;

  @Field(() => DecimalScalar, {
    nullable: true,
    description: "Realized PnL replayed from its book's fills; null when the replay has no position holding its fills.",
  })
  replayedRealizedPnl!: string | null;

  @Field({ description: 'The stored realized PnL equals the replayed one.' })
  realizedPnlConsistent!: boolean;

  @Field(() => Int, { description: 'Orders linked to it or with a fill in it.' })
  orderCount!: number;

  @Field(() => Int, { description: 'Its fills applied as exceptions (DOMAIN §4).' })
  exceptionCount!: number;

  @Field(() => Date, { nullable: true, description: 'Event time of its first effective fill.' })
  firstExecutionAt!: Date | null;

  @Field(() => Date, { nullable: true, description: 'Event time of its last effective fill.' })
  lastExecutionAt!: Date | null;
}

export interface ComplianceLoaders {
  auditSummaryByPositionId: DataLoader<string, PositionAuditSummary | null>;
}

/** Two statements for any number of positions: the positions with their order counts, and the fills of their books. */
export function createComplianceLoaders(db: RequestDb): ComplianceLoaders {
  return {
    auditSummaryByPositionId: new DataLoader(async (ids) => {
      const summaries = await db.run(async (m) => {
        const rows = (await m.query(
          `SELECT p.id, p.trader_id, p.symbol, p.quantity::text AS quantity, p.realized_pnl::text AS realized_pnl,
             (SELECT count(*)::int FROM orders o
              WHERE o.position_id = p.id OR o.id IN (SELECT x.order_id FROM fills x WHERE x.position_id = p.id)) AS orders
           FROM positions p WHERE p.id = ANY($1::uuid[])`,
          [ids],
        )) as {
          id: string;
          trader_id: string;
          symbol: string;
          quantity: string;
          realized_pnl: string;
          orders: number;
        }[];
        // The fills of their books, read once: their own fills' figures and the replay.
        const books = await replayedPositions(
          m,
          rows.map((r) => ({ id: r.id, traderId: r.trader_id, symbol: r.symbol })),
        );
        return new Map(
          rows.map((r) => {
            const replayed = books.replayed.get(r.id);
            const own = books.stored.get(r.id) ?? [];
            const quantity = new Dec(r.quantity);
            const signed = own.reduce((sum, f) => sum.plus(f.signedQuantity), new Dec(0));
            const carried = replayed ? replayed.segment.state.quantity.minus(signed) : new Dec(0);
            const pnl = replayed?.segment.state.realizedPnl ?? null;
            const summary: PositionAuditSummary = {
              quantity: quantity.toFixed(),
              signedFillQuantity: signed.toFixed(),
              carriedQuantity: carried.toFixed(),
              quantityConsistent: quantity.eq(signed.plus(carried)),
              realizedPnl: new Dec(r.realized_pnl).toFixed(),
              replayedRealizedPnl: pnl?.toFixed() ?? null,
              realizedPnlConsistent: pnl !== null && pnl.eq(r.realized_pnl),
              orderCount: r.orders,
              exceptionCount: own.filter((f) => f.arrivalException || f.overfilled.gt(0)).length,
              firstExecutionAt: own[0]?.executedAt ?? null,
              lastExecutionAt: own.at(-1)?.executedAt ?? null,
            };
            return [r.id, summary];
          }),
        );
      });
      return ids.map((id) => summaries.get(id) ?? null);
    }),
  };
}

@Resolver(() => Position)
export class PositionAuditResolver {
  @FieldResolver(() => PositionAuditSummary, {
    description:
      'Its quantity against its fills, its realized PnL against the replay of its book, its orders, exceptions and first and last execution (batched: a constant number of statements for any number of positions). Visible to whoever may see the position.',
  })
  async auditSummary(@Root() position: Position, @Ctx() ctx: Context): Promise<PositionAuditSummary> {
    return (await ctx.loaders.auditSummaryByPositionId.load(position.id))!;
  }
}
