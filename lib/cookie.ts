import type { IncomingMessage } from "node:http";
import { parse, serialize } from "cookie";

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

function identity(value: string): string {
  return value;
}
