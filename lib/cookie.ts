import type { IncomingMessage } from "node:http";
import { parse, stringifySetCookie } from "cookie";

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
    return new Cookie(name, "", withLifetime(attributes, 0, new Date(0)));
  }

  /** `true` when this cookie deletes itself in the browser. */
  get isExpired(): boolean {
    return this.attributes.maxAge === 0;
  }

  /** The `Set-Cookie` header value. */
  serialize(): string {
    const a = this.attributes;
    // Spelled out, and in the package's object form: its (name, value, options) form spreads the
    // options into a new object, which cost several µs per cookie in V8 (bench/FINDINGS.md).
    const cookie = {
      name: this.name,
      value: this.value,
      maxAge: a.maxAge === undefined ? undefined : Math.floor(a.maxAge / 1000),
      expires: a.expires,
      domain: a.domain,
      path: a.path,
      secure: a.secure,
      httpOnly: a.httpOnly,
      sameSite: a.sameSite,
      partitioned: a.partitioned,
      priority: a.priority,
    };
    return stringifySetCookie(cookie, { encode: this.encoder() });
  }

  /** How the value is written: as it is when it needs no escaping, else URI-encoded. */
  protected encoder(): (value: string) => string {
    return SAFE_VALUE.test(this.value) ? identity : encodeURIComponent;
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

/** `attributes` with another lifetime. */
export function withLifetime(attributes: Readonly<CookieAttributes>, maxAge: number | undefined, expires?: Date): CookieAttributes {
  const a = attributes;
  return { maxAge, expires, domain: a.domain, path: a.path, secure: a.secure, httpOnly: a.httpOnly, sameSite: a.sameSite, partitioned: a.partitioned, priority: a.priority };
}

function identity(value: string): string {
  return value;
}
