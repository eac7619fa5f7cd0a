/**
 * ExpressSessionStore (SPEC §10): an express-session store as a SessionStore. Its options, the
 * signed cookie (forged and unsigned ids never reach the store), when it writes, touches or
 * calls nothing, absoluteTimeout over records express-session wrote, and a store that hangs or
 * fails (a 503 within `timeout`, on real servers too).
 */
import { sign } from "cookie-signature";
import { createClient } from "redis";
import express from "express";
import { CookieStore, type ExpressSessionBackend, ExpressSessionStore, SessionConfigError, type SessionStore, sessions } from "../lib";
import { createPostgresDatabase, POSTGRES } from "./helpers/databases";
import { Browser, DAY, expressSession, expressSessionApp, SECRET, type Served, served, sessionboxApp } from "./helpers/express-session-apps";
import { type Recorded, recorded } from "./helpers/express-session-backends";
import { describeRedis, startRedis } from "./helpers/redis";
import { describeNeeding } from "./helpers/servers";
import { fakeClock, setCookies } from "./helpers/session-cookies";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** Serves this package over `store`, closing the server after the test. */
const servers: Served[] = [];
async function serve(store: SessionStore): Promise<Served> {
  const server = await served(sessionboxApp(store));
  servers.push(server);
  return server;
}
async function serveOld(store: ExpressSessionBackend): Promise<Served> {
  const server = await served(expressSessionApp(store));
  servers.push(server);
  return server;
}
afterEach(async () => {
  jest.restoreAllMocks();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

describe("ExpressSessionStore options", () => {
  const store = new expressSession.MemoryStore();

  it("uses express-session's cookie name, connect.sid, and the other stores' defaults", async () => {
    const sessionbox = new ExpressSessionStore({ store, secret: SECRET });
    expect([sessionbox.maxAge, sessionbox.absoluteTimeout, sessionbox.touchAfter, sessionbox.timeout]).toEqual([DAY, 7 * DAY, MINUTE, 2000]);
    const res = await new Browser().post(await serve(sessionbox), "/login", { user: "ann" });
    expect(setCookies(res)).toEqual([expect.stringMatching(/^connect\.sid=s%3A[^;]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/)]);
  });

  it.each([
    ["no store", { secret: SECRET }, /ExpressSessionStore needs \{ store \}: an express-session store with get, set and destroy .*none was given/],
    ["a store without destroy", { store: { get() {}, set() {} }, secret: SECRET }, /it has no destroy$/],
    ["a touch that is not a function", { store: { get() {}, set() {}, destroy() {}, touch: 1 }, secret: SECRET }, /it has no touch function$/],
    ["no secret", { store }, /ExpressSessionStore needs a secret/],
    ["a short secret", { store, secret: "keyboard cat" }, /the first secret signs new cookies and must be at least 32 characters; .*secret: \[newSecret, oldSecret\]/],
    ["a short first secret", { store, secret: ["keyboard cat", SECRET] }, /the first secret signs new cookies/],
    ["an empty older secret", { store, secret: [SECRET, ""] }, /secret\[1\] must be a non-empty string/],
    ["an unknown option", { store, secret: SECRET, resave: false }, /unknown option "resave"; the options are store, secret, /],
    ["a middleware option", { store, secret: SECRET, fallback: store }, /"fallback" is an option of the middleware/],
    ["a timeout of 0", { store, secret: SECRET, timeout: 0 }, /timeout must be a positive number of milliseconds/],
    ["a timeout past Node's longest timer", { store, secret: SECRET, timeout: 2 ** 31 }, /timeout must be at most 2147483647 ms/],
  ])("refuses %s at start-up, saying what to do", (_what, options, message) => {
    expect(() => new ExpressSessionStore(options as never)).toThrow(SessionConfigError);
    expect(() => new ExpressSessionStore(options as never)).toThrow(message);
  });

  it("reads cookies signed with an older, shorter express-session secret, and re-issues them under the first", async () => {
    const old = await served(expressSessionApp(store, { secret: "keyboard cat" }));
    servers.push(old);
    const browser = new Browser();
    await browser.post(old, "/login", { user: "ann" });
    const id = browser.expressSessionId as string;
    const res = await browser.get(await serve(new ExpressSessionStore({ store, secret: [SECRET, "keyboard cat"] })), "/me");
    expect(res.body).toEqual({ user: "ann" });
    expect(decodeURIComponent(browser.jar.get("connect.sid") as string)).toBe(`s:${sign(id, SECRET)}`);
  });
});

describe("bad input: the connect.sid cookie", () => {
  let store: Recorded;
  let app: Served;
  let id: string;

  beforeEach(async () => {
    store = recorded(new expressSession.MemoryStore());
    app = await serve(new ExpressSessionStore({ store, secret: SECRET }));
    const victim = new Browser();
    await victim.post(app, "/login", { user: "ann", role: "admin" });
    id = victim.expressSessionId as string;
    store.calls.get = 0;
  });

  const BAD: [string, () => string][] = [
    ["an unsigned id", () => id],
    ["an id without its signature", () => `s:${id}`],
    ["an id with a forged signature", () => `s:${id}.${"A".repeat(43)}`],
    ["an id signed with another app's secret", () => `s:${sign(id, "another-app-secret-0123456789abcdef")}`],
    ["an id signed without the s: prefix", () => sign(id, SECRET)],
    ["an empty id, signed", () => `s:${sign("", SECRET)}`],
    ["a value that is not valid URI encoding", () => "s%3A%E0%A4%A"],
  ];

  it.each(BAD)("with %s, never reaches the store: the handler gets a new empty session", async (_what, value) => {
    const browser = new Browser();
    browser.jar.cookies.set("connect.sid", encodeURIComponent(value()).replace("%25E0%25A4%25A", "%E0%A4%A"));
    const res = await browser.post(app, "/set", { role: "intruder" });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ role: "intruder" });
    expect(browser.expressSessionId).not.toBe(id);
    expect(store.calls.get).toBe(0);
  });

  it("looks up a validly signed id with one get (the control case)", async () => {
    const browser = new Browser();
    browser.jar.cookies.set("connect.sid", encodeURIComponent(`s:${sign(id, SECRET)}`));
    expect((await browser.get(app, "/me")).body).toEqual({ user: "ann", role: "admin" });
    expect(store.calls.get).toBe(1);
  });

  it("gives a new session for a record that is not an object", async () => {
    const raw: ExpressSessionBackend = { get: (_sid, cb) => cb(null, "not a session"), set: (_sid, _s, cb) => cb(), destroy: (_sid, cb) => cb() };
    const browser = new Browser();
    browser.jar.cookies.set("connect.sid", encodeURIComponent(`s:${sign(id, SECRET)}`));
    expect((await browser.get(await serve(new ExpressSessionStore({ store: raw, secret: SECRET })), "/me")).body).toEqual({});
  });
});

describe("what it writes, and when", () => {
  let store: Recorded;
  let memory: InstanceType<typeof expressSession.MemoryStore>;

  beforeEach(() => {
    memory = new expressSession.MemoryStore();
    store = recorded(memory);
  });

  const record = (id: string) => JSON.parse(memory.sessions[id]) as Record<string, unknown> & { cookie: Record<string, unknown> };

  it("calls nothing for an unchanged session until touchAfter has passed, then touches it and re-issues the cookie", async () => {
    const clock = fakeClock();
    const app = await serve(new ExpressSessionStore({ store, secret: SECRET }));
    const browser = new Browser();
    await browser.post(app, "/login", { user: "ann" });
    const writes = () => store.calls.set + store.calls.touch;
    const before = writes();
    clock.advance(MINUTE - 1);
    expect(setCookies(await browser.get(app, "/me"))).toEqual([]);
    expect(writes()).toBe(before);
    clock.advance(1);
    expect(setCookies(await browser.get(app, "/me"))).toEqual([expect.stringMatching(/^connect\.sid=/)]);
    expect([store.calls.touch, writes()]).toEqual([1, before + 1]);
    expect(Date.parse(record(browser.expressSessionId as string).cookie.expires as string)).toBe(clock.now + DAY);
  });

  it("writes an unchanged session with set when the store has no touch", async () => {
    const clock = fakeClock();
    const bare = recorded(memory, { withoutTouch: true });
    const app = await serve(new ExpressSessionStore({ store: bare, secret: SECRET }));
    const browser = new Browser();
    await browser.post(app, "/login", { user: "ann" });
    const sets = bare.calls.set;
    clock.advance(MINUTE);
    await browser.get(app, "/me");
    expect(bare.calls.set).toBe(sets + 1);
  });

  it("writes a changed session whole, with set, removed keys included", async () => {
    const app = await serve(new ExpressSessionStore({ store, secret: SECRET }));
    const browser = new Browser();
    await browser.post(app, "/login", { user: "ann", cart: ["apple"] });
    await browser.post(app, "/unset?key=cart");
    const { cookie, ...data } = record(browser.expressSessionId as string);
    expect(data).toEqual({ user: "ann" });
    expect(cookie).toMatchObject({ originalMaxAge: DAY, path: "/", httpOnly: true });
  });

  it("deletes the old record when regenerate() gives the session a new id", async () => {
    const app = await serve(new ExpressSessionStore({ store, secret: SECRET }));
    const browser = new Browser();
    await browser.post(app, "/login", { user: "ann" });
    const first = browser.expressSessionId as string;
    await browser.post(app, "/login", { user: "bob" });
    expect(browser.expressSessionId).not.toBe(first);
    expect(Object.keys(memory.sessions)).toEqual([browser.expressSessionId]);
  });
});

describe("absoluteTimeout over records express-session wrote (they hold no creation time)", () => {
  let clock: ReturnType<typeof fakeClock>;
  let memory: InstanceType<typeof expressSession.MemoryStore>;
  let old: Served;
  let app: Served;
  const created = (browser: Browser) =>
    (JSON.parse(memory.sessions[browser.expressSessionId as string]) as { cookie: Record<string, unknown> }).cookie["sessionbox:created"];

  beforeEach(async () => {
    clock = fakeClock();
    memory = new expressSession.MemoryStore();
    old = await serveOld(memory);
    app = await serve(new ExpressSessionStore({ store: memory, secret: SECRET, absoluteTimeout: 2 * HOUR }));
  });

  it("counts from the first request this store serves for the record, and ends the session absoluteTimeout after", async () => {
    const browser = new Browser();
    await browser.post(old, "/login", { user: "ann" });
    clock.advance(5 * HOUR); // before the switch: not counted
    const firstSeen = clock.now;
    expect((await browser.get(app, "/me")).body).toEqual({ user: "ann" });
    expect(created(browser)).toBe(firstSeen);
    for (let i = 1; i <= 3; i++) {
      clock.advance(HOUR / 2);
      expect((await browser.post(app, "/count")).body).toEqual({ user: "ann", views: i });
    }
    clock.advance(HOUR / 2 - 1);
    expect((await browser.get(app, "/me")).body).toEqual({ user: "ann", views: 3 });
    clock.advance(2);
    expect((await browser.get(app, "/me")).body).toEqual({});
  });

  it("starts the count again after the express-session app rewrites the record (it drops what it does not know)", async () => {
    const browser = new Browser();
    await browser.post(old, "/login", { user: "ann" });
    await browser.get(app, "/me");
    clock.advance(HOUR);
    await browser.post(old, "/count");
    expect(created(browser)).toBeUndefined();
    await browser.get(app, "/me");
    expect(created(browser)).toBe(clock.now);
  });
});

describe("a store that hangs or fails", () => {
  const never: ExpressSessionBackend = { get() {}, set() {}, destroy() {} };
  const signedIn = () => {
    const browser = new Browser();
    browser.jar.cookies.set("connect.sid", encodeURIComponent(`s:${sign("a-session-id", SECRET)}`));
    return browser;
  };

  it("answers a 503 that names the call, when the store never calls back within timeout", async () => {
    const res = await signedIn().get(await serve(new ExpressSessionStore({ store: never, secret: SECRET, timeout: 50 })), "/me");
    expect(res.status).toBe(503);
    expect(res.body).toEqual({
      code: "SESSION_STORE_UNAVAILABLE",
      error: expect.stringMatching(/^ExpressSessionStore could not load the session: the store's get\(\) did not call back within 50 ms\. Check that/),
    });
  });

  it("answers a 503 with the store's error when a save fails, and the response is not a success", async () => {
    const failing: ExpressSessionBackend = { get: (_sid, cb) => cb(null, null), set: (_sid, _s, cb) => cb(new Error("disk full")), destroy: (_sid, cb) => cb() };
    const res = await new Browser().post(await serve(new ExpressSessionStore({ store: failing, secret: SECRET })), "/login", { user: "ann" });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/could not save the session \(it may or may not be saved\): the store's set\(\) failed: disk full/);
  });

  it("answers a 503 when the store throws, or rejects its Promise without calling back", async () => {
    const throwing: ExpressSessionBackend = { ...never, get: () => { throw new Error("not connected") } };
    const rejecting: ExpressSessionBackend = { ...never, get: () => Promise.reject(new Error("pool closed")) };
    const rejectingNothing: ExpressSessionBackend = { ...never, get: () => Promise.reject(null) };
    for (const [store, message] of [[throwing, "not connected"], [rejecting, "pool closed"], [rejectingNothing, "its Promise was rejected"]] as const) {
      const res = await signedIn().get(await serve(new ExpressSessionStore({ store, secret: SECRET })), "/me");
      expect(res.status).toBe(503);
      expect(res.body.error).toContain(`the store's get() failed: ${message}`);
    }
  });

  it("takes get's ENOENT error as no session, as express-session does", async () => {
    const enoent: ExpressSessionBackend = { ...never, get: (_sid, cb) => cb(Object.assign(new Error("no such file"), { code: "ENOENT" })) };
    const res = await signedIn().get(await serve(new ExpressSessionStore({ store: enoent, secret: SECRET })), "/me");
    expect([res.status, res.body]).toEqual([200, {}]);
  });

  it("counts a callback called twice once", async () => {
    const twice: ExpressSessionBackend = {
      ...never,
      set: (_sid, _session, cb) => cb(),
      get: (_sid, cb) => {
        cb(null, { cookie: { originalMaxAge: DAY }, user: "ann" });
        cb(new Error("late"));
      },
    };
    const res = await signedIn().get(await serve(new ExpressSessionStore({ store: twice, secret: SECRET })), "/me");
    expect([res.status, res.body]).toEqual([200, { user: "ann" }]);
  });

  describeRedis("connect-redis on a stalled Redis", () => {
    it("answers a 503 within timeout, then serves the session again once Redis answers", async () => {
      const redis = await startRedis();
      const client = createClient({ url: redis.url });
      client.on("error", () => undefined);
      await client.connect();
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { RedisStore: ConnectRedis } = require("connect-redis") as { RedisStore: new (options: object) => ExpressSessionBackend };
        const app = await serve(new ExpressSessionStore({ store: new ConnectRedis({ client }), secret: SECRET, timeout: 200 }));
        const browser = new Browser();
        await browser.post(app, "/login", { user: "ann" });
        const { ended } = await redis.stall(1500);
        const res = await browser.get(app, "/me");
        expect([res.status, res.body.code]).toEqual([503, "SESSION_STORE_UNAVAILABLE"]);
        expect(res.body.error).toContain("did not call back within 200 ms");
        await ended;
        expect((await browser.get(app, "/me")).body).toEqual({ user: "ann" });
      } finally {
        await client.close();
        await redis.stop();
      }
    });
  });

  describeNeeding([POSTGRES], "connect-pg-simple whose table is gone", () => {
    it("answers a 503 that carries PostgreSQL's error", async () => {
      const db = await createPostgresDatabase();
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const PgStore = (require("connect-pg-simple") as (session: unknown) => new (options: object) => ExpressSessionBackend & { close(): Promise<void> })(expressSession);
        const pg = new PgStore({ pool: db.pool, pruneSessionInterval: false });
        const app = await serve(new ExpressSessionStore({ store: pg, secret: SECRET }));
        const browser = new Browser();
        await browser.post(app, "/login", { user: "ann" });
        await db.pool.query("DROP TABLE session");
        const res = await browser.get(app, "/me");
        expect(res.status).toBe(503);
        expect(res.body.error).toMatch(/the store's get\(\) failed: relation "session" does not exist/);
        await pg.close();
      } finally {
        await db.drop();
      }
    });
  });
});

describe("a session's own cookie lifetime (req.session.cookie), shared with express-session", () => {
  /** This package over `store`, with `POST /remember?days=n` (or `days=none`: a browser-session cookie). */
  async function rememberApp(store: ExpressSessionStore): Promise<Served> {
    const app = express();
    app.use(sessions(store));
    app.post("/remember", (req, res) => {
      req.session.user = "ann";
      if (req.query.days === "none") req.session.cookie.expires = null;
      else req.session.cookie.maxAge = Number(req.query.days) * DAY;
      res.json({ maxAge: req.session.cookie.maxAge });
    });
    app.get("/lasts", (req, res) => res.json({ maxAge: req.session.cookie.maxAge, originalMaxAge: req.session.cookie.originalMaxAge }));
    const server = await served(app);
    servers.push(server);
    return server;
  }

  it('"remember me" (30 days) is in the record as express-session writes it, and in the cookie', async () => {
    const backend = new expressSession.MemoryStore();
    const store = new ExpressSessionStore({ store: backend, secret: SECRET, absoluteTimeout: 90 * DAY });
    const browser = new Browser();
    const res = await browser.post(await rememberApp(store), "/remember?days=30");
    expect(setCookies(res)).toEqual([expect.stringMatching(/^connect\.sid=s%3A[^;]+; Max-Age=2592000; /)]);
    const record = JSON.parse(Object.values(backend.sessions)[0]) as { cookie: { originalMaxAge: number; expires: string } };
    expect(record.cookie.originalMaxAge).toBe(30 * DAY);
    expect(Date.parse(record.cookie.expires) - Date.now()).toBeGreaterThan(30 * DAY - 60_000);
    // express-session reads the same record: its cookie lives 30 days there too.
    const old = await serveOld(backend);
    const seen = await browser.post(old, "/count");
    expect(seen.body).toMatchObject({ user: "ann" });
  });

  it("a record express-session wrote with its default browser-session cookie keeps one: maxAge reads null, no Max-Age", async () => {
    const backend = new expressSession.MemoryStore();
    const browser = new Browser();
    await browser.post(await served(expressSessionApp(backend, { cookie: {} })).then((s) => (servers.push(s), s)), "/login", { user: "ann" });
    const store = new ExpressSessionStore({ store: backend, secret: SECRET, touchAfter: 0 });
    const app = await rememberApp(store);
    const res = await browser.get(app, "/lasts");
    expect(res.body).toEqual({ maxAge: null, originalMaxAge: null });
  });

  it("a session moved by { fallback } keeps its lifetime: a remembered express-session user stays remembered in CookieStore", async () => {
    const backend = new expressSession.MemoryStore();
    const old = new ExpressSessionStore({ store: backend, secret: SECRET, absoluteTimeout: 90 * DAY });
    const browser = new Browser();
    await browser.post(await rememberApp(old), "/remember?days=30");
    const app = express();
    app.use(sessions(new CookieStore({ secret: SECRET, absoluteTimeout: 90 * DAY }), { fallback: old }));
    app.get("/lasts", (req, res) => res.json({ user: req.session.user, days: Math.round((req.session.cookie.maxAge as number) / DAY) }));
    const moved = await served(app);
    servers.push(moved);
    const res = await browser.get(moved, "/lasts");
    expect(res.body).toEqual({ user: "ann", days: 30 });
    expect(setCookies(res)).toEqual(expect.arrayContaining([expect.stringMatching(/^session=[^;]+; Max-Age=2592000; /), expect.stringMatching(/^connect\.sid=; Max-Age=0; /)]));
    expect(Object.keys(backend.sessions)).toEqual([]);
  });
});
