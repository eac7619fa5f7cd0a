/**
 * The express-session stores that the shared-store, rolling-deploy and migration suites run
 * over, each against a real server: express-session's own MemoryStore (in process),
 * connect-redis 9 (a redis-server of the suite's own), connect-pg-simple (PostgreSQL) and
 * express-mysql-session (MariaDB), each in a database of the suite's own.
 */
import { createClient } from "redis";
import type { ExpressSessionBackend } from "../../lib";
import { createMariaDbDatabase, createPostgresDatabase, MARIADB, POSTGRES } from "./databases";
import { expressSession } from "./express-session-apps";
import { REDIS, type RedisServer, startRedis } from "./redis";
import type { Requirement } from "./servers";

/* eslint-disable @typescript-eslint/no-require-imports */
const { RedisStore: ConnectRedisStore } = require("connect-redis") as { RedisStore: new (options: object) => ExpressSessionBackend };
const PgStore = (require("connect-pg-simple") as (session: unknown) => new (options: object) => ExpressSessionBackend & { close(): Promise<void> })(expressSession);
const MySqlStore = (require("express-mysql-session") as (session: unknown) => new (options: object, pool: unknown) => ExpressSessionBackend & { onReady(): Promise<void>; close(): Promise<void> })(
  expressSession,
);
/* eslint-enable @typescript-eslint/no-require-imports */

/** An express-session store over a real server, opened for one suite. */
export interface OpenBackend {
  /** The store of the app as it was (express-session). */
  readonly old: ExpressSessionBackend;
  /** Another instance over the same data, for this package's ExpressSessionStore: two processes, as in a deploy. */
  readonly shared: ExpressSessionBackend;
  /** The record stored under `id`, parsed, or `undefined`: what the server holds, read around the stores. */
  record(id: string): Promise<Record<string, unknown> | undefined>;
  /** The Redis server, for the backend that has one (the migration suites keep RedisStore there too). */
  readonly redis?: RedisServer;
  close(): Promise<void>;
}

export interface Backend {
  /** "connect-pg-simple (PostgreSQL)", ... */
  name: string;
  requirements: Requirement[];
  open(): Promise<OpenBackend>;
}

export const MEMORY: Backend = {
  name: "express-session's MemoryStore",
  requirements: [],
  async open() {
    const store = new expressSession.MemoryStore();
    return {
      old: store,
      shared: store, // in process: both apps must hold the same instance
      record: async (id) => (store.sessions[id] === undefined ? undefined : JSON.parse(store.sessions[id])),
      close: async () => undefined,
    };
  },
};

export const CONNECT_REDIS: Backend = {
  name: "connect-redis 9 (Redis)",
  requirements: [REDIS],
  async open() {
    const redis = await startRedis();
    const clients = [createClient({ url: redis.url }), createClient({ url: redis.url })];
    for (const client of clients) {
      client.on("error", () => undefined); // the fault tests stall the server
      await client.connect();
    }
    return {
      old: new ConnectRedisStore({ client: clients[0] }),
      shared: new ConnectRedisStore({ client: clients[1] }),
      redis,
      record: async (id) => {
        const json = await clients[0].get(`sess:${id}`);
        return json === null ? undefined : JSON.parse(json);
      },
      close: async () => {
        await Promise.all(clients.map((client) => client.close()));
        await redis.stop();
      },
    };
  },
};

export const CONNECT_PG_SIMPLE: Backend = {
  name: "connect-pg-simple (PostgreSQL)",
  requirements: [POSTGRES],
  async open() {
    const db = await createPostgresDatabase();
    const stores = [0, 1].map(() => new PgStore({ pool: db.pool, pruneSessionInterval: false }));
    return {
      old: stores[0],
      shared: stores[1],
      record: async (id) => (await db.pool.query("SELECT sess FROM session WHERE sid = $1", [id])).rows[0]?.sess,
      close: async () => {
        await Promise.all(stores.map((store) => store.close()));
        await db.drop();
      },
    };
  },
};

export const EXPRESS_MYSQL_SESSION: Backend = {
  name: "express-mysql-session (MariaDB)",
  requirements: [MARIADB],
  async open() {
    const db = await createMariaDbDatabase();
    const stores: InstanceType<typeof MySqlStore>[] = [];
    for (let i = 0; i < 2; i++) {
      // One after the other: the first creates the sessions table.
      const store = new MySqlStore({ clearExpired: false, createDatabaseTable: true }, db.pool);
      await store.onReady();
      stores.push(store);
    }
    return {
      old: stores[0],
      shared: stores[1],
      record: async (id) => {
        const [rows] = (await db.pool.query({ sql: "SELECT data FROM sessions WHERE session_id = ?", values: [id], timeout: 5000 })) as unknown as [{ data: string }[]];
        return rows[0] === undefined ? undefined : JSON.parse(rows[0].data);
      },
      close: async () => {
        await Promise.all(stores.map((store) => store.close()));
        await db.drop();
      },
    };
  },
};

/** Every backend, for the suites that run over each. */
export const BACKENDS: Backend[] = [MEMORY, CONNECT_REDIS, CONNECT_PG_SIMPLE, EXPRESS_MYSQL_SESSION];

/** A real express-session store whose calls are counted, by method; `withoutTouch` hides its `touch`. */
export interface Recorded extends ExpressSessionBackend {
  readonly calls: { get: number; set: number; destroy: number; touch: number };
}

export function recorded(store: ExpressSessionBackend, { withoutTouch = false } = {}): Recorded {
  const calls = { get: 0, set: 0, destroy: 0, touch: 0 };
  const count =
    <A extends unknown[]>(method: keyof typeof calls, fn: (...args: A) => unknown) =>
    (...args: A) => {
      calls[method]++;
      return fn(...args);
    };
  const touch = store.touch;
  return {
    calls,
    get: count("get", store.get.bind(store)),
    set: count("set", store.set.bind(store)),
    destroy: count("destroy", store.destroy.bind(store)),
    ...(withoutTouch || touch === undefined ? {} : { touch: count("touch", touch.bind(store)) }),
  };
}
