import { randomBytes } from "node:crypto";
import http from "node:http";
import express from "express";
import request from "supertest";
import { CookieStore, Session, SessionTooLargeError, sessions } from "../lib";
import { cookiesByName, Jar, SECRET, serve, sessionApp, setCookies, useServers } from "./helpers/session-cookies";

const start = useServers();

/** Random, incompressible ASCII of exactly `n` characters. */
function blob(n: number): string {
  return randomBytes(n).toString("base64url").slice(0, n);
}

function sessionCookieNames(res: { headers: Record<string, unknown> }, name = "session"): string[] {
  return Object.keys(cookiesByName(res)).filter((n) => n === name || n.startsWith(`${name}.`));
}

describe.each([true, false])("CookieStore chunking (encrypt: %p)", (encrypt) => {
  const store = () => new CookieStore({ secret: SECRET, encrypt });

  it("a session above 4096 bytes is split into <name>, <name>.1, ... each at most 4096 bytes", async () => {
    const server = await start(sessionApp(store()));
    const res = await request(server).post("/write").send({ blob: blob(7000) });
    expect(res.status).toBe(200);
    const cookies = cookiesByName(res);
    expect(Object.keys(cookies)).toEqual(["session", "session.1", "session.2"]);
    for (const cookie of Object.values(cookies)) {
      expect(Buffer.byteLength(`${cookie.name}=${cookie.value}`)).toBeLessThanOrEqual(4096);
      expect(cookie).toMatchObject({ path: "/", httpOnly: true, sameSite: "lax", maxAge: 86_400 });
    }
    expect(cookies.session.value).toMatch(/^~3~/);
  });

  it("a small session stays in one cookie", async () => {
    const server = await start(sessionApp(store()));
    const res = await request(server).post("/write").send({ blob: blob(2000) });
    expect(sessionCookieNames(res)).toEqual(["session"]);
    expect(cookiesByName(res).session.value).not.toMatch(/^~/);
  });

  it("chunks are joined on read", async () => {
    const server = await start(sessionApp(store()));
    const data = blob(7000);
    const res = await request(server).post("/write").send({ blob: data });
    const next = await request(server).get("/read").set("Cookie", new Jar().take(res).header());
    expect(next.body).toEqual({ id: res.body.id, blob: data });
  });

  it("stale chunks are expired when the session shrinks", async () => {
    const server = await start(sessionApp(store()));
    const jar = new Jar().take(await request(server).post("/write").send({ blob: blob(7000) }));
    expect(jar.names()).toEqual(["session", "session.1", "session.2"]);

    const smaller = await request(server).post("/write").set("Cookie", jar.header()).send({ blob: blob(5000) });
    const cookies = cookiesByName(smaller);
    expect(Object.keys(cookies)).toEqual(["session", "session.1", "session.2"]);
    expect(cookies["session.2"]).toMatchObject({ value: "", maxAge: 0, path: "/" });
    expect(jar.take(smaller).names()).toEqual(["session", "session.1"]);

    const single = await request(server).post("/write").set("Cookie", jar.header()).send({ blob: "small" });
    expect(cookiesByName(single)["session.1"]).toMatchObject({ value: "", maxAge: 0 });
    expect(jar.take(single).names()).toEqual(["session"]);
    const read = await request(server).get("/read").set("Cookie", jar.header());
    expect(read.body.blob).toBe("small");
  });

  it("destroy() expires every chunk", async () => {
    const server = await start(sessionApp(store()));
    const jar = new Jar().take(await request(server).post("/write").send({ blob: blob(7000) }));
    const res = await request(server).post("/destroy").set("Cookie", jar.header());
    const cookies = cookiesByName(res);
    expect(Object.keys(cookies)).toEqual(["session", "session.1", "session.2"]);
    for (const cookie of Object.values(cookies)) expect(cookie).toMatchObject({ value: "", maxAge: 0 });
    expect(jar.take(res).names()).toEqual([]);
  });

  it("a missing middle chunk gives an empty session", async () => {
    const server = await start(sessionApp(store()));
    const res = await request(server).post("/write").send({ blob: blob(7000) });
    const jar = new Jar().take(res);
    jar.cookies.delete("session.1");
    const next = await request(server).get("/read").set("Cookie", jar.header());
    expect(next.status).toBe(200);
    expect(next.body).toEqual({ id: expect.any(String) });
    expect(next.body.id).not.toBe(res.body.id);
  });

  it("swapped chunks give an empty session", async () => {
    const server = await start(sessionApp(store()));
    const jar = new Jar().take(await request(server).post("/write").send({ blob: blob(7000) }));
    const one = jar.get("session.1") as string;
    jar.cookies.set("session.1", jar.get("session.2") as string);
    jar.cookies.set("session.2", one);
    const next = await request(server).get("/read").set("Cookie", jar.header());
    expect(Object.keys(next.body)).toEqual(["id"]);
  });

  it("a chunk count that does not match the chunks gives an empty session", async () => {
    const server = await start(sessionApp(store()));
    const jar = new Jar().take(await request(server).post("/write").send({ blob: blob(7000) }));
    for (const head of ["~2~", "~4~", "~1~", "~0~", "~999~", "~x~", "~"]) {
      const forged = new Jar(jar.header());
      forged.cookies.set("session", (jar.get("session") as string).replace(/^~\d+~/, head));
      const next = await request(server).get("/read").set("Cookie", forged.header());
      expect(next.status).toBe(200);
      expect(Object.keys(next.body)).toEqual(["id"]);
    }
  });
});

describe("a 10 KB session round-trips within Node's default 16 KB header limit", () => {
  it.each([true, false])("through a real node:http server (encrypt: %p)", async (encrypt) => {
    expect(http.maxHeaderSize).toBe(16_384);
    const middleware = sessions(new CookieStore({ secret: SECRET, encrypt }));
    const data = blob(10_240);
    // Bare node:http, default options: the server applies the default header limit.
    const server = await serve((req, res) => {
      middleware(req, res, () => {
        const session = (req as unknown as { session: Session }).session;
        if (req.method === "POST") session.blob = data;
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ ...session }));
      });
    });
    try {
      const first = await request(server).post("/");
      expect(first.status).toBe(200);
      const jar = new Jar().take(first);
      expect(JSON.stringify(first.body).length).toBeGreaterThan(10_240);
      expect(jar.header().length).toBeLessThan(14_336);
      const second = await request(server).get("/").set("Cookie", jar.header());
      expect(second.status).toBe(200);
      expect(second.body).toEqual({ id: first.body.id, blob: data });
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("past maxSize the request fails loudly", () => {
  it("answers 500 with SessionTooLargeError through Express error handling, naming the size and the fix", async () => {
    const server = await start(sessionApp(new CookieStore({ secret: SECRET })));
    const res = await request(server).post("/write").send({ blob: blob(12_000) });
    expect(res.status).toBe(500);
    expect(res.body.code).toBe("SESSION_TOO_LARGE");
    expect(res.body.error).toMatch(
      /^the session in cookie "session" seals to \d+ bytes, over CookieStore maxSize \(14336\); .*Keep less in the session, or use RedisStore for large sessions$/,
    );
    const size = Number(/seals to (\d+) bytes/.exec(res.body.error)?.[1]);
    expect(size).toBeGreaterThan(14_336);
    expect(sessionCookieNames(res)).toEqual([]);
  });

  it("does not overwrite the browser's existing cookie", async () => {
    const server = await start(sessionApp(new CookieStore({ secret: SECRET })));
    const login = await request(server).post("/write").send({ user: "ann", blob: blob(6000) });
    const jar = new Jar().take(login);
    const before = jar.header();

    const tooBig = await request(server).post("/write").set("Cookie", jar.header()).send({ blob: blob(12_000) });
    expect(tooBig.status).toBe(500);
    expect(setCookies(tooBig).filter((line) => line.startsWith("session"))).toEqual([]);
    expect(jar.take(tooBig).header()).toBe(before);

    const next = await request(server).get("/read").set("Cookie", jar.header());
    expect(next.body.user).toBe("ann");
    expect(next.body.id).toBe(login.body.id);
  });

  it("a smaller maxSize is honoured, and Express's default handler answers 500", async () => {
    const app = express();
    app.use(sessions(new CookieStore({ secret: SECRET, maxSize: 4096 })));
    app.get("/", (req, res) => {
      req.session.blob = blob(3500);
      res.send("saved?");
    });
    const server = await start(app);
    const res = await request(server).get("/");
    expect(res.status).toBe(500);
    expect(res.text).not.toContain("saved?");
    expect(setCookies(res)).toEqual([]);
  });

  it("the error is a SessionTooLargeError with status 500", () => {
    const store = new CookieStore({ secret: SECRET, maxSize: 100 });
    const session = new Session({ id: "x", blob: blob(200) });
    const ctx = { req: { headers: {}, socket: {} }, res: {}, cookies: {} } as never;
    expect(() => store.dump(session, ctx)).toThrow(SessionTooLargeError);
    expect(() => store.dump(session, ctx)).toThrow(expect.objectContaining({ status: 500, code: "SESSION_TOO_LARGE" }));
  });
});
