/**
 * Test helpers for the session-cookie tests: a server bound to 127.0.0.1, a minimal cookie
 * jar that behaves like a browser for the attributes we set, and a controllable clock.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseSetCookie } from "cookie";
import { sign } from "cookie-signature";
import express from "express";
import { sessions, type SessionStore, type SessionsOptions } from "../../lib";

/** A real listening server on 127.0.0.1 (supertest is given it, so it does not bind anywhere else). */
export async function serve(handler: RequestListener): Promise<Server> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

export async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export function port(server: Server): number {
  return (server.address() as AddressInfo).port;
}

/** The response's Set-Cookie header lines. */
export function setCookies(res: { headers: Record<string, unknown> }): string[] {
  const header = res.headers["set-cookie"];
  if (header === undefined) return [];
  return Array.isArray(header) ? header.map(String) : [String(header)];
}

export interface SetCookie {
  name: string;
  /** The value exactly as sent (still URI-encoded when it was). */
  value: string;
  maxAge?: number;
  expires?: Date;
  domain?: string;
  path?: string;
  secure?: boolean;
  httpOnly?: boolean;
  sameSite?: string;
  partitioned?: boolean;
  priority?: string;
}

/** Parses one Set-Cookie line, keeping the value raw. */
export function parseOne(line: string): SetCookie {
  return parseSetCookie(line, { decode: (s: string) => s }) as SetCookie;
}

/** The Set-Cookie lines parsed, by cookie name. */
export function cookiesByName(res: { headers: Record<string, unknown> }): Record<string, SetCookie> {
  const out: Record<string, SetCookie> = {};
  for (const line of setCookies(res)) {
    const parsed = parseOne(line);
    out[parsed.name] = parsed;
  }
  return out;
}

/** A browser's cookie jar, reduced to what these tests need: set, expire, and send back. */
export class Jar {
  readonly cookies = new Map<string, string>();

  constructor(header?: string) {
    if (header) {
      for (const pair of header.split("; ")) {
        const at = pair.indexOf("=");
        this.cookies.set(pair.slice(0, at), pair.slice(at + 1));
      }
    }
  }

  /** Applies the response's Set-Cookie lines. Returns `this` for chaining. */
  take(res: { headers: Record<string, unknown> }): this {
    for (const line of setCookies(res)) {
      const c = parseOne(line);
      const gone = c.maxAge !== undefined ? c.maxAge <= 0 : c.expires !== undefined && c.expires.getTime() <= 0;
      if (gone) this.cookies.delete(c.name);
      else this.cookies.set(c.name, c.value);
    }
    return this;
  }

  /** The Cookie request header. */
  header(): string {
    return Array.from(this.cookies, ([name, value]) => `${name}=${value}`).join("; ");
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }

  names(): string[] {
    return Array.from(this.cookies.keys()).sort();
  }
}

/** Replaces Date.now with a clock the test moves. Call `restore()` (or jest.restoreAllMocks) after. */
export function fakeClock(start = Date.UTC(2030, 0, 1)): { now: number; advance(ms: number): void; restore(): void } {
  const clock = {
    now: start,
    advance(ms: number) {
      clock.now += ms;
    },
    restore() {
      spy.mockRestore();
    },
  };
  const spy = jest.spyOn(Date, "now").mockImplementation(() => clock.now);
  return clock;
}

export const SECRET = "a-test-secret-that-is-long-enough-0001";
export const SECRET_2 = "a-test-secret-that-is-long-enough-0002";
export const SECRET_3 = "a-test-secret-that-is-long-enough-0003";

export const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ---------------------------------------------------------------------------------------
// A test app and an independent implementation of CookieStore's seal formats.


/**
 * An Express app over `store` with routes that read, write, regenerate and destroy the
 * session, and an error handler that answers `{ error, code }` with the error's status.
 */
export function sessionApp(store: SessionStore, options?: SessionsOptions): express.Express {
  const app = express();
  app.use(express.json({ limit: "1mb" }));
  app.use(sessions(store, options));
  app.get("/read", (req, res) => {
    res.json({ ...req.session });
  });
  app.get("/untouched", (_req, res) => {
    res.send("ok");
  });
  app.post("/write", (req, res) => {
    Object.assign(req.session, req.body);
    res.json({ ...req.session });
  });
  app.post("/regenerate", (req, res) => {
    void req.session.regenerate({ keep: true }); // a new id, the data carried over
    res.json({ ...req.session });
  });
  app.post("/destroy", (req, res) => {
    req.session.destroy();
    res.json({ ...req.session });
  });
  app.use((err: { status?: number; message: string; code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(err.status ?? 500).json({ error: err.message, code: err.code });
  });
  return app;
}

/** Starts servers for one test file and closes them after each test. */
export function useServers(): (app: RequestListener) => Promise<Server> {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map(close));
  });
  return async (app) => {
    const server = await serve(app);
    servers.push(server);
    return server;
  };
}

function aesKey(secret: string): Buffer {
  return Buffer.from(hkdfSync("sha256", secret, "", "sessionbox CookieStore AES-256-GCM", 32));
}

/** Seals `plaintext` as CookieStore does with encrypt: true: base64url(version 1 | iv | ciphertext | tag), AAD = cookie name. */
export function sealEncrypted(plaintext: string, secret: string, name: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", aesKey(secret), iv);
  cipher.setAAD(Buffer.from(name));
  const body = Buffer.concat([cipher.update(plaintext, "utf8"), cipher.final()]);
  return Buffer.concat([Buffer.of(1), iv, body, cipher.getAuthTag()]).toString("base64url");
}

/** Opens a value sealed with encrypt: true; `undefined` when it does not authenticate. */
export function openEncrypted(value: string, secret: string, name: string): string | undefined {
  const sealed = Buffer.from(value, "base64url");
  try {
    const decipher = createDecipheriv("aes-256-gcm", aesKey(secret), sealed.subarray(1, 13));
    decipher.setAAD(Buffer.from(name));
    decipher.setAuthTag(sealed.subarray(sealed.length - 16));
    return Buffer.concat([decipher.update(sealed.subarray(13, sealed.length - 16)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}

/** Seals `plaintext` as CookieStore does with encrypt: false: base64url(plaintext) "." HMAC of "name=payload". */
export function sealSigned(plaintext: string, secret: string, name: string): string {
  return sign(`${name}=${Buffer.from(plaintext).toString("base64url")}`, secret).slice(name.length + 1);
}

/** The plaintext of a signed-only value (no check of the signature). */
export function readSigned(value: string): string {
  return Buffer.from(value.slice(0, value.lastIndexOf(".")), "base64url").toString("utf8");
}

/** The plaintext CookieStore seals: `[created, touched, session]`. */
export function payload(created: number, touched: number, session: object): string {
  return JSON.stringify([created, touched, session]);
}
