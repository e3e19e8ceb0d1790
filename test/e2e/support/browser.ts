import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { OUTPUT_DIR } from './stack';

/** Debian's Chromium; the suite never downloads a browser. */
export const CHROMIUM = '/usr/bin/chromium';

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * `describe` for the browser suites: without Chromium they say so loudly and
 * skip, except under CI, where the missing browser is a failure.
 */
export function browserSuite(title: string, body: () => void): void {
  suiteTitle = title;
  if (fs.existsSync(CHROMIUM)) {
    describe(title, body);
    return;
  }
  const why = `${CHROMIUM} is missing; install Debian's chromium (apt-get install chromium, as .ci/run does)`;
  if (process.env.CI) {
    describe(title, () => {
      it('needs Chromium to run the browser tests', () => {
        throw new Error(`the browser tests cannot run under CI: ${why}`);
      });
    });
    return;
  }
  console.warn(`\n*** Browser tests SKIPPED (${title}): ${why}. ***\n`);
  describe.skip(title, body);
}

/** Launches Debian's Chromium headless; each context starts with an empty profile. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** The title given to `browserSuite` in this test file; test folders are named without it. */
let suiteTitle = '';

function slug(text: string, max = 100): string {
  const whole = text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'test';
  if (whole.length <= max) return whole;
  // names that differ only at their end (it.each) still get folders of their own
  return `${whole.slice(0, max - 9)}-${createHash('sha256').update(text).digest('hex').slice(0, 8)}`;
}

/** The folder of the running test's screenshots: `test-output/e2e/<suite>/<test>/`. */
function testDir(suite: string): string {
  const full = expect.getState().currentTestName ?? 'outside a test';
  const name = suiteTitle && full.startsWith(`${suiteTitle} `) ? full.slice(suiteTitle.length + 1) : full;
  return path.join(OUTPUT_DIR, suite, slug(name));
}

/**
 * One visitor: a fresh browser context (no cookies, its own storage) that
 * records every Content-Security-Policy violation and uncaught script error on
 * any of its pages, and screenshots each step of a walk.
 */
export class Visitor {
  private stepCount = 0;
  private dir = '';

  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
    private readonly suite: string,
    /** CSP violations and script errors seen so far; a test ends with none. */
    readonly problems: string[],
  ) {}

  static async open(browser: Browser, suite: string, options: { locale?: string } = {}): Promise<Visitor> {
    const context = await browser.newContext({ locale: options.locale ?? 'en-GB', viewport: { width: 1024, height: 768 } });
    context.setDefaultTimeout(10_000);
    context.setDefaultNavigationTimeout(15_000);
    const problems: string[] = [];
    // bindings and init scripts are injected by the browser itself, so the page's CSP does not stop them
    await context.exposeBinding('__reportCspViolation', ({ page }, violation: string) => {
      problems.push(`CSP violation on ${page.url()}: ${violation}`);
    });
    await context.addInitScript({
      content: `document.addEventListener('securitypolicyviolation', function (event) {
        window.__reportCspViolation(event.violatedDirective + ' blocked ' + (event.blockedURI || '(inline)') + ' in ' + (event.sourceFile || event.documentURI) + ':' + event.lineNumber);
      });`,
    });
    context.on('console', (message) => {
      if (/Content[ -]Security[ -]Policy/i.test(message.text())) problems.push(`console ${message.type()} on ${message.page()?.url() ?? '?'}: ${message.text()}`);
    });
    context.on('weberror', (error) => {
      problems.push(`script error on ${error.page()?.url() ?? '?'}: ${error.error().message}`);
    });
    return new Visitor(context, await context.newPage(), suite, problems);
  }

  /**
   * Runs one step of a walk, then screenshots the page it ends on (the
   * action may answer another page, e.g. a popup) as `NN-<name>.png`. On a
   * failure every open page is kept as `NN-<name>-FAILED[-k].png` and `.html`.
   */
  async step(name: string, action: () => Promise<Page | void>): Promise<void> {
    if (!this.dir) {
      this.dir = testDir(this.suite);
      fs.rmSync(this.dir, { recursive: true, force: true });
      fs.mkdirSync(this.dir, { recursive: true });
    }
    this.stepCount += 1;
    const base = path.join(this.dir, `${String(this.stepCount).padStart(2, '0')}-${slug(name)}`);
    let shown: Page;
    try {
      shown = (await action()) ?? this.page;
    } catch (error) {
      await this.keepFailure(base);
      throw error;
    }
    await shown.screenshot({ path: `${base}.png`, fullPage: true });
  }

  private async keepFailure(base: string): Promise<void> {
    const pages = this.context.pages();
    for (const [index, page] of pages.entries()) {
      const file = `${base}-FAILED${pages.length > 1 ? `-${index + 1}` : ''}`;
      try {
        await page.screenshot({ path: `${file}.png`, fullPage: true, timeout: 5000 });
        fs.writeFileSync(`${file}.html`, `<!-- ${page.url()} -->\n${await page.content()}`);
      } catch {
        // a closed or crashed page: keep what could be kept
      }
    }
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/** The focused element, in words a failure message can use. */
export async function focusedElement(page: Page): Promise<string> {
  return page.evaluate(`(function () {
    var el = document.activeElement;
    if (!el || el === document.body) return '(body)';
    return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' "' + (el.textContent || el.value || '').trim().slice(0, 40) + '"';
  })()`);
}

/** Presses Tab until the focused element matches `selector`. */
export async function tabTo(page: Page, selector: string, maxPresses = 20): Promise<void> {
  for (let i = 0; i < maxPresses; i += 1) {
    await page.keyboard.press('Tab');
    const matches = await page.evaluate(`!!(document.activeElement && document.activeElement.matches(${JSON.stringify(selector)}))`);
    if (matches) return;
  }
  throw new Error(`${selector} never had the focus after ${maxPresses} presses of Tab (focus is on ${await focusedElement(page)})`);
}

export interface FocusStyle {
  outlineStyle: string;
  outlineWidth: string;
  outlineColor: string;
  boxShadow: string;
}

/** The computed focus indicator of the focused element. */
export async function focusStyleOf(page: Page): Promise<FocusStyle> {
  return page.evaluate(`(function () {
    var style = getComputedStyle(document.activeElement);
    return { outlineStyle: style.outlineStyle, outlineWidth: style.outlineWidth, outlineColor: style.outlineColor, boxShadow: style.boxShadow };
  })()`);
}

/** True when the style draws something around the focused element. */
export function isVisibleFocus(style: FocusStyle): boolean {
  return (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none';
}
