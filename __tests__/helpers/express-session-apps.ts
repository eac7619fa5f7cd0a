/**
 * Two versions of one app, for the suites where express-session and this package serve the same
 * users: the app as it was (express-session, or cookie-session) and as it is now (this package),
 * with the same routes. A browser with a cookie jar goes between them.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import express, { type RequestHandler } from "express";
import request from "supertest";
import { type ExpressSessionBackend, sessions, type SessionStore, type SessionsOptions } from "../../lib";
import { Jar, serve } from "./session-cookies";

/** Secret of both versions (express-session's and this package's; at least 32 characters). */
export const SECRET = "express-session-suite-secret-0123456789";
/** cookie-session's keys in the suites that move from it. */
export const COOKIE_SESSION_KEYS = ["cookie-session-key-new", "cookie-session-key-old"];
/** The idle timeout both versions use: express-session's cookie.maxAge, this package's maxAge. */
export const DAY = 86_400_000;

/** Each request's time limit: a hung server fails the test, never hangs it. */
const REQUEST_TIMEOUT_MS = 10_000;

/** express-session, which has no types of its own here. */
export interface ExpressSessionModule {
  (options: object): RequestHandler;
  MemoryStore: new () => ExpressSessionBackend & { sessions: Record<string, string> };
}
// eslint-disable-next-line @typescript-eslint/no-require-imports
export const expressSession = require("express-session") as ExpressSessionModule;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const cookieSession = require("cookie-session") as (options: object) => RequestHandler;

/** What a route answers: the session's data, without its id or cookie. */
type Data = Record<string, unknown>;

/**
 * The routes of both versions, over `session(req)` (the session object) and the version's own way
 * to start a new session (`regenerate`) and to end one (`destroy`):
 * `GET /me`, `POST /login` (a new session holding the body), `POST /set` (assigns the body),
 * `POST /count` (views + 1), `POST /unset?key=k`, `POST /logout`, `GET /untouched` (never reads
 * the session). Each answers the session's data.
 */
function routes(
  app: express.Express,
  version: {
    data(req: express.Request): Data;
    session(req: express.Request): Data;
    regenerate(req: express.Request): Promise<void>;
    destroy(req: express.Request): Promise<void>;
  },
): express.Express {
  app.use(express.json());
  app.get("/me", (req, res) => void res.json(version.data(req)));
  app.post("/login", async (req, res) => {
    await version.regenerate(req);
    Object.assign(version.session(req), req.body);
    res.json(version.data(req));
  });
  app.post("/set", (req, res) => {
    Object.assign(version.session(req), req.body);
    res.json(version.data(req));
  });
  app.post("/count", (req, res) => {
    const session = version.session(req);
    session.views = ((session.views as number | undefined) ?? 0) + 1;
    res.json(version.data(req));
  });
  app.post("/unset", (req, res) => {
    delete version.session(req)[String(req.query.key)];
    res.json(version.data(req));
  });
  app.post("/logout", async (req, res) => {
    await version.destroy(req);
    res.json({});
  });
  app.get("/untouched", (_req, res) => void res.send("ok"));
  app.use((err: { status?: number; message: string; code?: string }, _req: IncomingMessage, res: ServerResponse, _next: unknown) => {
    res.statusCode = err.status ?? 500;
    res.setHeader("Content-Type", "application/json");
    res.end(JSON.stringify({ error: err.message, code: err.code }));
  });
  return app;
}

/** The app as it was: express-session over `store`, configured as its README recommends. */
export function expressSessionApp(store: ExpressSessionBackend, { secret = SECRET as string | string[], cookie = { maxAge: DAY, sameSite: "lax" } as object } = {}): express.Express {
  const app = express();
  app.use(expressSession({ store, secret, resave: false, saveUninitialized: false, cookie }));
  type Legacy = Data & { regenerate(cb: (err?: unknown) => void): void; destroy(cb: (err?: unknown) => void): void };
  const legacy = (req: express.Request) => (req as unknown as { session: Legacy }).session;
  const callback = (run: (cb: (err?: unknown) => void) => void) => new Promise<void>((resolve, reject) => run((err) => (err ? reject(err) : resolve())));
  return routes(app, {
    session: legacy,
    data: (req) => {
      const { cookie: _cookie, ...data } = legacy(req) ?? {};
      return data;
    },
    regenerate: (req) => callback((cb) => legacy(req).regenerate(cb)),
    destroy: (req) => callback((cb) => legacy(req).destroy(cb)),
  });
}

/** The app as it was: cookie-session with COOKIE_SESSION_KEYS. */
export function cookieSessionApp(): express.Express {
  const app = express();
  app.use(cookieSession({ keys: COOKIE_SESSION_KEYS, maxAge: DAY }));
  const legacy = (req: express.Request) => (req as unknown as { session: Data }).session;
  return routes(app, {
    session: legacy,
    data: (req) => ({ ...legacy(req) }),
    regenerate: async (req) => {
      (req as unknown as { session: Data }).session = {};
    },
    destroy: async (req) => {
      (req as unknown as { session: Data | null }).session = null;
    },
  });
}

/** The app as it is now: this package over `store`. */
export function sessionboxApp(store: SessionStore, options?: SessionsOptions): express.Express {
  const app = express();
  app.use(sessions(store, options));
  return routes(app, {
    session: (req) => req.session,
    data: (req) => {
      const { id: _id, ...data } = { ...req.session };
      return data;
    },
    regenerate: (req) => req.session.regenerate() as Promise<void>,
    destroy: (req) => req.session.destroy() as Promise<void>,
  });
}

/** A browser: keeps every cookie it is given (dropping expired ones) and sends them back, to whichever server (served on 127.0.0.1). */
export class Browser {
  readonly jar = new Jar();

  async get(server: Served, path: string): Promise<request.Response> {
    return this.send(request(server.url).get(path));
  }

  async post(server: Served, path: string, body: object = {}): Promise<request.Response> {
    return this.send(request(server.url).post(path).send(body));
  }

  /** The session id in express-session's cookie (`s:<id>.<signature>`), if the browser holds one. */
  get expressSessionId(): string | undefined {
    const value = this.jar.get("connect.sid");
    if (value === undefined) return undefined;
    const signed = decodeURIComponent(value).slice(2);
    return signed.slice(0, signed.lastIndexOf("."));
  }

  private async send(test: request.Test): Promise<request.Response> {
    const header = this.jar.header();
    const res = await (header === "" ? test : test.set("Cookie", header)).timeout(REQUEST_TIMEOUT_MS);
    this.jar.take(res);
    return res;
  }
}

/** A running server, so that several browsers and requests reuse one. */
export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Serves `app` on 127.0.0.1. */
export async function served(app: RequestListener): Promise<Served> {
  const server = await serve(app);
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
