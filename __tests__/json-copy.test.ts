import { copyJson, type JsonValue, sameFields, sameJson } from "../lib/json-copy";

const SESSION_TEXT = '{"id":"s1","user":"ann","roles":["reader",{"team":"blue","since":[2024,1]}],"count":3,"flag":false,"none":null,"7":"seven"}';

describe("copyJson", () => {
  it("gives a deep copy that JSON.stringify writes exactly as the original", () => {
    const parsed = JSON.parse(SESSION_TEXT) as JsonValue;
    const copy = copyJson(parsed);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
    expect(copy).not.toBe(parsed);
    const roles = (copy as { roles: unknown[] }).roles;
    expect(roles).not.toBe((parsed as { roles: unknown[] }).roles);
    (roles[1] as { since: number[] }).since.push(99);
    expect(JSON.stringify(parsed)).toBe(JSON.stringify(JSON.parse(SESSION_TEXT))); // the original is untouched
  });

  it('keeps an own "__proto__" key as JSON.parse does, without changing the copy\'s prototype', () => {
    const parsed = JSON.parse('{"a":{"__proto__":{"polluted":true},"b":1}}') as { a: Record<string, unknown> };
    const copy = copyJson(parsed as unknown as JsonValue) as { a: Record<string, unknown> };
    expect(Object.getPrototypeOf(copy.a)).toBe(Object.prototype);
    expect(copy.a.polluted).toBeUndefined();
    expect(Object.keys(copy.a)).toEqual(["__proto__", "b"]);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(parsed));
  });

  it("returns primitives as they are", () => {
    for (const value of [null, true, 0, -1.5, "", "x"]) expect(copyJson(value)).toBe(value);
  });
});

describe("sameJson", () => {
  const parsed = () => JSON.parse(SESSION_TEXT) as Record<string, JsonValue>;

  it("is true for an untouched copy, and for one whose keys were only reordered", () => {
    expect(sameJson(copyJson(parsed()), parsed())).toBe(true);
    const reordered = copyJson(parsed()) as Record<string, JsonValue>;
    const count = reordered.count;
    delete reordered.count;
    reordered.count = count;
    expect(sameJson(reordered, parsed())).toBe(true);
  });

  // Each: a change a handler can make, and JSON.stringify sees. sameJson must never say "same".
  const changes: Array<[string, (v: Record<string, unknown>) => void]> = [
    ["a changed number", (v) => void (v.count = 4)],
    ["a number changed to the same digits as a string", (v) => void (v.count = "3")],
    ["a nested array pushed to", (v) => void ((v.roles as unknown[]).push("admin"))],
    ["a deeply nested value changed", (v) => void (((v.roles as unknown[])[1] as { since: number[] }).since[1] = 2)],
    ["a new key", (v) => void (v.extra = 1)],
    ["a deleted key", (v) => void delete v.flag],
    ["null replaced by an empty object", (v) => void (v.none = {})],
    ["an array replaced by an object with the same indexes", (v) => void (v.roles = { 0: "reader", 1: { team: "blue", since: [2024, 1] } })],
    ["a key made non-enumerable (JSON skips it)", (v) => void Object.defineProperty(v, "user", { enumerable: false })],
  ];
  it.each(changes)("is false after %s", (_name, change) => {
    const copy = copyJson(parsed()) as Record<string, unknown>;
    change(copy);
    expect(JSON.stringify(copy)).not.toBe(SESSION_TEXT); // the change is real
    expect(sameJson(copy, parsed())).toBe(false);
  });

  // Each: a value whose JSON may or may not equal the original's; sameJson leaves it to the text comparison.
  const unsure: Array<[string, (v: Record<string, unknown>) => void]> = [
    ["a Date", (v) => void (v.user = new Date(0))],
    ["a Map", (v) => void (v.none = new Map())],
    ["a class instance", (v) => void (v.none = new (class Thing {})())],
    ["an own toJSON", (v) => void (v.toJSON = () => JSON.parse(SESSION_TEXT))],
    ["a nested array's own toJSON", (v) => void Object.assign(v.roles as unknown[], { toJSON: () => ["reader"] })],
    ["a nested object's own toJSON", (v) => void Object.assign((v.roles as unknown[])[1] as object, { toJSON: () => "blue" })],
    ["a key set to undefined (JSON omits it)", (v) => void (v.extra = undefined)],
    ["a function", (v) => void (v.extra = () => 1)],
    ["NaN where null was (both are null in JSON)", (v) => void (v.none = NaN)],
    ["an array subclass", (v) => void (v.roles = Object.setPrototypeOf(["reader", { team: "blue", since: [2024, 1] }], class extends Array {}.prototype))],
  ];
  it.each(unsure)("is false (not certain) for %s", (_name, change) => {
    const copy = copyJson(parsed()) as Record<string, unknown>;
    change(copy);
    expect(sameJson(copy, parsed())).toBe(false);
  });

  it("compares primitives by value", () => {
    expect(sameJson("a", "a")).toBe(true);
    expect(sameJson(1, 1)).toBe(true);
    expect(sameJson(-0, 0)).toBe(true); // both are 0 in JSON
    expect(sameJson(1, "1")).toBe(false);
    expect(sameJson(undefined, null)).toBe(false);
    expect(sameJson([], {})).toBe(false);
    expect(sameJson({}, [])).toBe(false);
  });
});

describe("sameFields", () => {
  it("compares an object's own enumerable fields whatever its prototype (a Session's methods live there)", () => {
    class Holder {
      method(): number {
        return 1;
      }
    }
    const value = Object.assign(new Holder(), { a: 1, b: [2] }) as unknown as Record<string, unknown>;
    expect(sameFields(value, { a: 1, b: [2] })).toBe(true);
    expect(sameFields(value, { a: 1 })).toBe(false);
    expect(sameFields(value, { a: 1, b: [2], c: 3 })).toBe(false);
  });
});
