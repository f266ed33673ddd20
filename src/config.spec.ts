import { ConfigError, parseConfig } from './config';

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
