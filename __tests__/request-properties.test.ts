/**
 * How `req.session` and `req.loadSession()` reach the request: an accessor defined once on
 * IncomingMessage.prototype (so mounted sub-apps see it too), on the request itself only when
 * its own class already defines `session`.
 */
import http from "node:http";
import util from "node:util";
import express from "express";
import request from "supertest";
import { MemoryStore, sessions, type SessionObject } from "../lib";

/** Under bare node:http the request type knows nothing of the session: code casts, as users do. */
type WithSession = { session: SessionObject };

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

  it("req.loadSession() outside the middleware rejects with a message that says to mount it", async () => {
    const app = express();
    app.get("/bare", async (req, res) => {
      res.send(await req.loadSession().then(() => "loaded", (err: Error) => err.message));
    });
    app.use(sessions(new MemoryStore()));
    expect((await request(app).get("/bare")).text).toMatch(/did not pass through the sessions\(\) middleware; mount it before this route/);
  });

  it("does not show up among the request's own keys", async () => {
    const app = express();
    app.use(sessions(new MemoryStore()));
    app.get("/", (req, res) => res.json(Object.keys(req).includes("session")));
    expect((await request(app).get("/")).body).toBe(false);
  });
});

describe("req.session on bare node:http", () => {
  it("comes from IncomingMessage.prototype, not from a property added to each request", async () => {
    const mw = sessions(new MemoryStore());
    const server = http.createServer((req, res) => {
      if (req.url === "/bare") return void res.end(JSON.stringify({ session: (req as unknown as WithSession).session ?? null }));
      mw(req, res, () => {
        (req as unknown as WithSession).session.seen = true;
        res.end(JSON.stringify({ own: Object.prototype.hasOwnProperty.call(req, "session"), inherited: "session" in http.IncomingMessage.prototype }));
      });
    });
    const res = await request(server).get("/");
    expect(JSON.parse(res.text)).toEqual({ own: false, inherited: true });
    expect(res.headers["set-cookie"]).toHaveLength(1);
    // A request that does not pass through the middleware reads no session.
    expect(JSON.parse((await request(server).get("/bare")).text)).toEqual({ session: null });
  });

  it("gives the request its own properties when its class already defines session, and leaves that class alone", async () => {
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
});

/**
 * Where the request's state lives: in slots on `req.rawHeaders` (see lib/request-slot.ts), so
 * that nothing is added to `req` or `res`, whose hidden classes Express makes unique.
 */
describe("per-request state", () => {
  it("adds nothing visible to req, res or req.rawHeaders", async () => {
    const app = express();
    const keysBefore = new WeakMap<object, { req: PropertyKey[]; res: PropertyKey[] }>();
    app.use((req, res, next) => {
      keysBefore.set(req, { req: Reflect.ownKeys(req), res: Reflect.ownKeys(res) });
      next();
    });
    app.use(sessions(new MemoryStore()));
    app.get("/", (req, res) => {
      req.session.n = 1; // loads the session and holds the response
      const before = keysBefore.get(req) as { req: PropertyKey[]; res: PropertyKey[] };
      // Express adds `route` on its own; the middleware must add nothing.
      const added = (now: object, then: PropertyKey[]) => Reflect.ownKeys(now).filter((key) => !then.includes(key) && key !== "route").map(String);
      res.json({
        reqAdded: added(req, before.req),
        resAdded: added(res, before.res),
        rawKeys: Object.keys(req.rawHeaders).length === req.rawHeaders.length,
        inspected: util.inspect(req.rawHeaders, { depth: 0 }).includes("sessionbox"),
        json: JSON.stringify(req.rawHeaders) === JSON.stringify([...req.rawHeaders]),
      });
    });
    expect((await request(app).get("/")).body).toEqual({ reqAdded: [], resAdded: [], rawKeys: true, inspected: false, json: true });
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

  it("works on a request without a rawHeaders array and a response without a req (state kept on them instead)", async () => {
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

describe("requests that share a rawHeaders array, or derive from another request", () => {
  it("three concurrent requests given one rawHeaders array keep their own sessions and cookies", async () => {
    const mw = sessions(new MemoryStore());
    const sharedRaw: string[] = [];
    const waiting: Array<() => void> = [];
    const server = http.createServer((req, res) => {
      if (req.url?.startsWith("/set/")) Object.defineProperty(req, "rawHeaders", { value: sharedRaw, writable: true, configurable: true });
      mw(req, res, async () => {
        const session = (req as unknown as WithSession).session;
        if (req.url === "/name") return void res.end(String(session.name ?? ""));
        session.name = (req.url as string).slice("/set/".length);
        // All three attach and read before any reads again and answers.
        await new Promise<void>((resolve) => {
          waiting.push(resolve);
          if (waiting.length === 3) for (const go of waiting) setTimeout(go, 5);
        });
        res.end(String((req as unknown as WithSession).session.name));
      });
    });
    const answers = await Promise.all(["a", "b", "c"].map((name) => request(server).get(`/set/${name}`)));
    expect(answers.map((res) => res.text)).toEqual(["a", "b", "c"]);
    const cookieOf = (res: request.Response) => (res.headers["set-cookie"] as unknown as string[])[0].split(";")[0];
    expect(new Set(answers.map(cookieOf)).size).toBe(3);
    for (const [i, name] of ["a", "b", "c"].entries()) {
      expect((await request(server).get("/name").set("Cookie", cookieOf(answers[i]))).text).toBe(name);
    }
  });

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
});

describe("a response made with Object.create(res)", () => {
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

describe("response holds across interleaved requests", () => {
  it("a response that asked headersSent before its session was read is still held after other responses were", async () => {
    const app = express();
    app.use(sessions(new MemoryStore()));
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => (openGate = resolve));
    let aWaiting: () => void = () => {};
    const aArrived = new Promise<void>((resolve) => (aWaiting = resolve));
    app.get("/a", async (req, res) => {
      const before = res.headersSent; // looked at before the session is read
      req.session.a = 1;
      aWaiting();
      await gate; // meanwhile /b reads its session: another response is held last
      res.json({ before });
    });
    app.get("/b", (req, res) => {
      req.session.b = 1;
      openGate();
      setTimeout(() => res.json({}), 5);
    });
    const a = request(app).get("/a").then((r) => r);
    await aArrived;
    const [resA, resB] = await Promise.all([a, request(app).get("/b")]);
    expect(resA.body).toEqual({ before: false });
    expect(resA.headers["set-cookie"]).toHaveLength(1);
    expect(resB.headers["set-cookie"]).toHaveLength(1);
  });
});

/**
 * Two copies of the package in one process (two versions in node_modules, or an ESM and a
 * CommonJS import): the accessor, the request slots and the response hook are installed once,
 * by the first copy, and the second uses them.
 */
describe("a second copy of the package in the same process", () => {
  it("shares the request accessor, the slots and the response hook with the first", async () => {
    let second: typeof import("../lib") | undefined;
    jest.isolateModules(() => {
      second = require("../lib") as typeof import("../lib");
    });
    const copy = second as typeof import("../lib");
    expect(copy.sessions).not.toBe(sessions); // really another copy of the modules
    const app = express();
    app.use(copy.sessions(new copy.CookieStore({ secret: "a-secret-of-at-least-32-characters!!" })));
    const arrived: Array<() => void> = [];
    app.get("/set/:n", async (req, res) => {
      // Read the session only once both requests have arrived: the state is then found
      // through the request slots, not as the request attached last.
      await new Promise<void>((resolve) => {
        arrived.push(resolve);
        if (arrived.length === 2) for (const go of arrived) setTimeout(go, 5);
      });
      req.session.n = Number(req.params.n);
      res.send("ok");
    });
    app.get("/get", (req, res) => res.json(req.session.n ?? null));
    const [a, b] = await Promise.all([request(app).get("/set/7"), request(app).get("/set/8")]);
    for (const res of [a, b]) {
      expect(res.headers["set-cookie"]).toEqual([expect.stringMatching(/^session=[\w-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/)]);
      expect(res.headers.vary).toBe("Cookie");
    }
    const cookieOf = (res: request.Response) => (res.headers["set-cookie"] as unknown as string[])[0].split(";")[0];
    expect((await request(app).get("/get").set("Cookie", cookieOf(a))).body).toBe(7);
    expect((await request(app).get("/get").set("Cookie", cookieOf(b))).body).toBe(8);
  });
});
