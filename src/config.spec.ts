import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, parseConfig, readDotenv, secretsInDataDir } from './config';

describe('parseConfig', () => {
  it('has defaults a newcomer can run with', () => {
    const c = parseConfig({}, '/srv/tt');
    expect(c).toMatchObject({
      nodeEnv: 'development',
      databaseUrl: undefined,
      dataDir: '/srv/tt/.tradetrail/pgdata',
      embeddedPgPort: 54329,
      host: '127.0.0.1',
      port: 4000,
      demoData: 'auto',
      queryPage: true,
      dbPoolMax: 10,
      logLevel: 'info',
    });
  });

  it('turns the query page off by default in production', () => {
    expect(parseConfig({ NODE_ENV: 'production' }).queryPage).toBe(false);
    expect(parseConfig({ NODE_ENV: 'production', TRADETRAIL_QUERY_PAGE: 'true' }).queryPage).toBe(true);
  });

  it.each([
    [{ PORT: 'forty' }, /PORT must be a whole number from 0 to 65535; got "forty"/],
    [{ PORT: '70000' }, /PORT must be a whole number/],
    [{ TRADETRAIL_DB_POOL_MAX: '0' }, /TRADETRAIL_DB_POOL_MAX must be a whole number from 1/],
    [{ DATABASE_URL: 'not a url' }, /DATABASE_URL must be a URL/],
    [{ DATABASE_URL: 'mysql://x@y/z' }, /must start with postgres:\/\//],
    [{ TRADETRAIL_DEMO_DATA: 'yes' }, /TRADETRAIL_DEMO_DATA must be one of auto, on, off/],
    [{ NODE_ENV: 'prod' }, /NODE_ENV must be one of development, production, test/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL must be one of/],
    [{ TRADETRAIL_DEMO: 'off' }, /Unknown setting TRADETRAIL_DEMO; Tradetrail reads TRADETRAIL_DATA_DIR/],
  ])('refuses %p with a message naming the variable', (env, message) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(message);
  });
});

describe('.env', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'tradetrail-dotenv-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (text: string) => writeFileSync(path.join(dir, '.env'), text);

  it('fills in the names the environment does not set; the environment wins, even with an empty value', () => {
    write(
      '\uFEFF# comment\nPORT=4100\nexport HOST = 0.0.0.0\nDATABASE_URL=postgres://a@b/c\n' +
        'TRADETRAIL_LOG_SIGNING_KEY="-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----"  # a PEM\n\n' +
        "TRADETRAIL_LOG_ORIGIN='example.com/log'\n",
    );
    const read = readDotenv(dir, { PORT: '4200', DATABASE_URL: '' });
    expect(read).toEqual({
      file: path.join(dir, '.env'),
      values: {
        HOST: '0.0.0.0',
        TRADETRAIL_LOG_SIGNING_KEY: '-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----',
        TRADETRAIL_LOG_ORIGIN: 'example.com/log',
      },
    });
    expect(parseConfig({ PORT: '4200', DATABASE_URL: '', ...read!.values })).toMatchObject({
      port: 4200,
      host: '0.0.0.0',
      databaseUrl: undefined,
      logOrigin: 'example.com/log',
    });
  });

  it('is optional', () => {
    expect(readDotenv(dir, {})).toBeUndefined();
  });

  it.each([
    [
      'PORT=4000\nthis is not a setting\n',
      /line 2: expected NAME=value, a # comment or a blank line; got a line starting "this"$/,
    ],
    ['PORT\n', /line 1: expected NAME=value/],
    ['1PORT=4000\n', /line 1: expected NAME=value/],
    ['A="open\nB=1\n', /line 1: the value of A opens a " quote that is never closed/],
    ['A="x\\"y"\n', /line 1: text after the closing " of A's value \(a quote inside a value cannot be escaped\)$/],
    ["A='one\ntwo' three\n", /line 2: text after the closing ' of A's value/],
  ])('refuses a malformed file %p, naming the file and the line', (text, message) => {
    write(text);
    expect(() => readDotenv(dir, {})).toThrow(ConfigError);
    expect(() => readDotenv(dir, {})).toThrow(message);
    expect(() => readDotenv(dir, {})).toThrow(path.join(dir, '.env'));
  });
});

describe('secretsInDataDir', () => {
  const kept = (env: Record<string, string>) => secretsInDataDir(parseConfig(env)).map((k) => k.secret);

  it('names the secrets npm start generates next to the data in production on the embedded database', () => {
    expect(kept({ NODE_ENV: 'production' })).toEqual(['the token signing secret', 'the log signing key']);
    expect(secretsInDataDir(parseConfig({ NODE_ENV: 'production' })).map((k) => k.instead)).toEqual([
      expect.stringMatching(/^TRADETRAIL_JWT_SECRET .*TRADETRAIL_JWT_PUBLIC_KEY/),
      expect.stringMatching(/^TRADETRAIL_LOG_SIGNING_KEY/),
    ]);
    expect(kept({ NODE_ENV: 'production', TRADETRAIL_JWT_SECRET: 'x'.repeat(32) })).toEqual(['the log signing key']);
    expect(kept({ NODE_ENV: 'production', TRADETRAIL_JWT_JWKS_FILE: '/etc/jwks.json' })).toEqual([
      'the log signing key',
    ]);
    expect(kept({ NODE_ENV: 'production', TRADETRAIL_LOG_SIGNING_KEY: '/etc/log.pem' })).toEqual([
      'the token signing secret',
    ]);
  });

  it('is empty outside production, with DATABASE_URL, or with both secrets configured', () => {
    expect(kept({})).toEqual([]);
    expect(kept({ NODE_ENV: 'production', DATABASE_URL: 'postgres://a@b/c' })).toEqual([]);
    expect(
      kept({
        NODE_ENV: 'production',
        TRADETRAIL_JWT_PUBLIC_KEY: '/etc/jwt.pem',
        TRADETRAIL_LOG_SIGNING_KEY: '/etc/log.pem',
      }),
    ).toEqual([]);
  });
});
