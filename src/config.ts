import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseEnv } from 'node:util';

/**
 * Every setting Tradetrail reads from the environment, read and validated once.
 * Nothing else in the code base reads `process.env`.
 */
export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  /** External PostgreSQL; when absent an embedded server is started. */
  databaseUrl: string | undefined;
  /** Data directory of the embedded PostgreSQL. */
  dataDir: string;
  /** TCP port of the embedded PostgreSQL (it listens on 127.0.0.1 only). */
  embeddedPgPort: number;
  /** Maximum connections in the application's pool. */
  dbPoolMax: number;
  host: string;
  port: number;
  /** `auto`: load the demo set into an empty embedded database; `on`: into any empty database; `off`: never. */
  demoData: 'auto' | 'on' | 'off';
  /** Serve the offline query page at `/` and `GET /graphql`. */
  queryPage: boolean;
  /** Log every SQL statement (development aid). */
  logSql: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** `required` (default) or `disabled` (development only: every request is an admin). */
  auth: 'required' | 'disabled';
  /** HS256 secret; with neither key set, `npm start` on the embedded database creates one in the data directory. */
  jwtSecret: string | undefined;
  /** RS256/ES256 public key (PEM text, or a path to a PEM file). */
  jwtPublicKey: string | undefined;
  /** A JWKS JSON file with the public keys tokens are signed with. */
  jwtJwksFile: string | undefined;
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  /** GraphQL introspection (default: on, except when NODE_ENV=production). */
  introspection: boolean;
  maxDepth: number;
  maxCost: number;
  maxAliases: number;
  maxTokens: number;
  /** statement_timeout of every request's transaction, in milliseconds. */
  statementTimeoutMs: number;
  /**
   * Contract multipliers by symbol (cost and PnL are multiplied by them). Symbols not listed: 100 for
   * a US equity option named by its OCC symbol, else 1.
   */
  contractMultipliers: Readonly<Record<string, string>>;
  /**
   * The Ed25519 key that signs checkpoints and seals log entries (PKCS#8 PEM text, or a path to a PEM
   * file). Required with DATABASE_URL; on the embedded database one is created in the data directory.
   */
  logSigningKey: string | undefined;
  /** The log's name in its checkpoints (the signed note's origin line and key name). */
  logOrigin: string;
  /** How often this process integrates new log entries into the tree and signs a checkpoint; 0: never. */
  logIntegrationMs: number;
  /** An append-only file every new checkpoint is also written to (one signed note per block). */
  checkpointFile: string | undefined;
  /** Minutes between scheduled data-quality reports (over the whole history); 0 (default): never. */
  dataQualityMinutes: number;
  /** A scheduled report with more issues than this logs a warning naming the counts. */
  dataQualityAlertThreshold: number;
  /** Minutes between scheduled reconciliations with the safe fixes applied; 0 (default): never. */
  reconcileMinutes: number;
  /** Books a scheduled reconciliation fixes at most per run. */
  reconcileMaxFixes: number;
  /** Serve Prometheus metrics at `/metrics` (not behind the GraphQL token). */
  metrics: boolean;
  /**
   * Serve `/metrics` on a listener of its own (on `metricsHost`), not on the GraphQL port; undefined:
   * on the GraphQL port.
   */
  metricsPort: number | undefined;
  metricsHost: string;
  /** One JSON log line per HTTP request (request id, operation, role, duration, error code). */
  requestLog: boolean;
  /** On SIGTERM/SIGINT, how long in-flight requests may take to finish before they are cut off. */
  shutdownTimeoutMs: number;
  /** Apply pending migrations at start (under an advisory lock); off: `npm run migrate` does it. */
  migrateOnStart: boolean;
  /**
   * Named prepared statements for the hot write statements. Off behind a pooler that cannot track
   * them (PgBouncer before 1.21 in transaction mode).
   */
  preparedStatements: boolean;
  /**
   * How long (ms) a read-only request's connection keeps its finished transaction's COMMIT for the next
   * request to send ahead of its own (one round trip fewer per read); 0: every read commits on its own.
   */
  readCommitDelayMs: number;
  /**
   * The connection that LISTENs for other processes' commits (subscriptions); it needs a session of
   * its own, so point it past a transaction-mode pooler. Default: the database's URL.
   */
  listenUrl: string | undefined;
  /**
   * Notifications (one statement's changes to one table: up to ~150 ids) queued for one subscription
   * before its subscriber is dropped as too slow (1008).
   */
  subscriptionQueue: number;
}

const ENV_NAMES = [
  'NODE_ENV',
  'DATABASE_URL',
  'TRADETRAIL_DATA_DIR',
  'TRADETRAIL_PG_PORT',
  'TRADETRAIL_DB_POOL_MAX',
  'HOST',
  'PORT',
  'TRADETRAIL_DEMO_DATA',
  'TRADETRAIL_QUERY_PAGE',
  'TRADETRAIL_LOG_SQL',
  'LOG_LEVEL',
  'TRADETRAIL_AUTH',
  'TRADETRAIL_JWT_SECRET',
  'TRADETRAIL_JWT_PUBLIC_KEY',
  'TRADETRAIL_JWT_JWKS_FILE',
  'TRADETRAIL_JWT_ISSUER',
  'TRADETRAIL_JWT_AUDIENCE',
  'TRADETRAIL_INTROSPECTION',
  'TRADETRAIL_MAX_DEPTH',
  'TRADETRAIL_MAX_COST',
  'TRADETRAIL_MAX_ALIASES',
  'TRADETRAIL_MAX_TOKENS',
  'TRADETRAIL_STATEMENT_TIMEOUT_MS',
  'TRADETRAIL_CONTRACT_MULTIPLIERS',
  'TRADETRAIL_LOG_SIGNING_KEY',
  'TRADETRAIL_LOG_ORIGIN',
  'TRADETRAIL_LOG_INTEGRATION_MS',
  'TRADETRAIL_CHECKPOINT_FILE',
  'TRADETRAIL_DATA_QUALITY_MINUTES',
  'TRADETRAIL_DATA_QUALITY_ALERT_THRESHOLD',
  'TRADETRAIL_RECONCILE_MINUTES',
  'TRADETRAIL_RECONCILE_MAX_FIXES',
  'TRADETRAIL_METRICS',
  'TRADETRAIL_METRICS_PORT',
  'TRADETRAIL_METRICS_HOST',
  'TRADETRAIL_REQUEST_LOG',
  'TRADETRAIL_SHUTDOWN_TIMEOUT_MS',
  'TRADETRAIL_MIGRATE_ON_START',
  'TRADETRAIL_PREPARED_STATEMENTS',
  'TRADETRAIL_READ_COMMIT_DELAY_MS',
  'TRADETRAIL_LISTEN_URL',
  'TRADETRAIL_SUBSCRIPTION_QUEUE',
] as const;
type EnvName = (typeof ENV_NAMES)[number];
type Env = Partial<Record<EnvName, string>> & Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function intIn(env: Env, name: EnvName, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}; got "${raw}".`);
  }
  return Number(raw);
}

function oneOf<T extends string>(env: Env, name: EnvName, allowed: readonly T[], fallback: T): T {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new ConfigError(`${name} must be one of ${allowed.join(', ')}; got "${raw}".`);
  }
  return raw as T;
}

function bool(env: Env, name: EnvName, fallback: boolean): boolean {
  return oneOf(env, name, ['true', 'false', '1', '0'], fallback ? 'true' : 'false').match(/^(true|1)$/) !== null;
}

/** Parses and validates a whole environment; throws one `ConfigError` naming the first bad variable. */
export function parseConfig(env: Env, cwd = process.cwd()): Config {
  if (env.TRADETRAIL_AUTH === 'disabled' && env.NODE_ENV === 'production') {
    throw new ConfigError(
      'TRADETRAIL_AUTH=disabled is refused with NODE_ENV=production: a production server always checks tokens.',
    );
  }
  if (env.TRADETRAIL_JWT_SECRET && env.TRADETRAIL_JWT_SECRET.length < 32) {
    throw new ConfigError('TRADETRAIL_JWT_SECRET must be at least 32 characters (HS256 needs 256 bits of key).');
  }
  if (
    [env.TRADETRAIL_JWT_SECRET, env.TRADETRAIL_JWT_PUBLIC_KEY, env.TRADETRAIL_JWT_JWKS_FILE].filter(Boolean).length > 1
  ) {
    throw new ConfigError(
      'Set only one of TRADETRAIL_JWT_SECRET, TRADETRAIL_JWT_PUBLIC_KEY and TRADETRAIL_JWT_JWKS_FILE.',
    );
  }
  // A misspelt setting would otherwise be ignored without a word.
  const known: readonly string[] = ENV_NAMES;
  const unknown = Object.keys(env).filter(
    (k) => k.startsWith('TRADETRAIL_') && !k.startsWith('TRADETRAIL_TEST_') && !known.includes(k),
  );
  if (unknown.length) {
    throw new ConfigError(
      `Unknown setting ${unknown.join(', ')}; Tradetrail reads ${known.filter((k) => k.startsWith('TRADETRAIL_')).join(', ')}.`,
    );
  }
  const nodeEnv = oneOf(env, 'NODE_ENV', ['development', 'production', 'test'], 'development');
  const databaseUrl = postgresUrl(env, 'DATABASE_URL');
  return {
    nodeEnv,
    databaseUrl,
    dataDir: path.resolve(cwd, env.TRADETRAIL_DATA_DIR || '.tradetrail/pgdata'),
    embeddedPgPort: intIn(env, 'TRADETRAIL_PG_PORT', 54329, 1024, 65535),
    dbPoolMax: intIn(env, 'TRADETRAIL_DB_POOL_MAX', 10, 1, 1000),
    host: env.HOST || '127.0.0.1',
    port: intIn(env, 'PORT', 4000, 0, 65535),
    demoData: oneOf(env, 'TRADETRAIL_DEMO_DATA', ['auto', 'on', 'off'], 'auto'),
    queryPage: bool(env, 'TRADETRAIL_QUERY_PAGE', nodeEnv !== 'production'),
    logSql: bool(env, 'TRADETRAIL_LOG_SQL', false),
    logLevel: oneOf(
      env,
      'LOG_LEVEL',
      ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      nodeEnv === 'test' ? 'warn' : 'info',
    ),
    auth: oneOf(env, 'TRADETRAIL_AUTH', ['required', 'disabled'], 'required'),
    jwtSecret: env.TRADETRAIL_JWT_SECRET || undefined,
    jwtPublicKey: env.TRADETRAIL_JWT_PUBLIC_KEY || undefined,
    jwtJwksFile: env.TRADETRAIL_JWT_JWKS_FILE || undefined,
    jwtIssuer: env.TRADETRAIL_JWT_ISSUER || undefined,
    jwtAudience: env.TRADETRAIL_JWT_AUDIENCE || undefined,
    introspection: bool(env, 'TRADETRAIL_INTROSPECTION', nodeEnv !== 'production'),
    maxDepth: intIn(env, 'TRADETRAIL_MAX_DEPTH', 12, 2, 100),
    maxCost: intIn(env, 'TRADETRAIL_MAX_COST', 200_000, 10, 100_000_000),
    maxAliases: intIn(env, 'TRADETRAIL_MAX_ALIASES', 15, 1, 1000),
    maxTokens: intIn(env, 'TRADETRAIL_MAX_TOKENS', 5000, 100, 1_000_000),
    statementTimeoutMs: intIn(env, 'TRADETRAIL_STATEMENT_TIMEOUT_MS', 10_000, 100, 3_600_000),
    contractMultipliers: multipliers(env.TRADETRAIL_CONTRACT_MULTIPLIERS),
    logSigningKey: env.TRADETRAIL_LOG_SIGNING_KEY || undefined,
    logOrigin: logOrigin(env.TRADETRAIL_LOG_ORIGIN),
    logIntegrationMs: intIn(env, 'TRADETRAIL_LOG_INTEGRATION_MS', 250, 0, 60_000),
    checkpointFile: env.TRADETRAIL_CHECKPOINT_FILE ? path.resolve(cwd, env.TRADETRAIL_CHECKPOINT_FILE) : undefined,
    dataQualityMinutes: intIn(env, 'TRADETRAIL_DATA_QUALITY_MINUTES', 0, 0, 10_080),
    dataQualityAlertThreshold: intIn(env, 'TRADETRAIL_DATA_QUALITY_ALERT_THRESHOLD', 0, 0, 100_000_000),
    reconcileMinutes: intIn(env, 'TRADETRAIL_RECONCILE_MINUTES', 0, 0, 10_080),
    reconcileMaxFixes: intIn(env, 'TRADETRAIL_RECONCILE_MAX_FIXES', 1000, 1, 100_000),
    metrics: bool(env, 'TRADETRAIL_METRICS', true),
    metricsPort: env.TRADETRAIL_METRICS_PORT ? intIn(env, 'TRADETRAIL_METRICS_PORT', 0, 0, 65535) : undefined,
    metricsHost: env.TRADETRAIL_METRICS_HOST || '127.0.0.1',
    requestLog: bool(env, 'TRADETRAIL_REQUEST_LOG', true),
    shutdownTimeoutMs: intIn(env, 'TRADETRAIL_SHUTDOWN_TIMEOUT_MS', 10_000, 0, 600_000),
    migrateOnStart: bool(env, 'TRADETRAIL_MIGRATE_ON_START', true),
    preparedStatements: bool(env, 'TRADETRAIL_PREPARED_STATEMENTS', true),
    readCommitDelayMs: intIn(env, 'TRADETRAIL_READ_COMMIT_DELAY_MS', 10, 0, 1000),
    listenUrl: postgresUrl(env, 'TRADETRAIL_LISTEN_URL'),
    subscriptionQueue: intIn(env, 'TRADETRAIL_SUBSCRIPTION_QUEUE', 1000, 10, 100_000),
  };
}

/** A PostgreSQL connection URL setting (unset or empty: undefined). */
function postgresUrl(env: Env, name: 'DATABASE_URL' | 'TRADETRAIL_LISTEN_URL'): string | undefined {
  const value = env[name] || undefined;
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be a URL such as postgres://user:password@host:5432/dbname.`);
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(`${name} must start with postgres:// or postgresql://; got "${url.protocol}//".`);
  }
  return value;
}

/** A signed note's key name: printable ASCII without spaces or '+' (C2SP signed-note). */
export const LOG_ORIGIN = /^[\x21-\x2a\x2c-\x7e]{1,128}$/;

function logOrigin(value: string | undefined): string {
  const origin = value || 'tradetrail';
  if (!LOG_ORIGIN.test(origin)) {
    throw new ConfigError(
      `TRADETRAIL_LOG_ORIGIN must be 1 to 128 printable ASCII characters without spaces or "+"; got "${origin}".`,
    );
  }
  return origin;
}

/** `ES=50,NQ=20,SPY240426C00555000=100`: symbol=multiplier pairs, each multiplier a positive number. */
function multipliers(value: string | undefined): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const match = /^([^=\s]{1,64})=(\d{1,12}(?:\.\d{1,9})?)$/.exec(pair);
    if (!match || !/[1-9]/.test(match[2])) {
      throw new ConfigError(
        `TRADETRAIL_CONTRACT_MULTIPLIERS must be SYMBOL=MULTIPLIER pairs separated by commas (e.g. "ES=50,NQ=20"), each multiplier positive; "${pair}" is not.`,
      );
    }
    result[match[1]] = match[2];
  }
  return result;
}

/**
 * The settings of the `.env` file in `cwd` that `env` does not set: a variable of the environment
 * wins over the file, as with Node's own loader (`node --env-file`, `process.loadEnvFile`), even when
 * it is set to an empty value. Undefined when there is no such file. The file is parsed by Node
 * (`util.parseEnv`), after a check that it holds only `NAME=value` lines (quoted values may span
 * lines), `#` comments and blank lines: Node would skip anything else without a word.
 */
export function readDotenv(cwd: string, env: Env): { file: string; values: Record<string, string> } | undefined {
  const file = path.join(cwd, '.env');
  if (!existsSync(file)) return undefined;
  let text: string;
  try {
    text = readFileSync(file, 'utf8').replace(/^\uFEFF/, '');
  } catch (error) {
    throw new ConfigError(`cannot read ${file}: ${(error as Error).message}`);
  }
  const problem = dotenvProblem(text);
  if (problem) throw new ConfigError(`${file} ${problem}`);
  const values: Record<string, string> = {};
  for (const [name, value] of Object.entries(parseEnv(text))) {
    if (env[name] === undefined && value !== undefined) values[name] = value;
  }
  return { file, values };
}

/** The first line of a `.env` text that is not a `NAME=value` line, a comment or blank; undefined if none. */
export function dotenvProblem(text: string): string | undefined {
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    // Only the line's first word is shown: the rest may be a secret.
    if (!m) {
      const start = JSON.stringify(line.split(/[\s=]/)[0].slice(0, 40));
      return `line ${i + 1}: expected NAME=value, a # comment or a blank line; got a line starting ${start}`;
    }
    const quote = m[2][0];
    if (quote !== '"' && quote !== "'" && quote !== '`') continue;
    // A quoted value ends at the next quote of its kind, on this line or a later one.
    let rest = m[2].slice(1);
    let j = i;
    while (!rest.includes(quote)) {
      if (++j === lines.length)
        return `line ${i + 1}: the value of ${m[1]} opens a ${quote} quote that is never closed`;
      rest = lines[j];
    }
    const after = rest.slice(rest.indexOf(quote) + 1).trim();
    if (after && !after.startsWith('#')) {
      return `line ${j + 1}: text after the closing ${quote} of ${m[1]}'s value (a quote inside a value cannot be escaped)`;
    }
    i = j;
  }
  return undefined;
}

/** A secret `npm start` generated into the embedded data directory. */
export interface KeptSecret {
  secret: string;
  /** What whoever reads the data directory (or a backup of it) can do with it. */
  risk: string;
  /** The settings that keep it elsewhere. */
  instead: string;
}

/**
 * The secrets `npm start` keeps in the embedded data directory, next to the data, when it runs with
 * NODE_ENV=production and no DATABASE_URL. Empty otherwise.
 */
export function secretsInDataDir(cfg: Config): KeptSecret[] {
  if (cfg.nodeEnv !== 'production' || cfg.databaseUrl) return [];
  const kept: KeptSecret[] = [];
  if (cfg.auth === 'required' && !cfg.jwtSecret && !cfg.jwtPublicKey && !cfg.jwtJwksFile) {
    kept.push({
      secret: 'the token signing secret',
      risk: 'mint a token for any role',
      instead: 'TRADETRAIL_JWT_SECRET (or TRADETRAIL_JWT_PUBLIC_KEY / TRADETRAIL_JWT_JWKS_FILE)',
    });
  }
  if (!cfg.logSigningKey) {
    kept.push({
      secret: 'the log signing key',
      risk: 'sign checkpoints and seal log entries',
      instead: 'TRADETRAIL_LOG_SIGNING_KEY (npm run log:keygen -- --out FILE)',
    });
  }
  return kept;
}

let cached: Config | undefined;

/**
 * The process's configuration, read on first use from `process.env` and the `.env` file of the
 * working directory (the environment wins; the file fills in the names it does not set, so that
 * libraries that read `NODE_ENV` see the same value). The file is not read when the environment
 * says NODE_ENV=test: tests do not depend on a developer's `.env`. A bad setting stops the process
 * with one clear message (no stack trace): nothing can run on a wrong configuration.
 */
export function config(): Config {
  if (!cached) {
    let dotenv: ReturnType<typeof readDotenv>;
    try {
      dotenv = process.env.NODE_ENV === 'test' ? undefined : readDotenv(process.cwd(), process.env as Env);
      Object.assign(process.env, dotenv?.values);
      cached = parseConfig(process.env as Env);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      // A bad value the file brought in is named as coming from it.
      const fromFile = Object.keys(dotenv?.values ?? {}).some((name) =>
        new RegExp(`\\b${name}\\b`).test(error.message),
      );
      console.error(
        `Configuration error: ${fromFile ? `${error.message.replace(/\.$/, '')} (set in ${dotenv!.file}).` : error.message}`,
      );
      process.exit(1);
    }
  }
  return cached;
}
