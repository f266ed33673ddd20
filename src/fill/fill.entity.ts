import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Generated,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  type Relation,
} from 'typeorm';
import { NEW_ID_SQL } from '../ids';
import { bigintTransformer, type Dec, decimalTransformer } from '../decimal';
import { Order } from '../order/order.entity';
import { Position } from '../position/position.entity';
import { DecimalScalar } from '../scalars';

export enum FillException {
  OVERFILL = 'OVERFILL',
  ORDER_REPLACED = 'ORDER_REPLACED',
  ORDER_REJECTED = 'ORDER_REJECTED',
}
registerEnumType(FillException, {
  name: 'FillException',
  description: 'Why a fill was applied as an exception (DOMAIN §4): recorded and applied, never dropped.',
  valuesConfig: {
    OVERFILL: { description: "All or part of it lies beyond the order's quantity (in event-time order)." },
    ORDER_REPLACED: { description: 'The order had been replaced when the fill arrived (a cancel/replace race).' },
    ORDER_REJECTED: { description: 'The order had been rejected when the fill arrived.' },
  },
});

export enum Liquidity {
  MAKER = 'MAKER',
  TAKER = 'TAKER',
}
registerEnumType(Liquidity, { name: 'Liquidity' });

/** One execution reported by a venue. Immutable once recorded. */
@ObjectType({
  simpleResolvers: true,
  description: 'One execution of an order reported by a venue. Immutable once recorded.',
})
@Entity({ name: 'fills' })
// Unique per venue, a null venue being one venue: an expression index, created by the migration.
@Index('uq_fills_venue_exec_id', { synchronize: false })
@Index('idx_fills_book', ['traderId', 'symbol', 'executedAt', 'arrival'])
@Index('idx_fills_order', ['orderId'])
@Index('idx_fills_timestamp', ['executedAt'])
@Index('idx_fills_position', ['positionId'])
@Check('chk_fills_quantity_positive', `"quantity" > 0`)
@Check('chk_fills_price_positive', `"price" > 0`)
@Check('chk_fills_commission_nonnegative', `"commission" >= 0`)
@Check('chk_fills_overfilled_quantity', `"overfilled_quantity" >= 0`)
export class Fill {
  @Field(() => ID)
  @PrimaryColumn('uuid', { primaryKeyConstraintName: 'pk_fills', default: NEW_ID_SQL })
  readonly id!: string;

  @Field(() => ID)
  @Column({ name: 'order_id', type: 'uuid' })
  readonly orderId!: string;

  @ManyToOne(() => Order, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'order_id', foreignKeyConstraintName: 'fk_fills_order' })
  readonly order?: Relation<Order>;

  /** Its order's trader, copied so that a book is one index range (its order's foreign key covers it). */
  @Field(() => ID, { description: "The trader whose book the fill belongs to (its order's trader)." })
  @Column({ name: 'trader_id', type: 'uuid' })
  readonly traderId!: string;

  @Field({ description: "The order's symbol." })
  @Column({ type: 'varchar', length: 64 })
  readonly symbol!: string;

  /** Arrival order, global: the tie-breaker of fills executed at the same instant. */
  @Column({ type: 'bigint', transformer: bigintTransformer })
  @Generated('increment')
  readonly arrival!: number;

  /** The exception known when the fill arrived (a REPLACED or REJECTED order); OVERFILL is derived. */
  @Column({
    name: 'arrival_exception',
    type: 'enum',
    enum: FillException,
    enumName: 'fill_exception',
    nullable: true,
  })
  readonly arrivalException!: FillException | null;

  @Field(() => DecimalScalar, {
    description: "The part of this fill beyond its order's quantity, in event-time order (0 for most fills).",
  })
  @Column({
    name: 'overfilled_quantity',
    type: 'numeric',
    precision: 30,
    scale: 9,
    default: 0,
    transformer: decimalTransformer,
  })
  overfilledQuantity!: Dec;

  @Field(() => ID, { nullable: true, description: 'The position this fill was applied to.' })
  @Column({ name: 'position_id', type: 'uuid', nullable: true })
  positionId!: string | null;

  @ManyToOne(() => Position, { onDelete: 'SET NULL', nullable: true })
  @JoinColumn({ name: 'position_id', foreignKeyConstraintName: 'fk_fills_position' })
  readonly position?: Relation<Position> | null;

  @Field({ description: "The venue's execution id: unique per venue (no venue is one venue), the idempotency key." })
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
