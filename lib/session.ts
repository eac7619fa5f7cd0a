import { v4 as uuidv4 } from "uuid";

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
  /** The id the session was loaded under, or `null` when it was created on this request. */
  readonly loadedId: string | null;
  /** `true` once `destroy()` was called. */
  readonly destroyed: boolean;
}

/** Keys that are never data: the id and the two methods. Stored data under these names is ignored. */
const RESERVED = new Set(["id", "regenerate", "destroy", "__proto__"]);

/**
 * A session: a plain dictionary that always holds a unique `id`.
 *
 * `Object.keys(session)` and `JSON.stringify(session)` show `id` and your keys only.
 * `id` cannot be reassigned; `regenerate()` and `destroy()` are methods, not data.
 * Assigning `session.__proto__` is ignored, so merging untrusted objects into a session
 * (`Object.assign(req.session, req.body)`) cannot change what the session inherits.
 */
export class Session {
  /** The session's id: a random UUID v4. Read-only; `regenerate()` replaces it. */
  declare readonly id: string;
  [key: string]: unknown;

  #id: string;
  #loadedId: string | null;
  #destroyed = false;
  /** What the store that loaded the session remembers of it (see `setStoreState`). */
  #storeState: { store: object; value: unknown } | undefined = undefined;

  /**
   * Rebuilds a session that a store loaded: `new Session({ id, ...data })`.
   * Keys named `id`, `regenerate`, `destroy` or `__proto__` in `data` are ignored.
   */
  constructor(data: { id: string } & Record<string, unknown>) {
    const id = data?.id;
    if (typeof id !== "string" || id === "") {
      throw new TypeError("new Session(data) needs data.id, a non-empty string (use Session.empty() for a new session)");
    }
    this.#id = id;
    this.#loadedId = id;
    // An own, enumerable accessor: shows up in Object.keys and JSON, but assignment fails.
    Object.defineProperty(this, "id", { enumerable: true, get: () => this.#id });
    for (const key of Object.keys(data)) {
      if (!RESERVED.has(key)) this[key] = data[key];
    }
  }

  /** A new, empty session with a fresh random id. Nothing is saved for it until it holds data. */
  static empty(): Session {
    const session = new Session({ id: uuidv4() });
    session.#loadedId = null;
    return session;
  }

  /** What the store needs besides the data: the id it was loaded under and whether it was destroyed. */
  static stateOf(session: Session): SessionState {
    return { loadedId: session.#loadedId, destroyed: session.#destroyed };
  }

  /**
   * Keeps what a store saw when it loaded the session (what `dump` compares with), out of the
   * session's keys, JSON and copies. A session keeps one store's state: the store's that loaded it.
   */
  static setStoreState(session: Session, store: object, value: unknown): void {
    session.#storeState = { store, value };
  }

  /** What `setStoreState` kept on `session` for `store`, if anything. */
  static storeState(session: Session, store: object): unknown {
    const state = session.#storeState;
    return state !== undefined && state.store === store ? state.value : undefined;
  }

  /** `true` when the session holds no data besides its id. */
  static isEmpty(session: Session): boolean {
    for (const key in session) if (key !== "id" && Object.hasOwn(session, key)) return false;
    return true;
  }

  /**
   * Gives the session a new id and keeps its data. Call it when a user logs in:
   * an id that an attacker planted before login (session fixation) is then worthless.
   * The store deletes the old id at the end of the request.
   */
  regenerate(): void {
    this.#id = uuidv4();
  }

  /**
   * Empties the session. At the end of the request the store removes it and the cookie
   * is expired. Data written after `destroy()` starts a new session with a new id.
   */
  destroy(): void {
    for (const key of Object.keys(this)) {
      if (key !== "id") delete this[key];
    }
    this.#id = uuidv4();
    this.#destroyed = true;
  }
}

// `session.__proto__ = value` would otherwise swap the session's prototype: code such as
// `Object.assign(req.session, req.body)` with a JSON body holding "__proto__" would then lose
// regenerate()/destroy() and expose the attacker's object's keys through the session.
// This accessor shadows Object.prototype's and ignores the assignment.
Object.defineProperty(Session.prototype, "__proto__", {
  configurable: false,
  enumerable: false,
  get(this: Session) {
    return Object.getPrototypeOf(this);
  },
  set() {},
});
