import type { Locator, Page } from 'playwright-core';
import type { Stack } from './stack';

/** A URL test for `page.waitForURL`: this path on this origin. */
export function at(origin: string, pathname: string): (url: URL) => boolean {
  return (url) => url.origin === origin && url.pathname === pathname;
}

/** Clicks and waits until the page has arrived where the click leads. */
export async function clickThrough(page: Page, target: Locator, arrived: (url: URL) => boolean): Promise<void> {
  await Promise.all([page.waitForURL(arrived), target.click()]);
}

/** The simulator's decision buttons, found as a visitor finds them. */
export function decisionButton(page: Page, decision: 'Authorize' | 'Deny'): Locator {
  return page.getByRole('button', { name: decision, exact: true });
}

/** Home page → Connect ipernity → Continue → Authorize, clicking; ends on the home page, connected. */
export async function connectByClicking(page: Page, stack: Stack): Promise<void> {
  await page.goto(`${stack.appUrl}/`);
  await clickThrough(page, page.locator('#connect'), at(stack.appUrl, '/connect'));
  await clickThrough(page, page.locator('#continue'), at(stack.simulatorUrl, '/apps/authorize'));
  await clickThrough(page, decisionButton(page, 'Authorize'), at(stack.appUrl, '/'));
  await page.locator('#connected-user').waitFor();
}

/** The `[item, level]` pairs of a permission list, in page order. */
export async function permissionsIn(list: Locator): Promise<Array<[string, string]>> {
  const items = await list.locator('li[data-item]').all();
  return Promise.all(
    items.map(async (item) => [(await item.getAttribute('data-item')) ?? '', (await item.getAttribute('data-level')) ?? ''] as [string, string]),
  );
}
