/**
 * Moving an app from express-session (over connect-redis or connect-pg-simple) or from
 * cookie-session to CookieStore or RedisStore with `sessions(store, { fallback })` (SPEC §10):
 * users signed in before the switch stay signed in; in the first response after it, their
 * session moves into the new store, the old cookie leaves the browser and the old record the
 * server; from then on the old store is not asked. On real servers.
 */
import { createClient } from "redis";
import { CookieSessionReader, CookieStore, ExpressSessionStore, RedisStore, type SessionStore } from "../lib";
import {
  Browser,
  COOKIE_SESSION_KEYS,
  cookieSessionApp,
  DAY,
  expressSessionApp,
  SECRET,
  type Served,
  served,
  sessionboxApp,
} from "./helpers/express-session-apps";
import { type Backend, CONNECT_PG_SIMPLE, CONNECT_REDIS, recorded } from "./helpers/express-session-backends";
import { REDIS, type RedisServer, startRedis } from "./helpers/redis";
import { describeNeeding, type Requirement } from "./helpers/servers";

/** Where users come from: the old app, and the fallback store that reads its sessions. */
interface Source {
  name: string;
  requirements: Requirement[];
  /** The cookies the old app keeps in the browser. */
  cookies: string[];
  open(): Promise<{
    app: Served;
    fallback: SessionStore;
    /** How many times the old store was read (its I/O); 0 for cookie-session, which has none. */
    reads(): number;
    /** Whether the server still holds the browser's old record (cookie-session has none). */
    holds(browser: Browser): Promise<boolean>;
    /** The old store's Redis, if it has one: RedisStore is then kept on the same server. */
    redis?: RedisServer;
    close(): Promise<void>;
  }>;
}

function fromExpressSession(backend: Backend): Source {
  return {
    name: `express-session + ${backend.name}`,
    requirements: backend.requirements,
    cookies: ["connect.sid"],
    async open() {
      const opened = await backend.open();
      const store = recorded(opened.shared);
      const app = await served(expressSessionApp(opened.old));
      return {
        app,
        fallback: new ExpressSessionStore({ store, secret: SECRET, maxAge: DAY }),
        reads: () => store.calls.get,
        holds: async (browser) => (await opened.record(browser.expressSessionId as string)) !== undefined,
        redis: opened.redis,
        close: async () => {
          await app.close();
          await opened.close();
        },
      };
    },
  };
}

const COOKIE_SESSION: Source = {
  name: "cookie-session",
  requirements: [],
  cookies: ["session", "session.sig"],
  async open() {
    const app = await served(cookieSessionApp());
    return { app, fallback: new CookieSessionReader({ keys: COOKIE_SESSION_KEYS }), reads: () => 0, holds: async () => false, close: () => app.close() };
  },
};

/** Where users go. */
interface Target {
  name: string;
  requirements: Requirement[];
  open(redis: RedisServer | undefined): Promise<{ store: SessionStore; close(): Promise<void> }>;
}

const TO_COOKIE_STORE: Target = {
  name: "CookieStore",
  requirements: [],
  open: async () => ({ store: new CookieStore({ secret: SECRET }), close: async () => undefined }),
};

const TO_REDIS_STORE: Target = {
  name: "RedisStore",
  requirements: [REDIS],
  async open(existing) {
    const redis = existing ?? (await startRedis());
    const client = createClient({ url: redis.url });
    client.on("error", () => undefined);
    await client.connect();
    return {
      store: new RedisStore({ client, secret: SECRET, prefix: "sessionbox:" }),
      close: async () => {
        await client.close();
        if (existing === undefined) await redis.stop();
      },
    };
  },
};

const SOURCES = [fromExpressSession(CONNECT_REDIS), fromExpressSession(CONNECT_PG_SIMPLE), COOKIE_SESSION];

for (const source of SOURCES) {
  for (const target of [TO_COOKIE_STORE, TO_REDIS_STORE]) {
    describeNeeding([...source.requirements, ...target.requirements], `moving from ${source.name} to ${target.name} with { fallback }`, () => {
      let old: Awaited<ReturnType<Source["open"]>>;
      let next: Awaited<ReturnType<Target["open"]>>;
      let app: Served;

      beforeAll(async () => {
        old = await source.open();
        next = await target.open(old.redis);
        app = await served(sessionboxApp(next.store, { fallback: old.fallback }));
      });

      afterAll(async () => {
        await app?.close();
        await next?.close();
        await old?.close();
      });

      /** A browser signed in under the old app, with something in its cart. */
      async function signedInBefore(user: string): Promise<Browser> {
        const browser = new Browser();
        await browser.post(old.app, "/login", { user });
        await browser.post(old.app, "/set", { cart: ["apple"] });
        expect(source.cookies.every((name) => browser.jar.get(name) !== undefined)).toBe(true);
        return browser;
      }

      it("keeps a user who signed in under the old app signed in, with their data", async () => {
        const browser = await signedInBefore("ann");
        const res = await browser.get(app, "/me");
        expect(res.status).toBe(200);
        expect(res.body).toEqual({ user: "ann", cart: ["apple"] });
      });

      it("removes the old cookie from the browser and the old record from the server in that first response", async () => {
        const browser = await signedInBefore("bob");
        const before = { ...Object.fromEntries(browser.jar.cookies) };
        expect(await old.holds(browser)).toBe(source.cookies[0] === "connect.sid");
        await browser.get(app, "/me");
        for (const name of source.cookies) expect(browser.jar.get(name)).not.toBe(before[name]);
        expect(browser.jar.names().filter((name) => name.endsWith(".sig") || name === "connect.sid")).toEqual([]);
        expect(await old.holds(browser)).toBe(false);
      });

      it("serves the moved session from the new store afterwards, without reading the old one", async () => {
        const browser = await signedInBefore("cy");
        await browser.post(app, "/count");
        const reads = old.reads();
        expect((await browser.post(app, "/count")).body).toEqual({ user: "cy", cart: ["apple"], views: 2 });
        expect((await browser.get(app, "/me")).body).toEqual({ user: "cy", cart: ["apple"], views: 2 });
        expect(old.reads()).toBe(reads);
      });

      it("reads nothing from the old store for a browser without its cookie", async () => {
        const reads = old.reads();
        const browser = new Browser();
        expect((await browser.get(app, "/me")).body).toEqual({});
        await browser.post(app, "/login", { user: "dee" });
        expect((await browser.get(app, "/me")).body).toEqual({ user: "dee" });
        expect(old.reads()).toBe(reads);
      });

      it("signs out, old record included, a user who signs out on the first request after the switch", async () => {
        const browser = await signedInBefore("eve");
        expect((await browser.post(app, "/logout")).status).toBe(200);
        expect(browser.jar.names().filter((name) => source.cookies.includes(name) && name !== "session")).toEqual([]);
        expect(await old.holds(browser)).toBe(false);
        expect((await browser.get(app, "/me")).body).toEqual({});
      });
    });
  }
}
