import type { View } from '../loaders';
import { IsOptional, IsUUID, Length, Matches, ValidateNested } from 'class-validator';
import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Dec } from '../decimal';
import { UUID_MESSAGE } from '../ids';
import { Order } from '../order/order.entity';
import { PageArgs } from '../pagination';
import { Position } from '../position/position.entity';
import { DecimalScalar } from '../scalars';
import { FitsNumericColumn, fitsNumericColumn, IsNonNegativeDecimal, IsPositiveDecimal } from '../validation';
import { FillCorrection } from './fill-correction.entity';
import { Fill, Liquidity } from './fill.entity';

/** At most this many executions in one `recordExecutions` request. */
export const MAX_BATCH = 1000;

@InputType({
  description: 'One execution reported by a venue. Name the order by orderId, or by traderId and clientOrderId.',
})
export class RecordExecutionInput {
  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('orderId'))
  orderId?: string | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('traderId'))
  traderId?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 48, { message: 'clientOrderId must be 1 to 48 characters.' })
  clientOrderId?: string | null;

  @Field({ description: "The venue's execution id: with the venue, the idempotency key of the fill." })
  @Length(1, 128, { message: 'execId must be 1 to 128 characters.' })
  execId!: string;

  @Field(() => DecimalScalar)
  @IsPositiveDecimal()
  @FitsNumericColumn()
  quantity!: Dec;

  @Field(() => DecimalScalar)
  @IsPositiveDecimal()
  @FitsNumericColumn()
  price!: Dec;

  @Field(() => DecimalScalar, { nullable: true, description: 'Default 0.' })
  @IsNonNegativeDecimal()
  @FitsNumericColumn()
  commission?: Dec | null;

  @Field(() => Liquidity, { nullable: true })
  liquidity?: Liquidity | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,32}$/, { message: 'venue must be 1 to 32 letters, digits, ".", "_" or "-".' })
  venue?: string | null;

  @Field({ description: 'When the venue executed it.' })
  executedAt!: Date;
}

const V1_TO_8_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;
/** Text whose length class-validator's Length counts as its `.length` (no surrogate pair, no variation selector). */
const plainText = (max: number) => new RegExp(`^[^\\ud800-\\udfff\\ufe0e\\ufe0f]{1,${max}}$`);
const CLIENT_ORDER_ID = plainText(48);
const EXEC_ID = plainText(128);
const VENUE = /^[A-Za-z0-9._-]{1,32}$/;
const absent = (v: unknown): boolean => v === null || v === undefined;
const decimalIn = (v: unknown, min: 'positive' | 'nonNegative'): boolean =>
  Dec.isDecimal(v) &&
  ((v as Dec).gt(0) || (min === 'nonNegative' && (v as Dec).isZero())) &&
  fitsNumericColumn(v as Dec);

/**
 * True only when every validation rule of RecordExecutionInput above certainly holds: a fast path for
 * the usual, valid execution. False means "ask class-validator" (which then finds the error, or finds
 * none: this check is stricter than the rules, never looser).
 */
export function certainlyValidExecution(i: RecordExecutionInput): boolean {
  return (
    (absent(i.orderId) || (typeof i.orderId === 'string' && V1_TO_8_UUID.test(i.orderId))) &&
    (absent(i.traderId) || (typeof i.traderId === 'string' && V1_TO_8_UUID.test(i.traderId))) &&
    (absent(i.clientOrderId) || (typeof i.clientOrderId === 'string' && CLIENT_ORDER_ID.test(i.clientOrderId))) &&
    typeof i.execId === 'string' &&
    EXEC_ID.test(i.execId) &&
    decimalIn(i.quantity, 'positive') &&
    decimalIn(i.price, 'positive') &&
    (absent(i.commission) || decimalIn(i.commission, 'nonNegative')) &&
    (absent(i.venue) || (typeof i.venue === 'string' && VENUE.test(i.venue)))
  );
}

export enum ExecutionStatus {
  APPLIED = 'APPLIED',
  DUPLICATE = 'DUPLICATE',
  REFUSED = 'REFUSED',
}
registerEnumType(ExecutionStatus, {
  name: 'ExecutionStatus',
  valuesConfig: {
    APPLIED: { description: 'Recorded: the fill, its order, its position and the log changed.' },
    DUPLICATE: {
      description: 'Already recorded with the same order, quantity, price and commission: nothing changed.',
    },
    REFUSED: { description: 'Not recorded; `error` says why. Nothing changed (a conflicting replay is logged).' },
  },
});

@ObjectType({ simpleResolvers: true })
export class ExecutionError {
  @Field({ description: 'BAD_USER_INPUT, NOT_FOUND or CONFLICT.' })
  code!: string;

  @Field()
  message!: string;

  @Field(() => String, { nullable: true })
  field?: string | null;
}

@ObjectType({ simpleResolvers: true, description: 'What became of one execution.' })
export class ExecutionResult {
  @Field(() => Int, { description: 'Position of the execution in the request, from 0.' })
  index!: number;

  @Field(() => ExecutionStatus)
  status!: ExecutionStatus;

  @Field(() => Fill, { nullable: true, description: 'The recorded fill (for APPLIED and DUPLICATE).' })
  fill?: Fill | null;

  @Field(() => Order, { nullable: true })
  order?: Order | null;

  @Field(() => Position, { nullable: true, description: 'The position the fill was applied to.' })
  position?: Position | null;

  @Field(() => ExecutionError, { nullable: true })
  error?: ExecutionError | null;
}

@ObjectType({ simpleResolvers: true })
export class RecordExecutionsPayload {
  @Field(() => Int)
  applied!: number;

  @Field(() => Int)
  duplicates!: number;

  @Field(() => Int)
  refused!: number;

  @Field(() => [ExecutionResult], { description: 'One result per execution, in request order.' })
  results!: ExecutionResult[];
}

@InputType({ description: 'Every given condition must hold.' })
export class FillFilter {
  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 64, { message: 'filter.symbol must be 1 to 64 characters.' })
  symbol?: string;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.orderId'))
  orderId?: string;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.positionId'))
  positionId?: string;

  @Field(() => Boolean, {
    nullable: true,
    description: 'true: only exceptions (overfills, fills on REPLACED or REJECTED orders); false: none of them.',
  })
  exception?: boolean;

  @Field(() => Boolean, { nullable: true, description: 'true: only busted executions; false: none of them.' })
  busted?: boolean;

  @Field(() => Date, { nullable: true })
  executedFrom?: Date;

  @Field(() => Date, { nullable: true })
  executedTo?: Date;
}

@ArgsType()
export class FillsArgs extends PageArgs {
  @Field(() => FillFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: FillFilter;
}

@InputType({
  description:
    'A trade correction (FIX ExecType G) of a recorded execution, named by venue and execId: new quantity, price and/or commission.',
})
export class CorrectExecutionInput {
  @Field({ description: 'Your id of this correction: the idempotency key (a retry with the same id changes nothing).' })
  @Length(1, 128, { message: 'correctionId must be 1 to 128 characters.' })
  correctionId!: string;

  @Field()
  @Length(1, 128, { message: 'execId must be 1 to 128 characters.' })
  execId!: string;

  @Field(() => String, { nullable: true, description: 'The venue the execution was recorded under (none: null).' })
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,32}$/, { message: 'venue must be 1 to 32 letters, digits, ".", "_" or "-".' })
  venue?: string | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsOptional()
  @IsPositiveDecimal()
  @FitsNumericColumn()
  quantity?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsOptional()
  @IsPositiveDecimal()
  @FitsNumericColumn()
  price?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsOptional()
  @IsNonNegativeDecimal()
  @FitsNumericColumn()
  commission?: Dec | null;

  @Field({ description: 'Why, for the audit trail.' })
  @Length(1, 500, { message: 'reason must be 1 to 500 characters.' })
  reason!: string;
}

@InputType({ description: 'A trade bust (FIX ExecType H): the recorded execution did not happen.' })
export class BustExecutionInput {
  @Field({ description: 'Your id of this bust: the idempotency key (a retry with the same id changes nothing).' })
  @Length(1, 128, { message: 'correctionId must be 1 to 128 characters.' })
  correctionId!: string;

  @Field()
  @Length(1, 128, { message: 'execId must be 1 to 128 characters.' })
  execId!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[A-Za-z0-9._-]{1,32}$/, { message: 'venue must be 1 to 32 letters, digits, ".", "_" or "-".' })
  venue?: string | null;

  @Field({ description: 'Why, for the audit trail.' })
  @Length(1, 500, { message: 'reason must be 1 to 500 characters.' })
  reason!: string;
}

@ObjectType({ simpleResolvers: true, description: 'What a correction or bust did.' })
export class CorrectionResult {
  @Field(() => ExecutionStatus, { description: 'APPLIED, or DUPLICATE for a retry of the same correctionId.' })
  status!: ExecutionStatus;

  @Field(() => FillCorrection)
  correction!: FillCorrection;

  @Field(() => Fill)
  fill!: View<Fill>;

  @Field(() => Order)
  order!: View<Order>;
}
