import { IsOptional, IsUUID, Length, Matches } from 'class-validator';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { Dec } from '../decimal';
import { UUID_MESSAGE } from '../ids';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { DecimalScalar } from '../scalars';
import { HasAtMostNineDecimals, IsNonNegativeDecimal, IsPositiveDecimal } from '../validation';
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

  @Field({ description: "The venue's execution id: the idempotency key of the fill within its order." })
  @Length(1, 128, { message: 'execId must be 1 to 128 characters.' })
  execId!: string;

  @Field(() => DecimalScalar)
  @IsPositiveDecimal()
  @HasAtMostNineDecimals()
  quantity!: Dec;

  @Field(() => DecimalScalar)
  @IsPositiveDecimal()
  @HasAtMostNineDecimals()
  price!: Dec;

  @Field(() => DecimalScalar, { nullable: true, description: 'Default 0.' })
  @IsNonNegativeDecimal()
  @HasAtMostNineDecimals()
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

export enum ExecutionStatus {
  APPLIED = 'APPLIED',
  DUPLICATE = 'DUPLICATE',
  REFUSED = 'REFUSED',
}
registerEnumType(ExecutionStatus, {
  name: 'ExecutionStatus',
  valuesConfig: {
    APPLIED: { description: 'Recorded: the fill, its order, its position and the log changed.' },
    DUPLICATE: { description: 'Already recorded with the same quantity and price: nothing changed.' },
    REFUSED: { description: 'Not recorded; `error` says why. Nothing changed (a conflicting replay is logged).' },
  },
});

@ObjectType()
export class ExecutionError {
  @Field({ description: 'BAD_USER_INPUT, NOT_FOUND or CONFLICT.' })
  code!: string;

  @Field()
  message!: string;

  @Field(() => String, { nullable: true })
  field?: string | null;
}

@ObjectType({ description: 'What became of one execution.' })
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

@ObjectType()
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
