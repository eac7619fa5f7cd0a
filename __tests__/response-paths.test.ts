/**
 * SPEC §3.4: the session is dumped, and its cookie is in the headers, whatever way the
 * response is sent. Every path runs against an asynchronous store (a MemoryStore whose
 * dump saves 20 ms later, so the response hook has to hold the headers) and against the
 * synchronous CookieStore (no hold). Each test checks the `Set-Cookie` on the response
 * and that the change is visible to the very next request.
 */
import { Readable } from "node:stream";
import { readFileSync } from "node:fs";
import type express from "express";
import { sessions } from "../lib";
import type { SessionStore } from "../lib/store";
import { Browser, closeServers, express4App, express5App, serveForTest, setCookies } from "./helpers/apps";
import { cookieStore, delay, SlowStore } from "./helpers/test-stores";

afterEach(closeServers);

type App = express.Express;

/** Adds one to `req.session.n`. */
function bump(req: express.Request): void {
  req.session.n = ((req.session.n as number | undefined) ?? 0) + 1;
}

/** Routes shared by every test: `/start` creates the session, `/read` shows `n`. */
function baseRoutes(app: App): App {
  app.get("/start", (req, res) => {
    req.session.n = 0;
    res.send("started");
  });
  app.get("/read", (req, res) => {
    res.json({ n: req.session.n ?? null });
  });
  return app;
}

/** A browser with a started session (`n = 0`), so every path below changes an existing one. */
async function started(app: App): Promise<Browser> {
  const { url } = await serveForTest(app);
  const browser = new Browser(url);
  const res = await browser.get("/start");
  expect(res.status).toBe(200);
  expect(browser.jar.get("session")).toBeDefined();
  return browser;
}

/** The response carries our session cookie, and the next request sees `n`. */
async function expectSaved(browser: Browser, res: { headers: Record<string, unknown> }, n: number): Promise<void> {
  expect(setCookies(res).some((line) => line.startsWith("session="))).toBe(true);
  const read = await browser.get("/read");
  expect(read.body).toEqual({ n });
}

const stores: Array<[string, () => SessionStore]> = [
  ["an asynchronous store (dump saves 20 ms later)", () => new SlowStore()],
  ["the synchronous CookieStore", () => cookieStore()],
];

describe.each(stores)("with %s, the cookie is in the headers and the change is saved for", (_name, makeStore) => {
  function app(routes: (app: App) => void, version: (mw: ReturnType<typeof sessions>) => App = express5App): App {
    const built = baseRoutes(version(sessions(makeStore())));
    routes(built);
    return built;
  }

  it("res.send", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.send("sent");
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.text).toBe("sent");
    await expectSaved(browser, res, 1);
  });

  it("res.json", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.json({ ok: true });
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.body).toEqual({ ok: true });
    await expectSaved(browser, res, 1);
  });

  it("res.redirect: the request that follows the redirect at once sees the saved session", async () => {
    const browser = await started(
      app((a) => {
        a.post("/login", (req, res) => {
          req.session.user = "ann";
          res.redirect("/me");
        });
        a.get("/me", (req, res) => {
          res.json({ user: req.session.user ?? null });
        });
      }),
    );
    const res = await browser.post("/login");
    expect(res.status).toBe(302);
    expect(setCookies(res).some((line) => line.startsWith("session="))).toBe(true);
    const me = await browser.get(res.headers.location);
    expect(me.body).toEqual({ user: "ann" });
  });

  it("res.end() without a body", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.end();
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(200);
    expect(res.text).toBe("");
    await expectSaved(browser, res, 1);
  });

  it("res.end(body)", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.end("ended");
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.text).toBe("ended");
    await expectSaved(browser, res, 1);
  });

  it("res.writeHead then res.end", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.writeHead(201, { "Content-Type": "text/plain", "X-Extra": "1" });
          res.end("created");
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(201);
    expect(res.headers["x-extra"]).toBe("1");
    expect(res.text).toBe("created");
    await expectSaved(browser, res, 1);
  });

  it("res.writeHead with a status message and no headers", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.writeHead(202, "Taken");
          res.end();
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(202);
    expect((res as unknown as { res: { statusMessage: string } }).res.statusMessage).toBe("Taken");
    await expectSaved(browser, res, 1);
  });

  it("res.writeHead with a headers object holding its own Set-Cookie: both cookies survive", async () => {
    const browser = await started(
      app((a) => {
        a.get("/one", (req, res) => {
          bump(req);
          res.writeHead(200, { "set-cookie": "own=1; Path=/" });
          res.end("one");
        });
        a.get("/list", (req, res) => {
          bump(req);
          res.writeHead(200, "OK", { "Set-Cookie": ["own=2; Path=/", "other=3; Path=/"] });
          res.end("list");
        });
      }),
    );
    const one = await browser.get("/one");
    expect(setCookies(one).filter((line) => line.startsWith("own=1"))).toHaveLength(1);
    expect(browser.jar.get("own")).toBe("1");
    await expectSaved(browser, one, 1);
    const list = await browser.get("/list");
    expect(browser.jar.get("own")).toBe("2");
    expect(browser.jar.get("other")).toBe("3");
    await expectSaved(browser, list, 2);
  });

  it("res.writeHead with a flat [name, value, ...] array holding its own Set-Cookie: both survive", async () => {
    const browser = await started(
      app((a) => {
        a.get("/one", (req, res) => {
          bump(req);
          res.writeHead(200, ["Set-Cookie", "own=1; Path=/", "Content-Type", "text/plain"]);
          res.end("flat");
        });
        a.get("/list", (req, res) => {
          bump(req);
          res.writeHead(200, ["set-cookie", ["own=2; Path=/", "other=3; Path=/"]]);
          res.end("list");
        });
      }),
    );
    const one = await browser.get("/one");
    expect(one.headers["content-type"]).toBe("text/plain");
    expect(browser.jar.get("own")).toBe("1");
    await expectSaved(browser, one, 1);
    const list = await browser.get("/list");
    expect([browser.jar.get("own"), browser.jar.get("other")]).toEqual(["2", "3"]);
    await expectSaved(browser, list, 2);
  });

  it("res.writeHead with a flat array without Set-Cookie", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.writeHead(200, ["X-Flat", "yes"]);
          res.end("flat");
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.headers["x-flat"]).toBe("yes");
    await expectSaved(browser, res, 1);
  });

  it("keeps the cookies the handler set with res.cookie (one or several)", async () => {
    const browser = await started(
      app((a) => {
        a.get("/one", (req, res) => {
          bump(req);
          res.cookie("theme", "dark");
          res.send("one");
        });
        a.get("/two", (req, res) => {
          bump(req);
          res.cookie("a", "1").cookie("b", "2");
          res.send("two");
        });
      }),
    );
    const one = await browser.get("/one");
    expect(browser.jar.get("theme")).toBe("dark");
    await expectSaved(browser, one, 1);
    const two = await browser.get("/two");
    expect([browser.jar.get("a"), browser.jar.get("b")]).toEqual(["1", "2"]);
    await expectSaved(browser, two, 2);
  });

  it("res.write streaming (chunked)", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", async (req, res) => {
          bump(req);
          res.setHeader("Content-Type", "text/plain");
          res.write("a");
          await delay(5);
          res.write("b");
          res.end("c");
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.headers["transfer-encoding"]).toBe("chunked");
    expect(res.text).toBe("abc");
    await expectSaved(browser, res, 1);
  });

  it("stream.pipe(res)", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.setHeader("Content-Type", "text/plain");
          Readable.from(["one ", "two ", "three"]).pipe(res);
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.text).toBe("one two three");
    await expectSaved(browser, res, 1);
  });

  it("res.sendFile", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res, next) => {
          bump(req);
          res.sendFile(__filename, (err) => err && next(err));
        }),
      ),
    );
    const res = await browser.get("/p", (t) => t.buffer(true).parse((r, done) => {
      let text = "";
      r.on("data", (chunk: Buffer) => (text += chunk));
      r.on("end", () => done(null, text));
    }));
    expect(res.status).toBe(200);
    expect(res.body).toBe(readFileSync(__filename, "utf8"));
    await expectSaved(browser, res, 1);
  });

  it("res.flushHeaders() before the body", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", async (req, res) => {
          bump(req);
          res.setHeader("Content-Type", "text/plain");
          res.flushHeaders();
          await delay(5);
          res.end("flushed");
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.text).toBe("flushed");
    await expectSaved(browser, res, 1);
  });

  it("a 204 response", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.status(204).end();
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(204);
    await expectSaved(browser, res, 1);
  });

  it("a 304 response to If-None-Match", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.send("the same body every time");
        }),
      ),
    );
    const first = await browser.get("/p");
    const etag = first.headers.etag as string;
    expect(etag).toBeDefined();
    const res = await browser.get("/p", (t) => t.set("If-None-Match", etag));
    expect(res.status).toBe(304);
    await expectSaved(browser, res, 2);
  });

  it("a HEAD request", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, res) => {
          bump(req);
          res.send("not sent for HEAD");
        }),
      ),
    );
    const res = await browser.request("head", "/p");
    expect(res.status).toBe(200);
    expect(res.text).toBeUndefined();
    await expectSaved(browser, res, 1);
  });

  it.each([
    ["Express 5", express5App],
    ["Express 4", express4App],
  ] as const)("a handler that throws (%s): the error response carries the cookie", async (_v, version) => {
    const browser = await started(
      app(
        (a) =>
          a.get("/p", (req) => {
            bump(req);
            throw new Error("handler failed");
          }),
        version,
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(500);
    await expectSaved(browser, res, 1);
  });

  it("a handler that fails after it started streaming: the response is aborted, never completed or spliced with an error page", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", async (req, res) => {
          bump(req);
          res.write("partial");
          await delay(1);
          throw new Error("failed mid-stream");
        }),
      ),
    );
    await expect(browser.get("/p")).rejects.toThrow(/aborted|socket hang up/);
  });

  it("an async handler that rejects (Express 5)", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", async (req) => {
          bump(req);
          await delay(1);
          throw Object.assign(new Error("teapot"), { status: 418 });
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(418);
    await expectSaved(browser, res, 1);
  });

  it("next(err)", async () => {
    const browser = await started(
      app((a) =>
        a.get("/p", (req, _res, next) => {
          bump(req);
          next(Object.assign(new Error("gone"), { status: 410 }));
        }),
      ),
    );
    const res = await browser.get("/p");
    expect(res.status).toBe(410);
    await expectSaved(browser, res, 1);
  });
});
