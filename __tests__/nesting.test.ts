/**
 * Data nested too deep to be saved again is refused at the request that writes it (issue 19).
 *
 * `JSON.stringify` recurses on the call stack, so whether deeply nested data can be saved
 * depends on how much stack is left where the save runs. Every store refuses a session nested
 * more than 1,000 levels deep (the session object is the first level) with a
 * `SessionTooLargeError`, at the request that writes it: never a 200 followed by a 500 on every
 * later change, never a bare RangeError.
 */
import express from "express";
import request from "supertest";
import { CookieStore, MemoryStore, RedisStore, sessions, type SessionStore } from "../lib";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { Jar, SECRET, useServers } from "./helpers/session-cookies";

const start = useServers();
const DEADLINE = { deadline: 10_000 };

/** JSON of `{ deep: [[...[]...]], user }`, with `levels` nested arrays (the request body is written as text: JSON.stringify could not). */
function deepBody(levels: number, user = "bob"): string {
  return `{"user":${JSON.stringify(user)},"deep":${"[".repeat(levels)}${"]".repeat(levels)}}`;
}

/** Routes: POST /write assigns the JSON body and answers "saved"; GET /read answers the session (`deep` as "(deep)"); errors answer `{ code, message }`. */
function app(store: SessionStore): express.Express {
  const a = express();
  a.use(express.json({ limit: "1mb" }));
  a.use(sessions(store));
  a.post("/write", (req, res) => {
    Object.assign(req.session, req.body);
    res.send("saved");
  });
  a.post("/bigint", (req, res) => {
    req.session.big = BigInt(1);
    res.send("saved");
  });
  a.get("/read", (req, res) => {
    const data: Record<string, unknown> = { ...req.session };
    if ("deep" in data) data.deep = "(deep)";
    res.json(data);
  });
  a.use((err: { status?: number; code?: string; message: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(err.status ?? 500).json({ code: err.code, message: err.message });
  });
  return a;
}

/** A browser over `server`: it keeps the cookies the responses set. */
function browser(server: Parameters<typeof request>[0]) {
  const jar = new Jar();
  const send = async (test: request.Test) => {
    const res = await test.set("Cookie", jar.header()).timeout(DEADLINE);
    jar.take(res);
    return res;
  };
  return {
    write: (body: string) => send(request(server).post("/write").type("json").send(body)),
    read: () => send(request(server).get("/read")),
  };
}

/** The `{ code, message }` an error response carries (parsed from its text: it may still have the dropped body's Content-Type). */
function errorOf(res: request.Response): { code?: string; message?: string } {
  return JSON.parse(res.text);
}

function storeTests(makeStore: () => SessionStore): void {
  it("refuses arrays 2,200 levels deep when they are written, with a SessionTooLargeError; the session stays as it was and later changes succeed", async () => {
    const client = browser(await start(app(makeStore())));
    expect((await client.write(JSON.stringify({ user: "ann" }))).status).toBe(200);
    const refused = await client.write(deepBody(2_200));
    expect(refused.status).toBe(500);
    expect(errorOf(refused)).toEqual({ code: "SESSION_TOO_LARGE", message: expect.stringMatching(/nested more than 1000 levels deep.*Keep such data out of the session/) });
    expect((await client.read()).body).toEqual({ id: expect.any(String), user: "ann" });
    for (const user of ["cy", "dee"]) expect((await client.write(JSON.stringify({ user }))).status).toBe(200);
    expect((await client.read()).body).toEqual({ id: expect.any(String), user: "dee" });
  });

  it("saves a session nested exactly 1,000 levels deep and changes it later; one level more is refused", async () => {
    const client = browser(await start(app(makeStore())));
    // The session object is level 1, so its field holds 999 levels.
    expect((await client.write(deepBody(999, "ann"))).status).toBe(200);
    expect((await client.write(JSON.stringify({ user: "bob" }))).status).toBe(200);
    expect((await client.read()).body).toEqual({ id: expect.any(String), user: "bob", deep: "(deep)" });
    const refused = await client.write(deepBody(1_000, "cy"));
    expect([refused.status, errorOf(refused).code]).toEqual([500, "SESSION_TOO_LARGE"]);
    expect((await client.read()).body).toEqual({ id: expect.any(String), user: "bob", deep: "(deep)" });
  });

  it("does not count brackets inside strings, escaped quotes included", async () => {
    const client = browser(await start(app(makeStore())));
    const note = `a \\"quoted\\" ${"[{".repeat(1_500)}`;
    expect((await client.write(JSON.stringify({ user: "ann", note }))).status).toBe(200);
    expect((await client.read()).body).toEqual({ id: expect.any(String), user: "ann", note });
  });

  it("leaves other values JSON refuses (a BigInt) to their own TypeError", async () => {
    const server = await start(app(makeStore()));
    const res = await request(server).post("/bigint").timeout(DEADLINE);
    expect(res.status).toBe(500);
    expect(errorOf(res).message).toMatch(/BigInt/);
  });

  it("reports data merged after the response ended, even too deep for JSON.stringify, as a lost change: the process goes on", async () => {
    const lost: string[] = [];
    const a = express();
    a.use(express.json({ limit: "1mb" }));
    a.use(sessions(makeStore(), { onLostChange: (err) => lost.push(err.message) }));
    a.post("/late", (req, res) => {
      req.session.user = "ann";
      res.send("saved");
      Object.assign(req.session, req.body);
    });
    const server = await start(a);
    const res = await request(server).post("/late").type("json").send(deepBody(100_000)).timeout(DEADLINE);
    expect([res.status, res.text]).toEqual([200, "saved"]);
    for (let i = 0; i < 50 && lost.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(lost).toEqual([expect.stringMatching(/^session change on POST \/late was not saved: the response had already ended/)]);
  });

  it("refuses nesting too deep for JSON.stringify itself (100,000 levels) with the same error, not a RangeError", async () => {
    const client = browser(await start(app(makeStore())));
    const refused = await client.write(deepBody(100_000));
    expect(refused.status).toBe(500);
    expect(errorOf(refused)).toEqual({ code: "SESSION_TOO_LARGE", message: expect.stringMatching(/nested too deep/) });
  });
}

describe.each([true, false])("CookieStore (encrypt: %p)", (encrypt) => {
  storeTests(() => new CookieStore({ secret: SECRET, encrypt, maxSize: 1_048_576 }));
});

describe("MemoryStore", () => {
  storeTests(() => new MemoryStore());
});

describeRedis("RedisStore", () => {
  let server: RedisServer;
  const stores: RedisStore[] = [];
  beforeAll(async () => {
    server = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(stores.map((store) => store.close()));
    await server?.stop();
  });
  storeTests(() => {
    const store = new RedisStore({ url: server.url, secret: SECRET });
    stores.push(store);
    return store;
  });
});
