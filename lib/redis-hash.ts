/**
 * How a session is kept in a Redis hash, without Redis: the hash from a session (only the fields
 * that changed since it was loaded), and the session from a hash. RedisStore sends what this
 * computes; the tests check it without a server.
 *
 * Layout: one field per session key, holding the key's value as JSON, plus `CREATED_FIELD`,
 * `TOUCHED_FIELD` and, for a session that chose its cookie's lifetime, `LIFETIME_FIELD`.
 */
import { pastAbsoluteTimeout } from "./expiry";
import { Session } from "./session";
import type { SessionCookieInit } from "./session-cookie";
import { sessionJson } from "./session-json";

/**
 * The field holding the session's creation time (ms since the epoch). It starts with a NUL
 * character, so it cannot clash with a key your code writes in practice; a session key with
 * exactly this name is not stored. A hash without it is not a session.
 */
export const CREATED_FIELD = "\0created";

/**
 * The field holding when the session's cookie was last issued (ms since the epoch), shared by
 * every app instance, so `touchAfter` holds whichever instance serves the next request. A hash
 * without it counts as touched long ago.
 */
export const TOUCHED_FIELD = "\0touched";

/** The field holding the cookie lifetime the session chose (`req.session.cookie.maxAge`): ms, or "null" for a browser-session cookie. */
export const LIFETIME_FIELD = "\0lifetime";

const RESERVED_FIELDS = [CREATED_FIELD, TOUCHED_FIELD, LIFETIME_FIELD];

/** What is known to be stored for a session that was loaded or saved. */
export interface StoredHash {
  /** The id it is stored under. */
  id: string;
  /** JSON of each field, as stored. */
  fields: Map<string, string>;
  created: number;
  /** When the cookie was last issued; 0 when the hash has no such field. */
  touched: number;
  /** The cookie lifetime the session chose, if any. */
  lifetime: number | null | undefined;
}

/** The writes that bring the hash up to date with a session. */
export interface HashChanges {
  /** The hash is written whole: the session is new here (created or regenerated on this request). */
  whole: boolean;
  /** Fields to delete. */
  removed: string[];
  /** Field, value pairs to set. */
  set: string[];
  /** Something besides the times is written: the session's data (or its cookie's lifetime) changed. */
  changed: boolean;
  /** The stored state once the writes are done. */
  next: StoredHash;
}

/**
 * What to write for `session`, given what is stored under its id (`stored`, when that is its
 * id), and whether the cookie is touched now (which writes the touch time).
 */
export function hashChanges(session: Session, stored: StoredHash | undefined, touch: boolean, now: number): HashChanges {
  const id = session.id;
  const same = stored?.id === id ? stored : undefined;
  const created = same?.created ?? now;
  const { lifetime } = Session.lifetimeOf(session);
  const before = same?.fields ?? new Map<string, string>();
  const fields = new Map<string, string>();
  const set = same ? [] : [CREATED_FIELD, String(created)];
  const removed: string[] = [];
  for (const name of Object.keys(session)) {
    if (name === "id" || RESERVED_FIELDS.includes(name)) continue;
    const json = sessionJson(session[name], 1);
    if (json === undefined) continue;
    fields.set(name, json);
    if (before.get(name) !== json) set.push(name, json);
  }
  for (const name of before.keys()) if (!fields.has(name)) removed.push(name);
  if (lifetime !== (same?.lifetime ?? undefined)) {
    if (lifetime === undefined) removed.push(LIFETIME_FIELD);
    else set.push(LIFETIME_FIELD, String(lifetime));
  }
  const changed = removed.length > 0 || set.length > (same ? 0 : 2);
  if (touch) set.push(TOUCHED_FIELD, String(now));
  return { whole: same === undefined, removed, set, changed, next: { id, fields, created, touched: touch ? now : (same?.touched ?? now), lifetime } };
}

/**
 * The session from an `HGETALL` reply, with what is stored; `undefined` when there is none, it
 * has ended (past `absoluteTimeout`, or no creation time: destroyed or expired while another
 * request saved to it), or a field is not JSON (not written by this store: never adopted).
 */
export function sessionFromHash(
  id: string,
  reply: unknown,
  absoluteTimeout: number | null,
  now: number,
  cookie: (saved: StoredHash) => SessionCookieInit = () => ({}),
): { session: Session; stored: StoredHash } | undefined {
  const fields = new Map<string, string>(entriesOf(reply));
  const created = Number(fields.get(CREATED_FIELD));
  const touched = Number(fields.get(TOUCHED_FIELD)) || 0;
  const lifetime = parseLifetime(fields.get(LIFETIME_FIELD));
  for (const name of RESERVED_FIELDS) fields.delete(name);
  if (!(created > 0) || pastAbsoluteTimeout(created, absoluteTimeout, now)) return undefined;
  const data: { id: string } & Record<string, unknown> = Object.create(null);
  data.id = id;
  try {
    for (const [name, json] of fields) data[name] = JSON.parse(json);
  } catch {
    return undefined;
  }
  const stored = { id, fields, created, touched, lifetime };
  return { session: new Session(data, cookie(stored)), stored };
}

/** The lifetime field: ms, "null" (a browser-session cookie), or missing. Anything else counts as missing. */
function parseLifetime(value: string | undefined): number | null | undefined {
  if (value === "null") return null;
  const ms = Number(value);
  return value !== undefined && ms > 0 ? ms : undefined;
}

/** `[field, value]` pairs of an `HGETALL` reply: a flat array (RESP2) or an object (RESP3, ioredis). */
function entriesOf(reply: unknown): [string, string][] {
  if (!Array.isArray(reply)) return Object.entries(reply as Record<string, string>);
  const entries: [string, string][] = [];
  for (let i = 0; i < reply.length; i += 2) entries.push([String(reply[i]), String(reply[i + 1])]);
  return entries;
}
