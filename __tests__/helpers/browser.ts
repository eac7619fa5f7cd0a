/**
 * Chromium for the browser suites (launched by scripts/chromium.js, shared with
 * `npm run screenshot`): a browser per test on a profile folder of its own, that a test can quit
 * and start again on the same profile, and that leaves a screenshot and the page's HTML behind
 * when the test fails.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { CHROMIUM_PATH, hasChromium, launchChromium } from "../../scripts/chromium";
import { describeNeeding } from "./servers";

/** Where a failed browser test leaves its screenshot and HTML (outside the repository). */
export const FAILURES = join(tmpdir(), "sessionbox-browser-failures");

const available = hasChromium();

/**
 * `describe` for a suite that needs Chromium. Without it the suite is skipped with a loud
 * notice, except under `CI=true`, where it fails: CI must run the browser suites.
 */
export function describeBrowser(name: string, fn: () => void): void {
  describeNeeding([{ available, missing: `Chromium is not at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set CHROMIUM_PATH` }], name, fn);
}

/** A Chromium with its own profile: `page` is its tab. */
export class Browser {
  private constructor(
    readonly profile: string,
    public context: BrowserContext,
    public page: Page,
  ) {}

  static async open(): Promise<Browser> {
    const profile = mkdtempSync(join(tmpdir(), "sessionbox-chromium-"));
    const context = await launchChromium(profile).catch((err: unknown) => {
      rmSync(profile, { recursive: true, force: true });
      throw err;
    });
    return new Browser(profile, context, await firstPage(context));
  }

  /** Quits the browser (a clean exit: the jar is written to the profile) and starts it again on the same profile. */
  async restart(): Promise<void> {
    await this.context.close();
    this.context = await launchChromium(this.profile);
    this.page = await firstPage(this.context);
  }

  /** Quits the browser and deletes its profile. */
  async close(): Promise<void> {
    await this.context.close().catch(() => undefined); // already closed or crashed: nothing left to quit
    rmSync(this.profile, { recursive: true, force: true });
  }
}

/**
 * Runs `body` with a browser of its own. When it fails, the tab's screenshot and HTML are saved
 * to FAILURES and their paths added to the error, so the test's output says where they are.
 */
export async function inBrowser(body: (browser: Browser) => Promise<void>): Promise<void> {
  const browser = await Browser.open();
  try {
    await body(browser);
  } catch (err) {
    const saved = await saveEvidence(browser.page, expect.getState().currentTestName ?? "browser test");
    if (err instanceof Error) err.message += `\n\n${saved}`;
    console.error(saved);
    throw err;
  } finally {
    await browser.close();
  }
}

/** The tab a persistent context opens with (a new one if it has none). */
async function firstPage(context: BrowserContext): Promise<Page> {
  return context.pages()[0] ?? (await context.newPage());
}

/** Saves the page's screenshot and HTML; returns a line naming the files (or why they are missing). */
async function saveEvidence(page: Page, testName: string): Promise<string> {
  const base = join(FAILURES, `${testName.replace(/[^\w.-]+/g, "-").slice(0, 180)}-${process.pid}-${Date.now()}`);
  try {
    mkdirSync(FAILURES, { recursive: true });
    writeFileSync(`${base}.html`, `<!-- ${page.url()} -->\n${await page.content()}`);
    await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 5_000 });
    return `Browser evidence: ${base}.png and ${base}.html (the page at ${page.url()})`;
  } catch (err) {
    return `Browser evidence could not be saved to ${base}.*: ${(err as Error).message}`;
  }
}
