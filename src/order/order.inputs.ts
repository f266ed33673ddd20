import { IsOptional, IsUUID, Length, Matches, MaxLength, ValidateNested } from 'class-validator';
import { ArgsType, Field, ID, InputType, registerEnumType } from 'type-graphql';
import { UUID_MESSAGE } from '../ids';
import { PageArgs, SortDirection } from '../pagination';
import type { Dec } from '../decimal';
import { DecimalScalar } from '../scalars';
import { FitsNumericColumn, IsPositiveDecimal } from '../validation';
import { OrderSide, OrderStatus, OrderType, TimeInForce } from './order.entity';

export enum OrderSortField {
  CREATED_AT = 'CREATED_AT',
  UPDATED_AT = 'UPDATED_AT',
  SYMBOL = 'SYMBOL',
}
registerEnumType(OrderSortField, { name: 'OrderSortField' });

@InputType({ description: 'Every given condition must hold. Ranges include `from` and exclude `to`.' })
export class OrderFilter {
  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(64, { message: 'filter.symbol must be at most 64 characters.' })
  symbol?: string;

  @Field(() => [OrderStatus], { nullable: true, description: 'Any of these statuses.' })
  status?: OrderStatus[];

  @Field(() => OrderSide, { nullable: true })
  side?: OrderSide;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.positionId'))
  positionId?: string;

  @Field(() => Boolean, {
    nullable: true,
    description: 'true: only orders linked to a position; false: only unlinked ones.',
  })
  linked?: boolean;

  @Field(() => Date, { nullable: true })
  createdFrom?: Date;

  @Field(() => Date, { nullable: true })
  createdTo?: Date;

  @Field(() => Date, { nullable: true })
  filledFrom?: Date;

  @Field(() => Date, { nullable: true })
  filledTo?: Date;
}

@InputType()
export class OrderOrderBy {
  @Field(() => OrderSortField, { defaultValue: OrderSortField.CREATED_AT })
  field: OrderSortField = OrderSortField.CREATED_AT;

  @Field(() => SortDirection, { defaultValue: SortDirection.DESC })
  direction: SortDirection = SortDirection.DESC;
}

@ArgsType()
export class OrdersArgs extends PageArgs {
  @Field(() => OrderFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: OrderFilter;

  @Field(() => OrderOrderBy, { nullable: true, description: 'Default: newest first.' })
  orderBy?: OrderOrderBy;
}

/** Arguments of `Position.orders`: a page of the position's orders, oldest first. */
@ArgsType()
export class PositionOrdersArgs extends PageArgs {
  @Field(() => OrderStatus, { nullable: true })
  status?: OrderStatus;
}

const REASON_MAX = 500;

@InputType({
  description: 'A new order. (traderId, clientOrderId) is the idempotency key: a retry returns the same order.',
})
export class SubmitOrderInput {
  @Field(() => ID)
  @IsUUID('all', UUID_MESSAGE('traderId'))
  traderId!: string;

  @Field({ description: 'At most 48 characters, unique per trader.' })
  @Length(1, 48, { message: 'clientOrderId must be 1 to 48 characters.' })
  clientOrderId!: string;

  @Field()
  @Matches(/^[A-Za-z0-9][A-Za-z0-9 ./:_-]{0,63}$/, {
    message: 'symbol must be 1 to 64 characters: letters, digits, space, ".", "/", ":", "_" or "-".',
  })
  symbol!: string;

  @Field(() => OrderSide)
  side!: OrderSide;

  @Field(() => OrderType)
  orderType!: OrderType;

  @Field(() => TimeInForce, { defaultValue: TimeInForce.DAY })
  timeInForce: TimeInForce = TimeInForce.DAY;

  @Field(() => DecimalScalar)
  @IsPositiveDecimal()
  @FitsNumericColumn()
  quantity!: Dec;

  @Field(() => DecimalScalar, { nullable: true, description: 'Limit price: required for LIMIT and STOP_LIMIT.' })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  price?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true, description: 'Required for STOP and STOP_LIMIT.' })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  stopPrice?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  stopLoss?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  takeProfit?: Dec | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, 64, { message: 'brokerOrderId must be 1 to 64 characters.' })
  brokerOrderId?: string | null;

  @Field(() => Date, { nullable: true })
  expiresAt?: Date | null;

  @Field(() => ID, { nullable: true, description: 'Groups the legs of one multi-leg trade.' })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('tradeId'))
  tradeId?: string | null;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('parentOrderId'))
  parentOrderId?: string | null;

  @Field(() => Date, { nullable: true, description: 'When the order was submitted (event time); default now.' })
  submittedAt?: Date | null;
}

@InputType({ description: 'What changes in the replacing order; everything else is copied from the replaced one.' })
export class ReplaceOrderInput {
  @Field({ description: 'The new order’s idempotency key (at most 48 characters).' })
  @Length(1, 48, { message: 'clientOrderId must be 1 to 48 characters.' })
  clientOrderId!: string;

  @Field(() => DecimalScalar, { nullable: true })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  quantity?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  price?: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @IsPositiveDecimal()
  @FitsNumericColumn()
  stopPrice?: Dec | null;

  @Field(() => TimeInForce, { nullable: true })
  timeInForce?: TimeInForce | null;
}

@ArgsType()
export class OrderEventArgs {
  @Field(() => ID)
  @IsUUID('all', UUID_MESSAGE('orderId'))
  orderId!: string;

  @Field(() => Date, { nullable: true, description: 'When it happened at the venue (event time); default now.' })
  occurredAt?: Date | null;
}

@ArgsType()
export class CancelOrderArgs extends OrderEventArgs {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(REASON_MAX, { message: `reason must be at most ${REASON_MAX} characters.` })
  reason?: string | null;
}

@ArgsType()
export class RejectOrderArgs extends OrderEventArgs {
  @Field()
  @Length(1, REASON_MAX, { message: `reason must be 1 to ${REASON_MAX} characters.` })
  reason!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(/^[A-Z0-9_]{1,64}$/, {
    message: 'errorCode must be 1 to 64 capitals, digits or underscores, e.g. INSUFFICIENT_FUNDS.',
  })
  errorCode?: string | null;
}

@ArgsType()
export class AcceptOrderArgs extends OrderEventArgs {
  @Field(() => String, { nullable: true, description: "The venue's order id, when it gives one." })
  @IsOptional()
  @Length(1, 64, { message: 'brokerOrderId must be 1 to 64 characters.' })
  brokerOrderId?: string | null;
}

@ArgsType()
export class ReplaceOrderArgs extends OrderEventArgs {
  @Field(() => ReplaceOrderInput)
  @ValidateNested()
  input!: ReplaceOrderInput;
}
