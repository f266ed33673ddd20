import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { signCheckpoint, verifyCheckpoint } from '../src/execution-log/checkpoint';
import { MAX_TRAIL_PROBLEMS, verifyTrail, writeTrail } from '../src/execution-log/trail';
import { main } from '../scripts/verify';
import { makeTrader } from './factories';
import { COMPLIANCE, createTestDatabase, SERVICE, startTestApp, type TestApp } from './harness';
import { OTHER_LOG_KEY, TEST_LOG_KEY } from './log-key';

/** The trail: an offline-verifiable export of orders' log entries, and `npm run verify`. */
let app: TestApp;
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let dir: string;
beforeAll(async () => {
  db = await createTestDatabase();
  // Each read commits on its own: the statement counts below are a request's own (see test/read-commit.test.ts).
  app = await startTestApp(db.url, { readCommitDelayMs: 0 });
  dir = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-trail-'));
});
afterAll(async () => {
  await app?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function ok<T = any>(query: string, variables?: Record<string, unknown>, principal = SERVICE): Promise<T> {
  const res = await app.run(query, variables, principal);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

const SUBMIT = `mutation($input: SubmitOrderInput!) { submitOrder(input: $input) { id } }`;
const RECORD = `mutation($input: RecordExecutionInput!) { recordExecution(input: $input) { status } }`;
const CANCEL = `mutation($orderId: ID!, $reason: String) { cancelOrder(orderId: $orderId, reason: $reason) { status } }`;
const LATEST = `{ latestCheckpoint { treeSize note } }`;

let n = 0;
async function order(traderId: string, quantity = '10'): Promise<string> {
  n += 1;
  return (
    await ok(SUBMIT, {
      input: { traderId, clientOrderId: `T-${n}`, symbol: 'AAPL', side: 'BUY', orderType: 'MARKET', quantity },
    })
  ).submitOrder.id;
}
async function fill(orderId: string, quantity: string): Promise<void> {
  n += 1;
  await ok(RECORD, {
    input: {
      orderId,
      execId: `X-${n}`,
      quantity,
      price: '100',
      executedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n)).toISOString(),
    },
  });
}

async function trail(orderIds: string[], options?: { treeSize?: number; consistencyFrom?: number }) {
  return app.dataSource.transaction(async (m) => {
    await m.query("SET LOCAL tradetrail.role = 'compliance'");
    return writeTrail(m, orderIds, options);
  });
}

function file(name: string, lines: string[]): string {
  const p = path.join(dir, name);
  writeFileSync(p, lines.map((l) => `${l}\n`).join(''));
  return p;
}

const ROOT = path.resolve(__dirname, '..');
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-r', 'ts-node/register/transpile-only', 'scripts/verify.ts', ...args],
      { cwd: ROOT, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const records = (lines: string[]) => lines.map((l) => JSON.parse(l));

let orders: string[];
let oldCheckpoint: { treeSize: number; note: string };
let lines: string[];
let trailFile: string;
let entryCount: number;

beforeAll(async () => {
  const traderId = (await makeTrader(app.dataSource.manager)).id;
  const a = await order(traderId);
  await fill(a, '4');
  await fill(a, '6');
  const b = await order(traderId);
  await fill(b, '3');
  await ok(CANCEL, { orderId: b, reason: 'client asked' });
  await app.integrator.integrateAll();
  oldCheckpoint = (await ok(LATEST, {}, COMPLIANCE)).latestCheckpoint;
  // More data after the checkpoint the reader kept: a new order, and more entries on an old one.
  const c = await order(traderId);
  await fill(c, '10');
  await fill(a, '0.5').catch(() => undefined); // an overfill is logged as well; either way fine
  await app.integrator.integrateAll();
  // Entries after the newest checkpoint: pending in the trail.
  await fill(c, '1').catch(() => undefined);
  const d = await order(traderId);
  orders = [a, b, c, d];
  lines = await trail(orders, { consistencyFrom: oldCheckpoint.treeSize });
  trailFile = file('trail.ndjson', lines);
  entryCount = records(lines).filter((r) => r.type === 'entry').length;
});

describe('writeTrail', () => {
  it('writes a header, the checkpoint, a consistency proof and every entry of the orders in seq order', async () => {
    const rs = records(lines);
    expect(rs[0]).toMatchObject({ type: 'header', format: 'tradetrail-trail', version: 1 });
    expect(new Date(rs[0].createdAt).toISOString()).toBe(rs[0].createdAt);
    const latest = (await ok(LATEST, {}, COMPLIANCE)).latestCheckpoint;
    expect(rs[1]).toEqual({ type: 'checkpoint', note: latest.note });
    expect(rs[2]).toMatchObject({ type: 'consistency', fromSize: oldCheckpoint.treeSize, toSize: latest.treeSize });
    const entries = rs.slice(3);
    expect(entries.every((r) => r.type === 'entry')).toBe(true);
    const inDb = await app.dataSource.query(
      `SELECT id, order_id, seq FROM execution_logs WHERE order_id = ANY($1) ORDER BY order_id, seq`,
      [orders],
    );
    expect(entries.map((r) => r.entry.id)).toEqual(inDb.map((r: any) => r.id));
    expect(Object.keys(entries[0].entry)).toEqual([
      'id',
      'orderId',
      'traderId',
      'seq',
      'action',
      'fromStatus',
      'toStatus',
      'reason',
      'errorCode',
      'retryAttempt',
      'actor',
      'source',
      'details',
      'occurredAt',
      'recordedAt',
      'prevHash',
      'hash',
      'seal',
    ]);
    const pending = entries.filter((r) => r.leafIndex === null);
    expect(pending.length).toBeGreaterThanOrEqual(1);
    expect(pending.every((r) => r.inclusionProof === null)).toBe(true);
    expect(entries.filter((r) => r.leafIndex !== null).every((r) => r.leafIndex < latest.treeSize)).toBe(true);
  });

  it('uses a constant number of statements whatever the number of orders', async () => {
    const count = async (ids: string[]) => {
      app.statements.reset();
      await trail(ids, { consistencyFrom: oldCheckpoint.treeSize });
      return app.statements.count;
    };
    expect(await count(orders)).toBe(await count(orders.slice(0, 1)));
  });

  it('proves against an older checkpoint when asked, and refuses a size that was never signed', async () => {
    const old = await trail(orders, { treeSize: oldCheckpoint.treeSize });
    expect(JSON.parse(old[1]).note).toBe(oldCheckpoint.note);
    const report = verifyTrail(old, TEST_LOG_KEY);
    expect(report).toMatchObject({ valid: true, checkpoint: { treeSize: oldCheckpoint.treeSize } });
    expect(report.pending).toBeGreaterThan(records(lines).filter((r) => r.leafIndex === null).length);
    // The trail is older than the reader's newest checkpoint.
    const latest = (await ok(LATEST, {}, COMPLIANCE)).latestCheckpoint;
    const older = verifyTrail(old, TEST_LOG_KEY, { note: latest.note });
    expect(older.valid).toBe(false);
    expect(older.problems[0].message).toMatch(/older than your checkpoint/);
    await expect(trail(orders, { treeSize: 999_999 })).rejects.toThrow(/no signed checkpoint of size 999999/);
  });
});

describe('verifyTrail', () => {
  it('accepts the trail: every entry proven but the pending ones, whose chain holds', () => {
    const report = verifyTrail(lines, TEST_LOG_KEY);
    expect(report.problems).toEqual([]);
    expect(report.valid).toBe(true);
    expect(report.entries).toBe(entryCount);
    expect(report.pending).toBeGreaterThanOrEqual(1);
    expect(report.proven + report.pending).toBe(entryCount);
    const c = verifyCheckpoint(JSON.parse(lines[1]).note, TEST_LOG_KEY);
    expect(report.checkpoint).toEqual({ treeSize: c.treeSize, rootHash: c.rootHash.toString('hex') });
  });

  it("with the reader's older checkpoint: valid through the consistency proof; same size: the same root", async () => {
    expect(verifyTrail(lines, TEST_LOG_KEY, { note: oldCheckpoint.note })).toMatchObject({ valid: true });
    const latest = (await ok(LATEST, {}, COMPLIANCE)).latestCheckpoint;
    expect(verifyTrail(lines, TEST_LOG_KEY, { note: latest.note })).toMatchObject({ valid: true });
    // Without the consistency record the trail cannot show that the log only grew.
    const withoutProof = lines.filter((l) => JSON.parse(l).type !== 'consistency');
    const report = verifyTrail(withoutProof, TEST_LOG_KEY, { note: oldCheckpoint.note });
    expect(report.valid).toBe(false);
    expect(report.problems[0].message).toMatch(/no consistency proof from your checkpoint/);
  });

  it('refuses a forged older checkpoint of the same size with another root', () => {
    const old = verifyCheckpoint(oldCheckpoint.note, TEST_LOG_KEY);
    const forged = signCheckpoint(TEST_LOG_KEY, old.treeSize, Buffer.alloc(32, 7), old.timestamp, old.previous);
    const report = verifyTrail(lines, TEST_LOG_KEY, { note: forged.note });
    expect(report.valid).toBe(false);
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0].message).toMatch(/consistency proof .* does not verify/);
  });

  it('names the entry whose content was edited (its reason)', () => {
    const i = lines.findIndex((l) => {
      const r = JSON.parse(l);
      return r.type === 'entry' && r.leafIndex !== null;
    });
    const r = JSON.parse(lines[i]);
    r.entry.reason = 'edited after the fact';
    const edited = [...lines];
    edited[i] = JSON.stringify(r);
    const report = verifyTrail(edited, TEST_LOG_KEY);
    expect(report.valid).toBe(false);
    expect(report.problems).toEqual([
      {
        line: i + 1,
        entryId: r.entry.id,
        orderId: r.entry.orderId,
        seq: r.entry.seq,
        message: expect.stringMatching(/inclusion proof does not verify/),
      },
    ]);
    expect(report.proven).toBe(verifyTrail(lines, TEST_LOG_KEY).proven - 1);
  });

  it('names the broken link when an entry is removed from the middle of an order', () => {
    const rs = records(lines);
    // An entry whose successor belongs to the same order.
    const i = rs.findIndex(
      (r, j) => r.type === 'entry' && r.entry.seq > 1 && rs[j + 1]?.entry?.orderId === r.entry.orderId,
    );
    expect(i).toBeGreaterThan(0);
    const next = rs[i + 1].entry;
    const report = verifyTrail(
      lines.filter((_, j) => j !== i),
      TEST_LOG_KEY,
    );
    expect(report.valid).toBe(false);
    expect(report.problems).toEqual([
      {
        line: i + 1, // the next entry moved up to the removed one's line
        entryId: next.id,
        orderId: next.orderId,
        seq: next.seq,
        message: expect.stringMatching(`entry ${next.seq - 1} is missing`),
      },
    ]);
  });

  it('refuses a checkpoint re-signed with another key', () => {
    const c = verifyCheckpoint(JSON.parse(lines[1]).note, TEST_LOG_KEY);
    const resigned = signCheckpoint(OTHER_LOG_KEY, c.treeSize, c.rootHash, c.timestamp, c.previous);
    const forged = [...lines];
    forged[1] = JSON.stringify({ type: 'checkpoint', note: resigned.note });
    const report = verifyTrail(forged, TEST_LOG_KEY);
    expect(report.valid).toBe(false);
    expect(report.checkpoint).toBeNull();
    expect(report.proven).toBe(0);
    expect(report.problems).toEqual([
      expect.objectContaining({ line: 2, message: expect.stringMatching(/checkpoint is refused/) }),
    ]);
  });

  it('reports malformed lines with their number, ignores unknown record types and blank lines', () => {
    const extended = [
      ...lines.slice(0, 2),
      JSON.stringify({ type: 'order', order: { id: orders[0] } }),
      '',
      ...lines.slice(2),
      JSON.stringify({ type: 'fill', fill: {} }),
    ];
    expect(verifyTrail(extended, TEST_LOG_KEY)).toMatchObject({ valid: true, entries: entryCount });
    const broken = [...lines.slice(0, 3), '{"type":"entry", oops', ...lines.slice(3)];
    const report = verifyTrail(broken, TEST_LOG_KEY);
    expect(report.valid).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ line: 4, message: 'Line 4 is not JSON.' })]);
    expect(verifyTrail(lines.slice(1), TEST_LOG_KEY).problems[0].message).toMatch(/does not start with a header/);
    expect(verifyTrail([], TEST_LOG_KEY).valid).toBe(false);
    // A report stays bounded whatever the trail: the problems past the limit are counted.
    function* garbage() {
      yield* lines;
      for (let i = 0; i < MAX_TRAIL_PROBLEMS + 5; i++) yield 'not json';
    }
    const flood = verifyTrail(garbage(), TEST_LOG_KEY);
    expect(flood.problems).toHaveLength(MAX_TRAIL_PROBLEMS + 1);
    expect(flood.problems[MAX_TRAIL_PROBLEMS].message).toBe('… and 5 more problems not listed.');
  });

  it('flags an entry left without proof while later entries of its order are proven', () => {
    const rs = records(lines);
    const i = rs.findIndex(
      (r, j) => r.type === 'entry' && rs[j + 1]?.entry?.orderId === r.entry.orderId && rs[j + 1].leafIndex !== null,
    );
    const stripped = [...lines];
    stripped[i] = JSON.stringify({ ...rs[i], leafIndex: null, inclusionProof: null });
    const report = verifyTrail(stripped, TEST_LOG_KEY);
    expect(report.valid).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ line: i + 1, entryId: rs[i].entry.id })]);
  });
});

describe('npm run verify', () => {
  /** The command in this process (fast); `cli` spawns it as users run it. */
  async function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  }
  const key = () => TEST_LOG_KEY.verifierKey;
  let tampered: string;
  let editedId: string;
  beforeAll(() => {
    editedId = records(lines).find((r) => r.type === 'entry' && r.entry.seq === 2 && r.leafIndex !== null).entry.id;
    tampered = file(
      'tampered.ndjson',
      records(lines).map((r) =>
        JSON.stringify(
          r.type === 'entry' && r.entry.id === editedId ? { ...r, entry: { ...r.entry, reason: 'x' } } : r,
        ),
      ),
    );
  });

  it('as a process: exit 0 on a valid trail, 1 on a tampered one, 0 for --help, 2 for a missing file', async () => {
    const missingFile = path.join(dir, 'nope.ndjson');
    const [valid, tamperedRun, help, missing] = await Promise.all([
      cli('--public-key', key(), trailFile),
      cli('--public-key', key(), tampered),
      cli('--help'),
      cli('--public-key', key(), missingFile),
    ]);
    expect(valid).toMatchObject({ code: 0, stderr: '' });
    expect(valid.stdout).toMatch(/Entries: \d+ \(\d+ proven by the checkpoint, [1-9]\d* pending/);
    expect(valid.stdout).toMatch(/^VALID: /m);
    expect(tamperedRun).toMatchObject({ code: 1, stderr: '' });
    expect(tamperedRun.stdout).toMatch(new RegExp(`line \\d+: Entry ${editedId} .* does not verify`));
    expect(tamperedRun.stdout).toMatch(/^NOT VALID: /m);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: npm run verify -- --public-key KEY/);
    expect(missing).toMatchObject({ code: 2, stdout: '', stderr: `verify: no such trail file: ${missingFile}\n` });
  });

  it('prints the report as JSON with --json', async () => {
    const json = await run('--public-key', key(), '--json', trailFile);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual(verifyTrail(lines, TEST_LOG_KEY));
  });

  it('checks the trail against --checkpoint: a signed note or the server checkpoint file; refuses a forged one', async () => {
    const old = verifyCheckpoint(oldCheckpoint.note, TEST_LOG_KEY);
    const noteFile = file('old-checkpoint.note', [oldCheckpoint.note.replace(/\n$/, '')]);
    const checkpointsFile = file('checkpoints.jsonl', [
      JSON.stringify({ treeSize: 1, rootHash: '00', timestamp: old.timestamp, note: 'not the last line' }),
      JSON.stringify({ treeSize: old.treeSize, rootHash: old.rootHash.toString('hex'), note: oldCheckpoint.note }),
    ]);
    const forgedNote = signCheckpoint(TEST_LOG_KEY, old.treeSize, Buffer.alloc(32, 1), old.timestamp, null).note;
    const forgedFile = file('forged.jsonl', [JSON.stringify({ treeSize: old.treeSize, note: forgedNote })]);
    expect(await run('--public-key', key(), '--checkpoint', noteFile, trailFile)).toMatchObject({ code: 0 });
    expect(await run('--checkpoint', checkpointsFile, '--public-key', key(), trailFile)).toMatchObject({ code: 0 });
    const forged = await run('--public-key', key(), '--checkpoint', forgedFile, trailFile);
    expect(forged.code).toBe(1);
    expect(forged.stdout).toMatch(/consistency proof from your checkpoint .* does not verify/);
    const other = await run('--public-key', key(), '--checkpoint', file('other.note', [OTHER_NOTE()]), trailFile);
    expect(other.code).toBe(1);
    expect(other.stdout).toMatch(/trail: Your checkpoint does not verify with this key/);
  });

  it('accepts the public key as PEM (text or file) and refuses another key', async () => {
    const pem = TEST_LOG_KEY.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const pemFile = path.join(dir, 'log.pub');
    writeFileSync(pemFile, pem);
    const resigned = [...lines];
    const c = verifyCheckpoint(JSON.parse(lines[1]).note, TEST_LOG_KEY);
    resigned[1] = JSON.stringify({
      type: 'checkpoint',
      note: signCheckpoint(OTHER_LOG_KEY, c.treeSize, c.rootHash, c.timestamp, c.previous).note,
    });
    expect((await run('--public-key', pem, trailFile)).code).toBe(0);
    expect((await run(`--public-key=${pemFile}`, trailFile)).code).toBe(0);
    expect((await run('--public-key', OTHER_LOG_KEY.verifierKey, trailFile)).code).toBe(1);
    const resignedRun = await run('--public-key', key(), file('resigned.ndjson', resigned));
    expect(resignedRun.code).toBe(1);
    expect(resignedRun.stdout).toMatch(/line 2: The trail's checkpoint is refused/);
  });

  it('wrong or missing arguments: one clear line, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [[trailFile], /^verify: missing --public-key KEY/],
      [['--public-key', key()], /^verify: missing the trail file/],
      [['--public-key', key(), trailFile, trailFile], /^verify: give exactly one trail file/],
      [['--public-key', 'nonsense', trailFile], /^verify: --public-key: the public key must be/],
      [['--public-key', key(), '--bogus', trailFile], /^verify: Unknown option '--bogus'/],
      [
        ['--public-key', key(), '--checkpoint', path.join(dir, 'none'), trailFile],
        /^verify: cannot read the checkpoint/,
      ],
      [['--public-key'], /^verify: Option '--public-key <value>' argument missing/],
    ];
    for (const [args, message] of cases) {
      const result = await run(...args);
      expect(result).toMatchObject({ code: 2, stdout: '' });
      expect(result.stderr).toMatch(message);
      expect(result.stderr.split('\n')).toHaveLength(1);
    }
  });
});

const OTHER_NOTE = () => signCheckpoint(OTHER_LOG_KEY, 1, Buffer.alloc(32), new Date(), null).note.replace(/\n$/, '');
