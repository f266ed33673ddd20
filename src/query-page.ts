/**
 * A small self-contained page to run GraphQL queries from a browser. Apollo's default landing
 * page loads its code from a CDN and fails offline; this one has no external resource at all.
 */
export function queryPage(exampleQuery: string, exampleVariables: string): string {
  const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tradetrail GraphQL</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px system-ui,sans-serif;margin:0;display:grid;grid-template-rows:auto 1fr;height:100vh}
 header{padding:8px 12px;background:#1d2a38;color:#fff;display:flex;gap:12px;align-items:center}
 header input{flex:1;font:inherit;padding:4px}
 main{display:grid;grid-template-columns:1fr 1fr;min-height:0}
 section{display:grid;grid-template-rows:2fr auto 1fr;min-height:0;border-right:1px solid #ccc}
 textarea,pre{font:13px ui-monospace,monospace;margin:0;padding:8px;border:0;resize:none;overflow:auto}
 pre{white-space:pre-wrap;background:#f7f7f7}
 button{font:inherit;padding:4px 14px}
 label{padding:4px 8px;background:#eee;font-size:12px}
</style></head>
<body>
<header><strong>Tradetrail</strong>
 <input id="token" placeholder="Authorization token (optional): Bearer …" autocomplete="off">
 <button id="run" title="Ctrl+Enter">Run ▶</button></header>
<main><section>
 <textarea id="query" spellcheck="false">${esc(exampleQuery)}</textarea>
 <label for="variables">Variables (JSON)</label>
 <textarea id="variables" spellcheck="false">${esc(exampleVariables)}</textarea>
</section><pre id="result">Press Run (or Ctrl+Enter).</pre></main>
<script>
const $ = (id) => document.getElementById(id);
async function run() {
  $('result').textContent = '…';
  let variables = {};
  try { variables = JSON.parse($('variables').value || '{}'); }
  catch (e) { $('result').textContent = 'Variables are not valid JSON: ' + e.message; return; }
  const headers = { 'content-type': 'application/json' };
  const token = $('token').value.trim();
  if (token) headers.authorization = token.startsWith('Bearer ') ? token : 'Bearer ' + token;
  try {
    const res = await fetch(location.pathname === '/' ? '/graphql' : location.pathname, {
      method: 'POST', headers, body: JSON.stringify({ query: $('query').value, variables }) });
    $('result').textContent = 'HTTP ' + res.status + '\\n' + JSON.stringify(await res.json(), null, 2);
  } catch (e) { $('result').textContent = 'Request failed: ' + e.message; }
}
$('run').onclick = run;
document.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) run(); });
</script></body></html>`;
}
