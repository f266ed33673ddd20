import { ArgsType, Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { type ConnectionType, connectionType, PageArgs } from '../pagination';
import { DecimalScalar } from '../scalars';

/** What the data-quality report checks (DOMAIN.md §4 and §7). */
export enum DataQualityIssueType {
  BROKEN_LOG = 'BROKEN_LOG',
  ORDER_LOG_MISMATCH = 'ORDER_LOG_MISMATCH',
  ORPHANED_POSITION_REFERENCE = 'ORPHANED_POSITION_REFERENCE',
  QUANTITY_MISMATCH = 'QUANTITY_MISMATCH',
  ORDER_FILL_MISMATCH = 'ORDER_FILL_MISMATCH',
  REPLAY_MISMATCH = 'REPLAY_MISMATCH',
  UNLINKED_FILLED_ORDER = 'UNLINKED_FILLED_ORDER',
  POSITION_WITHOUT_ORDERS = 'POSITION_WITHOUT_ORDERS',
  EXECUTION_EXCEPTION = 'EXECUTION_EXCEPTION',
}
registerEnumType(DataQualityIssueType, {
  name: 'DataQualityIssueType',
  description: 'A kind of disagreement the data-quality report finds (README "Compliance").',
  valuesConfig: {
    BROKEN_LOG: {
      description:
        "An order's hash chain is broken (an entry edited, removed, inserted or renumbered) or the Merkle tree disagrees with the log (a leaf whose entry is gone, an entry the integrator refused, a checkpoint the tree no longer matches).",
    },
    ORDER_LOG_MISMATCH: {
      description:
        "An order's state disagrees with its log: its status is not the one its last entry left it in, its filled quantity is not the sum of the fills its log records, or it has no log at all.",
    },
    ORPHANED_POSITION_REFERENCE: {
      description: 'An order or a fill points at a position that does not exist or belongs to another book.',
    },
    QUANTITY_MISMATCH: {
      description:
        "A position's quantity is not the signed sum of its fills (with the quantity a flip carried into it).",
    },
    ORDER_FILL_MISMATCH: {
      description:
        "An order's filled quantity, overfill, notional or average fill price disagrees with its effective fills.",
    },
    REPLAY_MISMATCH: {
      description:
        'A position differs from the replay of its book in event time (figures, status, times, flip link, or which fills it holds).',
    },
    UNLINKED_FILLED_ORDER: { description: 'An order with fills that is not linked to the position of its first fill.' },
    POSITION_WITHOUT_ORDERS: { description: 'A position that no order is linked to and no fill was applied to.' },
    EXECUTION_EXCEPTION: {
      description:
        "A fill applied as an exception (on a REPLACED or REJECTED order, or beyond the order's quantity): valid, but to be reviewed.",
    },
  },
});

export enum Severity {
  CRITICAL = 'CRITICAL',
  ERROR = 'ERROR',
  WARNING = 'WARNING',
  INFO = 'INFO',
}
registerEnumType(Severity, {
  name: 'Severity',
  description:
    'CRITICAL: the audit trail itself is in doubt; ERROR: stored figures are wrong; WARNING: incomplete bookkeeping; INFO: to review.',
});

@ObjectType({
  simpleResolvers: true,
  description: 'One disagreement found by the data-quality report, with the numbers that disagree.',
})
export class DataQualityIssue {
  @Field(() => ID, { description: 'Stable for the same disagreement: its type, subject and field.' })
  id!: string;

  @Field(() => DataQualityIssueType)
  type!: DataQualityIssueType;

  @Field(() => Severity)
  severity!: Severity;

  @Field({ description: 'What is wrong, for a person.' })
  message!: string;

  @Field(() => ID, { nullable: true })
  traderId!: string | null;

  @Field(() => String, { nullable: true })
  symbol!: string | null;

  @Field(() => ID, { nullable: true })
  orderId!: string | null;

  @Field(() => ID, { nullable: true })
  positionId!: string | null;

  @Field(() => ID, { nullable: true })
  fillId!: string | null;

  @Field(() => ID, { nullable: true, description: 'The log entry concerned (BROKEN_LOG, ORDER_LOG_MISMATCH).' })
  entryId!: string | null;

  @Field(() => String, { nullable: true, description: 'The field that disagrees, e.g. `realizedPnl`.' })
  field!: string | null;

  @Field(() => String, { nullable: true, description: 'What the fills (or the log) say it should be.' })
  expected!: string | null;

  @Field(() => String, { nullable: true, description: 'What is stored.' })
  actual!: string | null;

  @Field(() => Date, {
    nullable: true,
    description:
      "The time the report's range applies to: an order's creation, a position's opening, a fill's execution, a log entry's recording.",
  })
  at!: Date | null;
}

export const DataQualityIssueConnection = connectionType(DataQualityIssue, 'DataQualityIssue');

@ObjectType({ simpleResolvers: true })
export class DataQualityTotal {
  @Field(() => DataQualityIssueType)
  type!: DataQualityIssueType;

  @Field(() => Severity)
  severity!: Severity;

  @Field(() => Int)
  count!: number;
}

@ObjectType({ simpleResolvers: true, description: 'The data-quality report over a time range (README "Compliance").' })
export class DataQualityReport {
  @Field(() => Date, { nullable: true })
  from!: Date | null;

  @Field(() => Date, { nullable: true })
  to!: Date | null;

  @Field(() => Date)
  generatedAt!: Date;

  @Field(() => Int, { description: 'Orders in the range with at least one effective fill.' })
  filledOrders!: number;

  @Field(() => Int, { description: 'Of those, the orders linked to a position.' })
  linkedFilledOrders!: number;

  @Field(() => DecimalScalar, {
    nullable: true,
    description: 'linkedFilledOrders / filledOrders, 6 decimals (half-even); null without filled orders.',
  })
  linkRate!: string | null;

  @Field(() => Int, { description: 'Every issue found, of every type.' })
  issueCount!: number;

  @Field(() => Boolean, {
    description:
      'True when every row was checked from scratch (the first report, full: true, or a baseline that could not be used); false when only the books and orders that changed since the last report were re-checked.',
  })
  complete!: boolean;

  @Field(() => Int, { nullable: true, description: 'Books re-checked (null when the check was complete).' })
  changedBooks!: number | null;

  @Field(() => Int, { nullable: true, description: 'Orders whose log was re-checked (null: every order).' })
  changedOrders!: number | null;

  @Field(() => [DataQualityTotal], { description: 'Issues by type, every type listed (count 0 included).' })
  totals!: DataQualityTotal[];

  @Field(() => DataQualityIssueConnection, {
    description: 'The issues, most severe first, a page at a time (first/after of dataQualityReport).',
  })
  issues!: ConnectionType<DataQualityIssue>;
}

@ArgsType()
export class DataQualityReportArgs extends PageArgs {
  @Field(() => Date, { nullable: true, description: 'Issues whose time is at or after this.' })
  from?: Date | null;

  @Field(() => Date, { nullable: true, description: 'Issues whose time is before this.' })
  to?: Date | null;

  @Field(() => [DataQualityIssueType], { nullable: true, description: 'Only these types (default: all).' })
  types?: DataQualityIssueType[] | null;

  @Field(() => Boolean, {
    defaultValue: false,
    description:
      'Check every row from scratch instead of only what changed since the last report (whose result is kept, authenticated, as the baseline).',
  })
  full!: boolean;
}
