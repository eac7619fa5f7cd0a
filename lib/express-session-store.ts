/**
 * Any store written for express-session (connect-pg-simple, express-mysql-session,
 * connect-redis, connect-mongo, ...) as a SessionStore, with express-session's cookie and
 * records (SPEC §10): an express-session app and this package can share one store, each
 * reading and writing the other's sessions, during a rolling deploy or for good.
 */
import type { Cookie, CookieAttributes } from "./cookie";
import { SessionConfigError, SessionStoreUnavailableError } from "./errors";
import { ExpressSessionCookie } from "./express-session-cookie";
import { idleTimeout, pastAbsoluteTimeout, remainingLife } from "./expiry";
import { Session } from "./session";
import { isPromiseLike, type SessionContext, type SessionStore } from "./store";
import { type CommonStoreOptions, cookieInit, MIN_SECRET_LENGTH, resolveDuration, resolveStoreOptions, type StoreSettings } from "./store-options";

/**
 * A store written for express-session: its callback API. Stores that also return Promises
 * (connect-redis 9) are called through their callbacks too.
 */
export interface ExpressSessionBackend {
  get(sid: string, callback: (err: unknown, session?: unknown) => void): unknown;
  set(sid: string, session: SessionRecord, callback: (err?: unknown) => void): unknown;
  destroy(sid: string, callback: (err?: unknown) => void): unknown;
  /** Slides the session's expiry without rewriting its data; without it, an unchanged session is written with `set`. */
  touch?(sid: string, session: SessionRecord, callback: (err?: unknown) => void): unknown;
}

/**
 * A session as express-session hands it to a store: the session's data (its keys, typed loosely
 * here so that stores typed against express-session's `SessionData` fit) and express-session's
 * `cookie` object.
 */
export interface SessionRecord {
  cookie: RecordCookie;
}

/**
 * express-session's `cookie` object (its `Cookie#toJSON()`): stores read `expires` to set their
 * expiry. Written with `expires` a `Date`, as express-session does; stores that keep JSON give
 * it back as an ISO string.
 */
export interface RecordCookie extends Pick<CookieAttributes, "domain" | "path" | "httpOnly" | "sameSite" | "partitioned" | "priority"> {
  /** The lifetime the cookie was issued with, in ms; `null` for a browser-session cookie. */
  originalMaxAge: number | null;
  /** When the session expires; `null` for a browser-session cookie. */
  expires?: Date | string | null;
  /** As express-session keeps it (`"auto"` in records its apps configured so). */
  secure?: boolean | "auto";
}

export interface ExpressSessionStoreOptions extends CommonStoreOptions {
  /** The express-session store, e.g. `new (require("connect-pg-simple")(session))({ pool })`. */
  store: ExpressSessionBackend;
  /**
   * Signs the id cookie as express-session does: the first signs, all verify. The first must be
   * at least 32 characters; the others may be any express-session secret you still accept.
   */
  secret: string | readonly string[] | undefined;
  /** The cookie name. Default `"connect.sid"`, express-session's. */
  name?: string;
  /** Longest wait for each call to the store, in ms; past it the request fails with a 503. Default 2000. */
  timeout?: number;
}

const OWNER = "ExpressSessionStore";
const OPTIONS = ["store", "secret", "name", "cookie", "maxAge", "absoluteTimeout", "touchAfter", "timeout"];
/** Node runs a longer timer after 1 ms instead. */
const MAX_TIMER = 2_147_483_647;

/**
 * The field of a record's `cookie` object holding when the session was created (ms since the
 * epoch), for `absoluteTimeout`. In the cookie object, an express-session app never sees it as
 * session data; it drops it when it rewrites a record, and a record without it counts as
 * created at the first request this store serves for it (and is stamped at once).
 */
export const CREATED_KEY = "sessionbox:created";

/** What the store remembers between `load` and `dump` (Session.setStoreState). */
interface Loaded {
  /** The session's JSON as loaded: an unchanged session is only touched. */
  json: string;
  created: number;
  /** The record carries `CREATED_KEY`; if not, the next save writes it. */
  stamped: boolean;
  /** When the record's expiry was last set, if its cookie object tells. */
  touched: number | undefined;
  /** The cookie lifetime the record holds (`undefined`: the store's maxAge). */
  lifetime: number | null | undefined;
  /** The browser's cookie is signed with the first secret. */
  current: boolean;
}

/**
 * An express-session store as a SessionStore. The cookie carries the id signed as
 * express-session signs it, so forged or unsigned ids never reach the store; records are the
 * session's data plus express-session's `cookie` object, whose `expires` the store uses as
 * its expiry.
 *
 * Loading is one `get`. Saving writes the whole record with `set` when the session changed,
 * so of two concurrent requests that change one session, the later save wins whole (as under
 * express-session); an unchanged session is `touch`ed (or `set`, for a store without `touch`)
 * once `touchAfter` has passed, and costs nothing in between. Each call waits at most
 * `timeout`, then fails with a 503 `SessionStoreUnavailableError`.
 */
export class ExpressSessionStore implements SessionStore {
  readonly async = true;
  /** The express-session store. */
  readonly store: ExpressSessionBackend;
  readonly maxAge: number;
  readonly absoluteTimeout: number | null;
  readonly touchAfter: number;
  readonly timeout: number;
  private readonly settings: StoreSettings;
  private readonly cookie: ExpressSessionCookie;

  constructor(options: ExpressSessionStoreOptions) {
    const [signing, ...older] = splitSecrets(options?.secret);
    const settings = (this.settings = resolveStoreOptions(withDefaults(options, signing), OPTIONS, OWNER));
    ({ maxAge: this.maxAge, absoluteTimeout: this.absoluteTimeout, touchAfter: this.touchAfter } = settings);
    this.timeout = resolveDuration(options.timeout, 2000, "timeout", OWNER) as number;
    if (this.timeout > MAX_TIMER) {
      throw new SessionConfigError(`${OWNER}: timeout must be at most ${MAX_TIMER} ms (Node's longest timer; a few seconds is usual), got ${this.timeout}`);
    }
    this.store = checkBackend(options.store);
    this.cookie = new ExpressSessionCookie(settings.cookie, [...settings.secrets, ...older]);
  }

  /**
   * The request's session: a new empty one when the request has no validly signed id (the store
   * is not asked then), else the stored one, or a new empty one when the store has none or it is
   * past `absoluteTimeout`.
   */
  load(ctx: SessionContext): Session | Promise<Session> {
    const signed = this.cookie.read(ctx.cookies);
    if (signed === undefined) return Session.empty(cookieInit(this.settings, ctx.req));
    return this.call("load", "get", signed.id).then((record) => {
      if (record === null || typeof record !== "object" || Array.isArray(record)) return Session.empty(cookieInit(this.settings, ctx.req));
      const stored = record as Record<string, unknown>;
      const now = Date.now();
      const stamp = (stored.cookie as Record<string, unknown> | null | undefined)?.[CREATED_KEY];
      const stamped = typeof stamp === "number" && Number.isFinite(stamp);
      const created = stamped ? stamp : now;
      if (pastAbsoluteTimeout(created, this.absoluteTimeout, now)) return Session.empty(cookieInit(this.settings, ctx.req));
      const data: { id: string } & Record<string, unknown> = Object.create(null);
      for (const key of Object.keys(stored)) if (key !== "cookie") data[key] = stored[key];
      data.id = signed.id;
      const touched = touchedAt(stored.cookie);
      const lifetime = lifetimeOf(stored.cookie, this.maxAge);
      const session = new Session(data, cookieInit(this.settings, ctx.req, { lifetime, created, touched: touched ?? now }));
      const loaded: Loaded = { json: JSON.stringify(session), created, stamped, touched, lifetime, current: signed.current };
      Session.setStoreState(session, this, loaded);
      return session;
    });
  }

  /**
   * Writes the record when the session changed (`set`), or slides its expiry when `touchAfter`
   * has passed (`touch`), and returns the id cookie; while the browser's cookie is fresh and
   * nothing changed, returns no cookie and calls nothing. Deletes the id the session was loaded
   * under when `regenerate()` or `destroy()` replaced it.
   */
  dump(session: Session, ctx: SessionContext): Cookie[] | Promise<Cookie | Cookie[]> {
    const { loadedId, destroyed } = Session.stateOf(session);
    const id = session.id;
    const removed = loadedId !== null && loadedId !== id ? this.call("save", "destroy", loadedId) : Promise.resolve();
    if (destroyed && Session.isEmpty(session)) return removed.then(() => this.cookie.expire(ctx.req));
    const now = Date.now();
    const loaded = loadedId === id ? (Session.storeState(session, this) as Loaded | undefined) : undefined;
    const json = Session.json(session);
    const { lifetime, renewed } = Session.lifetimeOf(session);
    const changed = loaded === undefined || !loaded.stamped || loaded.json !== json || renewed || loaded.lifetime !== lifetime;
    // Nothing to send: answer synchronously, so the response is not held for a tick.
    if (!changed && loaded.current && !this.touchDue(loaded.touched, now)) return [];
    const created = loaded?.created ?? now;
    const idle = idleTimeout(lifetime, this.maxAge);
    const remaining = Math.ceil(Math.max(0, remainingLife(created, idle, this.absoluteTimeout, now)));
    const cookie = this.cookie.issue(ctx.req, id, lifetime === null ? undefined : remaining);
    const { id: _id, cookie: _reserved, ...data } = JSON.parse(json) as Record<string, unknown>;
    const stamped: RecordCookie & Record<string, unknown> = { ...this.recordCookie(cookie, lifetime === null ? null : idle, now + remaining), [CREATED_KEY]: created };
    const record: SessionRecord & Record<string, unknown> = { cookie: stamped, ...data };
    const write = changed || this.store.touch === undefined ? this.call("save", "set", id, record) : this.call("save", "touch", id, record);
    return Promise.all([write, removed]).then(() => {
      Session.setStoreState(session, this, { json, created, stamped: true, touched: now, lifetime, current: true } satisfies Loaded);
      return cookie;
    });
  }

  /**
   * express-session's `cookie` object for a record: `originalMaxAge` the session's lifetime and
   * `expires` when it ends; both `null` for a cookie that ends with the browser (the store then
   * keeps the record for its own default time, and this store enforces `maxAge`).
   */
  private recordCookie(cookie: Cookie, originalMaxAge: number | null, expires: number): RecordCookie {
    const { secure, httpOnly, domain, path, sameSite, partitioned, priority } = cookie.attributes;
    const out: RecordCookie = { originalMaxAge, expires: originalMaxAge === null ? null : new Date(expires), secure, httpOnly, domain, path, sameSite, partitioned, priority };
    // As express-session's JSON has them: attributes that are not set are left out.
    for (const key of Object.keys(out) as (keyof RecordCookie)[]) if (out[key] === undefined) delete out[key];
    return out;
  }

  /**
   * Whether an unchanged session's expiry is slid and its cookie re-issued: once `touchAfter` has
   * passed since it last was, or when the record does not tell (or tells a time in the future,
   * from an instance whose clock is ahead). Stores whose `touch` does not rewrite the record
   * (connect-redis, connect-pg-simple) leave the time of the last `set` in it, so after
   * `touchAfter` such a session is touched on each request, as express-session touches it.
   */
  private touchDue(touched: number | undefined, now: number): boolean {
    if (touched === undefined) return true;
    const elapsed = now - touched;
    return elapsed >= this.touchAfter || elapsed < 0;
  }

  /**
   * One call to the store, through its callback, bounded by `timeout`. A late callback is
   * ignored; a callback called twice counts once. As in express-session, `get` failing with
   * `code: "ENOENT"` means there is no such session.
   */
  private call(doing: "load" | "save", method: "get" | "set" | "destroy" | "touch", sid: string, record?: SessionRecord): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const fail = (what: string, cause?: unknown) => reject(this.unavailable(doing, what, cause));
      const timer = setTimeout(() => fail(`the store's ${method}() did not call back within ${this.timeout} ms`), this.timeout);
      const done = (err?: unknown, value?: unknown) => {
        clearTimeout(timer);
        if (!err || (method === "get" && (err as { code?: unknown }).code === "ENOENT")) resolve(err ? undefined : value);
        else fail(`the store's ${method}() failed: ${err instanceof Error ? err.message : String(err)}`, err);
      };
      try {
        const fn = this.store[method] as (...args: unknown[]) => unknown;
        const returned = record === undefined ? fn.call(this.store, sid, done) : fn.call(this.store, sid, record, done);
        // A store that also returns a Promise: its rejection is the failure, never an unhandled one.
        if (isPromiseLike(returned)) Promise.resolve(returned).catch((err: unknown) => done(err ?? new Error("its Promise was rejected")));
      } catch (err) {
        done(err);
      }
    });
  }

  private unavailable(doing: "load" | "save", what: string, cause: unknown): SessionStoreUnavailableError {
    const outcome = doing === "load" ? "could not load the session" : "could not save the session (it may or may not be saved)";
    return new SessionStoreUnavailableError(
      `${OWNER} ${outcome}: ${what}. Check that the store's database is running and reachable, or raise the timeout option if it is only slow`,
      { cause },
    );
  }
}

/**
 * `secret` as [the signing secret, ...older secrets] (`[]` when it is not a list, for
 * resolveStoreOptions to check). Only the first must be 32+ characters, so an app whose
 * express-session secret was shorter can sign with a new one and still read the old cookies.
 */
function splitSecrets(secret: unknown): string[] {
  const list = Array.isArray(secret) ? secret : [secret];
  if (typeof list[0] === "string" && list[0] !== "" && list[0].length < MIN_SECRET_LENGTH) {
    throw new SessionConfigError(
      `${OWNER}: the first secret signs new cookies and must be at least ${MIN_SECRET_LENGTH} characters; to keep accepting a shorter express-session secret, put a new long one first: secret: [newSecret, oldSecret]`,
    );
  }
  if (!Array.isArray(secret) || secret.length === 0) return [];
  secret.slice(1).forEach((value: unknown, i) => {
    if (typeof value !== "string" || value === "") {
      throw new SessionConfigError(`${OWNER}: secret[${i + 1}] must be a non-empty string (an older express-session secret whose cookies are still accepted)`);
    }
  });
  return secret as string[];
}

/** The options with express-session's cookie name by default, and only the signing secret for resolveStoreOptions to check. */
function withDefaults(options: unknown, signing: unknown): unknown {
  if (options === null || typeof options !== "object" || Array.isArray(options)) return options;
  const given = options as ExpressSessionStoreOptions;
  return { ...given, name: given.name ?? "connect.sid", ...(signing === undefined ? {} : { secret: signing }) };
}

/** The express-session store, checked for the methods this store calls. */
function checkBackend(store: unknown): ExpressSessionBackend {
  const methods = ["get", "set", "destroy"] as const;
  const candidate = store as Partial<Record<(typeof methods)[number] | "touch", unknown>> | null | undefined;
  const missing = methods.filter((method) => typeof candidate?.[method] !== "function");
  if (missing.length > 0 || (candidate?.touch !== undefined && typeof candidate.touch !== "function")) {
    const got = store === undefined ? "none was given" : `it has no ${missing.length > 0 ? missing.join(", ") : "touch function"}`;
    throw new SessionConfigError(
      `${OWNER} needs { store }: an express-session store with get, set and destroy (and touch, if any), such as new (require("connect-pg-simple")(session))({ pool }); ${got}`,
    );
  }
  return store as ExpressSessionBackend;
}

/** The lifetime a record's cookie holds: `null` for a browser-session cookie, `undefined` for the store's own `maxAge`. */
function lifetimeOf(cookie: unknown, maxAge: number): number | null | undefined {
  const { originalMaxAge } = (cookie ?? {}) as { originalMaxAge?: unknown };
  if (originalMaxAge === null) return null;
  return typeof originalMaxAge === "number" && originalMaxAge > 0 && originalMaxAge !== maxAge ? originalMaxAge : undefined;
}

/** When a record's expiry was last set: its cookie's `expires` less `originalMaxAge`, if both are there. */
function touchedAt(cookie: unknown): number | undefined {
  const { expires, originalMaxAge } = (cookie ?? {}) as { expires?: unknown; originalMaxAge?: unknown };
  if (typeof originalMaxAge !== "number" || (typeof expires !== "string" && !(expires instanceof Date))) return undefined;
  const time = new Date(expires).getTime() - originalMaxAge;
  return Number.isFinite(time) ? time : undefined;
}
