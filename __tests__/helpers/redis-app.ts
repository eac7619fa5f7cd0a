/**
 * The app the Redis suites drive: an Express app whose routes read and write `req.session`,
 * served on 127.0.0.1, and a browser that keeps the session cookie between requests.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import express from "express";
import IORedis from "ioredis";
import { createClient, createCluster } from "redis";
// node-redis 4 (installed as the alias `redis4`): SPEC §6 promises "redis v4 and later".
import { createClient as createClientV4, createCluster as createClusterV4 } from "redis4";
import request from "supertest";
import { sessions, type SessionStore, type SessionsOptions } from "../../lib";

/**
 * Routes: `GET /get` answers the session as JSON; `POST /set` assigns the JSON body's keys
 * (after `?delay=ms`, to make concurrent requests overlap); `POST /delete?key=k`; `POST /regenerate` (keep: true)
 * (then assigns the body); `POST /destroy`; `GET /untouched` never reads the session. Errors are
 * answered with their `status` and `error: <message>`.
 */
export function sessionApp(store: SessionStore, options?: SessionsOptions): express.Express {
  const app = express();
  app.use(sessions(store, options));
  app.use(express.json());
  app.get("/get", (req, res) => {
    res.json({ ...req.session });
  });
  app.post("/set", async (req, res) => {
    const delay = Number(req.query.delay ?? 0);
    if (delay > 0) await sleep(delay);
    Object.assign(req.session, req.body);
    res.json({ ...req.session });
  });
  app.post("/delete", (req, res) => {
    delete req.session[String(req.query.key)];
    res.json({ ...req.session });
  });
  app.post("/regenerate", (req, res) => {
    void req.session.regenerate({ keep: true }); // a new id, the data carried over
    Object.assign(req.session, req.body);
    res.json({ ...req.session });
  });
  app.post("/destroy", (req, res) => {
    req.session.destroy();
    res.json({ ...req.session });
  });
  app.get("/untouched", (_req, res) => {
    res.send("ok");
  });
  app.use(errorHandler);
  return app;
}

/** Answers `err.status` (500 when absent) with `error: <message>`. */
export function errorHandler(err: { status?: number; message: string }, _req: IncomingMessage, res: ServerResponse, _next: unknown): void {
  res.statusCode = err.status ?? 500;
  res.setHeader("Content-Type", "text/plain");
  res.end(`error: ${err.message}`);
}

export interface Served {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** Serves `app` on 127.0.0.1. */
export async function serve(app: (req: IncomingMessage, res: ServerResponse) => void): Promise<Served> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The `Set-Cookie` lines of a response. */
export function setCookies(res: { headers: Record<string, unknown> }): string[] {
  const value = res.headers["set-cookie"];
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

/** A browser that keeps one cookie (`name`), dropping it when a response expires it. */
export class Browser {
  cookie: string | undefined;

  constructor(
    public url: string,
    readonly name = "session",
  ) {}

  async get(path: string): Promise<request.Response> {
    return this.keep(await this.with(request(this.url).get(path)));
  }

  async post(path: string, body: object = {}): Promise<request.Response> {
    return this.keep(await this.with(request(this.url).post(path).send(body)));
  }

  /** The session id the cookie carries (unsigned), or undefined. */
  get id(): string | undefined {
    return this.cookie === undefined ? undefined : decodeURIComponent(this.cookie).split(".")[0];
  }

  private with(test: request.Test): request.Test {
    return this.cookie === undefined ? test : test.set("Cookie", `${this.name}=${this.cookie}`);
  }

  private keep(res: request.Response): request.Response {
    for (const line of setCookies(res)) {
      const [pair, ...attributes] = line.split(";").map((part) => part.trim());
      if (!pair.startsWith(`${this.name}=`)) continue;
      const expired = attributes.some((attribute) => attribute.toLowerCase() === "max-age=0");
      this.cookie = expired ? undefined : pair.slice(this.name.length + 1);
    }
    return res;
  }
}

/** The secret the Redis suites sign ids with. */
export const SECRET = "redis-suite-secret-0123456789abcdef";

/** Direct access to Redis for assertions, whatever the store's client. */
export interface Raw {
  hGetAll(key: string): Promise<Record<string, string>>;
  pTTL(key: string): Promise<number>;
  exists(key: string): Promise<number>;
  hSet(key: string, field: string, value: string): Promise<number>;
  hDel(key: string, field: string): Promise<number>;
  set(key: string, value: string): Promise<unknown>;
  pExpire(key: string, ms: number): Promise<unknown>;
  del(key: string): Promise<number>;
  close(): Promise<void>;
}

/** A node-redis cluster's `rootNodes` for the cluster's `nodes`. */
function rootNodes(nodes: { host: string; port: number }[]): { url: string }[] {
  return nodes.map(({ host, port }) => ({ url: `redis://${host}:${port}` }));
}

/** Connects a node-redis client or cluster client (version 4 or 5), ignoring its error events (tests stop and restart Redis). */
async function connectQuietly<C extends { on(event: "error", listener: () => void): unknown; connect(): Promise<unknown> }>(client: C): Promise<C> {
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** A StoreConnection over a node-redis client or cluster client; `close` is how its version closes it (`close`, or `quit` in 4). */
async function nodeRedisConnection(client: Parameters<typeof connectQuietly>[0], close: () => Promise<unknown>): Promise<StoreConnection> {
  await connectQuietly(client);
  return { options: { client }, close: async () => void (await close()) };
}

/** A node-redis client (or cluster client, given several nodes) for assertions. */
export async function rawClient(target: string | { host: string; port: number }[]): Promise<Raw> {
  const client = typeof target === "string" ? createClient({ url: target }) : createCluster({ rootNodes: rootNodes(target) });
  return (await connectQuietly(client)) as unknown as Raw;
}

/** The kinds of client RedisStore supports; every behaviour test runs over each of them. */
export type ClientKind = "node-redis" | "node-redis RESP3" | "node-redis 4" | "ioredis" | "url" | "node-redis cluster" | "node-redis 4 cluster" | "ioredis cluster";

export interface StoreConnection {
  /** What to give RedisStore: `{ client }`, or `{ url }` for a store-owned client. */
  options: { client: object } | { url: string };
  /** Closes the client this connection created (not the store's own). */
  close(): Promise<void>;
}

/** Connects a client of `kind` to a single server (`url`) or to a cluster (`nodes`). */
export async function connectKind(kind: ClientKind, url: string, nodes: { host: string; port: number }[] = []): Promise<StoreConnection> {
  switch (kind) {
    case "node-redis": {
      const client = createClient({ url });
      return nodeRedisConnection(client, () => client.close());
    }
    case "node-redis RESP3": {
      const client = createClient({ url, RESP: 3 });
      return nodeRedisConnection(client, () => client.close());
    }
    case "node-redis 4": {
      const client = createClientV4({ url });
      return nodeRedisConnection(client, () => client.quit());
    }
    case "ioredis": {
      const client = new IORedis(url);
      client.on("error", () => undefined);
      await client.ping();
      return { options: { client }, close: async () => void client.disconnect() };
    }
    case "url":
      return { options: { url }, close: async () => undefined };
    case "node-redis cluster": {
      const cluster = createCluster({ rootNodes: rootNodes(nodes) });
      return nodeRedisConnection(cluster, () => cluster.close());
    }
    case "node-redis 4 cluster": {
      const cluster = createClusterV4({ rootNodes: rootNodes(nodes) });
      return nodeRedisConnection(cluster, () => cluster.quit());
    }
    case "ioredis cluster": {
      const cluster = new IORedis.Cluster(nodes);
      cluster.on("error", () => undefined);
      await cluster.ping();
      return { options: { client: cluster }, close: async () => void cluster.disconnect() };
    }
  }
}
