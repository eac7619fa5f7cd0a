/**
 * When a session ends: after `maxAge` without a request (idle), or `absoluteTimeout` after it was
 * created, in the whole seconds of the cookie that carries it.
 */

/** `true` once a session created at `created` has outlived `absoluteTimeout` (`null`: never). */
export function pastAbsoluteTimeout(created: number, absoluteTimeout: number | null, now: number): boolean {
  return absoluteTimeout !== null && now - created > absoluteTimeout;
}

/** A session's remaining life from `now`, in ms: the idle timeout `maxAge`, cut short by `absoluteTimeout`. */
export function remainingLife(created: number, maxAge: number, absoluteTimeout: number | null, now: number): number {
  return absoluteTimeout === null ? maxAge : Math.min(maxAge, created + absoluteTimeout - now);
}

/** The idle timeout of a session that chose `lifetime` ("remember me"); a browser-session cookie (`null`) keeps the store's. */
export function idleTimeout(lifetime: number | null | undefined, maxAge: number): number {
  return lifetime ?? maxAge;
}

/**
 * When a cookie issued at `issued` ends, in ms since the epoch: `Max-Age` counts whole seconds, so
 * the session's remaining life then, rounded down to whole seconds. A session ends when the cookie
 * the browser holds does, so the browser never keeps a cookie the server refuses, nor drops one the
 * server would still take. `issued` itself when not a whole second is left.
 */
export function cookieEnd(created: number, maxAge: number, absoluteTimeout: number | null, issued: number): number {
  return issued + Math.max(0, Math.floor(remainingLife(created, maxAge, absoluteTimeout, issued) / 1000) * 1000);
}
