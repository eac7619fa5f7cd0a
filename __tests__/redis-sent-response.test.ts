/**
 * A 2xx that the handler sent stays a 2xx (SPEC §3.4, §3.5): with RedisStore the response is
 * held while the save is pending, and a handler that throws (or rejects) after `res.send` must
 * not turn it into an error page or a reset connection. Its error goes to Express's error
 * handling, whose output is dropped; the client gets the 200, the cookie, and a saved session.
 */
import express from "express";
import request from "supertest";
import { RedisStore, sessions } from "../lib";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { errorHandler, type Raw, rawClient, SECRET, type Served, serve, setCookies } from "./helpers/redis-app";

const ROUNDS = 20;
/** Every request of this file gives up after this long (the assertions never time anything). */
const DEADLINE = { deadline: 10_000 };

/** An Express 5 app whose routes save `round` and send "ok", then fail; with or without an error handler of its own. */
function failingApp(store: RedisStore, withErrorHandler: boolean): express.Express {
  const app = express();
  app.use(sessions(store));
  app.post("/throw", (req, res) => {
    req.session.round = Number(req.query.round);
    res.send("ok");
    throw new Error("the handler failed after res.send");
  });
  app.post("/reject", async (req, res) => {
    req.session.round = Number(req.query.round);
    res.send("ok");
    await Promise.resolve();
    throw new Error("the async handler failed after res.send");
  });
  if (withErrorHandler) app.use(errorHandler);
  return app;
}

describeRedis("RedisStore: a handler that fails after res.send while the save is pending", () => {
  let server: RedisServer;
  let raw: Raw;

  beforeAll(async () => {
    server = await startRedis();
    raw = await rawClient(server.url);
  });

  afterAll(async () => {
    await raw?.close();
    await server?.stop();
  });

  describe.each([
    ["Express 5's default error handling", false],
    ["an app error handler", true],
  ] as const)("with %s", (_label, withErrorHandler) => {
    let store: RedisStore;
    let served: Served;

    beforeAll(async () => {
      store = new RedisStore({ url: server.url, secret: SECRET, prefix: `sent${Number(withErrorHandler)}:` });
      served = await serve(failingApp(store, withErrorHandler));
    });

    afterAll(async () => {
      await served?.close();
      await store?.close();
    });

    it.each(["throw", "reject"])(`a handler that %ss keeps its 200, its cookie and its saved session (${ROUNDS} rounds)`, async (route) => {
      for (let round = 1; round <= ROUNDS; round++) {
        const res = await request(served.url).post(`/${route}?round=${round}`).timeout(DEADLINE);
        expect([res.status, res.text]).toEqual([200, "ok"]);
        const cookies = setCookies(res);
        expect(cookies).toHaveLength(1);
        const id = decodeURIComponent(cookies[0].split(";")[0].slice("session=".length)).split(".")[0];
        expect(await raw.hGetAll(`${store.prefix}${id}`)).toMatchObject({ round: String(round) });
      }
    });
  });
});
