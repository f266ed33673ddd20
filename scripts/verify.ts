import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { type LogVerifier, parseVerifier } from '../src/execution-log/log-key';
import { type TrailReport, TrailVerifier } from '../src/execution-log/trail';
import { CheckpointError, lastCheckpointNote } from '../src/execution-log/checkpoint';
import { helpText, parseCommandLine, UsageError } from './cli';

/**
 * Verifies a trail file offline (README "Proving the trail"): no database, no server, no
 * configuration. Imports only the pure parts of the execution log (trail, checkpoint, merkle, keys).
 *
 *     npm run verify -- --public-key KEY [--checkpoint FILE] [--origin NAME] [--json] TRAIL.ndjson
 *
 * Exit codes: 0 valid, 1 not valid, 2 usage error (bad arguments, unreadable file or key).
 */
const COMMAND = {
  name: 'verify',
  synopsis: '--public-key KEY [--checkpoint FILE] [--origin NAME] [--json] TRAIL.ndjson',
  about:
    'Verifies a Tradetrail trail (NDJSON export of execution-log entries with inclusion proofs) offline:\n' +
    'no database, no server, no configuration.',
  positionals: 'TRAIL.ndjson   the trail file ("-" reads standard input)',
  options: {
    'public-key': {
      type: 'string',
      value: 'KEY',
      help:
        "the log's public key: a signed-note verifier key (name+keyid+base64),\n" +
        'PEM public key text, or a file holding either (the logSigningKey query)',
    },
    checkpoint: {
      type: 'string',
      value: 'FILE',
      help:
        "your own copy of a checkpoint: a signed note, or the server's checkpoint\n" +
        'file (JSON lines; the last line is used). The trail must then prove that\n' +
        'the log only grew since (same root, or a consistency proof from its size)',
    },
    origin: { type: 'string', value: 'NAME', help: "the log's name when KEY is a PEM key", default: 'tradetrail' },
    json: { type: 'boolean', help: 'print the report as JSON instead of a summary' },
  },
  notes: 'Exit status: 0 the trail is valid, 1 it is not, 2 wrong arguments or unreadable input.',
} as const;

interface Options {
  verifier: LogVerifier;
  trusted: { note: string } | undefined;
  trail: string;
  json: boolean;
}

/** The note of a checkpoint file: a signed note as such, or the last line of a JSON-lines file. */
function readTrustedCheckpoint(file: string): { note: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`cannot read the checkpoint file ${file}`);
  }
  let note: string | undefined;
  try {
    note = lastCheckpointNote(text);
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    throw new UsageError(`${file}: ${error.message}`);
  }
  if (note === undefined) throw new UsageError(`the checkpoint file ${file} is empty`);
  return { note };
}

const STRING_OPTIONS = new Set(
  Object.entries(COMMAND.options)
    .filter(([, o]) => o.type === 'string')
    .map(([name]) => `--${name}`),
);

function parseArgv(argv: string[]) {
  // `--public-key VALUE` takes VALUE as is, even when it starts with a dash (PEM text does).
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (STRING_OPTIONS.has(argv[i]) && i + 1 < argv.length) args.push(`${argv[i]}=${argv[++i]}`);
    else args.push(argv[i]);
  }
  try {
    return parseCommandLine(COMMAND, args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    throw new UsageError(`${error.message} (see --help)`);
  }
}

function parse(argv: string[]): Options | 'help' {
  const parsed = parseArgv(argv);
  if (parsed === 'help') return 'help';
  const { values, positionals } = parsed;
  if (!values['public-key']) throw new UsageError('missing --public-key KEY: the log key to verify with (see --help)');
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length ? 'give exactly one trail file (see --help)' : 'missing the trail file to verify (see --help)',
    );
  }
  const trail = positionals[0];
  if (trail !== '-' && (!existsSync(trail) || !statSync(trail).isFile())) {
    throw new UsageError(`no such trail file: ${trail}`);
  }
  let verifier: LogVerifier;
  try {
    verifier = parseVerifier(values['public-key'], values.origin ?? 'tradetrail');
  } catch (error) {
    throw new UsageError(`--public-key: ${(error as Error).message}`);
  }
  return {
    verifier,
    trusted: values.checkpoint === undefined ? undefined : readTrustedCheckpoint(values.checkpoint),
    trail,
    json: values.json ?? false,
  };
}

async function verifyFile(options: Options): Promise<TrailReport> {
  const verifier = new TrailVerifier(options.verifier, options.trusted);
  const input = options.trail === '-' ? process.stdin : createReadStream(options.trail, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) verifier.push(line);
  return verifier.finish();
}

function summary(report: TrailReport, file: string): string {
  const out: string[] = [];
  out.push(
    report.checkpoint
      ? `Checkpoint: ${report.checkpoint.treeSize} entries, root ${report.checkpoint.rootHash} (signature verified)`
      : 'Checkpoint: none verified',
  );
  out.push(
    `Entries: ${report.entries} (${report.proven} proven by the checkpoint, ${report.pending} pending: newer than it, linked by their chain only)`,
  );
  for (const p of report.problems) out.push(`  ${p.line > 0 ? `line ${p.line}` : 'trail'}: ${p.message}`);
  out.push(
    report.valid
      ? `VALID: ${file}`
      : `NOT VALID: ${file} (${report.problems.length} problem${report.problems.length === 1 ? '' : 's'})`,
  );
  return out.join('\n');
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const CONSOLE: Output = { out: (t) => console.log(t), err: (t) => console.error(t) };

/** The command: its exit code (0 valid, 1 not valid, 2 usage or input error). */
export async function main(argv: string[], io: Output = CONSOLE): Promise<number> {
  let options: Options | 'help';
  try {
    options = parse(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    io.err(`verify: ${error.message}`);
    return 2;
  }
  if (options === 'help') {
    io.out(helpText(COMMAND));
    return 0;
  }
  let report: TrailReport;
  try {
    report = await verifyFile(options);
  } catch (error) {
    io.err(`verify: cannot read ${options.trail}: ${(error as Error).message}`);
    return 2;
  }
  io.out(options.json ? JSON.stringify(report, null, 2) : summary(report, options.trail));
  return report.valid ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`verify: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 2;
    },
  );
}
