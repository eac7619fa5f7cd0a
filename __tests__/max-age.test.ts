/**
 * The cookie's `Max-Age` and the server's expiry agree to the second (issue 19).
 *
 * `Max-Age` counts whole seconds. Rounded down alone, a browser drops the cookie up to a second
 * before the server would refuse it (in the last second before `absoluteTimeout`, at once:
 * `Max-Age=0`); rounded up, it keeps a cookie the server refuses. So every store ends a session
 * when its cookie ends: at the time it was issued plus the whole seconds it carried. A cookie
 * that would carry no whole second expires the session.
 */
import express from "express";
import request from "supertest";
import { CookieStore, MemoryStore, RedisStore, sessions, type SessionStore } from "../lib";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { type Raw, rawClient } from "./helpers/redis-app";
import { cookiesByName, fakeClock, Jar, SECRET, sessionApp, useServers } from "./helpers/session-cookies";

const start = useServers();
const DEADLINE = { deadline: 10_000 };
const MINUTE = 60_000;

afterEach(() => jest.restoreAllMocks());

/** Signs in on a fresh app over `store`; returns the server, the session's id, its cookies and the cookie's Max-Age. */
async function login(store: SessionStore) {
  const server = await start(sessionApp(store));
  const res = await request(server).post("/write").send({ user: "ann" }).timeout(DEADLINE);
  expect(res.status).toBe(200);
  return { server, id: res.body.id as string, jar: new Jar().take(res), maxAge: cookiesByName(res).session.maxAge };
}

async function read(server: Parameters<typeof request>[0], jar: Jar) {
  const res = await request(server).get("/read").set("Cookie", jar.header()).timeout(DEADLINE);
  expect(res.status).toBe(200);
  return res;
}

describe.each<[string, (options: { maxAge: number; absoluteTimeout: number; touchAfter?: number }) => SessionStore]>([
  ["CookieStore (encrypt: true)", (options) => new CookieStore({ secret: SECRET, ...options })],
  ["CookieStore (encrypt: false)", (options) => new CookieStore({ secret: SECRET, encrypt: false, ...options })],
  ["MemoryStore", (options) => new MemoryStore(options)],
])("%s", (_label, makeStore) => {
  it("a cookie issued 10.5 s before absoluteTimeout says Max-Age=10, and the server ends the session when it ends", async () => {
    const clock = fakeClock();
    const { server, id, jar, maxAge } = await login(makeStore({ maxAge: MINUTE, absoluteTimeout: 10_500, touchAfter: 30_000 }));
    expect(maxAge).toBe(10);
    clock.advance(10_000); // the browser still holds the cookie
    expect((await read(server, jar)).body).toEqual({ id, user: "ann" });
    clock.advance(1); // the browser has dropped it: the server refuses it too
    const after = await read(server, jar);
    expect(after.body).toEqual({ id: expect.any(String) });
    expect(after.body.id).not.toBe(id);
  });

  it("req.session.cookie.maxAge counts down to the end of the cookie the browser holds", async () => {
    const clock = fakeClock();
    const store = makeStore({ maxAge: MINUTE, absoluteTimeout: 10_500, touchAfter: 30_000 });
    const app = express();
    app.use(sessions(store));
    app.get("/left", (req, res) => {
      res.json(req.session.cookie.maxAge);
    });
    app.use(sessionApp(store));
    const server = await start(app);
    const res = await request(server).post("/write").send({ user: "ann" }).timeout(DEADLINE);
    clock.advance(1_000);
    const left = await request(server).get("/left").set("Cookie", new Jar().take(res).header()).timeout(DEADLINE);
    expect(left.body).toBe(9_000);
  });

  it("a lifetime the session chose (req.session.cookie.maxAge) that is not whole seconds ends with its whole-second cookie", async () => {
    const clock = fakeClock();
    const store = makeStore({ maxAge: MINUTE, absoluteTimeout: 10 * MINUTE, touchAfter: 30_000 });
    const app = express();
    app.use(sessions(store));
    app.post("/remember", (req, res) => {
      req.session.user = "ann";
      req.session.cookie.maxAge = 90_500;
      res.send("ok");
    });
    app.use(sessionApp(store));
    const server = await start(app);
    const res = await request(server).post("/remember").timeout(DEADLINE);
    expect(cookiesByName(res).session.maxAge).toBe(90);
    clock.advance(90_001); // the browser dropped the cookie a millisecond ago
    expect((await read(server, new Jar().take(res))).body.user).toBeUndefined();
  });

  it("an idle timeout that is not whole seconds ends the session with its whole-second cookie", async () => {
    const clock = fakeClock();
    const { server, id, jar, maxAge } = await login(makeStore({ maxAge: 1_500, absoluteTimeout: MINUTE, touchAfter: 1_400 }));
    expect(maxAge).toBe(1);
    clock.advance(1_000);
    expect((await read(server, jar)).body).toEqual({ id, user: "ann" });
    clock.advance(1);
    expect((await read(server, jar)).body.id).not.toBe(id);
  });

  it("in the last second before absoluteTimeout the cookie is not re-issued (it would carry no whole second): the browser keeps its own, which the server takes until it ends", async () => {
    const clock = fakeClock();
    const { server, id, jar } = await login(makeStore({ maxAge: MINUTE, absoluteTimeout: 10_500 }));
    clock.advance(9_700); // past touchAfter (6 s), 800 ms before absoluteTimeout
    const res = await read(server, jar);
    expect(res.body).toEqual({ id, user: "ann" });
    expect(cookiesByName(res).session).toBeUndefined();
    clock.advance(300);
    expect((await read(server, jar)).body).toEqual({ id, user: "ann" });
    clock.advance(1);
    expect((await read(server, jar)).body.id).not.toBe(id);
  });

  it("with a maxAge under a second a cookie would carry no whole second: nothing is kept and the cookie is expired", async () => {
    const store = makeStore({ maxAge: 900, absoluteTimeout: MINUTE });
    const server = await start(sessionApp(store));
    const res = await request(server).post("/write").send({ user: "ann" }).timeout(DEADLINE);
    expect(res.status).toBe(200);
    expect(cookiesByName(res).session).toMatchObject({ value: "", maxAge: 0 });
    if (store instanceof MemoryStore) expect(store.size).toBe(0);
  });
});

describe.each([true, false])("CookieStore (encrypt: %p), a change in the last second before absoluteTimeout", (encrypt) => {
  it("cannot be sealed into a cookie of whole seconds: the cookies are expired and the session ends", async () => {
    const clock = fakeClock();
    const { server, id, jar } = await login(new CookieStore({ secret: SECRET, encrypt, maxAge: MINUTE, absoluteTimeout: 10_500 }));
    clock.advance(9_700);
    const res = await request(server).post("/write").set("Cookie", jar.header()).send({ cart: [7] }).timeout(DEADLINE);
    expect(res.status).toBe(200);
    expect(cookiesByName(res).session).toMatchObject({ value: "", maxAge: 0 });
    expect(jar.take(res).names()).toEqual([]);
    expect((await read(server, jar)).body.id).not.toBe(id);
  });
});

describe("MemoryStore, a change in the last second before absoluteTimeout", () => {
  it("is saved without a new cookie, and ends with the cookie the browser holds", async () => {
    const clock = fakeClock();
    const { server, id, jar } = await login(new MemoryStore({ maxAge: MINUTE, absoluteTimeout: 10_500 }));
    clock.advance(9_700);
    const res = await request(server).post("/write").set("Cookie", jar.header()).send({ cart: [7] }).timeout(DEADLINE);
    expect([res.status, cookiesByName(res).session]).toEqual([200, undefined]);
    clock.advance(300);
    expect((await read(server, jar)).body).toEqual({ id, user: "ann", cart: [7] });
    clock.advance(1);
    expect((await read(server, jar)).body.id).not.toBe(id);
  });
});

describeRedis("RedisStore", () => {
  let server: RedisServer;
  let raw: Raw;
  const stores: RedisStore[] = [];

  beforeAll(async () => {
    server = await startRedis();
    raw = await rawClient(server.url);
  });

  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await raw?.close();
    await server?.stop();
  });

  function makeStore(options: { maxAge: number; absoluteTimeout: number; touchAfter?: number }): RedisStore {
    const store = new RedisStore({ url: server.url, secret: SECRET, ...options });
    stores.push(store);
    return store;
  }

  it("a cookie issued 10.5 s before absoluteTimeout says Max-Age=10, and the key's TTL is those 10 s", async () => {
    const { id, maxAge } = await login(makeStore({ maxAge: MINUTE, absoluteTimeout: 10_500 }));
    expect(maxAge).toBe(10);
    const ttl = await raw.pTTL(`sess:${id}`);
    expect(ttl).toBeGreaterThan(9_000);
    expect(ttl).toBeLessThanOrEqual(10_000);
  });

  it("an idle timeout that is not whole seconds gives the key its whole-second cookie's TTL", async () => {
    const { id, maxAge } = await login(makeStore({ maxAge: 1_500, absoluteTimeout: MINUTE }));
    expect(maxAge).toBe(1);
    expect(await raw.pTTL(`sess:${id}`)).toBeLessThanOrEqual(1_000);
  });

  it("a write within touchAfter leaves the key to expire with the cookie the browser holds", async () => {
    const clock = fakeClock(Date.now());
    const { server, id, jar } = await login(makeStore({ maxAge: MINUTE, absoluteTimeout: 10 * MINUTE }));
    clock.advance(5_000); // within touchAfter (6 s): no new cookie, so the browser's ends 55 s from now
    const res = await request(server).post("/write").set("Cookie", jar.header()).send({ cart: [7] }).timeout(DEADLINE);
    expect([res.status, cookiesByName(res).session]).toEqual([200, undefined]);
    const ttl = await raw.pTTL(`sess:${id}`);
    expect(ttl).toBeGreaterThan(50_000);
    expect(ttl).toBeLessThanOrEqual(55_000);
    expect(await raw.hGetAll(`sess:${id}`)).toMatchObject({ cart: "[7]" });
  });

  it("in the last second before absoluteTimeout the cookie is not re-issued, and a change is saved to expire with the browser's cookie", async () => {
    const clock = fakeClock(Date.now());
    const { server, id, jar } = await login(makeStore({ maxAge: MINUTE, absoluteTimeout: 10_500 }));
    clock.advance(9_700); // past touchAfter (6 s), 800 ms before absoluteTimeout
    const res = await read(server, jar);
    expect(res.body).toEqual({ id, user: "ann" });
    expect(cookiesByName(res).session).toBeUndefined();
    const write = await request(server).post("/write").set("Cookie", jar.header()).send({ cart: [7] }).timeout(DEADLINE);
    expect([write.status, cookiesByName(write).session]).toEqual([200, undefined]);
    expect(await raw.hGetAll(`sess:${id}`)).toMatchObject({ cart: "[7]" });
    expect(await raw.pTTL(`sess:${id}`)).toBeLessThanOrEqual(300);
  });

  it("with a maxAge under a second a cookie would carry no whole second: nothing is kept and the cookie is expired", async () => {
    const server = await start(sessionApp(makeStore({ maxAge: 900, absoluteTimeout: MINUTE })));
    const res = await request(server).post("/write").send({ user: "ann" }).timeout(DEADLINE);
    expect(res.status).toBe(200);
    expect(cookiesByName(res).session).toMatchObject({ value: "", maxAge: 0 });
    expect(await raw.exists(`sess:${res.body.id}`)).toBe(0);
  });
});
