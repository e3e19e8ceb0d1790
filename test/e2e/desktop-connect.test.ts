import type { Page } from 'playwright-core';
import { en } from '../../src/web/locales/en';
import { browserSuite } from './support/browser';
import { useBrowserStack } from './support/fixture';
import { APP_NAME } from './support/stack';
import { at, clickThrough, decisionButton, permissionsIn } from './support/walk';

jest.setTimeout(60_000);

const SUITE = 'desktop-connect';

browserSuite('in a real browser, a desktop-key site (no callback)', () => {
  const { site, visit } = useBrowserStack(SUITE, { mode: 'desktop' });

  it('opens ipernity in a new tab, authorizes there, and completes back on the site', async () => {
    const visitor = await visit();
    const { page, context } = visitor;

    await visitor.step('warning page', async () => {
      await page.goto(`${site().appUrl}/`);
      await clickThrough(page, page.locator('#connect'), at(site().appUrl, '/connect'));
    });

    await visitor.step('"Complete authorization" page', async () => {
      await clickThrough(page, page.locator('#continue'), at(site().appUrl, '/connect/complete'));
      expect(await page.locator('h1').textContent()).toBe(en['complete.title']);
      const open = page.locator('#open-ipernity');
      expect(await open.getAttribute('target')).toBe('_blank');
      expect(new URL((await open.getAttribute('href')) ?? '', site().appUrl).origin).toBe(site().simulatorUrl);
    });

    let popup: Page | undefined;
    await visitor.step('ipernity in a new tab', async () => {
      [popup] = await Promise.all([context.waitForEvent('page'), page.getByRole('link', { name: en['complete.open'] }).click()]);
      await popup.waitForURL(at(site().simulatorUrl, '/apps/authorize'));
      expect(await popup.locator('h1').textContent()).toBe(`Authorize ${APP_NAME}`);
      return popup;
    });

    await visitor.step('authorized on ipernity', async () => {
      const tab = popup as Page;
      await Promise.all([tab.waitForResponse((response) => response.request().method() === 'POST'), decisionButton(tab, 'Authorize').click()]);
      await tab.waitForLoadState();
      expect(await tab.locator('h1').textContent()).toBe('Authorized');
      expect(await tab.locator('main').innerText()).toContain('go back to the application');
      return tab;
    });

    await visitor.step('back on the site, the account it connected named', async () => {
      await (popup as Page).close();
      await page.bringToFront();
      await Promise.all([page.waitForResponse((response) => response.request().method() === 'POST'), page.getByRole('button', { name: en['complete.submit'] }).click()]);
      await page.waitForLoadState();
      // a frob link may have come from someone else: this page says whose account the browser now uses
      expect(await page.locator('h1').textContent()).toBe(en['connected.title']);
      expect(await page.locator('#connected-user').textContent()).toBe(`${APP_NAME} is now connected to the ipernity account of Kal-El (Superman).`);
      expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'read'], ['profile', 'read']]);
      await page.getByRole('button', { name: en['connected.not.me'] }).waitFor();
    });

    await visitor.step('home page, connected', async () => {
      await clickThrough(page, page.locator('#continue'), at(site().appUrl, '/'));
      expect(await page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
      expect(await page.locator('#viewer').innerText()).toContain('Connected as Kal-El (Superman)');
    });
  });
});
