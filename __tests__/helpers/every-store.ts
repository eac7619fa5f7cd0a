/**
 * The same scenario on every store of this package and on express-session (with its own
 * MemoryStore) as the control: `forEachStore` gives each suite the middleware to mount. The
 * RedisStore runs against a redis-server the harness starts; without one it is skipped with a
 * notice (a failure under CI=true, as in every Redis suite).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { CookieStore, MemoryStore, RedisStore, sessions, type SessionsOptions } from "../../lib";
import { REDIS, type RedisServer, startRedis } from "./redis";
import { describeNeeding } from "./servers";

// express-session is the control only: required untyped, since @types/express-session would
// declare req.session (and sessionID, sessionStore) for the whole test compilation.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const session = require("express-session") as ((options: object) => unknown) & { MemoryStore: new () => object };

export const SECRET = "every-store-secret-0123456789abcdef";

export type Middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

export interface StoreUnderTest {
  readonly name: string;
  /** express-session, the behaviour the others are compared with. */
  readonly control: boolean;
  /** Keeps the session in the browser's cookie: changes outside a response cannot be saved. */
  readonly inCookie: boolean;
  /** A new middleware over a fresh store. */
  middleware(options?: SessionsOptions): Middleware;
  /** The name of the session cookie. */
  readonly cookieName: string;
}

export const CONTROL: StoreUnderTest = {
  name: "express-session (control)",
  control: true,
  inCookie: false,
  cookieName: "connect.sid",
  middleware: () => session({ secret: SECRET, resave: false, saveUninitialized: false, store: new session.MemoryStore() }) as unknown as Middleware,
};

/**
 * Runs `suite` once per store: the control, CookieStore, MemoryStore and RedisStore. Stores
 * created by a suite are closed after it.
 */
export function forEachStore(suite: (store: StoreUnderTest) => void): void {
  let redis: RedisServer | undefined;
  const opened: RedisStore[] = [];
  const stores: StoreUnderTest[] = [
    CONTROL,
    { name: "CookieStore", control: false, inCookie: true, cookieName: "session", middleware: (o) => sessions(new CookieStore({ secret: SECRET }), o) },
    { name: "MemoryStore", control: false, inCookie: false, cookieName: "session", middleware: (o) => sessions(new MemoryStore({ secret: SECRET }), o) },
    {
      name: "RedisStore",
      control: false,
      inCookie: false,
      cookieName: "session",
      middleware: (o) => {
        if (redis === undefined) throw new Error("redis-server did not start");
        const store = new RedisStore({ url: redis.url, secret: SECRET });
        opened.push(store);
        return sessions(store, o);
      },
    },
  ];
  for (const store of stores) {
    if (store.name === "RedisStore" && !REDIS.available) {
      describeNeeding([REDIS], store.name, () => suite(store));
      continue;
    }
    describe(store.name, () => {
      if (store.name === "RedisStore") {
        beforeAll(async () => {
          redis = await startRedis();
        });
        afterAll(async () => {
          await Promise.all(opened.splice(0).map((s) => s.close()));
          await redis?.stop();
        });
      }
      suite(store);
    });
  }
}
