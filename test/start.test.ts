import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { localSecret, mintToken } from '../src/auth';
import { freePort } from '../src/db';
import { verifyCheckpoint } from '../src/execution-log/checkpoint';
import { logKeyFromPem, parseVerifier } from '../src/execution-log/log-key';

/**
 * `npm start` as a newcomer runs it: no DATABASE_URL, so an embedded PostgreSQL in a data
 * directory, migrated, with the demo data, serving GraphQL; then a second start on the same
 * directory. (The entry point is run through ts-node so the test needs no build.)
 */

const ROOT = path.join(__dirname, '..');

interface Running {
  child: ChildProcess;
  url: string;
  output: () => string;
  ms: number;
}

async function start(env: Record<string, string>): Promise<Running> {
  const { DATABASE_URL: _ignored, ...parentEnv } = process.env;
  const t0 = Date.now();
  const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/index.ts'], {
    cwd: ROOT,
    // DATABASE_URL empty, not absent: a developer's .env must not fill it in.
    env: {
      ...parentEnv,
      DATABASE_URL: '',
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 60 s:\n${out}`)), 60_000);
    child.stdout!.on('data', () => {
      const m = /Tradetrail GraphQL: (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => reject(new Error(`server exited with ${code}:\n${out}`)));
  });
  return { child, url, output: () => out, ms: Date.now() - t0 };
}

async function stop(r: Running): Promise<void> {
  const exited = new Promise((resolve) => r.child.on('exit', resolve));
  r.child.kill('SIGTERM');
  await exited;
}

/** A compliance token signed with the secret `npm start` created in the data directory. */
async function gql(url: string, query: string, dataDir: string): Promise<any> {
  const secret = localSecret(dataDir, false);
  if (!secret) throw new Error('npm start did not create a token secret in its data directory');
  const token = await mintToken(secret, { sub: 'start-test', role: 'compliance' });
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query }),
  });
  return res.json();
}

describe('npm start', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-start-'));
    await chmod(dir, 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  let firstKey = '';
  it('serves the demo audit trail from a fresh embedded database, and again from the existing one', async () => {
    const env = { TRADETRAIL_DATA_DIR: path.join(dir, 'pgdata'), TRADETRAIL_PG_PORT: String(await freePort()) };
    const first = await start(env);
    try {
      expect(first.output()).toMatch(/[1-9]\d* pending migration\(s\) applied/);
      expect(first.output()).toMatch(/demo data loaded/);
      const res = await gql(
        first.url,
        '{ traders { totalCount } positions(filter: { status: CLOSED }) { totalCount } orders(filter: { status: [FILLED], linked: false }) { totalCount } }',
        env.TRADETRAIL_DATA_DIR,
      );
      expect(res).toEqual({
        data: { traders: { totalCount: 3 }, positions: { totalCount: 2 }, orders: { totalCount: 1 } },
      });
      // Without a token: 401.
      const anonymous = await fetch(first.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"query":"{ traders { totalCount } }"}',
      });
      expect(anonymous.status).toBe(401);
      // The log's public key is printed and served; the demo data's entries get a signed checkpoint.
      const printed = /Log public key: +(\S+)/.exec(first.output())?.[1];
      const origin = new URL(first.url).origin;
      const key = (await (await fetch(`${origin}/log/public-key`)).json()) as {
        verifierKey: string;
        publicKeyPem: string;
      };
      expect(key.verifierKey).toBe(printed);
      expect(key.publicKeyPem).toMatch(/BEGIN PUBLIC KEY/);
      let note = '';
      for (let i = 0; i < 50 && !note; i++) {
        const res = await fetch(`${origin}/log/checkpoint`);
        if (res.status === 200) note = await res.text();
        else await new Promise((r) => setTimeout(r, 100));
      }
      const checkpoint = verifyCheckpoint(note, parseVerifier(printed!));
      expect(checkpoint.treeSize).toBeGreaterThan(10);
      firstKey = printed!;
    } finally {
      await stop(first);
    }

    const second = await start(env);
    try {
      expect(second.output()).toMatch(/0 pending migration\(s\) applied/);
      expect(second.output()).not.toMatch(/demo data loaded/);
      // The key in the data directory is kept: the same public key.
      expect(/Log public key: +(\S+)/.exec(second.output())?.[1]).toBe(firstKey);
      expect(await gql(second.url, '{ traders { totalCount } }', env.TRADETRAIL_DATA_DIR)).toEqual({
        data: { traders: { totalCount: 3 } },
      });
    } finally {
      await stop(second);
    }
    console.log(`npm start (ts-node, no build): fresh data directory ${first.ms} ms, existing ${second.ms} ms`);
    // The embedded server stopped with the process.
    const stillUp = await new Promise((resolve) => {
      const s = net.connect(Number(env.TRADETRAIL_PG_PORT), '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    expect(stillUp).toBe(false);
  });

  it('npm run log:keygen writes a key once (mode 600) and prints its verifier key', async () => {
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(
          process.execPath,
          ['-r', 'ts-node/register/transpile-only', 'scripts/log-keygen.ts', ...args],
          {
            cwd: ROOT,
          },
        );
        let out = '';
        child.stdout!.on('data', (d) => (out += d));
        child.stderr!.on('data', (d) => (out += d));
        child.on('exit', (code) => resolve({ code, out }));
      });
    const file = path.join(dir, 'log-key.pem');
    const first = await run(['--out', file]);
    expect(first.code).toBe(0);
    const printed = /public verifier key: (\S+)/.exec(first.out)![1];
    expect(logKeyFromPem(await readFile(file, 'utf8'), 'tradetrail').verifierKey).toBe(printed);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const again = await run(['--out', file]);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/the file exists \(a key is never overwritten\)/);
    expect((await run(['--help'])).code).toBe(0);
  });

  it('with DATABASE_URL and no log signing key, refuses to start before touching the database', async () => {
    const t0 = Date.now();
    const child = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/index.ts'], {
      cwd: ROOT,
      // Nothing listens on port 9: a server that tried the database would fail differently, later.
      env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none', TRADETRAIL_LOG_SIGNING_KEY: '' },
    });
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/Configuration error: TRADETRAIL_LOG_SIGNING_KEY is required with DATABASE_URL/);
    expect(err).not.toMatch(/ECONNREFUSED|could not start/);
    expect(Date.now() - t0).toBeLessThan(30_000);
  });

  it('loads no demo data when TRADETRAIL_DEMO_DATA=off, and explains a bad setting', async () => {
    const env = {
      TRADETRAIL_DATA_DIR: path.join(dir, 'empty'),
      TRADETRAIL_PG_PORT: String(await freePort()),
      TRADETRAIL_DEMO_DATA: 'off',
    };
    const r = await start(env);
    try {
      expect(await gql(r.url, '{ traders { totalCount } }', env.TRADETRAIL_DATA_DIR)).toEqual({
        data: { traders: { totalCount: 0 } },
      });
    } finally {
      await stop(r);
    }
    const bad = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', 'src/index.ts'], {
      cwd: ROOT,
      env: { ...process.env, PORT: 'forty' },
    });
    let err = '';
    bad.stderr.on('data', (d) => (err += d));
    const code = await new Promise((resolve) => bad.on('exit', resolve));
    expect(code).toBe(1);
    expect(err).toMatch(/Configuration error: PORT must be a whole number from 0 to 65535; got "forty"/);
  });
});
