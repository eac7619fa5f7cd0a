/**
 * RedisStore (SPEC §6): one behaviour matrix, run over every kind of client it takes — a
 * node-redis client (version 5, and version 4 through the `redis4` alias), an ioredis client, a
 * url (the store owns its client), and the cluster clients of each against a three-master
 * Redis Cluster.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import express from "express";
import { type Cookie, RedisStore, Session, sessions, type SessionContext } from "../lib";
import { CREATED_FIELD, TOUCHED_FIELD } from "../lib/redis-hash";
import { commandsBetween, delta, describeRedis, type RedisCluster, type RedisServer, startCluster, startRedis } from "./helpers/redis";
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
  ["a node-redis 4 client", "node-redis 4"],
  ["an ioredis client", "ioredis"],
  ["a url (a node-redis client the store owns)", "url"],
  ["a node-redis cluster client", "node-redis cluster"],
  ["a node-redis 4 cluster client", "node-redis 4 cluster"],
  ["an ioredis cluster client", "ioredis cluster"],
];
const MINUTE = 60_000;
/** The matrix's store: maxAge one minute, so touchAfter is 6 s by default. */
const TOUCH_AFTER = 6_000;

/** The commands that change data: none of them may run for a read within touchAfter. */
const WRITES = ["hset", "hdel", "del", "pexpire", "expire", "multi", "exec", "set", "evalsha", "eval"];

/** Calls of write commands between two `stats()` readings. */
function writesBetween(before: Record<string, number>, after: Record<string, number>): number {
  return WRITES.reduce((sum, command) => sum + delta(before, after, command), 0);
}

/** The one cookie a dump returned; fails the test when there is none, or several. */
function only(dumped: Cookie | Cookie[]): Cookie {
  const cookies = [dumped].flat();
  expect(cookies).toHaveLength(1);
  return cookies[0];
}

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
      expect(stored).toEqual({
        user: '"ann"',
        cart: '[1,{"sku":"x"}]',
        n: "3",
        gone: "null",
        [CREATED_FIELD]: expect.stringMatching(/^\d+$/),
        [TOUCHED_FIELD]: expect.stringMatching(/^\d+$/),
      });
      expect(Math.abs(Number(stored[CREATED_FIELD]) - Date.now())).toBeLessThan(MINUTE);
      expect(stored[TOUCHED_FIELD]).toBe(stored[CREATED_FIELD]); // a new session is touched as it is created
    });

    it("gives the key a TTL that follows maxAge, and the cookie the same Max-Age", async () => {
      const browser = new Browser(app.url);
      const res = await browser.post("/set", { user: "ann" });
      const ttl = await raw.pTTL(`app1:${browser.id}`);
      expect(ttl).toBeGreaterThan(MINUTE - 5_000);
      expect(ttl).toBeLessThanOrEqual(MINUTE);
      expect(setCookies(res)[0]).toMatch(/^session=[^;]+; Max-Age=60; Path=\/; HttpOnly; SameSite=Lax$/);
    });

    it("sends only the HGETALL for an unchanged session read within touchAfter: no write, no Set-Cookie, the TTL left alone", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann" });
      const key = `app1:${browser.id}`;
      const touched = (await raw.hGetAll(key))[TOUCHED_FIELD];
      await raw.pExpire(key, 5_000);
      const before = await stats();
      const res = await browser.get("/get");
      const after = await stats();
      expect(res.body).toEqual({ id: browser.id, user: "ann" });
      expect(setCookies(res)).toEqual([]);
      expect(delta(before, after, "hgetall")).toBe(1);
      expect(writesBetween(before, after)).toBe(0);
      // (A cluster client also asks for the topology when it likes: count every command on one server only.)
      if (!inCluster) expect(commandsBetween(before, after)).toBe(1);
      expect(await raw.pTTL(key)).toBeLessThanOrEqual(5_000);
      expect((await raw.hGetAll(key))[TOUCHED_FIELD]).toBe(touched);
    });

    it("touches an unchanged session once touchAfter has passed: HSET of the touch time and PEXPIRE in one save script (EVALSHA), and the cookie again", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann" });
      const key = `app1:${browser.id}`;
      // As if the cookie had been issued longer than touchAfter ago.
      await raw.hSet(key, TOUCHED_FIELD, String(Date.now() - TOUCH_AFTER - 1_000));
      await raw.pExpire(key, 5_000);
      const before = await stats();
      const sent = Date.now();
      const res = await browser.get("/get");
      const after = await stats();
      expect(res.body).toEqual({ id: browser.id, user: "ann" });
      expect(setCookies(res)).toHaveLength(1);
      expect(setCookies(res)[0]).toMatch(/^session=[^;]+; Max-Age=60; Path=\/; HttpOnly; SameSite=Lax$/);
      expect(delta(before, after, "hgetall")).toBe(1);
      for (const [command, calls] of [["evalsha", 1], ["hset", 1], ["pexpire", 1], ["multi", 0], ["hdel", 0], ["del", 0]] as const) {
        expect([command, delta(before, after, command)]).toEqual([command, calls]);
      }
      expect(await raw.pTTL(key)).toBeGreaterThan(MINUTE - 5_000);
      const stored = await raw.hGetAll(key);
      expect(Number(stored[TOUCHED_FIELD])).toBeGreaterThanOrEqual(sent);
      expect(stored).toMatchObject({ user: '"ann"' });
      // Touched just now: the next read is within touchAfter again.
      const again = await stats();
      expect(setCookies(await browser.get("/get"))).toEqual([]);
      expect(writesBetween(again, await stats())).toBe(0);
    });

    it("touches, on its next read, a session stored without the touch-time field (by an earlier version)", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann" });
      const key = `app1:${browser.id}`;
      await raw.hDel(key, TOUCHED_FIELD);
      const res = await browser.get("/get");
      expect(res.body).toEqual({ id: browser.id, user: "ann" });
      expect(setCookies(res)).toHaveLength(1);
      expect(Number((await raw.hGetAll(key))[TOUCHED_FIELD])).toBeGreaterThan(0);
    });

    it("writes only the changed fields, in one save script (EVALSHA) with the TTL; within touchAfter with no Set-Cookie", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann", theme: "dark" });
      const key = `app1:${browser.id}`;
      const touched = (await raw.hGetAll(key))[TOUCHED_FIELD];
      // Another request changed a field since: writing only our own change keeps it.
      await raw.hSet(key, "theme", '"light"');
      await raw.pExpire(key, 5_000);
      const before = await stats();
      const res = await browser.post("/set", { cart: [7] });
      const after = await stats();
      expect(setCookies(res)).toEqual([]);
      expect(delta(before, after, "evalsha")).toBe(1);
      expect(delta(before, after, "multi")).toBe(0);
      expect(delta(before, after, "hset")).toBe(1);
      expect(delta(before, after, "pexpire")).toBe(1);
      // The TTL is set on every write (a hash this save recreated must not live forever).
      expect(await raw.pTTL(key)).toBeGreaterThan(MINUTE - 5_000);
      const stored = await raw.hGetAll(key);
      expect(stored).toMatchObject({ user: '"ann"', theme: '"light"', cart: "[7]", [TOUCHED_FIELD]: touched });
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann", theme: "light", cart: [7] });
    });

    it("re-issues the cookie with a write once touchAfter has passed, and records the touch in the same save script", async () => {
      const browser = new Browser(app.url);
      await browser.post("/set", { user: "ann" });
      const key = `app1:${browser.id}`;
      await raw.hSet(key, TOUCHED_FIELD, String(Date.now() - TOUCH_AFTER - 1_000));
      const before = await stats();
      const sent = Date.now();
      const res = await browser.post("/set", { cart: [7] });
      const after = await stats();
      expect(setCookies(res)).toHaveLength(1);
      expect(setCookies(res)[0]).toMatch(/Max-Age=60;/);
      for (const [command, calls] of [["evalsha", 1], ["hset", 1], ["pexpire", 1], ["multi", 0]] as const) {
        expect([command, delta(before, after, command)]).toEqual([command, calls]);
      }
      const stored = await raw.hGetAll(key);
      expect(stored).toMatchObject({ user: '"ann"', cart: "[7]" });
      expect(Number(stored[TOUCHED_FIELD])).toBeGreaterThanOrEqual(sent);
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
      expect(Object.keys(stored).sort()).toEqual([CREATED_FIELD, TOUCHED_FIELD, "user"].sort());
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
        expect(res.text).toMatch(/^error: RedisStore could not save the session .*: Redis failed the save script \(HDEL\/HSET\/PEXPIRE\): .*WRONGTYPE/);
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

    it("gives a fractional maxAge the whole seconds of its cookie for the TTL", async () => {
      const { store, served } = await appWith({ maxAge: 90_000.5, absoluteTimeout: null });
      try {
        const browser = new Browser(served.url);
        const res = await browser.post("/set", { user: "ann" });
        expect(res.status).toBe(200);
        const ttl = await raw.pTTL(`expiry:${browser.id}`);
        expect(ttl).toBeGreaterThan(85_000);
        expect(ttl).toBeLessThanOrEqual(90_000);
        expect(setCookies(res)[0]).toMatch(/Max-Age=90;/);
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

  describe("touchAfter, in real time", () => {
    let raw: Raw;
    beforeAll(async () => {
      raw = await rawClient(server.url);
    });
    afterAll(() => raw.close());

    /** Runs `test` against an app over a store with these options, then closes both. */
    async function withApp(options: Partial<ConstructorParameters<typeof RedisStore>[0]>, test: (browser: Browser) => Promise<void>): Promise<void> {
      const store = new RedisStore({ url: server.url, secret: SECRET, prefix: "touch:", ...options });
      const served = await serve(sessionApp(store));
      try {
        await test(new Browser(served.url));
      } finally {
        await served.close();
        await store.close();
      }
    }

    it("within touchAfter a read writes nothing and sends no Set-Cookie; after it, the read slides the TTL back to maxAge and re-issues the cookie", async () => {
      // touchAfter is long enough that the request "within" it is within it even on a loaded machine.
      await withApp({ maxAge: 20_000, touchAfter: 1_500 }, async (browser) => {
        await browser.post("/set", { user: "ann" });
        const key = `touch:${browser.id}`;
        const first = Number((await raw.hGetAll(key))[TOUCHED_FIELD]);
        await raw.pExpire(key, 10_000); // well below maxAge, so that a refresh shows
        let before = await server.stats();
        const within = await browser.get("/get");
        expect(within.body).toEqual({ id: browser.id, user: "ann" });
        expect(setCookies(within)).toEqual([]);
        expect(writesBetween(before, await server.stats())).toBe(0);
        expect(await raw.pTTL(key)).toBeLessThanOrEqual(10_000);

        await sleep(1_600);
        before = await server.stats();
        const sent = Date.now();
        const later = await browser.get("/get");
        const after = await server.stats();
        expect(later.body).toEqual({ id: browser.id, user: "ann" });
        expect(setCookies(later)).toHaveLength(1);
        expect(setCookies(later)[0]).toMatch(/^session=[^;]+; Max-Age=20; /);
        for (const [command, calls] of [["evalsha", 1], ["hset", 1], ["pexpire", 1], ["multi", 0]] as const) {
          expect([command, delta(before, after, command)]).toEqual([command, calls]);
        }
        expect(await raw.pTTL(key)).toBeGreaterThan(15_000);
        const touched = Number((await raw.hGetAll(key))[TOUCHED_FIELD]);
        expect(touched).toBeGreaterThan(first);
        expect(touched).toBeGreaterThanOrEqual(sent);
      });
    });

    it("touchAfter: 0 re-issues the cookie and refreshes the TTL on every read", async () => {
      await withApp({ maxAge: 4_000, touchAfter: 0 }, async (browser) => {
        await browser.post("/set", { user: "ann" });
        for (let i = 0; i < 2; i++) {
          const before = await server.stats();
          const res = await browser.get("/get");
          const after = await server.stats();
          expect(res.body).toEqual({ id: browser.id, user: "ann" });
          expect(setCookies(res)).toHaveLength(1);
          expect(delta(before, after, "hset")).toBe(1);
          expect(delta(before, after, "pexpire")).toBe(1);
        }
      });
    });

    it("keeps a session read every 100 ms alive past maxAge through its touches, and ends it once left idle for maxAge", async () => {
      await withApp({ maxAge: 1_000, touchAfter: 400 }, async (browser) => {
        const started = Date.now();
        await browser.post("/set", { user: "ann" });
        const id = browser.id;
        let reads = 0;
        let issued = 0;
        while (Date.now() - started < 1_500) {
          await sleep(100);
          const res = await browser.get("/get");
          expect(res.body).toEqual({ id, user: "ann" });
          reads++;
          issued += setCookies(res).length;
        }
        // Touched at least 400 ms apart (the first 400 ms after the login), not on every read.
        expect(issued).toBeGreaterThanOrEqual(2);
        expect(issued).toBeLessThanOrEqual(Math.floor((Date.now() - started) / 400));
        expect(issued).toBeLessThan(reads);
        await sleep(1_200);
        expect(await raw.exists(`touch:${id}`)).toBe(0);
        const res = await browser.get("/get");
        expect(res.body.id).not.toBe(id);
        expect(res.body).toEqual({ id: res.body.id });
      });
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

    it("does not store a key named like its creation-time or touch-time field, nor undefined values", async () => {
      const session = Session.empty();
      session.user = "ann";
      session[CREATED_FIELD] = "forged";
      session[TOUCHED_FIELD] = "forged";
      session.nothing = undefined;
      const cookie = only(await store.dump(session, ctx()));
      const stored = await raw.hGetAll(`direct:${session.id}`);
      expect(Object.keys(stored).sort()).toEqual([CREATED_FIELD, TOUCHED_FIELD, "user"].sort());
      expect(Number(stored[CREATED_FIELD])).toBeGreaterThan(0);
      expect(Number(stored[TOUCHED_FIELD])).toBeGreaterThan(0);
      const loaded = await store.load(ctx({ [cookie.name]: cookie.value }));
      expect({ ...loaded }).toEqual({ id: session.id, user: "ann" });
    });

    it("leaves nothing behind when a save races a destroy: the session stays gone, the key absent", async () => {
      const session = Session.empty();
      session.user = "ann";
      const cookie = only(await store.dump(session, ctx()));
      const loaded = (await store.load(ctx({ [cookie.name]: cookie.value }))) as Session;
      await raw.del(`direct:${session.id}`); // another request's destroy(), or the TTL running out
      loaded.cart = [1];
      await expect(store.dump(loaded, ctx({ [cookie.name]: cookie.value }))).rejects.toMatchObject({ name: "SessionEndedError", status: 409 });
      expect(await raw.exists(`direct:${session.id}`)).toBe(0);
      const reloaded = await store.load(ctx({ [cookie.name]: cookie.value }));
      expect(reloaded.id).not.toBe(session.id);
    });

    it("saves on a Redis that lost its script cache (restart, SCRIPT FLUSH): one NOSCRIPT, then EVAL, then EVALSHA again", async () => {
      await server.cli("SCRIPT", "FLUSH");
      const before = await server.stats();
      const first = Session.empty();
      first.user = "ann";
      only(await store.dump(first, ctx()));
      const second = Session.empty();
      second.user = "bob";
      only(await store.dump(second, ctx()));
      const after = await server.stats();
      expect(delta(before, after, "eval")).toBe(1);
      expect(delta(before, after, "evalsha")).toBe(2); // the refused one, counted as failed, and the second save
      expect((await raw.hGetAll(`direct:${first.id}`)).user).toBe('"ann"');
      expect((await raw.hGetAll(`direct:${second.id}`)).user).toBe('"bob"');
    });

    it("expires the cookie of a destroyed session it never saved, without a Redis command", async () => {
      const before = await server.stats();
      const session = Session.empty();
      session.destroy();
      const cookie = only(await store.dump(session, ctx()));
      expect(cookie.isExpired).toBe(true);
      expect(delta(before, await server.stats(), "del")).toBe(0);
    });

    it("returns no cookie ([]) and sends no command for an unchanged session within touchAfter", async () => {
      const session = Session.empty();
      session.user = "ann";
      const cookie = only(await store.dump(session, ctx()));
      const cookies = { [cookie.name]: cookie.value };
      const loaded = await store.load(ctx(cookies));
      const before = await server.stats();
      expect(await store.dump(loaded, ctx(cookies))).toEqual([]);
      expect(commandsBetween(before, await server.stats())).toBe(0);
    });

    const OLDER_SECRET = "an-older-redis-suite-secret-0123456789";
    it("re-issues, even within touchAfter, the cookie of a session loaded from a cookie signed with an older secret", async () => {
      const older = new RedisStore({ url: server.url, secret: OLDER_SECRET, prefix: "direct:" });
      const rotated = new RedisStore({ url: server.url, secret: [SECRET, OLDER_SECRET], prefix: "direct:" });
      try {
        const session = Session.empty();
        session.user = "ann";
        const old = only(await older.dump(session, ctx()));
        const loaded = await rotated.load(ctx({ [old.name]: old.value }));
        expect(loaded.user).toBe("ann");
        const reissued = only(await rotated.dump(loaded, ctx({ [old.name]: old.value })));
        expect(reissued.value).not.toBe(old.value);
        expect(reissued.value.startsWith(`${session.id}.`)).toBe(true);
        // Loaded from a cookie signed with the first secret, within touchAfter: nothing to send.
        const again = await rotated.load(ctx({ [reissued.name]: reissued.value }));
        expect(await rotated.dump(again, ctx({ [reissued.name]: reissued.value }))).toEqual([]);
      } finally {
        await older.close();
        await rotated.close();
      }
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
      expect(Object.keys(stored).sort()).toEqual([CREATED_FIELD, TOUCHED_FIELD, "a", "c"].sort());
    });
  });
});
