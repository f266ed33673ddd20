/**
 * Runs a command against Tradetrail's database: DATABASE_URL when it is set, otherwise the embedded
 * server of the data directory (started for the command and stopped after it, or reused when
 * `npm start` is already running it). Used by the `migration:*` npm scripts:
 *   node dist/scripts/with-db.js typeorm-ts-node-commonjs -d ormconfig.ts migration:show
 */
import { spawn } from 'node:child_process';
import { config } from '../src/config';
import { resolveDatabase } from '../src/db';

async function main(): Promise<void> {
  const [command, ...args] = process.argv.slice(2);
  if (!command) {
    console.error('usage: with-db <command> [args…]');
    process.exit(2);
  }
  const db = await resolveDatabase(config());
  const code = await new Promise<number>((resolve) => {
    const child = spawn(command, args, { stdio: 'inherit', env: { ...process.env, DATABASE_URL: db.url } });
    child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0)));
    child.on('error', (e) => {
      console.error(e.message);
      resolve(1);
    });
  });
  await db.stop();
  process.exit(code);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
