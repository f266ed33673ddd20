import { nodeHash } from '../src/execution-log/merkle';
import { nodeKey, readNodes } from '../src/execution-log/tree.store';
import { makeTrader } from './factories';
import { createTestDatabase, SERVICE, startTestApp, type TestApp } from './harness';

/**
 * readNodes: the leaves under the low nodes come as one value per run of consecutive leaves, and a run
 * with a leaf missing (the schema and the triggers forbid it; a superuser can do it) is read leaf by
 * leaf, so that every node that can still be computed is.
 */
describe('readNodes', () => {
  let app: TestApp;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    app = await startTestApp(db.url, { principal: SERVICE });
    const traderId = (await makeTrader(app.dataSource.manager)).id;
    for (let i = 0; i < 20; i++) {
      const res = await app.run(`mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`, {
        input: {
          traderId,
          clientOrderId: `tree-${i}`,
          symbol: 'AAPL',
          side: 'BUY',
          orderType: 'MARKET',
          quantity: '1',
        },
      });
      expect(res.errors).toBeUndefined();
    }
    await app.integrator.integrateAll();
  }, 60_000);
  afterAll(async () => {
    await app.close();
    await drop();
  });

  const leaves = async (): Promise<Map<number, Buffer>> =>
    new Map(
      (
        (await app.dataSource.query(`SELECT leaf_index::int AS i, leaf_hash AS h FROM log_leaves`)) as {
          i: number;
          h: Buffer;
        }[]
      ).map((r) => [r.i, r.h]),
    );
  const pair = (a: Buffer, b: Buffer) => nodeHash(a, b);

  it('computes the low nodes from runs of leaves, and still every computable node when a leaf is missing', async () => {
    const l = await leaves();
    expect(l.size).toBeGreaterThanOrEqual(20);
    const wanted = [
      { level: 0, index: 0 },
      { level: 1, index: 1 },
      { level: 3, index: 0 },
      { level: 0, index: 9 },
      { level: 2, index: 3 },
    ];
    const level2 = (i: number) =>
      pair(pair(l.get(4 * i)!, l.get(4 * i + 1)!), pair(l.get(4 * i + 2)!, l.get(4 * i + 3)!));
    const expected = new Map([
      [nodeKey({ level: 0, index: 0 }), l.get(0)!],
      [nodeKey({ level: 1, index: 1 }), pair(l.get(2)!, l.get(3)!)],
      [nodeKey({ level: 3, index: 0 }), pair(level2(0), level2(1))],
      [nodeKey({ level: 0, index: 9 }), l.get(9)!],
      [nodeKey({ level: 2, index: 3 }), level2(3)],
    ]);
    expect(await readNodes(app.dataSource, wanted)).toEqual(expected);

    // Leaf 5 gone (as a superuser without triggers): the nodes over it cannot be computed, the others can.
    await app.dataSource.transaction(async (m) => {
      await m.query(`SET LOCAL session_replication_role = replica`);
      await m.query(`DELETE FROM log_leaves WHERE leaf_index = 5`);
    });
    const after = await readNodes(app.dataSource, wanted);
    expect(new Set(after.keys())).toEqual(
      new Set([
        nodeKey({ level: 0, index: 0 }),
        nodeKey({ level: 0, index: 9 }),
        nodeKey({ level: 1, index: 1 }),
        nodeKey({ level: 2, index: 3 }),
      ]),
    );
    for (const n of wanted.filter((w) => w.level !== 3))
      expect(after.get(nodeKey(n))).toEqual(expected.get(nodeKey(n)));
  });
});
