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

/**
 * A cookie made by a store's `CookieSettings`: the same `Set-Cookie` text as `Cookie`, assembled
 * from the store's attribute text, which `cookie` serialized once at start-up. (Serializing the
 * attributes on every response cost about 5 µs per Set-Cookie.)
 */
class PreparedCookie extends Cookie {
  constructor(
    name: string,
    value: string,
    attributes: Readonly<CookieAttributes>,
    /** Everything after `Max-Age`, e.g. `; Path=/; HttpOnly; SameSite=Lax`. */
    private readonly tail: string,
    /** The maker built the value from SAFE_VALUE's alphabet only (CookieSettings.makeSealed): no need to test it. */
    private readonly safe: boolean,
  ) {
    super(name, value, attributes);
  }

  override serialize(): string {
    const maxAge = this.attributes.maxAge;
    // `cookie` writes Max-Age first, right after name=value; anything unusual takes the general path.
    if (maxAge === undefined || !Number.isFinite(maxAge) || !(this.safe || SAFE_VALUE.test(this.value))) return super.serialize();
    return `${this.name}=${this.value}; Max-Age=${Math.floor(maxAge / 1000)}${this.tail}`;
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
/** Longer names leave too little of the browser's 4096 bytes per cookie for the value. */
const MAX_NAME_LENGTH = 256;
const SAME_SITE = ["lax", "strict", "none"];
const PRIORITY = ["low", "medium", "high"];
/** The `cookie` package's rules for Domain and Path (plus a leading "/"), checked here so they fail at start-up. */
const DOMAIN = /^([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
const PATH = /^\/[\u0020-\u003A\u003D-\u007E]*$/;

/**
 * A store's resolved cookie settings: the name and attributes, validated once at
 * construction (a wrong value fails at start-up, not at the first request), and the
 * attributes for each response (defaults HttpOnly, SameSite=Lax, Path=/, Secure when the
 * request is secure; the `__Host-` and `__Secure-` prefixes force what browsers require).
 */
export class CookieSettings {
  readonly name: string;
  private readonly base: CookieAttributes;
  private readonly secure: boolean | "auto";
  /** The attribute text after Max-Age, without and with Secure (serialized once, by `cookie`). */
  private readonly tails: readonly [insecure: string, secure: string];

  constructor(name: string, options: CookieOptions = {}, owner: string) {
    if (typeof name !== "string" || !NAME.test(name) || name.length > MAX_NAME_LENGTH) {
      throw new SessionConfigError(
        `${owner}: cookie name ${JSON.stringify(name)} is not a valid cookie name; use 1 to ${MAX_NAME_LENGTH} letters, digits and - _ . only`,
      );
    }
    if (options === null || typeof options !== "object" || Array.isArray(options)) {
      throw new SessionConfigError(`${owner}: the \`cookie\` option must be an object of attributes (${COOKIE_OPTION_KEYS.join(", ")})`);
    }
    for (const key of Object.keys(options)) {
      if (!COOKIE_OPTION_KEYS.includes(key)) {
        throw new SessionConfigError(`${owner}: unknown cookie attribute "${key}"; the cookie option takes ${COOKIE_OPTION_KEYS.join(", ")} (set durations with the store's maxAge)`);
      }
    }
    const { domain, path = "/", sameSite = "lax", priority } = options;
    const bad = (what: string, value: unknown, fix: string) =>
      new SessionConfigError(`${owner}: cookie.${what} ${JSON.stringify(value)} is not valid; ${fix}`);
    // Flags may come from environment variables as "true"/"false".
    const flag = (what: keyof CookieOptions, fix = "use true or false"): boolean | undefined => {
      const value = options[what];
      if (value === undefined || typeof value === "boolean") return value;
      if (value === "true" || value === "false") return value === "true";
      throw bad(what, value, fix);
    };
    const secure = options.secure === "auto" ? "auto" : flag("secure", 'use true, false or "auto" (Secure when the request is)') ?? "auto";
    const httpOnly = flag("httpOnly") ?? true;
    const partitioned = flag("partitioned");
    if (domain !== undefined && (typeof domain !== "string" || !DOMAIN.test(domain))) {
      throw bad("domain", domain, 'give a host name such as "example.com", or leave it out for a host-only cookie');
    }
    if (typeof path !== "string" || !PATH.test(path)) throw bad("path", path, 'give a path that starts with "/" and has no ";" or control characters');
    const site = typeof sameSite === "string" ? sameSite.toLowerCase() : sameSite;
    if (typeof site !== "boolean" && !SAME_SITE.includes(site)) throw bad("sameSite", sameSite, 'use "lax", "strict", "none", true (strict) or false (no attribute)');
    const prio = typeof priority === "string" ? priority.toLowerCase() : priority;
    if (prio !== undefined && !PRIORITY.includes(prio as string)) throw bad("priority", priority, 'use "low", "medium" or "high"');

    this.name = name;
    this.secure = secure;
    // Browsers match the prefixes case-insensitively.
    const lower = name.toLowerCase();
    if (lower.startsWith("__host-")) {
      if (domain !== undefined || path !== "/" || secure === false) {
        throw new SessionConfigError(`${owner}: a "__Host-" cookie must be Secure, have Path=/ and no Domain; remove the domain/path/secure options or rename the cookie`);
      }
      this.secure = true;
    } else if (lower.startsWith("__secure-")) {
      if (secure === false) {
        throw new SessionConfigError(`${owner}: a "__Secure-" cookie must be Secure; remove secure: false or rename the cookie`);
      }
      this.secure = true;
    }
    if (this.secure === false && (site === "none" || partitioned === true)) {
      throw new SessionConfigError(
        `${owner}: ${site === "none" ? "SameSite=None" : "Partitioned"} cookies must be Secure (browsers drop them otherwise); set cookie.secure to true or "auto", or remove that attribute`,
      );
    }
    this.base = { path, httpOnly, sameSite: site as CookieAttributes["sameSite"], domain, partitioned, priority: prio as CookieAttributes["priority"] };
    const tail = (secure: boolean) => new Cookie(name, "", { ...this.base, secure }).serialize().slice(name.length + 1);
    this.tails = [tail(false), tail(true)];
  }

  /** A cookie with this store's name (or `name`), attributes and lifetime for this request. */
  make(req: IncomingMessage, value: string, maxAge: number | undefined, name = this.name): Cookie {
    return this.prepared(req, value, maxAge, name, false);
  }

  /**
   * `make` for a value its caller built from base64url, base64 and `.` and `~` only (a seal, or
   * a chunk of one): its `Set-Cookie` skips testing the value against the safe alphabet, a
   * regular expression over every character (about 3,000 instructions for a 300-byte seal, half
   * a percent of a whole `write` request).
   */
  makeSealed(req: IncomingMessage, value: string, maxAge: number | undefined, name = this.name): Cookie {
    return this.prepared(req, value, maxAge, name, true);
  }

  private prepared(req: IncomingMessage, value: string, maxAge: number | undefined, name: string, safe: boolean): Cookie {
    const secure = this.isSecure(req);
    return new PreparedCookie(name, value, this.attributes(secure, maxAge), this.tails[secure ? 1 : 0], safe);
  }

  /** A cookie that deletes `name` (default: this store's cookie) in the browser. */
  expire(req: IncomingMessage, name = this.name): Cookie {
    return Cookie.expired(name, this.attributes(this.isSecure(req), undefined));
  }

  /**
   * The attributes with `secure` and `maxAge`, spelled out: `{ ...this.base, secure, maxAge }`
   * cost about 1.5 µs per cookie (V8 copies a spread whose source holds `undefined` values
   * slowly), a third of a signed session's whole `dump`.
   */
  private attributes(secure: boolean, maxAge: number | undefined): CookieAttributes {
    const { path, httpOnly, sameSite, domain, partitioned, priority } = this.base;
    return { path, httpOnly, sameSite, domain, partitioned, priority, secure, maxAge };
  }

  private isSecure(req: IncomingMessage): boolean {
    return this.secure === "auto" ? isSecureRequest(req) : this.secure;
  }
}

/** Express's `req.secure` (which honours `trust proxy`) when present, else whether the socket is TLS. */
export function isSecureRequest(req: IncomingMessage): boolean {
  // Plain HTTP without X-Forwarded-Proto: Express's req.secure is false whatever `trust proxy`
  // says, so skip its getter chain (unless the request has a `secure` of its own).
  if (req.headers?.["x-forwarded-proto"] === undefined && !Object.hasOwn(req, "secure") && (req.socket as { encrypted?: boolean } | undefined)?.encrypted !== true) {
    return false;
  }
  const secure = (req as { secure?: unknown }).secure;
  if (typeof secure === "boolean") return secure;
  return (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
}

function identity(value: string): string {
  return value;
}
