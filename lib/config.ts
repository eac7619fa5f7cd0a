/**
 * `sessions({ store: "cookie" | "memory" | "redis", ...options })`: the store from plain
 * configuration, which may come from environment variables or a config file. Here, and only
 * here, numbers and booleans may be given as strings ("3600000", "false"); the stores
 * themselves take the types their options declare.
 */
import type { CookieOptions } from "./cookie-settings";
import { CookieStore, type CookieStoreOptions } from "./cookie-store";
import { SessionConfigError } from "./errors";
import { MemoryStore, type MemoryStoreOptions } from "./memory-store";
import { RedisStore, type RedisStoreOptions } from "./redis-store";
import { isSessionStore, type SessionStore } from "./store";

/** Options as configuration gives them: numbers and booleans may be strings, as environment variables are. */
export type Configured<T> = {
  [K in keyof T]: K extends "cookie" ? Configured<CookieOptions> : OrString<T[K]>;
};
type OrString<V> = V extends number | boolean ? V | string : V;

/** Stores by name, for `sessions({ store: "<name>", ...options })`. */
export type SessionsConfig =
  | ({ store: "cookie" } & Configured<CookieStoreOptions>)
  | ({ store: "memory" } & Configured<MemoryStoreOptions>)
  | ({ store: "redis" } & Configured<RedisStoreOptions>);

const NUMBERS = ["maxAge", "absoluteTimeout", "touchAfter", "maxSize", "max", "maxBytes", "timeout"];
const BOOLEANS = ["encrypt", "secure", "httpOnly", "partitioned"];

/** The store instance for a store or a plain configuration object; wrong configuration throws here, at start-up. */
export function resolveStore(config: SessionStore | SessionsConfig): SessionStore {
  if (isSessionStore(config)) return config;
  if (config === null || typeof config !== "object") {
    throw new SessionConfigError(
      `sessions() needs a store or a configuration object, got ${config === null ? "null" : typeof config}: ` +
        `use sessions(new CookieStore({ secret })) or sessions({ store: "cookie", secret })`,
    );
  }
  const { store, ...configured } = config as { store?: unknown } & Record<string, unknown>;
  const options = fromStrings(configured);
  switch (store) {
    case "cookie":
      return new CookieStore(options as unknown as CookieStoreOptions);
    case "memory":
      return new MemoryStore(options as MemoryStoreOptions);
    case "redis":
      return new RedisStore(options as unknown as RedisStoreOptions);
    default:
      throw new SessionConfigError(
        `sessions(): unknown store ${JSON.stringify(store)}; set store to "cookie", "memory" or "redis", or pass a store instance (an object with load and dump methods)`,
      );
  }
}

/** A copy of `options` with numeric strings as numbers and "true"/"false" as booleans (in `cookie` too). Anything else is left for the store to refuse. */
function fromStrings(options: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...options };
  for (const [key, value] of Object.entries(out)) {
    if (typeof value !== "string") continue;
    if (NUMBERS.includes(key) && value.trim() !== "" && Number.isFinite(Number(value))) out[key] = Number(value);
    if (BOOLEANS.includes(key) && (value === "true" || value === "false")) out[key] = value === "true";
  }
  const cookie = out.cookie;
  if (cookie !== null && typeof cookie === "object" && !Array.isArray(cookie)) out.cookie = fromStrings(cookie as Record<string, unknown>);
  return out;
}
