import { type GraphQLSchema, lexicographicSortSchema, printSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { PositionAuditResolver } from './compliance/audit-summary';
import { ComplianceResolver } from './compliance/compliance.resolver';
import { ExecutionLogResolver } from './execution-log/execution-log.resolver';
import { FillResolver } from './fill/fill.resolver';
import { OrderResolver } from './order/order.resolver';
import { PositionResolver } from './position/position.resolver';
import { TraderResolver } from './trader/trader.resolver';
import { DateTimeScalar } from './scalars';

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
    ],
    validate: { forbidUnknownValues: false },
    // Every Date argument is a DateTimeISO limited to 1970..2200.
    scalarsMap: [{ type: Date, scalar: DateTimeScalar }],
  });
}

/** The SDL committed as `schema.graphql`: types sorted, so that it changes only when the API does. */
export function printSortedSchema(schema: GraphQLSchema): string {
  return printSchema(lexicographicSortSchema(schema)) + '\n';
}
