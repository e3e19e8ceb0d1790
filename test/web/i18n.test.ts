import request from 'supertest';
import { CATALOGUES, LANGS } from '../../src/web/i18n';
import { buildApp, startSimulator, testConfig, walkFlow, type RunningSimulator, type TestApp } from '../support/harness';

describe('message catalogues', () => {
  const reference = Object.keys(CATALOGUES.en).sort();

  it.each(LANGS)('%s has exactly the English keys, none empty, the same placeholders', (lang) => {
    const catalogue = CATALOGUES[lang] as Record<string, string>;
    expect(Object.keys(catalogue).sort()).toEqual(reference);
    for (const key of reference) {
      expect(catalogue[key]?.trim()).not.toBe('');
      const placeholders = (text: string) => (text.match(/\{\w+\}/g) ?? []).sort();
      expect([key, placeholders(catalogue[key] as string)]).toEqual([key, placeholders((CATALOGUES.en as Record<string, string>)[key] as string)]);
    }
  });
});

describe('pages in the visitor language', () => {
  let simulator: RunningSimulator;
  let handle: TestApp;
  beforeAll(async () => {
    simulator = await startSimulator();
    handle = buildApp(testConfig(simulator.url));
  });
  afterAll(async () => {
    await handle.close();
    await simulator.close();
  });

  it.each([
    ['fr-FR,fr;q=0.9,en;q=0.5', 'fr', 'Continuer vers ipernity'],
    ['de-DE,de;q=0.9', 'de', 'Weiter zu ipernity'],
    ['en-GB', 'en', 'Continue to ipernity'],
    ['ja-JP', 'en', 'Continue to ipernity'],
    ['', 'en', 'Continue to ipernity'],
  ])('Accept-Language %j gives lang=%s', async (header, lang, text) => {
    const page = await request(handle.app).get('/connect').set('Accept-Language', header).expect(200);
    expect(page.text).toContain(`<html lang="${lang}">`);
    expect(page.text).toContain(text);
    expect(page.headers['content-language']).toBe(lang);
  });

  it('translates error pages too', async () => {
    const page = await request(handle.app).get('/connect?perm_doc=admin').set('Accept-Language', 'fr').expect(400);
    expect(page.text).toContain('<html lang="fr">');
    expect(page.text).toContain('perm_doc');
    expect(page.text).toContain('Cette demande d’autorisation n’est pas valable');
  });

  it('writes dates in the visitor regional variant, and survives a malformed language tag', async () => {
    const agent = request.agent(handle.app);
    await walkFlow(agent, simulator);
    const british = await agent.get('/').set('Accept-Language', 'en-GB,en;q=0.8').expect(200);
    expect(british.text).toMatch(/Connected since \d{1,2} [A-Z][a-z]+ \d{4}/);
    const american = await agent.get('/').set('Accept-Language', 'en-US').expect(200);
    expect(american.text).toMatch(/Connected since [A-Z][a-z]+ \d{1,2}, \d{4}/);
    await agent.get('/').set('Accept-Language', 'en-x!,fr-1').expect(200);
  });
});
