import type { Page } from 'playwright-core';
import { en } from '../../src/web/locales/en';
import { browserSuite } from './support/browser';
import { useBrowserStack } from './support/fixture';
import { APP_NAME, type Stack } from './support/stack';
import { at, clickThrough, decisionButton, permissionsIn } from './support/walk';

jest.setTimeout(60_000);

const SUITE = 'oauth-connect';
/** The simulator's OAuth authorization page (web and desktop keys use `/apps/authorize`). */
const OAUTH_AUTHORIZE = '/apps/oauth/authorize';
/** The account the attacker authorizes: the standalone simulator invents any numeric id it is sent. */
const ATTACKER_ID = '666';
const ATTACKER_NAME = `Test User ${ATTACKER_ID} (user${ATTACKER_ID})`;

/** What `GET /connection` says about this page's browser (its cookies, not a fresh client's). */
async function connectionOf(page: Page, stack: Stack): Promise<{ connected: boolean; user?: { userId: string; username: string } }> {
  const answer = await page.context().request.get(`${stack.appUrl}/connection`);
  expect(answer.status()).toBe(200);
  return answer.json();
}

/** Home page → Connect ipernity → Continue: ends on the simulator's OAuth authorization page, the attempt pending in this browser. */
async function startConnecting(page: Page, stack: Stack): Promise<void> {
  await page.goto(`${stack.appUrl}/`);
  await clickThrough(page, page.locator('#connect'), at(stack.appUrl, '/connect'));
  await clickThrough(page, page.locator('#continue'), at(stack.simulatorUrl, OAUTH_AUTHORIZE));
}

browserSuite('in a real browser, an OAuth site (IPERNITY_AUTH_MODE=oauth)', () => {
  const { site, visit } = useBrowserStack(SUITE, { mode: 'oauth' });

  it('reads the warning page, authorizes the request token on ipernity and comes back connected', async () => {
    const visitor = await visit();
    const { page } = visitor;

    await visitor.step('warning page', async () => {
      await page.goto(`${site().appUrl}/`);
      await clickThrough(page, page.getByRole('link', { name: en['home.connect'] }), at(site().appUrl, '/connect'));
      expect(await page.locator('h1').textContent()).toBe(en['connect.heading']);
      expect(await permissionsIn(page.locator('#requested-permissions'))).toEqual([['doc', 'read'], ['profile', 'read']]);
    });

    let requestToken = '';
    await visitor.step('OAuth authorization page on ipernity', async () => {
      await clickThrough(page, page.getByRole('button', { name: en['connect.continue'] }), at(site().simulatorUrl, OAUTH_AUTHORIZE));
      const link = new URL(page.url());
      // a request token and the permissions, never the key nor a frob signature
      expect([...link.searchParams.keys()].sort()).toEqual(['oauth_token', 'perm_doc', 'perm_profile']);
      expect(link.searchParams.get('perm_doc')).toBe('read');
      expect(link.searchParams.get('perm_profile')).toBe('read');
      requestToken = link.searchParams.get('oauth_token') ?? '';
      expect(requestToken).not.toBe('');
      expect(await page.locator('h1').textContent()).toBe(`Authorize ${APP_NAME}`);
      expect(await page.locator('#permission-words li').allTextContents()).toEqual([
        'See your private photos and documents',
        'See your profile, including its private details',
      ]);
      expect(await page.locator('#requested-permissions li').allTextContents()).toEqual(['doc: read', 'profile: read']);
      expect(await page.locator('#user_id option:checked').textContent()).toBe('Kal-El (Superman)');
    });

    await visitor.step('back on the site, connected', async () => {
      const [callback] = await Promise.all([
        page.waitForRequest((request) => new URL(request.url()).pathname === '/connect/callback'),
        clickThrough(page, decisionButton(page, 'Authorize'), at(site().appUrl, '/')),
      ]);
      // ipernity sends the browser back with the same request token, and no frob
      const back = new URL(callback.url());
      expect(back.origin).toBe(site().appUrl);
      expect(back.searchParams.get('oauth_token')).toBe(requestToken);
      expect(back.searchParams.has('frob')).toBe(false);
      expect(await page.locator('h1').textContent()).toBe(en['home.connected.title']);
      expect(await page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
      expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'read'], ['profile', 'read']]);
      await page.locator('#disconnect').waitFor();
      expect(await connectionOf(page, site())).toMatchObject({ connected: true, user: { userId: '1234', username: 'Superman' } });
    });
  });

  it('refuses the attacker\'s callback in the victim\'s browser (login CSRF): 400 OAUTH_TOKEN_MISMATCH, and the victim still connects as themselves', async () => {
    const attacker = await visit();
    const victim = await visit();
    // one folder and one numbering for the test: every step is recorded through the victim's walk (a Visitor's
    // first step empties the test's folder), an attacker's step answering the attacker's page for its screenshot
    const step = (name: string, action: () => Promise<Page | void>): Promise<void> => victim.step(name, action);

    await step('attacker: OAuth authorization page, their own account chosen', async () => {
      await startConnecting(attacker.page, site());
      // the attacker signs in to ipernity as another account: the simulator takes any numeric user id
      await attacker.page.evaluate(`(function () {
        var option = document.createElement('option');
        option.value = ${JSON.stringify(ATTACKER_ID)};
        option.textContent = ${JSON.stringify(ATTACKER_NAME)};
        document.getElementById('user_id').appendChild(option);
      })()`);
      await attacker.page.locator('#user_id').selectOption(ATTACKER_ID);
      expect(await attacker.page.locator('#user_id option:checked').textContent()).toBe(ATTACKER_NAME);
      return attacker.page;
    });

    let attackersCallback = '';
    await step('attacker: authorized, the callback kept instead of followed', async () => {
      // a browser follows the form's 303 without Playwright seeing it (redirects are not routed): the form's
      // POST is sent from the route instead, its redirect not followed, and its Location kept
      await attacker.context.route((url) => url.origin === site().simulatorUrl && url.pathname === OAUTH_AUTHORIZE, async (route) => {
        if (route.request().method() !== 'POST') return route.fallback();
        // with the browser's own headers (Origin among them; its cookies come from the context) and the Fetch Metadata
        // Chromium adds below the interception (same-origin: the form is the page's own), which the simulator's CSRF check reads
        const { cookie: _cookie, ...headers } = await route.request().allHeaders();
        const decision = await route.fetch({ headers: { ...headers, 'sec-fetch-site': 'same-origin' }, maxRedirects: 0 });
        attackersCallback = new URL(decision.headers().location ?? '', site().simulatorUrl).toString();
        await route.fulfill({ status: 200, contentType: 'text/plain; charset=utf-8', body: `${decision.status()}: callback kept, not followed` });
      });
      await Promise.all([attacker.page.waitForResponse((response) => response.request().method() === 'POST'), decisionButton(attacker.page, 'Authorize').click()]);
      await attacker.page.waitForLoadState();
      expect(await attacker.page.locator('body').innerText()).toBe('303: callback kept, not followed');
      const kept = new URL(attackersCallback);
      expect([kept.origin, kept.pathname]).toEqual([site().appUrl, '/connect/callback']);
      expect(kept.searchParams.get('oauth_token')).toMatch(/^[0-9a-f]{16,}$/);
      // the site never saw it: the attacker's browser is not connected either
      expect((await connectionOf(attacker.page, site())).connected).toBe(false);
      return attacker.page;
    });

    await step('victim: pressed Continue, on their own authorization page', async () => {
      await startConnecting(victim.page, site());
      expect(new URL(victim.page.url()).searchParams.get('oauth_token')).not.toBe(new URL(attackersCallback).searchParams.get('oauth_token'));
    });

    await step('victim: the attacker\'s callback, opened in another tab, refused', async () => {
      // the lure: a link to the attacker's callback, followed while the victim's own attempt is pending
      const lure = await victim.context.newPage();
      const answer = await lure.goto(attackersCallback);
      expect(answer?.status()).toBe(400);
      expect(await lure.locator('h1').textContent()).toBe(en['error.OAUTH_TOKEN_MISMATCH.title']);
      expect(await lure.locator('main').innerText()).toContain(en['error.OAUTH_TOKEN_MISMATCH.message']);
      expect(await lure.locator('.error-code').innerText()).toBe('Error code: OAUTH_TOKEN_MISMATCH');
      expect(await connectionOf(victim.page, site())).toMatchObject({ connected: false });
      return lure;
    });

    await step('victim: their own authorization still connects them, as themselves', async () => {
      await victim.page.bringToFront();
      expect(await victim.page.locator('#user_id option:checked').textContent()).toBe('Kal-El (Superman)');
      await clickThrough(victim.page, decisionButton(victim.page, 'Authorize'), at(site().appUrl, '/'));
      expect(await victim.page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
      expect(await connectionOf(victim.page, site())).toMatchObject({ connected: true, user: { userId: '1234', username: 'Superman' } });
    });

    await step('attacker: the kept token was never exchanged, it still connects their own browser', async () => {
      await attacker.page.goto(attackersCallback);
      await attacker.page.waitForURL(at(site().appUrl, '/'));
      expect(await attacker.page.locator('#connected-user').textContent()).toBe(`Connected as ${ATTACKER_NAME}`);
      expect(await connectionOf(victim.page, site())).toMatchObject({ connected: true, user: { userId: '1234' } });
      return attacker.page;
    });
  });

  it('denying on ipernity comes back to a calm "Not connected" page', async () => {
    const visitor = await visit();
    const { page } = visitor;

    await visitor.step('OAuth authorization page', () => startConnecting(page, site()));

    await visitor.step('not connected', async () => {
      const requestToken = new URL(page.url()).searchParams.get('oauth_token');
      const [callback] = await Promise.all([
        page.waitForResponse((response) => new URL(response.url()).pathname === '/connect/callback'),
        clickThrough(page, decisionButton(page, 'Deny'), at(site().appUrl, '/connect/callback')),
      ]);
      expect(callback.status()).toBe(200);
      // back without oauth_token, the declined one named in `denied`
      const back = new URL(page.url());
      expect(back.searchParams.has('oauth_token')).toBe(false);
      expect(back.searchParams.get('denied')).toBe(requestToken);
      expect(await page.locator('h1').textContent()).toBe(en['denied.title']);
      expect(await page.locator('main').innerText()).toContain(en['denied.message']);
      expect(await page.locator('.error-code').count()).toBe(0);
      expect(await connectionOf(page, site())).toMatchObject({ connected: false });
    });

    await visitor.step('home still offers to connect', async () => {
      await clickThrough(page, page.locator('#home'), at(site().appUrl, '/'));
      await page.locator('#connect').waitFor();
      expect(await page.locator('#connected-user').count()).toBe(0);
    });
  });
});
