import { IsOptional, IsUUID, MaxLength } from 'class-validator';
import { Field, ID, InputType } from 'type-graphql';
import { ExecutionLogAction } from '../execution-log/execution-log.entity';
import { UUID_MESSAGE } from '../ids';
import { OrderStatus } from '../order/order.entity';
import { PositionStatus } from '../position/position.entity';

@InputType({
  description:
    'Which order changes to receive; every given condition must hold, against the order as it is after the change.',
})
export class OrderUpdatedFilter {
  @Field(() => ID, {
    nullable: true,
    description: "Only this trader's orders (a trader receives only their own anyway).",
  })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(64, { message: 'filter.symbol must be at most 64 characters.' })
  symbol?: string | null;

  @Field(() => ID, { nullable: true, description: 'Only this order.' })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.orderId'))
  orderId?: string | null;

  @Field(() => ID, { nullable: true, description: 'Only orders linked to this position.' })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.positionId'))
  positionId?: string | null;

  @Field(() => [OrderStatus], { nullable: true, description: 'Only orders now in any of these statuses.' })
  status?: OrderStatus[] | null;
}

@InputType({
  description:
    'Which position changes to receive; every given condition must hold, against the position as it is after the change.',
})
export class PositionUpdatedFilter {
  @Field(() => ID, {
    nullable: true,
    description: "Only this trader's positions (a trader receives only their own anyway).",
  })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @MaxLength(64, { message: 'filter.symbol must be at most 64 characters.' })
  symbol?: string | null;

  @Field(() => ID, { nullable: true, description: 'Only this position.' })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.positionId'))
  positionId?: string | null;

  @Field(() => PositionStatus, { nullable: true, description: 'Only positions now OPEN (or CLOSED).' })
  status?: PositionStatus | null;
}

@InputType({ description: 'Which new log entries to receive; every given condition must hold.' })
export class ExecutionLoggedFilter {
  @Field(() => ID, {
    nullable: true,
    description: "Only this trader's entries (a trader receives only their own anyway).",
  })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string | null;

  @Field(() => ID, { nullable: true, description: "Only this order's entries." })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.orderId'))
  orderId?: string | null;

  @Field(() => [ExecutionLogAction], { nullable: true, description: 'Only entries with any of these actions.' })
  action?: ExecutionLogAction[] | null;
}

@InputType({ description: 'Which exceptions to receive; every given condition must hold.' })
export class ExceptionRecordedFilter {
  @Field(() => ID, {
    nullable: true,
    description: "Only this trader's exceptions (a trader receives only their own anyway).",
  })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.traderId'))
  traderId?: string | null;

  @Field(() => ID, { nullable: true, description: "Only this order's exceptions." })
  @IsOptional()
  @IsUUID('all', UUID_MESSAGE('filter.orderId'))
  orderId?: string | null;
}
