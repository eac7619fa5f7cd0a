/**
 * `req.session.cookie`: the session's cookie as express-session shows it. `maxAge` (ms left) and
 * `expires` can be set for this one session ("remember me"): the choice is kept with the session
 * by its store. The attributes come from the store's `cookie` option and are read-only here.
 */
import type { CookieAttributes } from "./cookie";
import { SessionUsageError } from "./errors";

/** What a store tells a session about its cookie. */
export interface SessionCookieInit {
  /** The store's idle timeout (its `maxAge`): the lifetime of a session that chose none. */
  maxAge?: number;
  /** The lifetime this session chose: ms, or `null` for a cookie that ends with the browser. */
  lifetime?: number | null;
  /** When the session ends unless a request comes first (ms since the epoch), as the store knows it. */
  expires?: number;
  /** The cookie's attributes for this request, or a function that gives them when first read. */
  attributes?: CookieView | (() => CookieView);
}

type CookieView = Readonly<Pick<CookieAttributes, "path" | "domain" | "secure" | "httpOnly" | "sameSite">>;

/** The cookie's lifetime as a store reads it when saving. */
export interface SessionLifetime {
  /** `undefined`: the store's `maxAge`; `null`: a cookie that ends with the browser; else ms. */
  readonly lifetime: number | null | undefined;
  /** Set, reset (`touch()`, `resetMaxAge()`) or chosen on this request: the cookie is issued again. */
  readonly renewed: boolean;
}

export class SessionCookie {
  #lifetime: number | null | undefined;
  #expires: number | undefined;
  #renewed = false;
  readonly #init: SessionCookieInit;

  constructor(init: SessionCookieInit = {}) {
    this.#init = init;
    this.#lifetime = init.lifetime;
    this.#expires = init.expires;
  }

  /** The lifetime in ms the cookie is issued with; `null` for a cookie that ends with the browser. */
  get originalMaxAge(): number | null {
    return this.#lifetime === undefined ? (this.#init.maxAge ?? null) : this.#lifetime;
  }

  /** Milliseconds until the session ends unless used again; `null` for a cookie that ends with the browser. */
  get maxAge(): number | null {
    const expires = this.expiresAt();
    return expires === null ? null : expires - Date.now();
  }

  /** Sets this session's lifetime: ms from now (sliding with every use), or `null` for a cookie that ends with the browser. */
  set maxAge(ms: number | null) {
    if (ms !== null && (typeof ms !== "number" || !Number.isFinite(ms) || ms <= 0)) {
      throw new SessionUsageError(`req.session.cookie.maxAge must be a positive number of milliseconds, or null for a cookie that ends with the browser; got ${String(ms)}`);
    }
    this.#lifetime = ms;
    this.#expires = ms === null ? undefined : Date.now() + ms;
    this.#renewed = true;
  }

  /** When the session ends unless used again; `null` for a cookie that ends with the browser. */
  get expires(): Date | null {
    const expires = this.expiresAt();
    return expires === null ? null : new Date(expires);
  }

  /** Sets this session's lifetime to end at `date` (sliding with every use), or `null`: ends with the browser. */
  set expires(date: Date | null) {
    if (date !== null && !(date instanceof Date && Number.isFinite(date.getTime()))) {
      throw new SessionUsageError(`req.session.cookie.expires must be a Date, or null for a cookie that ends with the browser; got ${String(date)}`);
    }
    this.maxAge = date === null ? null : Math.max(1, date.getTime() - Date.now());
  }

  get path(): string | undefined {
    return this.attributes().path;
  }
  get domain(): string | undefined {
    return this.attributes().domain;
  }
  get secure(): boolean | undefined {
    return this.attributes().secure;
  }
  get httpOnly(): boolean | undefined {
    return this.attributes().httpOnly;
  }
  get sameSite(): CookieAttributes["sameSite"] {
    return this.attributes().sameSite;
  }
  set path(_: unknown) {
    readOnly("path");
  }
  set domain(_: unknown) {
    readOnly("domain");
  }
  set secure(_: unknown) {
    readOnly("secure");
  }
  set httpOnly(_: unknown) {
    readOnly("httpOnly");
  }
  set sameSite(_: unknown) {
    readOnly("sameSite");
  }

  /** As express-session's cookie serializes. */
  toJSON(): Record<string, unknown> {
    const { originalMaxAge, expires, secure, httpOnly, domain, path, sameSite } = this;
    return { originalMaxAge, expires, secure, httpOnly, domain, path, sameSite };
  }

  /** Issues the cookie again with its whole lifetime (`touch()`, `resetMaxAge()`). */
  static renew(cookie: SessionCookie): void {
    const lifetime = cookie.originalMaxAge;
    cookie.#expires = lifetime === null ? undefined : Date.now() + lifetime;
    cookie.#renewed = true;
  }

  /** Saved: issued again only when something changes. */
  static saved(cookie: SessionCookie): void {
    cookie.#renewed = false;
  }

  static lifetimeOf(cookie: SessionCookie): SessionLifetime {
    return { lifetime: cookie.#lifetime, renewed: cookie.#renewed };
  }

  /** A new cookie with the store defaults of `defaults` and the chosen `lifetime` (a regenerated or moved session's). */
  static fresh(defaults: SessionCookie, lifetime: number | null | undefined): SessionCookie {
    const { maxAge, attributes } = defaults.#init;
    const next = new SessionCookie({ maxAge, attributes, lifetime });
    next.#renewed = lifetime !== undefined;
    return next;
  }

  /** Worked out when first read: a session whose cookie nobody looks at costs nothing here. */
  private attributes(): CookieView {
    const given = this.#init.attributes;
    return (typeof given === "function" ? given() : given) ?? {};
  }

  /** When the session ends unless used again (ms since the epoch); `null` for a browser-session cookie. */
  private expiresAt(): number | null {
    const lifetime = this.originalMaxAge;
    if (lifetime === null) return null;
    return this.#expires ?? Date.now() + lifetime;
  }
}

function readOnly(name: string): never {
  throw new SessionUsageError(`req.session.cookie.${name} is read-only: set cookie attributes with the store's \`cookie\` option (maxAge and expires can be set per session)`);
}
