/* global React, ReactDOM, GraphiQL, document, sessionStorage, localStorage, fetch, setTimeout, clearTimeout */
/**
 * Runs in the browser (served as /ide/ide.js by src/http/ide.ts, not compiled by tsc): the token
 * field and GraphiQL 4 (its UMD build, which expects the globals React and ReactDOM of React 18).
 * GraphiQL's own storage (tabs, history) is localStorage under "graphiql:"; the token is kept in
 * sessionStorage only, so it does not outlive the tab.
 */
(function () {
  'use strict';
  const config = JSON.parse(document.getElementById('tt-config').textContent);
  const TOKEN_KEY = 'tradetrail:token';
  const tokenInput = document.getElementById('tt-token');
  const status = document.getElementById('tt-status');

  tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || '';

  /** The pasted token without an "Authorization:" or "Bearer" prefix and without line breaks. */
  function bareToken() {
    return tokenInput.value
      .trim()
      .replace(/^authorization:\s*/i, '')
      .replace(/^bearer\s+/i, '')
      .replace(/\s+/g, '');
  }

  function say(text, kind) {
    status.textContent = text;
    status.className = kind ? `tt-${kind}` : '';
  }

  function describeUnsentToken() {
    if (!config.authRequired) say('Authentication is disabled on this server.', 'ok');
    else if (!bareToken()) say('No token yet: paste one to load the schema and run queries.', 'warn');
    else say('Checking the token…', '');
  }

  /** The headers editor's headers, names in lower case (so that they replace ours, not add to them). */
  function lowerCased(headers) {
    const out = {};
    for (const [name, value] of Object.entries(headers || {})) out[name.toLowerCase()] = String(value);
    return out;
  }

  let currentFetcher;
  function createFetcher() {
    const token = bareToken();
    currentFetcher = async function fetcher(params, options) {
      const headers = { 'content-type': 'application/json', accept: 'application/json' };
      if (token) headers.authorization = `Bearer ${token}`;
      Object.assign(headers, lowerCased(options && options.headers));
      const introspection = params.operationName === 'IntrospectionQuery';
      if (config.authRequired && !headers.authorization) {
        return {
          errors: [
            {
              message:
                'No token: paste one into the Token field above (npm run -s token -- --role compliance, or --trader <trader id>).',
            },
          ],
        };
      }
      let result;
      try {
        const response = await fetch(config.endpoint, {
          method: 'POST',
          headers,
          body: JSON.stringify(params),
          credentials: 'same-origin',
        });
        const text = await response.text();
        try {
          result = JSON.parse(text);
        } catch {
          result = { errors: [{ message: `HTTP ${response.status}: ${text.slice(0, 500)}` }] };
        }
      } catch (error) {
        result = { errors: [{ message: `The server did not answer: ${error.message}` }] };
      }
      // The verdict on the token, unless it has been changed meanwhile: the schema loaded, or the
      // server refused it (also later: an expired token fails any request).
      const errors = (result && result.errors) || [];
      const refused = errors.find((e) => e && e.extensions && e.extensions.code === 'UNAUTHENTICATED');
      if (fetcher === currentFetcher) {
        if (refused) say(refused.message, 'error');
        else if (introspection && result && result.data) say('Token accepted: schema loaded.', 'ok');
        else if (introspection && errors.length) say(errors[0].message, 'error');
      }
      return result;
    };
    return currentFetcher;
  }

  // On a first visit (or after GraphiQL's "Clear data"), the example and its variables are written
  // where GraphiQL keeps what was last typed, so that it opens them as its first tab and restores
  // them after a reload like anything typed. (Passing them as the query/variables props instead
  // makes GraphiQL open a second tab, without the variables, on every reload.) These are GraphiQL's
  // own localStorage keys, checked against graphiql 4.1.2.
  if (localStorage.getItem('graphiql:tabState') === null) {
    localStorage.setItem('graphiql:query', config.exampleQuery);
    localStorage.setItem('graphiql:variables', config.exampleVariables);
  }
  const props = { defaultEditorToolsVisibility: 'variables', shouldPersistHeaders: false };

  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  function render() {
    describeUnsentToken();
    // A new fetcher makes GraphiQL introspect again, with the new token.
    root.render(React.createElement(GraphiQL, Object.assign({ fetcher: createFetcher() }, props)));
  }

  let pending;
  tokenInput.addEventListener('input', () => {
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value);
    describeUnsentToken();
    clearTimeout(pending);
    pending = setTimeout(render, 300);
  });
  if (config.authRequired && !tokenInput.value) tokenInput.focus();
  render();
})();
