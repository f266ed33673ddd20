/**
 * `npm run log:keygen -- --out FILE`: creates the Ed25519 key that signs the log's checkpoints and
 * seals its entries (PKCS#8 PEM, file mode 600; an existing file is never overwritten), and prints
 * its public verifier key. Without --out the PEM goes to stdout.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { generateLogKeyPem, logKeyFromPem } from '../src/execution-log/log-key';

const USAGE = `usage: npm run log:keygen -- [--out FILE] [--origin NAME]
  --out FILE      write the private key there (mode 600; refused if the file exists); default: stdout
  --origin NAME   the log's name, as TRADETRAIL_LOG_ORIGIN (default: tradetrail)
Then start the server with TRADETRAIL_LOG_SIGNING_KEY=FILE.`;

function main(): void {
  let values: { out?: string; origin?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      options: {
        out: { type: 'string' },
        origin: { type: 'string', default: 'tradetrail' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help) {
    console.log(USAGE);
    return;
  }
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
