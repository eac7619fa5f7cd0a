import type { IncomingMessage } from "node:http";
import { parse, serialize } from "cookie";
import { SessionConfigError } from "./errors";

/** Attributes of a `Set-Cookie`. Durations are milliseconds, as in Express's `res.cookie`. */
export interface CookieAttributes {
  /** Lifetime in milliseconds (`Max-Age`, rounded down to seconds). `0` expires the cookie. */
  maxAge?: number;
  expires?: Date;
  domain?: string;
  path?: string;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: "lax" | "strict" | "none" | boolean;
  partitioned?: boolean;
  priority?: "low" | "medium" | "high";
}

/** Characters that need no escaping in a cookie value (base64url, signatures, chunk markers). */
const SAFE_VALUE = /^[\w.+/=~:-]*$/;

/**
 * A cookie the browser must keep: what `store.dump` returns. Serialized by the `cookie`
 * package; values outside the safe alphabet are URI-encoded (and decoded on parse).
 */
export class Cookie {
  constructor(
    readonly name: string,
    readonly value: string,
    readonly attributes: Readonly<CookieAttributes> = {},
  ) {}

  /** A cookie that tells the browser to delete `name` now. */
  static expired(name: string, attributes: Readonly<CookieAttributes> = {}): Cookie {
    return new Cookie(name, "", { ...attributes, maxAge: 0, expires: new Date(0) });
  }

  /** `true` when this cookie deletes itself in the browser. */
  get isExpired(): boolean {
    return this.attributes.maxAge === 0;
  }

  /** The `Set-Cookie` header value. */
  serialize(): string {
    const { maxAge, ...rest } = this.attributes;
    return serialize(this.name, this.value, {
      ...rest,
      maxAge: maxAge === undefined ? undefined : Math.floor(maxAge / 1000),
      encode: SAFE_VALUE.test(this.value) ? identity : encodeURIComponent,
    });
  }

  toString(): string {
    return this.serialize();
  }
}

/** The request's cookies, parsed. A header that cannot be parsed gives no cookies. */
export function parseCookies(req: IncomingMessage): Record<string, string> {
  const header = req.headers.cookie;
  if (!header) return {};
  return parse(header) as Record<string, string>;
}

/** Cookie options as users give them: like `CookieAttributes`, with `secure: "auto"` (the default). */
export interface CookieOptions {
  domain?: string;
  path?: string;
  /** `true`, `false`, or `"auto"` (default): Secure when the request is (Express `trust proxy` respected). */
  secure?: boolean | "auto";
  httpOnly?: boolean;
  sameSite?: "lax" | "strict" | "none" | boolean;
  partitioned?: boolean;
  priority?: "low" | "medium" | "high";
}

const COOKIE_OPTION_KEYS = ["domain", "path", "secure", "httpOnly", "sameSite", "partitioned", "priority"];
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * A store's resolved cookie settings: the name, validated once at construction, and the
 * attributes for each response (defaults HttpOnly, SameSite=Lax, Path=/, Secure when the
 * request is secure; the `__Host-` and `__Secure-` prefixes force what browsers require).
 */
export class CookieSettings {
  readonly name: string;
  private readonly base: CookieAttributes;
  private readonly secure: boolean | "auto";

  constructor(name: string, options: CookieOptions = {}, owner: string) {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new SessionConfigError(`${owner}: cookie name ${JSON.stringify(name)} is not a valid cookie name; use letters, digits and - _ . only`);
    }
    if (options === null || typeof options !== "object") {
      throw new SessionConfigError(`${owner}: the \`cookie\` option must be an object of attributes (domain, path, secure, httpOnly, sameSite, partitioned, priority)`);
    }
    for (const key of Object.keys(options)) {
      if (!COOKIE_OPTION_KEYS.includes(key)) {
        throw new SessionConfigError(`${owner}: unknown cookie attribute "${key}"; the cookie option takes ${COOKIE_OPTION_KEYS.join(", ")} (set durations with the store's maxAge)`);
      }
    }
    this.name = name;
    this.secure = options.secure ?? "auto";
    if (name.startsWith("__Host-")) {
      if (options.domain !== undefined || (options.path ?? "/") !== "/" || options.secure === false) {
        throw new SessionConfigError(`${owner}: a "__Host-" cookie must be Secure, have Path=/ and no Domain; remove the domain/path/secure options or rename the cookie`);
      }
      this.secure = true;
    } else if (name.startsWith("__Secure-")) {
      if (options.secure === false) {
        throw new SessionConfigError(`${owner}: a "__Secure-" cookie must be Secure; remove secure: false or rename the cookie`);
      }
      this.secure = true;
    }
    this.base = {
      path: options.path ?? "/",
      httpOnly: options.httpOnly ?? true,
      sameSite: options.sameSite ?? "lax",
      domain: options.domain,
      partitioned: options.partitioned,
      priority: options.priority,
    };
    if (this.base.sameSite === "none" && this.secure === false) {
      throw new SessionConfigError(`${owner}: SameSite=None cookies must be Secure; set cookie.secure to true or "auto", or use sameSite "lax"`);
    }
  }

  /** A cookie with this store's name (or `name`), attributes and lifetime for this request. */
  make(req: IncomingMessage, value: string, maxAge: number | undefined, name = this.name): Cookie {
    return new Cookie(name, value, { ...this.base, secure: this.isSecure(req), maxAge });
  }

  /** A cookie that deletes `name` (default: this store's cookie) in the browser. */
  expire(req: IncomingMessage, name = this.name): Cookie {
    return Cookie.expired(name, { ...this.base, secure: this.isSecure(req) });
  }

  private isSecure(req: IncomingMessage): boolean {
    return this.secure === "auto" ? isSecureRequest(req) : this.secure;
  }
}

/** Express's `req.secure` (which honours `trust proxy`) when present, else whether the socket is TLS. */
export function isSecureRequest(req: IncomingMessage): boolean {
  const secure = (req as { secure?: unknown }).secure;
  if (typeof secure === "boolean") return secure;
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
}

function identity(value: string): string {
  return value;
}
