import type { IncomingMessage } from "node:http";
import { Cookie, type CookieAttributes, withLifetime } from "./cookie";
import { SessionConfigError } from "./errors";

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
    const flag = (what: keyof CookieOptions, fix = "use true or false"): boolean | undefined => {
      const value = options[what];
      if (value === undefined || typeof value === "boolean") return value;
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
  }

  /** A cookie with this store's name (or `name`), attributes and lifetime for this request. */
  make(req: IncomingMessage, value: string, maxAge: number | undefined, name = this.name): Cookie {
    return new Cookie(name, value, withLifetime(this.attributes(req), maxAge));
  }

  /** The attributes of this store's cookie for this request (what `req.session.cookie` shows). */
  attributes(req: IncomingMessage): CookieAttributes {
    const b = this.base;
    return { path: b.path, httpOnly: b.httpOnly, sameSite: b.sameSite, domain: b.domain, partitioned: b.partitioned, priority: b.priority, secure: this.isSecure(req) };
  }

  /** A cookie that deletes `name` (default: this store's cookie) in the browser. */
  expire(req: IncomingMessage, name = this.name): Cookie {
    return Cookie.expired(name, this.attributes(req));
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
