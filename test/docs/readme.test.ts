import fs from 'node:fs';
import path from 'node:path';
import { DEFAULTS } from '../../src/config';

const ROOT = path.join(__dirname, '..', '..');
/** The README is the front door: what and for whom, the commands, the tables, links. The rest is in docs/. */
const README_MAX_BYTES = 12_500;

const read = (file: string): string => fs.readFileSync(path.join(ROOT, file), 'utf8');

/** The variables `loadConfig` reads, each with the default its schema line gives (`DEFAULTS.X` or a literal). */
function configVariables(): Map<string, string | undefined> {
  const source = read('src/config/index.ts');
  const block = /const schema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source);
  if (!block?.[1]) throw new Error('src/config/index.ts: no `const schema = z.object({ ... });` block found');
  const variables = new Map<string, string | undefined>();
  for (const [line, name] of block[1].matchAll(/^\s+([A-Z][A-Z0-9_]*):(.*)$/gm) as IterableIterator<[string, string]>) {
    const literal = /\.default\((['"])(.*?)\1\)/.exec(line)?.[2];
    const named = (DEFAULTS as Record<string, unknown>)[name];
    variables.set(name, named !== undefined ? String(named) : literal);
  }
  return variables;
}

/** The rows of the README's table whose header row is `header`, as arrays of trimmed cells. */
function tableRows(markdown: string, header: string): string[][] {
  const lines = markdown.split(/\r?\n/);
  const start = lines.findIndex((line) => line.trim() === header);
  if (start < 0) throw new Error(`README.md: no table with the header ${header}`);
  const rows: string[][] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.replace(/^\||\|$/g, '').split(/(?<!\\)\|/).map((cell) => cell.trim()));
  }
  return rows;
}

/** The text of the first code span in a cell: `` `3000` (off) `` gives `3000`. */
const firstCode = (cell: string): string | undefined => /`([^`]*)`/.exec(cell)?.[1];

/** `METHOD /path` of every route a router mounts with `router.get(...)` or `router.post(...)`. */
function mountedRoutes(): string[] {
  const routes: string[] = [];
  for (const file of ['src/flow/router.ts', 'src/flow/forward-auth.ts', 'src/flow/home.ts', 'src/flow/photo-page.ts', 'src/web/health-router.ts']) {
    for (const [, method, route] of read(file).matchAll(/\brouter\.(get|post)\(\s*'([^']+)'/g) as IterableIterator<[string, string, string]>) {
      routes.push(`${method.toUpperCase()} ${route}`);
    }
  }
  return routes;
}

/** Every Markdown file whose links are checked: the README and docs/, folders included. */
function markdownFiles(): string[] {
  const files = ['README.md'];
  const walk = (folder: string): void => {
    for (const entry of fs.readdirSync(path.join(ROOT, folder), { withFileTypes: true })) {
      const relative = path.join(folder, entry.name);
      if (entry.isDirectory()) walk(relative);
      else if (entry.name.endsWith('.md')) files.push(relative);
    }
  };
  walk('docs');
  return files;
}

/** The text outside fenced code blocks and code spans, where a `[x](y)` is a link. */
const prose = (markdown: string): string => markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').replace(/`[^`\n]*`/g, '');

/** Link and image targets: `[text](target)`, `![alt](target "title")`, `[label]: target`. */
function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1] as string);
  const references = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((match) => match[1] as string);
  return [...inline, ...references];
}

/** The anchors GitHub gives a file's headings (lowercase, punctuation dropped, spaces to hyphens, repeats numbered). */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of markdown.replace(/^(```|~~~)[\s\S]*?^\1/gm, '').matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm) as IterableIterator<[string, string]>) {
    const base = heading
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

describe('README.md', () => {
  const readme = read('README.md');

  it(`is the front door: at most ${README_MAX_BYTES} bytes`, () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(README_MAX_BYTES);
  });

  describe('its table of variables', () => {
    const variables = configVariables();
    const rows = tableRows(readme, '| Variable | Default | Meaning |');
    const named = rows.map((row) => firstCode(row[0] ?? ''));

    it('reads the schema (the test really checks)', () => {
      expect(variables.size).toBeGreaterThan(20);
      expect(rows.length).toBeGreaterThan(20);
    });

    it.each([...variables.keys()])('names %s exactly once', (name) => {
      expect(named.filter((each) => each === name)).toEqual([name]);
    });

    it('names no variable that src/config/index.ts does not read', () => {
      expect(named.filter((name) => name === undefined || !variables.has(name))).toEqual([]);
    });

    it.each([...variables].filter(([, value]) => value !== undefined))('gives the default of %s as the code says (%s)', (name, value) => {
      const row = rows.find((each) => firstCode(each[0] ?? '') === name);
      expect(firstCode(row?.[1] ?? '')).toBe(value);
    });

    it('gives each variable one line: a name, a default and a meaning', () => {
      for (const row of rows) expect({ row: row[0], cells: row.filter(Boolean).length }).toEqual({ row: row[0], cells: 3 });
    });
  });

  describe('its table of routes', () => {
    const rows = tableRows(readme, '| Route | What it does |');
    const documented = rows.map((row) => firstCode(row[0] ?? ''));
    const routes = mountedRoutes();

    it('reads the routers (the test really checks)', () => {
      expect(routes).toEqual(expect.arrayContaining(['GET /connect', 'POST /connect', 'GET /connect/callback', 'GET /', 'GET /healthz']));
    });

    it.each(routes)('documents %s exactly once', (route) => {
      expect(documented.filter((each) => each === route)).toEqual([route]);
    });

    it('documents no method and path that no router mounts', () => {
      const withMethod = documented.filter((each): each is string => each !== undefined && /^[A-Z]+ /.test(each));
      expect(withMethod.filter((each) => !routes.includes(each))).toEqual([]);
    });
  });

  it('is the only page with a row for a server variable (each is documented once)', () => {
    const variables = [...configVariables().keys()];
    const elsewhere = markdownFiles()
      .filter((file) => file !== 'README.md')
      .flatMap((file) => variables.filter((name) => new RegExp(`^\\| \`${name}\` \\|`, 'm').test(read(file))).map((name) => `${file}: ${name}`));
    expect(elsewhere).toEqual([]);
  });
});

describe('relative links in README.md and docs/', () => {
  it.each(markdownFiles())('in %s point at files (and headings) that exist', (file) => {
    const broken: string[] = [];
    for (const target of linkTargets(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [pathPart = '', anchor] = target.split('#');
      const resolved = pathPart === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), decodeURIComponent(pathPart));
      if (!resolved.startsWith(ROOT) || !fs.existsSync(resolved)) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (anchor && resolved.endsWith('.md') && !anchorsOf(fs.readFileSync(resolved, 'utf8')).has(anchor)) {
        broken.push(`${target}: no heading with that anchor`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('finds links (the test really checks)', () => {
    const targets = linkTargets(read('README.md'));
    expect(targets).toEqual(expect.arrayContaining(['docs/images/photo-page.png', 'docs/security.md']));
    expect(anchorsOf('## Try it, test it\n### `sandbox` profile: the stack\n')).toEqual(new Set(['try-it-test-it', 'sandbox-profile-the-stack']));
  });
});
