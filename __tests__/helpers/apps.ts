/**
 * Mounting a session middleware under Express 5, Express 4, Connect and bare `node:http`,
 * serving it on 127.0.0.1, and a cookie jar that plays the browser for supertest.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import connect from "connect";
import express from "express";
import request from "supertest";
import type { SessionObject } from "../../lib";

// Express 4, installed under an alias (package.json devDependencies: "express4": "npm:express@^4").
// eslint-disable-next-line @typescript-eslint/no-require-imports
const express4 = require("express4") as typeof express;

export type Next = (err?: unknown) => void;
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;
/** A handler that only uses `node:http`, so it runs under every framework. */
export type Handler = (req: IncomingMessage, res: ServerResponse, next: Next) => void | Promise<void>;

/** A request as the middleware leaves it: `req.session` and `req.loadSession()`. */
export type SessionRequest = IncomingMessage & { session: SessionObject; loadSession(): Promise<SessionObject> };

/** `req` seen as a session request (for `node:http` handlers, which Express's typing does not reach). */
export function sessionRequest(req: IncomingMessage): SessionRequest {
  return req as SessionRequest;
}

export const FRAMEWORKS = ["express5", "express4", "connect", "http"] as const;
export type Framework = (typeof FRAMEWORKS)[number];

/** An Express 5 app with `middleware` installed; add routes, then `withErrorHandler(app)` if wanted. */
export function express5App(middleware: Middleware): express.Express {
  const app = express();
  app.use(middleware);
  return app;
}

/** The same with Express 4. */
export function express4App(middleware: Middleware): express.Express {
  const app = express4();
  app.use(middleware);
  return app;
}

/** Appends an error handler that answers `err.status` (default 500) with `error: <message>`. */
export function withErrorHandler<A extends { use: (...args: never[]) => unknown }>(app: A): A {
  (app.use as (fn: (err: unknown, req: IncomingMessage, res: ServerResponse, next: Next) => void) => unknown)((err, _req, res, _next) =>
    sendError(err, res),
  );
  return app;
}

/**
 * `middleware` then `handler`, under `framework`, with an error handler that answers
 * `err.status` (500 when absent). Under `node:http` the middleware is called with a
 * `next` callback, as a user without a framework would: `next(err)` answers the error,
 * `next()` runs the handler (whose own `next(err)` answers the error too).
 */
export function mount(framework: Framework, middleware: Middleware, handler: Handler): RequestListener {
  const wrapped = asyncSafe(handler);
  switch (framework) {
    case "express5":
      return withErrorHandler(express5App(middleware).use(wrapped));
    case "express4":
      return withErrorHandler(express4App(middleware).use(wrapped));
    case "connect":
      return withErrorHandler(connect().use(middleware).use(wrapped)) as RequestListener;
    case "http":
      return (req, res) => {
        middleware(req, res, (err) => {
          if (err !== undefined) return sendError(err, res);
          const next: Next = (e) => sendError(e ?? notFound(), res);
          try {
            wrapped(req, res, next);
          } catch (e) {
            next(e);
          }
        });
      };
  }
}

/** Express 4 and Connect do not catch rejected promises: pass the rejection to `next`. */
function asyncSafe(handler: Handler): Middleware {
  return (req, res, next) => {
    const result = handler(req, res, next);
    if (result instanceof Promise) result.catch(next);
  };
}

/** How every error handler in these tests answers: `err.status` or 500, and the message. */
export function sendError(err: unknown, res: ServerResponse): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = (err as { status?: number }).status ?? 500;
  res.statusCode = status;
  res.setHeader("Content-Type", "text/plain");
  res.end(`error: ${(err as Error).message}`);
}

function notFound(): Error {
  return Object.assign(new Error("not found"), { status: 404 });
}

/** A server listening on 127.0.0.1 (never the wildcard address). */
export interface Served {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function serve(listener: RequestListener): Promise<Served> {
  const server = createServer(listener);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Servers opened by `serveForTest`, closed by `closeServers` (call it in `afterEach`). */
const open: Served[] = [];

/** `serve`, remembered for `closeServers`. */
export async function serveForTest(listener: RequestListener): Promise<Served> {
  const served = await serve(listener);
  open.push(served);
  return served;
}

export async function closeServers(): Promise<void> {
  await Promise.all(open.splice(0).map((served) => served.close()));
}

/**
 * The browser's cookie store, reduced to what sessions need: keeps `name=value` from each
 * `Set-Cookie`, forgets a cookie sent with `Max-Age=0` or a past `Expires`.
 */
export class CookieJar {
  private readonly cookies = new Map<string, string>();

  /** The `Cookie` request header for the cookies kept (empty string when none). */
  header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }

  names(): string[] {
    return [...this.cookies.keys()];
  }

  set(name: string, value: string): void {
    this.cookies.set(name, value);
  }

  /** Applies a response's `Set-Cookie` headers. */
  store(res: { headers: Record<string, unknown> }): void {
    for (const line of setCookies(res)) {
      const [pair, ...attributes] = line.split(";").map((part) => part.trim());
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const expired = attributes.some((attribute) => {
        const [key, val = ""] = attribute.split("=");
        if (key.toLowerCase() === "max-age") return Number(val) <= 0;
        if (key.toLowerCase() === "expires") return Date.parse(val) <= Date.now();
        return false;
      });
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }
}

/** The `Set-Cookie` lines of a response (an empty list when there are none). */
export function setCookies(res: { headers: Record<string, unknown> }): string[] {
  const value = res.headers["set-cookie"];
  if (value === undefined) return [];
  return Array.isArray(value) ? value.map(String) : [String(value)];
}

type Method = "get" | "post" | "put" | "delete" | "head";

/** How long any request a test Browser sends may take. */
export const REQUEST_TIMEOUT = 10_000;

/** A browser: a supertest client against `url` that sends and keeps its cookies. */
export class Browser {
  readonly jar = new CookieJar();

  constructor(readonly url: string) {}

  /** Sends `method path` with the jar's cookies; `edit` adds headers or a body. Keeps the response's cookies. */
  async request(method: Method, path: string, edit: (test: request.Test) => request.Test = (t) => t): Promise<request.Response> {
    // A hang fails fast, and says which request hung.
    let test = request(this.url)[method](path).timeout(REQUEST_TIMEOUT);
    const cookie = this.jar.header();
    if (cookie !== "") test = test.set("Cookie", cookie);
    const res = await edit(test);
    this.jar.store(res);
    return res;
  }

  get(path: string, edit?: (test: request.Test) => request.Test): Promise<request.Response> {
    return this.request("get", path, edit);
  }

  post(path: string, edit?: (test: request.Test) => request.Test): Promise<request.Response> {
    return this.request("post", path, edit);
  }
}
