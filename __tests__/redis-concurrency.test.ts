/**
 * Concurrent requests on one session (SPEC §6): only changed fields are written, so two
 * requests that change different keys both persist. The same scenario is run against
 * express-session + connect-redis, which saves the whole session and loses one of the two, and
 * against ExpressSessionStore over connect-redis, which writes whole records as express-session does.
 */
import { setTimeout as sleep } from "node:timers/promises";
import express, { type RequestHandler } from "express";
import { createClient } from "redis";
import { type ExpressSessionBackend, ExpressSessionStore, RedisStore } from "../lib";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { Browser, SECRET, type Served, serve, sessionApp } from "./helpers/redis-app";

// Without @types for these two: they are only the comparison here.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const expressSession = require("express-session") as (options: object) => RequestHandler;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { RedisStore: ConnectRedisStore } = require("connect-redis") as { RedisStore: new (options: object) => object };

const ROUNDS = 100;
/** Handler time between load and save, so that the two requests of a round overlap, as real handlers do. */
const WORK_MS = 15;

/**
 * Two concurrent requests per round on one session, writing `a` and `b`. Returns how many of the
 * writes were lost, and in how many rounds the two really overlapped (neither saw the other's write).
 */
async function lostUpdates(browser: Browser, rounds: number): Promise<{ lost: number; overlapped: number }> {
  let lost = 0;
  let overlapped = 0;
  for (let round = 1; round <= rounds; round++) {
    const [first, second] = await Promise.all([
      browser.post(`/set?delay=${WORK_MS}`, { a: round }),
      browser.post(`/set?delay=${WORK_MS}`, { b: round }),
    ]);
    expect([first.status, second.status]).toEqual([200, 200]);
    if (first.body.b !== round && second.body.a !== round) overlapped++;
    const stored = (await browser.get("/get")).body;
    lost += Number(stored.a !== round) + Number(stored.b !== round);
  }
  return { lost, overlapped };
}

describeRedis("concurrent requests on one session", () => {
  let server: RedisServer;
  let client: ReturnType<typeof createClient>;

  beforeAll(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    client.on("error", () => undefined);
    await client.connect();
  });

  afterAll(async () => {
    await client?.close();
    await server?.stop();
  });

  describe("RedisStore", () => {
    let served: Served;
    beforeAll(async () => {
      served = await serve(sessionApp(new RedisStore({ client, secret: SECRET })));
    });
    afterAll(() => served.close());

    it(`keeps both changes when two concurrent requests change different keys (${ROUNDS} rounds, 0 lost)`, async () => {
      const browser = new Browser(served.url);
      await browser.post("/set", { user: "ann" });
      const { lost, overlapped } = await lostUpdates(browser, ROUNDS);
      console.log(`lost updates, RedisStore: ${lost} of ${2 * ROUNDS} writes in ${ROUNDS} rounds of two concurrent requests (${overlapped} rounds overlapped)`);
      expect(lost).toBe(0);
      // The rounds must really be concurrent for the 0 to mean anything.
      expect(overlapped).toBeGreaterThanOrEqual(0.9 * ROUNDS);
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann", a: ROUNDS, b: ROUNDS });
    });

    it("lets the last writer win when two concurrent requests change the same key", async () => {
      const browser = new Browser(served.url);
      await browser.post("/set", { user: "ann" });
      // What counts is the order of the saves, not of the starts: the handler that finishes last wins.
      const startsFirstSavesLast = browser.post("/set?delay=100", { theme: "first" });
      await sleep(10);
      await browser.post("/set?delay=0", { theme: "second" });
      await startsFirstSavesLast;
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann", theme: "first" });

      const startsFirstSavesFirst = browser.post("/set?delay=20", { theme: "first" });
      await sleep(10);
      await Promise.all([startsFirstSavesFirst, browser.post("/set?delay=100", { theme: "second" })]);
      expect((await browser.get("/get")).body).toEqual({ id: browser.id, user: "ann", theme: "second" });
    });
  });

  describe("ExpressSessionStore over connect-redis (whole-record writes, as express-session's)", () => {
    let served: Served;
    beforeAll(async () => {
      const store = new ConnectRedisStore({ client, prefix: "ess:" }) as ExpressSessionBackend;
      served = await serve(sessionApp(new ExpressSessionStore({ store, secret: SECRET })));
    });
    afterAll(() => served.close());

    it(`loses at most one of the two changes per round, as express-session does (${ROUNDS} rounds; its lost count is printed)`, async () => {
      const browser = new Browser(served.url, "connect.sid");
      await browser.post("/set", { user: "ann" });
      const { lost, overlapped } = await lostUpdates(browser, ROUNDS);
      console.log(
        `lost updates, ExpressSessionStore over connect-redis: ${lost} of ${2 * ROUNDS} writes in ${ROUNDS} rounds of two concurrent requests (${overlapped} rounds overlapped)`,
      );
      expect(lost).toBeLessThanOrEqual(ROUNDS);
      expect(overlapped).toBeGreaterThanOrEqual(0.9 * ROUNDS);
      expect((await browser.get("/get")).body).toMatchObject({ user: "ann" });
    });
  });

  describe("express-session + connect-redis (for comparison)", () => {
    let served: Served;
    beforeAll(async () => {
      const app = express();
      app.use(
        expressSession({
          store: new ConnectRedisStore({ client, prefix: "es:" }),
          secret: SECRET,
          resave: false,
          saveUninitialized: false,
        }),
      );
      app.use(express.json());
      const session = (req: express.Request) => (req as unknown as { session: Record<string, unknown> }).session;
      app.get("/get", (req, res) => {
        const { cookie: _cookie, ...data } = session(req);
        res.json(data);
      });
      app.post("/set", async (req, res) => {
        await sleep(Number(req.query.delay ?? 0));
        Object.assign(session(req), req.body);
        const { cookie: _cookie, ...data } = session(req);
      res.json(data);
      });
      served = await serve(app);
    });
    afterAll(() => served.close());

    it(`runs the same scenario (${ROUNDS} rounds; its lost count is printed for comparison, not asserted)`, async () => {
      const browser = new Browser(served.url, "connect.sid");
      await browser.post("/set", { user: "ann" });
      expect(browser.cookie).toBeDefined();
      const { lost, overlapped } = await lostUpdates(browser, ROUNDS);
      console.log(
        `lost updates, express-session + connect-redis: ${lost} of ${2 * ROUNDS} writes in ${ROUNDS} rounds of two concurrent requests (${overlapped} rounds overlapped)`,
      );
    });
  });
});
