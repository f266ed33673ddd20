import net from 'node:net';
import { makeTrader } from './factories';
import { createTestDatabase, startTestApp, type TestApp } from './harness';

/** A TCP proxy in front of the real PostgreSQL that can be cut and restored: a database outage. */
class Outage {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(
    private readonly host: string,
    private readonly targetPort: number,
  ) {}

  async up(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async down(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server?.close(resolve));
  }
}

let app: TestApp;
let outage: Outage;
let drop: () => Promise<void>;
beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  const url = new URL(db.url);
  outage = new Outage(url.hostname, Number(url.port || 5432));
  await outage.up();
  url.hostname = '127.0.0.1';
  url.port = String(outage.port);
  app = await startTestApp(url.toString(), { poolMax: 2 });
});
afterAll(async () => {
  await app?.close().catch(() => undefined);
  await outage?.down();
  await drop?.();
});

it('answers DATABASE_UNAVAILABLE while the database is down, and recovers when it is back', async () => {
  const trader = await makeTrader(app.dataSource.manager, { name: 'Resilient Rita' });
  const query = `query($id: ID!) { trader(id: $id) { name } traders { totalCount } }`;
  expect((await app.run(query, { id: trader.id })).data).toEqual({
    trader: { name: 'Resilient Rita' },
    traders: { totalCount: 1 },
  });

  await outage.down();
  for (let i = 0; i < 3; i++) {
    const res = await app.run(query, { id: trader.id });
    expect(res.data ?? null).toBeNull();
    expect(res.errors?.[0].extensions?.code).toBe('DATABASE_UNAVAILABLE');
    expect(res.errors?.[0].message).toMatch(/database is not reachable/);
    expect(JSON.stringify(res.errors)).not.toMatch(/ECONNREFUSED|at .*\.ts:\d+|SELECT/);
  }

  await outage.up();
  const back = await app.run(query, { id: trader.id });
  expect(back.errors).toBeUndefined();
  expect(back.data).toEqual({ trader: { name: 'Resilient Rita' }, traders: { totalCount: 1 } });
});
