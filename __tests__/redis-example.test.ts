/**
 * The Redis example app (`REDIS_URL=... npm run example:redis`), driven as a browser would,
 * against the harness's redis-server: two copies of the app share the sessions.
 */
import { join } from "node:path";
import { type Started, startNode, stopChild } from "./helpers/child";
import { ensureBuilt, ROOT } from "./helpers/dist";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";

const APP = join(ROOT, "examples/redis-app.mjs");
const SECRET = "an-example-secret-that-is-long-enough-for-the-store";

/** Starts the example with `env`; resolves once it prints its address (`ready`) or exits. */
function start(env: Record<string, string | undefined>): Promise<Started> {
  return startNode(APP, [], { ...process.env, PORT: "0", HOST: "127.0.0.1", SESSION_SECRET: SECRET, REDIS_URL: undefined, ...env }, /listening on (http:\/\/\S+)/);
}

/** A browser with one cookie jar, that can switch between the copies of the app. */
class Browser {
  cookie = "";
  async request(base: string, method: "GET" | "POST", path: string, form: Record<string, string> = {}): Promise<{ res: Response; body: string }> {
    const headers: Record<string, string> = method === "POST" ? { "content-type": "application/x-www-form-urlencoded" } : {};
    if (this.cookie !== "") headers.cookie = this.cookie;
    const res = await fetch(base + path, { method, headers, body: method === "POST" ? new URLSearchParams(form).toString() : undefined, redirect: "manual" });
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      this.cookie = attributes.some((attr) => /^\s*max-age=0\s*$/i.test(attr)) ? "" : pair;
    }
    return { res, body: await res.text() };
  }
}

const sessionId = (body: string) => /Session id: <code>([0-9a-f-]{36})<\/code>/.exec(body)?.[1];

beforeAll(() => ensureBuilt(), 60_000);

describeRedis("the Redis example app (npm run example:redis)", () => {
  let server: RedisServer;
  let one: Started | undefined;
  let two: Started | undefined;

  beforeAll(async () => {
    server = await startRedis();
    [one, two] = await Promise.all([start({ REDIS_URL: server.url }), start({ REDIS_URL: server.url })]);
    for (const app of [one, two]) if (!app.ready) throw new Error(`the example app did not start:\n${app.output}`);
  }, 30_000);

  afterAll(async () => {
    await Promise.all([stopChild(one?.child), stopChild(two?.child)]);
    await server?.stop();
  });

  it("signs in on one copy, counts on the other, and signs out, with the session in Redis", async () => {
    const a = (one as Started).ready as string;
    const b = (two as Started).ready as string;
    const browser = new Browser();

    const home = await browser.request(a, "GET", "/");
    expect(home.body).toContain("Not signed in.");
    expect(home.res.headers.getSetCookie()).toEqual([]);

    const login = await browser.request(a, "POST", "/login", { name: "ann" });
    expect(login.res.status).toBe(303);
    const signedIn = await browser.request(b, "GET", "/");
    expect(signedIn.body).toContain("Signed in as <b>ann</b>");
    const id = sessionId(signedIn.body) as string;
    expect(await server.cli("EXISTS", `example:${id}`)).toBe("1");

    await browser.request(b, "POST", "/count");
    expect((await browser.request(a, "GET", "/")).body).toContain('<b id="count">1</b>');

    const logout = await browser.request(a, "POST", "/logout");
    expect(logout.res.status).toBe(303);
    expect(browser.cookie).toBe("");
    expect(await server.cli("EXISTS", `example:${id}`)).toBe("0");
    expect((await browser.request(b, "GET", "/")).body).toContain("Not signed in.");
  });

  it("closes its Redis client and exits cleanly on SIGTERM", async () => {
    expect(await stopChild(two?.child)).toBe(0);
  });

  it("refuses to start without REDIS_URL, saying how to set it", async () => {
    const app = await start({ REDIS_URL: undefined });
    expect(app.code).toBe(1);
    expect(app.output).toMatch(/REDIS_URL is not set: .*\n\s+REDIS_URL=redis:\/\/127\.0\.0\.1:6379 npm run example:redis/);
  });
});
