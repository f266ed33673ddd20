/**
 * Runs a command against Tradetrail's database: DATABASE_URL when it is set, otherwise the embedded
 * server of the data directory (started for the command and stopped after it, or reused when
 * `npm start` is already running it). Used by the `migration:*` npm scripts:
 *   node dist/scripts/with-db.js typeorm -d dist/ormconfig.js migration:show
 */
import { spawn } from 'node:child_process';
import { config } from '../src/config';
import { resolveDatabase } from '../src/db';
import { commandLine, usageError } from './cli';

const COMMAND = {
  name: 'with-db',
  run: 'node dist/scripts/with-db.js',
  synopsis: 'COMMAND [ARGS…]',
  about:
    "Runs COMMAND with DATABASE_URL set to Tradetrail's database: DATABASE_URL when it is set, else the\n" +
    'embedded server of TRADETRAIL_DATA_DIR (reused while `npm start` runs it, on whatever port it\n' +
    'listens; otherwise started for the command and stopped after it). The npm scripts migration:run,\n' +
    'migration:revert, migration:show, migration:generate and migration:check run the TypeORM CLI with it\n' +
    "(`npm run migration:show -- --help` shows the TypeORM command's own help).",
  positionals: 'COMMAND   the program to run, then its arguments (passed as they are)',
  options: {},
} as const;

async function main(): Promise<void> {
  // Only the first argument is with-db's own (--help); the rest belongs to the command.
  const [command, ...args] = process.argv.slice(2);
  commandLine(
    COMMAND,
    () => {
      if (command === undefined) usageError('missing the COMMAND to run');
    },
    command?.startsWith('-') ? [command] : [],
  );
  // A command asked for its help needs no database (the TypeORM CLI prints it before connecting).
  const help = args.includes('--help') || args.includes('-h');
  const db = help ? undefined : await resolveDatabase(config());
  const code = await new Promise<number>((resolve) => {
    const env = db ? { ...process.env, DATABASE_URL: db.url } : process.env;
    const child = spawn(command, args, { stdio: 'inherit', env });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    child.on('error', (e) => {
      console.error(`with-db: cannot run ${command}: ${e.message}`);
      resolve(1);
    });
  });
  await db?.stop();
  process.exit(code);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
