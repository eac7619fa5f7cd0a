/**
 * `sessions(store, { fallback })` beyond the migrations themselves (SPEC §10): what it accepts,
 * that two synchronous stores stay synchronous, and that nothing is lost when either store
 * fails while a session moves.
 */
import { createHmac } from "node:crypto";
import { CookieSessionReader, CookieStore, type ExpressSessionBackend, ExpressSessionStore, SessionConfigError, sessions, type SessionStore } from "../lib";
import { Browser, COOKIE_SESSION_KEYS, DAY, expressSession, expressSessionApp, SECRET, type Served, served, sessionboxApp } from "./helpers/express-session-apps";
import { recorded } from "./helpers/express-session-backends";
import { FailingStore } from "./helpers/test-stores";

const servers: Served[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
async function serve(store: SessionStore, options: Parameters<typeof sessionboxApp>[1]): Promise<Served> {
  const server = await served(sessionboxApp(store, options));
  servers.push(server);
  return server;
}

/** A browser holding a cookie-session session `{ user }`. */
function cookieSessionBrowser(user: string): Browser {
  const browser = new Browser();
  const value = Buffer.from(JSON.stringify({ user })).toString("base64");
  browser.jar.cookies.set("session", value);
  browser.jar.cookies.set("session.sig", createHmac("sha1", COOKIE_SESSION_KEYS[0]).update(`session=${value}`).digest("base64url"));
  return browser;
}

describe("sessions(store, { fallback })", () => {
  it.each([
    ["a plain object", {}],
    ["a string", "redis"],
  ])("refuses %s as the fallback at start-up", (_what, fallback) => {
    expect(() => sessions(new CookieStore({ secret: SECRET }), { fallback: fallback as never })).toThrow(SessionConfigError);
    expect(() => sessions(new CookieStore({ secret: SECRET }), { fallback: fallback as never })).toThrow(/fallback must be a store \(an object with load and dump\)/);
  });

  it("keeps two synchronous stores synchronous: req.session is there without loadSession(), even with preload: false", async () => {
    const app = await serve(new CookieStore({ secret: SECRET }), { fallback: new CookieSessionReader({ keys: COOKIE_SESSION_KEYS }), preload: false });
    const browser = cookieSessionBrowser("ann");
    expect((await browser.get(app, "/me")).body).toEqual({ user: "ann" });
    expect((await browser.post(app, "/count")).body).toEqual({ user: "ann", views: 1 });
  });

  it("keeps what the handler changed on the request that moves the session", async () => {
    const app = await serve(new CookieStore({ secret: SECRET }), { fallback: new CookieSessionReader({ keys: COOKIE_SESSION_KEYS }) });
    const browser = cookieSessionBrowser("ann");
    expect((await browser.post(app, "/set", { theme: "dark" })).body).toEqual({ user: "ann", theme: "dark" });
    expect((await browser.get(app, "/me")).body).toEqual({ user: "ann", theme: "dark" });
  });

  it("leaves the old session in place when the new store fails to save it: the user is still signed in afterwards", async () => {
    const reader = new CookieSessionReader({ keys: COOKIE_SESSION_KEYS });
    const broken = await serve(new FailingStore("reject", Object.assign(new Error("store down"), { status: 503 })), { fallback: reader });
    const browser = cookieSessionBrowser("ann");
    const res = await browser.get(broken, "/me");
    expect(res.status).toBe(503);
    expect(browser.jar.names()).toEqual(["session", "session.sig"]);
    const working = await serve(new CookieStore({ secret: SECRET }), { fallback: reader });
    expect((await browser.get(working, "/me")).body).toEqual({ user: "ann" });
  });

  it("answers a 503 when the old store cannot delete the old record, and the user stays signed in through it", async () => {
    const memory = new expressSession.MemoryStore();
    const old = await served(expressSessionApp(memory));
    servers.push(old);
    const browser = new Browser();
    await browser.post(old, "/login", { user: "ann" });
    const stuck: ExpressSessionBackend = { ...recorded(memory), destroy: (_sid, cb) => cb(new Error("read-only replica")) };
    const app = await serve(new CookieStore({ secret: SECRET }), { fallback: new ExpressSessionStore({ store: stuck, secret: SECRET, maxAge: DAY }) });
    const res = await browser.get(app, "/me");
    expect(res.status).toBe(503);
    expect(res.body.error).toContain("the store's destroy() failed: read-only replica");
    expect(browser.jar.names()).toEqual(["connect.sid"]);
    expect((await browser.get(old, "/me")).body).toEqual({ user: "ann" });
  });
});
