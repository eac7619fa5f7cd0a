import { createCipheriv, createDecipheriv, createSecretKey, hkdfSync, type KeyObject, randomFillSync } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { sign, unsign } from "cookie-signature";
import { LRUCache } from "lru-cache";
import { type Cookie, type CookieOptions, CookieSettings } from "./cookie";
import { copyJson, type JsonValue, sameFields } from "./json-copy";
import { SessionConfigError, SessionTooLargeError } from "./errors";
import { checkKeys, pastAbsoluteTimeout, remainingLife, resolveBoolean, resolveCount, resolveDuration, resolveSecrets, resolveTouchAfter } from "./options";
import { keepOnSession, keptOnSession, Session, sessionFromParsed } from "./session";
import type { SessionContext, SessionStore } from "./store";

export interface CookieStoreOptions {
  /**
   * At least 32 characters; an array rotates secrets: the first seals, all are tried on read.
   * `undefined` is accepted by the type so `process.env.SESSION_SECRET` can be passed as is;
   * it fails at construction with a message that says how to make one.
   */
  secret: string | readonly string[] | undefined;
  /** `true` (default): AES-256-GCM, unreadable by the client. `false`: signed only, readable base64url JSON. `"true"`/`"false"` are accepted too. */
  encrypt?: boolean;
  /** Cookie name. Default `"session"`. Chunks are named `<name>.1`, `<name>.2`, ... */
  name?: string;
  /** Cookie attributes. Defaults: HttpOnly, SameSite=Lax, Path=/, Secure when the request is secure. */
  cookie?: CookieOptions;
  /** Idle timeout in ms, checked on the server and used as the cookie's Max-Age. Default 1 day. */
  maxAge?: number;
  /** Time since the session was created (or regenerated) after which it ends, in ms; `null` for none. Default 7 days. */
  absoluteTimeout?: number | null;
  /** Ceiling on the bytes of all session cookies together, as the browser sends them back (at most 1 MiB). Past it, `dump` throws `SessionTooLargeError`. Default 14336. */
  maxSize?: number;
  /** An unchanged session's cookie is re-issued (sliding the idle timeout) only after this many ms; shorter than maxAge; `0` re-issues on every request. Default min(60 s, maxAge / 10). */
  touchAfter?: number;
}

const OPTIONS = ["secret", "encrypt", "name", "cookie", "maxAge", "absoluteTimeout", "maxSize", "touchAfter"] as const;
const DAY = 86_400_000;
/** Browsers drop cookies whose name=value exceeds 4096 bytes; stay clear of it. */
const CHUNK_LIMIT = 4000;
/** Node's default limit on request headers is 16 KiB: leave 2 KiB for the rest of the request. */
const DEFAULT_MAX_SIZE = 14_336;
/** Chunk counts are written with at most 3 digits; 1 MiB of cookies is far past what any browser keeps. */
const MAX_MAX_SIZE = 1_048_576;
const SEAL_VERSION = 1;
const SEAL_HEAD = Buffer.of(SEAL_VERSION);
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** "~N~" before the first chunk: N is 2 to 999, written without leading zeros (one spelling per value). */
const CHUNK_HEAD = /^~([1-9]\d{0,2})~/;

/** What the store remembers between `load` and `dump` of one request: kept on the session (keepOnSession) under this key. */
const LOADED = Symbol("CookieStore loaded");

/** What the store remembers between `load` and `dump` of one request. */
interface Loaded {
  created: number;
  touched: number;
  /** The session's JSON as it came out of the cookie: unchanged sessions are not re-sealed. */
  json: string;
  /** The same, parsed: each load hands out a copy (never this object), and dump compares with it first. */
  data: SessionJson;
  /** Opened with an older secret: re-issue under the first one. */
  rotated: boolean;
  /** The sealed value this was opened from. */
  seal: string;
}

/**
 * Opened seals are cached under their last 24 characters, which fall in the GCM tag (or the
 * HMAC) and so differ from seal to seal: hashing them instead of the whole seal took about
 * 0.2 µs off every cached load. An entry is used only when its whole seal matches.
 */
const CACHE_KEY_CHARS = 24;

/** What the seal cache may hold: 1,000 typical sessions take about 1 MB; sessions of 3 KB, about 15 MB without this bound. */
const CACHE_BYTES = 8 * 1024 * 1024;

/**
 * The largest entry the seal cache keeps: an eighth of it, so one session cannot push out
 * everyone else's. A session of the default maxSize (14 KB of cookies) takes about 90 KB; one
 * near the 1 MiB maxSize ceiling would take several MB, and is opened on every request.
 */
const CACHE_ENTRY_BYTES = CACHE_BYTES / 8;

/**
 * An entry's bytes, estimated: the seal, plus the JSON and the parsed data, which together
 * measured about 6.7 times the JSON's length (a 2.2 KB session of 200 keys took 14.7 KB).
 */
function cacheSize(loaded: Readonly<Loaded>): number {
  return loaded.seal.length + 7 * loaded.json.length;
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
  private readonly cookie: CookieSettings;
  /** The secrets as HMAC keys for `encrypt: false` (cookie-signature takes a KeyObject: no key set-up per signature). */
  private readonly signingKeys: KeyObject[];
  private readonly keys: Buffer[];
  private readonly aad: Buffer;
  /** `<name>.1`, the second chunk's name, made once: looking up a string built per request costs a string-table search. */
  private readonly secondChunk: string;
  /**
   * Seals opened recently (keyed by CACHE_KEY_CHARS of their text, chunks joined), so an
   * unchanged cookie is decrypted once rather than on every request. At most 1,000 of them and
   * about CACHE_BYTES (each entry holds the seal, its JSON and the parsed data); a session whose
   * entry would take more than CACHE_ENTRY_BYTES is opened on every request instead. Expiry is
   * still checked on every load.
   */
  private readonly opened = new LRUCache<string, Readonly<Loaded>>({ max: 1000, maxSize: CACHE_BYTES, maxEntrySize: CACHE_ENTRY_BYTES, sizeCalculation: cacheSize });

  constructor(options: CookieStoreOptions) {
    const owner = "CookieStore";
    checkKeys(options ?? {}, OPTIONS, owner);
    const secrets = resolveSecrets(options?.secret, owner);
    this.encrypt = resolveBoolean(options.encrypt, true, "encrypt", owner);
    this.cookie = new CookieSettings(options.name ?? "session", options.cookie, owner);
    this.maxAge = resolveDuration(options.maxAge, DAY, "maxAge", owner) as number;
    this.absoluteTimeout = resolveDuration(options.absoluteTimeout, 7 * DAY, "absoluteTimeout", owner, true);
    this.maxSize = resolveCount(options.maxSize, DEFAULT_MAX_SIZE, "maxSize", "bytes", owner);
    if (this.maxSize > MAX_MAX_SIZE) {
      throw new SessionConfigError(`${owner}: maxSize ${this.maxSize} is over ${MAX_MAX_SIZE} bytes, more than browsers keep in cookies; use RedisStore for large sessions`);
    }
    this.touchAfter = resolveTouchAfter(options.touchAfter, this.maxAge, owner);
    this.keys = secrets.map((secret) => Buffer.from(hkdfSync("sha256", secret, "", "sessionbox CookieStore AES-256-GCM", 32)));
    this.signingKeys = secrets.map((secret) => createSecretKey(Buffer.from(secret, "utf8")));
    this.aad = Buffer.from(this.cookie.name);
    this.secondChunk = `${this.cookie.name}.1`;
  }

  load(ctx: SessionContext): Session {
    const raw = this.join(ctx.cookies);
    if (raw === undefined) return Session.empty();
    // A browser sends the same cookie until it changes: open each seal once, not on every request.
    const key = raw.slice(-CACHE_KEY_CHARS);
    let loaded = this.opened.get(key);
    if (loaded !== undefined && loaded.seal !== raw) loaded = undefined;
    if (loaded === undefined) {
      const opened = this.open(raw);
      const payload = opened && parsePayload(opened.plaintext);
      if (!payload) return Session.empty();
      loaded = { created: payload[0], touched: payload[1], json: payload[3], data: payload[2], rotated: opened.rotated, seal: raw };
      this.opened.set(key, loaded);
    }
    const now = Date.now();
    if (now - loaded.touched > this.maxAge) return Session.empty();
    if (pastAbsoluteTimeout(loaded.created, this.absoluteTimeout, now)) return Session.empty();
    const session = sessionFromParsed(loaded.data, copyJson as (value: unknown) => unknown);
    keepOnSession(session, LOADED, loaded);
    return session;
  }

  dump(session: Session, ctx: SessionContext): Cookie[] {
    const { req, cookies } = ctx;
    const { loadedId, destroyed } = Session.stateOf(session);
    if (destroyed && Session.isEmpty(session)) return this.expireAll(req, cookies);
    const now = Date.now();
    const loaded = loadedId === session.id ? keptOnSession(session, LOADED) as Loaded | undefined : undefined;
    const keep = loaded !== undefined && !loaded.rotated && now - loaded.touched < this.touchAfter;
    // Unchanged: compare with the parsed copy first (cheap); when it cannot tell, with the JSON text.
    if (keep && sameFields(session, loaded.data)) return [];
    const json = JSON.stringify(session);
    if (keep && loaded.json === json) return [];
    const created = loaded ? loaded.created : now;
    const lifetime = remainingLife(created, this.maxAge, this.absoluteTimeout, now);
    return this.split(this.seal(`[${created},${now},${json}]`), req, lifetime, cookies);
  }

  /**
   * Seals the plaintext: AES-256-GCM bound to the cookie name, or an HMAC over name=value. The
   * result is base64url, or base64url, "." and cookie-signature's base64 signature without
   * padding: characters `makeSealed` may put in a Set-Cookie unescaped.
   */
  private seal(plaintext: string): string {
    if (!this.encrypt) {
      const name = this.cookie.name;
      return sign(`${name}=${Buffer.from(plaintext).toString("base64url")}`, this.signingKeys[0]).slice(name.length + 1);
    }
    const iv = nextIv();
    const cipher = createCipheriv("aes-256-gcm", this.keys[0], iv);
    cipher.setAAD(this.aad);
    const body = cipher.update(plaintext, "utf8");
    cipher.final(); // GCM is a stream mode: final() adds no bytes, it computes the tag
    return Buffer.concat([SEAL_HEAD, iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** Opens a seal with each secret in turn; `undefined` when none fits. */
  private open(value: string): { plaintext: string; rotated: boolean } | undefined {
    if (!this.encrypt) {
      const name = this.cookie.name;
      for (let i = 0; i < this.signingKeys.length; i++) {
        const signed = unsign(`${name}=${value}`, this.signingKeys[i]);
        if (signed !== false) return { plaintext: Buffer.from(signed.slice(name.length + 1), "base64url").toString("utf8"), rotated: i > 0 };
      }
      return undefined;
    }
    if (!BASE64URL.test(value)) return undefined;
    const sealed = Buffer.from(value, "base64url");
    if (sealed.length <= 1 + IV_BYTES + TAG_BYTES || sealed[0] !== SEAL_VERSION) return undefined;
    const iv = sealed.subarray(1, 1 + IV_BYTES);
    const body = sealed.subarray(1 + IV_BYTES, sealed.length - TAG_BYTES);
    const tag = sealed.subarray(sealed.length - TAG_BYTES);
    for (let i = 0; i < this.keys.length; i++) {
      try {
        const decipher = createDecipheriv("aes-256-gcm", this.keys[i], iv);
        decipher.setAAD(this.aad);
        decipher.setAuthTag(tag);
        const plaintext = decipher.update(body, undefined, "utf8") + decipher.final("utf8");
        return { plaintext, rotated: i > 0 };
      } catch {
        // wrong key or tampered: try the next secret
      }
    }
    return undefined;
  }

  /** The sealed value from the request: one cookie, or `~N~part0` plus `<name>.1` ... `<name>.N-1`. */
  private join(cookies: Record<string, string>): string | undefined {
    const first = cookies[this.cookie.name];
    if (!first || first[0] !== "~") return first || undefined;
    const head = CHUNK_HEAD.exec(first);
    if (head === null || head[1] === "1") return undefined; // "~1~" is never written
    const count = Number(head[1]);
    let value = first.slice(head[0].length);
    for (let i = 1; i < count; i++) {
      const part = cookies[`${this.cookie.name}.${i}`];
      if (part === undefined) return undefined;
      value += part;
    }
    return value;
  }

  /** Splits a sealed value over cookies of at most CHUNK_LIMIT bytes; expires chunks left from a larger session. */
  private split(value: string, req: IncomingMessage, lifetime: number, cookies: Record<string, string>): Cookie[] {
    const name = this.cookie.name;
    const whole = name.length + 1 + value.length; // name=value
    if (whole <= CHUNK_LIMIT && whole <= this.maxSize && cookies[this.secondChunk] === undefined) {
      return [this.cookie.makeSealed(req, value, lifetime)]; // one cookie, no chunks to clear: the usual case
    }
    let parts = [value];
    if (whole > CHUNK_LIMIT) {
      const room = CHUNK_LIMIT - name.length - 6; // "=", ".NNN" or "~NNN~" overhead
      parts = [];
      for (let at = 0; at < value.length; at += room) parts.push(value.slice(at, at + room));
      parts[0] = `~${parts.length}~${parts[0]}`;
    }
    const names = parts.map((_, i) => (i === 0 ? name : `${name}.${i}`));
    const size = parts.reduce((sum, part, i) => sum + names[i].length + 1 + part.length, 2 * (parts.length - 1));
    if (size > this.maxSize) {
      throw new SessionTooLargeError(
        `the session in cookie "${name}" seals to ${size} bytes, over CookieStore maxSize (${this.maxSize}); ` +
          "browsers and Node's 16 KiB header limit would drop it. Keep less in the session, or use RedisStore for large sessions",
      );
    }
    const out = parts.map((part, i) => this.cookie.makeSealed(req, part, lifetime, names[i]));
    for (let i = parts.length; cookies[`${name}.${i}`] !== undefined; i++) out.push(this.cookie.expire(req, `${name}.${i}`));
    return out;
  }

  /** Expires the session cookie and every chunk the browser sent. */
  private expireAll(req: IncomingMessage, cookies: Record<string, string>): Cookie[] {
    const out = [this.cookie.expire(req)];
    for (let i = 1; cookies[`${this.cookie.name}.${i}`] !== undefined; i++) out.push(this.cookie.expire(req, `${this.cookie.name}.${i}`));
    return out;
  }
}

/** A session's fields as parsed from its cookie. */
type SessionJson = { id: string } & { [key: string]: JsonValue };
type Payload = [created: number, touched: number, data: SessionJson, json: string];

/** Parses `[created,touched,{"id":...}]`; anything else (even if authentic) gives `undefined`. */
function parsePayload(plaintext: string): Payload | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(plaintext);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) return undefined;
  const [created, touched, data] = parsed as [unknown, unknown, { id?: unknown }];
  if (typeof created !== "number" || typeof touched !== "number") return undefined;
  if (data === null || typeof data !== "object" || Array.isArray(data) || typeof data.id !== "string" || data.id === "") return undefined;
  const json = plaintext.slice(plaintext.indexOf("{"), -1);
  return [created, touched, data as Payload[2], json];
}

/** Random IVs are drawn from a pool refilled 1,024 at a time: one call into OpenSSL per seal cost about 10 µs. */
const ivPool = Buffer.alloc(IV_BYTES * 1024);
let ivOffset = ivPool.length;

/** A fresh random 96-bit IV (never reused: each comes from new random bytes). */
function nextIv(): Buffer {
  if (ivOffset === ivPool.length) {
    randomFillSync(ivPool);
    ivOffset = 0;
  }
  ivOffset += IV_BYTES;
  return ivPool.subarray(ivOffset - IV_BYTES, ivOffset);
}
