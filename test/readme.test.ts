import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/db';
import { adminQuery, adminUrl } from './harness';

/**
 * README.md, run as a newcomer would, top to bottom, in one shell, on a fresh embedded database:
 * - every ```sh block runs in one bash session (variables carry over) after `npm run build`;
 *   `npm start` starts the built server in the background, `npm run <script>` runs the script's
 *   command from package.json (without its build step, done once), `npm install` and `npm test` are
 *   what is running this; no command may fail, and no GraphQL answer may hold an error unless shown;
 * - a ```json or ```text block after an ```sh block (prose between, no heading and no other block) is
 *   its output: JSON must equal what the commands printed, with "…" standing for any value; text
 *   lines must appear in order, "…" standing for any characters;
 * - every ```graphql block is one of examples/ (run by the examples tests), and a ```json block after
 *   it, or after a link to an example, is part of that example's result;
 * - every `npm run <script>` the prose names exists and answers --help; commands (curl…) are in blocks.
 * - plain ``` blocks, ```yaml and ```ini are illustrations (configuration files, abridged formats,
 *   commands for a setup this test cannot have, such as a PgBouncer in front of a remote database).
 * The only rewrites are listed in REWRITES, each with its reason.
 */

const ROOT = path.join(__dirname, '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const SCRIPTS = (
  JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
).scripts;

interface Block {
  lang: string;
  text: string;
  line: number;
  /** Prose and headings between the previous block and this one. */
  before: string;
}

function parseBlocks(markdown: string): { blocks: Block[]; prose: string } {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  let prose = '';
  let between = '';
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]);
    if (!open) {
      prose += `${lines[i]}\n`;
      between += `${lines[i]}\n`;
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i += 1; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    blocks.push({ lang: open[1], text: body.join('\n'), line: start + 1, before: between });
    between = '';
  }
  return { blocks, prose };
}

/** A block's output block: the next one, when it is json or text and nothing but prose lies between. */
function outputOf(blocks: Block[], i: number): Block | undefined {
  const next = blocks[i + 1];
  if (!next || !['json', 'text'].includes(next.lang) || /^#/m.test(next.before)) return undefined;
  return next;
}

/** JSON equality where the string "…" stands for any value. */
function matches(shown: unknown, actual: unknown): boolean {
  if (shown === '…') return true;
  if (Array.isArray(shown)) {
    return Array.isArray(actual) && shown.length === actual.length && shown.every((s, i) => matches(s, actual[i]));
  }
  if (shown && typeof shown === 'object') {
    if (!actual || typeof actual !== 'object' || Array.isArray(actual)) return false;
    const keys = Object.keys(shown);
    return (
      keys.length === Object.keys(actual).length &&
      keys.every((k) => k in actual && matches((shown as never)[k], (actual as never)[k]))
    );
  }
  return shown === actual;
}

/** `shown` matches `actual` or one of its parts. */
function contains(shown: unknown, actual: unknown): boolean {
  if (matches(shown, actual)) return true;
  return !!actual && typeof actual === 'object' && Object.values(actual).some((v) => contains(shown, v));
}

/** Concatenated JSON values (one per command of a block). */
function parseJsonSequence(text: string): unknown[] {
  const values: unknown[] = [];
  let rest = text.trim();
  while (rest) {
    let end = 0;
    let depth = 0;
    let inString = false;
    for (; end < rest.length; end++) {
      const c = rest[end];
      if (inString) {
        if (c === '\\') end++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) break;
      }
    }
    values.push(JSON.parse(rest.slice(0, end + 1)));
    rest = rest.slice(end + 1).trim();
  }
  return values;
}

/** Lines of `shown` appear in `actual` in order; "…" matches any characters. */
function linesAppear(shown: string, actual: string): string | null {
  const want = shown
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const have = actual.split('\n').map((l) => l.trim());
  let at = 0;
  for (const line of want) {
    const pattern = new RegExp(
      `^${line
        .split('…')
        .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
        .join('.*')}$`,
    );
    while (at < have.length && !pattern.test(have[at])) at++;
    if (at === have.length) return line;
    at++;
  }
  return null;
}

/** The few places where a README command cannot run as written here, and why. */
function rewrites(port: number, externalDb: string): [RegExp, string, string][] {
  return [
    [/(127\.0\.0\.1|localhost):4000/g, `127.0.0.1:${port}`, 'the test server listens on a free port, not 4000'],
    [
      /postgres:\/\/user:password@host:5432\/tradetrail/g,
      withDatabase(adminUrl(), externalDb),
      "'your external PostgreSQL' is the test's PostgreSQL",
    ],
    [/createdb tradetrail\b/g, `createdb ${externalDb}`, 'a database of its own on the shared test PostgreSQL'],
  ];
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

/** The shell a newcomer types into: npm as described above, and an ERR trap that reports failures. */
const PREAMBLE = String.raw`
set -E
trap 'echo "__TT_ERR__ exit $? from: $BASH_COMMAND" >&2' ERR
__tt_wait() { # log pid: until the server prints its banner, or exits
  for _ in $(seq 1 600); do
    grep -q 'Tradetrail GraphQL:' "$1" && return 0
    kill -0 "$2" 2>/dev/null || { cat "$1" >&2; return 1; }
    sleep 0.1
  done
  cat "$1" >&2; return 1
}
__tt_start() {
  if [ -z "$__TT_SERVER" ]; then
    node "$TT_ROOT/dist/src/index.js" > "$TT_SERVER_LOG" 2>&1 &
    __TT_SERVER=$!
    echo "$__TT_SERVER" > "$TT_SERVER_PID"
    __tt_wait "$TT_SERVER_LOG" "$__TT_SERVER" && cat "$TT_SERVER_LOG"
  else
    # A second server (e.g. on an external database) while the first runs: its own port; it is
    # stopped once it has come up, as a user would stop it with Ctrl-C.
    local log; log=$(mktemp)
    PORT=0 node "$TT_ROOT/dist/src/index.js" > "$log" 2>&1 &
    local pid=$!
    __tt_wait "$log" "$pid" && cat "$log" && kill -TERM "$pid" && wait "$pid"
  fi
}
__tt_run() { # script args…: the script's command from package.json, built once already
  local script="$1"; shift
  local command
  command=$(node -e 'const s = require(process.argv[1]).scripts[process.argv[2]]; if (!s) process.exit(3); process.stdout.write(s)' "$TT_ROOT/package.json" "$script") \
    || { echo "npm error: no script \"$script\" in package.json" >&2; return 1; }
  command=\${command#npm run build --silent && }
  # npm runs a script in the package's folder, with its node_modules/.bin on PATH
  (cd "$TT_ROOT" && PATH="$TT_ROOT/node_modules/.bin:$PATH" eval "$command"' "$@"')
}
npm() {
  case "$1" in
    install|ci) return 0 ;;   # the clone is installed: this runs in it
    test) return 0 ;;         # npm test is what runs this
    start) __tt_start ;;
    run) shift; [ "$1" = -s ] && shift; local script="$1"; shift; [ "$1" = -- ] && shift; __tt_run "$script" "$@" ;;
    *) command npm "$@" ;;
  esac
}
`.replace(/\\\$\{/g, '${');

class Shell {
  private out = '';
  private err = '';
  private n = 0;
  constructor(private readonly bash: ChildProcessWithoutNullStreams) {
    bash.stdout.on('data', (d) => (this.out += d));
    bash.stderr.on('data', (d) => (this.err += d));
  }

  /** Sources `script` in the session; its stdout, stderr and the commands that failed. */
  async run(
    script: string,
    dir: string,
    timeoutMs = 120_000,
  ): Promise<{ stdout: string; stderr: string; failed: string[] }> {
    const n = ++this.n;
    const file = path.join(dir, `block-${n}.sh`);
    await writeFile(file, `${script}\n`);
    this.out = '';
    this.err = '';
    const marker = `__TT_DONE_${n}__`;
    this.bash.stdin.write(`source ${file} < /dev/null; echo ${marker}; echo ${marker} >&2\n`);
    const started = Date.now();
    while (!(this.out.includes(marker) && this.err.includes(marker))) {
      if (Date.now() - started > timeoutMs) throw new Error(`block timed out:\n${script}\n${this.out}\n${this.err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const stdout = this.out.slice(0, this.out.indexOf(marker));
    const stderr = this.err.slice(0, this.err.indexOf(marker));
    const failed = [...stderr.matchAll(/__TT_ERR__ (.*)/g)].map((m) => m[1]);
    return { stdout, stderr, failed };
  }
}

/** Command-line tools README commands use besides npm and node. */
const TOOLS = ['curl', 'jq', 'openssl', 'createdb'];
const available = (tool: string): boolean => spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;

const EXAMPLES = path.join(ROOT, 'examples');
function exampleFiles(dir = EXAMPLES): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? exampleFiles(path.join(dir, e.name)) : [path.join(dir, e.name)],
  );
}
const normalise = (s: string) => s.replace(/\s+/g, ' ').trim();

describe('README.md, run top to bottom', () => {
  const { blocks, prose } = parseBlocks(README);

  it('has only blocks this test knows how to check, and no command outside them', () => {
    // Commands live in sh blocks, where they run; prose only names scripts (checked below).
    expect([...prose.matchAll(/`(curl [^`]*)`/g)].map((m) => m[1])).toEqual([]);
    expect(
      blocks.filter((b) => !['sh', 'json', 'text', 'graphql', 'yaml', 'ini', ''].includes(b.lang)).map((b) => b.line),
    ).toEqual([]);
    // json and text blocks are outputs: of a command, or of an example the prose links to.
    const orphans = blocks.filter(
      (b, i) =>
        ['json', 'text'].includes(b.lang) &&
        !(i > 0 && outputOf(blocks, i - 1) === b && ['sh', 'graphql'].includes(blocks[i - 1].lang)) &&
        !/examples\/[\w/.-]+\.(graphql|result\.json)/.test(b.before),
    );
    expect(orphans.map((b) => `line ${b.line}`)).toEqual([]);
  });

  it('shows GraphQL that is one of examples/, with output that is part of its result', () => {
    const graphqlFiles = exampleFiles().filter((f) => f.endsWith('.graphql'));
    blocks.forEach((block, i) => {
      let example: string | undefined;
      if (block.lang === 'graphql') {
        example = graphqlFiles.find((f) => normalise(readFileSync(f, 'utf8')) === normalise(block.text));
        expect([`line ${block.line}`, example ? 'an example' : 'not in examples/']).toEqual([
          `line ${block.line}`,
          'an example',
        ]);
        const output = outputOf(blocks, i);
        if (output?.lang === 'json') {
          const result = JSON.parse(readFileSync(example!.replace(/\.graphql$/, '.result.json'), 'utf8'));
          expect([`line ${output.line}`, contains(JSON.parse(output.text), result)]).toEqual([
            `line ${output.line}`,
            true,
          ]);
        }
      } else if (block.lang === 'json' && !(i > 0 && outputOf(blocks, i - 1) === block)) {
        const link = [...block.before.matchAll(/examples\/([\w/.-]+?)\.(graphql|result\.json)/g)].at(-1);
        if (!link) return;
        const result = JSON.parse(readFileSync(path.join(EXAMPLES, `${link[1]}.result.json`), 'utf8'));
        expect([`line ${block.line}`, contains(JSON.parse(block.text), result)]).toEqual([`line ${block.line}`, true]);
      }
    });
  });

  describe('in one shell, as a newcomer', () => {
    let shell: Shell;
    let bash: ChildProcessWithoutNullStreams;
    let dir: string;
    let port: number;
    /** What the clone's folder held before the session: whatever else the commands wrote is removed. */
    let created: Set<string>;
    const externalDb = `tt_readme_${randomBytes(4).toString('hex')}`;

    beforeAll(async () => {
      // `npm start` builds first; so does this, once.
      const build = spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
      if (build.status !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`);
      dir = await mkdtemp(path.join(os.tmpdir(), 'tradetrail-readme-'));
      await chmod(dir, 0o755); // the embedded server runs as the postgres user when we are root
      port = await freePort();
      const admin = new URL(adminUrl());
      const { DATABASE_URL: _db, NODE_ENV: _env, ...env } = process.env;
      created = new Set(readdirSync(ROOT));
      bash = spawn('bash', ['--noprofile', '--norc'], {
        cwd: ROOT, // a newcomer types in the clone's folder
        env: {
          ...Object.fromEntries(
            Object.entries(env).filter(([k]) => !k.startsWith('TRADETRAIL_') && !k.startsWith('npm_')),
          ),
          TT_ROOT: ROOT,
          TT_SERVER_LOG: path.join(dir, 'server.log'),
          TT_SERVER_PID: path.join(dir, 'server.pid'),
          TRADETRAIL_DATA_DIR: path.join(dir, 'pgdata'),
          TRADETRAIL_PG_PORT: String(await freePort()),
          HOST: '127.0.0.1',
          PORT: String(port),
          LOG_LEVEL: 'warn',
          // The external PostgreSQL of "Using an external PostgreSQL" (createdb reads these).
          PGHOST: admin.hostname,
          PGPORT: admin.port || '5432',
          PGUSER: decodeURIComponent(admin.username),
          PGPASSWORD: decodeURIComponent(admin.password),
          PGDATABASE: 'postgres',
        },
      });
      shell = new Shell(bash);
      await shell.run(PREAMBLE, dir);
    }, 300_000);

    afterAll(async () => {
      const pidFile = path.join(dir ?? '', 'server.pid');
      if (dir && existsSync(pidFile)) {
        const pid = Number(readFileSync(pidFile, 'utf8'));
        try {
          process.kill(pid, 'SIGTERM');
          for (let i = 0; i < 200; i++) {
            process.kill(pid, 0);
            await new Promise((r) => setTimeout(r, 100));
          }
        } catch {
          // gone
        }
      }
      bash?.stdin.end();
      bash?.kill();
      await adminQuery(`DROP DATABASE IF EXISTS "${externalDb}" WITH (FORCE)`).catch(() => undefined);
      if (dir) await rm(dir, { recursive: true, force: true });
      for (const entry of readdirSync(ROOT)) {
        if (created && !created.has(entry)) await rm(path.join(ROOT, entry), { recursive: true, force: true });
      }
    }, 60_000);

    it('runs every command block and shows what it prints', async () => {
      const problems: string[] = [];
      const rewrite = (text: string) =>
        rewrites(port, externalDb).reduce((t, [pattern, replacement]) => t.replace(pattern, replacement), text);
      const skipped: string[] = [];
      for (const [i, block] of blocks.entries()) {
        if (block.lang !== 'sh') continue;
        // Tools a README command uses that a fresh machine may lack (.ci/run installs them).
        const absent = TOOLS.filter((t) => new RegExp(`(^|[\\s|(])${t}\\b`, 'm').test(block.text) && !available(t));
        if (absent.length) {
          skipped.push(`README line ${block.line} (needs ${absent.join(', ')}; apt-get install ${absent.join(' ')})`);
          continue;
        }
        // A person types commands seconds apart: the log integrator signs new entries meanwhile.
        await new Promise((r) => setTimeout(r, 700));
        const { stdout, stderr, failed } = await shell.run(rewrite(block.text), dir);
        const where = `README line ${block.line}`;
        for (const f of failed) problems.push(`${where}: ${f}\n${stderr.slice(-1500)}`);
        const output = outputOf(blocks, i);
        if (output?.lang === 'json') {
          let actual: unknown[];
          try {
            actual = parseJsonSequence(stdout);
          } catch {
            problems.push(`${where}: the output is not JSON:\n${stdout.slice(0, 1500)}`);
            continue;
          }
          const shown = parseJsonSequence(rewrite(output.text));
          if (!matches(shown, actual)) {
            problems.push(
              `${where}: printed\n${JSON.stringify(actual)}\nthe README (line ${output.line}) shows\n${JSON.stringify(shown)}`,
            );
          }
        } else {
          if (output?.lang === 'text') {
            const missing = linesAppear(rewrite(output.text), stdout);
            if (missing !== null) problems.push(`${where}: no line like "${missing}" in\n${stdout.slice(0, 3000)}`);
          }
          if (/"errors":\s*\[/.test(stdout))
            problems.push(`${where}: an error the README does not show:\n${stdout.slice(0, 1500)}`);
        }
      }
      if (skipped.length) console.warn(`README blocks not run, for want of a tool:\n  ${skipped.join('\n  ')}`);
      expect(problems).toEqual([]);
    }, 600_000);

    it('names only scripts that exist, and each answers --help', async () => {
      const named = new Set([...prose.matchAll(/`npm run (?:-s )?([\w:-]+)/g)].map((m) => m[1]));
      expect(named.size).toBeGreaterThan(5);
      const problems: string[] = [];
      for (const script of named) {
        if (!SCRIPTS[script]) {
          problems.push(`npm run ${script}: no such script`);
          continue;
        }
        // Tools' own scripts (tsc, eslint, prettier, jest) have their own help; ours must answer it.
        if (!/node dist\//.test(SCRIPTS[script])) continue;
        const { stdout, failed } = await shell.run(`npm run ${script} -- --help`, dir);
        if (failed.length || !stdout.trim()) {
          problems.push(`npm run ${script} -- --help: ${failed.join('; ')}\n${stdout.slice(0, 300)}`);
        }
      }
      expect(problems).toEqual([]);
    }, 300_000);
  });
});
