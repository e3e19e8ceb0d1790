import { en } from '../../src/web/locales/en';
import { fr } from '../../src/web/locales/fr';
import { de } from '../../src/web/locales/de';
import { browserSuite, focusStyleOf, focusedElement, isVisibleFocus, tabTo } from './support/browser';
import { useBrowserStack } from './support/fixture';
import { APP_NAME } from './support/stack';
import { at, clickThrough, connectByClicking, decisionButton, permissionsIn } from './support/walk';

jest.setTimeout(60_000);

const SUITE = 'web-connect';

browserSuite('in a real browser, a web-key site', () => {
  const { site, visit } = useBrowserStack(SUITE);

  describe('a visitor who connects', () => {
    it('reads the warning page, authorizes on ipernity and comes back connected', async () => {
      const visitor = await visit();
      const { page } = visitor;

      await visitor.step('home page', async () => {
        await page.goto(`${site().appUrl}/`);
        expect(await page.getAttribute('html', 'lang')).toBe('en');
        await page.getByRole('link', { name: en['home.connect'] }).waitFor();
      });

      await visitor.step('warning page names the application and the permissions', async () => {
        await clickThrough(page, page.getByRole('link', { name: en['home.connect'] }), at(site().appUrl, '/connect'));
        expect(await page.locator('h1').textContent()).toBe(en['connect.heading']);
        const body = await page.locator('main').innerText();
        expect(body).toContain(`${APP_NAME} will now take you to ipernity.com`);
        expect(body).toContain(`${APP_NAME} asks permission to:`);
        const requested = page.locator('#requested-permissions');
        expect(await permissionsIn(requested)).toEqual([['doc', 'read'], ['profile', 'read']]);
        const words = await requested.innerText();
        expect(words).toContain(en['perm.doc.read']);
        expect(words).toContain(en['perm.profile.read']);
        expect(await page.locator('#granted-permissions').count()).toBe(0);
        // Chromium sends Fetch Metadata: the form needs no CSRF token
        expect(await page.locator('input[name="_csrf"]').count()).toBe(0);
      });

      await visitor.step('authorization page on ipernity', async () => {
        await clickThrough(page, page.getByRole('button', { name: en['connect.continue'] }), at(site().simulatorUrl, '/apps/authorize'));
        expect(await page.locator('h1').textContent()).toBe(`Authorize ${APP_NAME}`);
        expect(await page.locator('#user_id option:checked').textContent()).toBe('Kal-El (Superman)');
      });

      await visitor.step('back on the site, connected', async () => {
        await clickThrough(page, decisionButton(page, 'Authorize'), at(site().appUrl, '/'));
        expect(await page.locator('h1').textContent()).toBe(en['home.connected.title']);
        expect(await page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
        expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'read'], ['profile', 'read']]);
        expect(await page.locator('#granted-permissions').innerText()).toContain(en['perm.doc.read']);
        await page.locator('#disconnect').waitFor();
        await page.locator('#request-more').waitFor();
        const cookies = (await page.context().cookies(site().appUrl)).map((cookie) => cookie.name);
        expect(cookies).toContain('ipernity-connect.sid');
        expect(cookies).not.toContain('ipernity-connect.csrf');
      });
    });

    it('asks for more permissions and keeps what was already granted', async () => {
      const visitor = await visit();
      const { page } = visitor;
      await visitor.step('connected with the default permissions', () => connectByClicking(page, site()));

      await visitor.step('choose doc: see and change', async () => {
        await page.locator('#perm_doc').selectOption({ label: en['level.write'] });
        expect(await page.locator('#perm_doc').inputValue()).toBe('write');
        expect(await page.locator('#perm_profile').inputValue()).toBe('read');
      });

      await visitor.step('warning page shows what is already granted', async () => {
        await clickThrough(page, page.locator('#request-more'), at(site().appUrl, '/connect'));
        expect(await permissionsIn(page.locator('#requested-permissions'))).toEqual([['doc', 'write'], ['profile', 'read']]);
        expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'read'], ['profile', 'read']]);
        expect(await page.locator('main').innerText()).toContain(en['connect.granted']);
      });

      await visitor.step('ipernity asks for the old and the new grant', async () => {
        await clickThrough(page, page.locator('#continue'), at(site().simulatorUrl, '/apps/authorize'));
        expect(await page.locator('#requested-permissions li').allTextContents()).toEqual(['doc: write', 'profile: read']);
      });

      await visitor.step('back on the site with both grants', async () => {
        await clickThrough(page, decisionButton(page, 'Authorize'), at(site().appUrl, '/'));
        expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'write'], ['profile', 'read']]);
        const words = await page.locator('#granted-permissions').innerText();
        expect(words).toContain(en['perm.doc.write']);
        expect(words).toContain(en['perm.profile.read']);
      });
    });

    it('walks the whole flow with the keyboard alone and always sees where the focus is', async () => {
      const visitor = await visit();
      const { page } = visitor;
      const expectVisibleFocus = async (): Promise<void> => {
        const style = await focusStyleOf(page);
        expect({ focused: await focusedElement(page), visible: isVisibleFocus(style), style }).toMatchObject({ visible: true });
      };

      await visitor.step('home page, "Connect ipernity" focused', async () => {
        await page.goto(`${site().appUrl}/`);
        await tabTo(page, '#connect');
        await expectVisibleFocus();
      });

      await visitor.step('warning page, "Continue to ipernity" focused', async () => {
        await Promise.all([page.waitForURL(at(site().appUrl, '/connect')), page.keyboard.press('Enter')]);
        await tabTo(page, '#continue');
        await expectVisibleFocus();
      });

      await visitor.step('authorization page, "Authorize" focused', async () => {
        await Promise.all([page.waitForURL(at(site().simulatorUrl, '/apps/authorize')), page.keyboard.press('Space')]);
        await tabTo(page, 'button[value="authorize"]');
      });

      await visitor.step('back connected, "Disconnect" reachable', async () => {
        await Promise.all([page.waitForURL(at(site().appUrl, '/')), page.keyboard.press('Enter')]);
        expect(await page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
        await tabTo(page, '#disconnect', 30);
        await expectVisibleFocus();
      });
    });
  });

  describe('a visitor who declines on ipernity', () => {
    it('sees a calm "Not connected" page (200, no error code)', async () => {
      const visitor = await visit();
      const { page } = visitor;
      await visitor.step('authorization page', async () => {
        await page.goto(`${site().appUrl}/`);
        await clickThrough(page, page.locator('#connect'), at(site().appUrl, '/connect'));
        await clickThrough(page, page.locator('#continue'), at(site().simulatorUrl, '/apps/authorize'));
      });

      await visitor.step('not connected', async () => {
        const [callback] = await Promise.all([
          page.waitForResponse((response) => new URL(response.url()).pathname === '/connect/callback'),
          clickThrough(page, decisionButton(page, 'Deny'), at(site().appUrl, '/connect/callback')),
        ]);
        expect(callback.status()).toBe(200);
        expect(new URL(page.url()).searchParams.has('frob')).toBe(false);
        expect(await page.locator('h1').textContent()).toBe(en['denied.title']);
        expect(await page.locator('main').innerText()).toContain(en['denied.message']);
        expect(await page.locator('.error-code').count()).toBe(0);
        expect(await page.locator('body').innerText()).not.toMatch(/error/i);
      });

      await visitor.step('home still offers to connect', async () => {
        await clickThrough(page, page.locator('#home'), at(site().appUrl, '/'));
        await page.locator('#connect').waitFor();
      });
    });
  });

  describe('a connected visitor who disconnects', () => {
    it('is told how to revoke the access on ipernity and can connect again', async () => {
      const visitor = await visit();
      const { page } = visitor;
      await visitor.step('connected', () => connectByClicking(page, site()));

      await visitor.step('disconnected page', async () => {
        await clickThrough(page, page.getByRole('button', { name: en['home.disconnect'], exact: true }), at(site().appUrl, '/disconnect'));
        expect(await page.locator('h1').textContent()).toBe(en['disconnected.title']);
        const text = await page.locator('main').innerText();
        expect(text).toContain(en['disconnected.message'].replace('{app}', APP_NAME));
        expect(text).toContain(en['disconnected.revoke'].replaceAll('{app}', APP_NAME));
      });

      await visitor.step('home offers "Connect ipernity" again', async () => {
        await clickThrough(page, page.locator('#home'), at(site().appUrl, '/'));
        await page.getByRole('link', { name: en['home.connect'] }).waitFor();
        expect(await page.locator('#connected-user').count()).toBe(0);
      });
    });
  });

  describe('a warning page whose return_to names another site', () => {
    it.each(['https://evil.example/', '//evil.example', '/\\evil.example'])('ends the flow on the site for return_to=%s', async (returnTo) => {
      const visitor = await visit();
      const { page } = visitor;
      const elsewhere: string[] = [];
      await visitor.context.route((url) => url.hostname.endsWith('evil.example'), async (route) => {
        elsewhere.push(route.request().url());
        await route.abort();
      });

      await visitor.step('warning page', async () => {
        await page.goto(`${site().appUrl}/connect?return_to=${encodeURIComponent(returnTo)}`);
        expect(await page.locator('#cancel').getAttribute('href')).toBe('/');
      });

      await visitor.step('back on the site', async () => {
        await clickThrough(page, page.locator('#continue'), at(site().simulatorUrl, '/apps/authorize'));
        await clickThrough(page, decisionButton(page, 'Authorize'), (url) => url.origin !== site().simulatorUrl);
        await page.locator('#connected-user').waitFor();
        expect(new URL(page.url()).origin).toBe(site().appUrl);
        expect(new URL(page.url()).pathname).toBe('/');
        expect(elsewhere).toEqual([]);
      });
    });
  });

  describe('in the visitor\'s language', () => {
    it.each([
      ['fr-FR', 'fr', fr],
      ['de-DE', 'de', de],
      ['ja-JP', 'en', en],
    ] as const)('a browser set to %s reads the warning page in "%s"', async (locale, lang, catalogue) => {
      const visitor = await visit(locale);
      const { page } = visitor;
      let acceptLanguage = '';
      page.on('request', (request) => {
        if (new URL(request.url()).pathname === '/connect') acceptLanguage = request.headers()['accept-language'] ?? '';
      });

      await visitor.step(`warning page in ${lang}`, async () => {
        await page.goto(`${site().appUrl}/`);
        await clickThrough(page, page.getByRole('link', { name: catalogue['home.connect'] }), at(site().appUrl, '/connect'));
        expect(acceptLanguage.toLowerCase()).toContain(locale.slice(0, 2));
        // English must come from the fallback, not from the browser asking for it too
        if (lang === 'en') expect(acceptLanguage).not.toMatch(/\ben\b/i);
        expect(await page.getAttribute('html', 'lang')).toBe(lang);
        expect(await page.locator('h1').textContent()).toBe(catalogue['connect.heading']);
        expect(await page.title()).toBe(`${catalogue['connect.title']} · ${APP_NAME}`);
        expect(await page.locator('#requested-permissions').innerText()).toContain(catalogue['perm.doc.read']);
        expect(await page.locator('#continue').textContent()).toBe(catalogue['connect.continue']);
      });
    });
  });
});
