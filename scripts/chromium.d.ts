import type { BrowserContext, LaunchOptions, BrowserContextOptions } from "playwright-core";

/** The browser: `CHROMIUM_PATH`, else Debian's package (`apt-get install chromium`). */
export const CHROMIUM_PATH: string;
/** `true` when `CHROMIUM_PATH` runs and prints its version (within 10 s). */
export function hasChromium(): boolean;
/**
 * Chromium, headless, on the profile folder `userDataDir`: opening the same folder again is
 * the same browser after a restart (its cookie jar included), a new folder a fresh one.
 */
export function launchChromium(userDataDir: string, options?: LaunchOptions & BrowserContextOptions): Promise<BrowserContext>;
