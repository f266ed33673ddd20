import { Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { LogProblemKind } from './log-verification.service';

registerEnumType(LogProblemKind, {
  name: 'LogProblemKind',
  description: 'What verification found wrong with the execution log (README "Proving the trail").',
});

@ObjectType({
  simpleResolvers: true,
  description:
    'A signed checkpoint of the global Merkle tree over every log entry: size, root and time, signed with Ed25519 by a key the database never holds. `note` is the whole C2SP signed note; keep copies of it outside Tradetrail.',
})
export class LogCheckpoint {
  @Field(() => Int, { description: 'Number of entries (leaves) the tree had.' })
  treeSize!: number;

  @Field({ description: 'RFC 9162 root hash of the first treeSize leaves, hex.' })
  rootHash!: string;

  @Field({ description: 'When it was signed.' })
  timestamp!: Date;

  @Field({ description: 'The signed note (text, a blank line, the signature line): what verifiers check.' })
  note!: string;

  @Field({ description: 'The signature over the note text, base64 (Ed25519).' })
  signature!: string;

  @Field(() => Int, { nullable: true, description: 'Size of the checkpoint this one follows (its `prev` line).' })
  previousTreeSize!: number | null;

  @Field({ description: "Whether the signature verifies with this server's public key." })
  verified!: boolean;
}

@ObjectType({
  simpleResolvers: true,
  description: 'RFC 9162 §2.1.3 inclusion proof of one entry in a signed checkpoint.',
})
export class InclusionProof {
  @Field(() => Int)
  leafIndex!: number;

  @Field(() => Int)
  treeSize!: number;

  @Field({ description: 'SHA-256(0x00 ‖ canonical entry bytes), hex.' })
  leafHash!: string;

  @Field(() => [String], { description: "PATH(leafIndex, D[treeSize]): from the leaf's sibling upwards, hex." })
  hashes!: string[];

  @Field(() => LogCheckpoint)
  checkpoint!: LogCheckpoint;
}

@ObjectType({
  simpleResolvers: true,
  description: 'RFC 9162 §2.1.4 proof that an older checkpoint is a prefix of a newer one.',
})
export class ConsistencyProof {
  @Field(() => LogCheckpoint)
  from!: LogCheckpoint;

  @Field(() => LogCheckpoint)
  to!: LogCheckpoint;

  @Field(() => [String], { description: 'PROOF(from.treeSize, D[to.treeSize]), hex.' })
  hashes!: string[];
}

@ObjectType({ simpleResolvers: true, description: 'One thing verification found wrong.' })
export class LogProblem {
  @Field(() => LogProblemKind)
  kind!: LogProblemKind;

  @Field()
  message!: string;

  @Field(() => Int, { nullable: true, description: 'The leaf (global position in the tree) concerned.' })
  leafIndex!: number | null;

  @Field(() => String, { nullable: true })
  entryId!: string | null;

  @Field(() => String, { nullable: true })
  orderId!: string | null;

  @Field(() => Int, { nullable: true, description: "The entry's place in its order's trail." })
  seq!: number | null;
}

@ObjectType({ simpleResolvers: true, description: "The result of verifying one order's trail." })
export class ChainVerification {
  @Field(() => String)
  orderId!: string;

  @Field()
  valid!: boolean;

  @Field(() => Int)
  entries!: number;

  @Field(() => Int, { description: 'Entries proven by an inclusion proof against the latest signed checkpoint.' })
  provenEntries!: number;

  @Field(() => Int, {
    description: 'Entries newer than the latest checkpoint: until the next one they rely on their chain and seal.',
  })
  pendingEntries!: number;

  @Field(() => Int, { nullable: true })
  checkpointSize!: number | null;

  @Field(() => Int, { nullable: true, description: 'seq of the first entry that is missing, moved or changed.' })
  firstBrokenSeq!: number | null;

  @Field(() => String, { nullable: true, description: 'The first problem, in words.' })
  problem!: string | null;

  @Field(() => [LogProblem])
  problems!: LogProblem[];
}

@ObjectType({
  simpleResolvers: true,
  description: 'The result of verifying the whole log against the signed checkpoints.',
})
export class LedgerVerification {
  @Field()
  valid!: boolean;

  @Field(() => Int, { description: 'Leaves in the tree.' })
  treeSize!: number;

  @Field(() => Int, { nullable: true, description: 'Size of the latest stored checkpoint.' })
  checkpointSize!: number | null;

  @Field(() => Int)
  checkpointsVerified!: number;

  @Field(() => Int, { description: 'Entries recomputed and compared with the tree.' })
  entriesVerified!: number;

  @Field(() => Int, { description: 'Entries not in the tree yet (integrated within about a second).' })
  pendingEntries!: number;

  @Field(() => LogProblem, { nullable: true, description: 'The first problem in tree order.' })
  firstProblem!: LogProblem | null;

  @Field(() => [LogProblem], { description: 'Up to 100 problems, in tree order.' })
  problems!: LogProblem[];

  @Field(() => Int, { description: 'Problems beyond those listed.' })
  moreProblems!: number;
}

@ObjectType({ simpleResolvers: true, description: "The log's public key: verifies every checkpoint." })
export class LogSigningKey {
  @Field({ description: 'The key name in signatures (the log origin).' })
  keyName!: string;

  @Field({ description: 'Signed-note verifier key: name+keyid+base64(0x01 ‖ Ed25519 public key).' })
  verifierKey!: string;

  @Field({ description: 'The Ed25519 public key, SPKI PEM.' })
  publicKeyPem!: string;
}
