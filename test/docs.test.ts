import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The README and docs/ say true things about files that exist, and no link leaves the repository
 * (no `../shared/…`, no web page: standards are named, not linked). Pure file checks, no database.
 *
 * - a relative link must resolve inside the repository to a file or directory that exists;
 * - a link with an anchor (`#section`, `file.md#section`) must name a heading of its target
 *   (GitHub's slugs: lowercase, punctuation dropped, spaces to '-', repeats numbered -1, -2, …);
 * - a link with a scheme (http, https, mailto, …) is refused, except http(s) to localhost or
 *   127.0.0.1 (examples of the local server); bare web addresses in text count too (GitHub links them);
 * - every repository path docs/ mentions (src/…, migrations/…, test/…, scripts/…, examples/…), linked
 *   or in code, must exist.
 * Fenced code blocks and inline code are not links.
 */

const ROOT = path.resolve(__dirname, '..');
const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const CITED_PATH = /(?<![\w./-])(?:\.\.\/)*((?:src|migrations|test|scripts|examples)\/[\w./-]*[\w/])/g;

function markdownFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .flatMap((name) => {
      const full = path.join(dir, name);
      if (statSync(full).isDirectory()) return markdownFiles(full);
      return name.endsWith('.md') ? [full] : [];
    })
    .sort();
}

const DOCS = markdownFiles(path.join(ROOT, 'docs'));
const FILES = [path.join(ROOT, 'README.md'), ...DOCS];

/** The text with fenced code blocks blanked (line breaks kept, so offsets still give line numbers). */
function withoutFences(text: string): string {
  const lines = text.split('\n');
  let fence: string | null = null;
  return lines
    .map((line) => {
      const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
      if (fence === null && marker) {
        fence = marker;
        return '';
      }
      if (fence !== null) {
        if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = null;
        return '';
      }
      return line;
    })
    .join('\n');
}

/** Inline code spans blanked (they may wrap a line, not cross a blank line). */
function withoutCodeSpans(text: string): string {
  return text.replace(/(`+)((?:(?!\n[ \t]*\n)[\s\S])*?)\1(?!`)/g, (span) => span.replace(/[^\n]/g, ' '));
}

/** Heading text as GitHub renders it (links and images to their text, inline HTML dropped). */
function headingText(raw: string): string {
  return raw
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]*>/g, '')
    .trim();
}

/** GitHub's anchor of a heading (github-slugger): lowercase, punctuation and symbols dropped, spaces to '-'. */
function slug(text: string): string {
  return headingText(text)
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
    .replace(/ /g, '-');
}

/** Every anchor a markdown file offers: its headings' slugs (repeats numbered) and explicit HTML ids. */
function anchorsOf(file: string): Set<string> {
  const text = withoutFences(readFileSync(file, 'utf8'));
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const add = (heading: string) => {
    const base = slug(heading);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n ? `${base}-${n}` : base);
  };
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const atx = /^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/.exec(line);
    if (atx) return add(atx[1] ?? '');
    const next = lines[i + 1];
    if (
      line.trim() &&
      !/^ {0,3}([-*_])( *\1){2,} *$/.test(line) &&
      next !== undefined &&
      /^ {0,3}(=+|-+)[ \t]*$/.test(next)
    ) {
      add(line);
    }
  });
  for (const m of text.matchAll(/<a\s[^>]*\b(?:name|id)\s*=\s*["']([^"']+)["']/gi)) anchors.add(m[1]);
  return anchors;
}

interface Link {
  target: string;
  line: number;
}

/** Link destinations in markdown text: inline links and images, reference definitions, autolinks, HTML, bare URLs. */
function linksIn(markdown: string): Link[] {
  const text = withoutCodeSpans(withoutFences(markdown));
  const lineAt = (offset: number) => text.slice(0, offset).split('\n').length;
  const links: Link[] = [];
  // Inline: ](destination "title"), the destination in <…> or with balanced parentheses.
  for (let i = text.indexOf(']('); i >= 0; i = text.indexOf('](', i + 2)) {
    let j = i + 2;
    while (text[j] === ' ' || text[j] === '\t') j++;
    let target = '';
    if (text[j] === '<') {
      const end = text.indexOf('>', j);
      if (end < 0) continue;
      target = text.slice(j + 1, end);
    } else {
      let depth = 0;
      for (; j < text.length && !/\s/.test(text[j]); j++) {
        if (text[j] === '(') depth++;
        else if (text[j] === ')') {
          if (depth === 0) break;
          depth--;
        }
        target += text[j];
      }
    }
    links.push({ target, line: lineAt(i) });
  }
  for (const m of text.matchAll(/^ {0,3}\[[^\]\n]+\]:[ \t]*<?([^\s>]+)>?/gm)) {
    links.push({ target: m[1], line: lineAt(m.index) });
  }
  for (const m of text.matchAll(/<([a-z][a-z0-9+.-]{1,31}:[^\s<>]*)>/gi)) {
    links.push({ target: m[1], line: lineAt(m.index) });
  }
  for (const m of text.matchAll(/\b(?:href|src)\s*=\s*["']([^"']*)["']/gi)) {
    links.push({ target: m[1], line: lineAt(m.index) });
  }
  for (const m of text.matchAll(/(?<![\w(<"'=/])(?:https?:\/\/|www\.)[^\s<>()"'`]*[^\s<>()"'`.,;:!?*_]/gi)) {
    links.push({ target: m[0].startsWith('www.') ? `https://${m[0]}` : m[0], line: lineAt(m.index) });
  }
  return links;
}

/** What is wrong with one link of `file`, or null. */
function checkLink(file: string, target: string): string | null {
  if (!target) return 'empty link';
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(target)?.[1].toLowerCase();
  if (scheme) {
    if (scheme === 'http' || scheme === 'https') {
      let host: string;
      try {
        host = new URL(target).hostname;
      } catch {
        return `a malformed web address (${target})`;
      }
      if (LOCAL_HOSTS.has(host)) return null;
      return `a link to a web page (${target}): no link leaves the repository; name the standard or project instead`;
    }
    return `a ${scheme}: link (${target}): no link leaves the repository`;
  }
  const hash = target.indexOf('#');
  const rawPath = hash >= 0 ? target.slice(0, hash) : target;
  const anchor = hash >= 0 ? decodeURIComponent(target.slice(hash + 1)) : null;
  const filePart = decodeURIComponent(rawPath.split('?')[0]);
  const resolved = filePart
    ? filePart.startsWith('/')
      ? path.join(ROOT, filePart)
      : path.resolve(path.dirname(file), filePart)
    : file;
  const relative = path.relative(ROOT, resolved);
  if (relative.startsWith('..') || path.isAbsolute(relative)) {
    return `${target} resolves outside the repository (${resolved})`;
  }
  if (!existsSync(resolved)) return `${target}: ${relative} does not exist`;
  if (anchor === null) return null;
  if (!resolved.endsWith('.md') || statSync(resolved).isDirectory()) {
    return `${target}: an anchor into ${relative}, which has no headings (link the file, not a line)`;
  }
  if (!anchorsOf(resolved).has(anchor)) return `${target}: ${relative} has no heading with the anchor #${anchor}`;
  return null;
}

function linkProblems(file: string): string[] {
  const name = path.relative(ROOT, file);
  return linksIn(readFileSync(file, 'utf8')).flatMap(({ target, line }) => {
    const problem = checkLink(file, target);
    return problem ? [`${name}:${line}: ${problem}`] : [];
  });
}

describe('links in README.md and docs/', () => {
  it('finds the documents', () => {
    expect(existsSync(path.join(ROOT, 'README.md'))).toBe(true);
    expect(DOCS.map((f) => path.relative(ROOT, f))).toContain(path.join('docs', 'domain.md'));
  });

  it.each(FILES.map((f) => [path.relative(ROOT, f), f]))(
    '%s: every link stays in the repository and resolves',
    (_name, file) => {
      expect(linkProblems(file)).toEqual([]);
    },
  );

  it('README.md points to the domain rules in docs/', () => {
    const targets = linksIn(readFileSync(path.join(ROOT, 'README.md'), 'utf8')).map((l) => l.target.split('#')[0]);
    expect(targets).toContain('docs/domain.md');
  });
});

describe('source files cited in docs/', () => {
  it.each(DOCS.map((f) => [path.relative(ROOT, f), f]))('%s: every cited file exists', (_name, file) => {
    const text = readFileSync(file, 'utf8');
    const missing = [...text.matchAll(CITED_PATH)]
      .map((m) => m[1])
      .filter((cited) => !existsSync(path.join(ROOT, cited)))
      .map((cited) => `${path.relative(ROOT, file)}: ${cited} does not exist`);
    expect(missing).toEqual([]);
  });
});

describe('the checker itself', () => {
  it('slugs headings as GitHub does', () => {
    expect(slug('Proving the trail')).toBe('proving-the-trail');
    expect(slug('`fill_corrections`')).toBe('fill_corrections');
    expect(slug('Instruments, brokers and option strategies')).toBe('instruments-brokers-and-option-strategies');
    expect(slug('Roles (DOMAIN §5) & [row-level security](x.md)')).toBe('roles-domain-5--row-level-security');
  });

  it('finds links outside code and ignores code', () => {
    const md = [
      'See [a](docs/a.md#x), ![i](<img one.png>), <https://example.com/> and https://example.org/page.',
      '`[not](a-link.md)` and `https://in-code.example`',
      '```',
      '[not](either.md) http://fenced.example',
      '```',
      '[ref]: ../outside.md',
      'A [wiki](https://en.wikipedia.org/wiki/Foo_(bar)) link.',
    ].join('\n');
    expect(linksIn(md).map((l) => `${l.line} ${l.target}`)).toEqual([
      '1 docs/a.md#x',
      '1 img one.png',
      '7 https://en.wikipedia.org/wiki/Foo_(bar)',
      '6 ../outside.md',
      '1 https://example.com/',
      '1 https://example.org/page',
    ]);
  });

  it('refuses what leaves the repository and accepts local examples', () => {
    const readme = path.join(ROOT, 'README.md');
    expect(checkLink(readme, '../shared/DOMAIN.md')).toMatch(/outside the repository/);
    expect(checkLink(readme, 'https://www.rfc-editor.org/rfc/rfc9162')).toMatch(/web page/);
    expect(checkLink(readme, 'mailto:someone@example.com')).toMatch(/mailto/);
    expect(checkLink(readme, 'http://127.0.0.1:4000/')).toBeNull();
    expect(checkLink(readme, 'docs/no-such-file.md')).toMatch(/does not exist/);
    expect(checkLink(readme, '#no-such-heading')).toMatch(/no heading/);
    expect(checkLink(readme, 'src/decimal.ts#L1')).toMatch(/no headings/);
    expect(checkLink(readme, 'docs/domain.md#order-statuses-and-transitions')).toBeNull();
  });
});
