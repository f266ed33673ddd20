import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
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
  VersionColumn,
} from 'typeorm';
import { NEW_ID_SQL } from '../ids';
import { type Dec, decimalTransformer } from '../decimal';
import { DecimalScalar } from '../scalars';
import { Trader } from '../trader/trader.entity';

export enum PositionStatus {
  OPEN = 'OPEN',
  CLOSED = 'CLOSED',
}
registerEnumType(PositionStatus, { name: 'PositionStatus' });

@ObjectType({
  simpleResolvers: true,
  description:
    "A trader's net holding in one symbol, built by the fills of its orders. At most one OPEN position per trader and symbol.",
})
@Entity({ name: 'positions' })
@Index('idx_positions_opened', ['openedAt', 'id'])
@Index('uq_positions_open_trader_symbol', ['traderId', 'symbol'], { unique: true, where: `"status" = 'OPEN'` })
@Index('idx_positions_trader_opened', ['traderId', 'openedAt'])
@Index('idx_positions_symbol', ['symbol'])
@Index('idx_positions_status', ['status'])
@Index('idx_positions_book_opened', ['traderId', 'symbol', 'openedAt'])
@Index('idx_positions_flipped_from', ['flippedFromId'])
@Check('chk_positions_contract_multiplier', `"contract_multiplier" > 0`)
@Check('chk_positions_closed_is_flat', `"status" <> 'CLOSED' OR "quantity" = 0`)
@Check('chk_positions_closed_at', `("status" = 'CLOSED') = ("closed_at" IS NOT NULL)`)
@Check('chk_positions_total_commission', `"total_commission" >= 0`)
@Check('chk_positions_average_entry_price', `"average_entry_price" >= 0`)
@Check('chk_positions_cost_basis', `"cost_basis" >= 0`)
export class Position {
  @Field(() => ID)
  @PrimaryColumn('uuid', { primaryKeyConstraintName: 'pk_positions', default: NEW_ID_SQL })
  id!: string;

  @Field(() => ID)
  @Column({ name: 'trader_id', type: 'uuid' })
  traderId!: string;

  @ManyToOne(() => Trader, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'trader_id', foreignKeyConstraintName: 'fk_positions_trader' })
  trader?: Relation<Trader>;

  @Field()
  @Column({ type: 'varchar', length: 64 })
  symbol!: string;

  @Field(() => DecimalScalar, { description: 'Signed: positive long, negative short, 0 flat.' })
  @Column({ type: 'numeric', precision: 30, scale: 9, default: 0, transformer: decimalTransformer })
  quantity!: Dec;

  @Field(() => DecimalScalar)
  @Column({ name: 'average_entry_price', type: 'numeric', default: 0, transformer: decimalTransformer })
  averageEntryPrice!: Dec;

  @Field(() => DecimalScalar, { description: 'Exact cost of the open quantity; averageEntryPrice is derived from it.' })
  @Column({ name: 'cost_basis', type: 'numeric', default: 0, transformer: decimalTransformer })
  costBasis!: Dec;

  @Field(() => DecimalScalar, { description: 'Gross realized profit and loss (commission not deducted).' })
  @Column({ name: 'realized_pnl', type: 'numeric', default: 0, transformer: decimalTransformer })
  realizedPnl!: Dec;

  @Field(() => DecimalScalar)
  @Column({ name: 'total_commission', type: 'numeric', default: 0, transformer: decimalTransformer })
  totalCommission!: Dec;

  @Field(() => DecimalScalar, {
    description: 'Contract multiplier cost and PnL were computed with (1; 100 for US equity options by OCC symbol).',
  })
  @Column({ name: 'contract_multiplier', type: 'numeric', default: 1, transformer: decimalTransformer })
  contractMultiplier!: Dec;

  @Field(() => ID, {
    nullable: true,
    description: 'The position this one was opened from by a flip (its closing fill opened this one).',
  })
  @Column({ name: 'flipped_from_id', type: 'uuid', nullable: true })
  flippedFromId!: string | null;

  @ManyToOne(() => Position, { onDelete: 'SET NULL', nullable: true, deferrable: 'INITIALLY DEFERRED' })
  @JoinColumn({ name: 'flipped_from_id', foreignKeyConstraintName: 'fk_positions_flipped_from' })
  flippedFrom?: Relation<Position> | null;

  /** Version of the netting rules the row was computed with (2: event time, DOMAIN §4). */
  @Column({ name: 'rules_version', type: 'smallint', default: 2 })
  rulesVersion!: number;

  @Field(() => PositionStatus)
  @Column({ type: 'enum', enum: PositionStatus, enumName: 'position_status', default: PositionStatus.OPEN })
  status!: PositionStatus;

  @Field()
  @Column({ name: 'opened_at', type: 'timestamptz', default: () => 'now()' })
  openedAt!: Date;

  @Field(() => Date, { nullable: true })
  @Column({ name: 'closed_at', type: 'timestamptz', nullable: true })
  closedAt!: Date | null;

  @Field()
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Field()
  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;

  @Field(() => Int, { description: 'Incremented on every change (optimistic concurrency).' })
  @VersionColumn({ default: 1 })
  version!: number;
}
