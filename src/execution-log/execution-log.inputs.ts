import { IsOptional, IsUUID, ValidateNested } from 'class-validator';
import { ArgsType, Field, ID, InputType, registerEnumType } from 'type-graphql';
import { UUID_MESSAGE } from '../ids';
import { PageArgs, SortDirection } from '../pagination';
import { ExecutionLogAction } from './execution-log.entity';

export enum ExecutionLogSortField {
  RECORDED_AT = 'RECORDED_AT',
  OCCURRED_AT = 'OCCURRED_AT',
}
registerEnumType(ExecutionLogSortField, { name: 'ExecutionLogSortField' });

@InputType({ description: 'Every given condition must hold. Ranges include `from` and exclude `to`.' })
export class ExecutionLogFilter {
  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.orderId'))
  orderId?: string;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string;

  @Field(() => [ExecutionLogAction], { nullable: true, description: 'Any of these actions.' })
  action?: ExecutionLogAction[];

  @Field(() => Date, { nullable: true })
  recordedFrom?: Date;

  @Field(() => Date, { nullable: true })
  recordedTo?: Date;

  @Field(() => Date, { nullable: true })
  occurredFrom?: Date;

  @Field(() => Date, { nullable: true })
  occurredTo?: Date;
}

@InputType()
export class ExecutionLogOrderBy {
  @Field(() => ExecutionLogSortField, { defaultValue: ExecutionLogSortField.RECORDED_AT })
  field: ExecutionLogSortField = ExecutionLogSortField.RECORDED_AT;

  @Field(() => SortDirection, { defaultValue: SortDirection.DESC })
  direction: SortDirection = SortDirection.DESC;
}

@ArgsType()
export class ExecutionLogsArgs extends PageArgs {
  @Field(() => ExecutionLogFilter, { nullable: true })
  @IsOptional()
  @ValidateNested()
  filter?: ExecutionLogFilter;

  @Field(() => ExecutionLogOrderBy, { nullable: true, description: 'Default: most recently recorded first.' })
  orderBy?: ExecutionLogOrderBy;
}
