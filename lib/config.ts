import { CookieStore, type CookieStoreOptions } from "./cookie-store";
import { SessionConfigError } from "./errors";
import { MemoryStore, type MemoryStoreOptions } from "./memory-store";
import { RedisStore, type RedisStoreOptions } from "./redis-store";
import { isSessionStore, type SessionStore } from "./store";

/** Stores by name, for `sessions({ store: "<name>", ...options })`. */
export type SessionsConfig =
  | ({ store: "cookie" } & CookieStoreOptions)
  | ({ store: "memory" } & MemoryStoreOptions)
  | ({ store: "redis" } & RedisStoreOptions);

/** The store instance for a store or a plain configuration object; wrong configuration throws here, at start-up. */
export function resolveStore(config: SessionStore | SessionsConfig): SessionStore {
  if (isSessionStore(config)) return config;
  if (config === null || typeof config !== "object") {
    throw new SessionConfigError(
      `sessions() needs a store or a configuration object, got ${config === null ? "null" : typeof config}: ` +
        `use sessions(new CookieStore({ secret })) or sessions({ store: "cookie", secret })`,
    );
  }
  const { store, ...options } = config as { store?: unknown };
  switch (store) {
    case "cookie":
      return new CookieStore(options as CookieStoreOptions);
    case "memory":
      return new MemoryStore(options as MemoryStoreOptions);
    case "redis":
      return new RedisStore(options as RedisStoreOptions);
    default:
      throw new SessionConfigError(
        `sessions(): unknown store ${JSON.stringify(store)}; set store to "cookie", "memory" or "redis", or pass a store instance (an object with load and dump methods)`,
      );
  }
}
