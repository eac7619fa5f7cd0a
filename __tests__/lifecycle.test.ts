/**
 * SPEC §3: when the middleware loads and dumps, what it sends, and what a handler may do
 * with `req.session`. Response paths have their own file (response-paths.test.ts),
 * back-pressure too (backpressure.test.ts).
 */
import type { IncomingMessage } from "node:http";
import type express from "express";
import { Cookie, CookieStore, MemoryStore, sessions, Session, SessionError, SessionTooLargeError, SessionUsageError } from "../lib";
import type { SessionContext, SessionStore } from "../lib/store";
import {
  Browser,
  closeServers,
  express5App,
  FRAMEWORKS,
  type Handler,
  mount,
  sessionRequest,
  serveForTest,
  setCookies,
  withErrorHandler,
} from "./helpers/apps";
import { cookieStore, CountingStore, delay, FailingStore, memoryStore, SECRET, SlowStore, statusError } from "./helpers/test-stores";

afterEach(closeServers);

type App = express.Express;

async function browse(app: App | ReturnType<typeof mount>): Promise<Browser> {
  const { url } = await serveForTest(app);
  return new Browser(url);
}

/** An Express 5 app with `sessions(store, options)`, `/set?k=v` and `/read`, plus `routes`. */
function app(store: SessionStore, routes: (app: App) => void = () => {}, options?: Parameters<typeof sessions>[1]): App {
  const built = express5App(sessions(store, options));
  built.get("/set", (req, res) => {
    for (const [key, value] of Object.entries(req.query)) req.session[key] = value;
    res.send("set");
  });
  built.get("/read", (req, res) => {
    res.json({ ...req.session });
  });
  routes(built);
  return built;
}

function sessionCookie(res: { headers: Record<string, unknown> }, name = "session"): string | undefined {
  return setCookies(res).find((line) => line.startsWith(`${name}=`));
}

describe("lazy load (SPEC §3.1)", () => {
  it("calls load at most once per request, however often req.session is read", async () => {
    const store = new CountingStore();
    const browser = await browse(
      app(store, (a) =>
        a.get("/many", (req, res) => {
          req.session.a = 1;
          req.session.b = (req.session.a as number) + 1;
          res.json({ a: req.session.a, b: req.session.b, id: typeof req.session.id });
        }),
      ),
    );
    const res = await browser.get("/many");
    expect(res.body).toEqual({ a: 1, b: 2, id: "string" });
    expect(store.loads).toBe(1);
    expect(store.dumps).toBe(1);
  });

  it("costs no load, no dump, no Set-Cookie and no Vary for a handler that never reads the session, even with a session cookie", async () => {
    const store = new CountingStore();
    const browser = await browse(app(store, (a) => a.get("/plain", (_req, res) => res.send("plain"))));
    await browser.get("/set?user=ann");
    expect(browser.jar.get("session")).toBeDefined();
    const [loads, dumps] = [store.loads, store.dumps];
    const res = await browser.get("/plain");
    expect(res.text).toBe("plain");
    expect(setCookies(res)).toEqual([]);
    expect(res.headers.vary).toBeUndefined();
    expect([store.loads, store.dumps]).toEqual([loads, dumps]);
  });
});

describe("Vary: Cookie (SPEC §3.7)", () => {
  it("is on every response whose handler read the session, even when nothing was saved", async () => {
    const browser = await browse(app(cookieStore(), (a) => a.get("/peek", (req, res) => res.json({ user: req.session.user ?? null }))));
    const res = await browser.get("/peek");
    expect(res.headers.vary).toBe("Cookie");
    expect(setCookies(res)).toEqual([]);
  });

  it("is merged with a Vary the handler sets before or after reading the session", async () => {
    const browser = await browse(
      app(cookieStore(), (a) => {
        a.get("/before", (req, res) => {
          res.vary("Origin");
          req.session.x = 1;
          res.send("before");
        });
        a.get("/after", (req, res) => {
          req.session.x = 2;
          res.set("Vary", "Accept"); // replaces the header: ours is added when the headers leave
          res.send("after");
        });
      }),
    );
    expect((await browser.get("/before")).headers.vary).toBe("Origin, Cookie");
    expect((await browser.get("/after")).headers.vary).toBe("Accept, Cookie");
  });
});

describe("a new and empty session is not saved (SPEC §3.3)", () => {
  it.each([
    ["a synchronous store", () => new CountingStore(memoryStore())],
    ["an asynchronous store", () => new SlowStore()],
  ] as const)("with %s: no dump, no store entry, no Set-Cookie", async (_name, makeStore) => {
    const store = makeStore();
    const inner = store.inner as MemoryStore;
    const browser = await browse(
      app(store, (a) =>
        a.get("/touch", (req, res) => {
          req.session.tmp = 1;
          delete req.session.tmp; // written, then emptied again: still nothing to save
          res.json({ user: req.session.user ?? null });
        }),
      ),
    );
    const res = await browser.get("/touch");
    expect(res.body).toEqual({ user: null });
    expect(setCookies(res)).toEqual([]);
    expect(store.dumps).toBe(0);
    expect(inner.size).toBe(0);
  });
});

describe("a failing dump gives an error response, never a 2xx (SPEC §3.5)", () => {
  const down = () => statusError("session store down", 503);

  describe.each(["throw", "reject"] as const)("when dump %ss", (how) => {
    it("Express answers through its own error handling with the error's status", async () => {
      const browser = await browse(app(new FailingStore(how, down())));
      const res = await browser.get("/set?user=ann");
      expect(res.status).toBe(503);
      expect(res.text).not.toBe("set");
      expect(sessionCookie(res)).toBeUndefined();
    });

    it("an error without a status gives a 500", async () => {
      const browser = await browse(app(new FailingStore(how, new Error("disk full"))));
      const res = await browser.get("/set?user=ann");
      expect(res.status).toBe(500);
    });

    it.each(FRAMEWORKS)("under %s the error reaches next(err)", async (framework) => {
      const handler: Handler = (req, res) => {
        sessionRequest(req).session.user = "ann";
        res.setHeader("Content-Length", "2");
        res.end("ok");
      };
      const browser = await browse(mount(framework, sessions(new FailingStore(how, down())), handler));
      const res = await browser.get("/");
      expect(res.status).toBe(503);
      // The Content-Length of the dropped "ok" would have cut this body to two bytes.
      expect(res.text).toBe("error: session store down");
      expect(sessionCookie(res)).toBeUndefined();
    });

    it("output the handler writes after the failure is not sent", async () => {
      const handler: Handler = async (req, res) => {
        sessionRequest(req).session.user = "ann";
        res.write("a");
        res.write("b");
        await delay(1);
        res.write("c");
        res.end("d");
      };
      const browser = await browse(mount("http", sessions(new FailingStore(how, down())), handler));
      const res = await browser.get("/");
      expect(res.status).toBe(503);
      expect(res.text).toBe("error: session store down");
    });
  });

  it("under plain node:http, onSaveError answers the error: a next that ignores its argument never runs the handler twice", async () => {
    for (const how of ["throw", "reject"] as const) {
      let runs = 0;
      const mw = sessions(new FailingStore(how, down()), {
        onSaveError: (err, _req, res) => {
          res.statusCode = (err as { status?: number }).status ?? 500;
          res.end(`could not save: ${(err as Error).message}`);
        },
      });
      const browser = await browse((req: IncomingMessage, res: import("node:http").ServerResponse) =>
        mw(req, res, () => {
          runs++;
          sessionRequest(req).session.user = "ann";
          res.end("ok");
        }),
      );
      const res = await browser.get("/");
      expect(res.status).toBe(503);
      expect(res.text).toBe("could not save: session store down");
      expect(runs).toBe(1);
    }
  });

  it("a held call that Node refuses when replayed (a bad status code) goes to error handling", async () => {
    const browser = await browse(
      withErrorHandler(
        app(new SlowStore(), (a) =>
          a.get("/bad", (req, res) => {
            req.session.user = "ann";
            res.writeHead(1000);
            res.end();
          }),
        ),
      ),
    );
    const res = await browser.get("/bad");
    expect(res.status).toBe(500);
    expect(res.text).toMatch(/^error: .*1000/);
  });

  it("a replayed call refused after the headers left aborts the response instead of completing it", async () => {
    const browser = await browse(
      withErrorHandler(
        app(new SlowStore(), (a) =>
          a.get("/late-head", (req, res) => {
            req.session.user = "ann";
            res.write("partial");
            res.writeHead(201); // too late: Node refuses it once the write has sent the headers
            res.end();
          }),
        ),
      ),
    );
    await expect(browser.get("/late-head")).rejects.toThrow();
  });
});

describe("stores that load with I/O (SPEC §3.2)", () => {
  class AsyncFunctionStore implements SessionStore {
    loads = 0;
    constructor(readonly inner: SessionStore = memoryStore()) {}
    async load(ctx: SessionContext): Promise<Session> {
      this.loads++;
      return this.inner.load(ctx);
    }
    dump(session: Session, ctx: SessionContext) {
      return this.inner.dump(session, ctx);
    }
  }

  /** Reports what the handler saw: the store's load count before reading, then the session. */
  function probe(counter: { loads: number }) {
    return (a: App) =>
      a.get("/probe", (req, res) => {
        const before = counter.loads;
        res.json({ loadsBeforeRead: before, user: req.session.user ?? null });
      });
  }

  it.each([
    ["`async = true`", () => new SlowStore()],
    ["an `async function load`", () => new AsyncFunctionStore()],
  ] as const)("a store marked by %s is loaded before the handlers, which read req.session synchronously", async (_how, makeStore) => {
    const store = makeStore();
    const browser = await browse(app(store, probe(store)));
    await browser.get("/set?user=ann");
    const res = await browser.get("/probe");
    expect(res.body).toEqual({ loadsBeforeRead: 2, user: "ann" });
  });

  it("a store whose plain load returns a Promise, without `async = true`, gets a SessionUsageError that says how to mark it", async () => {
    const store = {
      inner: memoryStore(),
      load(ctx: SessionContext): Promise<Session> {
        return Promise.resolve(this.inner.load(ctx));
      },
      dump(session: Session, ctx: SessionContext) {
        return this.inner.dump(session, ctx);
      },
    };
    let caught: unknown;
    const browser = await browse(
      app(store, (a) =>
        a.get("/use", (req, res) => {
          try {
            res.json({ user: req.session.user });
          } catch (err) {
            caught = err;
            res.status(500).send("refused");
          }
        }),
      ),
    );
    await browser.get("/use");
    expect(caught).toBeInstanceOf(SessionUsageError);
    expect((caught as Error).message).toMatch(/async = true/);
  });

  it("a store marked async whose load answers synchronously works too", async () => {
    const inner = memoryStore();
    const store = { async: true, load: (ctx: SessionContext) => inner.load(ctx), dump: (s: Session, ctx: SessionContext) => inner.dump(s, ctx) };
    const browser = await browse(app(store));
    await browser.get("/set?user=ann");
    expect((await browser.get("/read")).body).toMatchObject({ user: "ann" });
  });

  it.each([
    ["throws", () => { throw statusError("redis down", 503); }],
    ["rejects", () => Promise.reject(statusError("redis down", 503))],
  ] as const)("a load that %s before the handlers gives an error response with its status", async (_how, load) => {
    const store: SessionStore = { async: true, load, dump: () => [] };
    let ran = false;
    const browser = await browse(app(store, (a) => a.get("/h", (_req, res) => { ran = true; res.send("ran"); })));
    const res = await browser.get("/h");
    expect(res.status).toBe(503);
    expect(ran).toBe(false);
  });

  it("by default loads before the handlers, but a handler that never reads the session still causes no dump and no Set-Cookie", async () => {
    const store = new SlowStore();
    const browser = await browse(app(store, (a) => a.get("/plain", (_req, res) => res.send("plain"))));
    await browser.get("/set?user=ann");
    const dumps = store.dumps;
    const res = await browser.get("/plain");
    expect(store.loads).toBe(2);
    expect(store.dumps).toBe(dumps);
    expect(setCookies(res)).toEqual([]);
    expect(res.headers.vary).toBeUndefined();
  });

  describe("with { preload: false }", () => {
    it("a request whose handler never calls loadSession costs no load at all", async () => {
      const store = new SlowStore();
      const browser = await browse(app(store, (a) => a.get("/plain", (_req, res) => res.send("plain")), { preload: false }));
      await browser.get("/plain");
      expect(store.loads).toBe(0);
    });

    it("`await req.loadSession()` loads once, after which req.session is synchronous and saved", async () => {
      const store = new SlowStore();
      const browser = await browse(
        app(
          store,
          (a) =>
            a.get("/lazy", async (req, res) => {
              const [first, second] = await Promise.all([req.loadSession(), req.loadSession()]);
              const third = await req.loadSession();
              req.session.views = ((req.session.views as number | undefined) ?? 0) + 1;
              res.json({ same: first === second && second === third && third === req.session, views: req.session.views });
            }),
          { preload: false },
        ),
      );
      expect((await browser.get("/lazy")).body).toEqual({ same: true, views: 1 });
      expect((await browser.get("/lazy")).body).toEqual({ same: true, views: 2 });
      expect(store.loads).toBe(2);
    });

    it("reading req.session before loadSession throws a SessionUsageError that says to call it", async () => {
      let caught: unknown;
      const browser = await browse(
        app(
          new SlowStore(),
          (a) =>
            a.get("/early", (req, res) => {
              try {
                void req.session.user;
              } catch (err) {
                caught = err;
              }
              res.send("done");
            }),
          { preload: false },
        ),
      );
      await browser.get("/early");
      expect(caught).toBeInstanceOf(SessionUsageError);
      expect((caught as SessionError).status).toBe(500);
      expect((caught as Error).message).toMatch(/await req\.loadSession\(\)/);
    });

    it("a loadSession that failed can be called again", async () => {
      const inner = memoryStore();
      let failures = 1;
      const store: SessionStore = {
        async: true,
        load: async (ctx) => {
          if (failures-- > 0) throw statusError("redis blinked", 503);
          return inner.load(ctx);
        },
        dump: (s, ctx) => inner.dump(s, ctx),
      };
      const browser = await browse(
        app(
          store,
          (a) =>
            a.get("/retry", async (req, res) => {
              const first = await req.loadSession().then(
                () => "loaded",
                (err: Error) => err.message,
              );
              await req.loadSession();
              req.session.user = "ann";
              res.json({ first, user: req.session.user });
            }),
          { preload: false },
        ),
      );
      const res = await browser.get("/retry");
      expect(res.body).toEqual({ first: "redis blinked", user: "ann" });
      expect(sessionCookie(res)).toBeDefined();
    });
  });

  it("loadSession also works with a synchronous store", async () => {
    const browser = await browse(
      app(cookieStore(), (a) =>
        a.get("/sync", async (req, res) => {
          const session = await req.loadSession();
          session.user = "ann";
          res.json({ same: session === req.session });
        }),
      ),
    );
    const res = await browser.get("/sync");
    expect(res.body).toEqual({ same: true });
    expect((await browser.get("/read")).body).toMatchObject({ user: "ann" });
  });
});

describe("assigning req.session", () => {
  it("`req.session = null` destroys the session: the cookie is expired and the old id is gone", async () => {
    const store = memoryStore();
    const browser = await browse(
      app(store, (a) =>
        a.post("/logout", (req, res) => {
          (req as { session: unknown }).session = null;
          res.send("bye");
        }),
      ),
    );
    await browser.get("/set?user=ann");
    const oldCookie = browser.jar.get("session") as string;
    const res = await browser.post("/logout");
    expect(sessionCookie(res)).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/);
    expect(browser.jar.get("session")).toBeUndefined();
    expect(store.size).toBe(0);
    const replay = new Browser(browser.url);
    replay.jar.set("session", oldCookie);
    expect((await replay.get("/read")).body).toEqual({ id: expect.any(String) });
  });

  it("replacing req.session with an object throws a SessionUsageError", async () => {
    let caught: unknown;
    const browser = await browse(
      app(cookieStore(), (a) =>
        a.get("/replace", (req, res) => {
          try {
            (req as { session: unknown }).session = { user: "mallory" };
          } catch (err) {
            caught = err;
          }
          res.json({ user: req.session.user ?? null });
        }),
      ),
    );
    expect((await browser.get("/replace")).body).toEqual({ user: null });
    expect(caught).toBeInstanceOf(SessionUsageError);
    expect((caught as Error).message).toMatch(/regenerate\(\)|destroy\(\)/);
  });
});

describe("regenerate() and destroy() are visible to the next request", () => {
  it.each([
    ["a synchronous store", () => memoryStore()],
    ["an asynchronous store", () => new SlowStore()],
  ] as const)("regenerate() with %s: a new id and an empty session (keep carries listed keys); the old id no longer loads", async (_name, makeStore) => {
    const browser = await browse(
      app(makeStore(), (a) =>
        a.post("/login", (req, res) => {
          const before = req.session.id;
          const keep = req.query.keep === undefined ? undefined : String(req.query.keep).split(",");
          void req.session.regenerate(keep ? { keep } : {});
          req.session.user = "ann";
          res.json({ changed: before !== req.session.id });
        }),
      ),
    );
    await browser.get("/set?cart=3&theme=dark");
    const before = (await browser.get("/read")).body.id as string;
    const oldCookie = browser.jar.get("session") as string;
    expect((await browser.post("/login")).body).toEqual({ changed: true });
    const after = (await browser.get("/read")).body;
    expect(after).toEqual({ id: expect.any(String), user: "ann" });
    expect(after.id).not.toBe(before);
    const replay = new Browser(browser.url);
    replay.jar.set("session", oldCookie);
    expect((await replay.get("/read")).body).toEqual({ id: expect.not.stringMatching(before) });

    await browser.get("/set?cart=4&theme=light");
    await browser.post("/login?keep=cart");
    expect((await browser.get("/read")).body).toEqual({ id: expect.any(String), user: "ann", cart: "4" });
  });

  it.each([
    ["the CookieStore", () => cookieStore()],
    ["an asynchronous store", () => new SlowStore()],
  ] as const)("destroy() with %s: the cookie is expired and the next request has an empty session", async (_name, makeStore) => {
    const browser = await browse(
      app(makeStore(), (a) =>
        a.post("/logout", (req, res) => {
          req.session.destroy();
          res.send("bye");
        }),
      ),
    );
    await browser.get("/set?user=ann");
    const res = await browser.post("/logout");
    expect(sessionCookie(res)).toMatch(/Max-Age=0/);
    expect(browser.jar.get("session")).toBeUndefined();
    expect((await browser.get("/read")).body).toEqual({ id: expect.any(String) });
  });
});

describe("changes after the headers left (SPEC §3.6)", () => {
  /** A handler that reads the session, starts streaming, and changes the session before the end. */
  const streamThenChange = (change: (session: express.Request["session"]) => void) => (req: express.Request, res: express.Response) => {
    void req.session.id;
    res.write("streaming ");
    change(req.session);
    res.end("done");
  };

  it("a server-side store saves a change made while streaming, when the response ends", async () => {
    const browser = await browse(
      app(memoryStore(), (a) => {
        a.get("/stream", async (req, res) => {
          req.session.step = 1;
          res.write("a");
          await delay(5);
          req.session.step = 2;
          res.end("b");
        });
      }),
    );
    expect((await browser.get("/stream")).text).toBe("ab");
    expect((await browser.get("/read")).body).toMatchObject({ step: 2 });
  });

  it("an asynchronous store saves a change made while its first dump was still pending", async () => {
    // saveFirst: the store serializes when dump is called, so a change after that needs a second dump.
    const store = new SlowStore(memoryStore(), { saveFirst: true });
    const browser = await browse(
      app(store, (a) =>
        a.get(
          "/stream",
          streamThenChange((session) => (session.step = 2)),
        ),
      ),
    );
    await browser.get("/set?step=0");
    const dumps = store.dumps;
    expect((await browser.get("/stream")).text).toBe("streaming done");
    expect(store.dumps).toBe(dumps + 2); // before the headers, and again at the end
    expect((await browser.get("/read")).body).toMatchObject({ step: 2 });
  });

  it("an asynchronous store: the end waits for the late save, so the next request sees it", async () => {
    const store = new SlowStore();
    const browser = await browse(
      app(store, (a) =>
        a.get("/stream", async (req, res) => {
          req.session.step = 1;
          res.write("a");
          await new Promise((resolve) => res.once("drain", resolve));
          req.session.step = 2;
          res.end("b");
        }),
      ),
    );
    expect((await browser.get("/stream")).text).toBe("ab");
    expect((await browser.get("/read")).body).toMatchObject({ step: 2 });
  });

  it("a session first read after the headers left is saved at the end by a server-side store", async () => {
    const store = memoryStore();
    const browser = await browse(
      app(store, (a) =>
        a.get("/late", async (req, res) => {
          res.write("a");
          await delay(1);
          req.session.late = true;
          res.end("b");
        }),
      ),
    );
    await browser.get("/set?user=ann");
    const res = await browser.get("/late");
    expect(res.text).toBe("ab");
    expect(res.headers.vary).toBeUndefined(); // the headers had left before the session was read
    await delay(5);
    expect((await browser.get("/read")).body).toMatchObject({ user: "ann", late: true });
  });

  it("a streaming response whose session stays new and empty saves nothing at the end", async () => {
    const store = new CountingStore(memoryStore());
    const browser = await browse(app(store, (a) => a.get("/stream", streamThenChange((session) => void session.user))));
    const res = await browser.get("/stream");
    expect(res.text).toBe("streaming done");
    expect(store.dumps).toBe(0);
    expect(setCookies(res)).toEqual([]);
  });

  describe.each([
    ["a writeHead captured before the middleware ran", (res: express.Response) => (res as unknown as { capturedWriteHead: typeof res.writeHead }).capturedWriteHead.call(res, 200, { "Content-Type": "text/plain" })],
    ["res.writeHeader", (res: express.Response) => (res as unknown as { writeHeader: typeof res.writeHead }).writeHeader(200, { "Content-Type": "text/plain" })],
  ])("headers sent past the hook (%s) take the after-the-headers path", (_, sendHead) => {
    function headApp(store: SessionStore, onLostChange?: (err: SessionError) => void): App {
      const built = express5App((req, res, next) => {
        (res as unknown as { capturedWriteHead: unknown }).capturedWriteHead = res.writeHead;
        next();
      });
      built.use(sessions(store, onLostChange ? { onLostChange } : {}));
      built.get("/set", (req, res) => {
        req.session.step = 1;
        res.send("set");
      });
      built.get("/read", (req, res) => res.json({ ...req.session }));
      built.get("/head", (req, res) => {
        req.session.step = 2;
        sendHead(res);
        res.end("the body");
      });
      return withErrorHandler(built);
    }

    it.each([
      ["a server-side store", () => memoryStore()],
      ["an asynchronous store", () => new SlowStore()],
    ])("%s: the body is sent and the change saved at the end", async (_, makeStore) => {
      const browser = await browse(headApp(makeStore()));
      await browser.get("/set");
      const res = await browser.get("/head");
      expect(res.status).toBe(200);
      expect(res.text).toBe("the body");
      expect((await browser.get("/read")).body).toMatchObject({ step: 2 });
    });

    it("CookieStore: the body is sent and the change reported as lost", async () => {
      const lost: SessionError[] = [];
      const browser = await browse(headApp(cookieStore(), (err) => lost.push(err)));
      await browser.get("/set");
      const res = await browser.get("/head");
      expect(res.status).toBe(200);
      expect(res.text).toBe("the body");
      expect(lost).toHaveLength(1);
      expect(lost[0].message).toContain("session change on GET /head was not saved");
    });
  });

  describe("a change that needs a cookie the browser can no longer get is reported, never dropped silently", () => {
    function lostIn(store: SessionStore, handler: (req: express.Request, res: express.Response) => void | Promise<void>) {
      const lost: Array<{ err: SessionError; req: IncomingMessage }> = [];
      const built = app(store, (a) => a.get("/stream", handler), { onLostChange: (err, req) => lost.push({ err, req }) });
      return { built, lost };
    }

    it("CookieStore: a change while streaming goes to onLostChange with a message naming the route", async () => {
      const { built, lost } = lostIn(cookieStore(), streamThenChange((session) => (session.step = 2)));
      const browser = await browse(built);
      await browser.get("/set?step=1");
      await browser.get("/stream?x=1");
      expect(lost).toHaveLength(1);
      expect(lost[0].err).toBeInstanceOf(SessionUsageError);
      expect(lost[0].err.message).toContain("GET /stream?x=1");
      expect(lost[0].req.url).toBe("/stream?x=1");
      expect((await browser.get("/read")).body).toMatchObject({ step: "1" });
    });

    it("CookieStore: by default it is a process warning", async () => {
      // jest gives each test file its own copy of `process`, whose 'warning' listeners the real
      // process never calls: watch emitWarning itself (calling through, so Node still prints it).
      const emitWarning = jest.spyOn(process, "emitWarning");
      try {
        const browser = await browse(app(cookieStore(), (a) => a.get("/stream", streamThenChange((session) => (session.step = 2)))));
        await browser.get("/set?step=1");
        expect(emitWarning).not.toHaveBeenCalled();
        await browser.get("/stream");
        expect(emitWarning).toHaveBeenCalledTimes(1);
        const [message, options] = emitWarning.mock.calls[0] as [string, { type: string; code: string }];
        expect(message).toContain("session change on GET /stream was not saved");
        expect(options).toEqual({ type: "SessionUsageError", code: "SESSION_USAGE" });
      } finally {
        emitWarning.mockRestore();
      }
    });

    it("CookieStore: destroy() while streaming is reported (the browser keeps its cookie)", async () => {
      const { built, lost } = lostIn(cookieStore(), streamThenChange((session) => session.destroy()));
      const browser = await browse(built);
      await browser.get("/set?user=ann");
      await browser.get("/stream");
      expect(lost).toHaveLength(1);
    });

    it("CookieStore: data written before the headers and destroyed after them is reported", async () => {
      const { built, lost } = lostIn(cookieStore(), (req, res) => {
        req.session.user = "ann";
        res.write("a");
        req.session.destroy();
        res.end();
      });
      const browser = await browse(built);
      const res = await browser.get("/stream");
      expect(sessionCookie(res)).toBeDefined();
      expect(lost).toHaveLength(1);
    });

    it("a server-side store: a new session that gets data only after the headers is reported (its id never reached the browser)", async () => {
      const { built, lost } = lostIn(memoryStore(), streamThenChange((session) => (session.user = "ann")));
      const browser = await browse(built);
      const res = await browser.get("/stream");
      expect(sessionCookie(res)).toBeUndefined();
      expect(lost).toHaveLength(1);
    });

    it("a server-side store: a change to an existing session needs no new cookie, so nothing is reported", async () => {
      const { built, lost } = lostIn(memoryStore(), streamThenChange((session) => (session.step = 2)));
      const browser = await browse(built);
      await browser.get("/set?step=1");
      await browser.get("/stream");
      expect(lost).toEqual([]);
      expect((await browser.get("/read")).body).toMatchObject({ step: 2 });
    });

    it("a cookie the store expires but the browser does not have needs no header, so nothing is reported", async () => {
      const inner = memoryStore();
      const store: SessionStore = {
        load: (ctx) => inner.load(ctx),
        dump: (session, ctx) => [inner.dump(session, ctx), Cookie.expired("legacy")].flat(),
      };
      const { built, lost } = lostIn(store, streamThenChange((session) => (session.step = 2)));
      const browser = await browse(built);
      await browser.get("/set?step=1");
      await browser.get("/stream");
      expect(lost).toEqual([]);
    });

    it("a session read only after the headers left, and not changed, is not reported even when the store would re-issue its cookie", async () => {
      const store = new CookieStore({ secret: SECRET, touchAfter: 1 });
      const { built, lost } = lostIn(store, async (req, res) => {
        res.write("a");
        await delay(5);
        res.end(String(req.session.user));
      });
      const browser = await browse(built);
      await browser.get("/set?user=ann");
      expect((await browser.get("/stream")).text).toBe("aann");
      expect(lost).toEqual([]);
    });

    it("a late save that throws is reported with its cause", async () => {
      const store = new CookieStore({ secret: SECRET, maxSize: 600 });
      const { built, lost } = lostIn(store, streamThenChange((session) => (session.big = "x".repeat(2000))));
      const browser = await browse(built);
      await browser.get("/set?step=1");
      await browser.get("/stream");
      expect(lost).toHaveLength(1);
      expect((lost[0].err as { cause?: unknown }).cause).toBeInstanceOf(SessionTooLargeError);
    });

    it("a late save that rejects is reported with its cause", async () => {
      const inner = memoryStore();
      let dumps = 0;
      const store: SessionStore = {
        async: true,
        load: async (ctx) => inner.load(ctx),
        dump: async (session, ctx) => {
          if (dumps++ > 0) throw statusError("redis went away", 503);
          return inner.dump(session, ctx);
        },
      };
      const { built, lost } = lostIn(store, async (req, res) => {
        req.session.step = 1;
        res.write("a");
        await new Promise((resolve) => res.once("drain", resolve));
        req.session.step = 2;
        res.end("b");
      });
      const browser = await browse(built);
      const res = await browser.get("/stream");
      expect(res.text).toBe("ab");
      expect(lost).toHaveLength(1);
      expect(((lost[0].err as { cause?: Error }).cause as Error).message).toBe("redis went away");
    });
  });
});
