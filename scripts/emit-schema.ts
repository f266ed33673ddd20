/** `npm run schema`: writes schema.graphql from the resolvers (sorted). `--check` fails when it is stale. */
import { commandLine } from './cli';

// The command line before the modules below load (type-graphql, the resolvers): --help answers at once.
const args = commandLine(
  {
    name: 'schema',
    synopsis: '[--check]',
    about:
      'Writes schema.graphql (in the working directory) from the resolvers, sorted; never edit it by hand.\n' +
      '`npm run schema:check` is `npm run schema -- --check`.',
    options: {
      check: {
        type: 'boolean',
        help: 'write nothing; exit 1 when schema.graphql differs from what the code emits',
      },
    },
  },
  ({ values }) => ({ check: values.check ?? false }),
);

import 'reflect-metadata';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildTradetrailSchema, printSortedSchema } from '../src/schema';

export const SCHEMA_FILE = path.resolve(process.cwd(), 'schema.graphql');

async function main(): Promise<void> {
  const sdl = printSortedSchema(await buildTradetrailSchema());
  if (args.check) {
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
