import { createHash } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import type { Cookie, CookieOptions } from "./cookie";
import { SessionConfigError, SessionStoreUnavailableError } from "./errors";
import { checkKeys, pastAbsoluteTimeout, remainingLife, resolveDuration, resolveSecrets, resolveTouchAfter } from "./options";
import { keepOnSession, keptOnSession, Session } from "./session";
import { SignedIdCookie } from "./signed-id";
import type { SessionContext, SessionStore } from "./store";

/**
 * A Redis client RedisStore can talk through: a node-redis client or cluster (`createClient`,
 * `createCluster` from `redis` v4 or later) or an ioredis `Redis` or `Redis.Cluster`.
 * Pass it connected (or connecting); RedisStore never closes a client you pass.
 */
export type RedisClient = object;

export interface RedisStoreOptions {
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
  /** Cookie name. Default `"session"`. */
  name?: string;
  /** Cookie attributes. Defaults: HttpOnly, SameSite=Lax, Path=/, Secure when the request is secure. */
  cookie?: CookieOptions;
  /** Idle timeout in ms: the key's TTL and the cookie's Max-Age, both slid when the session is touched (see `touchAfter`). Default 1 day. */
  maxAge?: number;
  /** Time since creation (or regenerate) after which the session ends, in ms; `null` for none. Default 7 days. */
  absoluteTimeout?: number | null;
  /**
   * A session's cookie is re-issued, and its key's TTL slid, only when it was last issued at least
   * this many ms ago; in between, a request that reads the session without changing it sends no
   * Redis command and gets no Set-Cookie. Shorter than maxAge; `0` touches on every request.
   * Default min(60 s, maxAge / 10).
   */
  touchAfter?: number;
  /** Longest wait for Redis on each load and save, in ms; past it the request fails with a 503. Default 2000. */
  timeout?: number;
}

const OPTIONS = ["client", "url", "secret", "prefix", "name", "cookie", "maxAge", "absoluteTimeout", "touchAfter", "timeout"] as const;
const DAY = 86_400_000;
const OWNER = "RedisStore";
/** Node runs a longer timer after 1 ms instead. */
const MAX_TIMER = 2_147_483_647;

/**
 * The hash field holding the session's creation time (ms since the epoch). It starts with a NUL
 * character, so it cannot clash with a key your code writes in practice; a session key with
 * exactly this name is not stored. A hash without it is not a session (see `restore`).
 */
export const CREATED_FIELD = "\0created";

/**
 * The hash field holding when the session's cookie was last issued ("touched", ms since the
 * epoch), shared by every app instance, so `touchAfter` holds whichever instance serves the
 * next request. Reserved like `CREATED_FIELD`. A hash without it (written before the field
 * existed) counts as touched long ago: its next request touches it.
 */
export const TOUCHED_FIELD = "\0touched";

/**
 * A save, as one Lua script that Redis runs atomically: one command per save instead of
 * MULTI / HDEL / HSET / PEXPIRE / EXEC, which cost the client about 5 µs more per save.
 * KEYS[1]: the session's hash. ARGV[1]: its TTL in ms. ARGV[2]: "1" when the session is new
 * here (created or regenerated on this request: written whole), else "0". ARGV[3]: n, the
 * number of fields to delete; ARGV[4 .. 3 + n]: their names; the rest: field, value pairs to set.
 * A session that is not new, and whose hash has no creation time, ended while this request ran
 * (destroyed, or expired): the script writes nothing, so no remains are left behind. Arguments
 * go to HDEL/HSET 4000 at a time (Lua's unpack has a limit).
 */
const SAVE_SCRIPT = `local key = KEYS[1]
if ARGV[2] ~= '1' and redis.call('HEXISTS', key, string.char(0) .. 'created') == 0 then return 0 end
local last = 3 + tonumber(ARGV[3])
for i = 4, last, 4000 do redis.call('HDEL', key, unpack(ARGV, i, math.min(i + 3999, last))) end
for i = last + 1, #ARGV, 4000 do redis.call('HSET', key, unpack(ARGV, i, math.min(i + 3999, #ARGV))) end
redis.call('PEXPIRE', key, ARGV[1])
return 1`;
const SAVE_SHA = createHash("sha1").update(SAVE_SCRIPT).digest("hex");

/** What the store knows is in Redis for a session it loaded or saved. */
interface Stored {
  /** The id it is stored under. */
  id: string;
  /** JSON of each field, as stored. */
  fields: Map<string, string>;
  created: number;
  /** When the cookie was last issued (`TOUCHED_FIELD`); 0 when the hash has no such field. */
  touched: number;
}

/** What the store knows is stored for a session: kept on the session (keepOnSession) under this key. */
const STORED = Symbol("RedisStore stored");

/** One code path per operation, whatever the client: every operation is one command on one key. */
interface Backend {
  send(key: string, args: string[]): Promise<unknown>;
}

/** The part of the node-redis client the store owns when it is given a `url`. */
interface OwnedClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  on(event: "error" | "ready", listener: (err: Error) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

/**
 * Keeps sessions in Redis; the browser's cookie carries only the session id, signed, so a
 * forged or guessed id never reaches Redis.
 *
 * Layout: a hash at `prefix + id` with one field per session key holding the key's value as
 * JSON, plus `CREATED_FIELD` and `TOUCHED_FIELD`; its TTL follows the session's expiry. Loading
 * is one `HGETALL`; saving is one command (`EVALSHA` of `SAVE_SCRIPT`, atomic) that writes only
 * the fields this request changed (`HDEL`/`HSET`/`PEXPIRE`), so two concurrent requests that change
 * different keys both persist (when both change the same key, the last to save wins). The cookie
 * is re-issued and the TTL slid only every `touchAfter` ms (the touch time is set by the same
 * script): in between, an unchanged session costs no command at all.
 *
 * Every load and save waits at most `timeout` ms; a stalled, unreachable or failing Redis gives a
 * `SessionStoreUnavailableError` (status 503), and requests succeed again when Redis is back. The
 * client the store creates from `url` keeps no offline queue: while it is disconnected, requests
 * fail at once rather than waiting (it does wait, up to `timeout`, for its first connection).
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
  private readonly cookie: SignedIdCookie;
  private readonly backend: Backend;
  /** Set when the store created the client from `url` (and must close it). */
  private readonly owned: OwnedClient | undefined;
  /** Where Redis is, for error messages (the url without its password). */
  private readonly where: string;
  /** The owned client's last connection error, to say why Redis did not answer. */
  private lastError: Error | undefined;
  /** Pending until the owned client first connects: commands wait for it (bounded by `timeout`). */
  private connecting: Promise<unknown> | undefined;

  constructor(options: RedisStoreOptions) {
    checkKeys(options, OPTIONS, OWNER);
    const secrets = resolveSecrets(options.secret, OWNER);
    const prefix = options.prefix ?? "sess:";
    if (typeof prefix !== "string") {
      throw new SessionConfigError(`${OWNER}: prefix must be a string (prepended to the session id to make the Redis key), got ${JSON.stringify(prefix)}`);
    }
    this.prefix = prefix;
    this.maxAge = resolveDuration(options.maxAge, DAY, "maxAge", OWNER) as number;
    this.absoluteTimeout = resolveDuration(options.absoluteTimeout, 7 * DAY, "absoluteTimeout", OWNER, true);
    this.touchAfter = resolveTouchAfter(options.touchAfter, this.maxAge, OWNER);
    this.timeout = resolveDuration(options.timeout, 2000, "timeout", OWNER) as number;
    if (this.timeout > MAX_TIMER) {
      throw new SessionConfigError(`${OWNER}: timeout must be at most ${MAX_TIMER} ms (Node's longest timer; a few seconds is usual), got ${this.timeout}`);
    }
    this.cookie = new SignedIdCookie(options.name ?? "session", options.cookie, secrets, OWNER);

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
      this.backend = backendFor(client);
      this.where = "through the client given to RedisStore";
    } else {
      const parsed = parseUrl(url);
      const owned = createOwnedClient(parsed.href);
      owned.on("error", (err) => (this.lastError = err)); // without a listener, an 'error' event would crash the process
      owned.on("ready", () => (this.lastError = undefined));
      // It retries until it connects or is closed; until then, commands wait for it (up to `timeout`).
      // Its failures arrive as 'error' events (above); the catch only keeps a rejection from going unhandled.
      this.connecting = owned.connect().finally(() => (this.connecting = undefined)).catch(() => undefined);
      this.client = this.owned = owned;
      this.backend = backendFor(owned);
      if (parsed.password !== "") parsed.password = "***";
      this.where = `at ${parsed.href} (the url option)`;
    }
  }

  /**
   * The request's session: a new empty one when the request has no valid signed id (no Redis
   * command is sent then), else the stored session, or a new empty one if it has ended.
   */
  load(ctx: SessionContext): Session | Promise<Session> {
    const id = this.cookie.read(ctx.cookies);
    if (id === undefined) return Session.empty();
    const key = this.prefix + id;
    return this.run("load", "HGETALL", () => this.backend.send(key, ["HGETALL", key])).then((reply) => this.restore(id, reply));
  }

  /**
   * Saves what changed (one round trip) and returns the signed id cookie, with Max-Age = the key's
   * TTL; or, for a session whose cookie is still fresh (see `needsTouch`), no cookie (`[]`), and no
   * Redis command at all when nothing changed either.
   */
  dump(session: Session, ctx: SessionContext): Cookie[] | Promise<Cookie | Cookie[]> {
    const id = session.id;
    const stored = keptOnSession(session, STORED) as Stored | undefined;
    const oldKey = stored !== undefined && stored.id !== id ? this.prefix + stored.id : undefined;
    if (Session.stateOf(session).destroyed && Session.isEmpty(session)) {
      const deleted = oldKey === undefined ? Promise.resolve() : this.run("save", "DEL", () => this.backend.send(oldKey, ["DEL", oldKey]));
      return deleted.then(() => {
        keepOnSession(session, STORED, undefined);
        return this.cookie.expire(ctx.req);
      });
    }

    // Compared with what is stored under this id, if anything: a new or regenerated session is written whole.
    const now = Date.now();
    const same = stored?.id === id ? stored : undefined;
    const created = same?.created ?? now;
    const before = same?.fields ?? new Map<string, string>();
    const fields = new Map<string, string>();
    const set = same ? [] : [CREATED_FIELD, String(created)];
    for (const name of Object.keys(session)) {
      const json = name === "id" || name === CREATED_FIELD || name === TOUCHED_FIELD ? undefined : JSON.stringify(session[name]);
      if (json === undefined) continue;
      fields.set(name, json);
      if (before.get(name) !== json) set.push(name, json);
    }
    const removed = [...before.keys()].filter((name) => !fields.has(name));
    const touch = same === undefined || this.needsTouch(same, now, ctx);
    // Nothing to send: answer synchronously, so the response is not held for a tick.
    if (!touch && set.length === 0 && removed.length === 0) return [];
    if (touch) set.push(TOUCHED_FIELD, String(now));
    const touched = touch ? now : (same as Stored).touched;
    const ttl = this.lifetime(created, now);
    const key = this.prefix + id;
    // One command: the save script (below) deletes, sets and refreshes the TTL atomically.
    const args = ["EVALSHA", SAVE_SHA, "1", key, String(ttl), same === undefined ? "1" : "0", String(removed.length), ...removed, ...set];
    const write = this.run("save", "the save script (HDEL/HSET/PEXPIRE)", () => this.backend.send(key, args).catch((err: unknown) => this.evalOnNoScript(key, args, err)));
    // The old key is deleted alongside, not inside the script: in a cluster it lives in another slot.
    const work = oldKey === undefined ? write : Promise.all([write, this.run("save", "DEL", () => this.backend.send(oldKey, ["DEL", oldKey]))]);
    return work.then(() => {
      keepOnSession(session, STORED, { id, fields, created, touched });
      return touch ? this.cookie.issue(ctx.req, id, ttl, ctx.cookies) : [];
    });
  }

  /** The first save on a Redis that has not cached the script yet (new, restarted, flushed): send the script itself, which caches it. */
  private evalOnNoScript(key: string, args: string[], err: unknown): Promise<unknown> {
    if (!(err instanceof Error) || !err.message.startsWith("NOSCRIPT")) throw err;
    return this.backend.send(key, ["EVAL", SAVE_SCRIPT, ...args.slice(2)]);
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

  /** The session from an `HGETALL` reply, or a new empty one when there is none (or it has ended). */
  private restore(id: string, reply: unknown): Session {
    const fields = new Map<string, string>();
    for (const [name, value] of entriesOf(reply)) fields.set(name, value);
    const created = Number(fields.get(CREATED_FIELD));
    const touched = Number(fields.get(TOUCHED_FIELD)) || 0; // missing (an older version wrote it): long ago
    fields.delete(CREATED_FIELD);
    fields.delete(TOUCHED_FIELD);
    // No creation time: no such key, or the remains of a session that was destroyed or expired while
    // another request was saving changes to it. Either way the session has ended.
    if (!(created > 0)) return Session.empty();
    if (pastAbsoluteTimeout(created, this.absoluteTimeout, Date.now())) return Session.empty();
    const data: { id: string } & Record<string, unknown> = Object.create(null);
    data.id = id;
    try {
      for (const [name, json] of fields) data[name] = JSON.parse(json);
    } catch {
      return Session.empty(); // not written by this store: never adopt it
    }
    const session = new Session(data);
    keepOnSession(session, STORED, { id, fields, created, touched });
    return session;
  }

  /**
   * Whether a stored session's cookie is issued again and its TTL slid (with the touch time): once
   * `touchAfter` has passed since it last was, or when the browser's cookie is signed with an
   * older secret. Otherwise the browser's cookie and the key's TTL still run from the last touch.
   */
  private needsTouch(stored: Stored, now: number, ctx: SessionContext): boolean {
    // A touch time in the future comes from an app instance whose clock is ahead: rather than wait
    // for this clock to catch up (the session could expire meanwhile), touch now.
    const elapsed = now - stored.touched;
    return elapsed >= this.touchAfter || elapsed < 0 || !this.cookie.isCurrent(ctx.cookies, stored.id);
  }

  /** The session's remaining life from now, in whole ms (PEXPIRE takes integers): the idle timeout, cut short by the absolute timeout. */
  private lifetime(created: number, now: number): number {
    return Math.ceil(Math.max(0, remainingLife(created, this.maxAge, this.absoluteTimeout, now)));
  }

  /**
   * Runs one round trip, bounded by `timeout`. On timeout the request gives up on the command; its
   * late reply or error is swallowed, never unhandled. (It is not cancelled: node-redis 5.12's
   * AbortSignal support can corrupt the client's command queue when queued commands are aborted.)
   */
  private run<T>(doing: "load" | "save", command: string, op: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(this.unavailable(doing, `Redis did not answer ${command} within ${this.timeout} ms`, undefined)), this.timeout);
      const failed = (err: unknown) => {
        clearTimeout(timer);
        reject(this.unavailable(doing, `Redis failed ${command}: ${reason(err)}`, err));
      };
      const done = (value: T) => {
        clearTimeout(timer);
        resolve(value);
      };
      // A settled promise ignores later calls: a reply after the timeout is dropped, never unhandled.
      if (this.connecting === undefined) call(op, done, failed);
      else this.connecting.then(() => call(op, done, failed));
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

/** Runs `op`, sending its result or failure (thrown or rejected) to the callbacks. */
function call<T>(op: () => Promise<T>, done: (value: T) => void, failed: (err: unknown) => void): void {
  let pending: Promise<T>;
  try {
    pending = op();
  } catch (err) {
    failed(err);
    return;
  }
  pending.then(done, failed);
}

/** The adapter for a client, recognised by its shape. */
function backendFor(client: RedisClient): Backend {
  const c = Object(client) as Record<string, unknown>;
  if (typeof c.call === "function" && typeof c.multi === "function") return ioredis(client as IoRedis);
  if (typeof c.sendCommand === "function" && typeof c.multi === "function") {
    return "masters" in c ? nodeRedisCluster(client as NodeRedisCluster) : nodeRedis(client as NodeRedis);
  }
  throw new SessionConfigError(
    `${OWNER}: client is not a Redis client it knows; pass a node-redis client or cluster (createClient/createCluster from "redis", v4 or later) or an ioredis Redis or Cluster, or pass { url } instead`,
  );
}

interface NodeRedis {
  sendCommand(args: string[]): Promise<unknown>;
}
function nodeRedis(client: NodeRedis): Backend {
  return { send: (_key, args) => client.sendCommand(args) };
}

interface NodeRedisCluster {
  sendCommand(firstKey: string, isReadonly: boolean, args: string[]): Promise<unknown>;
}
function nodeRedisCluster(cluster: NodeRedisCluster): Backend {
  // Reads go to the masters too: a replica may not have the write the previous response promised.
  return { send: (key, args) => cluster.sendCommand(key, false, args) };
}

interface IoRedis {
  call(...args: string[]): Promise<unknown>;
}
/** ioredis `Redis` and `Cluster` (which routes each command by its key, EVALSHA's too). */
function ioredis(client: IoRedis): Backend {
  return { send: (_key, args) => client.call(...args) };
}

/** What went wrong, in Redis's words. */
function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `[field, value]` pairs of an `HGETALL` reply: a flat array (RESP2) or an object (RESP3, ioredis). */
function entriesOf(reply: unknown): [string, string][] {
  if (!Array.isArray(reply)) return Object.entries(reply as Record<string, string>);
  const entries: [string, string][] = [];
  for (let i = 0; i < reply.length; i += 2) entries.push([String(reply[i]), String(reply[i + 1])]);
  return entries;
}

function parseUrl(url: unknown): URL {
  const parsed = typeof url === "string" && URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")) {
    throw new SessionConfigError(`${OWNER}: url must be a Redis URL such as "redis://127.0.0.1:6379" (or rediss:// for TLS), got ${JSON.stringify(url)}`);
  }
  return parsed;
}

/** A node-redis client for `url`; `redis` is loaded only here, so apps that never use Redis do not pay for it. */
function createOwnedClient(url: string): OwnedClient {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { createClient } = require("redis") as typeof import("redis");
  // Without an offline queue, commands fail at once while the connection is down, instead of piling
  // up for the whole outage and all being sent when Redis comes back.
  return createClient({ url, disableOfflineQueue: true }) as unknown as OwnedClient;
}
