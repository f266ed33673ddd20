/** `npm run schema`: writes schema.graphql from the resolvers (sorted). `--check` fails when it is stale. */
import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTradetrailSchema, printSortedSchema } from '../src/schema';

export const SCHEMA_FILE = path.resolve(process.cwd(), 'schema.graphql');

async function main(): Promise<void> {
  const sdl = printSortedSchema(await buildTradetrailSchema());
  if (process.argv.includes('--check')) {
    const committed = readFileSync(SCHEMA_FILE, 'utf8');
    if (committed !== sdl) {
      console.error('schema.graphql is stale: run `npm run schema` and commit it.');
      process.exit(1);
    }
    console.log('schema.graphql is current.');
    return;
  }
  writeFileSync(SCHEMA_FILE, sdl);
  console.log(`Wrote ${SCHEMA_FILE}`);
}

void main();
