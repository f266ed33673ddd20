import { Field, ID, ObjectType } from 'type-graphql';
import { Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';
import { NEW_ID_SQL } from '../ids';

@ObjectType({ simpleResolvers: true, description: 'A trading account holder: owns positions and orders.' })
@Entity({ name: 'traders' })
@Index('uq_traders_external_ref', ['externalRef'], { unique: true })
@Index('idx_traders_name', ['name'])
export class Trader {
  @Field(() => ID)
  @PrimaryColumn('uuid', { primaryKeyConstraintName: 'pk_traders', default: NEW_ID_SQL })
  id!: string;

  @Field()
  @Column({ type: 'varchar', length: 200 })
  name!: string;

  @Field(() => String, {
    nullable: true,
    description: 'Identifier of the trader in another system (e.g. a broker account).',
  })
  @Column({ name: 'external_ref', type: 'varchar', length: 100, nullable: true })
  externalRef!: string | null;

  @Field()
  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
