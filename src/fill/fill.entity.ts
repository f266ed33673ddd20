import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryGeneratedColumn,
  type Relation,
} from 'typeorm';
import { type Dec, decimalTransformer } from '../decimal';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { DecimalScalar } from '../scalars';

export enum Liquidity {
  MAKER = 'MAKER',
  TAKER = 'TAKER',
}
registerEnumType(Liquidity, { name: 'Liquidity' });

/** One execution reported by a venue. Immutable once recorded. */
@ObjectType({ description: 'One execution of an order reported by a venue. Immutable once recorded.' })
@Entity({ name: 'fills' })
@Index('uq_fills_order_exec_id', ['orderId', 'execId'], { unique: true })
@Index('idx_fills_order', ['orderId'])
@Index('idx_fills_timestamp', ['executedAt'])
@Index('idx_fills_position', ['positionId'])
@Check('chk_fills_quantity_positive', `"quantity" > 0`)
@Check('chk_fills_price_positive', `"price" > 0`)
@Check('chk_fills_commission_nonnegative', `"commission" >= 0`)
export class Fill {
  @Field(() => ID)
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'pk_fills' })
  readonly id!: string;

  @Field(() => ID)
  @Column({ name: 'order_id', type: 'uuid' })
  readonly orderId!: string;

  @ManyToOne(() => Order, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'fk_fills_order' })
  readonly order?: Relation<Order>;

  @Field(() => ID, { nullable: true, description: 'The position this fill was applied to.' })
  @Column({ name: 'position_id', type: 'uuid', nullable: true })
  positionId!: string | null;

  @ManyToOne(() => Position, { onDelete: 'SET NULL', nullable: true })
  @JoinColumn({ name: 'position_id', foreignKeyConstraintName: 'fk_fills_position' })
  readonly position?: Relation<Position> | null;

  @Field({ description: "The venue's execution id: the idempotency key of a fill within its order." })
  @Column({ name: 'exec_id', type: 'varchar', length: 128 })
  readonly execId!: string;

  @Field(() => DecimalScalar)
  @Column({ type: 'numeric', precision: 30, scale: 9, transformer: decimalTransformer })
  readonly quantity!: Dec;

  @Field(() => DecimalScalar)
  @Column({ type: 'numeric', precision: 30, scale: 9, transformer: decimalTransformer })
  readonly price!: Dec;

  @Field(() => DecimalScalar)
  @Column({ type: 'numeric', precision: 30, scale: 9, default: 0, transformer: decimalTransformer })
  readonly commission!: Dec;

  @Field(() => Liquidity, { nullable: true })
  @Column({ type: 'enum', enum: Liquidity, enumName: 'liquidity', nullable: true })
  readonly liquidity!: Liquidity | null;

  @Field(() => String, { nullable: true })
  @Column({ type: 'varchar', length: 32, nullable: true })
  readonly venue!: string | null;

  @Field({ description: 'When the venue executed it (event time).' })
  @Column({ name: 'executed_at', type: 'timestamptz' })
  readonly executedAt!: Date;

  @Field({ description: 'When Tradetrail recorded it.' })
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  readonly createdAt!: Date;
}
