/**
 * The benchmark's servers (`bench/server.mjs`, one per row of `npm run bench`'s table) serve
 * what the table's column names say: each is started from the script the suite runs for it,
 * and driven like a browser. A row whose `write` did not really save, or whose `untouched`
 * route loaded and re-issued the session, would make its req/s mean something else. No timing
 * is asserted.
 */
import { join } from "node:path";
import type request from "supertest";
import { CookieStore, type SessionContext } from "../lib";
import { Browser, setCookies } from "./helpers/apps";
import { startNode, stopChild } from "./helpers/child";
import { ensureBuilt, ROOT } from "./helpers/dist";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";

const SERVER = join(ROOT, "bench/server.mjs");

/**
 * Drives one row: `/setup` creates the benchmark session; `/read` reads it; `/write` counts, and
 * a second `/write` with the cookies the first one set counts on (the write was saved, in the
 * cookie or in the store); `/untouched` answers. For this package's rows, the two routes that
 * leave the session unchanged send no `Set-Cookie`, as the package promises. `more`, when given,
 * goes on driving the same server afterwards.
 */
async function checkRow(impl: string, env: Record<string, string> = {}, more?: (browser: Browser) => Promise<void>): Promise<void> {
  // `node bench/server.mjs IMPL 0`: the script the suite forks for the row, with the same NODE_ENV.
  const server = await startNode(SERVER, [impl, "0"], { ...process.env, ...env, NODE_ENV: "production" }, /READY (\d+)/);
  try {
    if (server.ready === undefined) throw new Error(`bench/server.mjs ${impl} exited with code ${server.code} before it was ready:\n${server.output}`);
    const browser = new Browser(`http://127.0.0.1:${server.ready}`);
    const setup = await browser.get("/setup");
    expect(setup).toMatchObject({ status: 200, text: "ok" });
    expect(setCookies(setup).length).toBeGreaterThan(0);
    const sent = browser.jar.header(); // what the benchmark's client sends with every request
    const sending = (test: request.Test) => test.set("Cookie", sent);

    expect(await browser.get("/read", sending)).toMatchObject({ status: 200, text: "user bench-user" });
    const untouched = await browser.get("/untouched", sending);
    expect(untouched).toMatchObject({ status: 200, text: "ok" });

    const first = await browser.get("/write", sending);
    expect(first).toMatchObject({ status: 200, text: "1" });
    const second = await browser.get("/write"); // with the cookies the first write set
    const floorWithSession = impl === "floor-session" || impl === "floor-redis-session";
    const sessionless = impl === "express" || (impl.startsWith("floor") && !floorWithSession);
    expect(second).toMatchObject({ status: 200, text: sessionless ? "1" : "2" });

    if (sessionless || impl.startsWith("sessionbox") || floorWithSession) {
      expect(setCookies(untouched)).toEqual([]);
      expect(setCookies(await browser.get("/read", sending))).toEqual([]);
    }
    if (impl.startsWith("sessionbox-cookie")) expect(setCookies(first)).toHaveLength(1); // a write re-seals the cookie
    await more?.(browser);
  } finally {
    await stopChild(server.child);
  }
}

beforeAll(() => ensureBuilt(), 60_000);

describe("npm run bench's servers (bench/server.mjs)", () => {
  it.each(["express", "floor", "floor-twin", "floor-props", "floor-hook", "floor-session", "sessionbox-cookie", "sessionbox-cookie-signed", "sessionbox-memory", "cookie-session", "express-session"])(
    "%s serves setup, read, untouched and a saved write",
    (impl) => checkRow(impl),
  );
});

/**
 * The `floor-seal` rows, the suite's bounds from below for `write` (the floor sealing the
 * session into its cookie and nothing else): each `/write` must send a real seal, one that a
 * CookieStore with the benchmark's secret opens, counting on from the last, or the bound would
 * leave out work a store must do.
 */
describe("bench/server.mjs's floor-seal rows", () => {
  const SECRET = "bench-secret-bench-secret-bench-secret-0123456789"; // bench/server.mjs's
  it.each([
    ["floor-seal", true],
    ["floor-seal-signed", false],
  ])("%s sends a new seal of the session on every write", (impl, encrypt) =>
    checkRow(impl, {}, async (browser) => {
      const store = new CookieStore({ secret: SECRET, encrypt });
      const opened = async () => {
        const [line] = setCookies(await browser.get("/write"));
        expect(line).toMatch(/^session=[\w.+/-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
        const value = line.slice("session=".length, line.indexOf(";"));
        const ctx = { req: { headers: {}, socket: {} }, res: {}, cookies: { session: value } } as unknown as SessionContext;
        return { value, session: store.load(ctx) };
      };
      const first = await opened();
      const second = await opened();
      expect(second.value).not.toBe(first.value);
      expect({ ...first.session }).toMatchObject({ user: "bench-user", roles: ["reader", "writer"] });
      expect(second.session.count).toBe((first.session.count as number) + 1);
      expect(second.session.id).toBe(first.session.id);
    }),
  );
});

describeRedis("npm run bench's Redis servers (bench/server.mjs)", () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it.each(["sessionbox-redis", "sessionbox-redis-lazy", "express-session+connect-redis", "floor-redis-session"])("%s serves setup, read, untouched and a saved write", async (impl) => {
    await checkRow(impl, { REDIS_URL: redis.url });
    expect(Number(await redis.cli("DBSIZE"))).toBeGreaterThan(0); // the sessions are in this Redis
  });

  // The bound for RedisStore `preload: false` on `untouched`: the floor, plus a client connected
  // to the Redis the Redis rows use and left idle. Without the client it would be the floor again.
  it("floor-redis serves the floor's routes with an idle client connected to this Redis", async () => {
    const clients = async () => (await redis.cli("CLIENT", "LIST")).split("\n").filter((line) => line.includes("cmd=")).length;
    const before = await clients();
    const keys = await redis.cli("DBSIZE");
    let during = 0;
    await checkRow("floor-redis", { REDIS_URL: redis.url }, async () => {
      during = await clients();
    });
    expect(during).toBe(before + 1); // its client (the redis-cli asking is counted in both)
    expect(await redis.cli("DBSIZE")).toBe(keys); // and it stored nothing
  });
});
