/**
 * SPEC §9: express-session's idioms, on every store, compared in the same test with
 * express-session (and its MemoryStore) as the control. Each scenario records what the user
 * sees (statuses, bodies, the session on the next request, the cookie's lifetime) and checks
 * that this package's stores show the same.
 */
import express from "express";
import type { Session } from "../lib";
import { Browser, closeServers, serveForTest, setCookies } from "./helpers/apps";
import { CONTROL, forEachStore, type Middleware, type StoreUnderTest } from "./helpers/every-store";

afterEach(closeServers);

type AnySession = Record<string, unknown> & {
  id: string;
  cookie: { maxAge: number | null; expires: Date | null | undefined; originalMaxAge: number | null };
  regenerate(cb: (err: unknown) => void): void;
  destroy(cb: (err: unknown) => void): void;
  save(cb: (err: unknown) => void): void;
  reload(cb: (err: unknown) => void): void;
  touch(): unknown;
  resetMaxAge(): unknown;
};
const sessionOf = (req: express.Request) => req.session as unknown as AnySession;

/** The session's data: its keys without id and cookie (express-session lists cookie among them). */
function data(s: AnySession | undefined): Record<string, unknown> {
  if (s === undefined) return {};
  return Object.fromEntries(Object.keys(s).filter((k) => k !== "id" && k !== "cookie").map((k) => [k, s[k]]));
}

/** Calls `method(cb)`; answers with how the callback was called: once, on a later turn, and with what. */
function callbackReport(call: (cb: (err: unknown) => void) => void, then: (report: { calls: number; sync: boolean; err: unknown }) => void): void {
  let calls = 0;
  let sync = true;
  let err: unknown;
  call((e) => {
    calls++;
    err = e;
  });
  sync = calls > 0;
  setTimeout(() => then({ calls, sync, err: err ?? null }), 20);
}

/** The app every scenario runs against: the same routes over `middleware`. */
function idiomApp(middleware: Middleware): express.Express {
  const app = express();
  app.use(express.json());
  app.use(middleware);
  app.post("/set", (req, res) => {
    Object.assign(req.session, req.body);
    res.json(data(sessionOf(req)));
  });
  app.get("/read", (req, res) => {
    const s = sessionOf(req);
    res.json({ data: data(s), sessionID: req.sessionID === s.id, store: req.sessionStore !== undefined && req.sessionStore !== null });
  });
  app.post("/regenerate", (req, res) => {
    const before = sessionOf(req);
    callbackReport(
      (cb) => before.regenerate(cb),
      (report) => res.json({ ...report, newObject: req.session !== (before as unknown), newId: sessionOf(req).id !== before.id, now: data(sessionOf(req)), old: data(before) }),
    );
  });
  app.post("/login", (req, res, next) => {
    // passport's pattern: regenerate, set the user, save, then redirect.
    sessionOf(req).regenerate((err) => {
      if (err) return next(err);
      sessionOf(req).user = "ann";
      sessionOf(req).save((err2) => (err2 ? next(err2) : res.redirect("/read")));
    });
  });
  app.post("/destroy", (req, res) => {
    callbackReport(
      (cb) => sessionOf(req).destroy(cb),
      (report) => res.json(report),
    );
  });
  app.post("/save", (req, res) => {
    sessionOf(req).saved = true;
    callbackReport(
      (cb) => sessionOf(req).save(cb),
      (report) => res.json(report),
    );
  });
  app.post("/reload", (req, res) => {
    sessionOf(req).unsaved = true;
    callbackReport(
      (cb) => sessionOf(req).reload(cb),
      (report) => res.json({ ...report, after: data(sessionOf(req)) }),
    );
  });
  app.post("/touch", (req, res) => {
    const s = sessionOf(req);
    res.json({ touch: s.touch() === s, reset: s.resetMaxAge() === s });
  });
  app.post("/remember", (req, res) => {
    sessionOf(req).cookie.maxAge = Number(req.query.days) * 86_400_000;
    sessionOf(req).user ??= "ann";
    res.json({ maxAge: Math.round((sessionOf(req).cookie.maxAge as number) / 1000), originalMaxAge: sessionOf(req).cookie.originalMaxAge });
  });
  app.post("/browser-session", (req, res) => {
    sessionOf(req).cookie.expires = null;
    sessionOf(req).user ??= "ann";
    res.json({ maxAge: sessionOf(req).cookie.maxAge });
  });
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: err.message });
  });
  return app;
}

/** The session cookie's lifetime in whole days from a Set-Cookie line: Max-Age or Expires; `null` for a cookie that ends with the browser. */
function cookieDays(res: { headers: Record<string, unknown> }, name: string): number | null | "none" {
  const line = setCookies(res).find((l) => l.startsWith(`${name}=`));
  if (line === undefined) return "none";
  const maxAge = /;\s*Max-Age=(\d+)/i.exec(line);
  if (maxAge) return Math.round(Number(maxAge[1]) / 86_400);
  const expires = /;\s*Expires=([^;]+)/i.exec(line);
  return expires ? Math.round((Date.parse(expires[1]) - Date.now()) / 86_400_000) : null;
}

/** Each scenario: drives a fresh app over `store`, returns what the user saw. */
const scenarios: Record<string, (store: StoreUnderTest) => Promise<unknown>> = {
  "regenerate(cb): called back once, later, with null; req.session is a new, empty session with a new id; the old object keeps its data; the old id loads nothing": async (store) => {
    const browser = await start(store);
    await browser.post("/set", (t) => t.send({ cart: 3 }));
    const oldCookie = browser.jar.get(store.cookieName) as string;
    const res = await browser.post("/regenerate");
    const next = await browser.get("/read");
    const replay = new Browser(browser.url);
    replay.jar.set(store.cookieName, oldCookie);
    return { regenerate: res.body, next: next.body.data, replay: (await replay.get("/read")).body.data };
  },
  "passport's login pattern (regenerate, set, save, redirect) signs in": async (store) => {
    const browser = await start(store);
    const res = await browser.post("/login");
    return { status: res.status, next: (await browser.get(res.headers.location)).body.data };
  },
  "destroy(cb): called back once, later; the next request has no session": async (store) => {
    const browser = await start(store);
    await browser.post("/set", (t) => t.send({ user: "ann" }));
    const res = await browser.post("/destroy");
    return { destroy: res.body, next: (await browser.get("/read")).body.data };
  },
  "save(cb): called back once, later; the next request sees the change": async (store) => {
    const browser = await start(store);
    await browser.post("/set", (t) => t.send({ user: "ann" }));
    const res = await browser.post("/save");
    return { save: res.body, next: (await browser.get("/read")).body.data };
  },
  "reload(cb): called back once, later; an unsaved change is gone": async (store) => {
    const browser = await start(store);
    await browser.post("/set", (t) => t.send({ user: "ann" }));
    const res = await browser.post("/reload");
    return { reload: res.body };
  },
  "touch() and resetMaxAge() return the session": async (store) => {
    const browser = await start(store);
    await browser.post("/set", (t) => t.send({ user: "ann" }));
    return (await browser.post("/touch")).body;
  },
  "req.sessionID is the session's id, req.sessionStore is set": async (store) => {
    const browser = await start(store);
    await browser.post("/set", (t) => t.send({ user: "ann" }));
    return (await browser.get("/read")).body;
  },
  "cookie.maxAge = 5 days (remember me): the cookie lives 5 days, and reads 5 days on the next request": async (store) => {
    const browser = await start(store);
    const res = await browser.post("/remember?days=5");
    const again = await browser.post("/remember?days=5");
    return { body: res.body.maxAge, cookie: cookieDays(res, store.cookieName), again: again.body.maxAge, user: (await browser.get("/read")).body.data };
  },
  "cookie.expires = null: a cookie that ends with the browser, maxAge reads null": async (store) => {
    const browser = await start(store);
    const res = await browser.post("/browser-session");
    return { body: res.body, cookie: cookieDays(res, store.cookieName), user: (await browser.get("/read")).body.data };
  },
};

async function start(store: StoreUnderTest): Promise<Browser> {
  const { url } = await serveForTest(idiomApp(store.middleware()));
  return new Browser(url);
}

const seen = new Map<string, unknown>();
async function controlSaw(name: string): Promise<unknown> {
  if (!seen.has(name)) seen.set(name, await scenarios[name](CONTROL));
  return seen.get(name);
}

forEachStore((store) => {
  if (store.control) {
    // The control's own results, pinned: what express-session users see.
    it("the control shows express-session's behaviour", async () => {
      expect(await controlSaw("regenerate(cb): called back once, later, with null; req.session is a new, empty session with a new id; the old object keeps its data; the old id loads nothing")).toEqual({
        regenerate: { calls: 1, sync: false, err: null, newObject: true, newId: true, now: {}, old: { cart: 3 } },
        next: {},
        replay: {},
      });
      expect(await controlSaw("cookie.maxAge = 5 days (remember me): the cookie lives 5 days, and reads 5 days on the next request")).toMatchObject({ body: 432_000, cookie: 5, again: 432_000 });
    });
    return;
  }
  for (const name of Object.keys(scenarios)) {
    it(name, async () => {
      const expected = structuredClone(await controlSaw(name)) as Record<string, unknown>;
      // The one difference, documented: a cookie store keeps no server state, so a copy of the
      // old cookie still opens the session it held until that cookie expires.
      if (store.inCookie && "replay" in expected) expected.replay = { cart: 3 };
      expect(await scenarios[name](store)).toEqual(expected);
    });
  }

  // No control: express-session's methods take callbacks only.
  it("without a callback, save, reload, regenerate and destroy return Promises, and do what their callback forms do", async () => {
    const app = express();
    app.use(store.middleware());
    app.post("/promises", async (req, res, next) => {
      try {
        const first = req.session as Session;
        first.user = "ann";
        await first.save();
        await first.reload();
        const afterReload = (req.session as Session).user;
        await (req.session as Session).regenerate({ keep: true });
        const now = req.session as Session;
        res.json({ afterReload, kept: now.user, newId: now.id !== first.id });
      } catch (err) {
        next(err);
      }
    });
    app.post("/sign-out", async (req, res, next) => {
      try {
        await (req.session as Session).destroy();
        res.json({ destroyed: true });
      } catch (err) {
        next(err);
      }
    });
    app.get("/read", (req, res) => res.json(data(sessionOf(req))));
    const { url } = await serveForTest(app);
    const browser = new Browser(url);
    expect((await browser.post("/promises")).body).toEqual({ afterReload: "ann", kept: "ann", newId: true });
    expect((await browser.get("/read")).body).toEqual({ user: "ann" });
    expect((await browser.post("/sign-out")).body).toEqual({ destroyed: true });
    expect((await browser.get("/read")).body).toEqual({});
  });

  // No control: under express-session the same body replaces `save` and `cookie` on its session.
  it("a mass assignment of reserved names (id, cookie, save, regenerate) stores only the data, and the methods still work", async () => {
    const browser = await start(store);
    const set = await browser.post("/set", (t) => t.send({ user: "ann", id: "attacker", cookie: { maxAge: 1 }, save: "x", regenerate: 1 }));
    expect(set.status).toBe(200);
    expect(set.body).toEqual({ user: "ann" });
    const saved = await browser.post("/save");
    expect(saved.body).toEqual({ calls: 1, sync: false, err: null });
    const read = await browser.get("/read");
    expect(read.body).toEqual({ data: { user: "ann", saved: true }, sessionID: true, store: true });
    expect((await browser.post("/regenerate")).body).toMatchObject({ calls: 1, newId: true, now: {}, old: { user: "ann", saved: true } });
  });

  it("a lifetime longer than absoluteTimeout is cut to it (the default absoluteTimeout is 7 days)", async () => {
    const res = await (await start(store)).post("/remember?days=30");
    expect(cookieDays(res, store.cookieName)).toBe(7);
  });
});

describe("changes after the response ended reach onLostChange in every store (SPEC §3.6)", () => {
  forEachStore((store) => {
    if (store.control) return;
    it.each([
      ["read before the end", true],
      ["not read before the end", false],
    ])("a change after res.redirect(), session %s", async (_, readFirst) => {
      const lost: string[] = [];
      const app = express();
      app.use(store.middleware({ onLostChange: (err) => lost.push(err.message) }));
      app.get("/late", (req, res) => {
        if (readFirst) void (req.session as Session).id;
        res.redirect("/");
        (req.session as Session).late = 1;
      });
      const { url } = await serveForTest(app);
      const res = await new Browser(url).get("/late");
      expect(res.status).toBe(302);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(lost).toEqual([expect.stringContaining("session change on GET /late was not saved: the response had already ended")]);
    });

    it("an unawaited destroy() or save() before the response reports nothing; a change right after the end is saved (held response) or reported", async () => {
      const lost: string[] = [];
      const app = express();
      app.use(store.middleware({ onLostChange: (err) => lost.push(`${err.message.split(":")[0]}`) }));
      app.post("/set", (req, res) => {
        (req.session as Session).user = "ann";
        res.json({});
      });
      app.post("/destroy", (req, res) => {
        void (req.session as Session).destroy();
        res.json({ ...req.session });
      });
      app.post("/save-then-late", (req, res) => {
        (req.session as Session).user = "bob";
        void (req.session as Session).save();
        res.json({});
        (req.session as Session).late = 1;
      });
      app.get("/read", (req, res) => res.json(data(sessionOf(req))));
      const { url } = await serveForTest(app);
      const browser = new Browser(url);
      await browser.post("/set");
      expect((await browser.post("/destroy")).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(lost).toEqual([]);
      await browser.post("/set");
      expect((await browser.post("/save-then-late")).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // RedisStore holds the response while it saves, so the change made right after res.json()
      // is in the save before the headers; the synchronous stores have sent theirs, and say so.
      const read = (await browser.get("/read")).body;
      if (store.name.startsWith("RedisStore")) {
        expect(lost).toEqual([]);
        expect(read).toEqual({ user: "bob", late: 1 });
      } else {
        expect(lost).toEqual(["session change on POST /save-then-late was not saved"]);
        expect(read).toEqual({ user: "bob" });
      }
    });
  });
});
