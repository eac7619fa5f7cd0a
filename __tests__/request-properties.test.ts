/**
 * How `req.session` and `req.loadSession()` reach the request: an accessor defined once on
 * IncomingMessage.prototype (so mounted sub-apps see it too), on the request itself only when
 * its own class already defines `session`.
 */
import http from "node:http";
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
