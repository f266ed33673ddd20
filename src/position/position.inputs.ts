import { IsOptional, IsUUID, Length, MaxLength, ValidateNested } from 'class-validator';
import { ArgsType, Field, ID, InputType, registerEnumType } from 'type-graphql';
import { UUID_MESSAGE } from '../ids';
import { PageArgs, SortDirection } from '../pagination';
import { PositionStatus } from './position.entity';

export enum PositionSortField {
  OPENED_AT = 'OPENED_AT',
  UPDATED_AT = 'UPDATED_AT',
  CREATED_AT = 'CREATED_AT',
  SYMBOL = 'SYMBOL',
}
registerEnumType(PositionSortField, { name: 'PositionSortField' });

@InputType({ description: 'Every given condition must hold. Ranges include `from` and exclude `to`.' })
export class PositionFilter {
  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(64, { message: 'filter.symbol must be at most 64 characters.' })
  symbol?: string;

  @Field(() => PositionStatus, { nullable: true })
  status?: PositionStatus;

  @Field(() => Date, { nullable: true })
  openedFrom?: Date;

  @Field(() => Date, { nullable: true })
  openedTo?: Date;

  @Field(() => Date, { nullable: true })
  closedFrom?: Date;

  @Field(() => Date, { nullable: true })
  closedTo?: Date;
}

@InputType()
export class PositionOrderBy {
  @Field(() => PositionSortField, { defaultValue: PositionSortField.OPENED_AT })
  field: PositionSortField = PositionSortField.OPENED_AT;

  @Field(() => SortDirection, { defaultValue: SortDirection.DESC })
  direction: SortDirection = SortDirection.DESC;
}

@ArgsType()
export class PositionsArgs extends PageArgs {
  @Field(() => PositionFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: PositionFilter;

  @Field(() => PositionOrderBy, { nullable: true, description: 'Default: most recently opened first.' })
  orderBy?: PositionOrderBy;
}

@ArgsType()
export class UnlinkOrderArgs {
  @Field(() => ID)
  @IsUUID('all', UUID_MESSAGE('orderId'))
  orderId!: string;

  @Field(() => String, { nullable: true, description: 'Why, for the audit trail.' })
  @IsOptional()
  @MaxLength(500, { message: 'reason must be at most 500 characters.' })
  reason?: string | null;
}

@ArgsType()
export class LinkOrderArgs extends UnlinkOrderArgs {
  @Field(() => ID)
  @IsUUID('all', UUID_MESSAGE('positionId'))
  positionId!: string;
}

@ArgsType()
export class BookArgs {
  @Field(() => ID)
  @IsUUID('all', UUID_MESSAGE('traderId'))
  traderId!: string;

  @Field()
  @Length(1, 64, { message: 'symbol must be 1 to 64 characters.' })
  symbol!: string;
}
