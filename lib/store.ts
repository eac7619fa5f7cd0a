import type { IncomingMessage, ServerResponse } from "node:http";
import type { Cookie } from "./cookie";
import type { Session } from "./session";

/** What a store sees of the request: the request, the response and the parsed cookies. */
export interface SessionContext {
  /** The request (Express's `Request` when run under Express). */
  req: IncomingMessage;
  res: ServerResponse;
  /** The request's cookies, parsed. */
  cookies: Record<string, string>;
}

/**
 * The store protocol. `load` builds the request's session (a new empty one when the
 * request has none); `dump` saves it and returns the cookie(s) the browser must keep
 * (an empty array when the browser's cookie is still good).
 *
 * A store whose `load` needs I/O is recognised either by `async = true` or by `load`
 * being an `async function`; the middleware then runs `load` before the handlers
 * (or on `await req.loadSession()` with `preload: false`). A store whose plain `load`
 * returns a Promise must set `async = true`.
 */
export interface SessionStore {
  /** `true` when `load` needs I/O and returns a Promise (see above). */
  readonly async?: boolean;
  load(ctx: SessionContext): Session | Promise<Session>;
  dump(session: Session, ctx: SessionContext): Cookie | Cookie[] | Promise<Cookie | Cookie[]>;
}

/** `true` when `value` has the shape of a store. */
export function isSessionStore(value: unknown): value is SessionStore {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as SessionStore).load === "function" &&
    typeof (value as SessionStore).dump === "function"
  );
}

/** How a store that loads with I/O is recognised: `async = true`, or an `async function load`. */
export function loadsAsynchronously(store: SessionStore): boolean {
  if (typeof store.async === "boolean") return store.async;
  return store.load.constructor.name === "AsyncFunction";
}

/** `true` for a Promise or any other thenable. */
export function isPromiseLike<T>(value: unknown): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === "function";
}
