/**
 * The Redis clients RedisStore talks through, behind one method: send a command about one key.
 * node-redis (v4 and later) clients and clusters, and ioredis `Redis` and `Cluster`, recognised
 * by their shape; or a node-redis client the store creates from a URL and owns.
 */
import { SessionConfigError } from "./errors";

/**
 * A Redis client RedisStore can talk through: a node-redis client or cluster (`createClient`,
 * `createCluster` from `redis` v4 or later) or an ioredis `Redis` or `Redis.Cluster`.
 * Pass it connected (or connecting); RedisStore never closes a client you pass.
 */
export type RedisClient = object;

/** One code path per operation, whatever the client: every operation is one command on one key. */
export interface CommandSender {
  send(key: string, args: string[]): Promise<unknown>;
}

/** The part of the node-redis client the store owns when it is given a `url`. */
export interface OwnedClient {
  readonly isOpen: boolean;
  readonly isReady: boolean;
  on(event: "error" | "ready", listener: (err: Error) => void): unknown;
  connect(): Promise<unknown>;
  close(): Promise<void>;
  destroy(): void;
}

const OWNER = "RedisStore";

/** The sender for a client, recognised by its shape. */
export function senderFor(client: RedisClient): CommandSender {
  const c = Object(client) as Record<string, unknown>;
  if (typeof c.call === "function" && typeof c.multi === "function") {
    // ioredis `Redis` and `Cluster` (which routes each command by its key, EVALSHA's too).
    const ioredis = client as { call(...args: string[]): Promise<unknown> };
    return { send: (_key, args) => ioredis.call(...args) };
  }
  if (typeof c.sendCommand === "function" && typeof c.multi === "function") {
    if ("masters" in c) {
      // Reads go to the masters too: a replica may not have the write the previous response promised.
      const cluster = client as { sendCommand(firstKey: string, isReadonly: boolean, args: string[]): Promise<unknown> };
      return { send: (key, args) => cluster.sendCommand(key, false, args) };
    }
    const single = client as { sendCommand(args: string[]): Promise<unknown> };
    return { send: (_key, args) => single.sendCommand(args) };
  }
  throw new SessionConfigError(
    `${OWNER}: client is not a Redis client it knows; pass a node-redis client or cluster (createClient/createCluster from "redis", v4 or later) or an ioredis Redis or Cluster, or pass { url } instead`,
  );
}

/** `url` as a Redis URL, or a configuration error. */
export function parseRedisUrl(url: unknown): URL {
  const parsed = typeof url === "string" && URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")) {
    throw new SessionConfigError(`${OWNER}: url must be a Redis URL such as "redis://127.0.0.1:6379" (or rediss:// for TLS), got ${JSON.stringify(url)}`);
  }
  return parsed;
}

/** A node-redis client for `url`; `redis` is loaded only here, so apps that never use Redis do not need it. */
export function createOwnedClient(url: string): OwnedClient {
  let redis: typeof import("redis");
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    redis = require("redis") as typeof import("redis");
  } catch (err) {
    // Only `redis` itself missing (an optional peer dependency); a broken install of it keeps its own error.
    const code = (err as { code?: unknown } | null)?.code;
    if (code !== "MODULE_NOT_FOUND" || !String((err as Error).message).startsWith("Cannot find module 'redis'")) throw err;
    throw new SessionConfigError(`${OWNER}: { url } needs the node-redis client, which is not installed: run \`npm install redis\` (or pass your own node-redis or ioredis client as { client })`);
  }
  // Without an offline queue, commands fail at once while the connection is down, instead of piling
  // up for the whole outage and all being sent when Redis comes back.
  const client = redis.createClient({ url, disableOfflineQueue: true }) as unknown as OwnedClient;
  // The peer range admits redis 4 for { client }; the store's own client needs 5's close()/destroy().
  if (typeof client.close !== "function") {
    throw new SessionConfigError(`${OWNER}: { url } needs node-redis 5 or later, and redis 4 is installed: run \`npm install redis@5\`, or pass your own connected client as { client }`);
  }
  return client;
}
