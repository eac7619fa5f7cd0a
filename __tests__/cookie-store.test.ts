import express = require("express");
import request from "supertest";
import { sessions, CookieStore, Session, SessionConfigError, type CookieStoreOptions, type SessionContext } from "../lib";
import {
  cookiesByName,
  fakeClock,
  Jar,
  openEncrypted,
  payload,
  readSigned,
  SECRET,
  sealEncrypted,
  sealSigned,
  sessionApp,
  setCookies,
  UUID_V4,
  useServers,
} from "./helpers/session-cookies";

const start = useServers();
const SECOND = 1000;
const MINUTE = 60 * SECOND;

async function login(store: CookieStore, data: object = { user: "ann-the-admin" }) {
  const server = await start(sessionApp(store));
  const res = await request(server).post("/write").send(data);
  expect(res.status).toBe(200);
  return { server, res, jar: new Jar().take(res) };
}

afterEach(() => jest.restoreAllMocks());

describe("CookieStore", () => {
  describe("encrypt: true (default): AES-256-GCM", () => {
    it("the cookie value is base64url and does not contain the session data", async () => {
      const store = new CookieStore({ secret: SECRET });
      expect(store.encrypt).toBe(true);
      const { res, jar } = await login(store, { user: "ann-the-admin", email: "ann@example.com" });
      const value = jar.get("session") as string;
      expect(value).toMatch(/^[A-Za-z0-9_-]+$/);
      // Whole values: a random seal holds a short string such as "ann" now and then (this failed once).
      expect(value).not.toContain("ann-the-admin");
      expect(Buffer.from(value, "base64url").toString("latin1")).not.toContain("ann-the-admin");
      expect(Buffer.from(value, "base64url").toString("latin1")).not.toContain("ann@example.com");
      expect(value).not.toContain(res.body.id);
      expect(Buffer.from(value, "base64url").toString("latin1")).not.toContain(res.body.id);
    });

    it("is AES-256-GCM with a key derived from the secret and the cookie name as associated data", async () => {
      const { res, jar } = await login(new CookieStore({ secret: SECRET }));
      const plaintext = openEncrypted(jar.get("session") as string, SECRET, "session");
      const [created, touched, data] = JSON.parse(plaintext as string);
      expect(data).toEqual({ id: res.body.id, user: "ann-the-admin" });
      expect(typeof created).toBe("number");
      expect(touched).toBe(created);
      expect(openEncrypted(jar.get("session") as string, SECRET, "other")).toBeUndefined();
    });

    it("seals the same session differently every time (random IV)", () => {
      fakeClock();
      const store = new CookieStore({ secret: SECRET });
      const session = Session.empty();
      session.user = "ann";
      const ctx = { req: { headers: {}, socket: {} }, res: {}, cookies: {} } as unknown as SessionContext;
      const [first] = store.dump(session, ctx);
      const [second] = store.dump(session, ctx);
      expect(first.value).not.toBe(second.value);
      expect(openEncrypted(first.value, SECRET, "session")).toBe(openEncrypted(second.value, SECRET, "session"));
    });

    it("reads its own cookie back on the next request", async () => {
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET }));
      const next = await request(server).get("/read").set("Cookie", jar.header());
      expect(next.body).toEqual({ id: res.body.id, user: "ann-the-admin" });
    });

    it("a tampered cookie gives a new empty session", async () => {
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET }));
      const value = jar.get("session") as string;
      const bytes = Buffer.from(value, "base64url");
      bytes[20] ^= 1;
      const next = await request(server).get("/read").set("Cookie", `session=${bytes.toString("base64url")}`);
      expect(next.status).toBe(200);
      expect(next.body).toEqual({ id: expect.stringMatching(UUID_V4) });
      expect(next.body.id).not.toBe(res.body.id);
      expect(setCookies(next)).toEqual([]); // new and empty: nothing to save
    });

    it("a cookie sealed with an unknown version byte gives a new empty session", async () => {
      const store = new CookieStore({ secret: SECRET });
      const server = await start(sessionApp(store));
      const good = Buffer.from(sealEncrypted(payload(Date.now(), Date.now(), { id: "x", a: 1 }), SECRET, "session"), "base64url");
      good[0] = 2;
      const res = await request(server).get("/read").set("Cookie", `session=${good.toString("base64url")}`);
      expect(Object.keys(res.body)).toEqual(["id"]);
    });
  });

  describe("IVs", () => {
    it("every seal gets a fresh random IV, across refills of the IV pool (3,000 seals, no repeat)", () => {
      const store = new CookieStore({ secret: SECRET });
      const ctx = { req: {}, res: {}, cookies: {} } as unknown as SessionContext;
      const ivs = new Set<string>();
      for (let i = 0; i < 3000; i++) {
        const session = new Session({ id: `s${i}`, n: i });
        const [cookie] = store.dump(session, ctx);
        ivs.add(Buffer.from(cookie.value, "base64url").subarray(1, 13).toString("hex"));
      }
      expect(ivs.size).toBe(3000);
    });
  });

  describe("encrypt: false: signed only", () => {
    it("the payload is readable base64url JSON, followed by a signature", async () => {
      const store = new CookieStore({ secret: SECRET, encrypt: false });
      expect(store.encrypt).toBe(false);
      const { res, jar } = await login(store);
      const value = jar.get("session") as string;
      expect(value).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9+/]+$/);
      const [created, touched, data] = JSON.parse(readSigned(value));
      expect(data).toEqual({ id: res.body.id, user: "ann-the-admin" });
      expect(touched).toBe(created);
      expect(value).toBe(sealSigned(payload(created, touched, data), SECRET, "session"));
    });

    it("reads its own cookie back", async () => {
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET, encrypt: false }));
      const next = await request(server).get("/read").set("Cookie", jar.header());
      expect(next.body).toEqual({ id: res.body.id, user: "ann-the-admin" });
    });

    it("a cookie whose payload was changed is rejected", async () => {
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET, encrypt: false }), { role: "user" });
      const value = jar.get("session") as string;
      const [created, touched, data] = JSON.parse(readSigned(value));
      const forged = Buffer.from(payload(created, touched, { ...data, role: "admin" })).toString("base64url");
      const signature = value.slice(value.lastIndexOf("."));
      const next = await request(server).get("/read").set("Cookie", `session=${forged}${signature}`);
      expect(next.status).toBe(200);
      expect(next.body.role).toBeUndefined();
      expect(next.body.id).not.toBe(res.body.id);
    });

    it("a cookie whose signature was changed is rejected", async () => {
      const { server, jar } = await login(new CookieStore({ secret: SECRET, encrypt: false }));
      const value = jar.get("session") as string;
      const last = value.at(-1) === "A" ? "B" : "A";
      const next = await request(server).get("/read").set("Cookie", `session=${value.slice(0, -1)}${last}`);
      expect(Object.keys(next.body)).toEqual(["id"]);
    });

    it("a correctly signed payload that is not a session is rejected", async () => {
      const server = await start(sessionApp(new CookieStore({ secret: SECRET, encrypt: false })));
      for (const plaintext of ["not json", "{}", "[1,2]", '[1,2,"x"]', '["1",2,{"id":"a"}]', '[1,2,{"id":""}]', '[1,2,{"id":7}]', '[1,2,[]]', "[1,2,null]"]) {
        const res = await request(server).get("/read").set("Cookie", `session=${sealSigned(plaintext, SECRET, "session")}`);
        expect(res.status).toBe(200);
        expect(Object.keys(res.body)).toEqual(["id"]);
      }
    });
  });

  describe("the seal is bound to the cookie name", () => {
    it.each([true, false])("a valid seal copied under another cookie name is rejected (encrypt: %p)", async (encrypt) => {
      const a = await login(new CookieStore({ secret: SECRET, encrypt, name: "a" }));
      const server = await start(sessionApp(new CookieStore({ secret: SECRET, encrypt, name: "b" })));
      const copied = await request(server).get("/read").set("Cookie", `b=${a.jar.get("a")}`);
      expect(copied.status).toBe(200);
      expect(copied.body).toEqual({ id: expect.any(String) });
      expect(copied.body.id).not.toBe(a.res.body.id);
      // ...while under its own name, in a store with the same secret, it opens.
      const own = await request(a.server).get("/read").set("Cookie", `a=${a.jar.get("a")}`);
      expect(own.body.id).toBe(a.res.body.id);
    });
  });

  describe("idle timeout (maxAge) and absoluteTimeout, checked on the server", () => {
    it("the cookie's Max-Age is maxAge in seconds", async () => {
      const { res } = await login(new CookieStore({ secret: SECRET, maxAge: 30 * MINUTE }));
      expect(cookiesByName(res).session.maxAge).toBe(1800);
    });

    it.each([true, false])("a cookie replayed after the idle timeout gives an empty session (encrypt: %p)", async (encrypt) => {
      const clock = fakeClock();
      const store = new CookieStore({ secret: SECRET, encrypt, maxAge: MINUTE });
      const { server, res, jar } = await login(store);
      clock.advance(MINUTE); // exactly at the limit: still valid
      const within = await request(server).get("/read").set("Cookie", jar.header());
      expect(within.body.id).toBe(res.body.id);
      clock.advance(1);
      // The browser would have dropped it (Max-Age), but a copied cookie is still sent:
      const replayed = await request(server).get("/read").set("Cookie", jar.header());
      expect(replayed.status).toBe(200);
      expect(replayed.body).toEqual({ id: expect.any(String) });
      expect(replayed.body.id).not.toBe(res.body.id);
    });

    it("a cookie is checked for expiry on every request", async () => {
      const clock = fakeClock();
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET, maxAge: MINUTE }));
      for (let i = 0; i < 3; i++) {
        expect((await request(server).get("/read").set("Cookie", jar.header())).body.id).toBe(res.body.id);
      }
      clock.advance(MINUTE + 1);
      expect((await request(server).get("/read").set("Cookie", jar.header())).body.id).not.toBe(res.body.id);
    });

    it.each([true, false])("a cached cookie's data is copied for each request: nested changes on one request never reach the next one that sends the same cookie (encrypt: %p)", async (encrypt) => {
      const store = new CookieStore({ secret: SECRET, encrypt });
      const app = sessionApp(store);
      const server = await start(app);
      const data = { user: "ann", roles: ["reader"], profile: { name: "Ann", tags: ["a"] } };
      const jar = new Jar().take(await request(server).post("/write").send(data));
      expect((await request(server).get("/read").set("Cookie", jar.header())).body).toMatchObject(data); // cached now
      // A handler changes nested values in place.
      const mutator = express();
      mutator.use(sessions(store));
      mutator.get("/mutate", (req, res) => {
        const session = req.session as unknown as typeof data;
        session.roles.push("admin");
        session.profile.name = "Mallory";
        session.profile.tags.length = 0;
        res.send("ok");
      });
      const mutated = await request(await start(mutator)).get("/mutate").set("Cookie", jar.header());
      expect(mutated.status).toBe(200);
      expect(setCookies(mutated)).toHaveLength(1); // the changed session was sealed into a new cookie...
      // ...and a request that still sends the old cookie gets the old data, from the cache.
      const again = await request(server).get("/read").set("Cookie", jar.header());
      expect(again.body).toEqual({ id: expect.stringMatching(UUID_V4), ...data });
    });

    it.each([true, false])("a cookie that ends like a cached one but differs before is opened, not taken from the cache (encrypt: %p)", async (encrypt) => {
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET, encrypt }));
      const value = jar.get("session") as string;
      expect((await request(server).get("/read").set("Cookie", jar.header())).body.id).toBe(res.body.id); // cached now
      // Same last 24 characters (the cache key), one character changed well before them.
      const at = value.length - 40;
      const forged = value.slice(0, at) + (value[at] === "A" ? "B" : "A") + value.slice(at + 1);
      const next = await request(server).get("/read").set("Cookie", `session=${forged}`);
      expect(next.status).toBe(200);
      expect(next.body).toEqual({ id: expect.stringMatching(UUID_V4) });
      expect(next.body.id).not.toBe(res.body.id);
    });

    it("activity slides the idle timeout", async () => {
      const clock = fakeClock();
      const { server, res, jar } = await login(new CookieStore({ secret: SECRET, maxAge: MINUTE, absoluteTimeout: null }));
      for (let i = 0; i < 5; i++) {
        clock.advance(50 * SECOND);
        const next = await request(server).get("/read").set("Cookie", jar.header());
        expect(next.body.id).toBe(res.body.id);
        jar.take(next);
      }
    });

    it.each([true, false])("absoluteTimeout ends an active session (encrypt: %p)", async (encrypt) => {
      const clock = fakeClock();
      const store = new CookieStore({ secret: SECRET, encrypt, maxAge: MINUTE, absoluteTimeout: 150 * SECOND });
      const { server, res, jar } = await login(store);
      clock.advance(50 * SECOND);
      jar.take(await request(server).get("/read").set("Cookie", jar.header()));
      clock.advance(50 * SECOND);
      const at100 = await request(server).get("/read").set("Cookie", jar.header());
      expect(at100.body.id).toBe(res.body.id);
      // The cookie's lifetime never reaches past the absolute end: 150 s - 100 s = 50 s.
      expect(cookiesByName(at100).session.maxAge).toBe(50);
      jar.take(at100);
      clock.advance(50 * SECOND + 1);
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(after.body).toEqual({ id: expect.any(String) });
      expect(after.body.id).not.toBe(res.body.id);
    });

    it("regenerate() starts a new absolute lifetime", async () => {
      const clock = fakeClock();
      const store = new CookieStore({ secret: SECRET, maxAge: MINUTE, absoluteTimeout: 100 * SECOND });
      const { server, res, jar } = await login(store);
      clock.advance(50 * SECOND);
      const regenerated = await request(server).post("/regenerate").set("Cookie", jar.header());
      expect(regenerated.body.id).not.toBe(res.body.id);
      expect(regenerated.body.user).toBe("ann-the-admin");
      expect(cookiesByName(regenerated).session.maxAge).toBe(60);
      jar.take(regenerated);
      clock.advance(55 * SECOND); // 105 s after login, 55 s after regenerate
      const next = await request(server).get("/read").set("Cookie", jar.header());
      expect(next.body).toEqual({ id: regenerated.body.id, user: "ann-the-admin" });
    });

    it("defaults: 1 day idle, 7 days absolute", () => {
      const store = new CookieStore({ secret: SECRET });
      expect(store.maxAge).toBe(86_400_000);
      expect(store.absoluteTimeout).toBe(7 * 86_400_000);
      expect(store.touchAfter).toBe(60_000);
      expect(store.maxSize).toBe(14_336);
    });
  });

  describe("each request gets its own copy of a cached session", () => {
    it.each([true, false])("a change deep inside a cached session is sealed, and the cookie it came from still reads as before (encrypt: %p)", async (encrypt) => {
      const store = new CookieStore({ secret: SECRET, encrypt });
      const app = sessionApp(store);
      app.post("/roles", (req, res) => {
        (req.session.prefs as { roles: string[] }).roles.push(String(req.query.role));
        res.json({ ...req.session });
      });
      const server = await start(app);
      const old = new Jar().take(await request(server).post("/write").send({ user: "ann", prefs: { roles: ["reader"] } })).header();
      expect(setCookies(await request(server).get("/read").set("Cookie", old))).toEqual([]); // opened, now cached
      const pushed = await request(server).post("/roles?role=admin").set("Cookie", old);
      expect(pushed.status).toBe(200);
      expect(pushed.body.prefs).toEqual({ roles: ["reader", "admin"] });
      expect(setCookies(pushed)).toHaveLength(1); // a change the handler made in place is still a change
      const fresh = await request(server).get("/read").set("Cookie", new Jar(old).take(pushed).header());
      expect(fresh.body.prefs).toEqual({ roles: ["reader", "admin"] });
      // The old cookie (a second tab, a replay) opens from the cache: the push did not reach it.
      const again = await request(server).get("/read").set("Cookie", old);
      expect(again.body.prefs).toEqual({ roles: ["reader"] });
      expect(setCookies(again)).toEqual([]);
    });

    it("a value whose JSON cannot be told from the loaded one without serializing it (a Date) is compared as JSON text", async () => {
      const store = new CookieStore({ secret: SECRET });
      const app = express();
      app.use(sessions(store));
      app.post("/login", (req, res) => {
        req.session.since = new Date(Date.UTC(2030, 0, 1));
        res.json({ ...req.session });
      });
      // The same instant again: its JSON is the string stored before, so nothing is re-sealed.
      app.get("/same", (req, res) => {
        req.session.since = new Date(Date.UTC(2030, 0, 1));
        res.json({ ...req.session });
      });
      app.get("/later", (req, res) => {
        req.session.since = new Date(Date.UTC(2031, 0, 1));
        res.json({ ...req.session });
      });
      const server = await start(app);
      const jar = new Jar().take(await request(server).post("/login"));
      expect(setCookies(await request(server).get("/same").set("Cookie", jar.header()))).toEqual([]);
      const later = await request(server).get("/later").set("Cookie", jar.header());
      expect(setCookies(later)).toHaveLength(1);
      expect(later.body.since).toBe("2031-01-01T00:00:00.000Z");
    });
  });

  describe("a session split into chunks", () => {
    const ctxFor = (cookies: Record<string, string> = {}) => ({ req: { headers: {}, socket: {} }, res: {}, cookies }) as unknown as SessionContext;
    it.each([true, false])("reads back as the same session, and an unchanged one is not re-issued (encrypt: %p)", (encrypt) => {
      const store = new CookieStore({ secret: SECRET, encrypt });
      const session = store.load(ctxFor());
      session.notes = "n".repeat(5000);
      const dumped = store.dump(session, ctxFor());
      expect(dumped.map((c) => c.name)).toEqual(["session", "session.1"]);
      const sent = Object.fromEntries(dumped.map((c) => [c.name, c.value]));
      const loaded = store.load(ctxFor(sent));
      expect({ ...loaded }).toEqual({ ...session });
      expect(store.dump(loaded, ctxFor(sent))).toEqual([]);
    });
  });

  describe("touchAfter", () => {
    it("an unchanged session is not re-issued within touchAfter, and is re-issued after it", async () => {
      const clock = fakeClock();
      const { server, jar } = await login(new CookieStore({ secret: SECRET, maxAge: MINUTE, touchAfter: 10 * SECOND }));
      clock.advance(9 * SECOND);
      const within = await request(server).get("/read").set("Cookie", jar.header());
      expect(within.body.user).toBe("ann-the-admin");
      expect(setCookies(within)).toEqual([]);
      clock.advance(1 * SECOND);
      const after = await request(server).get("/read").set("Cookie", jar.header());
      expect(setCookies(after)).toHaveLength(1);
      const [, touched] = JSON.parse(openEncrypted(cookiesByName(after).session.value, SECRET, "session") as string);
      expect(touched).toBe(clock.now);
    });

    it("a changed session is re-issued at once", async () => {
      fakeClock();
      const { server, jar } = await login(new CookieStore({ secret: SECRET, touchAfter: MINUTE }));
      const changed = await request(server).post("/write").set("Cookie", jar.header()).send({ views: 1 });
      expect(setCookies(changed)).toHaveLength(1);
      const next = await request(server).get("/read").set("Cookie", new Jar(jar.header()).take(changed).header());
      expect(next.body.views).toBe(1);
    });
  });

  describe("destroy()", () => {
    it("expires the cookie", async () => {
      const { server, jar } = await login(new CookieStore({ secret: SECRET }));
      const res = await request(server).post("/destroy").set("Cookie", jar.header());
      expect(res.body).toEqual({ id: expect.any(String) });
      const cookie = cookiesByName(res).session;
      expect(cookie).toMatchObject({ value: "", maxAge: 0, path: "/", httpOnly: true });
      expect(jar.take(res).names()).toEqual([]);
    });
  });

  describe("options are checked at construction", () => {
    it.each<[string, unknown, RegExp]>([
      ["no secret", {}, /CookieStore needs a secret: pass \{ secret: process\.env\.SESSION_SECRET \} \(at least 32 characters; generate one with/],
      ["a short secret", { secret: "x".repeat(31) }, /CookieStore: secret must be a string of at least 32 characters; generate one with/],
      ["a short secret in a list", { secret: [SECRET, "short"] }, /CookieStore: secret\[1\] must be a string of at least 32 characters/],
      ["an empty secret list", { secret: [] }, /CookieStore: secret is an empty array; give at least one secret/],
      ["a secret that is not a string", { secret: 12345678901234567890123456789012345 }, /CookieStore: secret must be a string/],
      ["an unknown option", { secret: SECRET, maxage: 1000 }, /CookieStore: unknown option "maxage"; the options are secret, encrypt, name, cookie, maxAge, absoluteTimeout, maxSize, touchAfter/],
      ["a middleware option", { secret: SECRET, preload: false }, /unknown option "preload" \("preload" is an option of the middleware: pass it as the second argument, sessions\(store, \{ preload \}\)\)/],
      ["encrypt that is not a boolean", { secret: SECRET, encrypt: "no" }, /CookieStore: encrypt must be true or false, got "no"/],
      ["a bad maxAge", { secret: SECRET, maxAge: -1 }, /CookieStore: maxAge must be a positive number of milliseconds, got -1/],
      ["a bad absoluteTimeout", { secret: SECRET, absoluteTimeout: "soon" }, /absoluteTimeout must be a positive number of milliseconds \(or null to turn it off\), got "soon"/],
      ["a fractional maxSize", { secret: SECRET, maxSize: 1.5 }, /CookieStore: maxSize must be a positive whole number of bytes, got 1\.5/],
      ["a huge maxSize", { secret: SECRET, maxSize: 2_000_000 }, /maxSize 2000000 is over 1048576 bytes.*use RedisStore/],
      ["touchAfter not below maxAge", { secret: SECRET, maxAge: 1000, touchAfter: 1000 }, /touchAfter \(1000 ms\) must be shorter than maxAge \(1000 ms\)/],
      ["options that are not an object", "a-secret-that-is-long-enough-000000", /CookieStore takes an options object such as \{ secret: process\.env\.SESSION_SECRET \}, got a string/],
    ])("refuses %s", (_, options, message) => {
      const build = () => new CookieStore(options as CookieStoreOptions);
      expect(build).toThrow(SessionConfigError);
      expect(build).toThrow(message);
    });

    it("refuses being built without options", () => {
      expect(() => new (CookieStore as unknown as new () => CookieStore)()).toThrow(/CookieStore needs a secret/);
    });

    it("takes the types its options declare: a string for a number is refused (sessions({ store: \"cookie\", ... }) converts environment strings)", () => {
      expect(() => new CookieStore({ secret: SECRET, maxAge: "60000" } as never)).toThrow(/CookieStore: maxAge must be a positive number of milliseconds, got "60000"/);
      expect(() => new CookieStore({ secret: SECRET, encrypt: "false" } as never)).toThrow(/CookieStore: encrypt must be true or false, got "false"/);
    });

    it("absoluteTimeout: null turns the absolute limit off", () => {
      expect(new CookieStore({ secret: SECRET, absoluteTimeout: null }).absoluteTimeout).toBeNull();
    });

    it("a tiny maxAge gives touchAfter 0 (always re-issue); 0 can be asked for, as with the other stores", () => {
      expect(new CookieStore({ secret: SECRET, maxAge: 5 }).touchAfter).toBe(0);
      expect(new CookieStore({ secret: SECRET, touchAfter: 0 }).touchAfter).toBe(0);
    });
  });
});
