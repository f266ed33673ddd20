/**
 * `npm run bench:start`: how long `npm start` takes until GraphQL answers, on a fresh data
 * directory (initdb, migrations, demo data) and on the existing one. Prints numbers, asserts nothing.
 * `npm start` is `tsc` (incremental) then `node dist/src/index.js`: both are timed here, the
 * server from its start to its first answered GraphQL request.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { mintToken } from '../src/auth';
import { freePort } from '../src/db';
import { commandLine } from './cli';

commandLine(
  {
    name: 'bench:start',
    synopsis: '',
    about:
      'Times `npm start` until GraphQL answers: the build step (incremental tsc), then the server on a fresh\n' +
      'data directory (initdb, migrations, demo data) and again on the existing one, in a temporary\n' +
      'directory with an embedded PostgreSQL (DATABASE_URL is not used). Prints numbers, asserts nothing.',
    options: {},
  },
  () => undefined,
);

async function timeToServe(env: Record<string, string>, token: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn(process.execPath, ['dist/src/index.js'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const url = `http://127.0.0.1:${env.PORT}/graphql`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited:\n${out}`);
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ traders { totalCount } }' }),
      });
      await res.text();
      if (res.ok) break;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const exited = new Promise((r) => child.on('exit', r));
  // The server stops its embedded PostgreSQL on SIGINT.
  child.kill('SIGINT');
  const timer = setTimeout(() => {
    console.error(`the server did not stop within 15 s of SIGINT; its output:\n${out}`);
    child.kill('SIGKILL');
  }, 15_000);
  await exited;
  clearTimeout(timer);
  return ms;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-bench-start-'));
  chmodSync(dir, 0o755);
  const env = {
    TRADETRAIL_DATA_DIR: path.join(dir, 'pgdata'),
    TRADETRAIL_PG_PORT: String(await freePort()),
    PORT: String(await freePort()),
    HOST: '127.0.0.1',
    DATABASE_URL: '',
    TRADETRAIL_JWT_SECRET: randomBytes(32).toString('base64url'),
  };
  const token = await mintToken(env.TRADETRAIL_JWT_SECRET, { sub: 'bench', role: 'compliance' });
  try {
    const b0 = process.hrtime.bigint();
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      stdio: 'inherit',
    });
    const build = Number(process.hrtime.bigint() - b0) / 1e6;
    const fresh = await timeToServe(env, token);
    await new Promise((r) => setTimeout(r, 500));
    const existing = await timeToServe(env, token);
    const sec = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
    console.log(`build step of npm start (incremental tsc, nothing changed): ${sec(build)}`);
    console.log(
      `server start -> first GraphQL answer, fresh data directory (initdb, migrations, demo data): ${sec(fresh)}`,
    );
    console.log(`server start -> first GraphQL answer, existing data directory: ${sec(existing)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

void main();
