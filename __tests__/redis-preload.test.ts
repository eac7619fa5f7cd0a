/**
 * A synchronous `req.session` for a store that loads with I/O (SPEC §3.2), and what each kind
 * of request costs in Redis commands: preloading by default, fully lazy with `preload: false`.
 */
import express from "express";
import { createClient } from "redis";
import { RedisStore, sessions } from "../lib";
import { commandsBetween, delta, describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { Browser, errorHandler, SECRET, type Served, serve, sessionApp, setCookies } from "./helpers/redis-app";

describeRedis("RedisStore and the middleware's loading", () => {
  let server: RedisServer;
  let client: ReturnType<typeof createClient>;
  let store: RedisStore;

  beforeAll(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    client.on("error", () => undefined);
    await client.connect();
    store = new RedisStore({ client, secret: SECRET });
  });

  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  describe("preloaded (the default)", () => {
    let served: Served;
    let browser: Browser;
    beforeAll(async () => {
      served = await serve(sessionApp(store));
      browser = new Browser(served.url);
      await browser.post("/set", { user: "ann" });
    });
    afterAll(() => served.close());

    it("sends no Redis command for a request without a session cookie", async () => {
      const before = await server.stats();
      const res = await new Browser(served.url).get("/get");
      expect(commandsBetween(before, await server.stats())).toBe(0);
      expect(res.body).toEqual({ id: res.body.id });
      expect(setCookies(res)).toEqual([]);
    });

    it("loads with exactly one HGETALL and writes nothing, with no Set-Cookie, for a handler that never reads the session", async () => {
      const before = await server.stats();
      const res = await browser.get("/untouched");
      const after = await server.stats();
      expect(res.text).toBe("ok");
      expect(setCookies(res)).toEqual([]);
      expect(delta(before, after, "hgetall")).toBe(1);
      expect(commandsBetween(before, after)).toBe(1);
    });

    it("gives handlers the loaded session synchronously", async () => {
      const res = await browser.get("/get");
      expect(res.body).toEqual({ id: browser.id, user: "ann" });
      expect(setCookies(res)).toEqual([]); // unchanged, and its cookie issued within touchAfter
    });
  });

  describe("with preload: false", () => {
    let served: Served;
    let browser: Browser;
    beforeAll(async () => {
      const app = express();
      app.use(sessions(store, { preload: false }));
      app.get("/untouched", (_req, res) => {
        res.send("ok");
      });
      app.get("/too-early", (req, res) => {
        res.json({ ...req.session });
      });
      app.post("/count", async (req, res) => {
        const session = await req.loadSession();
        session.count = ((session.count as number) ?? 0) + 1;
        res.json({ same: session === req.session, ...req.session });
      });
      app.use(errorHandler);
      served = await serve(app);
      browser = new Browser(served.url);
      await browser.post("/count");
    });
    afterAll(() => served.close());

    it("sends no Redis command at all for a handler that never calls loadSession, even with a session cookie", async () => {
      const before = await server.stats();
      const res = await browser.get("/untouched");
      expect(commandsBetween(before, await server.stats())).toBe(0);
      expect(res.text).toBe("ok");
      expect(setCookies(res)).toEqual([]);
    });

    it("throws an error that says to call `await req.loadSession()` when req.session is read before it", async () => {
      const res = await browser.get("/too-early");
      expect(res.status).toBe(500);
      expect(res.text).toMatch(/req\.session was read before the session was loaded.*call `await req\.loadSession\(\)` first/);
    });

    it("reads and writes the session after `await req.loadSession()`, which resolves to req.session", async () => {
      const before = await server.stats();
      const res = await browser.post("/count");
      expect(res.body).toEqual({ same: true, id: browser.id, count: 2 });
      expect(delta(before, await server.stats(), "hset")).toBe(1);
      expect(setCookies(res)).toEqual([]); // a change within touchAfter needs no new cookie
    });

    it("sends no Redis command for loadSession without a session cookie", async () => {
      const before = await server.stats();
      const fresh = new Browser(served.url);
      const res = await fresh.post("/count");
      const after = await server.stats();
      expect(res.body).toEqual({ same: true, id: fresh.id, count: 1 });
      expect(delta(before, after, "hgetall")).toBe(0);
      expect(delta(before, after, "hset")).toBe(1);
    });
  });
});
