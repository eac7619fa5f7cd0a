/**
 * How `req.session` and `req.loadSession()` reach the request: `sessions()` defines them on each
 * request it serves, and on nothing else (SPEC §3.8); mounted twice, the second mount passes the
 * first one's session through (SPEC §3.10).
 */
import http from "node:http";
import util from "node:util";
import express from "express";
import request from "supertest";
import { CookieStore, MemoryStore, Session, sessions, type SessionObject, type SessionStore } from "../lib";

/** Under bare node:http the request type knows nothing of the session: code casts, as users do. */
type WithSession = { session: SessionObject };
const cookieOf = (res: request.Response) => (res.headers["set-cookie"] as unknown as string[])[0].split(";")[0];

describe("req.session under Express", () => {
  it("is visible in a mounted sub-app's handlers", async () => {
    const app = express();
    const admin = express();
    app.use(sessions(new MemoryStore()));
    admin.get("/count", (req, res) => {
      req.session.n = ((req.session.n as number) ?? 0) + 1;
      res.json(req.session.n);
    });
    app.use("/admin", admin);
    const agent = request.agent(app);
    expect((await agent.get("/admin/count")).body).toBe(1);
    expect((await agent.get("/admin/count")).body).toBe(2);
  });

  it("is undefined on routes the middleware does not cover, and can be assigned there as a plain property", async () => {
    const app = express();
    app.get("/bare", (req, res) => {
      const before = req.session;
      (req as { session: unknown }).session = { legacy: true };
      res.json({ before: before === undefined, after: req.session });
    });
    app.use(sessions(new MemoryStore()));
    const res = await request(app).get("/bare");
    expect(res.body).toEqual({ before: true, after: { legacy: true } });
    expect(res.headers["set-cookie"]).toBeUndefined();
  });

  it("req.loadSession does not exist on routes the middleware does not cover", async () => {
    const app = express();
    app.get("/bare", (req, res) => res.json(typeof req.loadSession));
    app.use(sessions(new MemoryStore()));
    expect((await request(app).get("/bare")).body).toBe("undefined");
  });

  it("is not among the request's enumerable keys: for...in, Object.keys and util.inspect do not load the session", async () => {
    let loads = 0;
    const store = new MemoryStore();
    const counting: SessionStore = { load: (ctx) => (loads++, store.load(ctx)), dump: (session, ctx) => store.dump(session, ctx) };
    const app = express();
    app.use(sessions(counting));
    app.get("/", (req, res) => {
      const listed: string[] = [];
      for (const key in req) listed.push(key);
      util.inspect(req, { depth: 1 });
      res.json({ forIn: listed.includes("session") || listed.includes("loadSession"), keys: Object.keys(req).includes("session"), loads });
    });
    const res = await request(app).get("/");
    expect(res.body).toEqual({ forIn: false, keys: false, loads: 0 });
    expect(res.headers["set-cookie"]).toBeUndefined();
    expect(res.headers.vary).toBeUndefined();
  });
  it("keeps interleaved requests apart when their handlers read and answer in later turns", async () => {
    const app = express();
    app.use(sessions(new MemoryStore()));
    const arrived: Array<() => void> = [];
    app.get("/set/:name", async (req, res) => {
      req.session.name = req.params.name;
      // Wait until both requests have arrived, so each reads and answers after the other attached.
      await new Promise<void>((resolve) => {
        arrived.push(resolve);
        if (arrived.length === 2) for (const go of arrived) setTimeout(go, 5);
      });
      res.json({ name: req.session.name, id: req.session.id });
    });
    app.get("/name", (req, res) => res.json(req.session.name ?? null));
    const [a, b] = await Promise.all([request(app).get("/set/a"), request(app).get("/set/b")]);
    expect([a.body.name, b.body.name]).toEqual(["a", "b"]);
    expect(a.body.id).not.toBe(b.body.id);
    const cookieOf = (res: request.Response) => (res.headers["set-cookie"] as unknown as string[])[0].split(";")[0];
    expect((await request(app).get("/name").set("Cookie", cookieOf(a))).body).toBe("a");
    expect((await request(app).get("/name").set("Cookie", cookieOf(b))).body).toBe("b");
  });

  it("works on a request without rawHeaders and a response without req", async () => {
    const mw = sessions(new MemoryStore());
    const server = http.createServer((req, res) => {
      Object.defineProperty(req, "rawHeaders", { value: undefined, writable: true, configurable: true });
      Object.defineProperty(res, "req", { value: undefined, writable: true, configurable: true });
      mw(req, res, () => {
        const session = (req as unknown as WithSession).session;
        session.visits = ((session.visits as number) ?? 0) + 1;
        setTimeout(() => res.end(String(session.visits)), 1); // answered in a later turn
      });
    });
    const agent = request.agent(server);
    const first = await agent.get("/");
    expect(first.text).toBe("1");
    expect(first.headers["set-cookie"]).toHaveLength(1);
    expect((await agent.get("/")).text).toBe("2");
  });
});


describe("objects derived from the request or the response", () => {
  it("an object made with Object.create(req) sees the request's session", async () => {
    const app = express();
    app.use(sessions(new MemoryStore()));
    app.get("/", (req, res) => {
      const derived = Object.create(req) as typeof req;
      derived.session.viaDerived = true;
      res.json({ same: derived.session === req.session, value: req.session.viaDerived });
    });
    const res = await request(app).get("/");
    expect(res.body).toEqual({ same: true, value: true });
    expect(res.headers["set-cookie"]).toHaveLength(1);
  });
  it("still sends the session's cookie when it ends the response", async () => {
    const mw = sessions(new MemoryStore());
    const server = http.createServer((req, res) =>
      mw(req, res, () => {
        (req as unknown as WithSession).session.n = 1; // holds the response
        (Object.create(res) as typeof res).end("ok");
      }),
    );
    const answer = await request(server).get("/");
    expect(answer.text).toBe("ok");
    expect(answer.headers["set-cookie"]).toHaveLength(1);
  });
});


describe("on bare node:http", () => {
  it("a request that does not pass through the middleware has no session, and its response is untouched", async () => {
    const mw = sessions(new MemoryStore());
    const server = http.createServer((req, res) => {
      if (req.url === "/bare") return void res.end(JSON.stringify({ session: "session" in req, loadSession: "loadSession" in req, write: Object.hasOwn(res, "write") }));
      mw(req, res, () => {
        (req as unknown as WithSession).session.seen = true;
        res.end(JSON.stringify({ own: Object.hasOwn(req, "session"), onPrototype: "session" in http.IncomingMessage.prototype }));
      });
    });
    const res = await request(server).get("/");
    expect(JSON.parse(res.text)).toEqual({ own: true, onPrototype: false });
    expect(res.headers["set-cookie"]).toHaveLength(1);
    expect(JSON.parse((await request(server).get("/bare")).text)).toEqual({ session: false, loadSession: false, write: false });
  });

  it("works when the request's class defines session on its prototype, and leaves that class alone", async () => {
    class OtherRequest extends http.IncomingMessage {}
    Object.defineProperty(OtherRequest.prototype, "session", { configurable: true, get: () => "theirs" });
    const mw = sessions(new MemoryStore());
    const server = http.createServer({ IncomingMessage: OtherRequest }, (req, res) =>
      mw(req, res, () => {
        const { session } = req as unknown as WithSession;
        session.mine = 1;
        res.end(JSON.stringify({ mine: session.mine, protoStill: (OtherRequest.prototype as unknown as { session: string }).session }));
      }),
    );
    expect(JSON.parse((await request(server).get("/")).text)).toEqual({ mine: 1, protoStill: "theirs" });
  });

  it("a response object the middleware cannot hook fails loudly on the first read of the session", async () => {
    const mw = sessions(new MemoryStore());
    const req = Object.assign(new http.IncomingMessage(null as never), { headers: {} });
    const res = { end() {} } as unknown as http.ServerResponse;
    let thrown: unknown;
    mw(req, res, () => {
      try {
        void (req as unknown as WithSession).session;
      } catch (err) {
        thrown = err;
      }
    });
    expect(thrown).toMatchObject({ name: "SessionUsageError", status: 500 });
    expect((thrown as Error).message).toMatch(/cannot hold the headers of this response: it has no writeHead\(\) method.*node:http ServerResponse or a node:http2 Http2ServerResponse/);
  });
});

describe("mounted twice (SPEC §3.10)", () => {
  it("the second mount passes the first one's session through: one load, one Set-Cookie, nothing set between them lost", async () => {
    const store = new MemoryStore();
    let loads = 0;
    const counting: SessionStore = { load: (ctx) => (loads++, store.load(ctx)), dump: (session, ctx) => store.dump(session, ctx) };
    const app = express();
    const router = express.Router();
    app.use(sessions(counting));
    app.use((req, _res, next) => {
      req.session.before = "set between the mounts";
      next();
    });
    router.use(sessions(counting));
    router.get("/x", (req, res) => {
      req.session.after = 1;
      res.json({ ...req.session });
    });
    app.use(router);
    const res = await request(app).get("/x");
    expect(res.body).toMatchObject({ before: "set between the mounts", after: 1 });
    expect(res.headers["set-cookie"]).toHaveLength(1);
    expect(loads).toBe(1);
    const next = await request(app).get("/x").set("Cookie", cookieOf(res));
    expect(next.body).toMatchObject({ id: res.body.id, before: "set between the mounts", after: 1 });
  });

  it("two copies of the package mounted one after the other: the second passes the first one's session through", async () => {
    let second: typeof import("../lib") | undefined;
    jest.isolateModules(() => {
      second = require("../lib") as typeof import("../lib");
    });
    const copy = second as typeof import("../lib");
    expect(copy.sessions).not.toBe(sessions); // really another copy of the modules
    const secret = "a-secret-of-at-least-32-characters!!";
    const app = express();
    app.use(sessions(new CookieStore({ secret })));
    app.use(copy.sessions(new copy.CookieStore({ secret, name: "other" })));
    app.get("/", (req, res) => {
      req.session.n = 1;
      res.json({ first: req.session instanceof Session });
    });
    const res = await request(app).get("/");
    expect(res.body).toEqual({ first: true });
    expect((res.headers["set-cookie"] as unknown as string[]).map((line) => line.split("=")[0])).toEqual(["session"]);
  });
});
