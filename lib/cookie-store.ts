import type { IncomingMessage } from "node:http";
import { parse } from "cookie";
import { LRUCache } from "lru-cache";
import type { Cookie } from "./cookie";
import { SessionConfigError, SessionTooLargeError } from "./errors";
import { cookieEnd, idleTimeout } from "./expiry";
import { Seal } from "./seal";
import { Session } from "./session";
import type { SessionContext, SessionStore } from "./store";
import { type CommonStoreOptions, cookieInit, resolveBoolean, resolveCount, resolveStoreOptions, type StoreSettings } from "./store-options";

export interface CookieStoreOptions extends CommonStoreOptions {
  /**
   * At least 32 characters; an array rotates secrets: the first seals, all are tried on read.
   * `undefined` is accepted by the type so `process.env.SESSION_SECRET` can be passed as is;
   * it fails at construction with a message that says how to make one.
   */
  secret: string | readonly string[] | undefined;
  /** `true` (default): AES-256-GCM, unreadable by the client. `false`: signed only, readable base64url JSON. */
  encrypt?: boolean;
  /** Ceiling on the bytes of all session cookies together, as the browser sends them back (at most 1 MiB). Past it, `dump` throws `SessionTooLargeError`. Default 14336. */
  maxSize?: number;
}

/** Browsers drop cookies whose name=value exceeds 4096 bytes; stay clear of it. */
const CHUNK_LIMIT = 4000;
/** Node's default limit on request headers is 16 KiB: leave 2 KiB for the rest of the request. */
const DEFAULT_MAX_SIZE = 14_336;
/** Chunk counts are written with at most 3 digits; 1 MiB of cookies is far past what any browser keeps. */
const MAX_MAX_SIZE = 1_048_576;
/** Opened seals kept per store: a browser sends the same cookie until it changes. */
const OPENED_MAX = 1000;
const OPENED_MAX_BYTES = 8 * 1_048_576;
/** "~N~" before the first chunk: N is 2 to 999, written without leading zeros (one spelling per value). */
const CHUNK_HEAD = /^~([1-9]\d{0,2})~/;

/** What the store remembers between `load` and `dump` of one request (Session.setStoreState). */
interface Loaded {
  created: number;
  touched: number;
  /** The cookie lifetime the session chose (`req.session.cookie.maxAge`), if any. */
  lifetime: number | null | undefined;
  /** The session's JSON as it came out of the cookie: an unchanged session is not sealed again. */
  json: string;
  /** Opened with an older secret: issue it again under the first one. */
  rotated: boolean;
}

/**
 * Keeps the whole session in the browser's cookie, sealed with AES-256-GCM (or signed
 * only, with `encrypt: false`). No server state: a copied cookie stays valid until it
 * expires (see the README's security model).
 */
export class CookieStore implements SessionStore {
  readonly async = false;
  readonly encrypt: boolean;
  readonly maxAge: number;
  readonly absoluteTimeout: number | null;
  readonly maxSize: number;
  readonly touchAfter: number;
  private readonly settings: StoreSettings;
  private readonly seal: Seal;
  /**
   * Sealed value → what it opened to. Why: opening (AES-GCM or an HMAC) is most of a read's
   * cost, and a browser sends the same cookie on every request until it changes. Only seals
   * that opened are kept, so a forged cookie is checked in full every time.
   */
  private readonly opened = new LRUCache<string, { plaintext: string; rotated: boolean }>({
    max: OPENED_MAX,
    maxSize: OPENED_MAX_BYTES,
    sizeCalculation: (opened, sealed) => sealed.length + 2 * opened.plaintext.length,
  });

  constructor(options: CookieStoreOptions) {
    const owner = "CookieStore";
    this.settings = resolveStoreOptions(options, ["secret", "encrypt", "name", "cookie", "maxAge", "absoluteTimeout", "maxSize", "touchAfter"], owner);
    ({ maxAge: this.maxAge, absoluteTimeout: this.absoluteTimeout, touchAfter: this.touchAfter } = this.settings);
    this.encrypt = resolveBoolean(options.encrypt, true, "encrypt", owner);
    this.maxSize = resolveCount(options.maxSize, DEFAULT_MAX_SIZE, "maxSize", "bytes", owner);
    if (this.maxSize > MAX_MAX_SIZE) {
      throw new SessionConfigError(`${owner}: maxSize ${this.maxSize} is over ${MAX_MAX_SIZE} bytes, more than browsers keep in cookies; use RedisStore for large sessions`);
    }
    this.seal = new Seal(this.settings.secrets, this.settings.cookie.name, this.encrypt);
  }

  load(ctx: SessionContext): Session {
    const sealed = this.join(asSent(ctx));
    const opened = sealed === undefined ? undefined : this.open(sealed);
    const payload = opened && parsePayload(opened.plaintext);
    if (!payload) return Session.empty(cookieInit(this.settings, ctx.req));
    const { created, touched, lifetime, data, json } = payload;
    // Ended with the cookie that carried it (idle and absolute timeouts both, in whole seconds).
    if (Date.now() > cookieEnd(created, idleTimeout(lifetime, this.maxAge), this.absoluteTimeout, touched)) {
      return Session.empty(cookieInit(this.settings, ctx.req));
    }
    const session = new Session(data, cookieInit(this.settings, ctx.req, { lifetime, created, touched }));
    Session.setStoreState(session, this, { created, touched, lifetime, json, rotated: opened.rotated } satisfies Loaded);
    return session;
  }

  dump(session: Session, ctx: SessionContext): Cookie[] {
    const { req, cookies } = ctx;
    const { loadedId, destroyed } = Session.stateOf(session);
    if (destroyed && Session.isEmpty(session)) return this.expireAll(req, cookies);
    const now = Date.now();
    const loaded = loadedId === session.id ? (Session.storeState(session, this) as Loaded | undefined) : undefined;
    const json = Session.json(session);
    const { lifetime, renewed } = Session.lifetimeOf(session);
    const created = loaded ? loaded.created : now;
    const end = cookieEnd(created, idleTimeout(lifetime, this.maxAge), this.absoluteTimeout, now);
    // Unchanged: re-issued after touchAfter (or under the first secret), if a whole second is left.
    const unchanged = loaded !== undefined && !renewed && loaded.lifetime === lifetime && loaded.json === json;
    const fresh = loaded !== undefined && !loaded.rotated && now - loaded.touched < this.touchAfter;
    if (unchanged && (fresh || end === now)) return [];
    // A change with no whole second left for its cookie: the session ends now.
    if (end === now) return this.expireAll(req, cookies);
    const payload = lifetime === undefined ? `[${created},${now},${json}]` : `[${created},${now},${lifetime},${json}]`;
    const out = this.split(this.seal.seal(payload), req, lifetime === null ? undefined : end - now, cookies);
    Session.setStoreState(session, this, { created, touched: now, lifetime, json, rotated: false } satisfies Loaded);
    return out;
  }

  private open(sealed: string): { plaintext: string; rotated: boolean } | undefined {
    let opened = this.opened.get(sealed);
    if (opened === undefined) {
      opened = this.seal.open(sealed);
      if (opened !== undefined && sealed.length + 2 * opened.plaintext.length <= OPENED_MAX_BYTES) this.opened.set(sealed, opened);
    }
    return opened;
  }

  /**
   * The sealed value from the request: one cookie, or `~N~part0` plus `<name>.1` ... `<name>.N-1`,
   * cut exactly as `chunks` cuts it. Any other envelope around the same seal is an altered cookie.
   */
  private join(cookies: Record<string, string | undefined>): string | undefined {
    const name = this.settings.cookie.name;
    const first = cookies[name];
    if (!first) return undefined;
    const head = first[0] === "~" ? CHUNK_HEAD.exec(first) : undefined;
    if (head === null) return undefined;
    // One cookie: a value `chunks` would have cut is an altered one.
    if (head === undefined) return this.fitsOneCookie(first) ? first : undefined;
    const sent = [first];
    for (let i = 1; i < Number(head[1]); i++) {
      const part = cookies[`${name}.${i}`];
      if (part === undefined) return undefined;
      sent.push(part);
    }
    const value = sent.join("").slice(head[0].length);
    const written = this.chunks(value);
    return written.length === sent.length && written.every((part, i) => part === sent[i]) ? value : undefined;
  }

  /** `true` when `name=value` of a sealed value fits one cookie of at most CHUNK_LIMIT bytes. */
  private fitsOneCookie(value: string): boolean {
    return this.settings.cookie.name.length + 1 + value.length <= CHUNK_LIMIT;
  }

  /** How a sealed value is cut over cookies of at most CHUNK_LIMIT bytes: one, or `~N~part0` and the rest. */
  private chunks(value: string): string[] {
    const name = this.settings.cookie.name;
    if (this.fitsOneCookie(value)) return [value];
    const room = CHUNK_LIMIT - name.length - 6; // "=", ".NNN" or "~NNN~" overhead
    const parts: string[] = [];
    for (let at = 0; at < value.length; at += room) parts.push(value.slice(at, at + room));
    parts[0] = `~${parts.length}~${parts[0]}`;
    return parts;
  }

  /** Splits a sealed value over cookies (see `chunks`); expires chunks left from a larger session. */
  private split(value: string, req: IncomingMessage, lifetime: number | undefined, cookies: Record<string, string>): Cookie[] {
    const settings = this.settings.cookie;
    const name = settings.name;
    const parts = this.chunks(value);
    const names = parts.map((_, i) => (i === 0 ? name : `${name}.${i}`));
    const size = parts.reduce((sum, part, i) => sum + names[i].length + 1 + part.length, 2 * (parts.length - 1));
    if (size > this.maxSize) {
      throw new SessionTooLargeError(
        `the session in cookie "${name}" seals to ${size} bytes, over CookieStore maxSize (${this.maxSize}); ` +
          "browsers and Node's 16 KiB header limit would drop it. Keep less in the session, or use RedisStore for large sessions",
      );
    }
    const out = parts.map((part, i) => settings.make(req, part, lifetime, names[i]));
    for (let i = parts.length; cookies[`${name}.${i}`] !== undefined; i++) out.push(settings.expire(req, `${name}.${i}`));
    return out;
  }

  /** Expires the session cookie and every chunk the browser sent. */
  private expireAll(req: IncomingMessage, cookies: Record<string, string>): Cookie[] {
    const settings = this.settings.cookie;
    const out = [settings.expire(req)];
    for (let i = 1; cookies[`${settings.name}.${i}`] !== undefined; i++) out.push(settings.expire(req, `${settings.name}.${i}`));
    return out;
  }
}

/**
 * The request's cookies as the browser sent them. The parsed ones have %XX escapes decoded, which
 * would give a seal (written without escapes) a second spelling; parse again only when there are some.
 */
function asSent(ctx: SessionContext): Record<string, string | undefined> {
  const header = ctx.req.headers.cookie;
  return header !== undefined && header.includes("%") ? parse(header, { decode: (value) => value }) : ctx.cookies;
}

/** A sealed payload: `[created, touched, data]`, or `[created, touched, lifetime, data]` for a session that chose its cookie's lifetime. */
interface Payload {
  created: number;
  touched: number;
  lifetime: number | null | undefined;
  data: { id: string } & Record<string, unknown>;
  /** The data's JSON, as sealed. */
  json: string;
}

/** Parses a sealed payload; anything else (even if authentic) gives `undefined`. */
function parsePayload(plaintext: string): Payload | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || (parsed.length !== 3 && parsed.length !== 4)) return undefined;
  const [created, touched] = parsed as unknown[];
  const lifetime: unknown = parsed.length === 4 ? parsed[2] : undefined;
  const data = parsed[parsed.length - 1] as { id?: unknown } | null;
  if (typeof created !== "number" || typeof touched !== "number") return undefined;
  if (lifetime !== undefined && lifetime !== null && !(typeof lifetime === "number" && lifetime > 0)) return undefined;
  if (data === null || typeof data !== "object" || Array.isArray(data) || typeof data.id !== "string" || data.id === "") return undefined;
  return { created, touched, lifetime, data: data as Payload["data"], json: plaintext.slice(plaintext.indexOf("{"), -1) };
}
