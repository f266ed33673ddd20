/**
 * `npm run log:keygen -- --out FILE`: creates the Ed25519 key that signs the log's checkpoints and
 * seals its entries (PKCS#8 PEM, file mode 600; an existing file is never overwritten), and prints
 * its public verifier key. Without --out the PEM goes to stdout.
 */
import { writeFileSync } from 'node:fs';
import { generateLogKeyPem, logKeyFromPem } from '../src/execution-log/log-key';
import { LOG_ORIGIN } from '../src/config';
import { commandLine, usageError } from './cli';

const COMMAND = {
  name: 'log:keygen',
  synopsis: '[--out FILE] [--origin NAME]',
  about:
    "Creates the Ed25519 key that signs the log's checkpoints and seals its entries (PKCS#8 PEM) and\n" +
    'prints its public verifier key.',
  options: {
    out: {
      type: 'string',
      value: 'FILE',
      help: 'write the private key there (mode 600; refused if the file exists)',
      default: 'the PEM to stdout',
    },
    origin: { type: 'string', value: 'NAME', help: "the log's name, as TRADETRAIL_LOG_ORIGIN", default: 'tradetrail' },
  },
  notes: 'Then start the server with TRADETRAIL_LOG_SIGNING_KEY=FILE.',
} as const;

function main(): void {
  const values = commandLine(COMMAND, ({ values }) => {
    if (values.origin !== undefined && !LOG_ORIGIN.test(values.origin)) {
      usageError(`--origin must be 1 to 128 printable ASCII characters without spaces or "+"; got "${values.origin}"`);
    }
    return values;
  });
  const pem = generateLogKeyPem();
  const key = logKeyFromPem(pem, values.origin ?? 'tradetrail');
  if (!values.out) {
    process.stdout.write(pem);
    console.error(`public verifier key: ${key.verifierKey}`);
    return;
  }
  try {
    writeFileSync(values.out, pem, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    console.error(
      `Could not write ${values.out}: ${(error as NodeJS.ErrnoException).code === 'EEXIST' ? 'the file exists (a key is never overwritten)' : (error as Error).message}`,
    );
    process.exit(1);
  }
  console.log(`wrote ${values.out}\npublic verifier key: ${key.verifierKey}`);
}

main();
