import { IsOptional, IsUUID, MaxLength, ValidateNested } from 'class-validator';
import { ArgsType, Field, ID, InputType, registerEnumType } from 'type-graphql';
import { UUID_MESSAGE } from '../ids';
import { PageArgs, SortDirection } from '../pagination';
import { OrderSide, OrderStatus } from './order.entity';

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
