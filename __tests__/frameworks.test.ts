/**
 * SPEC §2: `sessions()` returns `(req, res, next)` middleware that works under Express 5,
 * Express 4, Connect and bare `node:http`. The same small app (log in, count, log out),
 * written against `node:http` only, runs under each, with a synchronous and an
 * asynchronous store.
 */
import type { SessionStore } from "../lib/store";
import { sessions } from "../lib";
import { Browser, closeServers, FRAMEWORKS, type Handler, mount, sessionRequest, serveForTest, setCookies } from "./helpers/apps";
import { cookieStore, SlowStore } from "./helpers/test-stores";

afterEach(closeServers);

function json(res: Parameters<Handler>[1], status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify(body));
}

/** POST /login (regenerate, then redirect), GET /count (logged in only), POST /logout (destroy). */
const scenario: Handler = (req, res, next) => {
  const { session } = sessionRequest(req);
  if (req.method === "POST" && req.url === "/login") {
    void session.regenerate(); // req.session is now a new, empty session
    sessionRequest(req).session.user = "ann";
    res.statusCode = 303;
    res.setHeader("Location", "/count");
    res.end();
  } else if (req.method === "GET" && req.url === "/count") {
    if (session.user === undefined) return json(res, 401, { error: "log in first" });
    session.count = ((session.count as number | undefined) ?? 0) + 1;
    json(res, 200, { user: session.user, count: session.count });
  } else if (req.method === "POST" && req.url === "/logout") {
    session.destroy();
    json(res, 200, { bye: true });
  } else {
    next();
  }
};

const stores: Array<[string, () => SessionStore]> = [
  ["CookieStore", () => cookieStore()],
  ["an asynchronous store", () => new SlowStore()],
];

describe.each(FRAMEWORKS)("under %s", (framework) => {
  it.each(stores)("with %s: log in, count, log out", async (_name, makeStore) => {
    const { url } = await serveForTest(mount(framework, sessions(makeStore()), scenario));
    const browser = new Browser(url);

    const anonymous = await browser.get("/count");
    expect(anonymous.status).toBe(401);
    expect(setCookies(anonymous)).toEqual([]); // read but new and empty: nothing saved
    expect(anonymous.headers.vary).toBe("Cookie");

    const login = await browser.post("/login");
    expect(login.status).toBe(303);
    expect(browser.jar.get("session")).toBeDefined();
    const followed = await browser.get(login.headers.location);
    expect(followed.body).toEqual({ user: "ann", count: 1 });
    expect((await browser.get("/count")).body).toEqual({ user: "ann", count: 2 });

    const logout = await browser.post("/logout");
    expect(logout.body).toEqual({ bye: true });
    expect(setCookies(logout).find((line) => line.startsWith("session="))).toMatch(/Max-Age=0/);
    expect(browser.jar.get("session")).toBeUndefined();
    expect((await browser.get("/count")).status).toBe(401);

    expect((await browser.get("/nowhere")).status).toBe(404);
  });
});
