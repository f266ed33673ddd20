import { RequestDb } from '../src/request-db';
import { ADMIN, createTestDatabase, startTestApp, type TestApp } from './harness';

/**
 * RequestDb.read: reads asked for together go in one exchange, named statements are prepared in it,
 * and an exchange that fails part-way leaves the connection usable (its named statements, parsed or
 * not, are closed and parsed again).
 */
describe('RequestDb.read', () => {
  let app: TestApp;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    // One connection: every request below shares it. Each read commits on its own (its round trips are its own).
    app = await startTestApp(db.url, { poolMax: 1, readCommitDelayMs: 0 });
  });
  afterAll(async () => {
    await app.close();
    await drop();
  });

  const reads = async (statements: [string | undefined, string][]) => {
    const db = new RequestDb(app.dataSource, ADMIN, 10_000, 'read');
    try {
      const results = await Promise.allSettled(statements.map(([name, text]) => db.read(name, text, [])));
      return results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message));
    } finally {
      await db.finish(true);
    }
  };

  it('sends the reads of one tick in one round trip, each with its rows', async () => {
    app.statements.reset();
    expect(
      await reads([
        ['tt_test_one', 'SELECT 1 AS a'],
        [undefined, 'SELECT 2 AS b'],
        ['tt_test_three', 'SELECT 3 AS c'],
      ]),
    ).toEqual([[{ a: 1 }], [{ b: 2 }], [{ c: 3 }]]);
    const trips = app.statements.byTrip();
    expect(trips.map((t) => t.length)).toEqual([5, 1]); // start, settings, the three; COMMIT
  });

  it('after an exchange fails part-way, its named statements work again on the same connection', async () => {
    const failed = await reads([
      ['tt_test_before', 'SELECT 4 AS d'],
      [undefined, 'SELECT 1 / 0 AS boom'],
      ['tt_test_after', 'SELECT 5 AS e'],
    ]);
    // Every read of the exchange gets the failure (the transaction is aborted).
    expect(failed).toEqual(['division by zero', 'division by zero', 'division by zero']);
    // tt_test_before was parsed before the failure, tt_test_after was not: both are used again, ahead of
    // another statement and as the last one, and so is the settings statement of every start.
    // (tt_test_before first as an exchange's last statement: parsed again without a Close, it would be
    // "already exists".)
    for (let i = 0; i < 2; i++) {
      expect(
        await reads([
          ['tt_test_after', 'SELECT 5 AS e'],
          ['tt_test_before', 'SELECT 4 AS d'],
        ]),
      ).toEqual([[{ e: 5 }], [{ d: 4 }]]);
      expect(
        await reads([
          ['tt_test_before', 'SELECT 4 AS d'],
          ['tt_test_after', 'SELECT 5 AS e'],
        ]),
      ).toEqual([[{ d: 4 }], [{ e: 5 }]]);
    }
    // Through GraphQL on the same connection too.
    expect((await app.run('{ positions { totalCount } }')).data).toEqual({ positions: { totalCount: 0 } });
  });
});
