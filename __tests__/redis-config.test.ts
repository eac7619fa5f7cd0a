/**
 * RedisStore from configuration (SPEC §8, §6): `sessions({ store: "redis", url, secret })` works
 * and exposes its store so it can be closed; a wrong configuration fails at `sessions(...)`,
 * before any connection is made, with a message that says how to fix it.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";
import express from "express";
import { sign } from "cookie-signature";
import { createClient } from "redis";
import { RedisStore, SessionConfigError, sessions, type SessionContext, SessionStoreUnavailableError } from "../lib";
import { describeRedis, freePort, type RedisServer, startRedis } from "./helpers/redis";
import { Browser, errorHandler, SECRET, serve } from "./helpers/redis-app";

/** What a user's client object looks like to the store (node-redis v5: isOpen/isReady). */
type Connectable = { isOpen: boolean; isReady: boolean };

/** How many clients are connected to the server, besides the redis-cli that asks. */
async function connectedClients(server: RedisServer): Promise<number> {
  return (await server.cli("CLIENT", "LIST")).split("\n").filter((line) => line.trim() !== "").length - 1;
}

describeRedis('sessions({ store: "redis", ... })', () => {
  let server: RedisServer;

  beforeAll(async () => {
    server = await startRedis();
  });

  afterAll(async () => {
    await server?.stop();
  });

  it("builds a RedisStore from plain configuration, exposes it as .store, and store.close() releases its client", async () => {
    const middleware = sessions({ store: "redis", url: server.url, secret: SECRET, prefix: "conf:", maxAge: "60000" as unknown as number, timeout: "1500" as unknown as number });
    const store: RedisStore = middleware.store;
    expect(store).toBeInstanceOf(RedisStore);
    expect([store.prefix, store.maxAge, store.timeout]).toEqual(["conf:", 60_000, 1_500]);
    const app = express();
    app.use(middleware);
    app.get("/", (req, res) => {
      req.session.views = ((req.session.views as number) ?? 0) + 1;
      res.send(`views: ${req.session.views}`);
    });
    app.use(errorHandler);
    const served = await serve(app);
    try {
      const browser = new Browser(served.url);
      expect((await browser.get("/")).text).toBe("views: 1");
      expect((await browser.get("/")).text).toBe("views: 2");
      expect(await server.cli("EXISTS", `conf:${browser.id}`)).toBe("1");
    } finally {
      await served.close();
    }
    const client = store.client as Connectable;
    expect(client.isOpen).toBe(true);
    await store.close();
    expect(client.isOpen).toBe(false);
    await sleep(100);
    expect(await connectedClients(server)).toBe(0);
  });

  it("takes touchAfter from configuration (numeric strings and 0 too), and defaults it to min(60 s, maxAge / 10)", async () => {
    const stores = [
      sessions({ store: "redis", url: server.url, secret: SECRET }).store,
      sessions({ store: "redis", url: server.url, secret: SECRET, maxAge: 30_000 }).store,
      sessions({ store: "redis", url: server.url, secret: SECRET, maxAge: 30_000, touchAfter: "2500" as unknown as number }).store,
      sessions({ store: "redis", url: server.url, secret: SECRET, touchAfter: 0 }).store,
      sessions({ store: "redis", url: server.url, secret: SECRET, touchAfter: "0" as unknown as number }).store,
    ];
    try {
      expect(stores.map((store) => store.touchAfter)).toEqual([60_000, 3_000, 2_500, 0, 0]);
    } finally {
      await Promise.all(stores.map((store) => store.close()));
    }
  });

  it("leaves no connection behind when closed right after it was created", async () => {
    const stores = [1, 2, 3, 4, 5].map(() => new RedisStore({ url: server.url, secret: SECRET }));
    await Promise.all(stores.map((store) => store.close()));
    await sleep(200);
    expect(stores.map((store) => (store.client as Connectable).isReady)).toEqual([false, false, false, false, false]);
    expect(await connectedClients(server)).toBe(0);
  });

  it("lets a load issued before its own client has connected wait for the connection", async () => {
    const store = new RedisStore({ url: server.url, secret: SECRET });
    try {
      const ctx: SessionContext = {
        req: { headers: {}, socket: {} } as IncomingMessage,
        res: {} as ServerResponse,
        cookies: { session: sign("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", SECRET) },
      };
      expect((store.client as Connectable).isReady).toBe(false);
      const session = await store.load(ctx);
      expect(session.id).not.toBe("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"); // no such session: a new one
    } finally {
      await store.close();
    }
  });

  it("keeps the password of the url out of its error messages", async () => {
    const down = await freePort(); // nothing listens there
    const store = new RedisStore({ url: `redis://:hunter2-password@127.0.0.1:${down}`, secret: SECRET, timeout: 300 });
    try {
      const ctx: SessionContext = {
        req: { headers: {}, socket: {} } as IncomingMessage,
        res: {} as ServerResponse,
        cookies: { session: sign("1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed", SECRET) },
      };
      const failed = await Promise.resolve(store.load(ctx)).catch((err: Error) => err);
      expect(failed).toBeInstanceOf(SessionStoreUnavailableError);
      expect((failed as SessionStoreUnavailableError).status).toBe(503);
      expect((failed as Error).message).toContain(`reachable at redis://:***@127.0.0.1:${down} (the url option)`);
      expect((failed as Error).message).not.toContain("hunter2");
    } finally {
      await store.close();
    }
  });

  it("never closes a client you passed: it is yours", async () => {
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      const middleware = sessions(new RedisStore({ client, secret: SECRET }));
      await middleware.store.close();
      expect(client.isOpen).toBe(true);
      expect(await client.ping()).toBe("PONG");
    } finally {
      await client.close();
    }
  });

  describe("fails at sessions(...), before connecting, with a message that says how to fix it", () => {
    const attempt = (config: Record<string, unknown>) => () => sessions({ store: "redis", ...config } as Parameters<typeof sessions>[0]);

    it.each([
      ["neither url nor client", { secret: SECRET }, /RedisStore needs a Redis connection: pass \{ url: process\.env\.REDIS_URL \}.*or \{ client \}/],
      ["an empty url (an unset environment variable)", { url: "", secret: SECRET }, /RedisStore needs a Redis connection.*the url is missing or empty/],
      ["both url and client", { url: "redis://127.0.0.1:1", client: {}, secret: SECRET }, /RedisStore: give either client or url, not both/],
      ["a url without a scheme", { url: "localhost:6379", secret: SECRET }, /RedisStore: url must be a Redis URL such as "redis:\/\/127\.0\.0\.1:6379".*got "localhost:6379"/],
      ["a url that is not a Redis URL", { url: "http://127.0.0.1:6379", secret: SECRET }, /url must be a Redis URL/],
      ["a url that cannot be parsed", { url: "redis://[::1", secret: SECRET }, /url must be a Redis URL/],
      ["a url that is not a string", { url: 6379, secret: SECRET }, /url must be a Redis URL .*got 6379/],
      ["an object that is not a Redis client", { client: { get() {} }, secret: SECRET }, /RedisStore: client is not a Redis client it knows; pass a node-redis client or cluster .* or an ioredis Redis or Cluster/],
      ["a null client", { client: null, secret: SECRET }, /client is not a Redis client it knows/],
      ["no secret", { url: "redis://127.0.0.1:1" }, /RedisStore needs a secret: pass \{ secret: process\.env\.SESSION_SECRET \}/],
      ["a short secret", { url: "redis://127.0.0.1:1", secret: "short" }, /secret must be a string of at least 32 characters/],
      ["a prefix that is not a string", { url: "redis://127.0.0.1:1", secret: SECRET, prefix: 1 }, /prefix must be a string/],
      ["a timeout of 0", { url: "redis://127.0.0.1:1", secret: SECRET, timeout: 0 }, /timeout must be a positive number of milliseconds/],
      ["a timeout longer than Node's timers allow", { url: "redis://127.0.0.1:1", secret: SECRET, timeout: 1e10 }, /timeout must be at most 2147483647 ms/],
      ["an unknown option", { url: "redis://127.0.0.1:1", secret: SECRET, ttl: 60 }, /RedisStore: unknown option "ttl"; the options are client, url, secret, prefix, name, cookie, maxAge, absoluteTimeout, touchAfter, timeout$/],
      ["a touchAfter as long as maxAge", { url: "redis://127.0.0.1:1", secret: SECRET, maxAge: 60_000, touchAfter: 60_000 }, /^RedisStore: touchAfter \(60000 ms\) must be shorter than maxAge \(60000 ms\), or an active but unchanged session would expire; lower touchAfter or leave it out$/],
      ["a touchAfter longer than the default maxAge (1 day)", { url: "redis://127.0.0.1:1", secret: SECRET, touchAfter: "172800000" }, /^RedisStore: touchAfter \(172800000 ms\) must be shorter than maxAge \(86400000 ms\)/],
      ["a negative touchAfter", { url: "redis://127.0.0.1:1", secret: SECRET, touchAfter: -1 }, /^RedisStore: touchAfter must be a positive number of milliseconds, got -1$/],
      ["a touchAfter that is not a number", { url: "redis://127.0.0.1:1", secret: SECRET, touchAfter: "1 minute" }, /^RedisStore: touchAfter must be a positive number of milliseconds, got "1 minute"$/],
      ["a bad cookie name", { url: "redis://127.0.0.1:1", secret: SECRET, name: "a b" }, /cookie name "a b" is not a valid cookie name/],
    ])("%s", (_label, config, message) => {
      expect(attempt(config)).toThrow(SessionConfigError);
      expect(attempt(config)).toThrow(message);
    });

    it("does not connect when the rest of the configuration is wrong", async () => {
      expect(attempt({ url: server.url, secret: "short" })).toThrow(SessionConfigError);
      expect(attempt({ url: server.url, secret: SECRET, maxAge: -1 })).toThrow(/maxAge must be a positive number/);
      await sleep(100);
      expect(await connectedClients(server)).toBe(0);
    });

    it('names "redis" among the stores when the store name is wrong', () => {
      expect(attempt({ store: "redsi", url: server.url, secret: SECRET })).toThrow(/unknown store "redsi"; set store to "cookie", "memory" or "redis"/);
    });
  });
});
