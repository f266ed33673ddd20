import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import {
  Check,
  Column,
  CreateDateColumn,
  Entity,
  Index,
  JoinColumn,
  ManyToOne,
  PrimaryColumn,
  type Relation,
  UpdateDateColumn,
} from 'typeorm';
import { NEW_ID_SQL } from '../ids';
import { type Dec, decimalTransformer } from '../decimal';
import { Position } from '../position/position.entity';
import { DecimalScalar, type JsonObject } from '../scalars';
import { Trader } from '../trader/trader.entity';

export enum OrderSide {
  BUY = 'BUY',
  SELL = 'SELL',
}
export enum OrderType {
  MARKET = 'MARKET',
  LIMIT = 'LIMIT',
  STOP = 'STOP',
  STOP_LIMIT = 'STOP_LIMIT',
}
export enum TimeInForce {
  DAY = 'DAY',
  GTC = 'GTC',
  IOC = 'IOC',
  FOK = 'FOK',
  OPG = 'OPG',
  CLS = 'CLS',
}
export enum OrderStatus {
  PENDING = 'PENDING',
  ACCEPTED = 'ACCEPTED',
  PARTIAL = 'PARTIAL',
  FILLED = 'FILLED',
  CANCELLED = 'CANCELLED',
  REJECTED = 'REJECTED',
  EXPIRED = 'EXPIRED',
  REPLACED = 'REPLACED',
}
export enum OrderSource {
  API = 'API',
  ALPACA = 'ALPACA',
  RECONCILIATION = 'RECONCILIATION',
}
export enum StrategyType {
  SINGLE_LEG = 'SINGLE_LEG',
  VERTICAL_SPREAD = 'VERTICAL_SPREAD',
  STRADDLE = 'STRADDLE',
  STRANGLE = 'STRANGLE',
  IRON_CONDOR = 'IRON_CONDOR',
  CUSTOM = 'CUSTOM',
}
registerEnumType(OrderSide, { name: 'OrderSide' });
registerEnumType(OrderType, { name: 'OrderType' });
registerEnumType(TimeInForce, { name: 'TimeInForce' });
registerEnumType(OrderStatus, { name: 'OrderStatus' });
registerEnumType(OrderSource, { name: 'OrderSource' });
registerEnumType(StrategyType, { name: 'StrategyType' });

@ObjectType({ simpleResolvers: true, description: 'An instruction to buy or sell; its fills build positions.' })
@Entity({ name: 'orders' })
@Index('uq_orders_trader_client_order_id', ['traderId', 'clientOrderId'], { unique: true })
@Index('uq_orders_broker_order_id', ['brokerOrderId'], { unique: true })
@Index('idx_orders_position_id', ['positionId'])
@Index('idx_orders_position_created', ['positionId', 'createdAt'])
@Index('idx_orders_trader_created', ['traderId', 'createdAt'])
@Index('idx_orders_created', ['createdAt', 'id'])
@Index('idx_orders_status', ['status'])
@Index('idx_orders_trader_status', ['traderId', 'status'])
@Index('idx_orders_trade_id', ['tradeId'])
@Index('idx_orders_symbol_created', ['symbol', 'createdAt'])
@Index('idx_orders_replaces_order_id', ['replacesOrderId'])
@Index('idx_orders_parent_order_id', ['parentOrderId'])
@Check('chk_orders_quantity_positive', `"quantity" > 0`)
@Check('chk_orders_price_positive', `"price" IS NULL OR "price" > 0`)
@Check('chk_orders_stop_price_positive', `"stop_price" IS NULL OR "stop_price" > 0`)
@Check('chk_orders_filled_quantity_nonnegative', `"filled_quantity" >= 0`)
@Check('chk_orders_filled_quantity_max', `"filled_quantity" <= "quantity"`)
@Check('chk_orders_limit_requires_price', `"order_type" NOT IN ('LIMIT', 'STOP_LIMIT') OR "price" IS NOT NULL`)
@Check('chk_orders_stop_requires_stop_price', `"order_type" NOT IN ('STOP', 'STOP_LIMIT') OR "stop_price" IS NOT NULL`)
@Check(
  'chk_orders_filled_status',
  `("status" <> 'FILLED' OR "filled_quantity" = "quantity") AND
          ("filled_quantity" < "quantity" OR "status" IN ('FILLED', 'REPLACED', 'REJECTED'))`,
)
@Check(
  'chk_orders_overfilled_quantity',
  `"overfilled_quantity" >= 0 AND ("overfilled_quantity" = 0 OR "filled_quantity" = "quantity")`,
)
@Check('chk_orders_base_status', `"base_status" NOT IN ('PARTIAL', 'FILLED')`)
export class Order {
  @Field(() => ID)
  @PrimaryColumn('uuid', { primaryKeyConstraintName: 'pk_orders', default: NEW_ID_SQL })
  id!: string;

  @Field(() => ID)
  @Column({ name: 'trader_id', type: 'uuid' })
  traderId!: string;

  @ManyToOne(() => Trader, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'trader_id', foreignKeyConstraintName: 'fk_orders_trader' })
  trader?: Relation<Trader>;

  @Field(() => ID, { nullable: true, description: 'The position this order built; null while unlinked.' })
  @Column({ name: 'position_id', type: 'uuid', nullable: true })
  positionId!: string | null;

  @ManyToOne(() => Position, { onDelete: 'SET NULL', nullable: true })
  @JoinColumn({ name: 'position_id', foreignKeyConstraintName: 'fk_orders_position' })
  position?: Relation<Position> | null;

  @Field({ description: "The sender's idempotency key, unique per trader (at most 48 characters)." })
  @Column({ name: 'client_order_id', type: 'varchar', length: 48 })
  clientOrderId!: string;

  @Field(() => String, { nullable: true, description: "The broker's order id (e.g. Alpaca's), unique when present." })
  @Column({ name: 'broker_order_id', type: 'varchar', length: 64, nullable: true })
  brokerOrderId!: string | null;

  @Field()
  @Column({ type: 'varchar', length: 64 })
  symbol!: string;

  @Field(() => OrderSide)
  @Column({ type: 'enum', enum: OrderSide, enumName: 'order_side' })
  side!: OrderSide;

  @Field(() => OrderType)
  @Column({ name: 'order_type', type: 'enum', enum: OrderType, enumName: 'order_type' })
  orderType!: OrderType;

  @Field(() => TimeInForce)
  @Column({
    name: 'time_in_force',
    type: 'enum',
    enum: TimeInForce,
    enumName: 'time_in_force',
    default: TimeInForce.DAY,
  })
  timeInForce!: TimeInForce;

  @Field(() => DecimalScalar)
  @Column({ type: 'numeric', precision: 30, scale: 9, transformer: decimalTransformer })
  quantity!: Dec;

  @Field(() => DecimalScalar, { nullable: true, description: 'Limit price.' })
  @Column({ type: 'numeric', precision: 30, scale: 9, nullable: true, transformer: decimalTransformer })
  price!: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @Column({
    name: 'stop_price',
    type: 'numeric',
    precision: 30,
    scale: 9,
    nullable: true,
    transformer: decimalTransformer,
  })
  stopPrice!: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @Column({
    name: 'stop_loss',
    type: 'numeric',
    precision: 30,
    scale: 9,
    nullable: true,
    transformer: decimalTransformer,
  })
  stopLoss!: Dec | null;

  @Field(() => DecimalScalar, { nullable: true })
  @Column({
    name: 'take_profit',
    type: 'numeric',
    precision: 30,
    scale: 9,
    nullable: true,
    transformer: decimalTransformer,
  })
  takeProfit!: Dec | null;

  @Field(() => OrderStatus)
  @Column({ type: 'enum', enum: OrderStatus, enumName: 'order_status', default: OrderStatus.PENDING })
  status!: OrderStatus;

  /** The status the order's events gave it (never PARTIAL or FILLED): `status` is derived from it and the fills. */
  @Column({
    name: 'base_status',
    type: 'enum',
    enum: OrderStatus,
    enumName: 'order_status',
    default: OrderStatus.PENDING,
  })
  baseStatus!: OrderStatus;

  @Field(() => String, { nullable: true, description: "The broker's raw status, kept as received." })
  @Column({ name: 'broker_status', type: 'varchar', length: 32, nullable: true })
  brokerStatus!: string | null;

  @Field(() => DecimalScalar)
  @Column({
    name: 'filled_quantity',
    type: 'numeric',
    precision: 30,
    scale: 9,
    default: 0,
    transformer: decimalTransformer,
  })
  filledQuantity!: Dec;

  @Field(() => DecimalScalar, {
    description:
      "Executions the venue reported beyond the order's quantity (exceptions, DOMAIN §4): Σ fills − quantity when positive, else 0.",
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

  /** Σ quantity × price of the order's effective fills, exact: the average fill price is derived from it. */
  @Column({ name: 'fill_notional', type: 'numeric', default: 0, transformer: decimalTransformer })
  fillNotional!: Dec;

  @Field(() => DecimalScalar, { nullable: true })
  @Column({ name: 'average_fill_price', type: 'numeric', nullable: true, transformer: decimalTransformer })
  averageFillPrice!: Dec | null;

  @Field(() => ID, { nullable: true, description: 'Groups the legs of one multi-leg trade.' })
  @Column({ name: 'trade_id', type: 'uuid', nullable: true })
  tradeId!: string | null;

  @Field(() => StrategyType, { nullable: true })
  @Column({ name: 'strategy_type', type: 'enum', enum: StrategyType, enumName: 'strategy_type', nullable: true })
  strategyType!: StrategyType | null;

  @Field(() => GraphQLJSONObject, { nullable: true, description: "The broker's payload as received." })
  @Column({ name: 'raw_data', type: 'jsonb', nullable: true })
  rawData!: JsonObject | null;

  @Field(() => OrderSource)
  @Column({ type: 'enum', enum: OrderSource, enumName: 'order_source', default: OrderSource.API })
  source!: OrderSource;

  @Field(() => ID, { nullable: true, description: 'The order this one replaced.' })
  @Column({ name: 'replaces_order_id', type: 'uuid', nullable: true })
  replacesOrderId!: string | null;

  @ManyToOne(() => Order, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'replaces_order_id', foreignKeyConstraintName: 'fk_orders_replaces_order' })
  replacesOrder?: Relation<Order> | null;

  @Field(() => ID, { nullable: true, description: 'The multi-leg parent of a leg.' })
  @Column({ name: 'parent_order_id', type: 'uuid', nullable: true })
  parentOrderId!: string | null;

  @ManyToOne(() => Order, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'parent_order_id', foreignKeyConstraintName: 'fk_orders_parent_order' })
  parentOrder?: Relation<Order> | null;

  @Field()
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'submitted_at', type: 'timestamptz', nullable: true })
  submittedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'filled_at', type: 'timestamptz', nullable: true })
  filledAt!: Date | null;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'canceled_at', type: 'timestamptz', nullable: true })
  canceledAt!: Date | null;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'expired_at', type: 'timestamptz', nullable: true })
  expiredAt!: Date | null;

  @Field(() => Date, { nullable: true, description: 'When a GTD-style order stops working.' })
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;
}
