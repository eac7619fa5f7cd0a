/**
 * RedisStore (SPEC §6): one behaviour matrix, run over every kind of client it takes — a
 * node-redis client, an ioredis client, a url (the store owns its client), and the cluster
 * clients of both against a three-master Redis Cluster.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import express from "express";
import { RedisStore, Session, sessions, type SessionContext } from "../lib";
import { CREATED_FIELD } from "../lib/redis-store";
import { delta, describeRedis, type RedisCluster, type RedisServer, startCluster, startRedis } from "./helpers/redis";
import {
  Browser,
  type ClientKind,
  connectKind,
  errorHandler,
  type Raw,
  rawClient,
  SECRET,
  type Served,
  serve,
  sessionApp,
  setCookies,
  type StoreConnection,
} from "./helpers/redis-app";

const KINDS: [string, ClientKind][] = [
  ["a node-redis client", "node-redis"],
  ["a node-redis client speaking RESP3", "node-redis RESP3"],
  ["an ioredis client", "ioredis"],
  ["a url (a node-redis client the store owns)", "url"],
  ["a node-redis cluster client", "node-redis cluster"],
  ["an ioredis cluster client", "ioredis cluster"],
];
const MINUTE = 60_000;

describeRedis("RedisStore", () => {
  let server: RedisServer;
  let cluster: RedisCluster;

  beforeAll(async () => {
    [server, cluster] = await Promise.all([startRedis(), startCluster()]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([server?.stop(), cluster?.stop()]);
  });

  describe.each(KINDS)("through %s", (_label, kind) => {
    const inCluster = kind.endsWith("cluster");
    let connection: StoreConnection;
    let store: RedisStore;
    let raw: Raw;
    let app: Served;
    const stats = () => (inCluster ? cluster.stats() : server.stats());

    beforeAll(async () => {
      connection = await connectKind(kind, server.url, cluster.nodes);
      raw = await rawClient(inCluster ? cluster.nodes : server.url);
      store = new RedisStore({ ...connection.options, secret: SECRET, prefix: "app1:", maxAge: MINUTE });
      app = await serve(sessionApp(store));
    });

    afterAll(async () => {
      await app?.close();
      await store?.close();
      await connection?.close();
      await raw?.close();
    });

    it("round-trips a session: what one request writes, the next one reads", async () => {
      const browser = new Browser(app.url);
      const written = await browser.post("/set", { user: "ann", cart: [1, 2] });
      expect(written.status).toBe(200);
      const read = await browser.get("/get");
      expect(read.body).toEqual({ id: browser.id, user: "ann", cart: [1, 2] });
    });

    it("keeps the session at prefix + id, one hash field per key holding its value as JSON", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann", cart: [1, { sku: "x" }], n: 3, gone: null });
      const stored = await raw.hGetAll(`app1:${browser.id}`);
      expect(stored).toEqual({ user: '"ann"', cart: '[1,{"sku":"x"}]', n: "3", gone: "null", [CREATED_FIELD]: expect.stringMatching(/^\d+$/) });
      expect(Math.abs(Number(stored[CREATED_FIELD]) - Date.now())).toBeLessThan(MINUTE);
    });

    it("gives the key a TTL that follows maxAge, and the cookie the same Max-Age", async () => {
      const browser = new Browser(app.url);
      const res = await browser.post("/set", { user: "ann" });
      const ttl = await raw.pTTL(`app1:${browser.id}`);
      expect(ttl).toBeGreaterThan(MINUTE - 5_000);
      expect(ttl).toBeLessThanOrEqual(MINUTE);
      expect(setCookies(res)[0]).toMatch(/^session=[^;]+; Max-Age=60; Path=\/; HttpOnly; SameSite=Lax$/);
    });

    it("only refreshes the TTL of an unmodified session (one HGETALL to load, one PEXPIRE to save)", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann" });
      const key = `app1:${browser.id}`;
      await raw.pExpire(key, 5_000);
      const before = await stats();
      const res = await browser.get("/get");
      const after = await stats();
      expect(res.body).toEqual({ id: browser.id, user: "ann" });
      expect(setCookies(res)).toHaveLength(1);
      expect(delta(before, after, "hgetall")).toBe(1);
      expect(delta(before, after, "pexpire")).toBe(1);
      for (const write of ["hset", "hdel", "del", "multi", "exec"]) expect(delta(before, after, write)).toBe(0);
      expect(await raw.pTTL(key)).toBeGreaterThan(MINUTE - 5_000);
    });

    it("writes only the changed fields, in one MULTI with the TTL", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann", theme: "dark" });
      const key = `app1:${browser.id}`;
      // Another request changed a field since: writing only our own change keeps it.
      await raw.hSet(key, "theme", '"light"');
      const before = await stats();
      await browser.post("/set", { cart: [7] });
      const after = await stats();
      expect(delta(before, after, "multi")).toBe(1);
      expect(delta(before, after, "exec")).toBe(1);
      expect(delta(before, after, "hset")).toBe(1);
      expect(delta(before, after, "pexpire")).toBe(1);
      const stored = await raw.hGetAll(key);
      expect(stored).toMatchObject({ user: '"ann"', theme: '"light"', cart: "[7]" });
    });

    it("removes the field of a deleted key", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann", cart: [1] });
      const before = await stats();
      const res = await browser.post("/delete?key=cart");
      const after = await stats();
      expect(res.body).toEqual({ id: browser.id, user: "ann" });
      expect(delta(before, after, "hdel")).toBe(1);
      expect(delta(before, after, "hset")).toBe(0);
      const stored = await raw.hGetAll(`app1:${browser.id}`);
      expect(Object.keys(stored).sort()).toEqual([CREATED_FIELD, "user"].sort());
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann" });
    });

    it("regenerate moves the data to a new id and deletes the old key", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { cart: [1] });
      const oldId = browser.id as string;
      const res = await browser.post("/regenerate", { user: "ann" });
      expect(res.status).toBe(200);
      expect(browser.id).not.toBe(oldId);
      expect(res.body).toEqual({ id: browser.id, cart: [1], user: "ann" });
      expect(await raw.exists(`app1:${oldId}`)).toBe(0);
      expect(await raw.hGetAll(`app1:${browser.id}`)).toMatchObject({ cart: "[1]", user: '"ann"' });
      expect(await raw.pTTL(`app1:${browser.id}`)).toBeGreaterThan(MINUTE - 5_000);
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, cart: [1], user: "ann" });
    });

    it("destroy deletes the key and the Set-Cookie expires the cookie", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann" });
      const id = browser.id as string;
      const cookie = browser.cookie;
      const res = await browser.post("/destroy");
      expect(res.status).toBe(200);
      expect(setCookies(res)[0]).toMatch(/^session=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax$/);
      expect(browser.cookie).toBeUndefined();
      expect(await raw.exists(`app1:${id}`)).toBe(0);
      // The destroyed id is worthless even to a client that kept the cookie.
      browser.cookie = cookie;
      const after = await browser.get("/get");
      expect(after.body.id).not.toBe(id);
      expect(after.body).toEqual({ id: after.body.id });
    });

    it("answers 503, never a 2xx, when Redis refuses the save", async () => {
      const refusing = express();
      refusing.use(sessions(store));
      refusing.post("/", async (req, res) => {
        // The key is replaced by a string: Redis answers the MULTI's HSET with WRONGTYPE.
        await raw.set(`app1:${req.session.id}`, "not a hash");
        req.session.cart = [2];
        res.send("saved");
      });
      refusing.use(errorHandler);
      const served = await serve(refusing);
      try {
        const browser = new Browser(app.url);
        await browser.post("/set", { user: "ann" });
        browser.url = served.url;
        const res = await browser.post("/");
        expect(res.status).toBe(503);
        expect(res.text).toMatch(/^error: RedisStore could not save the session .*: Redis failed MULTI HSET\+PEXPIRE EXEC: .*WRONGTYPE/);
      } finally {
        await served.close();
      }
    });
  });

  describe("expiry", () => {
    let raw: Raw;
    beforeAll(async () => {
      raw = await rawClient(server.url);
    });
    afterAll(() => raw.close());

    async function appWith(options: Partial<ConstructorParameters<typeof RedisStore>[0]>): Promise<{ store: RedisStore; served: Served }> {
      const store = new RedisStore({ url: server.url, secret: SECRET, prefix: "expiry:", ...options });
      return { store, served: await serve(sessionApp(store)) };
    }

    it("cuts the TTL short at the absoluteTimeout", async () => {
      const { store, served } = await appWith({ maxAge: MINUTE, absoluteTimeout: 30_000 });
      try {
        const browser = new Browser(served.url);
        const res = await browser.post("/set", { user: "ann" });
        const ttl = await raw.pTTL(`expiry:${browser.id}`);
        expect(ttl).toBeGreaterThan(25_000);
        expect(ttl).toBeLessThanOrEqual(30_000);
        expect(setCookies(res)[0]).toMatch(/Max-Age=(29|30);/);
      } finally {
        await served.close();
        await store.close();
      }
    });

    it("keeps the TTL at maxAge with absoluteTimeout: null, and the default maxAge is one day", async () => {
      const { store, served } = await appWith({ absoluteTimeout: null });
      try {
        const browser = new Browser(served.url);
        const res = await browser.post("/set", { user: "ann" });
        expect(await raw.pTTL(`expiry:${browser.id}`)).toBeGreaterThan(86_400_000 - 5_000);
        expect(setCookies(res)[0]).toMatch(/Max-Age=86400;/);
      } finally {
        await served.close();
        await store.close();
      }
    });

    it("rounds a fractional maxAge up to whole milliseconds for the TTL", async () => {
      const { store, served } = await appWith({ maxAge: 90_000.5, absoluteTimeout: null });
      try {
        const browser = new Browser(served.url);
        const res = await browser.post("/set", { user: "ann" });
        expect(res.status).toBe(200);
        const ttl = await raw.pTTL(`expiry:${browser.id}`);
        expect(ttl).toBeGreaterThan(85_000);
        expect(ttl).toBeLessThanOrEqual(90_001);
      } finally {
        await served.close();
        await store.close();
      }
    });

    it("ends a stored session past its absoluteTimeout, even if the key is still there", async () => {
      const { store, served } = await appWith({ absoluteTimeout: MINUTE });
      try {
        const browser = new Browser(served.url);
        await browser.post("/set", { user: "ann" });
        const id = browser.id;
        // As another app instance with a clock ahead would have seen it: created over a minute ago.
        await raw.hSet(`expiry:${id}`, CREATED_FIELD, String(Date.now() - MINUTE - 1));
        const res = await browser.get("/get");
        expect(res.body.id).not.toBe(id);
        expect(res.body).toEqual({ id: res.body.id });
      } finally {
        await served.close();
        await store.close();
      }
    });
  });

  describe("stored data it did not write", () => {
    let raw: Raw;
    let store: RedisStore;
    let served: Served;
    beforeAll(async () => {
      raw = await rawClient(server.url);
      store = new RedisStore({ url: server.url, secret: SECRET, prefix: "foreign:" });
      served = await serve(sessionApp(store));
    });
    afterAll(async () => {
      await served.close();
      await store.close();
      await raw.close();
    });

    async function storedSession(): Promise<Browser> {
      const browser = new Browser(served.url);
      await browser.post("/set", { user: "ann" });
      return browser;
    }

    it("is not adopted without the creation-time field: the remains of a session that ended while another request wrote to it", async () => {
      const browser = await storedSession();
      const id = browser.id;
      await raw.del(`foreign:${id}`);
      await raw.hSet(`foreign:${id}`, "cart", "[1]"); // what a late save of another request leaves behind
      const res = await browser.get("/get");
      expect(res.body.id).not.toBe(id);
      expect(res.body).toEqual({ id: res.body.id });
    });

    it("is not adopted when a field is not JSON", async () => {
      const browser = await storedSession();
      const id = browser.id;
      await raw.hSet(`foreign:${id}`, "user", "not json");
      const res = await browser.get("/get");
      expect(res.body.id).not.toBe(id);
      expect(res.body).toEqual({ id: res.body.id });
    });

    it("pollutes no prototype: __proto__ and constructor fields are plain keys", async () => {
      const browser = await storedSession();
      await raw.hSet(`foreign:${browser.id}`, "constructor", '{"polluted":true}');
      await raw.hSet(`foreign:${browser.id}`, "__proto__", '{"polluted":true}');
      const res = await browser.get("/get");
      expect(res.body).toEqual({ id: browser.id, user: "ann", constructor: { polluted: true } });
      expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    });

    it("answers 503 when the key holds another type (Redis refuses the load)", async () => {
      const browser = await storedSession();
      await raw.set(`foreign:${browser.id}`, "a string");
      const res = await browser.get("/get");
      expect(res.status).toBe(503);
      expect(res.text).toMatch(/^error: RedisStore could not load the session: Redis failed HGETALL: WRONGTYPE/);
    });
  });

  describe("changes made after the headers left", () => {
    it("are saved when a streamed response ends, under the same cookie", async () => {
      const store = new RedisStore({ url: server.url, secret: SECRET, prefix: "late:" });
      const app = express();
      app.use(sessions(store));
      app.get("/stream", (req, res) => {
        req.session.started = true;
        res.write("part 1;");
        setTimeout(() => {
          req.session.finished = true; // the headers (and the cookie) have left by now
          res.end("part 2");
        }, 50);
      });
      app.get("/get", (req, res) => {
        res.json({ ...req.session });
      });
      const served = await serve(app);
      try {
        const browser = new Browser(served.url);
        const res = await browser.get("/stream");
        expect(res.text).toBe("part 1;part 2");
        expect(setCookies(res)).toHaveLength(1);
        expect((await browser.get("/get")).body).toEqual({ id: browser.id, started: true, finished: true });
      } finally {
        await served.close();
        await store.close();
      }
    });
  });

  describe("the store used directly", () => {
    let store: RedisStore;
    let raw: Raw;
    beforeAll(async () => {
      store = new RedisStore({ url: server.url, secret: SECRET, prefix: "direct:" });
      raw = await rawClient(server.url);
    });
    afterAll(async () => {
      await store.close();
      await raw.close();
    });
    const ctx = (cookies: Record<string, string> = {}): SessionContext => ({
      req: { headers: {}, socket: {} } as IncomingMessage,
      res: {} as ServerResponse,
      cookies,
    });

    it("does not store a key named like its creation-time field, nor undefined values", async () => {
      const session = Session.empty();
      session.user = "ann";
      session[CREATED_FIELD] = "forged";
      session.nothing = undefined;
      const cookie = await store.dump(session, ctx());
      const stored = await raw.hGetAll(`direct:${session.id}`);
      expect(Object.keys(stored).sort()).toEqual([CREATED_FIELD, "user"].sort());
      expect(Number(stored[CREATED_FIELD])).toBeGreaterThan(0);
      const loaded = await store.load(ctx({ [cookie.name]: cookie.value }));
      expect({ ...loaded }).toEqual({ id: session.id, user: "ann" });
    });

    it("expires the cookie of a destroyed session it never saved, without a Redis command", async () => {
      const before = await server.stats();
      const session = Session.empty();
      session.destroy();
      const cookie = await store.dump(session, ctx());
      expect(cookie.isExpired).toBe(true);
      expect(delta(before, await server.stats(), "del")).toBe(0);
    });

    it("saves changes made after a first save against what that save wrote", async () => {
      const session = Session.empty();
      session.a = 1;
      session.b = 2;
      await store.dump(session, ctx());
      delete session.b; // as a handler streaming a response might, after the headers left
      session.c = 3;
      await store.dump(session, ctx());
      const stored = await raw.hGetAll(`direct:${session.id}`);
      expect(Object.keys(stored).sort()).toEqual([CREATED_FIELD, "a", "c"].sort());
    });
  });
});
