import { v4 as uuidv4 } from "uuid";
import { SessionUsageError } from "./errors";
import { SessionCookie, type SessionCookieInit, type SessionLifetime } from "./session-cookie";
import { sessionJson } from "./session-json";

/**
 * The fields of a session. Extend it by declaration merging to type them:
 *
 * ```ts
 * declare module "sessionbox" {
 *   interface SessionData { userId: string; views: number }
 * }
 * ```
 * `req.session.userId` is then `string | undefined`, and assigning a number is a type error.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface SessionData {}

/** What a store needs to know about a session besides its data. */
export interface SessionState {
  /** The id the session was loaded (or last saved) under, or `null` when nothing is stored for it. */
  readonly loadedId: string | null;
  /** `destroy()` or `regenerate()` ended the session stored under `loadedId`: the store removes it. */
  readonly destroyed: boolean;
  /**
   * `regenerate()` made it, so its data may come from the session stored under `loadedId`: a
   * store saves it only if that one still exists (it may have been signed out meanwhile).
   */
  readonly regenerated: boolean;
}

/** What `regenerate` carries over: nothing (default), everything (`true`), or the listed keys. */
export type RegenerateKeep = boolean | readonly string[];

/** Node-style callback of the methods below: called once, on a later turn, with `null` or an error. */
export type SessionCallback = (err: Error | null) => void;

/** What serves a session during a request (the middleware): the methods that need its store and response. */
export interface SessionOwner {
  /** Makes `replacement` the request's session in place of `session`. */
  replace(session: Session, replacement: Session): void;
  save(session: Session): Promise<void>;
  reload(session: Session): Promise<void>;
}

/** Names that are never data: assigning them is ignored, stored data under them is not loaded. */
const RESERVED = new Set(["id", "cookie", "regenerate", "destroy", "save", "reload", "touch", "resetMaxAge", "__proto__"]);

/**
 * A session: a plain dictionary that always holds a unique `id`, with express-session's
 * methods. `Object.keys(session)` and `JSON.stringify(session)` show `id` and your keys only.
 * Assigning `id`, `cookie`, a method or `__proto__` is ignored, so merging untrusted objects into
 * a session (`Object.assign(req.session, req.body)`) can neither store them nor break the methods.
 */
export class Session {
  /** The session's id: a random UUID v4. Read-only; `regenerate()` gives the request a session with a new one. */
  declare readonly id: string;
  [key: string]: unknown;

  #id: string;
  #loadedId: string | null;
  #destroyed = false;
  #regenerated = false;
  #cookie: SessionCookie;
  #owner: SessionOwner | undefined = undefined;
  /** What the store that loaded the session remembers of it (see `setStoreState`). */
  #storeState: { store: object; value: unknown } | undefined = undefined;
  /** The session's JSON, made by the middleware just before the store's dump (see `lendJson`). */
  #json: string | undefined = undefined;

  /**
   * Rebuilds a session that a store loaded: `new Session({ id, ...data }, cookie)`. Reserved keys
   * in `data` are ignored. `cookie`: what the store knows of its cookie (its lifetime, attributes).
   */
  constructor(data: { id: string } & Record<string, unknown>, cookie?: SessionCookieInit) {
    const id = data?.id;
    if (typeof id !== "string" || id === "") {
      throw new TypeError("new Session(data) needs data.id, a non-empty string (use Session.empty() for a new session)");
    }
    this.#id = id;
    this.#loadedId = id;
    this.#cookie = new SessionCookie(cookie);
    // Own and enumerable, so it is in Object.keys and JSON; assigning it is ignored.
    Object.defineProperty(this, "id", Session.#idProperty);
    for (const key of Object.keys(data)) {
      if (!RESERVED.has(key)) this[key] = data[key];
    }
  }

  /** One accessor for every session's `id` (a function per session would give each its own hidden class). */
  static readonly #idProperty: PropertyDescriptor = {
    enumerable: true,
    get(this: Session): string {
      return this.#id;
    },
    set: ignore,
  };

  /** A new, empty session with a fresh random id. Nothing is saved for it until it holds data. */
  static empty(cookie?: SessionCookieInit): Session {
    const session = new Session({ id: uuidv4() }, cookie);
    session.#loadedId = null;
    return session;
  }

  /** What the store needs besides the data: the id it was loaded under and whether that session ended. */
  static stateOf(session: Session): SessionState {
    return { loadedId: session.#loadedId, destroyed: session.#destroyed, regenerated: session.#regenerated };
  }

  /** The lifetime chosen for the session's cookie, and whether it is to be issued again now. */
  static lifetimeOf(session: Session): SessionLifetime {
    return SessionCookie.lifetimeOf(session.#cookie);
  }

  /**
   * Keeps what a store saw when it loaded or saved the session (what `dump` compares with), out
   * of the session's keys, JSON and copies.
   */
  static setStoreState(session: Session, store: object, value: unknown): void {
    session.#storeState = { store, value };
  }

  /** What `setStoreState` kept on `session` for `store`, if anything. */
  static storeState(session: Session, store: object): unknown {
    const state = session.#storeState;
    return state !== undefined && state.store === store ? state.value : undefined;
  }

  /** The session's JSON as a store saves it (`sessionJson`): the one the middleware made for this dump, if it did. */
  static json(session: Session): string {
    return session.#json ?? (sessionJson(session, 0) as string);
  }

  /**
   * Called by the middleware around a store's dump: `json` is the session's JSON, made just
   * before for its own change check, so that `Session.json` need not make it again; `undefined`
   * once the dump has returned.
   */
  static lendJson(session: Session, json: string | undefined): void {
    session.#json = json;
  }

  /** `true` when the session holds no data besides its id. */
  static isEmpty(session: Session): boolean {
    for (const key in session) if (key !== "id" && Object.hasOwn(session, key)) return false;
    return true;
  }

  /** Called by the middleware: `owner` serves the session's methods for this request. */
  static serve(session: Session, owner: SessionOwner): void {
    session.#owner = owner;
  }

  /**
   * After a dump that succeeded: what is stored is now the session under its id (or, for a
   * destroyed and empty session, nothing at all).
   */
  static saved(session: Session): void {
    const gone = session.#destroyed && Session.isEmpty(session);
    session.#loadedId = gone ? null : session.#id;
    session.#destroyed = false;
    session.#regenerated = false;
    SessionCookie.saved(session.#cookie);
  }

  /**
   * The session that replaces `session` on `regenerate`: a new id, the data that `keep` says,
   * and the old one's place in the store, which the store removes when it saves the new one.
   */
  static regenerated(session: Session, keep: RegenerateKeep): Session {
    const next = Session.empty();
    next.#loadedId = session.#loadedId;
    next.#destroyed = session.#loadedId !== null;
    next.#regenerated = session.#loadedId !== null;
    next.#storeState = session.#storeState;
    next.#cookie = SessionCookie.fresh(session.#cookie, keep === true ? Session.lifetimeOf(session).lifetime : undefined);
    const keys = keep === true ? Object.keys(session) : keep === false ? [] : keep;
    for (const key of keys) if (key !== "id" && Object.hasOwn(session, key)) next[key] = session[key];
    return next;
  }

  /**
   * A session that a fallback store found, moving into another store: `fresh` (that store's new
   * session) with `old`'s data and cookie lifetime, replacing `old`'s id (so it is saved even if
   * emptied on this request, and the old one removed).
   */
  static moved(old: Session, fresh: Session): Session {
    for (const key of Object.keys(old)) if (key !== "id") fresh[key] = old[key];
    fresh.#loadedId = old.#loadedId;
    fresh.#destroyed = old.#loadedId !== null;
    fresh.#cookie = SessionCookie.fresh(fresh.#cookie, Session.lifetimeOf(old).lifetime);
    return fresh;
  }

  /** The session's cookie: `maxAge` and `expires` can be set for this session ("remember me"). */
  get cookie(): SessionCookie {
    return this.#cookie;
  }
  set cookie(_: unknown) {}

  /**
   * Starts a new session with a new id, as express-session's does: call it on sign-in and
   * sign-out (an id planted before sign-in is then worthless). `req.session` becomes a new,
   * empty session (`{ keep: true }` carries all data over, `{ keep: ["cart"] }` the listed
   * keys); this object keeps its data; the old id is removed from the store when the new
   * session is saved. Resolves (or calls back) once `req.session` is the new session.
   */
  regenerate(callback?: SessionCallback): Promise<void> | undefined;
  regenerate(options: { keep?: RegenerateKeep }, callback?: SessionCallback): Promise<void> | undefined;
  regenerate(options?: { keep?: RegenerateKeep } | SessionCallback, callback?: SessionCallback): Promise<void> | undefined {
    if (typeof options === "function") [options, callback] = [undefined, options];
    const keep = options?.keep ?? false;
    return settle(callback, () => Session.#ownerOf(this, "regenerate").replace(this, Session.regenerated(this, keep)));
  }

  /**
   * Ends the session: its data is emptied and the store removes it (now where it can, else at the
   * end of the request), and the browser's cookie is expired. Data written afterwards starts a
   * new session with a new id.
   */
  destroy(callback?: SessionCallback): Promise<void> | undefined {
    for (const key of Object.keys(this)) if (key !== "id") delete this[key];
    this.#destroyed = true;
    this.#regenerated = false; // its data is gone: what is written next is a new session's
    this.#id = uuidv4();
    this.#cookie = SessionCookie.fresh(this.#cookie, undefined);
    return settle(callback, () => this.#owner?.save(this));
  }

  /**
   * Saves the session now where the store can (server-side stores write at once, so code outside
   * a response, such as a socket.io event, can save); changes made afterwards are still saved at
   * the end of the response. Without a callback the Promise may be left unawaited: a failure
   * then goes nowhere, as with express-session.
   */
  save(callback?: SessionCallback): Promise<void> | undefined {
    return settle(callback, () => Session.#ownerOf(this, "save").save(this));
  }

  /** Reads the session again from its store (CookieStore: from the request's cookie); `req.session` becomes what was read. */
  reload(callback?: SessionCallback): Promise<void> | undefined {
    return settle(callback, () => Session.#ownerOf(this, "reload").reload(this));
  }

  /** Issues the cookie again at the end of the request, with the session's whole lifetime. */
  touch(): this {
    SessionCookie.renew(this.#cookie);
    return this;
  }

  /** Same as `touch()`: the cookie's remaining lifetime goes back to its whole lifetime. */
  resetMaxAge(): this {
    return this.touch();
  }

  static #ownerOf(session: Session, method: string): SessionOwner {
    if (session.#owner === undefined) {
      throw new SessionUsageError(`session.${method}() needs the sessions() middleware: call it on req.session, in a request the middleware served`);
    }
    return session.#owner;
  }
}

/**
 * Runs `work` now (so `req.session` is up to date when the call returns) and reports its outcome
 * once, on a later turn: to `callback`, or as the returned Promise.
 */
function settle(callback: SessionCallback | undefined, work: () => void | Promise<void>): Promise<void> | undefined {
  let done: Promise<void>;
  try {
    done = Promise.resolve(work());
  } catch (err) {
    done = Promise.reject(err);
  }
  if (callback === undefined) {
    done.catch(ignore); // an unawaited Promise that rejects must not end the process
    return done;
  }
  done.then(
    () => callback(null),
    (err: Error) => callback(err),
  );
  return undefined;
}

function ignore(): void {}

// Names that are never data: methods, `cookie` and `__proto__` ignore assignment, so a merge of
// untrusted data (`Object.assign(req.session, req.body)`) cannot shadow a method or swap the
// session's prototype (which would expose the attacker's object's keys through the session).
for (const name of ["regenerate", "destroy", "save", "reload", "touch", "resetMaxAge"] as const) {
  const method = Session.prototype[name];
  Object.defineProperty(Session.prototype, name, { configurable: true, enumerable: false, get: () => method, set: ignore });
}
Object.defineProperty(Session.prototype, "__proto__", {
  configurable: false,
  enumerable: false,
  get(this: Session) {
    return Object.getPrototypeOf(this);
  },
  set: ignore,
});
