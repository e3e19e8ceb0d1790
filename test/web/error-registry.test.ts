import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import { ERRORS, type ErrorCode } from '../../src/errors';
import { CATALOGUES, LANGS } from '../../src/web/i18n';
import { buildApp, testConfig } from '../support/harness';

const SRC = path.join(__dirname, '..', '..', 'src');

/** Every TypeScript file under src/, but the registry itself. */
function sources(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sources(file);
    return entry.name.endsWith('.ts') && file !== path.join(SRC, 'errors.ts') ? [fs.readFileSync(file, 'utf8')] : [];
  });
}

const codes = Object.keys(ERRORS) as ErrorCode[];

describe('the error registry (src/errors.ts)', () => {
  it.each(codes.flatMap((code) => ERRORS[code].pages.flatMap((page) => LANGS.map((lang) => [code, page, lang] as const))))(
    '%s: the page %s has its title and message in %s',
    (_code, page, lang) => {
      const catalogue = CATALOGUES[lang] as Record<string, string>;
      expect(catalogue[`error.${page}.title`]).toEqual(expect.any(String));
      expect(catalogue[`error.${page}.message`]).toEqual(expect.any(String));
    },
  );

  it('has every error page text belong to a code of the registry (no text left for a code that is gone)', () => {
    const pages = new Set(codes.flatMap((code) => ERRORS[code].pages as readonly string[]));
    for (const lang of LANGS) {
      const texts = Object.keys(CATALOGUES[lang]).filter((key) => /^error\.[A-Z_]+\.(title|message)$/.test(key));
      expect(texts.map((key) => key.split('.')[1]).filter((page) => !pages.has(page as string))).toEqual([]);
    }
  });

  it.each(codes)('%s is raised somewhere in src/', (code) => {
    const raised = sources().some((text) => text.includes(`Codes.${code}`));
    expect(raised).toBe(true);
  });

  it('answers a request address that is too long with its own page, not the one for large forms', async () => {
    const handle = buildApp(testConfig('http://127.0.0.1:9'));
    try {
      const page = await request(handle.app).get(`/connect?return_to=/${'a'.repeat(5000)}`).expect(414);
      expect(page.text).toContain('The address is too long');
      expect(page.text).toContain('URI_TOO_LONG');
    } finally {
      await handle.close();
    }
  });
});
