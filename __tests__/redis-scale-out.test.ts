/**
 * Scale-out (SPEC §6): several app instances, each with its own Redis client, share sessions
 * through one Redis, and through a three-master Redis Cluster that spreads them over every master.
 */
import { RedisStore } from "../lib";
import { describeRedis, type RedisCluster, type RedisServer, startCluster, startRedis } from "./helpers/redis";
import { Browser, type ClientKind, connectKind, SECRET, type Served, serve, sessionApp, type StoreConnection } from "./helpers/redis-app";

/** An app instance: its own client, store and HTTP server. */
interface Instance {
  served: Served;
  store: RedisStore;
  connection: StoreConnection;
}

async function instance(kind: ClientKind, url: string, nodes?: { host: string; port: number }[]): Promise<Instance> {
  const connection = await connectKind(kind, url, nodes);
  const store = new RedisStore({ ...connection.options, secret: SECRET });
  return { connection, store, served: await serve(sessionApp(store)) };
}

async function shutdown(...instances: (Instance | undefined)[]): Promise<void> {
  for (const one of instances) {
    await one?.served.close();
    await one?.store.close();
    await one?.connection.close();
  }
}

/** Logs in on A, reads on B, writes on B, reads on A. */
async function shareOneSession(a: Instance, b: Instance): Promise<void> {
  const browser = new Browser(a.served.url);
  await browser.post("/set", { cart: [1] });
  const anonymous = browser.id;
  const beforeLogin = browser.cookie;
  const login = await browser.post("/regenerate", { user: "ann" });
  expect(login.status).toBe(200);
  expect(browser.id).not.toBe(anonymous);

  browser.url = b.served.url;
  expect((await browser.get("/get")).body).toEqual({ id: browser.id, cart: [1], user: "ann" });
  expect((await browser.post("/set", { cart: [1, 2] })).status).toBe(200);

  browser.url = a.served.url;
  expect((await browser.get("/get")).body).toEqual({ id: browser.id, cart: [1, 2], user: "ann" });

  // The id from before the login (regenerate) is gone for every instance.
  const stale = new Browser(b.served.url);
  stale.cookie = beforeLogin;
  const res = await stale.get("/get");
  expect(res.body).toEqual({ id: res.body.id });
  expect(res.body.id).not.toBe(anonymous);
}

describeRedis("app instances sharing sessions", () => {
  describe("through one Redis", () => {
    let server: RedisServer;
    let a: Instance | undefined;
    let b: Instance | undefined;

    beforeAll(async () => {
      server = await startRedis();
      a = await instance("node-redis", server.url);
      b = await instance("ioredis", server.url);
    });

    afterAll(async () => {
      await shutdown(a, b);
      await server?.stop();
    });

    it("logs in on instance A, reads and writes on B, reads B's write on A", async () => {
      await shareOneSession(a as Instance, b as Instance);
    });

    it("logs out on B, and A no longer knows the session", async () => {
      const browser = new Browser((a as Instance).served.url);
      await browser.post("/regenerate", { user: "ann" });
      const cookie = browser.cookie;
      browser.url = (b as Instance).served.url;
      await browser.post("/destroy");
      expect(browser.cookie).toBeUndefined();
      browser.url = (a as Instance).served.url;
      browser.cookie = cookie; // a copy of the cookie kept from before the logout
      const res = await browser.get("/get");
      expect(res.body).toEqual({ id: res.body.id });
      expect(res.body.user).toBeUndefined();
    });
  });

  describe("through a three-master Redis Cluster", () => {
    let cluster: RedisCluster;
    let a: Instance | undefined;
    let b: Instance | undefined;

    beforeAll(async () => {
      cluster = await startCluster();
      a = await instance("node-redis cluster", "", cluster.nodes);
      b = await instance("ioredis cluster", "", cluster.nodes);
    }, 60_000);

    afterAll(async () => {
      await shutdown(a, b);
      await cluster?.stop();
    });

    it("logs in on instance A, reads and writes on B, reads B's write on A", async () => {
      await shareOneSession(a as Instance, b as Instance);
    });

    it("spreads sessions over all three masters, and every instance reads every one", async () => {
      const dbsize = () => Promise.all(cluster.ports.map(async (port) => Number(await cluster.cli(port, "DBSIZE"))));
      const before = await dbsize();
      const browsers: Browser[] = [];
      for (let i = 0; i < 60; i++) {
        const browser = new Browser((i % 2 === 0 ? (a as Instance) : (b as Instance)).served.url);
        // regenerate too: the old key and the new one are in different slots (and usually on different masters).
        await browser.post("/set", { n: i });
        await browser.post("/regenerate", { user: `user${i}` });
        browsers.push(browser);
      }
      const added = (await dbsize()).map((size, i) => size - before[i]);
      console.log(`sessions per master: ${added.join(", ")}`);
      // 60 keys in all (each regenerate deleted the key it replaced), some on every master.
      expect(added.reduce((sum, n) => sum + n, 0)).toBe(60);
      for (const n of added) expect(n).toBeGreaterThan(0);
      for (const [i, browser] of browsers.entries()) {
        browser.url = (i % 2 === 0 ? (b as Instance) : (a as Instance)).served.url;
        expect((await browser.get("/get")).body).toEqual({ id: browser.id, n: i, user: `user${i}` });
      }
    });
  });
});
