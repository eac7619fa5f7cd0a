import { createHash } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { Cookie } from "./cookie";
import { SessionConfigError, SessionEndedError, SessionStoreUnavailableError } from "./errors";
import { cookieEnd, idleTimeout } from "./expiry";
import { type CommandSender, createOwnedClient, type OwnedClient, parseRedisUrl, type RedisClient, senderFor } from "./redis-client";
import { hashChanges, sessionFromHash, type StoredHash } from "./redis-hash";
import { Session } from "./session";
import { SignedIdCookie } from "./signed-id";
import type { SessionContext, SessionStore } from "./store";
import { type CommonStoreOptions, cookieInit, resolveDuration, resolveStoreOptions, type StoreSettings } from "./store-options";

export type { RedisClient } from "./redis-client";

export interface RedisStoreOptions extends CommonStoreOptions {
  /** Your client (see `RedisClient`). Give either `client` or `url`. */
  client?: RedisClient;
  /** `redis://[[user]:password@]host:port[/db]` (or `rediss://`): the store creates, owns and `close()`s a node-redis client. */
  url?: string;
  /**
   * Signs the id in the cookie: at least 32 characters; an array rotates secrets (the first signs,
   * all are accepted). `undefined` (an unset environment variable) fails at construction.
   */
  secret: string | readonly string[] | undefined;
  /** Prepended to the session id to make the Redis key. Default `"sess:"`. */
  prefix?: string;
  /** Longest wait for Redis on each load and save, in ms; past it the request fails with a 503. Default 2000. */
  timeout?: number;
}

const OWNER = "RedisStore";
/** Node runs a longer timer after 1 ms instead. */
const MAX_TIMER = 2_147_483_647;

/**
 * A save, as one Lua script that Redis runs atomically. KEYS[1]: the session's hash. ARGV[1]:
 * its TTL in ms. ARGV[2]: "1" when the hash is written whole (a session new here), else "0".
 * ARGV[3]: n, the number of fields to delete; ARGV[4 .. 3 + n]: their names; the rest: field,
 * value pairs to set. A session that is not new, and whose hash has no creation time, ended
 * while this request ran (destroyed, or expired): nothing is written, so no remains are left.
 * Arguments go to HDEL/HSET 4000 at a time (Lua's unpack has a limit).
 */
const SAVE_SCRIPT = `local key = KEYS[1]
if ARGV[2] ~= '1' and redis.call('HEXISTS', key, string.char(0) .. 'created') == 0 then return 0 end
local last = 3 + tonumber(ARGV[3])
for i = 4, last, 4000 do redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 3999, last))) end
for i = last + 1, #ARGV, 4000 do redis.call('HSET', key, unpack(ARGV, i, math.min(i + 3999, #ARGV))) end
redis.call('PEXPIRE', key, ARGV[1])
return 1`;
const SAVE_SHA = createHash("sha1").update(SAVE_SCRIPT).digest("hex");
/** The session a regenerated one replaces was gone: nothing was written. */
const ENDED = Symbol("ended");

/** What the store remembers between `load` and `dump` (Session.setStoreState). */
interface Loaded {
  stored: StoredHash | undefined;
  /** The browser's cookie is signed with the first secret. */
  current: boolean;
}

/**
 * Keeps sessions in Redis; the browser's cookie carries only the session id, signed, so a
 * forged or guessed id never reaches Redis.
 *
 * A session is a hash at `prefix + id` (see redis-hash.ts) whose TTL follows the session's
 * expiry. Loading is one `HGETALL`; saving is one atomic script that writes only the fields
 * this request changed, so two concurrent requests that change different keys both persist.
 * The cookie is re-issued and the TTL slid only every `touchAfter` ms: in between, an
 * unchanged session costs no command at all.
 *
 * Every load and save waits at most `timeout` ms; a stalled, unreachable or failing Redis gives a
 * `SessionStoreUnavailableError` (status 503), and requests succeed again when Redis is back.
 */
export class RedisStore implements SessionStore {
  readonly async = true;
  /** The client the store talks through: yours, or the one it created from `url`. */
  readonly client: RedisClient;
  readonly prefix: string;
  readonly maxAge: number;
  readonly absoluteTimeout: number | null;
  readonly touchAfter: number;
  readonly timeout: number;
  private readonly settings: StoreSettings;
  private readonly cookie: SignedIdCookie;
  private readonly redis: CommandSender;
  /** Set when the store created the client from `url` (and must close it). */
  private readonly owned: OwnedClient | undefined;
  /** Where Redis is, for error messages (the url without its password). */
  private readonly where: string;
  /** The owned client's last connection error, to say why Redis did not answer. */
  private lastError: Error | undefined;
  /** Pending until the owned client first connects: commands wait for it (bounded by `timeout`). */
  private connecting: Promise<unknown> | undefined;

  constructor(options: RedisStoreOptions) {
    const settings = (this.settings = resolveStoreOptions(options, ["client", "url", "secret", "prefix", "name", "cookie", "maxAge", "absoluteTimeout", "touchAfter", "timeout"], OWNER));
    ({ maxAge: this.maxAge, absoluteTimeout: this.absoluteTimeout, touchAfter: this.touchAfter } = settings);
    const prefix = options.prefix ?? "sess:";
    if (typeof prefix !== "string") {
      throw new SessionConfigError(`${OWNER}: prefix must be a string (prepended to the session id to make the Redis key), got ${JSON.stringify(prefix)}`);
    }
    this.prefix = prefix;
    this.timeout = resolveDuration(options.timeout, 2000, "timeout", OWNER) as number;
    if (this.timeout > MAX_TIMER) {
      throw new SessionConfigError(`${OWNER}: timeout must be at most ${MAX_TIMER} ms (Node's longest timer; a few seconds is usual), got ${this.timeout}`);
    }
    this.cookie = new SignedIdCookie(settings.cookie, settings.secrets);

    const { client, url } = options;
    if ((client === undefined) === (url === undefined || url === "")) {
      throw new SessionConfigError(
        client === undefined
          ? `${OWNER} needs a Redis connection: pass { url: process.env.REDIS_URL } (e.g. "redis://127.0.0.1:6379"; the store creates and owns the client) or { client } (a connected node-redis or ioredis client); the url is missing or empty`
          : `${OWNER}: give either client or url, not both (url makes the store create its own client)`,
      );
    }
    if (client !== undefined) {
      this.client = client;
      this.redis = senderFor(client);
      this.where = "through the client given to RedisStore";
    } else {
      const parsed = parseRedisUrl(url);
      const owned = createOwnedClient(parsed.href);
      owned.on("error", (err) => (this.lastError = err)); // without a listener, an 'error' event would crash the process
      owned.on("ready", () => (this.lastError = undefined));
      // It retries until it connects or is closed; its failures arrive as 'error' events (above).
      this.connecting = owned.connect().finally(() => (this.connecting = undefined)).catch(() => undefined);
      this.client = this.owned = owned;
      this.redis = senderFor(owned);
      if (parsed.password !== "") parsed.password = "***";
      this.where = `at ${parsed.href} (the url option)`;
    }
  }

  /**
   * The request's session: a new empty one when the request has no valid signed id (no Redis
   * command is sent then), else the stored session, or a new empty one if it has ended.
   */
  load(ctx: SessionContext): Session | Promise<Session> {
    const signed = this.cookie.read(ctx.cookies);
    if (signed === undefined) return Session.empty(cookieInit(this.settings, ctx.req));
    const key = this.prefix + signed.id;
    return this.run("load", "HGETALL", key, ["HGETALL", key]).then((reply) => {
      const found = sessionFromHash(signed.id, reply, this.absoluteTimeout, Date.now(), (stored) => cookieInit(this.settings, ctx.req, stored));
      if (found === undefined) return Session.empty(cookieInit(this.settings, ctx.req));
      Session.setStoreState(found.session, this, { stored: found.stored, current: signed.current } satisfies Loaded);
      return found.session;
    });
  }

  /**
   * Saves what changed (one round trip) and returns the signed id cookie, with Max-Age = the key's
   * TTL; or, while the browser's cookie is fresh, no cookie (`[]`), and no command at all when
   * nothing changed either.
   */
  dump(session: Session, ctx: SessionContext): Cookie[] | Promise<Cookie | Cookie[]> {
    const id = session.id;
    const loaded = Session.storeState(session, this) as Loaded | undefined;
    const stored = loaded?.stored;
    const oldKey = stored !== undefined && stored.id !== id ? this.prefix + stored.id : undefined;
    if (Session.stateOf(session).destroyed && Session.isEmpty(session)) {
      const deleted = oldKey === undefined ? Promise.resolve() : this.run("save", "DEL", oldKey, ["DEL", oldKey]);
      return deleted.then(() => {
        Session.setStoreState(session, this, undefined);
        return this.cookie.expire(ctx.req);
      });
    }
    const now = Date.now();
    const same = stored?.id === id ? stored : undefined;
    const { lifetime, renewed } = Session.lifetimeOf(session);
    const idle = idleTimeout(lifetime, this.maxAge);
    // Re-issued after touchAfter (or under the first secret, or with a new lifetime), if a whole second is left for it.
    const due = same === undefined || !loaded!.current || renewed || lifetime !== same.lifetime || this.touchDue(same, now);
    const touch = due && (same === undefined || cookieEnd(same.created, idle, this.absoluteTimeout, now) > now);
    const changes = hashChanges(session, stored, touch, now);
    // Nothing to send: answer synchronously, so the response is not held for a tick.
    if (!touch && changes.set.length === 0 && changes.removed.length === 0) return [];
    // The key lives as long as the cookie the browser holds (a new one, or the last one issued);
    // with no whole second left (a maxAge under a second), the script's PEXPIRE 0 deletes it.
    const { created, touched } = changes.next;
    const ttl = Math.max(0, cookieEnd(created, idle, this.absoluteTimeout, touched) - now);
    const key = this.prefix + id;
    const { removed, set } = changes;
    const args = ["EVALSHA", SAVE_SHA, "1", key, String(ttl), changes.whole ? "1" : "0", String(removed.length), ...removed, ...set];
    const write = () => this.run("save", "the save script (HDEL/HSET/PEXPIRE)", key, args);
    // The old key is deleted beside the script, not inside it: in a cluster it lives in another slot.
    const deleteOld = () => (oldKey === undefined ? Promise.resolve(1) : this.run("save", "DEL", oldKey, ["DEL", oldKey]));
    // A regenerated session may carry the data of the one it replaces: written only if that one
    // still existed (it may have been signed out by another request meanwhile).
    const work = Session.stateOf(session).regenerated
      ? deleteOld().then((deleted) => (deleted === 0 ? ENDED : write()))
      : Promise.all([write(), deleteOld()]).then(([written]) => written);
    return work.then((written) => {
      // The script writes nothing to a session that ended while this request used it.
      if (written === ENDED || written === 0) {
        if (changes.changed) throw new SessionEndedError();
        return this.cookie.expire(ctx.req);
      }
      Session.setStoreState(session, this, { stored: changes.next, current: true } satisfies Loaded);
      if (ttl === 0) return this.cookie.expire(ctx.req);
      return touch ? this.cookie.issue(ctx.req, id, lifetime === null ? undefined : ttl) : [];
    });
  }

  /** Releases the client the store created from `url`; a client you passed stays open (it is yours to close). */
  async close(): Promise<void> {
    const client = this.owned;
    if (client === undefined || !client.isOpen) return;
    // A connection attempt in flight would outlive destroy() (node-redis 5.12): let it finish first.
    if (this.connecting !== undefined) await Promise.race([this.connecting, delay(this.timeout, undefined, { ref: false })]);
    // close() waits for replies still owed, which never come while Redis is unreachable.
    if (client.isReady) await client.close();
    else client.destroy();
  }

  /**
   * Whether a stored session's cookie is issued again and its TTL slid, by time: once `touchAfter`
   * has passed since it last was. A touch time in the future comes from an app instance whose
   * clock is ahead: touch now rather than wait (the session could expire meanwhile).
   */
  private touchDue(stored: StoredHash, now: number): boolean {
    const elapsed = now - stored.touched;
    return elapsed >= this.touchAfter || elapsed < 0;
  }

  /**
   * One command, bounded by `timeout`. On timeout the request gives up on the command; its late
   * reply or error is swallowed, never unhandled. (It is not cancelled: node-redis 5.12's
   * AbortSignal support can corrupt the client's command queue when queued commands are aborted.)
   * A save script unknown to Redis (new, restarted, flushed) is sent whole, which caches it.
   */
  private run(doing: "load" | "save", command: string, key: string, args: string[]): Promise<unknown> {
    const send = () =>
      this.redis.send(key, args).catch((err: unknown) => {
        if (args[0] !== "EVALSHA" || !(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
        return this.redis.send(key, ["EVAL", SAVE_SCRIPT, ...args.slice(2)]);
      });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(this.unavailable(doing, `Redis did not answer ${command} within ${this.timeout} ms`, undefined)), this.timeout);
      const attempt = () =>
        Promise.resolve()
          .then(send)
          .then(
            (reply) => {
              clearTimeout(timer);
              resolve(reply);
            },
            (err: unknown) => {
              clearTimeout(timer);
              reject(this.unavailable(doing, `Redis failed ${command}: ${err instanceof Error ? err.message : String(err)}`, err));
            },
          );
      // A settled promise ignores later calls: a reply after the timeout is dropped, never unhandled.
      if (this.connecting === undefined) attempt();
      else this.connecting.then(attempt);
    });
  }

  private unavailable(doing: "load" | "save", what: string, cause: unknown): SessionStoreUnavailableError {
    const outcome = doing === "load" ? "could not load the session" : "could not save the session (it may or may not be saved)";
    const last = this.lastError === undefined ? "" : ` (last connection error: ${this.lastError.message})`;
    return new SessionStoreUnavailableError(
      `${OWNER} ${outcome}: ${what}${last}. Check that Redis is running and reachable ${this.where}, or raise the timeout option if it is only slow`,
      { cause },
    );
  }
}
