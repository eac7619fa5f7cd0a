/** When a session ends: after `maxAge` without a request (idle), or `absoluteTimeout` after it was created. */

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
