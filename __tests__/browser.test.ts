/**
 * Sessions in a real browser: the example app (examples/passport-app.mjs) driven by Chromium on
 * CookieStore and on RedisStore. The other suites use a cookie jar written for the tests, which
 * believes whatever the server says; here the browser's own jar decides what HttpOnly,
 * SameSite=Lax, Max-Age across a restart, 4 KB chunks and the `__Host-` prefix really do.
 */
import { createHash, randomBytes } from "node:crypto";
import { createServer } from "node:http";
import { join } from "node:path";
import type { BrowserContext, Cookie, Page } from "playwright-core";
import { describeBrowser, inBrowser } from "./helpers/browser";
import { type Started, startNode, stopChild } from "./helpers/child";
import { ensureBuilt, ROOT } from "./helpers/dist";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";

jest.setTimeout(60_000);

const APP = join(ROOT, "examples/passport-app.mjs");
const SECRET = "a-browser-test-secret-that-is-long-enough-for-the-store";

interface Example {
  app: Started;
  /** `http://localhost:<port>`: the browser's origin for the app. */
  base: string;
}

/** Starts the example on a free port of 127.0.0.1; the browser visits it as localhost. */
async function startExample(env: Record<string, string>): Promise<Example> {
  const app = await startNode(APP, [], { ...process.env, PORT: "0", HOST: "127.0.0.1", SESSION_SECRET: SECRET, REDIS_URL: undefined, NODE_ENV: "development", ...env }, /listening on http:\/\/127\.0\.0\.1:(\d+)/);
  if (!app.ready) throw new Error(`the example app did not start:\n${app.output}`);
  return { app, base: `http://localhost:${app.ready}` };
}

/** Signs in on the sign-in form, as a user would, and waits for the private page. */
async function signIn(page: Page, base: string, { remember = false } = {}): Promise<void> {
  await page.goto(`${base}/login`);
  await page.getByLabel("Name").fill("ann");
  await page.getByLabel("Password").fill("correct horse");
  if (remember) await page.getByLabel("Remember me").check();
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/private`);
}

/** Clicks a button that posts a form, and waits for the page the app redirects to. */
async function press(page: Page, button: string, landing: string): Promise<void> {
  await page.getByRole("button", { name: button }).click();
  await page.waitForURL(landing);
}

const text = (page: Page, selector: string) => page.locator(selector).first().innerText();

/** The session's cookies in the browser's jar (`name`, `name.1`, ...), sorted by name. */
async function sessionCookies(context: BrowserContext, name = "session"): Promise<Cookie[]> {
  const ours = (await context.cookies()).filter((c) => c.name === name || c.name.startsWith(`${name}.`));
  return ours.sort((a, b) => a.name.localeCompare(b.name));
}

/** The cookies as `name=<hash of the value> (<length>)`, so a failed comparison prints short lines. */
const fingerprint = (cookies: Cookie[]) => cookies.map((c) => `${c.name}=${createHash("sha256").update(c.value).digest("hex").slice(0, 12)} (${c.value.length})`);

/** Another site: a page on 127.0.0.2 that posts an empty form to `action` as soon as it loads. */
async function crossSitePoster(action: string): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((_, res) => {
    res.setHeader("content-type", "text/html");
    res.end(`<!doctype html><form method="post" action="${action}"></form><script>document.forms[0].submit()</script>`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.2", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.2:${port}/`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

beforeAll(() => ensureBuilt(), 60_000);

const stores: [string, boolean][] = [
  ["CookieStore (the default)", false],
  ["RedisStore (REDIS_URL)", true],
];

describeBrowser("the example app in Chromium", () => {
  for (const [storeName, onRedis] of stores) {
    (onRedis ? describeRedis : describe)(`on ${storeName}`, () => {
      let redis: RedisServer | undefined;
      let example: Example;
      let base: string;
      const storeEnv = (): Record<string, string> => (onRedis ? { REDIS_URL: redis!.url } : {});
      beforeAll(async () => {
        if (onRedis) redis = await startRedis();
        example = await startExample(storeEnv());
        base = example.base;
      }, 30_000);
      afterAll(async () => {
        await stopChild(example?.app.child);
        await redis?.stop();
      });

      it("signs in, shows the private page, signs out", () =>
        inBrowser(async ({ page, context }) => {
          await page.goto(`${base}/private`);
          expect(page.url()).toBe(`${base}/login`);
          await signIn(page, base);
          expect(await text(page, "#user")).toBe("ann");
          expect((await sessionCookies(context)).map((c) => c.name)).toEqual(["session"]);
          await press(page, "Sign out", `${base}/`);
          expect(await text(page, "p")).toBe("Sign in");
          expect(await context.cookies()).toEqual([]); // the signed-out session's cookie is expired, not left behind
          await page.goto(`${base}/private`);
          expect(page.url()).toBe(`${base}/login`);
        }));

      it('"remember me" checked: still signed in after the browser is closed and opened again on the same profile', () =>
        inBrowser(async (browser) => {
          await signIn(browser.page, base, { remember: true });
          expect(await text(browser.page, "#lasts")).toBe("30 days from now");
          await browser.restart();
          await browser.page.goto(`${base}/private`);
          expect(browser.page.url()).toBe(`${base}/private`);
          expect(await text(browser.page, "#user")).toBe("ann");
          expect(await text(browser.page, "#visits")).toBe("2");
        }));

      it('"remember me" unchecked: signed in while the browser runs, signed out once it is closed and opened again', () =>
        inBrowser(async (browser) => {
          await signIn(browser.page, base);
          expect(await text(browser.page, "#lasts")).toBe("until you close the browser");
          await browser.page.reload();
          expect(await text(browser.page, "#visits")).toBe("2");
          await browser.restart();
          await browser.page.goto(`${base}/private`);
          expect(browser.page.url()).toBe(`${base}/login`);
        }));

      it("page scripts cannot see the session cookie (HttpOnly), though they see their own", () =>
        inBrowser(async ({ page, context }) => {
          await signIn(page, base);
          expect((await sessionCookies(context)).map((c) => [c.name, c.httpOnly])).toEqual([["session", true]]);
          expect(await page.evaluate("document.cookie")).toBe("");
          await page.evaluate('document.cookie = "script=visible; path=/"');
          expect(await page.evaluate("document.cookie")).toBe("script=visible");
        }));

      it("a form posted from another site comes without the session (SameSite=Lax): a cross-site sign-out signs nobody out", async () => {
        // Sign-out is the POST whose effect shows: had the browser sent the session with it, the
        // home page the app redirects to would offer "Sign in" instead of greeting ann.
        const attacker = await crossSitePoster(`${base}/logout`);
        try {
          await inBrowser(async ({ page }) => {
            await signIn(page, base);
            await page.goto(attacker.url);
            await page.waitForURL(`${base}/`); // the app got the POST and answered with its redirect
            expect(await text(page, "p")).toBe("Signed in as ann. Your page");
            await page.goto(`${base}/private`);
            expect(await text(page, "#user")).toBe("ann");
          });
        } finally {
          await attacker.close();
        }
      });

      it("a session grown to 10 KB survives a reload, 20 KB is kept (Redis) or refused whole (cookie); shrunk again, the jar holds one small cookie and no stale chunk", () =>
        inBrowser(async ({ page, context }) => {
          await signIn(page, base);
          const note = randomBytes(7_500).toString("base64"); // 10,000 characters, as large sealed as plain
          await page.getByLabel("Note").fill(note);
          await press(page, "Add note", `${base}/private`);
          const grown = await sessionCookies(context);
          if (onRedis) {
            expect(grown.map((c) => c.name)).toEqual(["session"]); // the notes are in Redis; the cookie is the signed id
            expect(grown[0].value.length).toBeLessThan(100);
          } else {
            expect(grown.map((c) => c.name)).toEqual(["session", "session.1", "session.2", "session.3"]);
            for (const c of grown) expect(c.name.length + 1 + c.value.length).toBeLessThanOrEqual(4096);
          }
          await page.reload();
          expect(await page.locator("#notes li").allInnerTexts()).toEqual([note]);
          expect(await text(page, "#visits")).toBe("3");

          // A second one: RedisStore keeps both; past CookieStore's maxSize the app says the note was
          // not kept, and the browser's cookies are as they were (nothing cut short).
          const second = randomBytes(7_500).toString("base64");
          await page.getByLabel("Note").fill(second);
          const before = fingerprint(await sessionCookies(context));
          if (onRedis) {
            await press(page, "Add note", `${base}/private`);
            expect(await page.locator("#notes li").allInnerTexts()).toEqual([note, second]);
          } else {
            await press(page, "Add note", `${base}/notes`);
            expect(await text(page, "h1")).toBe("Too many notes");
            expect(fingerprint(await sessionCookies(context))).toEqual(before);
            await page.goto(`${base}/private`);
            expect(await page.locator("#notes li").allInnerTexts()).toEqual([note]);
          }

          await press(page, "Clear notes", `${base}/private`);
          expect(await page.locator("#notes li").count()).toBe(0);
          const shrunk = await sessionCookies(context);
          expect(shrunk.map((c) => c.name)).toEqual(["session"]);
          expect(shrunk[0].value.length).toBeLessThan(400);
          await page.reload();
          expect([await text(page, "#user"), await text(page, "#visits")]).toEqual(["ann", "6"]);
        }));

      it("a session cookie edited in the jar (one character changed) gives the signed-out pages, not an error", () =>
        inBrowser(async ({ page, context }) => {
          await signIn(page, base);
          const [cookie] = await sessionCookies(context);
          const at = cookie.value.length >> 1;
          const value = cookie.value.slice(0, at) + (cookie.value[at] === "A" ? "B" : "A") + cookie.value.slice(at + 1);
          await context.addCookies([{ ...cookie, value }]);
          expect((await sessionCookies(context)).map((c) => c.value)).toEqual([value]);
          const statuses: number[] = [];
          page.on("response", (res) => statuses.push(res.status()));
          await page.goto(`${base}/private`);
          expect(page.url()).toBe(`${base}/login`);
          await page.goto(`${base}/`);
          expect(await text(page, "p")).toBe("Sign in");
          expect(statuses).toEqual([303, 200, 200]);
        }));

      it("a __Host- cookie (Secure, Path=/, no Domain) is kept on http://localhost, its chunks too", async () => {
        // Chromium treats http://localhost as a secure context, so it accepts Secure cookies there.
        const hosted = await startExample({ ...storeEnv(), SESSION_COOKIE: "__Host-session" });
        try {
          await inBrowser(async ({ page, context }) => {
            await signIn(page, hosted.base);
            const note = randomBytes(7_500).toString("base64");
            await page.getByLabel("Note").fill(note);
            await press(page, "Add note", `${hosted.base}/private`);
            await page.reload();
            expect(await page.locator("#notes li").allInnerTexts()).toEqual([note]);
            const jar = await sessionCookies(context, "__Host-session");
            expect(jar.length).toBe(onRedis ? 1 : 4);
            for (const c of jar) expect([c.secure, c.path, c.domain]).toEqual([true, "/", "localhost"]);
          });
        } finally {
          await stopChild(hosted.app.child);
        }
      });
    });
  }
});
