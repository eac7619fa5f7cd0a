import { validate as isUuid, version as uuidVersion } from "uuid";
import { Session } from "../lib";
import { UUID_V4 } from "./helpers/session-cookies";

describe("Session", () => {
  describe("Session.empty()", () => {
    it("has a fresh random UUID v4 id and no data", () => {
      const session = Session.empty();
      expect(isUuid(session.id)).toBe(true);
      expect(uuidVersion(session.id)).toBe(4);
      expect(session.id).toMatch(UUID_V4);
      expect(Object.keys(session)).toEqual(["id"]);
      expect(Session.isEmpty(session)).toBe(true);
    });

    it("gives a different id every time", () => {
      const ids = new Set(Array.from({ length: 1000 }, () => Session.empty().id));
      expect(ids.size).toBe(1000);
    });

    it("is marked as created on this request (no loaded id)", () => {
      expect(Session.stateOf(Session.empty())).toEqual({ loadedId: null, destroyed: false, regenerated: false });
    });
  });

  describe("new Session({ id, ...data })", () => {
    it("rebuilds a session with its id and data", () => {
      const session = new Session({ id: "abc", user: "ann", views: 3, nested: { a: [1, 2] } });
      expect(session.id).toBe("abc");
      expect(session.user).toBe("ann");
      expect(session.views).toBe(3);
      expect(session.nested).toEqual({ a: [1, 2] });
      expect(Session.stateOf(session)).toEqual({ loadedId: "abc", destroyed: false, regenerated: false });
      expect(Session.isEmpty(session)).toBe(false);
    });

    it.each([[undefined], [null], [{}], [{ id: "" }], [{ id: 42 }]])("refuses data without a non-empty string id: %p", (data) => {
      expect(() => new Session(data as never)).toThrow(/needs data\.id, a non-empty string.*Session\.empty\(\)/);
    });

    it("ignores reserved keys in the data (id, regenerate, destroy, __proto__)", () => {
      const data = JSON.parse('{"id":"abc","regenerate":1,"destroy":"x","__proto__":{"polluted":true},"ok":1}');
      const session = new Session(data);
      expect(Object.keys(session)).toEqual(["id", "ok"]);
      expect(typeof session.regenerate).toBe("function");
      expect(typeof session.destroy).toBe("function");
      expect(session.polluted).toBeUndefined();
      expect(Object.getPrototypeOf(session)).toBe(Session.prototype);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });
  });

  describe(".id", () => {
    it("cannot be reassigned: assigning it (as a mass assignment would) is ignored", () => {
      const session = new Session({ id: "abc" });
      (session as { id: string }).id = "evil";
      Object.assign(session, { id: "evil" });
      expect(session.id).toBe("abc");
    });

    it("cannot be deleted", () => {
      const session = new Session({ id: "abc" });
      expect(() => {
        delete (session as { id?: string }).id;
      }).toThrow(TypeError);
      expect(session.id).toBe("abc");
    });

    it("cannot be redefined", () => {
      const session = new Session({ id: "abc" });
      expect(() => Object.defineProperty(session, "id", { value: "evil" })).toThrow(TypeError);
      expect(session.id).toBe("abc");
    });
  });

  describe("methods and cookie are not data", () => {
    it("Object.keys and JSON.stringify show id and the user's keys only", () => {
      const session = Session.empty();
      session.user = "ann";
      session.cart = [1, 2];
      expect(Object.keys(session)).toEqual(["id", "user", "cart"]);
      expect(JSON.parse(JSON.stringify(session))).toEqual({ id: session.id, user: "ann", cart: [1, 2] });
      expect({ ...session }).toEqual({ id: session.id, user: "ann", cart: [1, 2] });
      for (const name of ["regenerate", "destroy", "save", "reload", "touch", "resetMaxAge", "cookie"]) {
        expect({ name, in: name in session, listed: Object.keys(session).includes(name) }).toEqual({ name, in: true, listed: false });
      }
    });

    it("assigning a reserved name (a mass assignment from a request body) neither breaks the methods nor stores data", () => {
      const session = new Session({ id: "abc", user: "ann" });
      const cookie = session.cookie;
      const body = JSON.parse('{"id":"evil","cookie":{"maxAge":1},"regenerate":1,"destroy":null,"save":"x","reload":[],"touch":{},"resetMaxAge":0,"__proto__":{"admin":true},"name":"bob"}');
      Object.assign(session, body);
      expect({ ...session }).toEqual({ id: "abc", user: "ann", name: "bob" });
      expect(session.cookie).toBe(cookie);
      for (const name of ["regenerate", "destroy", "save", "reload", "touch", "resetMaxAge"]) expect(typeof session[name]).toBe("function");
      expect(session.admin).toBeUndefined();
    });

    it("data loaded under a reserved name is ignored", () => {
      const session = new Session(JSON.parse('{"id":"abc","cookie":1,"save":2,"touch":3,"ok":1}'));
      expect(Object.keys(session)).toEqual(["id", "ok"]);
      expect(typeof session.save).toBe("function");
    });
  });

  describe("Session.regenerated(session, keep): what regenerate() puts in req.session", () => {
    it("a new, empty session with a new id; the old object keeps its data; the store learns the old id, to remove it", () => {
      const session = new Session({ id: "abc", user: "ann", cart: [1] });
      const next = Session.regenerated(session, false);
      expect(next).not.toBe(session);
      expect(next.id).toMatch(UUID_V4);
      expect(Object.keys(next)).toEqual(["id"]);
      expect({ ...session }).toEqual({ id: "abc", user: "ann", cart: [1] });
      expect(Session.stateOf(next)).toEqual({ loadedId: "abc", destroyed: true, regenerated: true });
    });

    it("{ keep: true } carries all the data over, { keep: [keys] } the listed keys", () => {
      const session = new Session({ id: "abc", user: "ann", cart: [1], returnTo: "/x" });
      expect({ ...Session.regenerated(session, true), id: "-" }).toEqual({ id: "-", user: "ann", cart: [1], returnTo: "/x" });
      expect({ ...Session.regenerated(session, ["cart", "returnTo", "missing"]), id: "-" }).toEqual({ id: "-", cart: [1], returnTo: "/x" });
    });

    it("a session that was never stored regenerates into a new one with nothing to remove", () => {
      expect(Session.stateOf(Session.regenerated(Session.empty(), false))).toEqual({ loadedId: null, destroyed: false, regenerated: false });
    });

    it("the methods that need the middleware say so when called on a session it does not serve", async () => {
      const session = new Session({ id: "abc" });
      await expect(session.regenerate()).rejects.toThrow(/session\.regenerate\(\) needs the sessions\(\) middleware/);
      await expect(session.save()).rejects.toThrow(/session\.save\(\) needs the sessions\(\) middleware/);
      const err = await new Promise<Error | null>((resolve) => session.reload(resolve));
      expect(err?.message).toMatch(/session\.reload\(\) needs the sessions\(\) middleware/);
    });
  });

  describe(".cookie (express-session's req.session.cookie)", () => {
    const init = { maxAge: 60_000, attributes: { path: "/", httpOnly: true, secure: false, sameSite: "lax" as const } };

    it("shows the store's lifetime and attributes; it is not data", () => {
      const session = Session.empty(init);
      expect(session.cookie.originalMaxAge).toBe(60_000);
      expect(session.cookie.maxAge).toBeGreaterThan(59_000);
      expect(session.cookie.expires).toBeInstanceOf(Date);
      expect(session.cookie).toMatchObject({ path: "/", httpOnly: true, secure: false, sameSite: "lax" });
      expect(JSON.parse(JSON.stringify(session.cookie))).toMatchObject({ originalMaxAge: 60_000, path: "/", httpOnly: true, secure: false, sameSite: "lax" });
      expect(Session.lifetimeOf(session)).toEqual({ lifetime: undefined, renewed: false });
    });

    it("maxAge and expires set this session's lifetime; null makes it a cookie that ends with the browser", () => {
      const session = Session.empty(init);
      session.cookie.maxAge = 30 * 86_400_000;
      expect(session.cookie.originalMaxAge).toBe(30 * 86_400_000);
      expect(Session.lifetimeOf(session)).toEqual({ lifetime: 30 * 86_400_000, renewed: true });
      session.cookie.expires = new Date(Date.now() + 3_600_000);
      expect(session.cookie.maxAge).toBeGreaterThan(3_599_000);
      expect(session.cookie.maxAge).toBeLessThanOrEqual(3_600_000);
      session.cookie.maxAge = null;
      expect(session.cookie.maxAge).toBeNull();
      expect(session.cookie.expires).toBeNull();
      expect(Session.lifetimeOf(session).lifetime).toBeNull();
    });

    it("refuses a maxAge that is not a positive number or null, and attributes it cannot change, with messages that say what to do", () => {
      const cookie = Session.empty(init).cookie as unknown as Record<string, unknown>;
      expect(() => (cookie.maxAge = -5)).toThrow(/maxAge must be a positive number of milliseconds, or null/);
      expect(() => (cookie.maxAge = "1d")).toThrow(/maxAge must be a positive number/);
      expect(() => (cookie.expires = "tomorrow")).toThrow(/expires must be a Date, or null/);
      expect(() => (cookie.secure = true)).toThrow(/req\.session\.cookie\.secure is read-only: set cookie attributes with the store's `cookie` option/);
    });

    it("touch() and resetMaxAge() renew the cookie with its whole lifetime, and return the session", () => {
      const session = new Session({ id: "abc" }, { ...init, expires: Date.now() + 1000 });
      expect(session.cookie.maxAge).toBeLessThanOrEqual(1000);
      expect(session.touch()).toBe(session);
      expect(session.cookie.maxAge).toBeGreaterThan(59_000);
      expect(Session.lifetimeOf(session).renewed).toBe(true);
      expect(session.resetMaxAge()).toBe(session);
    });
  });

  describe("prototype safety", () => {
    it("assigning __proto__ (as Object.assign(req.session, body) would) changes nothing", () => {
      const session = Session.empty();
      const body = JSON.parse('{"__proto__":{"isAdmin":true,"regenerate":null},"name":"ann"}');
      Object.assign(session, body);
      expect(session).toBeInstanceOf(Session);
      expect(Object.getPrototypeOf(session)).toBe(Session.prototype);
      expect(session.isAdmin).toBeUndefined();
      expect(typeof session.regenerate).toBe("function");
      expect(session.__proto__).toBe(Session.prototype);
      expect(Object.keys(session)).toEqual(["id", "name"]);
    });

    it("isEmpty() ignores inherited enumerable keys", () => {
      const session = Session.empty();
      Object.setPrototypeOf(session, Object.create(Session.prototype, { inherited: { value: 1, enumerable: true } }));
      expect(Session.isEmpty(session)).toBe(true);
    });
  });
});
