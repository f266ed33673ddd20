import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { Check, Column, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from 'typeorm';
import { NEW_ID_SQL } from '../ids';
import { Order, OrderStatus } from '../order/order.entity';
import type { JsonObject } from '../scalars';
import { Trader } from '../trader/trader.entity';

export enum ExecutionLogAction {
  SUBMITTED = 'SUBMITTED',
  APPROVED = 'APPROVED',
  ACCEPTED = 'ACCEPTED',
  EXECUTED = 'EXECUTED',
  FILLED = 'FILLED',
  REJECTED = 'REJECTED',
  CANCELLED = 'CANCELLED',
  EXPIRED = 'EXPIRED',
  REPLACED = 'REPLACED',
  RECOVERED = 'RECOVERED',
  POSITION_LINKED = 'POSITION_LINKED',
  POSITION_UNLINKED = 'POSITION_UNLINKED',
  DUPLICATE_IGNORED = 'DUPLICATE_IGNORED',
  CORRECTED = 'CORRECTED',
  BUSTED = 'BUSTED',
  EXCEPTION = 'EXCEPTION',
}
registerEnumType(ExecutionLogAction, { name: 'ExecutionLogAction' });

/**
 * One entry of an order's append-only audit trail. The database refuses UPDATE, DELETE and
 * TRUNCATE, numbers the entries per order and chains them by hash (see the migration).
 */
@ObjectType({ simpleResolvers: true, description: "One entry of an order's append-only, hash-chained audit trail." })
@Entity({ name: 'execution_logs' })
@Index('uq_execution_logs_order_seq', ['orderId', 'seq'], { unique: true })
@Index('idx_execution_logs_trader_recorded', ['traderId', 'recordedAt'])
@Index('idx_execution_logs_action', ['action'])
@Index('idx_execution_logs_recorded', ['recordedAt'])
@Index('idx_execution_logs_tx', ['tx'])
@Check('chk_execution_logs_seq_positive', `"seq" >= 1`)
export class ExecutionLog {
  @Field(() => ID)
  @PrimaryColumn('uuid', { primaryKeyConstraintName: 'pk_execution_logs', default: NEW_ID_SQL })
  readonly id!: string;

  @Field(() => ID)
  @Column({ name: 'order_id', type: 'uuid' })
  readonly orderId!: string;

  @ManyToOne(() => Order, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'fk_execution_logs_order' })
  readonly order?: Relation<Order>;

  @Field(() => ID)
  @Column({ name: 'trader_id', type: 'uuid' })
  readonly traderId!: string;

  @ManyToOne(() => Trader, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'trader_id', foreignKeyConstraintName: 'fk_execution_logs_trader' })
  readonly trader?: Relation<Trader>;

  @Field(() => Int, { description: 'Position of the entry in its order’s trail: 1, 2, 3, …' })
  @Column({ type: 'integer' })
  readonly seq!: number;

  @Field(() => ExecutionLogAction)
  @Column({ type: 'enum', enum: ExecutionLogAction, enumName: 'execution_log_action' })
  readonly action!: ExecutionLogAction;

  @Field(() => OrderStatus, { nullable: true })
  @Column({ name: 'from_status', type: 'enum', enum: OrderStatus, enumName: 'order_status', nullable: true })
  readonly fromStatus!: OrderStatus | null;

  @Field(() => OrderStatus, { nullable: true })
  @Column({ name: 'to_status', type: 'enum', enum: OrderStatus, enumName: 'order_status', nullable: true })
  readonly toStatus!: OrderStatus | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 500, nullable: true })
  readonly reason!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ name: 'error_code', type: 'varchar', length: 64, nullable: true })
  readonly errorCode!: string | null;

  @Field(() => Int, { nullable: true })
  @Column({ name: 'retry_attempt', type: 'integer', nullable: true })
  readonly retryAttempt!: number | null;

  @Field({ description: 'Who made the change: a user id, a service name or "system".' })
  @Column({ type: 'varchar', length: 128 })
  readonly actor!: string;

  @Field({ description: 'Where the change came from, e.g. API, ALPACA, RECONCILIATION.' })
  @Column({ type: 'varchar', length: 32 })
  readonly source!: string;

  @Field(() => GraphQLJSONObject, { nullable: true })
  @Column({ type: 'jsonb', nullable: true })
  readonly details!: JsonObject | null;

  @Field({ description: 'When the event happened (event time).' })
  @Column({ name: 'occurred_at', type: 'timestamptz' })
  readonly occurredAt!: Date;

  @Field({ description: 'When Tradetrail recorded the entry (server time).' })
  @Column({ name: 'recorded_at', type: 'timestamptz', default: () => 'clock_timestamp()' })
  readonly recordedAt!: Date;

  @Field(() => String, {
    nullable: true,
    description: 'Hash of the previous entry of the same order (null for seq 1).',
  })
  @Column({ name: 'prev_hash', type: 'char', length: 64, nullable: true })
  readonly prevHash!: string | null;

  @Field({ description: 'sha256 over prev_hash and the canonical content of this entry, hex.' })
  @Column({ type: 'char', length: 64 })
  readonly hash!: string;

  /** The transaction that wrote the entry (set by the chain trigger); the integrator's horizon. */
  @Column({ type: 'bigint', select: false, insert: false, update: false })
  readonly tx?: string;

  @Field(() => String, {
    nullable: true,
    description:
      'HMAC-SHA-256 (hex) the server computed over what it asked the database to store, with a key the database never holds: proves Tradetrail wrote the entry. Null only on entries written before the verifiable log.',
  })
  @Column({ type: 'char', length: 64, nullable: true })
  readonly seal!: string | null;
}
