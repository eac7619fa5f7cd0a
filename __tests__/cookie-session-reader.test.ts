/**
 * CookieSessionReader (SPEC §10): reads cookie-session's cookies (`session` holding base64
 * JSON, `session.sig` keygrip's HMAC-SHA1 by any of the keys) so that a fallback can move them
 * into another store; it never writes one, and expires both cookies. Checked against cookies
 * the real cookie-session package set.
 */
import { createHmac } from "node:crypto";
import express from "express";
import { CookieSessionReader, CookieStore, SessionConfigError } from "../lib";
import { Browser, COOKIE_SESSION_KEYS, cookieSessionApp, SECRET, type Served, served, sessionboxApp } from "./helpers/express-session-apps";
import { setCookies } from "./helpers/session-cookies";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const cookieSession = require("cookie-session") as (options: object) => express.RequestHandler;

const servers: Served[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
async function serve(app: express.Express): Promise<Served> {
  const server = await served(app);
  servers.push(server);
  return server;
}

/** This package on CookieStore, moving cookie-session's sessions in through the reader. */
function movingApp(reader = new CookieSessionReader({ keys: COOKIE_SESSION_KEYS })): express.Express {
  return sessionboxApp(new CookieStore({ secret: SECRET }), { fallback: reader });
}

/** keygrip's signature of `data` with `key`, as the cookies package sets it. */
function keygrip(data: string, key: string): string {
  return createHmac("sha1", key).update(data).digest("base64url");
}

/** A browser holding cookie-session's two cookies for `value` (base64 of the JSON), signed with `key`. */
function holding(value: string, key = COOKIE_SESSION_KEYS[0], name = "session"): Browser {
  const browser = new Browser();
  browser.jar.cookies.set(name, value);
  browser.jar.cookies.set(`${name}.sig`, keygrip(`${name}=${value}`, key));
  return browser;
}
const base64 = (json: string) => Buffer.from(json).toString("base64");

describe("CookieSessionReader", () => {
  it("reads the session cookie-session set, signed with any of its keys", async () => {
    const oldKeyApp = express();
    oldKeyApp.use(cookieSession({ keys: [COOKIE_SESSION_KEYS[1]] }));
    oldKeyApp.post("/login", (req, res) => {
      (req as unknown as { session: object }).session = { user: "ann", cart: ["apple", "ü"] };
      res.end();
    });
    for (const old of [await serve(cookieSessionApp()), await serve(oldKeyApp)]) {
      const browser = new Browser();
      await browser.post(old, "/login", { user: "ann", cart: ["apple", "ü"] });
      expect((await browser.get(await serve(movingApp()), "/me")).body).toEqual({ user: "ann", cart: ["apple", "ü"] });
    }
  });

  it.each([
    ["an unsigned cookie", () => {
      const browser = new Browser();
      browser.jar.cookies.set("session", base64('{"user":"ann"}'));
      return browser;
    }],
    ["a forged signature", () => holding(base64('{"user":"ann"}'), "not-one-of-the-keys")],
    ["a signature of another cookie's value", () => {
      const browser = holding(base64('{"user":"bob"}'));
      browser.jar.cookies.set("session", base64('{"user":"ann","admin":true}'));
      return browser;
    }],
    ["a signed value that is not base64 JSON", () => holding("bm90IGpzb24=")],
    ["a signed JSON array", () => holding(base64("[1,2]"))],
    ["a signed empty session", () => holding(base64("{}"))],
  ])("gives a new empty session for %s", async (_what, make) => {
    const browser = make();
    expect(browser.jar.get("session")).toBeDefined();
    const res = await browser.get(await serve(movingApp()), "/me");
    expect([res.status, res.body]).toEqual([200, {}]);
  });

  it("ignores __proto__ in the cookie's JSON", async () => {
    const browser = holding(base64('{"user":"ann","__proto__":{"admin":true}}'));
    const res = await browser.post(await serve(movingApp()), "/set", {});
    expect(res.body).toEqual({ user: "ann" });
    expect(({} as { admin?: boolean }).admin).toBeUndefined();
  });

  it("expires both of cookie-session's cookies, under its name and with its path and domain", async () => {
    const reader = new CookieSessionReader({ keys: ["k"], name: "legacy", cookie: { path: "/app", domain: "example.com" } });
    const browser = holding(base64('{"user":"ann"}'), "k", "legacy");
    const res = await browser.get(await serve(movingApp(reader)), "/me");
    expect(res.body).toEqual({ user: "ann" });
    const expired = setCookies(res).filter((line) => line.startsWith("legacy"));
    expect(expired).toEqual([
      expect.stringMatching(/^legacy=; Max-Age=0; Domain=example\.com; Path=\/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT/),
      expect.stringMatching(/^legacy\.sig=; Max-Age=0; Domain=example\.com; Path=\/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT/),
    ]);
  });

  it.each([
    ["no options", undefined, /CookieSessionReader takes an options object/],
    ["no keys", {}, /needs cookie-session's keys/],
    ["an empty key", { keys: [""] }, /needs cookie-session's keys/],
    ["an unknown option", { keys: ["k"], secret: "s" }, /unknown option "secret"; the options are keys, name, cookie/],
    ["a cookie attribute it has no use for", { keys: ["k"], cookie: { sameSite: "lax" } }, /cookie takes only path and domain/],
    ["a bad cookie name", { keys: ["k"], name: "a b" }, /is not a valid cookie name/],
  ])("refuses %s at start-up", (_what, options, message) => {
    expect(() => new CookieSessionReader(options as never)).toThrow(SessionConfigError);
    expect(() => new CookieSessionReader(options as never)).toThrow(message);
  });
});
