import { existsSync } from 'node:fs';
import path from 'node:path';
import express from 'express';

/**
 * The GraphQL IDE at `/` (and `GET /graphql` from a browser): GraphiQL 4 with its schema docs,
 * autocompletion, history, variables and headers editors, plus a token field above it. Everything it
 * loads is served by this server from installed packages (GraphiQL's UMD build and React 18's UMD
 * files, pinned in package.json), so it works with no internet, and its Content-Security-Policy
 * allows nothing else.
 */
export interface IdeOptions {
  /** The query and variables (JSON text) shown on a first visit. */
  exampleQuery: string;
  exampleVariables: string;
  /** With `disabled`, the page says that the token is ignored instead of required. */
  auth: 'required' | 'disabled';
}

/**
 * The page and its files: same origin only. GraphiQL's CSS embeds its fonts and icons as data: URLs,
 * and its dialogs (settings, short keys: Radix's scroll lock) add a <style> element when they open,
 * hence 'unsafe-inline' for styles, never for scripts. (Checked in Chromium: test/ide.test.ts fails
 * on any violation.)
 */
export const IDE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const ASSET_PREFIX = '/ide/';

/** A file of an installed package (through its package.json: GraphiQL's `exports` hides its UMD files). */
function packageFile(pkg: string, file: string): string {
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
}

/** A file next to this module: beside the .ts source (ts-node, jest), or back in src/ from dist/src/. */
function ownFile(file: string): string {
  const candidates = [path.join(__dirname, file), path.join(__dirname, '..', '..', '..', 'src', 'http', file)];
  const found = candidates.find((candidate) => existsSync(candidate));
  if (!found) throw new Error(`The IDE page's file ${file} is missing (looked in ${candidates.join(', ')}).`);
  return found;
}

/** URL name under /ide/ → file on disk. */
function assets(): Map<string, string> {
  return new Map([
    ['react.production.min.js', packageFile('react', 'umd/react.production.min.js')],
    ['react-dom.production.min.js', packageFile('react-dom', 'umd/react-dom.production.min.js')],
    ['graphiql.min.js', packageFile('graphiql', 'graphiql.min.js')],
    ['graphiql.min.css', packageFile('graphiql', 'graphiql.min.css')],
    // graphiql.min.js names its source map by the name it was built under.
    ['index.umd.js.map', packageFile('graphiql', 'graphiql.min.js.map')],
    ['ide.js', ownFile('ide.browser.js')],
    ['ide.css', ownFile('ide.browser.css')],
  ]);
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** JSON for a `<script type="application/json">` block: no `<` can close it early. */
const scriptJson = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

export function idePage(options: IdeOptions): string {
  const config = {
    endpoint: '/graphql',
    authRequired: options.auth === 'required',
    exampleQuery: options.exampleQuery,
    exampleVariables: options.exampleVariables,
  };
  const help =
    options.auth === 'required'
      ? `Every request needs a token. Get one in a terminal with <code>npm run -s token -- --role compliance</code>
   (or <code>--trader &lt;trader id&gt;</code> for one trader's own data) and paste it here, with or without
   <code>Bearer</code>. It stays in this browser tab (sessionStorage) and is sent as <code>Authorization: Bearer …</code>.`
      : `Authentication is disabled on this server (<code>TRADETRAIL_AUTH=disabled</code>): every request runs
   as an admin and the token is ignored.`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Tradetrail GraphQL</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${ASSET_PREFIX}graphiql.min.css">
<link rel="stylesheet" href="${ASSET_PREFIX}ide.css">
</head>
<body>
<header class="tt-bar">
 <strong class="tt-name">Tradetrail</strong>
 <label for="tt-token">Token <em>${options.auth === 'required' ? 'required' : 'not needed'}</em></label>
 <input id="tt-token" type="text" autocomplete="off" spellcheck="false"
  placeholder="${escapeHtml(options.auth === 'required' ? 'Paste the output of: npm run -s token -- --role compliance' : 'Not needed: authentication is disabled')}">
 <output id="tt-status" for="tt-token" aria-live="polite"></output>
 <p class="tt-help">${help}</p>
</header>
<main id="graphiql"><noscript>This page needs JavaScript.</noscript></main>
<script type="application/json" id="tt-config">${scriptJson(config)}</script>
<script src="${ASSET_PREFIX}react.production.min.js"></script>
<script src="${ASSET_PREFIX}react-dom.production.min.js"></script>
<script src="${ASSET_PREFIX}graphiql.min.js"></script>
<script src="${ASSET_PREFIX}ide.js"></script>
</body>
</html>
`;
}

/** `/`, `GET /graphql` for a browser, and the page's files under `/ide/`. */
export function ideRoutes(options: IdeOptions): express.Router {
  const page = idePage(options);
  const files = assets();
  const router = express.Router();
  const sendPage = (res: express.Response): void => {
    res.set({
      'Content-Security-Policy': IDE_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    res.type('html').send(page);
  };
  router.get('/', (_req, res) => sendPage(res));
  router.get('/graphql', (req, res, next) => {
    if (req.query.query === undefined && req.accepts(['json', 'html']) === 'html') sendPage(res);
    else next();
  });
  router.get(`${ASSET_PREFIX}:file`, (req, res, next) => {
    const file = files.get(req.params.file);
    if (!file) return next();
    res.sendFile(file, { headers: { 'X-Content-Type-Options': 'nosniff' } });
  });
  return router;
}
