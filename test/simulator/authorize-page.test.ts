import request from 'supertest';
import { sign } from '../../src/ipernity/signature';
import { createSimulatorApp, type SimulatedApp } from '../../src/simulator/app';
import { parseDescription } from '../../src/simulator/forms';

const described: SimulatedApp = {
  apiKey: 'K',
  apiSecret: 'S',
  name: 'Photo Corner',
  callbackUrl: 'http://site.example/connect/callback',
  subtitle: 'Your photos on your own site',
  description: { en: 'Shows your best photos on photo-corner.example.', fr: 'Montre vos meilleures photos sur photo-corner.example.' },
  developer: 'Corner Works Ltd',
  websiteUrl: 'https://photo-corner.example/',
};

function link(params: Record<string, string>, apiKey = 'K'): string {
  const all = { api_key: apiKey, ...params };
  return `/apps/authorize?${new URLSearchParams({ ...all, api_sig: sign(all, 'S') })}`;
}

/** The page's text without tags (entities left as they are). */
function textOf(html: string): string {
  return html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
}

describe('the authorization page', () => {
  const { app } = createSimulatorApp({ apps: [described, { apiKey: 'B', apiSecret: 'S', name: 'Bare', callbackUrl: 'http://bare.example/cb' }] });

  it('shows the name, subtitle, description, developer and website of the application', async () => {
    const page = await request(app).get(link({ perm_doc: 'read' })).expect(200);
    expect(page.text).toContain('<h1>Authorize Photo Corner</h1>');
    expect(page.text).toMatch(/id="app-subtitle">Your photos on your own site</);
    expect(page.text).toContain('<p class="description" id="app-description" lang="en">Shows your best photos on photo-corner.example.</p>');
    expect(page.text).toMatch(/<dt>Developer<\/dt>\s*<dd id="app-developer">Corner Works Ltd<\/dd>/);
    expect(page.text).toContain('<a href="https://photo-corner.example/" rel="noopener noreferrer">https://photo-corner.example/</a>');
    // still a simulator, and styled without inline style (the app's CSP allows none)
    expect(page.text).toContain('keeps everything in memory');
    expect(page.text).not.toMatch(/<style|style="/);
    expect(page.text).toContain('<link rel="stylesheet" href="/static/simulator.css">');
  });

  it.each([
    ['fr', 'fr', 'Montre vos meilleures photos'],
    ['fr-FR,fr;q=0.9,en;q=0.5', 'fr', 'Montre vos meilleures photos'],
    ['de-DE', 'en', 'Shows your best photos'],
    ['ja', 'en', 'Shows your best photos'],
    ['', 'en', 'Shows your best photos'],
  ])('with Accept-Language %j, gives the description in %s', async (header, lang, text) => {
    const asked = request(app).get(link({ perm_doc: 'read' }));
    const page = await (header ? asked.set('Accept-Language', header) : asked).expect(200);
    expect(page.text).toContain(`id="app-description" lang="${lang}">${text}`);
  });

  it('falls back to the first description when there is no English one', async () => {
    const { app: german } = createSimulatorApp({ apps: [{ ...described, description: { de: 'Zeigt Ihre Fotos.', fr: 'Montre vos photos.' } }] });
    expect((await request(german).get(link({})).set('Accept-Language', 'ja').expect(200)).text).toContain('lang="de">Zeigt Ihre Fotos.');
    expect((await request(german).get(link({})).set('Accept-Language', 'fr').expect(200)).text).toContain('lang="fr">Montre vos photos.');
  });

  it('leaves out what the application did not fill in', async () => {
    const page = await request(app).get(link({ perm_doc: 'read' }, 'B')).expect(200);
    expect(page.text).toContain('<h1>Authorize Bare</h1>');
    expect(page.text).not.toContain('app-subtitle');
    expect(page.text).not.toContain('app-description');
    expect(page.text).not.toContain('Developer');
    expect(page.text).not.toContain('Website');
  });

  it('says what each permission allows in words, each level with the ones it implies, and keeps the scope list', async () => {
    const page = await request(app).get(link({ perm_doc: 'delete', perm_blog: 'read', perm_post: 'write', perm_network: 'read', perm_profile: 'write' })).expect(200);
    const words = /<ul class="permission-words" id="permission-words">([\s\S]*?)<\/ul>/.exec(page.text)?.[1] ?? '';
    const lines = [...words.matchAll(/<li data-item="(\w+)" data-level="(\w+)">([^<]+)<\/li>/g)].map((m) => `${m[1]}:${m[2]} ${m[3]}`);
    expect(lines).toEqual([
      'doc:read See your private photos and documents',
      'doc:write Upload and edit your photos and documents',
      'doc:delete Delete your photos and documents',
      'blog:read Read your private blog posts',
      'post:read Read your private articles',
      'post:write Write and edit your articles',
      'network:read See your contacts and their relationship to you',
      'profile:read See your profile, including its private details',
      'profile:write Edit your profile',
    ]);
    const scope = /<ul class="scope" id="requested-permissions">([\s\S]*?)<\/ul>/.exec(page.text)?.[1] ?? '';
    expect([...scope.matchAll(/<li>([^<]+)<\/li>/g)].map((m) => m[1])).toEqual(['doc: delete', 'blog: read', 'post: write', 'network: read', 'profile: write']);
  });

  it('says "public information only" when no permission is asked for', async () => {
    const page = await request(app).get(link({})).expect(200);
    expect(page.text).toContain('Public information only');
    expect(page.text).not.toContain('id="requested-permissions"');
  });

  it('keeps the decision form: the accounts, Authorize as the primary button and Deny as the secondary one', async () => {
    const page = await request(app).get(link({ perm_doc: 'read' })).expect(200);
    expect(page.text).toContain('<option value="1234">Kal-El (Superman)</option>');
    expect(page.text).toContain('<button type="submit" name="decision" value="authorize" class="primary">Authorize</button>');
    expect(page.text).toContain('<button type="submit" name="decision" value="deny" class="secondary">Deny</button>');
    expect(page.text).toContain('href="/apps/settings"');
  });

  it('escapes everything the application says of itself, and links only to an http(s) website', async () => {
    const hostile: SimulatedApp = {
      apiKey: 'H',
      apiSecret: 'S',
      name: '<script>alert(1)</script>',
      callbackUrl: 'http://evil.example/cb',
      subtitle: '"><img src=x onerror=alert(2)>',
      description: { en: '<b>bold</b> & "quoted"' },
      developer: '<i>dev</i>',
      websiteUrl: 'javascript:alert(3)',
    };
    const { app: evil } = createSimulatorApp({ apps: [hostile] });
    const page = await request(evil).get(link({ perm_doc: 'read' }, 'H')).expect(200);
    expect(page.text).not.toContain('<script>alert(1)</script>');
    expect(page.text).toContain('<h1>Authorize &lt;script&gt;alert(1)&lt;/script&gt;</h1>');
    expect(page.text).toContain('<title>Authorize &lt;script&gt;alert(1)&lt;/script&gt; · ipernity simulator</title>');
    expect(page.text).not.toContain('<img src=x');
    expect(page.text).toContain('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;');
    expect(page.text).toContain('&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;');
    expect(page.text).toContain('&lt;i&gt;dev&lt;/i&gt;');
    // the address is shown, never linked
    expect(page.text).not.toMatch(/href="javascript:/i);
    expect(textOf(page.text)).toContain('Website javascript:alert(3)');
  });

  it('serves its stylesheet as CSS', async () => {
    const css = await request(app).get('/static/simulator.css').expect(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    expect(css.text).toContain('.wordmark');
  });
});

describe('SIMULATOR_APP_DESCRIPTION', () => {
  it('reads plain text as English and a JSON object as texts by language', () => {
    expect(parseDescription(undefined)).toBeUndefined();
    expect(parseDescription('  ')).toBeUndefined();
    expect(parseDescription('Shows photos')).toEqual({ en: 'Shows photos' });
    expect(parseDescription('{"en":"Shows photos","fr":"Montre des photos","de":1}')).toEqual({ en: 'Shows photos', fr: 'Montre des photos' });
    expect(parseDescription('{not json')).toEqual({ en: '{not json' });
  });
});
