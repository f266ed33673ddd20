import { IsOptional, MaxLength, ValidateNested } from 'class-validator';
import { ArgsType, Field, InputType, registerEnumType } from 'type-graphql';
import { PageArgs, SortDirection } from '../pagination';

export enum TraderSortField {
  NAME = 'NAME',
  CREATED_AT = 'CREATED_AT',
}
registerEnumType(TraderSortField, { name: 'TraderSortField' });

@InputType()
export class TraderFilter {
  @Field(() => String, { nullable: true, description: 'Case-insensitive part of the name.' })
  @IsOptional()
  @MaxLength(200, { message: 'nameContains must be at most 200 characters.' })
  nameContains?: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(100, { message: 'externalRef must be at most 100 characters.' })
  externalRef?: string;
}

@InputType()
export class TraderOrderBy {
  @Field(() => TraderSortField, { defaultValue: TraderSortField.NAME })
  field: TraderSortField = TraderSortField.NAME;

  @Field(() => SortDirection, { defaultValue: SortDirection.ASC })
  direction: SortDirection = SortDirection.ASC;
}

@ArgsType()
export class TradersArgs extends PageArgs {
  @Field(() => TraderFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: TraderFilter;

  @Field(() => TraderOrderBy, { nullable: true, description: 'Default: name ascending.' })
  orderBy?: TraderOrderBy;
}
