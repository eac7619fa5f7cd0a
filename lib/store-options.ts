/**
 * The options every store shares (secret, cookie name and attributes, maxAge, absoluteTimeout,
 * touchAfter), checked once at construction, so a wrong value fails at start-up with a message
 * that says how to fix it. Values are taken as the types say: numbers, booleans, strings.
 * (Strings from environment variables are converted by `sessions({ store, ... })`, in config.ts.)
 */
import type { IncomingMessage } from "node:http";
import { type CookieOptions, CookieSettings } from "./cookie-settings";
import { SessionConfigError } from "./errors";
import { cookieEnd, idleTimeout } from "./expiry";
import type { SessionCookieInit } from "./session-cookie";

/** The options shared by CookieStore, MemoryStore and RedisStore. */
export interface CommonStoreOptions {
  /** At least 32 characters; an array rotates secrets: the first signs (or seals), all are tried on read. */
  secret?: string | readonly string[] | undefined;
  /** Cookie name. Default `"session"`. */
  name?: string;
  /** Cookie attributes. Defaults: HttpOnly, SameSite=Lax, Path=/, Secure when the request is secure. */
  cookie?: CookieOptions;
  /** Idle timeout in ms: the session ends after this long without a request. Default 1 day. */
  maxAge?: number;
  /** Time since the session was created (or regenerated) after which it ends, in ms; `null` for none. Default 7 days. */
  absoluteTimeout?: number | null;
  /**
   * An unchanged session's cookie is re-issued (and a stored session's expiry slid) only when it
   * was last issued at least this many ms ago. Shorter than maxAge; `0`: on every request.
   * Default min(60 s, maxAge / 10).
   */
  touchAfter?: number;
}

/** The shared options, resolved. */
export interface StoreSettings {
  readonly secrets: readonly string[];
  readonly cookie: CookieSettings;
  readonly maxAge: number;
  readonly absoluteTimeout: number | null;
  readonly touchAfter: number;
}

/**
 * What a store tells a session it builds about its cookie (`req.session.cookie`): the store's
 * maxAge, the attributes for this request, the lifetime the session chose, and when it ends
 * unless used again (when its cookie does: see `cookieEnd`).
 */
export function cookieInit(settings: StoreSettings, req: IncomingMessage, saved?: { lifetime: number | null | undefined; created: number; touched: number }): SessionCookieInit {
  const attributes = () => settings.cookie.attributes(req);
  if (saved === undefined) return { maxAge: settings.maxAge, attributes };
  const { lifetime, created, touched } = saved;
  const expires = cookieEnd(created, idleTimeout(lifetime, settings.maxAge), settings.absoluteTimeout, touched);
  return { maxAge: settings.maxAge, attributes, lifetime, expires };
}

/** Shortest secret accepted: 32 characters, enough entropy for HMAC-SHA256 and key derivation. */
export const MIN_SECRET_LENGTH = 32;
const MIDDLEWARE_OPTIONS = ["preload", "onLostChange", "onSaveError", "fallback"];
const DAY = 86_400_000;
const HOW_TO_MAKE_A_SECRET =
  "generate one with `node -e \"console.log(require('crypto').randomBytes(32).toString('base64url'))\"` and pass it from an environment variable";

/**
 * Checks that `options` holds only `allowed` keys (the shared ones and the store's own, in the
 * order the store lists them) and resolves the shared ones. `defaultSecret`: used when no
 * secret is given (MemoryStore); without it a secret is required.
 */
export function resolveStoreOptions(options: unknown = {}, allowed: readonly string[], owner: string, defaultSecret?: () => string): StoreSettings {
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new SessionConfigError(`${owner} takes an options object such as { secret: process.env.SESSION_SECRET }, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (allowed.includes(key)) continue;
    const hint = MIDDLEWARE_OPTIONS.includes(key) ? ` ("${key}" is an option of the middleware: pass it as the second argument, sessions(store, { ${key} }))` : "";
    throw new SessionConfigError(`${owner}: unknown option "${key}"${hint}; the options are ${allowed.join(", ")}`);
  }
  const common = options as CommonStoreOptions;
  const secrets = common.secret === undefined && defaultSecret !== undefined ? [defaultSecret()] : resolveSecrets(common.secret, owner);
  const maxAge = resolveDuration(common.maxAge, DAY, "maxAge", owner) as number;
  return {
    secrets,
    cookie: new CookieSettings(common.name ?? "session", common.cookie, owner),
    maxAge,
    absoluteTimeout: resolveDuration(common.absoluteTimeout, 7 * DAY, "absoluteTimeout", owner, true),
    touchAfter: resolveTouchAfter(common.touchAfter, maxAge, owner),
  };
}

/** `secret` as a non-empty list: the first signs/seals, all are tried on read (rotation). */
function resolveSecrets(secret: unknown, owner: string): string[] {
  if (secret === undefined || secret === null || secret === "") {
    throw new SessionConfigError(`${owner} needs a secret: pass { secret: process.env.SESSION_SECRET } (at least ${MIN_SECRET_LENGTH} characters; ${HOW_TO_MAKE_A_SECRET})`);
  }
  const secrets: unknown[] = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) {
    throw new SessionConfigError(`${owner}: secret is an empty array; give at least one secret (the first signs, the others are still accepted on read)`);
  }
  secrets.forEach((value, i) => {
    if (typeof value !== "string" || value.length < MIN_SECRET_LENGTH) {
      const which = Array.isArray(secret) ? `secret[${i}]` : "secret";
      throw new SessionConfigError(`${owner}: ${which} must be a string of at least ${MIN_SECRET_LENGTH} characters; ${HOW_TO_MAKE_A_SECRET}`);
    }
  });
  return secrets as string[];
}

/** A duration option in milliseconds: a positive number; `null` only when `nullable`. */
export function resolveDuration(value: unknown, fallback: number | null, name: string, owner: string, nullable = false): number | null {
  if (value === undefined) return fallback;
  if (value === null && nullable) return null;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    const allowed = nullable ? " (or null to turn it off)" : "";
    throw new SessionConfigError(`${owner}: ${name} must be a positive number of milliseconds${allowed}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * `touchAfter`: default min(60 s, maxAge / 10); `0` touches on every request. It must stay below
 * `maxAge`, or an active but unchanged session would expire between touches.
 */
function resolveTouchAfter(value: unknown, maxAge: number, owner: string): number {
  const touchAfter = value === 0 ? 0 : (resolveDuration(value, Math.min(60_000, Math.floor(maxAge / 10)), "touchAfter", owner) as number);
  if (touchAfter >= maxAge) {
    throw new SessionConfigError(
      `${owner}: touchAfter (${touchAfter} ms) must be shorter than maxAge (${maxAge} ms), or an active but unchanged session would expire; lower touchAfter or leave it out`,
    );
  }
  return touchAfter;
}

/** A count (entries, bytes): a positive whole number. */
export function resolveCount(value: unknown, fallback: number, name: string, unit: string, owner: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    throw new SessionConfigError(`${owner}: ${name} must be a positive whole number of ${unit}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** A yes/no option. */
export function resolveBoolean(value: unknown, fallback: boolean, name: string, owner: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new SessionConfigError(`${owner}: ${name} must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  return typeof value === "string" ? "a string" : typeof value;
}
