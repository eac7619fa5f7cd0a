/**
 * Copies and comparisons of JSON data: how a store hands out a fresh copy of a session it has
 * already parsed, and tells an unchanged session from a changed one, without a round trip
 * through JSON text. For a typical small session (a few strings, an array, a counter) each is
 * about 80 ns, where `JSON.parse` and `JSON.stringify` take about 370 ns each (bench/micro.mjs).
 */

/** What `JSON.parse` makes: `null`, booleans, numbers, strings, arrays and plain objects of them. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** A deep copy of `value`, which came from `JSON.parse` (so it holds no cycles, no undefined, no class instances). */
export function copyJson<T extends JsonValue>(value: T): T {
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const out = new Array<JsonValue>(value.length);
    for (let i = 0; i < value.length; i++) out[i] = copyJson(value[i]);
    return out as T;
  }
  const out: { [key: string]: JsonValue } = {};
  for (const key in value) {
    // As JSON.parse makes it: an own "__proto__" key, not a new prototype for the copy.
    if (key === "__proto__") Object.defineProperty(out, key, { value: copyJson(value[key]), writable: true, enumerable: true, configurable: true });
    else out[key] = copyJson(value[key]);
  }
  return out as T;
}

/**
 * `true` only when `value` (anything a handler left in a session) serializes to the same JSON
 * data as `parsed` (from `JSON.parse`), up to the order of object keys. `false` means "not
 * certainly": the caller then compares JSON text, as it would without this check. So anything
 * unusual (a Date, a Map, a class instance, an own `toJSON`, a key set to `undefined`) answers
 * `false`, never a wrong `true`.
 */
export function sameJson(value: unknown, parsed: JsonValue): boolean {
  if (value === parsed) return true;
  if (typeof value !== "object" || value === null || typeof parsed !== "object" || parsed === null) return false;
  if (Array.isArray(parsed)) {
    if (!Array.isArray(value) || Object.getPrototypeOf(value) !== Array.prototype || value.length !== parsed.length || "toJSON" in value) return false;
    for (let i = 0; i < parsed.length; i++) if (!sameJson(value[i], parsed[i])) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if ((proto !== Object.prototype && proto !== null) || Array.isArray(value)) return false;
  return sameFields(value as Record<string, unknown>, parsed);
}

/**
 * `sameJson` for the fields of an object whose prototype is known not to change its JSON (a
 * Session: its methods live on its prototype, its `id` is an own enumerable property).
 */
export function sameFields(value: Record<string, unknown>, parsed: { [key: string]: JsonValue }): boolean {
  if ("toJSON" in value) return false; // own or inherited: JSON.stringify would call it
  // Object.keys: the own enumerable keys, which JSON.stringify writes. (Asking
  // propertyIsEnumerable of each key instead is a call into C++, slower than the whole rest.)
  const keys = Object.keys(value);
  let count = 0;
  for (const key in parsed) count++;
  if (keys.length !== count) return false;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (!Object.hasOwn(parsed, key) || !sameJson(value[key], parsed[key])) return false;
  }
  return true;
}
