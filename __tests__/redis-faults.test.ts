/**
 * Redis stalled or down (SPEC §6): each load and save fails within a bounded time with a 503
 * that names Redis; a failed load is never followed by a save that overwrites the stored
 * session; when Redis comes back, requests succeed again without restarting the app.
 *
 * The measured times are printed (console.log) for the record; the assertions only bound them
 * generously.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { RedisStore } from "../lib";
import { commandsBetween, delta, describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { Browser, type ClientKind, connectKind, type Raw, rawClient, SECRET, type Served, serve, sessionApp, type StoreConnection } from "./helpers/redis-app";

const TIMEOUT = 800;
/** Generous room for the request itself on a busy machine; the bound checked is TIMEOUT + SLACK. */
const SLACK = 1500;

const KINDS: [string, ClientKind][] = [
  ["a url (a node-redis client the store owns)", "url"],
  ["a node-redis client", "node-redis"],
  ["a node-redis 4 client", "node-redis 4"],
  ["an ioredis client", "ioredis"],
];

/** Runs `fn` and returns its result with the milliseconds it took. */
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const result = await fn();
  return [result, Math.round(performance.now() - start)];
}

describeRedis("RedisStore when Redis is stalled or down", () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    await server?.stop();
  });

  describe.each(KINDS)("through %s", (label, kind) => {
    let connection: StoreConnection;
    let store: RedisStore;
    let served: Served;

    beforeAll(async () => {
      connection = await connectKind(kind, server.url);
      store = new RedisStore({ ...connection.options, secret: SECRET, timeout: TIMEOUT });
      served = await serve(sessionApp(store));
    });

    afterAll(async () => {
      await served?.close();
      await store?.close();
      await connection?.close();
    });

    it("fails a request with a 503 that names Redis, within the timeout, while Redis is stalled (DEBUG SLEEP)", async () => {
      const browser = new Browser(served.url);
      await browser.post("/set", { user: "ann" });
      const { ended } = await server.stall(TIMEOUT + 1_500);
      const [res, ms] = await timed(() => browser.get("/get"));
      console.log(`stalled Redis, ${label}: 503 after ${ms} ms (timeout ${TIMEOUT} ms)`);
      expect(res.status).toBe(503);
      expect(res.text).toMatch(new RegExp(`^error: RedisStore could not load the session: Redis did not answer HGETALL within ${TIMEOUT} ms.* Check that Redis is running`));
      expect(ms).toBeLessThan(TIMEOUT + SLACK);
      await ended;
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann" });
    });

    it("never follows a failed load with a save that overwrites the stored session", async () => {
      const raw = await rawClient(server.url);
      try {
        const browser = new Browser(served.url);
        await browser.post("/set", { user: "ann", cart: [1] });
        const stored = await raw.hGetAll(`sess:${browser.id}`);
        const before = await server.stats();
        const { ended } = await server.stall(TIMEOUT + 1_000);
        const res = await browser.post("/set", { user: "mallory", cart: [] });
        expect(res.status).toBe(503);
        await ended;
        await sleep(200); // anything the store might still send after the stall
        const after = await server.stats();
        for (const write of ["hset", "hdel", "del", "pexpire", "multi", "exec", "evalsha", "eval"]) expect(delta(before, after, write)).toBe(0);
        expect(await raw.hGetAll(`sess:${browser.id}`)).toEqual(stored);
        expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann", cart: [1] });
      } finally {
        await raw.close();
      }
    });

    it("fails requests with a 503 within the timeout while Redis is down, and serves them again once it is back on the same port", async () => {
      const browser = new Browser(served.url);
      await browser.post("/set", { user: "ann" });
      await server.kill();
      try {
        const [res, ms] = await timed(() => browser.get("/get"));
        console.log(`Redis down, ${label}: 503 after ${ms} ms (timeout ${TIMEOUT} ms)`);
        expect(res.status).toBe(503);
        if (kind === "url") {
          // The store's own client keeps no offline queue: it fails at once, and says why.
          expect(res.text).toMatch(/^error: RedisStore could not load the session: Redis (failed|did not answer) HGETALL.* \(last connection error: .+\)\. Check that Redis is running and reachable at redis:\/\/127\.0\.0\.1:\d+ \(the url option\)/);
        } else {
          // A client with an offline queue holds the command until the timeout.
          expect(res.text).toMatch(new RegExp(`^error: RedisStore could not load the session: Redis did not answer HGETALL within ${TIMEOUT} ms\\. Check that Redis is running and reachable through the client given to RedisStore`));
        }
        expect(ms).toBeLessThan(TIMEOUT + SLACK);
      } finally {
        await server.restart();
      }
      const restarted = performance.now();
      // The restarted Redis is empty (nothing is persisted): the old cookie now starts a new session.
      let res = await browser.post("/set", { user: "bob" });
      while (res.status !== 200 && performance.now() - restarted < 15_000) res = await browser.post("/set", { user: "bob" });
      console.log(`Redis restarted, ${label}: requests succeed again ${Math.round(performance.now() - restarted)} ms after the restart`);
      expect(res.status).toBe(200);
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "bob" });
    });

    if (kind === "url") {
      it("does not queue the loads that failed while Redis was down, nor send them when it comes back", async () => {
        const browser = new Browser(served.url);
        await browser.post("/set", { user: "ann" });
        await server.kill();
        try {
          const failed = await Promise.all([1, 2, 3, 4, 5].map(() => browser.get("/get")));
          expect(failed.map((res) => res.status)).toEqual([503, 503, 503, 503, 503]);
        } finally {
          await server.restart();
        }
        // Requests without a cookie send no HGETALL: wait until one is served, then count.
        const fresh = new Browser(served.url);
        const restarted = performance.now();
        while ((await fresh.post("/set", { n: 1 })).status !== 200 && performance.now() - restarted < 15_000) fresh.cookie = undefined;
        await sleep(200);
        expect((await server.stats()).hgetall ?? 0).toBe(0);
      });
    }
  });

  describe("when Redis is down as the app starts", () => {
    it("makes requests wait for the store's own client to connect, then fail with a 503 that gives the connection error", async () => {
      await server.kill();
      const store = new RedisStore({ url: server.url, secret: SECRET, timeout: TIMEOUT });
      const served = await serve(sessionApp(store));
      try {
        const browser = new Browser(served.url);
        const [res, ms] = await timed(() => browser.post("/set", { user: "ann" }));
        console.log(`Redis down at start-up, store-owned client: 503 after ${ms} ms (timeout ${TIMEOUT} ms)`);
        expect(res.status).toBe(503);
        expect(res.text).toMatch(new RegExp(`^error: RedisStore could not save the session \\(it may or may not be saved\\): Redis did not answer the save script \\(HDEL\/HSET\/PEXPIRE\\) within ${TIMEOUT} ms \\(last connection error: .*ECONNREFUSED.*\\)`));
        expect(ms).toBeLessThan(TIMEOUT + SLACK);
        await server.restart();
        const restarted = performance.now();
        let ok = await browser.post("/set", { user: "ann" });
        while (ok.status !== 200 && performance.now() - restarted < 15_000) ok = await browser.post("/set", { user: "ann" });
        console.log(`Redis started after the app, store-owned client: requests succeed ${Math.round(performance.now() - restarted)} ms after Redis started`);
        expect(ok.status).toBe(200);
        expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann" });
      } finally {
        await served.close();
        await store.close();
        if ((await server.cli("PING").catch(() => "")) !== "PONG") await server.restart();
      }
    });
  });

  describe("with the default timeout", () => {
    it("is 2000 ms, and a stalled Redis fails the request within it", async () => {
      const store = new RedisStore({ url: server.url, secret: SECRET });
      const served = await serve(sessionApp(store));
      try {
        expect(store.timeout).toBe(2_000);
        const browser = new Browser(served.url);
        await browser.post("/set", { user: "ann" });
        const { ended } = await server.stall(3_000);
        const [res, ms] = await timed(() => browser.post("/set", { user: "bob" }));
        console.log(`stalled Redis, default timeout: 503 after ${ms} ms`);
        expect(res.status).toBe(503);
        expect(res.text).toMatch(/within 2000 ms/);
        expect(ms).toBeLessThan(2_000 + SLACK);
        await ended;
      } finally {
        await served.close();
        await store.close();
      }
    });
  });

  describe("a save that times out", () => {
    it("fails the request with a 503, not a 2xx", async () => {
      const store = new RedisStore({ url: server.url, secret: SECRET, timeout: TIMEOUT });
      const served = await serve(sessionApp(store));
      try {
        const browser = new Browser(served.url);
        await browser.post("/set", { user: "ann" });
        // The load answers; Redis stalls while the handler works, so the save waits.
        const pending = browser.post("/set?delay=300", { user: "bob" });
        await sleep(100);
        const { ended } = await server.stall(TIMEOUT + 1_000);
        const res = await pending;
        expect(res.status).toBe(503);
        expect(res.text).toMatch(new RegExp(`^error: RedisStore could not save the session \\(it may or may not be saved\\): Redis did not answer the save script \\(HDEL\/HSET\/PEXPIRE\\) within ${TIMEOUT} ms`));
        await ended;
      } finally {
        await served.close();
        await store.close();
      }
    });
  });

  describe("close()", () => {
    it("releases the client the store created, even while Redis is down, and it stops reconnecting", async () => {
      const store = new RedisStore({ url: server.url, secret: SECRET });
      const client = store.client as { isOpen: boolean; isReady: boolean };
      const ready = performance.now();
      while (!client.isReady && performance.now() - ready < 5_000) await sleep(20);
      expect(client.isReady).toBe(true);
      await server.kill();
      try {
        while (client.isReady) await sleep(10); // the client has noticed: it is reconnecting
        const [, ms] = await timed(() => store.close());
        expect(ms).toBeLessThan(SLACK);
        expect(client.isOpen).toBe(false);
        await store.close(); // a second close is harmless
      } finally {
        await server.restart();
      }
      await sleep(500);
      expect(client.isOpen).toBe(false);
      const before = await server.stats();
      expect(commandsBetween({}, before)).toBe(0); // nobody connected to the restarted server to send anything
    });

    it("returns within the timeout when the store's client never connected, and it stops trying", async () => {
      await server.kill();
      const store = new RedisStore({ url: server.url, secret: SECRET, timeout: TIMEOUT });
      try {
        const [, ms] = await timed(() => store.close());
        expect(ms).toBeLessThan(TIMEOUT + SLACK);
        expect((store.client as { isOpen: boolean }).isOpen).toBe(false);
      } finally {
        await server.restart();
      }
      await sleep(2_500); // longer than node-redis waits between attempts
      expect(commandsBetween({}, await server.stats())).toBe(0);
    });
  });
});
