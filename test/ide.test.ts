import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../ormconfig';
import { createVerifier, mintToken } from '../src/auth';
import { parseConfig } from '../src/config';
import { loadDemoData } from '../src/demo-data';
import { createTestDatabase, type ListeningApp, listenApp } from './harness';

/**
 * The GraphQL IDE in a real headless Chromium (Debian's package, driven by playwright-core; no
 * browser is downloaded): a token, the preloaded example, the schema docs, history, and not one
 * request outside the test server.
 */
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `test/ide.test.ts is skipped: no Chromium at ${CHROMIUM}. Install it with \`apt-get install chromium\` ` +
      '(Debian) or point CHROMIUM_PATH at a Chromium or Chrome binary.',
  );
}

const EXAMPLES = path.join(__dirname, '..', 'examples');
const EXPECTED = JSON.parse(readFileSync(path.join(EXAMPLES, 'position-audit-trail.result.json'), 'utf8'));
const SECRET = 'an-ide-test-secret-of-at-least-32-characters';
const STEP = { timeout: 30_000 };
// Without the background-networking flags Chromium reaches out to Google's services by itself.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let base: string;
let app: ListeningApp;
let ds: DataSource;
let drop: () => Promise<void>;
let browser: Browser;
let complianceToken: string;

/** What the page's functions see: a CodeMirror 5 editor's element holds the editor. */
type CodeMirrorElement = { CodeMirror?: { getValue(): string } };
type BrowserGlobals = { document: { querySelector(selector: string): unknown } };

/** The text of one of GraphiQL's editors (its DOM shows only the lines in view). */
function editorText(page: Page, selector: string): Promise<string> {
  return page.$eval(`${selector} .CodeMirror`, (el) => (el as unknown as CodeMirrorElement).CodeMirror!.getValue());
}

/** The token field's verdict once the schema request has been answered. */
async function tokenStatus(page: Page): Promise<string> {
  await page.waitForSelector('#tt-status.tt-ok, #tt-status.tt-error', STEP);
  return (await page.textContent('#tt-status')) ?? '';
}

/** The response editor's text, once it contains `contains`. */
async function waitForResponse(page: Page, contains: string): Promise<string> {
  await page.waitForFunction(
    (text) => {
      const { document } = globalThis as unknown as BrowserGlobals;
      const el = document.querySelector('.graphiql-response .CodeMirror') as CodeMirrorElement | null;
      return el?.CodeMirror?.getValue().includes(text) ?? false;
    },
    contains,
    STEP,
  );
  return editorText(page, '.graphiql-response');
}

const describeWithChromium = haveChromium ? describe : describe.skip;

describeWithChromium('GraphQL IDE in a headless browser', () => {
  beforeAll(async () => {
    const db = await createTestDatabase();
    drop = db.drop;
    ds = new DataSource(dataSourceOptions(db.url, 2, false));
    await ds.initialize();
    await loadDemoData(ds);
    const cfg = parseConfig({ NODE_ENV: 'test', TRADETRAIL_QUERY_PAGE: 'true' });
    app = await listenApp(ds, cfg, createVerifier(cfg, SECRET));
    complianceToken = await mintToken(SECRET, { sub: 'ide-test', role: 'compliance' });
    base = app.base;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await ds?.destroy();
    await drop?.();
  });

  it('runs the preloaded audit-trail query with a pasted token, shows the schema and history, loads nothing from elsewhere', async () => {
    const context: BrowserContext = await browser.newContext();
    const requests: { url: string; method: string; headers: Record<string, string> }[] = [];
    const problems: string[] = [];
    context.on('request', (r) => requests.push({ url: r.url(), method: r.method(), headers: r.headers() }));
    // Failed requests, page errors and console errors (a Content-Security-Policy violation is one),
    // except the HTTP 401 that the refused token below is meant to get.
    context.on('response', (r) => {
      if (r.status() >= 400 && r.status() !== 401) problems.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    const page = await context.newPage();
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401\b/.test(m.text()))
        problems.push(`console: ${m.text().slice(0, 300)}`);
    });
    try {
      await page.goto(`${base}/`, { waitUntil: 'load', ...STEP });
      await page.waitForSelector('.graphiql-query-editor .CodeMirror', STEP);

      // The token field says a token is required and how to get one.
      await expect(page.textContent('label[for="tt-token"]')).resolves.toMatch(/required/);
      await expect(page.textContent('.tt-help')).resolves.toContain('npm run -s token -- --role compliance');
      await expect(page.textContent('.tt-help')).resolves.toContain('--trader');
      await page.waitForSelector('#tt-status:has-text("No token yet")', STEP);

      // The example and its variables are preloaded.
      expect(await editorText(page, '.graphiql-query-editor')).toContain('query PositionAuditTrail');
      expect(JSON.parse(await editorText(page, '.graphiql-editor-tool'))).toEqual(
        JSON.parse(readFileSync(path.join(EXAMPLES, 'position-audit-trail.variables.json'), 'utf8')),
      );

      // Without a token, running says what to do and sends nothing.
      const postsBefore = requests.filter((r) => r.method === 'POST').length;
      await page.click('.graphiql-execute-button', STEP);
      await waitForResponse(page, 'No token');
      expect(requests.filter((r) => r.method === 'POST').length).toBe(postsBefore);

      // A token the server refuses: the field says why.
      await page.fill('#tt-token', 'not-a-token', STEP);
      expect(await tokenStatus(page)).toBe('The token is malformed.');

      // A pasted token (here with its "Bearer " prefix) loads the schema.
      await page.fill('#tt-token', `Bearer ${complianceToken}`, STEP);
      expect(await tokenStatus(page)).toBe('Token accepted: schema loaded.');

      // Ctrl+Enter in the query editor runs the example; the response is the documented result.
      await page.click('.graphiql-query-editor .CodeMirror-lines', STEP);
      await page.keyboard.press('Control+Enter');
      const response = await waitForResponse(page, '"data"');
      expect(JSON.parse(response)).toEqual(EXPECTED);
      await page.waitForSelector('.graphiql-response :text("Alice Chen")', STEP);
      const run = requests.filter((r) => r.method === 'POST' && r.url === `${base}/graphql`).pop()!;
      expect(run.headers['authorization']).toBe(`Bearer ${complianceToken}`);
      expect(run.headers['content-type']).toBe('application/json');

      // The schema is there: the doc explorer lists the root type and its fields.
      await page.click('button[aria-label="Show Documentation Explorer"]', STEP);
      await page.click('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name:text-is("Query")', STEP);
      await page.waitForSelector('.graphiql-doc-explorer-field-name:text-is("position")', STEP);

      // The history has the query that ran.
      await page.click('button[aria-label="Show History"]', STEP);
      await page.waitForSelector('.graphiql-history-item:has-text("PositionAuditTrail")', STEP);

      // A dialog opens without breaking the Content-Security-Policy (it adds a <style> element).
      await page.click('button[aria-label="Open settings dialog"]', STEP);
      await page.waitForSelector('[role="dialog"]:has-text("Clear storage")', STEP);
      await page.keyboard.press('Escape');

      // After a reload the token is still there (sessionStorage) and the schema loads with it; the
      // example is still the one tab, with its variables.
      await page.reload({ waitUntil: 'load', ...STEP });
      expect(await tokenStatus(page)).toBe('Token accepted: schema loaded.');
      expect(await page.inputValue('#tt-token')).toBe(`Bearer ${complianceToken}`);
      expect(await page.locator('.graphiql-tab').count()).toBe(1);
      expect(await editorText(page, '.graphiql-query-editor')).toContain('query PositionAuditTrail');
      expect(await editorText(page, '.graphiql-editor-tool')).toContain('positionId');

      // Autocompletion from the schema, in a new tab.
      await page.click('button[aria-label="New tab"]', STEP);
      await page.click('.graphiql-query-editor .CodeMirror-lines', STEP);
      await page.keyboard.press('Control+A');
      await page.keyboard.type('{ positi');
      await page.waitForSelector('.CodeMirror-hints li:text-is("position")', STEP);

      expect(problems).toEqual([]);
      const elsewhere = requests.map((r) => r.url).filter((url) => new URL(url).origin !== base);
      expect(elsewhere).toEqual([]);
      expect(requests.map((r) => new URL(r.url).pathname)).toEqual(
        expect.arrayContaining(['/', '/ide/graphiql.min.js', '/ide/ide.js', '/graphql']),
      );
    } finally {
      await context.close();
    }
  }, 180_000);
});
