import { ArgsType, Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Max, Min } from 'class-validator';
import { DataQualityIssue } from './data-quality.types';

export enum ReconcileFixKind {
  CORRECT_ORDER_TOTALS = 'CORRECT_ORDER_TOTALS',
  LINK_ORDER = 'LINK_ORDER',
  MOVE_FILLS = 'MOVE_FILLS',
  RECOMPUTE_POSITIONS = 'RECOMPUTE_POSITIONS',
}
registerEnumType(ReconcileFixKind, {
  name: 'ReconcileFixKind',
  description: 'What replaying a book from its fills repairs (README "Compliance").',
  valuesConfig: {
    CORRECT_ORDER_TOTALS: {
      description: "Orders' filled quantity, overfill, notional, average price and status from their fills.",
    },
    LINK_ORDER: { description: 'Link orders to the position of their first fill.' },
    MOVE_FILLS: {
      description:
        'Fills stored in a missing position or one of another book go to the position the replay puts them in.',
    },
    RECOMPUTE_POSITIONS: {
      description: "Positions' figures, status, times and flip links from the replay of their book.",
    },
  },
});

export enum ReconcileFixStatus {
  PROPOSED = 'PROPOSED',
  APPLIED = 'APPLIED',
  ALREADY_CONSISTENT = 'ALREADY_CONSISTENT',
  FAILED = 'FAILED',
}
registerEnumType(ReconcileFixStatus, {
  name: 'ReconcileFixStatus',
  valuesConfig: {
    PROPOSED: { description: 'A dry run: what apply would do.' },
    APPLIED: { description: 'Fixed, in a transaction of its own, logged RECOVERED.' },
    ALREADY_CONSISTENT: {
      description:
        'By the time its turn came the book matched its fills (e.g. ingestion replayed it): nothing written.',
    },
    FAILED: { description: 'Rolled back (this book only); see error.' },
  },
});

@ObjectType({ simpleResolvers: true, description: 'One book (a trader, a symbol) replayed from its fills.' })
export class ReconcileFix {
  @Field(() => [ReconcileFixKind])
  kinds!: ReconcileFixKind[];

  @Field(() => ReconcileFixStatus)
  status!: ReconcileFixStatus;

  @Field()
  traderId!: string;

  @Field()
  symbol!: string;

  @Field({ description: 'Why: written into every RECOVERED log entry of the fix.' })
  reason!: string;

  @Field(() => [String])
  orderIds!: string[];

  @Field(() => [String])
  positionIds!: string[];

  @Field(() => [DataQualityIssue], { description: 'The issues of this book that the fix addresses.' })
  issues!: DataQualityIssue[];

  @Field(() => String, { nullable: true })
  error!: string | null;
}

@ObjectType({
  simpleResolvers: true,
  description: 'What a reconciliation proposed or did, and what it left for a person.',
})
export class Reconciliation {
  @Field({ description: 'False for a dry run (nothing written).' })
  applied!: boolean;

  @Field(() => Int, { description: 'Books with something to fix (in this run).' })
  proposed!: number;

  @Field(() => Int)
  fixed!: number;

  @Field(() => Int)
  failed!: number;

  @Field(() => Int, { description: 'Books with something to fix beyond maxFixes: run again.' })
  deferred!: number;

  @Field(() => [ReconcileFix])
  fixes!: ReconcileFix[];

  @Field(() => [DataQualityIssue], { description: 'Issues no safe fix exists for: reported, left alone.' })
  leftAlone!: DataQualityIssue[];
}

@ArgsType()
export class ReconcileArgs {
  @Field(() => Date, { nullable: true })
  from?: Date | null;

  @Field(() => Date, { nullable: true })
  to?: Date | null;

  @Field({ defaultValue: false, description: 'False (default): a dry run. True: apply the safe fixes.' })
  apply: boolean = false;

  @Field(() => Int, { defaultValue: 1000, description: 'At most this many books fixed in one run (1 to 100000).' })
  @Min(1, { message: 'maxFixes must be at least 1.' })
  @Max(100000, { message: 'maxFixes must be at most 100000.' })
  maxFixes: number = 1000;
}
