import type { IncomingMessage, ServerResponse } from "node:http";
import { SessionConfigError, type SessionError } from "./errors";
import { FallbackStore } from "./fallback";
import { RequestSession, type RequestSessionSettings } from "./request-session";
import type { Session } from "./session";
import { loadsAsynchronously, type SessionStore } from "./store";

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
   * already left (a CookieStore session changed while streaming), or the response had ended.
   * Default: a process warning (printed on stderr) naming the route.
   */
  onLostChange?: (err: SessionError, req: IncomingMessage) => void;
  /**
   * Called when saving the session failed after the handlers ran and before the headers
   * left; the response is yours to write. Default: `next(err)` a second time, which Express
   * and Connect route to their error handlers. Under plain `node:http`, whose `next` would
   * run the handler again, pass a function that answers the error instead.
   */
  onSaveError?: (err: unknown, req: IncomingMessage, res: ServerResponse) => void;
  /**
   * The store you move from (an `ExpressSessionStore` over the old store, a `CookieSessionReader`):
   * when `store` has no session for a request, a session found there moves into `store` under a
   * new id, and its old record and cookie are removed in that response.
   */
  fallback?: SessionStore;
}

/** The function `sessions()` returns: middleware for Express 4/5, Connect and `node:http`. */
export interface SessionMiddleware<S extends SessionStore = SessionStore> {
  (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void;
  /** The store this middleware uses (built from configuration, if that is what you passed). */
  readonly store: S;
}

const OPTIONS = ["preload", "onLostChange", "onSaveError", "fallback"];
const SIGNATURES = { onLostChange: "(err, req) => void", onSaveError: "(err, req, res) => void" };

/**
 * Makes the middleware around a store instance. Each request it serves gets its own
 * `req.session` and `req.loadSession()`; nothing else in the process changes.
 */
export function createMiddleware<S extends SessionStore>(store: S, options: SessionsOptions = {}): SessionMiddleware<S> {
  const owner = "sessions() options";
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new SessionConfigError(`${owner} must be an object such as { preload: false }, got ${options === null ? "null" : typeof options}`);
  }
  for (const key of Object.keys(options)) {
    if (!OPTIONS.includes(key)) throw new SessionConfigError(`${owner}: unknown option "${key}"; the options are ${OPTIONS.join(", ")}`);
  }
  const { preload = true, onLostChange = warnLostChange } = options;
  if (typeof preload !== "boolean") throw new SessionConfigError(`${owner}: preload must be true or false, got ${JSON.stringify(preload)}`);
  for (const [name, value] of [["onLostChange", onLostChange], ["onSaveError", options.onSaveError]] as const) {
    if (value !== undefined && typeof value !== "function") throw new SessionConfigError(`${owner}: ${name} must be a function ${SIGNATURES[name]}, got ${typeof value}`);
  }
  const used = options.fallback === undefined ? store : new FallbackStore(store, options.fallback);
  const loadsAsync = loadsAsynchronously(used);
  const settings: RequestSessionSettings = { store: used, loadsAsync, onLostChange, onSaveError: options.onSaveError };

  const middleware = function session(req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void {
    // Mounted twice (on the app and on a router): the first mount's session stays.
    if (Object.hasOwn(req, "session")) return next();
    const request = new RequestSession(settings, req, res, next);
    defineRequestProperties(req, request, store);
    if (loadsAsync && preload) request.preload();
    else next();
  } as SessionMiddleware<S>;
  Object.defineProperty(middleware, "store", { value: store, enumerable: true });
  return middleware;
}

/**
 * `req.session`, `req.loadSession()`, `req.sessionID` and `req.sessionStore`, on this request
 * only. Not enumerable: a logger that walks the request does not load its session. Accessors,
 * each defined on its own: measured over HTTP, the cheapest way to add four properties to a
 * request, each of which costs V8 a new hidden class for it (bench/FINDINGS.md).
 */
function defineRequestProperties(req: IncomingMessage, request: RequestSession, store: SessionStore): void {
  const loadSession = (): Promise<Session> => request.loadSession();
  Object.defineProperty(req, "session", { configurable: true, get: (): Session => request.read(), set: (value: unknown) => request.assign(value) });
  Object.defineProperty(req, "loadSession", { configurable: true, get: () => loadSession });
  Object.defineProperty(req, "sessionID", { configurable: true, get: (): string => request.read().id });
  Object.defineProperty(req, "sessionStore", { configurable: true, get: () => store });
}

/** The default `onLostChange`. Passes the message, not the error: Node refuses Error objects from another realm (vm, jest). */
function warnLostChange(err: SessionError): void {
  process.emitWarning(err.message, { type: err.name, code: err.code });
}
