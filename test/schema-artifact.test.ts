import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildTradetrailSchema, printSortedSchema } from '../src/schema';

describe('schema.graphql', () => {
  it('is what the resolvers emit (run `npm run schema` after changing the API)', async () => {
    const committed = readFileSync(path.join(__dirname, '..', 'schema.graphql'), 'utf8');
    expect(printSortedSchema(await buildTradetrailSchema())).toBe(committed);
  });
});
