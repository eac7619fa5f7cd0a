import { sign } from "cookie-signature";
import express from "express";
import request from "supertest";
import { v4 as realV4 } from "uuid";
import { MemoryStore, SessionConfigError, sessions, type MemoryStoreOptions } from "../lib";
import { cookiesByName, fakeClock, Jar, SECRET, sessionApp, setCookies, useServers } from "./helpers/session-cookies";

// Lets one test give two stores the same session id; every other call is the real v4.
jest.mock("uuid", () => {
  const actual = jest.requireActual("uuid");
  return { ...actual, v4: jest.fn(actual.v4) };
});

const start = useServers();
const SECOND = 1000;
const MINUTE = 60 * SECOND;

afterEach(() => jest.restoreAllMocks());

async function login(store: MemoryStore, data: object = { user: "ann" }) {
  const server = await start(sessionApp(store));
  const res = await request(server).post("/write").send(data);
  expect(res.status).toBe(200);
  return { server, id: res.body.id as string, jar: new Jar().take(res), res };
}

describe("MemoryStore", () => {
  it("keeps the session in memory; the cookie carries only the signed id", async () => {
    const store = new MemoryStore({ secret: SECRET });
    const { server, id, jar, res } = await login(store, { user: "ann", email: "ann@example.com" });
    expect(jar.get("session")).toBe(sign(id, SECRET));
    expect(cookiesByName(res).session).toMatchObject({ httpOnly: true, path: "/", sameSite: "lax", maxAge: 86_400 });
    expect(store.size).toBe(1);
    const next = await request(server).get("/read").set("Cookie", jar.header());
    expect(next.body).toEqual({ id, user: "ann", email: "ann@example.com" });
  });

  it("a new session that stays empty is not stored", async () => {
    const store = new MemoryStore();
    const server = await start(sessionApp(store));
    const res = await request(server).get("/read");
    expect(setCookies(res)).toEqual([]);
    expect(store.size).toBe(0);
  });

  describe("TTL", () => {
    it("a session idle for longer than maxAge is gone", async () => {
      const clock = fakeClock();
      const store = new MemoryStore({ maxAge: MINUTE });
      const { server, id, jar } = await login(store);
      clock.advance(MINUTE - 1);
      const within = await request(server).get("/read").set("Cookie", jar.header());
      expect(within.body).toEqual({ id, user: "ann" });
      clock.advance(MINUTE); // exactly maxAge after the last request: still valid
      const edge = await request(server).get("/read").set("Cookie", jar.header());
      expect(edge.body.id).toBe(id);
      clock.advance(MINUTE + 1);
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.status).toBe(200);
      expect(after.body).toEqual({ id: expect.any(String) });
      expect(after.body.id).not.toBe(id);
      expect(store.size).toBe(0);
    });

    it("each request slides the idle timeout", async () => {
      const clock = fakeClock();
      const { server, id, jar } = await login(new MemoryStore({ maxAge: MINUTE, absoluteTimeout: null }));
      for (let i = 0; i < 5; i++) {
        clock.advance(50 * SECOND);
        const res = await request(server).get("/read").set("Cookie", jar.header());
        expect(res.body.id).toBe(id);
        expect(cookiesByName(res).session.maxAge).toBe(60);
      }
    });

    it("absoluteTimeout ends an active session and frees its entry", async () => {
      const clock = fakeClock();
      const store = new MemoryStore({ maxAge: MINUTE, absoluteTimeout: 150 * SECOND });
      const { server, id, jar } = await login(store);
      clock.advance(50 * SECOND);
      await request(server).get("/read").set("Cookie", jar.header());
      clock.advance(50 * SECOND);
      const at100 = await request(server).get("/read").set("Cookie", jar.header());
      expect(at100.body.id).toBe(id);
      expect(cookiesByName(at100).session.maxAge).toBe(50); // never past the absolute end
      clock.advance(50 * SECOND + 1);
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.body).toEqual({ id: expect.any(String) });
      expect(after.body.id).not.toBe(id);
      expect(store.size).toBe(0);
    });
  });

  describe("touchAfter", () => {
    it("an unchanged session read within touchAfter gets no Set-Cookie; once it has passed, the cookie is re-issued with a full Max-Age", async () => {
      const clock = fakeClock();
      const { server, id, jar } = await login(new MemoryStore({ maxAge: MINUTE, touchAfter: 10 * SECOND, absoluteTimeout: null }));
      clock.advance(10 * SECOND - 1);
      const within = await request(server).get("/read").set("Cookie", jar.header());
      expect(within.body).toEqual({ id, user: "ann" });
      expect(setCookies(within)).toEqual([]);
      clock.advance(1);
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.body).toEqual({ id, user: "ann" });
      expect(cookiesByName(after).session).toMatchObject({ value: jar.get("session"), maxAge: 60 });
      // Touched just now: the next read is within touchAfter again.
      expect(setCookies(await request(server).get("/read").set("Cookie", jar.header()))).toEqual([]);
    });

    it("reads within touchAfter do not slide the expiry: a session not touched for maxAge expires", async () => {
      const clock = fakeClock();
      const store = new MemoryStore({ maxAge: 1000, touchAfter: 400 });
      const { server, id, jar } = await login(store);
      clock.advance(300);
      expect((await request(server).get("/read").set("Cookie", jar.header())).body.id).toBe(id); // within touchAfter
      clock.advance(701); // 1001 ms after the login, its last touch
      const res = await request(server).get("/read").set("Cookie", jar.header());
      expect(res.body).toEqual({ id: expect.any(String) });
      expect(res.body.id).not.toBe(id);
      expect(store.size).toBe(0);
    });

    it("a session read every 100 ms stays alive past maxAge: it is touched every touchAfter", async () => {
      const clock = fakeClock();
      const { server, id, jar } = await login(new MemoryStore({ maxAge: 1000, touchAfter: 400 }));
      const touchedAt: number[] = [];
      for (let at = 100; at <= 1500; at += 100) {
        clock.advance(100);
        const res = await request(server).get("/read").set("Cookie", jar.header());
        expect(res.body).toEqual({ id, user: "ann" });
        if (setCookies(res).length > 0) touchedAt.push(at);
      }
      expect(touchedAt).toEqual([400, 800, 1200]);
    });

    it("a change within touchAfter is saved without a Set-Cookie, and the next request sees it", async () => {
      const clock = fakeClock();
      const { server, id, jar } = await login(new MemoryStore({ maxAge: MINUTE, touchAfter: 10 * SECOND }));
      clock.advance(SECOND);
      const write = await request(server).post("/write").set("Cookie", jar.header()).send({ cart: [7] });
      expect(write.body).toEqual({ id, user: "ann", cart: [7] });
      expect(setCookies(write)).toEqual([]);
      const read = await request(server).get("/read").set("Cookie", jar.header());
      expect(read.body).toEqual({ id, user: "ann", cart: [7] });
    });

    it("a change after touchAfter is saved and re-issues the cookie", async () => {
      const clock = fakeClock();
      const { server, id, jar } = await login(new MemoryStore({ maxAge: MINUTE, touchAfter: 10 * SECOND, absoluteTimeout: null }));
      clock.advance(10 * SECOND);
      const write = await request(server).post("/write").set("Cookie", jar.header()).send({ cart: [7] });
      expect(cookiesByName(write).session).toMatchObject({ value: jar.get("session"), maxAge: 60 });
      expect((await request(server).get("/read").set("Cookie", jar.header())).body).toEqual({ id, user: "ann", cart: [7] });
    });

    it("a touch slides the expiry: maxAge counts from the last touch", async () => {
      const clock = fakeClock();
      const store = new MemoryStore({ maxAge: 1000, touchAfter: 400 });
      const { server, id, jar } = await login(store);
      clock.advance(500);
      expect(setCookies(await request(server).get("/read").set("Cookie", jar.header()))).toHaveLength(1); // touched at 500
      clock.advance(1000); // 1000 ms after that touch: still valid
      expect((await request(server).get("/read").set("Cookie", jar.header())).body).toEqual({ id, user: "ann" });
    });

    it("touchAfter: 0 re-issues the cookie on every read", async () => {
      const { server, jar } = await login(new MemoryStore({ touchAfter: 0 }));
      for (let i = 0; i < 3; i++) {
        const res = await request(server).get("/read").set("Cookie", jar.header());
        expect(cookiesByName(res).session).toMatchObject({ value: jar.get("session"), maxAge: 86_400 });
      }
    });

    it("regenerate() and destroy() within touchAfter still set their cookies", async () => {
      const store = new MemoryStore({ secret: SECRET });
      const { server, id, jar } = await login(store);
      const regenerated = await request(server).post("/regenerate").set("Cookie", jar.header());
      expect(regenerated.body.id).not.toBe(id);
      expect(cookiesByName(regenerated).session).toMatchObject({ value: sign(regenerated.body.id, SECRET), maxAge: 86_400 });
      jar.take(regenerated);
      const destroyed = await request(server).post("/destroy").set("Cookie", jar.header());
      expect(cookiesByName(destroyed).session).toMatchObject({ value: "", maxAge: 0 });
    });
  });

  describe("max", () => {
    it("evicts the least recently used session beyond max", async () => {
      const store = new MemoryStore({ max: 2 });
      const a = await login(store, { who: "a" });
      const b = await login(store, { who: "b" });
      // Use a again: b is now the least recently used.
      expect((await request(a.server).get("/read").set("Cookie", a.jar.header())).body.who).toBe("a");
      await login(store, { who: "c" });
      expect(store.size).toBe(2);
      expect((await request(a.server).get("/read").set("Cookie", a.jar.header())).body.who).toBe("a");
      const evicted = await request(b.server).get("/read").set("Cookie", b.jar.header());
      expect(evicted.body).toEqual({ id: expect.any(String) });
      expect(evicted.body.id).not.toBe(b.id);
    });

    it("defaults to 10000 sessions and never grows past max", async () => {
      const store = new MemoryStore({ max: 50 });
      const server = await start(sessionApp(store));
      for (let i = 0; i < 120; i++) await request(server).post("/write").send({ i });
      expect(store.size).toBe(50);
    });
  });

  describe("maxBytes: a bound on memory as well as on sessions", () => {
    /** What the store counts for a session of these fields: its id, keys and JSON values, plus 200. */
    const bytesOf = (fields: Record<string, unknown>) => 36 + 200 + Object.entries(fields).reduce((sum, [key, value]) => sum + key.length + JSON.stringify(value).length, 0);

    it("a flood of new sessions, each written once, never holds more than maxBytes by the store's own count; the newest are kept", async () => {
      const store = new MemoryStore({ maxBytes: 50_000 });
      const server = await start(sessionApp(store));
      const each = bytesOf({ i: 0, blob: "x".repeat(1000) });
      let last!: request.Response;
      for (let i = 0; i < 300; i++) {
        last = await request(server).post("/write").send({ i: i % 10, blob: "x".repeat(1000) });
        expect(last.status).toBe(200);
        expect(store.bytes).toBeLessThanOrEqual(50_000);
      }
      expect(store.size).toBe(Math.floor(50_000 / each));
      expect(store.bytes).toBe(store.size * each);
      const newest = await request(server).get("/read").set("Cookie", new Jar().take(last).header());
      expect(newest.body).toEqual({ id: last.body.id, i: 9, blob: "x".repeat(1000) });
    });

    it("counts a session again when it grows within touchAfter, evicting the least recently used to stay within maxBytes", async () => {
      const store = new MemoryStore({ maxBytes: 10_000 });
      const first = await login(store, { blob: "a".repeat(1000) });
      for (let i = 0; i < 4; i++) await login(store, { blob: "b".repeat(1000) });
      expect([store.size, store.bytes]).toEqual([5, 5 * bytesOf({ blob: "b".repeat(1000) })]);
      const grown = await login(store, { blob: "c" });
      const res = await request(grown.server).post("/write").set("Cookie", grown.jar.header()).send({ blob: "c".repeat(5000) });
      expect(setCookies(res)).toEqual([]); // within touchAfter: saved without a new cookie
      expect(store.bytes).toBeLessThanOrEqual(10_000);
      expect(store.bytes).toBe(bytesOf({ blob: "c".repeat(5000) }) + (store.size - 1) * bytesOf({ blob: "b".repeat(1000) }));
      expect((await request(first.server).get("/read").set("Cookie", first.jar.header())).body.blob).toBeUndefined(); // evicted
      expect((await request(grown.server).get("/read").set("Cookie", grown.jar.header())).body.blob).toBe("c".repeat(5000));
    });

    it("refuses a session bigger than maxBytes on its own with a SessionTooLargeError, and keeps what was stored", async () => {
      const store = new MemoryStore({ maxBytes: 5_000 });
      const { server, id, jar } = await login(store, { user: "ann" });
      const before = store.bytes;
      const res = await request(server).post("/write").set("Cookie", jar.header()).send({ user: "bob", blob: "x".repeat(5_000) });
      expect(res.status).toBe(500);
      expect(JSON.parse(res.text)).toMatchObject({ code: "SESSION_TOO_LARGE", error: expect.stringMatching(/^MemoryStore cannot keep the session: it takes about 5\d{3} bytes, over maxBytes \(5000\)/) });
      expect([store.size, store.bytes]).toEqual([1, before]);
      expect((await request(server).get("/read").set("Cookie", jar.header())).body).toEqual({ id, user: "ann" });
      const fresh = await request(server).post("/write").send({ blob: "x".repeat(5_000) });
      expect(fresh.status).toBe(500);
      expect(store.size).toBe(1);
    });

    it("defaults to 32 MiB, takes a numeric string from configuration, and refuses what is not a positive whole number", () => {
      expect(new MemoryStore().maxBytes).toBe(33_554_432);
      expect((sessions({ store: "memory", maxBytes: "1000000" }).store as MemoryStore).maxBytes).toBe(1_000_000);
      for (const maxBytes of [0, 1.5, "lots"]) {
        expect(() => new MemoryStore({ maxBytes } as MemoryStoreOptions)).toThrow(/^MemoryStore: maxBytes must be a positive whole number of bytes, got /);
      }
    });
  });

  describe("only changed fields are written", () => {
    it("two overlapping requests on one session that change different keys both persist", async () => {
      const store = new MemoryStore();
      let loaded!: () => void;
      const slowLoaded = new Promise<void>((resolve) => (loaded = resolve));
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const app = express();
      app.use(sessions(store));
      app.post("/slow", async (req, res) => {
        void req.session.a; // load now, before the fast request changes the session
        loaded();
        await gate;
        req.session.a = "from slow";
        res.json({ ...req.session });
      });
      app.use(sessionApp(store));
      const server = await start(app);
      // Both requests load { a: 0, b: 0 }: writing back the whole session would put b: 0 back.
      const { id, jar } = await login(store, { a: 0, b: 0 });

      const slow = request(server).post("/slow").set("Cookie", jar.header()).then((r) => r);
      await slowLoaded;
      const fast = await request(server).post("/write").set("Cookie", jar.header()).send({ b: "from fast" });
      expect(fast.body).toEqual({ id, a: 0, b: "from fast" });
      release();
      expect((await slow).body).toEqual({ id, a: "from slow", b: 0 }); // what the slow request saw

      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.body).toEqual({ id, a: "from slow", b: "from fast" });
    });

    it("a key deleted by one request is deleted, a key set to undefined too", async () => {
      const store = new MemoryStore();
      const app = express();
      app.use(sessions(store));
      app.post("/forget", (req, res) => {
        delete req.session.a;
        req.session.b = undefined;
        res.json({ ...req.session });
      });
      app.use(sessionApp(store));
      const server = await start(app);
      const { id, jar } = await login(store, { a: 1, b: 2, c: 3 });
      await request(server).post("/forget").set("Cookie", jar.header());
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.body).toEqual({ id, c: 3 });
    });
    it("a deleted key whose name is also inherited (constructor, toString) is deleted", async () => {
      const store = new MemoryStore();
      const app = express();
      app.use(sessions(store));
      app.post("/forget", (req, res) => {
        for (const key of ["constructor", "toString"]) delete req.session[key];
        res.json({ ...req.session });
      });
      app.use(sessionApp(store));
      const server = await start(app);
      const { id, jar } = await login(store, { constructor: "kept as data", toString: "also data", c: 3 });
      expect((await request(server).get("/read").set("Cookie", jar.header())).body).toEqual({ id, constructor: "kept as data", toString: "also data", c: 3 });
      await request(server).post("/forget").set("Cookie", jar.header());
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.body).toEqual({ id, c: 3 });
    });
  });

  describe("regenerate() and destroy()", () => {
    it("regenerate() moves the data to a new id and deletes the old id", async () => {
      const store = new MemoryStore();
      const { server, id, jar } = await login(store);
      const res = await request(server).post("/regenerate").set("Cookie", jar.header());
      expect(res.body.id).not.toBe(id);
      expect(res.body.user).toBe("ann");
      expect(store.size).toBe(1);
      const oldCookie = await request(server).get("/read").set("Cookie", jar.header());
      expect(oldCookie.body).toEqual({ id: expect.any(String) });
      expect(oldCookie.body.id).not.toBe(id);
      const newCookie = await request(server).get("/read").set("Cookie", new Jar().take(res).header());
      expect(newCookie.body).toEqual({ id: res.body.id, user: "ann" });
    });

    it("destroy() deletes the entry and expires the cookie", async () => {
      const store = new MemoryStore();
      const { server, id, jar } = await login(store);
      const res = await request(server).post("/destroy").set("Cookie", jar.header());
      expect(store.size).toBe(0);
      expect(cookiesByName(res).session).toMatchObject({ value: "", maxAge: 0 });
      const replay = await request(server).get("/read").set("Cookie", jar.header());
      expect(replay.body.id).not.toBe(id);
      expect(Object.keys(replay.body)).toEqual(["id"]);
    });
  });

  describe("ids the server did not issue are never adopted", () => {
    it.each([
      ["an unsigned id", (id: string) => id],
      ["an id with a forged signature", (id: string) => `${id}.${"A".repeat(43)}`],
      ["an id signed with another secret", (id: string) => sign(id, "another-secret-that-is-long-enough-00")],
    ])("%s gives a new empty session", async (_, forge) => {
      const store = new MemoryStore({ secret: SECRET });
      const { server, id } = await login(store);
      const res = await request(server).get("/read").set("Cookie", `session=${forge(id)}`);
      expect(res.body).toEqual({ id: expect.any(String) });
      expect(res.body.id).not.toBe(id);
    });

    it("a well-formed, correctly signed but unknown id gets a NEW id", async () => {
      const store = new MemoryStore({ secret: SECRET });
      const server = await start(sessionApp(store));
      const planted = realV4();
      const res = await request(server).post("/write").set("Cookie", `session=${sign(planted, SECRET)}`).send({ user: "victim" });
      expect(res.body.id).not.toBe(planted);
      expect(cookiesByName(res).session.value).toBe(sign(res.body.id, SECRET));
      const attacker = await request(server).get("/read").set("Cookie", `session=${sign(planted, SECRET)}`);
      expect(attacker.body.user).toBeUndefined();
    });

    it("a signed value that is not a UUID v4 is never looked up", async () => {
      const store = new MemoryStore({ secret: SECRET });
      const get = jest.spyOn((store as unknown as { cache: { get: (k: string) => unknown } }).cache, "get");
      const server = await start(sessionApp(store));
      const res = await request(server).get("/read").set("Cookie", `session=${sign("../../etc/passwd", SECRET)}`);
      expect(Object.keys(res.body)).toEqual(["id"]);
      expect(get).not.toHaveBeenCalled();
    });

    it("without a secret, each store signs with its own random secret", async () => {
      const v4 = jest.requireMock("uuid").v4 as jest.Mock;
      const shared = realV4();
      v4.mockReturnValueOnce(shared);
      const a = await login(new MemoryStore(), { who: "a" });
      v4.mockReturnValueOnce(shared);
      const b = await login(new MemoryStore(), { who: "b" });
      expect(a.id).toBe(shared);
      expect(b.id).toBe(shared);
      expect(a.jar.get("session")).not.toBe(b.jar.get("session"));
      expect(a.jar.get("session")?.slice(0, shared.length + 1)).toBe(`${shared}.`);
      // Store b holds a session under that very id, and still refuses a's cookie.
      const crossed = await request(b.server).get("/read").set("Cookie", a.jar.header());
      expect(crossed.body.who).toBeUndefined();
      expect(crossed.body.id).not.toBe(shared);
    });
  });

  describe("size and close()", () => {
    it("size counts the sessions kept; close() releases them", async () => {
      const store = new MemoryStore();
      await login(store);
      await login(store);
      expect(store.size).toBe(2);
      await expect(store.close()).resolves.toBeUndefined();
      expect(store.size).toBe(0);
    });
  });

  describe("options", () => {
    it("defaults", () => {
      const store = new MemoryStore();
      expect(store.maxAge).toBe(86_400_000);
      expect(store.absoluteTimeout).toBe(7 * 86_400_000);
      expect(store.touchAfter).toBe(60_000);
      expect(store.async).toBe(false);
    });

    it("touchAfter defaults to min(60 s, maxAge / 10), and takes 0 (touch on every request)", () => {
      expect(new MemoryStore({ maxAge: MINUTE }).touchAfter).toBe(6 * SECOND);
      expect(new MemoryStore({ maxAge: 5 }).touchAfter).toBe(0);
      expect(new MemoryStore({ touchAfter: 0 }).touchAfter).toBe(0);
      expect((sessions({ store: "memory", touchAfter: "0" }).store as MemoryStore).touchAfter).toBe(0);
    });

    it("accepts numeric strings from environment variables through sessions({ store: \"memory\", ... })", async () => {
      const store = sessions({ store: "memory", max: "1", maxAge: "60000", absoluteTimeout: "120000", touchAfter: "500" }).store as MemoryStore;
      expect(store).toMatchObject({ maxAge: 60_000, absoluteTimeout: 120_000, touchAfter: 500 });
      await login(store);
      await login(store);
      expect(store.size).toBe(1);
    });

    it("accepts a fractional maxAge", async () => {
      const store = new MemoryStore({ maxAge: 1500.5 });
      await login(store);
      expect(store.size).toBe(1);
    });

    it.each<[string, unknown, RegExp]>([
      ["max 0", { max: 0 }, /MemoryStore: max must be a positive whole number of sessions, got 0/],
      ["max 1.5", { max: 1.5 }, /max must be a positive whole number of sessions, got 1\.5/],
      ["max 'lots'", { max: "lots" }, /max must be a positive whole number of sessions, got "lots"/],
      ["a short secret", { secret: "short" }, /MemoryStore: secret must be a string of at least 32 characters/],
      ["an unknown option", { ttl: 5 }, /MemoryStore: unknown option "ttl"; the options are secret, max, maxBytes, name, cookie, maxAge, absoluteTimeout, touchAfter$/],
      ["touchAfter as long as maxAge", { maxAge: 1000, touchAfter: 1000 }, /^MemoryStore: touchAfter \(1000 ms\) must be shorter than maxAge \(1000 ms\), or an active but unchanged session would expire; lower touchAfter or leave it out$/],
      ["touchAfter longer than the default maxAge", { touchAfter: 2 * 86_400_000 }, /^MemoryStore: touchAfter \(172800000 ms\) must be shorter than maxAge \(86400000 ms\)/],
      ["a negative touchAfter", { touchAfter: -1 }, /^MemoryStore: touchAfter must be a positive number of milliseconds, got -1$/],
      ["a touchAfter that is not a number", { touchAfter: "soon" }, /^MemoryStore: touchAfter must be a positive number of milliseconds, got "soon"$/],
      ["a touchAfter of NaN", { touchAfter: NaN }, /^MemoryStore: touchAfter must be a positive number of milliseconds, got null$/],
      ["a bad maxAge", { maxAge: 0 }, /MemoryStore: maxAge must be a positive number of milliseconds, got 0/],
      ["options that are not an object", 5, /MemoryStore takes an options object such as \{ secret: process\.env\.SESSION_SECRET \}, got number/],
      ["null options", null, /got null/],
      ["an array", [], /got an array/],
    ])("refuses %s", (_, options, message) => {
      const build = () => new MemoryStore(options as MemoryStoreOptions);
      expect(build).toThrow(SessionConfigError);
      expect(build).toThrow(message);
    });
  });
});
