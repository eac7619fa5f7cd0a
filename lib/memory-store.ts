import { randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Cookie, CookieOptions } from "./cookie";
import { checkKeys, pastAbsoluteTimeout, remainingLife, resolveCount, resolveDuration, resolveSecrets, resolveTouchAfter } from "./options";
import { keepOnSession, keptOnSession, Session } from "./session";
import { SignedIdCookie } from "./signed-id";
import type { SessionContext, SessionStore } from "./store";

export interface MemoryStoreOptions {
  /** Signs the id cookie. Default: a random secret per process (sessions die with the process anyway). */
  secret?: string | readonly string[];
  /** Most sessions kept; the least recently used is evicted beyond it. Default 10000. */
  max?: number;
  /** Cookie name. Default `"session"`. */
  name?: string;
  /** Cookie attributes. Defaults: HttpOnly, SameSite=Lax, Path=/, Secure when the request is secure. */
  cookie?: CookieOptions;
  /** Idle timeout in ms: the entry's TTL and the cookie's Max-Age, both slid when the session is touched (see `touchAfter`). Default 1 day. */
  maxAge?: number;
  /** Time since creation (or regenerate) after which the session ends, in ms; `null` for none. Default 7 days. */
  absoluteTimeout?: number | null;
  /**
   * A session's cookie is re-issued, and its entry's TTL slid, only when it was last issued at
   * least this many ms ago; in between, requests that read it cost no Set-Cookie. Shorter than
   * maxAge; `0` touches on every request. Default min(60 s, maxAge / 10).
   */
  touchAfter?: number;
}

const OPTIONS = ["secret", "max", "name", "cookie", "maxAge", "absoluteTimeout", "touchAfter"] as const;
const DAY = 86_400_000;

/** The fields a session had when it was loaded (to write only what changed): kept on the session (keepOnSession) under this key. */
const LOADED = Symbol("MemoryStore loaded");

/** A stored session: one JSON string per field, so concurrent requests changing different fields both persist. */
interface Entry {
  fields: Map<string, string>;
  created: number;
  /** When the cookie was last issued (and the TTL last reset), ms since the epoch. */
  touched: number;
}

/**
 * Keeps sessions in process memory, bounded by `max` (least recently used evicted) and
 * expired by TTL. For development and tests: sessions are lost on restart and not shared
 * between processes.
 */
export class MemoryStore implements SessionStore {
  readonly async = false;
  readonly maxAge: number;
  readonly absoluteTimeout: number | null;
  readonly touchAfter: number;
  private readonly cookie: SignedIdCookie;
  private readonly cache: LRUCache<string, Entry>;

  constructor(options: MemoryStoreOptions = {}) {
    const owner = "MemoryStore";
    checkKeys(options, OPTIONS, owner);
    const secrets = options.secret === undefined ? [randomBytes(32).toString("base64url")] : resolveSecrets(options.secret, owner);
    const max = resolveCount(options.max, 10_000, "max", "sessions", owner);
    this.maxAge = resolveDuration(options.maxAge, DAY, "maxAge", owner) as number;
    this.absoluteTimeout = resolveDuration(options.absoluteTimeout, 7 * DAY, "absoluteTimeout", owner, true);
    this.touchAfter = resolveTouchAfter(options.touchAfter, this.maxAge, owner);
    this.cookie = new SignedIdCookie(options.name ?? "session", options.cookie, secrets, owner);
    // TTLs on the wall clock (not performance.now) so that idle and absolute timeouts agree,
    // with no cached "now" so that an expiry is seen on the very next request.
    this.cache = new LRUCache<string, Entry>({ max, ttl: Math.ceil(this.maxAge), ttlResolution: 0, perf: { now: () => Date.now() } });
  }

  /** Sessions currently kept. */
  get size(): number {
    return this.cache.size;
  }

  load(ctx: SessionContext): Session {
    const id = this.cookie.read(ctx.cookies);
    const entry = id === undefined ? undefined : this.cache.get(id);
    if (id === undefined || entry === undefined) return Session.empty();
    if (pastAbsoluteTimeout(entry.created, this.absoluteTimeout, Date.now())) {
      this.cache.delete(id);
      return Session.empty();
    }
    const data: { id: string } & Record<string, unknown> = Object.create(null);
    for (const [key, json] of entry.fields) data[key] = JSON.parse(json);
    data.id = id;
    const session = new Session(data);
    // The fields as loaded: writes replace entry.fields with a changed copy, never change this one.
    keepOnSession(session, LOADED, entry.fields);
    return session;
  }

  /**
   * Saves what changed and returns the signed id cookie, with Max-Age = the session's remaining
   * life; or no cookie (`[]`) while the browser's cookie is fresh (see `needsTouch`).
   */
  dump(session: Session, ctx: SessionContext): Cookie | Cookie[] {
    const { loadedId, destroyed } = Session.stateOf(session);
    const id = session.id;
    if (loadedId !== null && loadedId !== id) this.cache.delete(loadedId);
    if (destroyed && Session.isEmpty(session)) return this.cookie.expire(ctx.req);
    const now = Date.now();
    // The entry as it is now: a concurrent request may have changed other fields since our
    // load, so only the fields this request changed are written (compared with what it loaded).
    // It is changed in place: the cache's TTL is reset only by `set`, which only a touch calls.
    const current = loadedId === id ? this.cache.get(id) : undefined;
    const entry = current ?? { fields: new Map<string, string>(), created: now, touched: now };
    this.write(session, entry, current && keptOnSession(session, LOADED) as Map<string, string> | undefined);
    if (current !== undefined && !this.needsTouch(current, id, now, ctx)) return [];
    entry.touched = now;
    this.cache.set(id, entry);
    const lifetime = remainingLife(entry.created, this.maxAge, this.absoluteTimeout, now);
    return this.cookie.issue(ctx.req, id, lifetime, ctx.cookies);
  }

  /**
   * Whether a stored session's cookie is issued again (and its TTL slid): once `touchAfter` has
   * passed since it last was, or when the browser's cookie is signed with an older secret.
   * Otherwise the browser's cookie, and the entry's TTL, still run from the last touch.
   */
  private needsTouch(entry: Entry, id: string, now: number, ctx: SessionContext): boolean {
    return now - entry.touched >= this.touchAfter || !this.cookie.isCurrent(ctx.cookies, id);
  }

  /**
   * Writes into `entry` the fields that differ from what was loaded (`before`; all of them for a
   * new entry). Copy on write: the first change replaces `entry.fields` with a changed copy, so
   * the Map a request loaded stays as it was loaded.
   */
  private write(session: Session, entry: Entry, before: Map<string, string> | undefined): void {
    let copy: Map<string, string> | undefined;
    const change = () => (copy ??= entry.fields = new Map(entry.fields));
    for (const key of Object.keys(session)) {
      if (key === "id") continue;
      const json = JSON.stringify(session[key]);
      if (json === undefined) {
        if (entry.fields.has(key)) change().delete(key);
      } else if (before?.get(key) !== json) change().set(key, json);
    }
    if (before) for (const key of before.keys()) if (!(key in session) && entry.fields.has(key)) change().delete(key);
  }

  /** Nothing to release; present so that every store can be closed the same way. */
  async close(): Promise<void> {
    this.cache.clear();
  }
}
