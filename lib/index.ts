/**
 * sessionbox: session middleware where a session is a plain dictionary with an `id`,
 * and a pluggable store decides where it lives.
 *
 * ```ts
 * app.use(sessions(new CookieStore({ secret: process.env.SESSION_SECRET! })));
 * app.get("/", (req, res) => { req.session.views = ((req.session.views as number) ?? 0) + 1; res.send("ok"); });
 * ```
 */
import { resolveStore, type SessionsConfig } from "./config";
import type { CookieStore } from "./cookie-store";
import type { MemoryStore } from "./memory-store";
import type { RedisStore } from "./redis-store";
import { createMiddleware, type SessionMiddleware, type SessionsOptions } from "./middleware";
import type { Session, SessionData } from "./session";
import type { SessionStore } from "./store";

export { Cookie, type CookieAttributes } from "./cookie";
export type { CookieOptions } from "./cookie-settings";
export { CookieSessionReader, type CookieSessionReaderOptions } from "./cookie-session-reader";
export { CookieStore, type CookieStoreOptions } from "./cookie-store";
export { SessionConfigError, SessionError, SessionStoreUnavailableError, SessionTooLargeError, SessionUsageError } from "./errors";
export { ExpressSessionStore, type ExpressSessionBackend, type ExpressSessionStoreOptions, type RecordCookie, type SessionRecord } from "./express-session-store";
export { MemoryStore, type MemoryStoreOptions } from "./memory-store";
export { RedisStore, type RedisClient, type RedisStoreOptions } from "./redis-store";
export type { SessionMiddleware, SessionsOptions } from "./middleware";
export type { CommonStoreOptions } from "./store-options";
export type { Configured, SessionsConfig } from "./config";
export { Session, type RegenerateKeep, type SessionCallback, type SessionData, type SessionState } from "./session";
export type { SessionCookie, SessionCookieInit, SessionLifetime } from "./session-cookie";
export type { SessionContext, SessionStore } from "./store";

/** `req.session`: the session, with the fields you declared in `SessionData`. */
export type SessionObject = Session & Partial<SessionData>;

/**
 * The session middleware. Pass a store instance, or a plain configuration object that names
 * the store (`{ store: "cookie", secret }`), so stores can be swapped by configuration.
 * Wrong configuration throws here, at start-up.
 */
export function sessions<S extends SessionStore>(store: S, options?: SessionsOptions): SessionMiddleware<S>;
export function sessions(config: { store: "cookie" } & SessionsConfig, options?: SessionsOptions): SessionMiddleware<CookieStore>;
export function sessions(config: { store: "memory" } & SessionsConfig, options?: SessionsOptions): SessionMiddleware<MemoryStore>;
export function sessions(config: { store: "redis" } & SessionsConfig, options?: SessionsOptions): SessionMiddleware<RedisStore>;
export function sessions(config: SessionStore | SessionsConfig, options?: SessionsOptions): SessionMiddleware;
export function sessions(config: SessionStore | SessionsConfig, options?: SessionsOptions): SessionMiddleware {
  return createMiddleware(resolveStore(config), options);
}

export default sessions;

declare global {
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** The session: read and write its keys. Typed by the `SessionData` interface you extend. */
      session: SessionObject;
      /** Loads the session (needed with `preload: false` on an async store); resolves to `req.session`. */
      loadSession(): Promise<SessionObject>;
      /** The session's id (reading it reads the session), as in express-session. */
      readonly sessionID: string;
      /** The store the session lives in, as in express-session. */
      readonly sessionStore: SessionStore;
    }
  }
}
