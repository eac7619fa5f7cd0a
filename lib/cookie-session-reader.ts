/**
 * Reads the sessions of the `cookie-session` package, to move them into another store with
 * `sessions(store, { fallback: new CookieSessionReader({ keys }) })`. It never writes one:
 * its `dump` expires cookie-session's cookies.
 */
import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import type { Cookie } from "./cookie";
import { type CookieOptions, CookieSettings } from "./cookie-settings";
import { SessionConfigError } from "./errors";
import { Session } from "./session";
import type { SessionContext, SessionStore } from "./store";

export interface CookieSessionReaderOptions {
  /** cookie-session's `keys` (for `cookieSession({ secret })`, pass `[secret]`): a cookie signed with any of them is read. */
  keys: readonly string[];
  /** cookie-session's cookie name. Default `"session"`. */
  name?: string;
  /** The `path` and `domain` cookie-session set its cookies with, so that expiring them reaches them. Default `/` and none. */
  cookie?: Pick<CookieOptions, "path" | "domain">;
}

const OWNER = "CookieSessionReader";
const OPTIONS = ["keys", "name", "cookie"];

/**
 * cookie-session's cookies: `<name>` holds the session as base64 JSON, `<name>.sig` its
 * signature (keygrip's: HMAC-SHA1 of `<name>=<value>` in base64url, by any of the keys).
 * Unsigned, forged or unreadable cookies give a new empty session; so does an empty session.
 */
export class CookieSessionReader implements SessionStore {
  readonly async = false;
  private readonly keys: readonly string[];
  private readonly settings: CookieSettings;

  constructor(options: CookieSessionReaderOptions) {
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw new SessionConfigError(`${OWNER} takes an options object such as { keys: [process.env.COOKIE_SESSION_KEY] }, cookie-session's keys`);
    }
    for (const key of Object.keys(options)) {
      if (!OPTIONS.includes(key)) throw new SessionConfigError(`${OWNER}: unknown option "${key}"; the options are ${OPTIONS.join(", ")}`);
    }
    const { keys, name = "session", cookie = {} } = options;
    if (!Array.isArray(keys) || keys.length === 0 || keys.some((key) => typeof key !== "string" || key === "")) {
      throw new SessionConfigError(`${OWNER} needs cookie-session's keys: pass { keys } as given to cookieSession({ keys }) (non-empty strings; for cookieSession({ secret }), keys: [secret])`);
    }
    if (cookie === null || typeof cookie !== "object" || Object.keys(cookie).some((key) => key !== "path" && key !== "domain")) {
      throw new SessionConfigError(`${OWNER}: cookie takes only path and domain, the ones cookie-session's cookies were set with`);
    }
    this.keys = keys;
    this.settings = new CookieSettings(name, cookie, OWNER);
  }

  /** The session cookie-session's cookies hold, under an id of its own (cookie-session's sessions have none). */
  load(ctx: SessionContext): Session {
    const name = this.settings.name;
    const value = ctx.cookies[name];
    const signature = ctx.cookies[`${name}.sig`];
    if (!value || !signature || !this.verify(`${name}=${value}`, signature)) return Session.empty();
    let data: unknown;
    try {
      data = JSON.parse(Buffer.from(value, "base64").toString("utf8"));
    } catch {
      return Session.empty();
    }
    if (data === null || typeof data !== "object" || Array.isArray(data) || Object.keys(data).length === 0) return Session.empty();
    return new Session({ ...(data as Record<string, unknown>), id: randomUUID() });
  }

  /** Expires cookie-session's two cookies: this store only reads. */
  dump(_session: Session, ctx: SessionContext): Cookie[] {
    const name = this.settings.name;
    return [this.settings.expire(ctx.req), this.settings.expire(ctx.req, `${name}.sig`)];
  }

  /** keygrip's check: the signature matches under one of the keys (compared in constant time). */
  private verify(data: string, signature: string): boolean {
    const given = Buffer.from(signature);
    return this.keys.some((key) => {
      const expected = Buffer.from(createHmac("sha1", key).update(data).digest("base64url"));
      return expected.length === given.length && timingSafeEqual(expected, given);
    });
  }
}
