/**
 * How RedisStore keeps a session in a hash, checked without Redis: the writes that bring a hash
 * up to date with a session, and the session restored from an HGETALL reply.
 */
import { Session } from "../lib";
import { CREATED_FIELD, hashChanges, sessionFromHash, type StoredHash, TOUCHED_FIELD } from "../lib/redis-hash";

const NOW = Date.UTC(2030, 0, 1);
const ID = "3b241101-e2bb-4255-8caf-4136c566a962";

function stored(fields: Record<string, unknown>, created = NOW - 1000, touched = NOW - 500): StoredHash {
  return { id: ID, fields: new Map(Object.entries(fields).map(([k, v]) => [k, JSON.stringify(v)])), created, touched, lifetime: undefined };
}

describe("hashChanges: the writes for a session", () => {
  it("a session new here is written whole, with its creation and touch times", () => {
    const session = Session.empty();
    session.user = "ann";
    session.cart = [1, 2];
    const changes = hashChanges(session, undefined, true, NOW);
    expect(changes.whole).toBe(true);
    expect(changes.removed).toEqual([]);
    expect(changes.set).toEqual([CREATED_FIELD, String(NOW), "user", '"ann"', "cart", "[1,2]", TOUCHED_FIELD, String(NOW)]);
    expect(changes.next).toEqual({ id: session.id, fields: new Map([["user", '"ann"'], ["cart", "[1,2]"]]), created: NOW, touched: NOW });
  });

  it("a loaded session writes only the fields that changed, and deletes the ones it lost", () => {
    const session = new Session({ id: ID, user: "ann", views: 2, cart: [1] });
    delete session.cart;
    session.views = 3;
    const changes = hashChanges(session, stored({ user: "ann", views: 2, cart: [1] }), false, NOW);
    expect(changes).toMatchObject({ whole: false, removed: ["cart"], set: ["views", "3"] });
    expect(changes.next).toMatchObject({ created: NOW - 1000, touched: NOW - 500 });
  });

  it("an unchanged session without a touch writes nothing; with one, only the touch time", () => {
    const session = new Session({ id: ID, user: "ann" });
    expect(hashChanges(session, stored({ user: "ann" }), false, NOW)).toMatchObject({ removed: [], set: [] });
    expect(hashChanges(session, stored({ user: "ann" }), true, NOW)).toMatchObject({ removed: [], set: [TOUCHED_FIELD, String(NOW)] });
  });

  it("a regenerated session (stored under another id) is written whole under its new id", () => {
    const session = Session.empty();
    session.user = "ann";
    const changes = hashChanges(session, stored({ user: "ann" }), true, NOW);
    expect(changes.whole).toBe(true);
    expect(changes.set.slice(0, 2)).toEqual([CREATED_FIELD, String(NOW)]);
    expect(changes.next.id).toBe(session.id);
  });

  it("never stores undefined values, nor keys named like the time fields", () => {
    const session = Session.empty();
    session.gone = undefined;
    session[CREATED_FIELD] = "forged";
    session[TOUCHED_FIELD] = "forged";
    expect(hashChanges(session, undefined, false, NOW).set).toEqual([CREATED_FIELD, String(NOW)]);
  });
});

describe("sessionFromHash: the session from an HGETALL reply", () => {
  const reply = { [CREATED_FIELD]: String(NOW - 1000), [TOUCHED_FIELD]: String(NOW - 10), user: '"ann"', roles: '["admin"]' };

  it("restores the data and what is stored, from an object (RESP3, ioredis) or a flat array (RESP2)", () => {
    for (const form of [reply, Object.entries(reply).flat()]) {
      const found = sessionFromHash(ID, form, null, NOW);
      expect({ ...found?.session }).toEqual({ id: ID, user: "ann", roles: ["admin"] });
      expect(found?.stored).toEqual({ id: ID, fields: new Map([["user", '"ann"'], ["roles", '["admin"]']]), created: NOW - 1000, touched: NOW - 10 });
    }
  });

  it("gives nothing for an empty reply, a hash without a creation time, one past absoluteTimeout, or a field that is not JSON", () => {
    expect(sessionFromHash(ID, {}, null, NOW)).toBeUndefined();
    expect(sessionFromHash(ID, { user: '"ann"' }, null, NOW)).toBeUndefined();
    expect(sessionFromHash(ID, reply, 999, NOW)).toBeUndefined();
    expect(sessionFromHash(ID, { ...reply, user: "not json" }, null, NOW)).toBeUndefined();
  });

  it("a hash without a touch time counts as touched long ago", () => {
    expect(sessionFromHash(ID, { [CREATED_FIELD]: String(NOW) }, null, NOW)?.stored.touched).toBe(0);
  });

  it("fields named __proto__ or constructor stay plain data of the session", () => {
    const flat = [...Object.entries(reply).flat(), "__proto__", '{"polluted":true}', "constructor", '{"prototype":{"polluted":true}}'];
    const found = sessionFromHash(ID, flat, null, NOW);
    expect(Object.getPrototypeOf(found?.session)).toBe(Session.prototype);
    expect(Object.hasOwn(found?.session as object, "__proto__")).toBe(false);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(found?.session.constructor).toEqual({ prototype: { polluted: true } });
  });
});
