import { IncomingMessage, type ServerResponse } from "node:http";
import vary from "vary";
import { Cookie, parseCookies } from "./cookie";
import { SessionConfigError, type SessionError, SessionUsageError } from "./errors";
import { checkKeys, resolveBoolean } from "./options";
import { carrierOf, findSlot, keepInSlot, type SlotCarrier, type SlotValue } from "./request-slot";
import { type HeaderHold, holdHeaders } from "./response-hook";
import { Session } from "./session";
import { isPromiseLike, loadsAsynchronously, type SessionContext, type SessionStore } from "./store";

/** Options of the middleware itself (the store has its own). */
export interface SessionsOptions {
  /**
   * For stores that load with I/O (RedisStore): `true` (default) loads the session before
   * the handlers run, so `req.session` is synchronous; `false` loads nothing until a
   * handler calls `await req.loadSession()`. Ignored by synchronous stores, which always
   * load lazily on the first read of `req.session`.
   */
  preload?: boolean;
  /**
   * Called when a change to the session could not be delivered because the headers had
   * already left (a CookieStore session changed while streaming). Default: a process
   * warning (printed on stderr) naming the route.
   */
  onLostChange?: (err: SessionError, req: IncomingMessage) => void;
}

/** The function `sessions()` returns: middleware for Express 4/5, Connect and `node:http`. */
export interface SessionMiddleware<S extends SessionStore = SessionStore> {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void;
  /** The store this middleware uses (built from configuration, if that is what you passed). */
  readonly store: S;
}

/**
 * Makes the middleware around a store instance. See `sessions()` in the index for the
 * configuration form; this is where the lifecycle of SPEC §3 lives.
 */
export function createMiddleware<S extends SessionStore>(store: S, options: SessionsOptions = {}): SessionMiddleware<S> {
  const owner = "sessions() options";
  if (options === null || typeof options !== "object") {
    throw new SessionConfigError(`${owner} must be an object such as { preload: false }, got ${options === null ? "null" : typeof options}`);
  }
  checkKeys(options, ["preload", "onLostChange"], owner);
  const preload = resolveBoolean(options.preload, true, "preload", owner);
  const onLostChange = options.onLostChange ?? warnLostChange;
  if (typeof onLostChange !== "function") {
    throw new SessionConfigError(`${owner}: onLostChange must be a function (err, req) => void, got ${typeof onLostChange}`);
  }
  const isAsync = loadsAsynchronously(store);

  const middleware = function session(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    const carrier = carrierOf(req);
    const request = new RequestSession(store, isAsync, onLostChange, req, res, next, carrier);
    attach(req, request, carrier);
    if (isAsync && preload) request.preload();
    else next();
  } as SessionMiddleware<S>;
  Object.defineProperty(middleware, "store", { value: store, enumerable: true });
  return middleware;
}

/** One request's session: loads it at most once, hooks the response on first read (it is the response's HeaderHold). */
class RequestSession implements HeaderHold {
  private session: Session | undefined;
  private loading: Promise<Session> | undefined;
  private ctx: SessionContext | undefined;
  private hooked = false;
  /** JSON of the session when it was saved before the headers left (streaming responses). */
  private savedJson: string | undefined;
  /** Cookie values the browser keeps after this response's headers, by name (`undefined`: expired); made when the first is sent. */
  private sent: Map<string, string | undefined> | undefined = undefined;

  constructor(
    private readonly store: SessionStore,
    private readonly isAsync: boolean,
    private readonly onLostChange: (err: SessionError, req: IncomingMessage) => void,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly next: (err?: unknown) => void,
    /** Where `req`'s slots live (carrierOf): the response hold goes there too. */
    private readonly carrier: SlotCarrier,
  ) {}

  /** SlotValue: the request this state belongs to. */
  get owner(): IncomingMessage {
    return this.req;
  }

  /** The `req.session` getter: lazy load (sync stores), then hook the response. */
  read(): Session {
    let session = this.session;
    if (session === undefined) {
      if (this.isAsync) {
        throw new SessionUsageError(
          "req.session was read before the session was loaded: this store loads asynchronously; with sessions(store, { preload: false }) call `await req.loadSession()` first (if preloading failed, its error went to next(err))",
        );
      }
      const loaded = this.store.load(this.context());
      if (isPromiseLike(loaded)) {
        throw new SessionUsageError(
          "the store's load() returned a Promise but the store is not marked asynchronous: give the store `async = true` (or declare load as an `async function`) so sessions() loads it before the handlers",
        );
      }
      session = this.session = loaded;
    }
    if (!this.hooked) this.hook();
    return session;
  }

  /** `req.session = null` destroys the session (as in cookie-session); anything else is refused. */
  replace(value: unknown): void {
    if (value === null || value === undefined) {
      this.read().destroy();
      return;
    }
    throw new SessionUsageError("req.session cannot be replaced: change its keys, or call req.session.regenerate() / req.session.destroy()");
  }

  /** Default path for async stores: load before the handlers, then `next()` (or `next(err)`). */
  preload(): void {
    let loaded: Session | Promise<Session>;
    try {
      loaded = this.store.load(this.context());
    } catch (err) {
      this.next(err);
      return;
    }
    if (!isPromiseLike(loaded)) {
      this.session = loaded;
      this.next();
      return;
    }
    loaded.then(
      (session) => {
        this.session = session;
        this.next();
      },
      (err) => this.next(err),
    );
  }

  /** `await req.loadSession()`: loads once, then behaves as a read of `req.session`. */
  loadAsync(): Promise<Session> {
    if (this.session !== undefined) return Promise.resolve(this.read());
    this.loading ??= Promise.resolve()
      .then(() => this.store.load(this.context()))
      .then(
        (session) => {
          this.session = session;
          return session;
        },
        (err) => {
          this.loading = undefined; // a later call may try again
          throw err;
        },
      );
    return this.loading.then(() => this.read());
  }

  private context(): SessionContext {
    return (this.ctx ??= { req: this.req, res: this.res, cookies: parseCookies(this.req) });
  }

  private hook(): void {
    this.hooked = true;
    // This object is the hold itself (prepare / fail / finish below): no closures per request.
    if (holdHeaders(this.res, this, this.req, this.carrier)) return;
    // Read for the first time after the headers left: save changes made from now on at the end.
    this.savedJson = JSON.stringify(this.session);
    this.res.once("finish", () => void this.finish());
  }

  /**
   * HeaderHold: before the headers, dump unless the session is new and empty; returns the
   * Set-Cookie values. `Vary` is set here, not at the first read, so a handler's own `Vary`
   * cannot replace it.
   */
  prepare(final: boolean): string[] | Promise<string[]> {
    const session = this.session as Session;
    addVaryCookie(this.res);
    if (isNewAndEmpty(session)) return [];
    if (!final) this.savedJson = JSON.stringify(session);
    const dumped = this.store.dump(session, this.context());
    return isPromiseLike(dumped) ? Promise.resolve(dumped).then((c) => this.serialize(c, final)) : this.serialize(dumped, final);
  }

  /** HeaderHold: dumping failed before the headers; Express's error handling answers. */
  fail(err: unknown): void {
    this.next(err);
  }

  /** The Set-Cookie values; unless `final`, also what the browser will hold, for a late save to compare with. */
  private serialize(dumped: Cookie | Cookie[], final: boolean): string[] {
    if (Array.isArray(dumped) && dumped.length === 0) return NO_HEADERS;
    const cookies = Array.isArray(dumped) ? dumped : [dumped];
    const headers = new Array<string>(cookies.length);
    for (let i = 0; i < cookies.length; i++) {
      if (!final) (this.sent ??= new Map()).set(cookies[i].name, cookies[i].isExpired ? undefined : cookies[i].value);
      headers[i] = cookies[i].serialize();
    }
    return headers;
  }

  /**
   * HeaderHold, after the headers left: if the session changed since it was saved, dump it
   * again. A store that keeps data server-side saves it; a cookie that would have had to
   * change is reported through `onLostChange`, never dropped silently. Never throws.
   */
  finish(): void | Promise<void> {
    const session = this.session as Session;
    let dumped: Cookie | Cookie[] | Promise<Cookie | Cookie[]>;
    try {
      const json = JSON.stringify(session);
      // Nothing was saved before the headers (new and empty then): nothing to do if it still is.
      if (json === this.savedJson || (this.savedJson === undefined && isNewAndEmpty(session))) return;
      dumped = this.store.dump(session, this.context());
    } catch (err) {
      this.reportLost(err);
      return;
    }
    if (!isPromiseLike(dumped)) return this.checkLate(dumped);
    return Promise.resolve(dumped).then(
      (cookies) => this.checkLate(cookies),
      (err) => this.reportLost(err),
    );
  }

  private checkLate(dumped: Cookie | Cookie[]): void {
    const ctx = this.context();
    for (const cookie of Array.isArray(dumped) ? dumped : [dumped]) {
      const sent = this.sent;
      const known = sent !== undefined && sent.has(cookie.name) ? sent.get(cookie.name) : ctx.cookies[cookie.name];
      if (cookie.isExpired ? known === undefined : known === cookie.value) continue;
      this.reportLost(undefined);
      return;
    }
  }

  private reportLost(cause: unknown): void {
    const route = `${this.req.method} ${this.req.url}`;
    const reason = cause === undefined ? "the store needs a new cookie, and the headers had already been sent" : "saving it failed";
    const err = new SessionUsageError(
      `session change on ${route} was not saved: ${reason}. Change req.session before the response starts (before res.write/res.flushHeaders), or use a server-side store`,
    );
    if (cause !== undefined) (err as { cause?: unknown }).cause = cause;
    this.onLostChange(err, this.req);
  }
}

const NO_HEADERS: string[] = [];

/** `Vary: Cookie`, added to whatever `Vary` the handler set (the `vary` package merges; most responses have none yet). */
function addVaryCookie(res: ServerResponse): void {
  if (res.getHeader("Vary") === undefined) res.setHeader("Vary", "Cookie");
  else vary(res, "Cookie");
}

/** Created on this request and still holding nothing: never saved (SPEC §3.3). */
function isNewAndEmpty(session: Session): boolean {
  return Session.stateOf(session).loadedId === null && Session.isEmpty(session);
}

/** The default `onLostChange`. Passes the message, not the error: Node refuses Error objects from another realm (vm, jest). */
function warnLostChange(err: SessionError): void {
  process.emitWarning(err.message, { type: err.name, code: err.code });
}

/** What `req.session` and `req.loadSession()` need of a request's state (whichever copy of this package made it). */
interface RequestHandle extends SlotValue {
  read(): Session;
  replace(value: unknown): void;
  loadAsync(): Promise<Session>;
}

/**
 * Gives `req` the `session` accessor and `loadSession()`: defined once per process on
 * IncomingMessage.prototype, reading each request's state from a request slot
 * (request-slot.ts: on the request's `rawHeaders` array, not on the request, whose hidden
 * class Express makes unique). (Defining the accessor on each request instead costs V8 a
 * slow path, more than the rest of an untouched request's session handling, measured with
 * callgrind.) A request that did not pass through `sessions()` reads `undefined`, and may
 * assign the property as before. The mark below is a registered symbol, so several copies of
 * this package share the accessor ("v3": v1 kept the state on the request itself and v2 under
 * a symbol on rawHeaders, where a v3 copy would not look). A request whose own class defines
 * `session` first gets the properties on itself.
 */
/** Marks IncomingMessage.prototype's accessor as one of ours (from any copy that keeps state where this one does); its value is the shared LastAttached. */
const OURS = Symbol.for("sessionbox.request-session-accessor.v3");

/**
 * The request attached last, and its state: a handler that runs in the same turn (most do)
 * finds it without a lookup. One per process, kept as the value of the OURS mark, so every
 * copy that shares the accessor shares it too.
 */
interface LastAttached {
  req: IncomingMessage | undefined;
  state: RequestHandle | undefined;
}

function stateOf(req: IncomingMessage): RequestHandle | undefined {
  return req === last.req ? last.state : (findSlot(carrierOf(req), req, "state") as RequestHandle | undefined);
}

/** `req.session`: the request's session (loaded on first read); `undefined` on requests that did not go through `sessions()`. */
const sessionProperty = {
  configurable: true,
  enumerable: true,
  get(this: IncomingMessage): Session | undefined {
    return stateOf(this)?.read();
  },
  set(this: IncomingMessage, value: unknown): void {
    const request = stateOf(this);
    if (request !== undefined) request.replace(value);
    else Object.defineProperty(this, "session", { value, writable: true, configurable: true, enumerable: true });
  },
};

const loadSessionProperty = {
  configurable: true,
  writable: true,
  value: function loadSession(this: IncomingMessage): Promise<Session> {
    const request = stateOf(this);
    if (request !== undefined) return request.loadAsync();
    return Promise.reject(new SessionUsageError("req.loadSession() was called on a request that did not pass through the sessions() middleware; mount it before this route"));
  },
};

/** The getter of the accessor all copies share (ours, or one another copy defined first), and the shared LastAttached. */
const { sharedGetter, last } = installRequestProperties();

function installRequestProperties(): { sharedGetter: unknown; last: LastAttached } {
  const base = IncomingMessage.prototype;
  const existing = Object.getOwnPropertyDescriptor(base, "session");
  if (existing !== undefined) {
    const mark = Reflect.get(base, OURS) as LastAttached | undefined;
    // Another copy's accessor: share it; someone else's: define ours on each request (see attach).
    return mark !== undefined ? { sharedGetter: existing.get, last: mark } : { sharedGetter: undefined, last: { req: undefined, state: undefined } };
  }
  const last: LastAttached = { req: undefined, state: undefined };
  Object.defineProperty(base, "session", sessionProperty);
  Object.defineProperty(base, "loadSession", loadSessionProperty);
  Object.defineProperty(base, OURS, { value: last });
  return { sharedGetter: sessionProperty.get, last };
}

/** Request prototypes whose requests reach the shared accessor through their prototype chain. */
const prepared = new WeakSet<object>();

/** Stores the request's state; defines the properties on the request only when its class hides the shared ones. */
function attach(req: IncomingMessage, request: RequestHandle, carrier: SlotCarrier): void {
  const proto = Object.getPrototypeOf(req) as object;
  if (!prepared.has(proto)) {
    if (sharedGetter !== undefined && definer(proto) === sharedGetter) prepared.add(proto);
    else {
      Object.defineProperty(req, "session", sessionProperty);
      Object.defineProperty(req, "loadSession", loadSessionProperty);
    }
  }
  keepInSlot(carrier, "state", request);
  last.req = req;
  last.state = request;
}

/** The getter of the first `session` property along the prototype chain from `proto`. */
function definer(proto: object | null): unknown {
  for (; proto !== null; proto = Object.getPrototypeOf(proto) as object | null) {
    const own = Object.getOwnPropertyDescriptor(proto, "session");
    if (own !== undefined) return own.get;
  }
  return undefined;
}
