// `npm run screenshot`: the example's signed-in page as Chromium shows it, written to
// docs/signed-in.png for the README. Starts the example (CookieStore) on a free port, signs in as
// ann with "remember me", adds a note, and takes the picture; the same browser set-up as the tests.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM_PATH, hasChromium, launchChromium } from "./chromium.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "docs/signed-in.png");

if (!hasChromium()) {
  console.error(`Chromium is not at ${CHROMIUM_PATH}: install it (apt-get install chromium) or set CHROMIUM_PATH.`);
  process.exit(1);
}
// A hang (the app or the browser) ends the run instead of blocking it.
setTimeout(() => {
  console.error("npm run screenshot: timed out after 60 s");
  process.exit(1);
}, 60_000).unref();

const env = { ...process.env, PORT: "0", HOST: "127.0.0.1", SESSION_SECRET: randomBytes(32).toString("base64url"), NODE_ENV: "development" };
delete env.REDIS_URL;
delete env.SESSION_COOKIE;
const app = spawn(process.execPath, [join(root, "examples/passport-app.mjs")], { cwd: root, env, stdio: ["ignore", "pipe", "inherit"] });
const profile = mkdtempSync(join(tmpdir(), "sessionbox-screenshot-"));
let context;
try {
  const base = await listening(app);
  context = await launchChromium(profile, { viewport: { width: 640, height: 360 } });
  const page = context.pages()[0] ?? (await context.newPage());
  await page.goto(`${base}/login`);
  await page.getByLabel("Name").fill("ann");
  await page.getByLabel("Password").fill("correct horse");
  await page.getByLabel("Remember me").check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/private`);
  await page.getByLabel("Note").fill("Buy oat milk");
  await page.getByRole("button", { name: "Add note" }).click();
  await page.waitForURL(`${base}/private`);
  mkdirSync(dirname(out), { recursive: true });
  await page.screenshot({ path: out });
  console.log(`wrote ${out}`);
} finally {
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
  app.kill("SIGTERM");
}

/** Resolves with the app's address (as localhost, like the tests) once it says it listens; rejects if it exits first. */
function listening(child) {
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const port = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      if (port) resolve(`http://localhost:${port}`);
    });
    child.once("exit", (code) => reject(new Error(`the example app exited (${code}) before listening:\n${output}`)));
  });
}
