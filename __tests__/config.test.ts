import request from "supertest";
import { Cookie, CookieStore, MemoryStore, Session, SessionConfigError, sessions, type SessionContext, type SessionsConfig, type SessionsOptions, type SessionStore } from "../lib";
import { resolveStore } from "../lib/config";
import { Jar, SECRET, sessionApp, useServers } from "./helpers/session-cookies";

const start = useServers();

describe("sessions(config): the store from plain configuration", () => {
  it('{ store: "cookie", secret } gives a CookieStore with those options', () => {
    const middleware = sessions({ store: "cookie", secret: SECRET, maxAge: 60_000, encrypt: false, name: "sid" });
    expect(middleware.store).toBeInstanceOf(CookieStore);
    expect(middleware.store).toMatchObject({ maxAge: 60_000, encrypt: false });
  });

  it('{ store: "memory" } gives a MemoryStore (no secret needed)', () => {
    const middleware = sessions({ store: "memory", max: 10 });
    expect(middleware.store).toBeInstanceOf(MemoryStore);
  });

  it('{ store: "memory", touchAfter } sets its touchAfter (from an environment variable too), 0 included', () => {
    expect((sessions({ store: "memory", touchAfter: 5_000 }).store as MemoryStore).touchAfter).toBe(5_000);
    expect((sessions({ store: "memory", maxAge: "60000", touchAfter: "0" } as unknown as SessionsConfig).store as MemoryStore).touchAfter).toBe(0);
    expect((sessions({ store: "memory", maxAge: 60_000 }).store as MemoryStore).touchAfter).toBe(6_000);
  });

  it("configuration from environment variables (all strings) is accepted", () => {
    const env = { SESSION_STORE: "cookie", SESSION_SECRET: SECRET, SESSION_MAX_AGE: "3600000", SESSION_ENCRYPT: "false", SESSION_MAX_SIZE: "8192" };
    const middleware = sessions({
      store: env.SESSION_STORE,
      secret: env.SESSION_SECRET,
      maxAge: env.SESSION_MAX_AGE,
      encrypt: env.SESSION_ENCRYPT,
      maxSize: env.SESSION_MAX_SIZE,
    } as unknown as SessionsConfig);
    expect(middleware.store).toBeInstanceOf(CookieStore);
    expect(middleware.store).toMatchObject({ maxAge: 3_600_000, encrypt: false, maxSize: 8192 });
  });

  it.each([["cookie"], ["memory"]])('a store built from { store: "%s" } serves sessions', async (name) => {
    const server = await start(sessionApp(resolveStore({ store: name, secret: SECRET } as SessionsConfig)));
    const first = await request(server).post("/write").send({ user: "ann" });
    const next = await request(server).get("/read").set("Cookie", new Jar().take(first).header());
    expect(next.body).toEqual({ id: first.body.id, user: "ann" });
  });
});

describe("sessions(store): a store instance", () => {
  it("is used as it is", () => {
    const store = new MemoryStore();
    expect(sessions(store).store).toBe(store);
    const cookieStore = new CookieStore({ secret: SECRET });
    expect(sessions(cookieStore).store).toBe(cookieStore);
  });

  it("a user's own class implementing SessionStore works", async () => {
    /** Keeps one session per cookie value, in a Map: the smallest possible store. */
    class MapStore implements SessionStore {
      readonly data = new Map<string, Record<string, unknown>>();
      load(ctx: SessionContext): Session {
        const saved = this.data.get(ctx.cookies.mine ?? "");
        return saved ? new Session({ ...saved, id: ctx.cookies.mine }) : Session.empty();
      }
      dump(session: Session): Cookie {
        this.data.set(session.id, { ...session });
        return new Cookie("mine", session.id, { httpOnly: true, path: "/" });
      }
    }
    const store = new MapStore();
    const middleware = sessions(store);
    expect(middleware.store).toBe(store);
    const server = await start(sessionApp(store));
    const first = await request(server).post("/write").send({ user: "ann" });
    expect(first.headers["set-cookie"]).toEqual([`mine=${first.body.id}; Path=/; HttpOnly`]);
    const next = await request(server).get("/read").set("Cookie", `mine=${first.body.id}`);
    expect(next.body).toEqual({ id: first.body.id, user: "ann" });
    expect(store.data.get(first.body.id)).toEqual({ id: first.body.id, user: "ann" });
  });

  it("a plain object with load and dump works", () => {
    const store = { load: () => Session.empty(), dump: () => [] };
    expect(sessions(store).store).toBe(store);
  });
});

describe("wrong configuration fails at sessions(...), with a message that says how to fix it", () => {
  it.each<[string, unknown, RegExp]>([
    ["an unknown store name", { store: "mongo" }, /^sessions\(\): unknown store "mongo"; set store to "cookie", "memory".*, or pass a store instance \(an object with load and dump methods\)$/],
    ["a missing store name", { secret: SECRET }, /^sessions\(\): unknown store undefined; set store to/],
    ["a store name in the wrong case", { store: "Cookie", secret: SECRET }, /unknown store "Cookie"/],
    ["a missing secret", { store: "cookie" }, /^CookieStore needs a secret: pass \{ secret: process\.env\.SESSION_SECRET \} \(at least 32 characters; generate one with `node -e/],
    ["an empty secret (unset environment variable)", { store: "cookie", secret: "" }, /^CookieStore needs a secret/],
    ["a short secret", { store: "cookie", secret: "too-short" }, /^CookieStore: secret must be a string of at least 32 characters/],
    ["a bad duration", { store: "cookie", secret: SECRET, maxAge: "1h" }, /^CookieStore: maxAge must be a positive number of milliseconds, got "1h"$/],
    ["an empty duration", { store: "memory", absoluteTimeout: "" }, /^MemoryStore: absoluteTimeout must be a positive number of milliseconds \(or null to turn it off\), got ""$/],
    ["an infinite duration", { store: "memory", maxAge: Infinity }, /maxAge must be a positive number of milliseconds, got null/],
    ["an unknown option", { store: "cookie", secret: SECRET, secure: true }, /^CookieStore: unknown option "secure"; the options are secret, encrypt, name, cookie, maxAge, absoluteTimeout, maxSize, touchAfter$/],
    ["an unknown memory option", { store: "memory", maxItems: 5 }, /^MemoryStore: unknown option "maxItems"; the options are secret, max, maxBytes, name, cookie, maxAge, absoluteTimeout, touchAfter$/],
    ["a memory touchAfter as long as maxAge", { store: "memory", maxAge: "60000", touchAfter: "60000" }, /^MemoryStore: touchAfter \(60000 ms\) must be shorter than maxAge \(60000 ms\), or an active but unchanged session would expire; lower touchAfter or leave it out$/],
    ["a negative memory touchAfter", { store: "memory", touchAfter: -5 }, /^MemoryStore: touchAfter must be a positive number of milliseconds, got -5$/],
    ["a memory touchAfter that is not a number", { store: "memory", touchAfter: "1m" }, /^MemoryStore: touchAfter must be a positive number of milliseconds, got "1m"$/],
    ["a middleware option among the store's", { store: "memory", preload: false }, /pass it as the second argument, sessions\(store, \{ preload \}\)/],
    ["a bad cookie attribute", { store: "memory", cookie: { sameSite: "sometimes" } }, /^MemoryStore: cookie\.sameSite "sometimes" is not valid/],
    ["null", null, /^sessions\(\) needs a store or a configuration object, got null: use sessions\(new CookieStore\(\{ secret \}\)\) or sessions\(\{ store: "cookie", secret \}\)$/],
    ["nothing", undefined, /needs a store or a configuration object, got undefined/],
    ["a string", "cookie", /needs a store or a configuration object, got string/],
    ["a store class instead of an instance", CookieStore, /needs a store or a configuration object, got function: use sessions\(new CookieStore/],
  ])("%s", (_, config, message) => {
    const build = () => sessions(config as SessionsConfig);
    expect(build).toThrow(SessionConfigError);
    expect(build).toThrow(message);
  });
});

describe("wrong middleware options fail at sessions(store, options), not at the first request", () => {
  const store = () => new MemoryStore();
  it.each<[string, unknown, RegExp]>([
    ["an unknown option (a typo)", { preloadd: false }, /^sessions\(\) options: unknown option "preloadd"; the options are preload, onLostChange, onSaveError, fallback$/],
    ["a preload that is not a boolean", { preload: "no" }, /^sessions\(\) options: preload must be true or false, got "no"$/],
    ["an onLostChange that is not a function", { onLostChange: 5 }, /^sessions\(\) options: onLostChange must be a function \(err, req\) => void, got number$/],
    ["options that are not an object", "preload", /^sessions\(\) options must be an object such as \{ preload: false \}, got string$/],
    ["null options", null, /^sessions\(\) options must be an object such as \{ preload: false \}, got null$/],
  ])("%s", (_, options, message) => {
    const build = () => sessions(store(), options as SessionsOptions);
    expect(build).toThrow(SessionConfigError);
    expect(build).toThrow(message);
  });

  it("takes preload as a boolean only (an environment string is refused with a message: the middleware options are code)", () => {
    expect(() => sessions(new MemoryStore(), { preload: "false" } as unknown as SessionsOptions)).toThrow(/^sessions\(\) options: preload must be true or false, got "false"$/);
  });
});
