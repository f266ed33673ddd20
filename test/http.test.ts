import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { parseConfig } from '../src/config';
import { createVerifier, mintToken } from '../src/auth';
import { IDE_CSP } from '../src/http/ide';
import { createTestDatabase, type ListeningApp, listenApp } from './harness';

let base: string;
let app: ListeningApp;
let ds: DataSource;
let drop: () => Promise<void>;
let adminToken: string;
const SECRET = 'an-http-test-secret-of-at-least-32-characters';

beforeAll(async () => {
  const db = await createTestDatabase();
  drop = db.drop;
  ds = new DataSource(dataSourceOptions(db.url, 2, false));
  await ds.initialize();
  const cfg = parseConfig({ NODE_ENV: 'test', TRADETRAIL_QUERY_PAGE: 'true' });
  app = await listenApp(ds, cfg, createVerifier(cfg, SECRET));
  adminToken = await mintToken(SECRET, { sub: 'http-test', role: 'admin' });
  base = app.base;
});
afterAll(async () => {
  await app?.close();
  await ds?.destroy();
  await drop?.();
});

const post = (body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${adminToken}`, ...headers },
    body,
  });

describe('HTTP', () => {
  it('serves GraphQL over POST', async () => {
    const res = await post(JSON.stringify({ query: '{ traders { totalCount } }' }));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ data: { traders: { totalCount: 0 } } });
  });

  it('serves the GraphQL IDE and every file it loads itself, under a same-origin Content-Security-Policy', async () => {
    const assets = new Set<string>();
    for (const [url, headers] of [
      [`${base}/`, {}],
      [`${base}/graphql`, { accept: 'text/html' }],
    ] as const) {
      const res = await fetch(url, { headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/html/);
      expect(res.headers.get('content-security-policy')).toBe(IDE_CSP);
      const html = await res.text();
      expect(html).toContain('<title>Tradetrail GraphQL</title>');
      expect(html).toContain('query PositionAuditTrail');
      expect(html).toContain('npm run -s token -- --role compliance');
      // Nothing inline that the policy would refuse: scripts are files, the one inline block is data.
      for (const [, attributes] of html.matchAll(/<script\b([^>]*)>/g)) {
        expect(attributes).toMatch(/\ssrc="\/ide\/[\w.-]+"|\stype="application\/json"/);
      }
      expect(html).not.toMatch(/<style|\son[a-z]+=/);
      for (const [, ref] of html.matchAll(/(?:src|href)="([^"]*)"/g)) {
        if (ref !== 'data:,') assets.add(ref);
      }
    }
    expect([...assets].sort()).toEqual([
      '/ide/graphiql.min.css',
      '/ide/graphiql.min.js',
      '/ide/ide.css',
      '/ide/ide.js',
      '/ide/react-dom.production.min.js',
      '/ide/react.production.min.js',
    ]);
    for (const asset of assets) {
      const res = await fetch(`${base}${asset}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(asset.endsWith('.css') ? /text\/css/ : /javascript/);
      const text = await res.text();
      // Stylesheets import nothing and take fonts and images from data: URLs only.
      if (asset.endsWith('.css')) {
        expect(text).not.toMatch(/@import/);
        const urls = [...text.matchAll(/url\(\s*["']?([^"')]{0,40})/g)].map((m) => m[1]);
        expect(urls.filter((url) => !url.startsWith('data:'))).toEqual([]);
      }
    }
    expect((await fetch(`${base}/ide/package.json`)).status).toBe(404);
    expect((await fetch(`${base}/ide/..%2fpackage.json`)).status).toBe(404);
    // A GraphQL client's GET still reaches Apollo.
    const apollo = await fetch(`${base}/graphql`, { headers: { accept: 'application/json' } });
    expect(apollo.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('blocks cross-site GET requests (CSRF prevention) and accepts them with a preflight header', async () => {
    const q = encodeURIComponent('{ traders { totalCount } }');
    const blocked = await fetch(`${base}/graphql?query=${q}`);
    expect(blocked.status).toBe(400);
    expect(await blocked.text()).toMatch(/CSRF/);
    const allowed = await fetch(`${base}/graphql?query=${q}`, {
      headers: { 'apollo-require-preflight': 'true', authorization: `Bearer ${adminToken}` },
    });
    expect(allowed.status).toBe(200);
  });

  it('refuses bodies over 1 MB with 413 and malformed JSON with 400', async () => {
    const big = await post(
      JSON.stringify({ query: `{ traders { totalCount } }`, variables: { pad: 'x'.repeat(1_100_000) } }),
    );
    expect(big.status).toBe(413);
    expect(await big.json()).toEqual({
      errors: [{ message: 'The request body is larger than 1 MB.', extensions: { code: 'BAD_REQUEST' } }],
    });
    const bad = await post('{"query": ');
    expect(bad.status).toBe(400);
    const text = await bad.text();
    expect(JSON.parse(text).errors[0].message).toBe('The request body is not valid JSON.');
    expect(text).not.toMatch(/node_modules|at /);
  });

  it('reports health with the database state', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok', database: 'up' });
  });
});
