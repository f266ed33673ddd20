import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { jwtVerify } from 'jose';
import { Client } from 'pg';
import { freePort, postmaster } from '../src/db';

/**
 * The first hour: the scripts' command lines (--help, wrong arguments), the .env file, the warning of
 * production on the embedded database, and migration commands while `npm start` runs. Scripts run as
 * processes, through ts-node (no build needed).
 */

const ROOT = path.join(__dirname, '..');
const TS_NODE = require.resolve('ts-node/register/transpile-only');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Runs `file` (relative to the repository) as a process; its own process group, killed whole after
 * 30 s (a script that did not stop at its command line would start a benchmark or a database).
 */
function run(
  file: string,
  args: string[],
  options: { env?: Record<string, string | undefined>; cwd?: string } = {},
): Promise<Ran> {
  const env = Object.fromEntries(
    Object.entries({ ...process.env, TS_NODE_PROJECT: path.join(ROOT, 'tsconfig.json'), ...options.env }).filter(
      (e): e is [string, string] => e[1] !== undefined,
    ),
  );
  const child = spawn(process.execPath, ['-r', TS_NODE, path.join(ROOT, file), ...args], {
    cwd: options.cwd ?? ROOT,
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

/** `fn` over `items`, at most `limit` at a time (each is a process of ~100 MB), results in order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i], i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const SCRIPTS: [file: string, run: RegExp][] = [
  ['scripts/token.ts', /^Usage: npm run token -- --role /],
  ['scripts/seed.ts', /^Usage: npm run seed\n/],
  ['scripts/verify.ts', /^Usage: npm run verify -- --public-key KEY/],
  ['scripts/log-keygen.ts', /^Usage: npm run log:keygen -- /],
  ['scripts/ledger-upgrade.ts', /^Usage: npm run ledger:upgrade\n/],
  ['scripts/bench-start.ts', /^Usage: npm run bench:start\n/],
  ['scripts/bench-ingest.ts', /^Usage: npm run bench:ingest -- /],
  ['scripts/bench-verify.ts', /^Usage: npm run bench:verify -- /],
  ['scripts/bench-export.ts', /^Usage: npm run bench:export -- /],
  ['scripts/bench-compliance.ts', /^Usage: npm run bench:compliance -- /],
  ['scripts/emit-schema.ts', /^Usage: npm run schema -- \[--check\]/],
  ['scripts/with-db.ts', /^Usage: node dist\/scripts\/with-db.js COMMAND/],
  ['scripts/test-property.ts', /^Usage: npm run test:property -- /],
];

describe('script command lines', () => {
  it('every script prints its usage for --help (or -h) on stdout and exits 0', async () => {
    const results = await mapLimit(SCRIPTS, 4, ([file], i) => run(file, [i % 2 ? '-h' : '--help']));
    for (const [i, [file, usage]] of SCRIPTS.entries()) {
      expect({ file, ...results[i] }).toMatchObject({ file, code: 0, stderr: '' });
      expect(results[i].stdout).toMatch(usage);
      expect(results[i].stdout).toMatch(/^ {2}-h, --help +print this help$/m);
    }
    // Every option with its default.
    const help = (file: string) => results[SCRIPTS.findIndex(([f]) => f === file)].stdout;
    expect(help('scripts/token.ts')).toMatch(/^ {2}--expires SPAN +how long .*\(default: 12h\)$/m);
    expect(help('scripts/bench-compliance.ts')).toMatch(/^ {2}--orders N +orders to build .*\(default: 1000000\)$/m);
    expect(help('scripts/bench-ingest.ts')).toMatch(/--single N .*\(default: 5000\)\n.*--batches N .*\(default: 40\)/);
    expect(help('scripts/test-property.ts')).toMatch(/--scenarios N .*\(default: 1000\)/);
  });

  it('a wrong command line: one line naming the problem and pointing to --help on stderr, exit 2', async () => {
    const cases: [file: string, args: string[], line: string][] = [
      [
        'token',
        ['--role', 'admin', '--expires', '5x'],
        'token: --expires must be a time span such as 30m, 12h or 7d; got "5x"',
      ],
      ['token', [], 'token: missing --role service|compliance|admin or --trader ID'],
      ['seed', ['now'], "seed: Unexpected argument 'now'"],
      ['ledger-upgrade', ['--dry-run'], "ledger:upgrade: Unknown option '--dry-run'"],
      ['log-keygen', ['--origin', 'my log'], 'log:keygen: --origin must be 1 to 128 printable ASCII characters'],
      ['bench-start', ['--runs', '3'], "bench:start: Unknown option '--runs'"],
      ['bench-ingest', ['--single', 'many'], 'bench:ingest: --single must be a whole number of at least 1; got "many"'],
      ['bench-verify', ['--entries', '9'], 'bench:verify: --entries must be a whole number of at least 10; got "9"'],
      ['bench-export', ['--rows', '100000,lots'], 'bench:export: --rows takes a comma-separated list of whole numbers'],
      [
        'bench-compliance',
        ['--orders', '1e6'],
        'bench:compliance: --orders must be a whole number of at least 1000; got "1e6"',
      ],
      ['emit-schema', ['--check', 'schema.graphql'], "schema: Unexpected argument 'schema.graphql'"],
      ['with-db', [], 'with-db: missing the COMMAND to run'],
      ['with-db', ['--port', '5432'], "with-db: Unknown option '--port'"],
      ['test-property', ['--seed'], "test:property: Option '--seed <value>' argument missing"],
    ];
    // A database a script reached by mistake would be this one: nothing listens on port 9.
    const env = { DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none' };
    const results = await mapLimit(cases, 4, ([file, args]) => run(`scripts/${file}.ts`, args, { env }));
    for (const [i, [file, args, line]] of cases.entries()) {
      const help =
        file === 'with-db' ? 'node dist/scripts/with-db.js --help' : `npm run ${line.split(': ')[0]} -- --help`;
      // One line (no stack trace): the problem, then where the usage is.
      expect({ file, args, ...results[i] }).toEqual({
        file,
        args,
        code: 2,
        stdout: '',
        stderr: expect.stringMatching(new RegExp(`^${escape(line)}.* \\(see ${escape(help)}\\)\\n$`)),
      });
    }
  });
});

describe('the .env file of the working directory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-dotenv-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is read before the configuration (here of npm run token); the environment wins; a bad line or value is named', async () => {
    const fileSecret = 'from-the-dotenv-file-'.padEnd(40, 'f');
    const envSecret = 'from-the-environment-'.padEnd(40, 'e');
    const cwd = (name: string, text: string) =>
      mkdir(path.join(dir, name))
        .then(() => writeFile(path.join(dir, name, '.env'), text))
        .then(() => path.join(dir, name));
    const [plain, malformed, badValue] = await Promise.all([
      cwd('plain', `# settings\nTRADETRAIL_JWT_SECRET=${fileSecret}\n`),
      cwd('malformed', `TRADETRAIL_JWT_SECRET=${fileSecret}\nTRADETRAIL_JWT_SECRET ${fileSecret}\n`),
      cwd('bad-value', `TRADETRAIL_JWT_SECRET=${fileSecret}\nPORT=forty\n`),
    ]);
    // NODE_ENV=test (jest's) would skip the file; TRADETRAIL_JWT_SECRET unset (''-set would win over it).
    const env = { NODE_ENV: 'development', TRADETRAIL_JWT_SECRET: undefined };
    const token = (cwd: string, extra: Record<string, string> = {}) =>
      run('scripts/token.ts', ['--role', 'compliance'], { cwd, env: { ...env, ...extra } });
    const [fromFile, fromEnv, bad, badPort] = await Promise.all([
      token(plain),
      token(plain, { TRADETRAIL_JWT_SECRET: envSecret }),
      token(malformed),
      token(badValue),
    ]);
    const signedWith = async (r: Ran, secret: string) =>
      (await jwtVerify(r.stdout.trim(), new TextEncoder().encode(secret)).catch(() => null))?.payload.role;
    expect(fromFile).toMatchObject({ code: 0, stderr: '' });
    expect(await signedWith(fromFile, fileSecret)).toBe('compliance');
    expect(fromEnv).toMatchObject({ code: 0, stderr: '' });
    expect(await signedWith(fromEnv, envSecret)).toBe('compliance');
    expect(await signedWith(fromEnv, fileSecret)).toBeUndefined();
    expect(bad).toEqual({
      code: 1,
      stdout: '',
      // The line is named by its first word only: the rest may be a secret.
      stderr: `Configuration error: ${path.join(malformed, '.env')} line 2: expected NAME=value, a # comment or a blank line; got a line starting "TRADETRAIL_JWT_SECRET"\n`,
    });
    expect(badPort).toEqual({
      code: 1,
      stdout: '',
      stderr: `Configuration error: PORT must be a whole number from 0 to 65535; got "forty" (set in ${path.join(badValue, '.env')}).\n`,
    });
  });
});

/** `npm start` (src/index.ts through ts-node), resolved once it serves. */
async function start(env: Record<string, string>): Promise<{ child: ChildProcess; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['-r', TS_NODE, 'src/index.ts'], {
    cwd: ROOT,
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = { child, stdout: '', stderr: '' };
  child.stderr!.on('data', (d) => (out.stderr += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm start did not serve in 60 s:\n${out.stdout}${out.stderr}`)),
      60_000,
    );
    child.stdout!.on('data', (d) => {
      out.stdout += d;
      if (out.stdout.includes('Tradetrail GraphQL:')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.on('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${out.stdout}${out.stderr}`)));
  });
  return out;
}

/**
 * `with-db` as `npm run migration:*` runs the TypeORM CLI with it; here the command connects to the
 * DATABASE_URL it is given and prints it.
 */
const withDb = (env: Record<string, string>) =>
  run(
    'scripts/with-db.ts',
    [
      process.execPath,
      '-e',
      `const c = new (require('pg').Client)(process.env.DATABASE_URL);
       c.connect().then(() => c.end()).then(() => console.log(process.env.DATABASE_URL));`,
    ],
    { env: { DATABASE_URL: '', ...env } },
  );

describe('npm start with NODE_ENV=production on the embedded database', () => {
  let dir: string;
  let dataDir: string;
  let port: number;
  let server: Awaited<ReturnType<typeof start>> | undefined;
  let stopped: Promise<unknown>;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-prod-'));
    await chmod(dir, 0o755); // as root, PostgreSQL runs as `postgres`, who must reach the data directory
    dataDir = path.join(dir, 'pgdata');
    port = await freePort();
    server = await start({
      NODE_ENV: 'production',
      DATABASE_URL: '', // the environment wins over a developer's .env
      TRADETRAIL_DATA_DIR: dataDir,
      TRADETRAIL_PG_PORT: String(port),
      TRADETRAIL_JWT_SECRET: '',
      TRADETRAIL_LOG_SIGNING_KEY: '',
      TRADETRAIL_DEMO_DATA: 'off',
      LOG_LEVEL: 'info',
    });
    stopped = new Promise((resolve) => server!.child.on('exit', resolve));
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await stopped;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('warns loudly that its secrets are kept next to the data, and what to set instead', async () => {
    const { stderr } = server!;
    expect(stderr).toContain('!!! NODE_ENV=production on the embedded PostgreSQL');
    expect(stderr).toContain(dataDir);
    expect(stderr).toMatch(
      /- the token signing secret: they can mint a token for any role\. Set TRADETRAIL_JWT_SECRET /,
    );
    expect(stderr).toMatch(/- the log signing key: .* Set TRADETRAIL_LOG_SIGNING_KEY /);
    expect(stderr).toMatch(/set DATABASE_URL/);
    // The log line (pino writes it a moment after the console's).
    const warningLine = () =>
      server!.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { level: number; msg: string; dataDir?: string })
        .find((l) => l.level === 40 && l.msg.startsWith('NODE_ENV=production on the embedded PostgreSQL'));
    for (let i = 0; i < 100 && !warningLine(); i++) await new Promise((r) => setTimeout(r, 50));
    const warning = warningLine();
    expect(warning).toMatchObject({
      dataDir,
      msg: expect.stringMatching(/the token signing secret and the log signing key are kept in its data directory/),
    });
    // What it says is so: both secrets are in the data directory.
    expect(existsSync(path.join(dataDir, 'tradetrail-jwt-secret'))).toBe(true);
    expect(existsSync(path.join(dataDir, 'log-signing-key.pem'))).toBe(true);
  });

  it('migration commands reuse its server on the port it runs on, whatever TRADETRAIL_PG_PORT says', async () => {
    const { password } = JSON.parse(await readFile(path.join(dataDir, 'tradetrail-credentials.json'), 'utf8'));
    const startedAt = async (url: string) => {
      const c = new Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query(`SELECT pg_postmaster_start_time()::text AS t`)).rows[0].t as string;
      } finally {
        await c.end();
      }
    };
    const before = await startedAt(`postgres://tradetrail:${password}@127.0.0.1:${port}/postgres`);
    const otherPort = await freePort();
    const printed = await withDb({ TRADETRAIL_DATA_DIR: dataDir, TRADETRAIL_PG_PORT: String(otherPort) });
    expect(printed).toMatchObject({ code: 0, stderr: '' });
    const url = new URL(printed.stdout.trim());
    expect(url.port).toBe(String(port));
    expect(await startedAt(url.toString())).toBe(before); // the same server, not restarted
    const answered = await new Promise((resolve) => {
      const s = net.connect(otherPort, '127.0.0.1');
      s.on('connect', () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    expect(answered).toBe(false); // and none started on the configured port
  });

  it('after a crash (a postmaster.pid left behind, nothing answering), the next command starts the server', async () => {
    const pidFile = path.join(dataDir, 'postmaster.pid');
    const stale = await readFile(pidFile, 'utf8');
    expect(await postmaster(dataDir)).toMatchObject({ port });
    server!.child.kill('SIGTERM');
    await stopped;
    expect(existsSync(pidFile)).toBe(false);
    await writeFile(pidFile, stale); // its process is gone, its port closed
    const otherPort = await freePort();
    const printed = await withDb({ TRADETRAIL_DATA_DIR: dataDir, TRADETRAIL_PG_PORT: String(otherPort) });
    expect(printed).toMatchObject({ code: 0, stderr: '' });
    // Started on the configured port (reusing would have named the stale one), and stopped after.
    expect(new URL(printed.stdout.trim()).port).toBe(String(otherPort));
    expect(existsSync(pidFile)).toBe(false);
  });
});
