import type { Browser } from 'playwright-core';
import { launchChromium, Visitor } from './browser';
import { ensureBuilt, startStack, type Stack, type StackOptions } from './stack';

/** What a browser suite uses: the running stack, and a fresh visitor per call. */
export interface BrowserStack {
  /** The running stack (beforeAll has failed when there is none). */
  site(): Stack;
  /** A new visitor (its own browser context), closed after the test. */
  visit(locale?: string): Promise<Visitor>;
}

/**
 * Registers the hooks of a browser suite: Chromium and the server with its
 * simulator for the whole file, visitors closed after each test, and each
 * test failing when any page hit a Content-Security-Policy violation or a
 * script error.
 */
export function useBrowserStack(suite: string, options: StackOptions = {}): BrowserStack {
  let browser: Browser | undefined;
  let stack: Stack | undefined;
  let visitors: Visitor[] = [];

  beforeAll(async () => {
    ensureBuilt();
    [browser, stack] = await Promise.all([launchChromium(), startStack(suite, options)]);
  }, 120_000);

  afterAll(async () => {
    await Promise.allSettled([browser?.close(), stack?.stop()]);
  });

  afterEach(async () => {
    const problems = visitors.flatMap((visitor) => visitor.problems);
    await Promise.allSettled(visitors.map((visitor) => visitor.close()));
    visitors = [];
    // nothing on any page was blocked by the Content-Security-Policy, and no script failed
    expect(problems).toEqual([]);
  });

  return {
    site: () => stack as Stack,
    async visit(locale) {
      const visitor = await Visitor.open(browser as Browser, suite, { locale });
      visitors.push(visitor);
      return visitor;
    },
  };
}
