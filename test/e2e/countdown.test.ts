import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { en } from '../../src/web/locales/en';
import { browserSuite, type Visitor } from './support/browser';
import { useBrowserStack } from './support/fixture';
import { at, clickThrough, decisionButton } from './support/walk';

jest.setTimeout(60_000);

const SUITE = 'countdown';
const COUNTDOWN_SECONDS = 2;

browserSuite('in a real browser, a warning page with a countdown (CONNECT_COUNTDOWN_SECONDS=2)', () => {
  const { site, visit } = useBrowserStack(SUITE, { countdownSeconds: COUNTDOWN_SECONDS });

  /** Home → Connect ipernity; answers once the warning page has loaded (the countdown has started). */
  async function openWarningPage(v: Visitor): Promise<void> {
    const { page } = v;
    await page.goto(`${site().appUrl}/`);
    const [warning] = await Promise.all([
      page.waitForResponse((response) => new URL(response.url()).pathname === '/connect'),
      clickThrough(page, page.locator('#connect'), at(site().appUrl, '/connect')),
    ]);
    const csp = (await warning.allHeaders())['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    // the script is a file of the site's own, not inline
    expect(await page.locator('script:not([src])').count()).toBe(0);
    const sources = await Promise.all((await page.locator('script[src]').all()).map((script) => script.getAttribute('src')));
    expect(sources).toEqual(['/static/countdown.js']);
  }

  it('shows the countdown and continues to ipernity on its own', async () => {
    const visitor = await visit();
    const { page } = visitor;
    const countdown = page.locator('.countdown');

    await visitor.step('warning page counting down', async () => {
      await openWarningPage(visitor);
      await countdown.waitFor({ state: 'visible' });
      expect(await countdown.textContent()).toMatch(/^Continuing to ipernity in [12] seconds\.$/);
      expect(await countdown.getAttribute('role')).toBe('status');
      await page.getByRole('button', { name: en['connect.countdown.stop'] }).waitFor({ state: 'visible' });
    });

    await visitor.step('on ipernity without a click', async () => {
      await page.waitForURL(at(site().simulatorUrl, '/apps/authorize'), { timeout: (COUNTDOWN_SECONDS + 8) * 1000 });
      expect(await page.locator('#requested-permissions li').allTextContents()).toEqual(['doc: read', 'profile: read']);
    });

    await visitor.step('back on the site, connected', async () => {
      await clickThrough(page, decisionButton(page, 'Authorize'), at(site().appUrl, '/'));
      expect(await page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
    });
  });

  it('stays on the warning page when the visitor presses "Stay on this page"', async () => {
    const visitor = await visit();
    const { page } = visitor;

    await visitor.step('countdown stopped', async () => {
      await openWarningPage(visitor);
      await page.getByRole('button', { name: en['connect.countdown.stop'] }).click();
      expect(await page.locator('.countdown').isHidden()).toBe(true);
      await page.waitForTimeout((COUNTDOWN_SECONDS + 1) * 1000);
      expect(at(site().appUrl, '/connect')(new URL(page.url()))).toBe(true);
      await page.locator('#continue').waitFor({ state: 'visible' });
    });
  });

  it('never counts down on a warning page that another site opened (login CSRF with one click)', async () => {
    // the attacker's page, on another site (localhost is not the same site as 127.0.0.1): one click opens the warning page
    const attacker = http.createServer((_req, res) => {
      const target = `${site().appUrl}/connect`;
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.end(`<!doctype html><title>Win a prize</title><button id="prize" onclick="window.open('${target}', 'flow')">Claim your prize</button>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    try {
      const visitor = await visit();
      const { page } = visitor;
      await visitor.step('the warning page opened by another site, standing still', async () => {
        await page.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`);
        const [opened] = await Promise.all([page.context().waitForEvent('page'), page.locator('#prize').click()]);
        await opened.waitForURL(at(site().appUrl, '/connect'));
        await opened.locator('#continue').waitFor({ state: 'visible' });
        expect(await opened.locator('#continue-form').getAttribute('data-countdown')).toBeNull();
        expect(await opened.locator('script[src]').count()).toBe(0);
        await opened.waitForTimeout((COUNTDOWN_SECONDS + 1) * 1000);
        expect(at(site().appUrl, '/connect')(new URL(opened.url()))).toBe(true);
        return opened;
      });
    } finally {
      attacker.closeAllConnections();
      await new Promise((resolve) => attacker.close(resolve));
    }
  });
});
