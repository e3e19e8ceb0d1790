import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { SANDBOX_PATH } from '../../src/config';
import { renderPng } from '../../src/simulator/images';
import { en } from '../../src/web/locales/en';
import { browserSuite } from './support/browser';
import { useBrowserStack } from './support/fixture';
import { APP_NAME, OUTPUT_DIR } from './support/stack';
import { at, clickThrough, decisionButton, permissionsIn } from './support/walk';

jest.setTimeout(60_000);

const SUITE = 'photo-page';
/** The photo page's own screenshot, next to the suites' folders. */
const PHOTO_PAGE_PNG = path.join(OUTPUT_DIR, 'photo-page.png');
/** What the sandbox's simulator seeds the signed-in account with that a visitor may see (as test/flow/photo-home.test.ts lists them). */
const SEEDED_TITLES = ['Blue tiles', 'Evening field', 'Family picnic', 'My new flat', 'Red harbour at dawn', 'Ripples in the pond'];
const UPLOAD_TITLE = 'Orange checks from Chromium';

interface Thumbnail {
  alt: string;
  src: string;
  naturalWidth: number;
  naturalHeight: number;
}

/**
 * The photo list's thumbnails once each has loaded: every one is scrolled to
 * (they are `loading="lazy"`) and waited for, then read as the browser has them.
 */
async function loadedThumbnails(page: Page): Promise<Thumbnail[]> {
  const images = await page.locator('#photo-list img').all();
  for (const [index, image] of images.entries()) {
    await image.scrollIntoViewIfNeeded();
    // complete: loaded, or broken (then its naturalWidth stays 0 and the test says which). Polled from
    // here: waitForFunction's own polling evaluates its predicate as a string in the page, which the
    // page's CSP refuses (script-src without 'unsafe-eval') whenever the first look finds it false
    const deadline = Date.now() + 10_000;
    while (!(await page.evaluate<boolean>(`document.querySelectorAll('#photo-list img')[${index}].complete`))) {
      if (Date.now() > deadline) throw new Error(`thumbnail ${index} did not load within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  await page.evaluate('window.scrollTo(0, 0)');
  return page.evaluate<Thumbnail[]>(`Array.from(document.querySelectorAll('#photo-list img')).map(function (img) {
    return { alt: img.alt, src: img.getAttribute('src'), naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight };
  })`);
}

browserSuite('in a real browser, the sandbox photo page (HOME_PAGE=photos, the built-in simulator)', () => {
  // no API key: sandbox mode, ipernity simulated under /sandbox/ipernity of the site itself;
  // the token checked at every home view, so that a revocation shows on the next one
  const { site, visit } = useBrowserStack(SUITE, {
    env: { IPERNITY_API_KEY: '', IPERNITY_API_SECRET: '', IPERNITY_PERMISSIONS: 'doc:read', TOKEN_CHECK_INTERVAL_SECONDS: '0' },
  });
  let tempDir = '';

  beforeAll(() => {
    tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ipernity-connect-e2e-upload-'));
  });

  afterAll(() => {
    if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  });

  it('connects with doc:read, shows the photos, asks for doc:write to upload, uploads one, and notices a revocation on ipernity', async () => {
    const visitor = await visit();
    const { page } = visitor;
    const appUrl = site().appUrl;
    const authorizePath = `${SANDBOX_PATH}/apps/authorize`;

    await visitor.step('home page in sandbox mode', async () => {
      await page.goto(`${appUrl}/`);
      await page.getByRole('link', { name: en['home.connect'] }).waitFor();
    });

    await visitor.step('warning page asks for doc:read only', async () => {
      await clickThrough(page, page.getByRole('link', { name: en['home.connect'] }), at(appUrl, '/connect'));
      expect(await page.locator('h1').textContent()).toBe(en['connect.heading']);
      expect(await permissionsIn(page.locator('#requested-permissions'))).toEqual([['doc', 'read']]);
    });

    await visitor.step('the simulator authorization page, on the site itself', async () => {
      await clickThrough(page, page.getByRole('button', { name: en['connect.continue'] }), at(appUrl, authorizePath));
      expect(await page.locator('h1').textContent()).toBe(`Authorize ${APP_NAME}`);
      expect(await page.locator('#requested-permissions li').allTextContents()).toEqual(['doc: read']);
    });

    await visitor.step('back home, connected, with the photos', async () => {
      await clickThrough(page, decisionButton(page, 'Authorize'), at(appUrl, '/'));
      expect(await page.locator('#connected-user').textContent()).toBe('Connected as Kal-El (Superman)');
      expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'read']]);
      expect(await page.locator('#photos-title').textContent()).toBe(en['home.photos.title']);

      const thumbnails = await loadedThumbnails(page);
      expect(thumbnails.map((thumb) => thumb.alt).sort()).toEqual([...SEEDED_TITLES].sort());
      // each one a real image the browser decoded, public ones from the simulator, the private one through the server
      for (const thumb of thumbnails) {
        expect({ alt: thumb.alt, loaded: thumb.naturalWidth > 0 && thumb.naturalHeight > 0 }).toEqual({ alt: thumb.alt, loaded: true });
        expect(thumb.src.startsWith(`${appUrl}${SANDBOX_PATH}/media/`) || thumb.src.startsWith('/api/ipernity/media/')).toBe(true);
      }
      expect(thumbnails.find((thumb) => thumb.alt === 'My new flat')?.src).toMatch(/^\/api\/ipernity\/media\/[0-9]+\/240$/);
      // the visible titles say the same as the alt texts
      expect((await page.locator('#photo-list .photo-title').allTextContents()).sort()).toEqual([...SEEDED_TITLES].sort());

      // doc:read only: no upload form, a link asking for more
      expect(await page.locator('#upload-form').count()).toBe(0);
      await page.getByRole('link', { name: en['home.upload.allow'] }).waitFor();
      await page.locator('#manage-on-ipernity').waitFor();
      await page.screenshot({ path: PHOTO_PAGE_PNG, fullPage: true });
    });

    await visitor.step('"Allow uploads": the warning page asks for doc:write', async () => {
      await clickThrough(page, page.getByRole('link', { name: en['home.upload.allow'] }), at(appUrl, '/connect'));
      expect(await permissionsIn(page.locator('#requested-permissions'))).toEqual([['doc', 'write']]);
      expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'read']]);
    });

    await visitor.step('the simulator asks for doc:write', async () => {
      await clickThrough(page, page.locator('#continue'), at(appUrl, authorizePath));
      expect(await page.locator('#requested-permissions li').allTextContents()).toEqual(['doc: write']);
    });

    await visitor.step('back home with the upload form', async () => {
      await clickThrough(page, decisionButton(page, 'Authorize'), at(appUrl, '/'));
      expect(await permissionsIn(page.locator('#granted-permissions'))).toEqual([['doc', 'write']]);
      await page.locator('#upload-form').waitFor();
      expect(await page.locator('#upload-permission').count()).toBe(0);
    });

    await visitor.step('a photo chosen with the file chooser and uploaded', async () => {
      const file = path.join(tempDir, 'orange-checks.png');
      fs.writeFileSync(file, renderPng({ pattern: 'checks', colour: [220, 110, 20], background: [250, 250, 245] }, 160, 120));
      await page.locator('#upload-photo-title').fill(UPLOAD_TITLE);
      await page.locator('#upload-file').setInputFiles(file);
      expect(await page.evaluate("document.querySelector('#upload-file').files.length")).toBe(1);
      const [answer] = await Promise.all([
        page.waitForResponse((response) => new URL(response.url()).pathname === '/photos/upload'),
        clickThrough(page, page.getByRole('button', { name: en['home.upload.submit'], exact: true }), (url) => url.origin === appUrl && url.pathname === '/' && url.searchParams.get('uploaded') === '1'),
      ]);
      expect(answer.status()).toBe(303);
      expect(await page.locator('#uploaded').innerText()).toContain(en['home.photos.uploaded']);
    });

    await visitor.step('after a reload, the new photo is in the list', async () => {
      // the simulator takes about two seconds to process an upload
      const deadline = Date.now() + 10_000;
      let titles: string[] = [];
      while (!titles.includes(UPLOAD_TITLE)) {
        if (Date.now() > deadline) throw new Error(`"${UPLOAD_TITLE}" was not in the list 10 s after the upload; the list had: ${titles.join(', ')}`);
        await new Promise((resolve) => setTimeout(resolve, 500));
        await page.goto(`${appUrl}/`);
        titles = await page.evaluate<string[]>("Array.from(document.querySelectorAll('#photo-list img')).map(function (img) { return img.alt; })");
      }
      expect(await page.locator('#uploaded').count()).toBe(0);
      const uploaded = (await loadedThumbnails(page)).find((thumb) => thumb.alt === UPLOAD_TITLE);
      // private (the box was left unchecked): through the server, and the browser decoded it at its own size
      expect(uploaded).toMatchObject({ naturalWidth: 160, naturalHeight: 120 });
      expect(uploaded?.src).toMatch(/^\/api\/ipernity\/media\/[0-9]+\/original$/);
    });

    await visitor.step('"Manage on ipernity": the simulator lists the site', async () => {
      await clickThrough(page, page.getByRole('link', { name: en['home.manage'] }), at(appUrl, `${SANDBOX_PATH}/apps/settings`));
      expect(await page.locator('h1').textContent()).toBe('Your authorized applications');
      expect(await page.locator('#authorized-applications h2').allTextContents()).toEqual([APP_NAME]);
    });

    await visitor.step('revoked on ipernity', async () => {
      await clickThrough(page, page.getByRole('button', { name: `Revoke ${APP_NAME}`, exact: true }), at(appUrl, `${SANDBOX_PATH}/apps/settings`));
      expect(await page.locator('#revoked-notice').textContent()).toBe(`You removed ${APP_NAME}: it can no longer use your account.`);
      await page.locator('#no-applications').waitFor();
    });

    await visitor.step('back home, the site has noticed', async () => {
      await page.goto(`${appUrl}/`);
      expect(await page.locator('.notice[role="status"]').first().textContent()).toBe(en['home.notice.revoked']);
      await page.getByRole('link', { name: en['home.connect'] }).waitFor();
      expect(await page.locator('#connected-user').count()).toBe(0);
      expect(await page.locator('#photo-list').count()).toBe(0);
    });
  });
});
