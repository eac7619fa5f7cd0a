// Starts Debian's Chromium through playwright-core, for the browser tests and `npm run screenshot`.
// Playwright's own browser download needs the network, so the system's Chromium is driven
// instead; its background services are turned off because a closed network makes them fail
// noisily at every start.
"use strict";
const { spawnSync } = require("node:child_process");
const { chromium } = require("playwright-core");

/** The browser: `CHROMIUM_PATH`, else Debian's package (`apt-get install chromium`). */
const CHROMIUM_PATH = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

const ARGS = [
  "--no-sandbox", // CI runs as root, where Chromium's sandbox refuses to start
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** `true` when `CHROMIUM_PATH` runs and prints its version (within 10 s). */
function hasChromium() {
  const run = spawnSync(CHROMIUM_PATH, ["--version"], { encoding: "utf8", timeout: 10_000 });
  return run.status === 0 && /chrom/i.test(run.stdout);
}

/**
 * Chromium, headless, on the profile folder `userDataDir`: opening the same folder again is
 * the same browser after a restart (its cookie jar included), a new folder a fresh one. Start-up
 * waits at most 20 s, each action 5 s and each navigation 10 s, so a hang fails fast.
 */
async function launchChromium(userDataDir, options = {}) {
  const context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM_PATH, headless: true, args: ARGS, timeout: 20_000, ...options });
  context.setDefaultTimeout(5_000);
  context.setDefaultNavigationTimeout(10_000);
  return context;
}

module.exports = { CHROMIUM_PATH, hasChromium, launchChromium };
