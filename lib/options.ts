import { SessionConfigError } from "./errors";

/** Shortest secret accepted: 32 characters, enough entropy for HMAC-SHA256 and key derivation. */
export const MIN_SECRET_LENGTH = 32;

const HOW_TO_MAKE_A_SECRET =
  "generate one with `node -e \"console.log(require('crypto').randomBytes(32).toString('base64url'))\"` and pass it from an environment variable";

/** Refuses options this store does not know (a typo in a config file fails at start-up). */
export function checkKeys(options: unknown, allowed: readonly string[], owner: string): void {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new SessionConfigError(`${owner} takes an options object such as { secret: process.env.SESSION_SECRET }, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      const hint = MIDDLEWARE_OPTIONS.includes(key) ? ` ("${key}" is an option of the middleware: pass it as the second argument, sessions(store, { ${key} }))` : "";
      throw new SessionConfigError(`${owner}: unknown option "${key}"${hint}; the options are ${allowed.join(", ")}`);
    }
  }
}

const MIDDLEWARE_OPTIONS = ["preload", "onLostChange"];

/** `secret` as a non-empty list: the first signs/seals, all are tried on read (rotation). */
export function resolveSecrets(secret: unknown, owner: string): string[] {
  if (secret === undefined || secret === null || secret === "") {
    throw new SessionConfigError(`${owner} needs a secret: pass { secret: process.env.SESSION_SECRET } (at least ${MIN_SECRET_LENGTH} characters; ${HOW_TO_MAKE_A_SECRET})`);
  }
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) {
    throw new SessionConfigError(`${owner}: secret is an empty array; give at least one secret (the first signs, the others are still accepted on read)`);
  }
  secrets.forEach((value: unknown, i) => {
    if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH) {
      const which = Array.isArray(secret) ? `secret[${i}]` : "secret";
      throw new SessionConfigError(`${owner}: ${which} must be a string of at least ${MIN_SECRET_LENGTH} characters; ${HOW_TO_MAKE_A_SECRET}`);
    }
  });
  return secrets as string[];
}

/**
 * A duration option in milliseconds. Numeric strings are accepted so that values can come
 * straight from environment variables. `null` is returned only when `nullable` allows it.
 */
export function resolveDuration(value: unknown, fallback: number | null, name: string, owner: string, nullable = false): number | null {
  if (value === undefined) return fallback;
  if (value === null && nullable) return null;
  const ms = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0) {
    const allowed = nullable ? " (or null to turn it off)" : "";
    throw new SessionConfigError(`${owner}: ${name} must be a positive number of milliseconds${allowed}, got ${JSON.stringify(value)}`);
  }
  return ms;
}

/**
 * `touchAfter` of every store: how long after its cookie was last issued an unchanged session
 * gets it again (and, in a server-side store, its stored TTL slides). Default min(60 s, maxAge / 10); `0` (or
 * `"0"`) touches on every request. It must stay below `maxAge`, or an active but unchanged
 * session would expire between touches.
 */
export function resolveTouchAfter(value: unknown, maxAge: number, owner: string): number {
  const zero = value === 0 || (typeof value === "string" && value.trim() !== "" && Number(value) === 0);
  const touchAfter = zero ? 0 : (resolveDuration(value, Math.min(60_000, Math.floor(maxAge / 10)), "touchAfter", owner) as number);
  if (touchAfter >= maxAge) {
    throw new SessionConfigError(
      `${owner}: touchAfter (${touchAfter} ms) must be shorter than maxAge (${maxAge} ms), or an active but unchanged session would expire; lower touchAfter or leave it out`,
    );
  }
  return touchAfter;
}

/** A count (entries, bytes): a positive integer, or a numeric string (from an environment variable). */
export function resolveCount(value: unknown, fallback: number, name: string, unit: string, owner: string): number {
  if (value === undefined) return fallback;
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new SessionConfigError(`${owner}: ${name} must be a positive whole number of ${unit}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** A yes/no option: a boolean, or "true"/"false" (from an environment variable). */
export function resolveBoolean(value: unknown, fallback: boolean, name: string, owner: string): boolean {
  if (value === undefined) return fallback;
  if (value === true || value === "true") return true;
  if (value === false || value === "false") return false;
  throw new SessionConfigError(`${owner}: ${name} must be true or false, got ${JSON.stringify(value)}`);
}

/** `true` once a session created at `created` has outlived `absoluteTimeout` (`null`: never). */
export function pastAbsoluteTimeout(created: number, absoluteTimeout: number | null, now: number): boolean {
  return absoluteTimeout !== null && now - created > absoluteTimeout;
}

/** A session's remaining life from `now`, in ms: the idle timeout `maxAge`, cut short by `absoluteTimeout`. */
export function remainingLife(created: number, maxAge: number, absoluteTimeout: number | null, now: number): number {
  return absoluteTimeout === null ? maxAge : Math.min(maxAge, created + absoluteTimeout - now);
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? "a string" : typeof value;
}
