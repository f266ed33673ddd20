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
} from 'typeorm';
import { NEW_ID_SQL } from '../ids';
import { bigintTransformer, type Dec, decimalTransformer } from '../decimal';
import { DecimalScalar } from '../scalars';
import { Trader } from '../trader/trader.entity';
import { Fill } from './fill.entity';

export enum FillCorrectionKind {
  CORRECTION = 'CORRECTION',
  BUST = 'BUST',
}
registerEnumType(FillCorrectionKind, {
  name: 'FillCorrectionKind',
  valuesConfig: {
    CORRECTION: { description: 'A trade correction (FIX ExecType G): new quantity, price or commission.' },
    BUST: { description: 'A trade bust (FIX ExecType H): the execution did not happen.' },
  },
});

/**
 * A correction or bust of a recorded execution: an immutable record pointing at the fill, which
 * itself never changes. The latest one gives the fill's effective values. Append-only in the database.
 */
@ObjectType({
  simpleResolvers: true,
  description: 'A correction or bust of a recorded execution. Immutable; the original fill never changes.',
})
@Entity({ name: 'fill_corrections' })
@Index('uq_fill_corrections_correction_id', ['correctionId'], { unique: true })
@Index('idx_fill_corrections_fill', ['fillId', 'seq'])
@Index('idx_fill_corrections_book', ['traderId', 'symbol'])
@Check(
  'chk_fill_corrections_values',
  `("kind" = 'BUST' AND "quantity" IS NULL AND "price" IS NULL AND "commission" IS NULL) OR
          ("kind" = 'CORRECTION' AND "quantity" > 0 AND "price" > 0 AND "commission" >= 0)`,
)
export class FillCorrection {
  @Field(() => ID)
  @PrimaryColumn('uuid', { primaryKeyConstraintName: 'pk_fill_corrections', default: NEW_ID_SQL })
  readonly id!: string;

  @Field(() => ID)
  @Column({ name: 'fill_id', type: 'uuid' })
  readonly fillId!: string;

  @ManyToOne(() => Fill, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'fill_id', foreignKeyConstraintName: 'fk_fill_corrections_fill' })
  readonly fill?: Relation<Fill>;

  @Column({ name: 'trader_id', type: 'uuid' })
  readonly traderId!: string;

  @ManyToOne(() => Trader, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'trader_id', foreignKeyConstraintName: 'fk_fill_corrections_trader' })
  readonly trader?: Relation<Trader>;

  @Column({ type: 'varchar', length: 64 })
  readonly symbol!: string;

  @Field({ description: "The caller's id of this correction: its idempotency key." })
  @Column({ name: 'correction_id', type: 'varchar', length: 128 })
  readonly correctionId!: string;

  @Field(() => FillCorrectionKind)
  @Column({ type: 'enum', enum: FillCorrectionKind, enumName: 'fill_correction_kind' })
  readonly kind!: FillCorrectionKind;

  @Field(() => DecimalScalar, { nullable: true, description: 'The corrected quantity (null for a bust).' })
  @Column({ type: 'numeric', precision: 30, scale: 9, nullable: true, transformer: decimalTransformer })
  readonly quantity!: Dec | null;

  @Field(() => DecimalScalar, { nullable: true, description: 'The corrected price (null for a bust).' })
  @Column({ type: 'numeric', precision: 30, scale: 9, nullable: true, transformer: decimalTransformer })
  readonly price!: Dec | null;

  @Field(() => DecimalScalar, { nullable: true, description: 'The corrected commission (null for a bust).' })
  @Column({ type: 'numeric', precision: 30, scale: 9, nullable: true, transformer: decimalTransformer })
  readonly commission!: Dec | null;

  @Field(() => DecimalScalar, { description: 'The effective quantity before this record.' })
  @Column({ name: 'previous_quantity', type: 'numeric', precision: 30, scale: 9, transformer: decimalTransformer })
  readonly previousQuantity!: Dec;

  @Field(() => DecimalScalar, { description: 'The effective price before this record.' })
  @Column({ name: 'previous_price', type: 'numeric', precision: 30, scale: 9, transformer: decimalTransformer })
  readonly previousPrice!: Dec;

  @Field(() => DecimalScalar, { description: 'The effective commission before this record.' })
  @Column({ name: 'previous_commission', type: 'numeric', precision: 30, scale: 9, transformer: decimalTransformer })
  readonly previousCommission!: Dec;

  @Field()
  @Column({ type: 'varchar', length: 500 })
  readonly reason!: string;

  @Field({ description: 'Who recorded it (the token subject).' })
  @Column({ type: 'varchar', length: 128 })
  readonly actor!: string;

  @Column({ type: 'varchar', length: 32 })
  readonly source!: string;

  /** Order of the records (global): the latest one of a fill gives its effective values. */
  @Column({ type: 'bigint', generatedIdentity: 'ALWAYS', generated: 'identity', transformer: bigintTransformer })
  readonly seq!: number;

  @Field()
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  readonly createdAt!: Date;
}
