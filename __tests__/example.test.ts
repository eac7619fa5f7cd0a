/**
 * The example app (`npm run example`: examples/passport-app.mjs), driven over HTTP as a browser
 * would, on CookieStore (the default) and on RedisStore (REDIS_URL, against the harness's
 * redis-server): sign in with and without "remember me", the private page, sign out.
 */
import { join } from "node:path";
import { type Started, startNode, stopChild } from "./helpers/child";
import { ensureBuilt, ROOT } from "./helpers/dist";
import { REDIS, type RedisServer, startRedis } from "./helpers/redis";
import { describeNeeding } from "./helpers/servers";

jest.setTimeout(60_000);

const APP = join(ROOT, "examples/passport-app.mjs");
const SECRET = "an-example-secret-that-is-long-enough-for-the-store";
const THIRTY_DAYS = 30 * 86_400;

/** A browser's cookie jar: what Set-Cookie stores, and Max-Age=0 deletes. Every request times out after 10 s. */
class Browser {
  readonly cookies = new Map<string, string>();
  constructor(readonly base: string) {}

  get header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  async request(method: "GET" | "POST", path: string, form?: Record<string, string>): Promise<{ res: Response; body: string; setCookie: string[] }> {
    const headers: Record<string, string> = form ? { "content-type": "application/x-www-form-urlencoded" } : {};
    if (this.cookies.size > 0) headers.cookie = this.header;
    const res = await fetch(this.base + path, { method, headers, body: form && new URLSearchParams(form).toString(), redirect: "manual", signal: AbortSignal.timeout(10_000) });
    const setCookie = res.headers.getSetCookie();
    for (const line of setCookie) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      if (attributes.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.cookies.delete(pair.slice(0, eq));
      else this.cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    return { res, body: await res.text(), setCookie };
  }
}

function start(env: Record<string, string | undefined>): Promise<Started> {
  return startNode(APP, [], { ...process.env, PORT: "0", HOST: "127.0.0.1", SESSION_SECRET: SECRET, REDIS_URL: undefined, NODE_ENV: "development", ...env }, /listening on (http:\/\/\S+)/);
}

/** The Redis key of the browser's session: its cookie carries the id, signed (`<id>.<signature>`). */
const sessionKey = (browser: Browser) => `sess:${(browser.cookies.get("session") as string).split(".")[0]}`;
const field = (body: string, id: string) => new RegExp(`id="${id}">([^<]*)<`).exec(body)?.[1];

beforeAll(() => ensureBuilt(), 60_000);

const stores: [string, boolean][] = [
  ["CookieStore (the default)", false],
  ["RedisStore (REDIS_URL)", true],
];

describe.each(stores)("the example app on %s", (_, onRedis) => {
  (onRedis ? (name: string, fn: () => void) => describeNeeding([REDIS], name, fn) : describe)("sign in, private page, sign out", () => {
    let redis: RedisServer | undefined;
    let app: Started;
    beforeAll(async () => {
      if (onRedis) redis = await startRedis();
      app = await start(onRedis ? { REDIS_URL: redis!.url } : {});
      if (!app.ready) throw new Error(`the example app did not start:\n${app.output}`);
    }, 30_000);
    afterAll(async () => {
      await stopChild(app?.child);
      await redis?.stop();
    });

    it("a visitor sees the home page and no cookie (an empty session is not saved); the private page sends them to sign in", async () => {
      const browser = new Browser(app.ready as string);
      const home = await browser.request("GET", "/");
      expect(home.res.status).toBe(200);
      expect(home.body).toContain('<a href="/login">Sign in</a>');
      expect(home.setCookie).toEqual([]);
      const denied = await browser.request("GET", "/private");
      expect([denied.res.status, denied.res.headers.get("location")]).toEqual([303, "/login"]);
    });

    it("a wrong password goes back to the form and signs nobody in", async () => {
      const browser = new Browser(app.ready as string);
      const res = await browser.request("POST", "/login", { username: "ann", password: "wrong" });
      expect([res.res.status, res.res.headers.get("location")]).toEqual([302, "/login?failed=1"]);
      expect((await browser.request("GET", "/private")).res.status).toBe(303);
    });

    it('"remember me": a cookie of 30 days, still 30 days on the next request', async () => {
      const browser = new Browser(app.ready as string);
      const login = await browser.request("POST", "/login", { username: "ann", password: "correct horse", remember: "1" });
      expect([login.res.status, login.res.headers.get("location")]).toEqual([303, "/private"]);
      expect(login.setCookie).toEqual([expect.stringMatching(new RegExp(`^session=[^;]+; Max-Age=${THIRTY_DAYS}; Path=/; HttpOnly; SameSite=Lax$`))]);
      const page = await browser.request("GET", "/private");
      expect(field(page.body, "user")).toBe("ann");
      expect(field(page.body, "lasts")).toBe("30 days from now");
      const again = await browser.request("GET", "/private");
      expect(field(again.body, "visits")).toBe("2");
      if (onRedis) {
        // The id cookie the browser holds is unchanged (re-issued only after touchAfter); the key's TTL slides to 30 days.
        expect(again.setCookie).toEqual([]);
        const ttl = Number(await redis!.cli("PTTL", sessionKey(browser)));
        expect(ttl).toBeGreaterThan(THIRTY_DAYS * 1000 - 10_000);
        expect(ttl).toBeLessThanOrEqual(THIRTY_DAYS * 1000);
      } else {
        // The session is in the cookie: each change re-issues it, with its whole 30 days.
        expect(page.setCookie).toEqual([expect.stringMatching(new RegExp(`; Max-Age=${THIRTY_DAYS}; `))]);
        expect(again.setCookie).toEqual([expect.stringMatching(new RegExp(`; Max-Age=${THIRTY_DAYS}; `))]);
      }
    });

    it("without it, a cookie that ends with the browser (no Max-Age, no Expires), on the next request too", async () => {
      const browser = new Browser(app.ready as string);
      const login = await browser.request("POST", "/login", { username: "ann", password: "correct horse" });
      expect(login.setCookie).toEqual([expect.stringMatching(/^session=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/)]);
      const page = await browser.request("GET", "/private");
      expect(field(page.body, "lasts")).toBe("until you close the browser");
      // Re-issued (CookieStore: the session changed) or not (RedisStore: the id cookie is unchanged), never with a lifetime.
      expect(page.setCookie).toEqual(onRedis ? [] : [expect.stringMatching(/^session=[^;]+; Path=\/; HttpOnly; SameSite=Lax$/)]);
      if (onRedis) expect(Number(await redis!.cli("PTTL", sessionKey(browser)))).toBeLessThanOrEqual(86_400_000); // the server's idle timeout still applies
    });

    it("signs in with a new session id, and signs out: the private page is closed again", async () => {
      const browser = new Browser(app.ready as string);
      await browser.request("POST", "/login", { username: "ann", password: "correct horse", remember: "1" });
      const signedIn = browser.header;
      await browser.request("POST", "/login", { username: "ann", password: "correct horse", remember: "1" });
      expect(browser.header).not.toBe(signedIn); // each sign-in regenerates the session
      const key = onRedis ? sessionKey(browser) : "";
      if (onRedis) expect(await redis!.cli("EXISTS", key)).toBe("1");
      const out = await browser.request("POST", "/logout");
      expect([out.res.status, out.res.headers.get("location")]).toEqual([303, "/"]);
      expect((await browser.request("GET", "/private")).res.status).toBe(303);
      expect((await browser.request("GET", "/")).body).toContain('<a href="/login">Sign in</a>');
      if (onRedis) expect(await redis!.cli("EXISTS", key)).toBe("0"); // the signed-out session is gone from Redis
    });
  });
});

describe("the example app's secret", () => {
  let app: Started | undefined;
  afterEach(() => stopChild(app?.child));

  it("uses a random secret in development when SESSION_SECRET is unset, and says so", async () => {
    app = await start({ SESSION_SECRET: undefined });
    expect(app.ready).toBeDefined();
    expect(app.output).toContain("SESSION_SECRET is not set: using a random secret for this run");
  });

  it("refuses to start in production without SESSION_SECRET", async () => {
    app = await start({ SESSION_SECRET: undefined, NODE_ENV: "production" });
    expect(app.code).toBe(1);
    expect(app.output).toContain("SESSION_SECRET is not set. In production the secret must come from the environment");
  });

  it("refuses a short secret with the store's message", async () => {
    app = await start({ SESSION_SECRET: "too-short" });
    expect(app.code).toBe(1);
    expect(app.output).toContain("CookieStore: secret must be a string of at least 32 characters");
  });
});
