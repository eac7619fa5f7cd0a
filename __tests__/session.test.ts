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
      expect(Session.stateOf(Session.empty())).toEqual({ loadedId: null, destroyed: false });
    });
  });

  describe("new Session({ id, ...data })", () => {
    it("rebuilds a session with its id and data", () => {
      const session = new Session({ id: "abc", user: "ann", views: 3, nested: { a: [1, 2] } });
      expect(session.id).toBe("abc");
      expect(session.user).toBe("ann");
      expect(session.views).toBe(3);
      expect(session.nested).toEqual({ a: [1, 2] });
      expect(Session.stateOf(session)).toEqual({ loadedId: "abc", destroyed: false });
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
    it("cannot be reassigned (TypeError in strict mode)", () => {
      const session = new Session({ id: "abc" });
      expect(() => {
        (session as { id: string }).id = "evil";
      }).toThrow(TypeError);
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

  describe("methods are not data", () => {
    it("Object.keys and JSON.stringify show id and the user's keys only", () => {
      const session = Session.empty();
      session.user = "ann";
      session.cart = [1, 2];
      expect(Object.keys(session)).toEqual(["id", "user", "cart"]);
      expect(JSON.parse(JSON.stringify(session))).toEqual({ id: session.id, user: "ann", cart: [1, 2] });
      expect({ ...session }).toEqual({ id: session.id, user: "ann", cart: [1, 2] });
      expect("regenerate" in session && !Object.keys(session).includes("regenerate")).toBe(true);
    });
  });

  describe(".regenerate()", () => {
    it("gives a new id and keeps the data", () => {
      const session = new Session({ id: "abc", user: "ann" });
      session.regenerate();
      expect(session.id).not.toBe("abc");
      expect(session.id).toMatch(UUID_V4);
      expect(session.user).toBe("ann");
      expect(Object.keys(session)).toEqual(["id", "user"]);
      // The store learns the old id, to delete it.
      expect(Session.stateOf(session)).toEqual({ loadedId: "abc", destroyed: false });
    });
  });

  describe(".destroy()", () => {
    it("empties the session, gives it a new id and marks it destroyed", () => {
      const session = new Session({ id: "abc", user: "ann", cart: [1] });
      session.destroy();
      expect(Object.keys(session)).toEqual(["id"]);
      expect(session.id).not.toBe("abc");
      expect(Session.isEmpty(session)).toBe(true);
      expect(Session.stateOf(session)).toEqual({ loadedId: "abc", destroyed: true });
    });

    it("data written after destroy() starts a new session", () => {
      const session = new Session({ id: "abc", user: "ann" });
      session.destroy();
      session.user = "bob";
      expect(Session.isEmpty(session)).toBe(false);
      expect(session.user).toBe("bob");
      expect(session.id).not.toBe("abc");
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
