import { randomBytes } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Cookie } from "./cookie";
import { SessionEndedError, SessionTooLargeError } from "./errors";
import { cookieEnd, idleTimeout } from "./expiry";
import { Session } from "./session";
import { sessionJson } from "./session-json";
import { SignedIdCookie } from "./signed-id";
import type { SessionContext, SessionStore } from "./store";
import { type CommonStoreOptions, cookieInit, resolveCount, resolveStoreOptions, type StoreSettings } from "./store-options";

export interface MemoryStoreOptions extends CommonStoreOptions {
  /** Signs the id cookie. Default: a random secret per process (sessions die with the process anyway). */
  secret?: string | readonly string[];
  /** Most sessions kept; the least recently used is evicted beyond it. Default 10000. */
  max?: number;
  /**
   * Most bytes the sessions kept may take, estimated from their JSON; the least recently used are
   * evicted beyond it, and a session bigger than this on its own is refused. Default 33554432 (32 MiB).
   */
  maxBytes?: number;
}

/** A stored session: one JSON string per field, so concurrent requests changing different fields both persist. */
interface Entry {
  fields: Map<string, string>;
  created: number;
  /** When the cookie was last issued (and the TTL last reset), ms since the epoch. */
  touched: number;
  /** The cookie lifetime the session chose (`req.session.cookie.maxAge`), if any. */
  lifetime: number | null | undefined;
}

/** An entry's bytes besides its id, keys and JSON values: roughly, the objects that hold them. */
const ENTRY_OVERHEAD = 200;

/** What the store remembers between `load` and `dump` of one request (Session.setStoreState). */
interface Loaded {
  /** The fields as loaded: a save writes only the fields that differ from these. */
  fields: Map<string, string>;
  /** The browser's cookie is signed with the first secret. */
  current: boolean;
}

/**
 * Keeps sessions in process memory, bounded by `max` sessions and `maxBytes` (least recently
 * used evicted) and expired by TTL. For development and tests: sessions are lost on restart and not shared
 * between processes.
 */
export class MemoryStore implements SessionStore {
  readonly async = false;
  readonly maxAge: number;
  readonly absoluteTimeout: number | null;
  readonly touchAfter: number;
  private readonly settings: StoreSettings;
  readonly maxBytes: number;
  private readonly cookie: SignedIdCookie;
  private readonly cache: LRUCache<string, Entry>;

  constructor(options: MemoryStoreOptions = {}) {
    const owner = "MemoryStore";
    const settings = (this.settings = resolveStoreOptions(options, ["secret", "max", "maxBytes", "name", "cookie", "maxAge", "absoluteTimeout", "touchAfter"], owner, () => randomBytes(32).toString("base64url")));
    ({ maxAge: this.maxAge, absoluteTimeout: this.absoluteTimeout, touchAfter: this.touchAfter } = settings);
    const max = resolveCount(options.max, 10_000, "max", "sessions", owner);
    this.maxBytes = resolveCount(options.maxBytes, 32 * 1024 * 1024, "maxBytes", "bytes", owner);
    this.cookie = new SignedIdCookie(settings.cookie, settings.secrets);
    // TTLs on the wall clock (not performance.now) so that idle and absolute timeouts agree,
    // with no cached "now" so that an expiry is seen on the very next request.
    this.cache = new LRUCache<string, Entry>({ max, maxSize: this.maxBytes, ttl: Math.ceil(this.maxAge), ttlResolution: 0, perf: { now: () => Date.now() } });
  }

  /** Sessions currently kept. */
  get size(): number {
    return this.cache.size;
  }

  /** Bytes the sessions kept take, as estimated for `maxBytes`. */
  get bytes(): number {
    return this.cache.calculatedSize;
  }

  load(ctx: SessionContext): Session {
    const signed = this.cookie.read(ctx.cookies);
    const entry = signed === undefined ? undefined : this.cache.get(signed.id);
    // An entry lives as long as its cookie (see dump), never past absoluteTimeout: the cache drops it then.
    if (signed === undefined || entry === undefined) return Session.empty(cookieInit(this.settings, ctx.req));
    const data: { id: string } & Record<string, unknown> = Object.create(null);
    for (const [key, json] of entry.fields) data[key] = JSON.parse(json);
    data.id = signed.id;
    const session = new Session(data, cookieInit(this.settings, ctx.req, entry));
    // The fields as loaded: writes replace entry.fields with a changed copy, never change this one.
    Session.setStoreState(session, this, { fields: entry.fields, current: signed.current } satisfies Loaded);
    return session;
  }

  /**
   * Saves what changed and returns the signed id cookie, with Max-Age = the session's remaining
   * life; or no cookie (`[]`) while the browser's cookie is fresh. A session that ended while
   * this request used it is never written again (see `SessionEndedError`).
   */
  dump(session: Session, ctx: SessionContext): Cookie | Cookie[] {
    const { loadedId, regenerated } = Session.stateOf(session);
    const id = session.id;
    if (loadedId !== null && loadedId !== id) {
      const existed = this.cache.delete(loadedId);
      if (Session.isEmpty(session)) return this.cookie.expire(ctx.req);
      // Its data may come from the session it replaces: if that one ended meanwhile, so does this.
      if (regenerated && !existed) throw new SessionEndedError();
    }
    const now = Date.now();
    const { lifetime, renewed } = Session.lifetimeOf(session);
    // The entry as it is now: a concurrent request may have changed other fields since our
    // load, so only the fields this request changed are written (compared with what it loaded).
    const loaded = loadedId === id ? (Session.storeState(session, this) as Loaded | undefined) : undefined;
    const current = loadedId === id ? this.cache.get(id) : undefined;
    if (loadedId === id && current === undefined) {
      // Ended (signed out elsewhere, expired, evicted) while this request used it.
      const loadedFields = loaded?.fields ?? new Map<string, string>();
      if (this.changedFields(session, loadedFields, loadedFields) !== undefined || renewed) throw new SessionEndedError();
      return this.cookie.expire(ctx.req);
    }
    const before = current?.fields ?? new Map<string, string>();
    const fields = this.changedFields(session, before, current && loaded?.fields) ?? before;
    const created = current?.created ?? now;
    // Re-issued after touchAfter (or under the first secret, or with a new lifetime), if a whole second is left for it.
    const due = current === undefined || loaded?.current !== true || renewed || current.lifetime !== lifetime || now - current.touched >= this.touchAfter;
    const touch = due && (current === undefined || cookieEnd(created, idleTimeout(lifetime, this.maxAge), this.absoluteTimeout, now) > now);
    const entry: Entry = touch ? { fields, created, touched: now, lifetime } : { fields, created, touched: (current as Entry).touched, lifetime: (current as Entry).lifetime };
    // The entry lives as long as the cookie the browser holds (a new one, or the last one issued).
    const end = cookieEnd(created, idleTimeout(entry.lifetime, this.maxAge), this.absoluteTimeout, entry.touched);
    if (end <= now) {
      this.cache.delete(id);
      return this.cookie.expire(ctx.req);
    }
    if (touch || fields !== before) this.keep(id, entry, end - now);
    Session.setStoreState(session, this, { fields, current: true } satisfies Loaded);
    if (!touch) return [];
    return this.cookie.issue(ctx.req, id, lifetime === null ? undefined : end - now);
  }

  /**
   * Stores `entry` for `ttl` ms as a new object, so the cache counts its bytes again. A session
   * bigger than `maxBytes` on its own is refused: the cache would drop it.
   */
  private keep(id: string, entry: Entry, ttl: number): void {
    let size = ENTRY_OVERHEAD + id.length;
    for (const [key, json] of entry.fields) size += key.length + json.length;
    if (size > this.maxBytes) {
      throw new SessionTooLargeError(
        `MemoryStore cannot keep the session: it takes about ${size} bytes, over maxBytes (${this.maxBytes}). Keep less in the session, raise maxBytes, or use RedisStore`,
      );
    }
    this.cache.set(id, entry, { size, ttl });
  }

  /**
   * `fields` with the values that differ from what was loaded (`before`; all of them for a new
   * entry), or `undefined` when none do. A changed copy: the entry changes only when the caller
   * assigns it, once every value has been turned into JSON (so a refused value changes nothing),
   * and the Map a request loaded stays as it was loaded.
   */
  private changedFields(session: Session, fields: Map<string, string>, before: Map<string, string> | undefined): Map<string, string> | undefined {
    let copy: Map<string, string> | undefined;
    const change = () => (copy ??= new Map(fields));
    for (const key of Object.keys(session)) {
      if (key === "id") continue;
      const json = sessionJson(session[key], 1);
      if (json === undefined) {
        if (fields.has(key)) change().delete(key);
      } else if (before?.get(key) !== json) change().set(key, json);
    }
    if (before) for (const key of before.keys()) if (!Object.hasOwn(session, key) && fields.has(key)) change().delete(key);
    return copy;
  }

  /** Nothing to release; present so that every store can be closed the same way. */
  async close(): Promise<void> {
    this.cache.clear();
  }
}
