import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema, type PubSub } from 'type-graphql';
import { PositionAuditResolver } from './compliance/audit-summary';
import { ComplianceResolver } from './compliance/compliance.resolver';
import { ExecutionLogResolver } from './execution-log/execution-log.resolver';
import { FillResolver } from './fill/fill.resolver';
import { LiveResolver } from './live/live.resolver';
import { OrderResolver } from './order/order.resolver';
import { PositionResolver } from './position/position.resolver';
import { TraderResolver } from './trader/trader.resolver';
import { DateTimeScalar } from './scalars';

/**
 * type-graphql wants a PubSub once the schema has subscriptions, even though each of ours brings its
 * own `subscribe` (src/live: changes come from PostgreSQL's LISTEN/NOTIFY); nothing publishes to it.
 */
const NO_PUBSUB: PubSub = {
  publish() {
    throw new Error('Tradetrail publishes no events in process: changes come from the database (src/live).');
  },
  subscribe() {
    throw new Error('Every Tradetrail subscription has its own subscribe function (src/live).');
  },
};

export function buildTradetrailSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [
      TraderResolver,
      PositionResolver,
      OrderResolver,
      FillResolver,
      ExecutionLogResolver,
      ComplianceResolver,
      PositionAuditResolver,
      LiveResolver,
    ],
    pubSub: NO_PUBSUB,
    validate: { forbidUnknownValues: false },
    // Every Date argument is a DateTimeISO limited to 1970..2200.
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
  });
}

/** The SDL committed as `schema.graphql`: types sorted, so that it changes only when the API does. */
export function printSortedSchema(schema: GraphQLSchema): string {
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}
