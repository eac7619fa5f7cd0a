/**
 * Signed ids (SPEC §6, §4): the cookie carries the session id signed with the secret, so an
 * unsigned, forged, foreign or malformed id never reaches Redis and yields a new empty session.
 */
import { sign } from "cookie-signature";
import { createClient } from "redis";
import { RedisStore } from "../lib";
import { delta, describeRedis, type RedisServer, startRedis } from "./helpers/redis";
import { Browser, type Raw, rawClient, SECRET, type Served, serve, sessionApp, setCookies } from "./helpers/redis-app";

const OTHER_SECRET = "another-app-secret-0123456789abcdef";

describeRedis("signed session ids in the RedisStore cookie", () => {
  let server: RedisServer;
  let client: ReturnType<typeof createClient>;
  let raw: Raw;
  let served: Served;
  /** A real stored session: the bad cookies below all name its id. */
  let victim: Browser;
  let id: string;

  beforeAll(async () => {
    server = await startRedis();
    client = createClient({ url: server.url });
    client.on("error", () => undefined);
    await client.connect();
    raw = await rawClient(server.url);
    served = await serve(sessionApp(new RedisStore({ client, secret: SECRET })));
    victim = new Browser(served.url);
    await victim.post("/set", { user: "ann", role: "admin" });
    id = victim.id as string;
  });

  afterAll(async () => {
    await served?.close();
    await client?.close();
    await raw?.close();
    await server?.stop();
  });

  const BAD_COOKIES: [string, () => string][] = [
    ["an unsigned id", () => id],
    ["an id with a forged signature", () => `${id}.${"A".repeat(43)}`],
    ["an id signed with another app's secret", () => encodeURIComponent(sign(id, OTHER_SECRET))],
    ["a signed value that is not an id this package issues", () => encodeURIComponent(sign("sess:*", SECRET))],
    ["a signed id of the wrong shape (a v1 UUID)", () => encodeURIComponent(sign("c232ab00-9414-11ec-b3c8-9f6bdeced846", SECRET))],
  ];

  describe.each(BAD_COOKIES)("with %s", (_label, cookie) => {
    it("never reaches Redis, and a reading handler gets a new empty session and no Set-Cookie", async () => {
      const browser = new Browser(served.url);
      browser.cookie = cookie();
      const before = await server.stats();
      const res = await browser.get("/get");
      const after = await server.stats();
      expect(res.status).toBe(200);
      expect(res.body.id).not.toBe(id);
      expect(res.body).toEqual({ id: res.body.id });
      expect(setCookies(res)).toEqual([]);
      expect(delta(before, after, "hgetall")).toBe(0);
    });

    it("gives a writing handler a new id, leaving the stored session untouched", async () => {
      const browser = new Browser(served.url);
      browser.cookie = cookie();
      const before = await server.stats();
      const res = await browser.post("/set", { role: "intruder" });
      const after = await server.stats();
      expect(res.status).toBe(200);
      expect(browser.id).toBeDefined();
      expect(browser.id).not.toBe(id);
      expect(res.body).toEqual({ id: browser.id, role: "intruder" });
      expect(delta(before, after, "hgetall")).toBe(0);
      expect(await raw.hGetAll(`sess:${id}`)).toMatchObject({ user: '"ann"', role: '"admin"' });
    });
  });

  it("accepts the id signed with the secret, with one HGETALL (the control case)", async () => {
    const before = await server.stats();
    const res = await victim.get("/get");
    expect(delta(before, await server.stats(), "hgetall")).toBe(1);
    expect(res.body).toEqual({ id, user: "ann", role: "admin" });
  });

  it("accepts an id signed with an older secret of the list and re-issues it under the first", async () => {
    const rotated = await serve(sessionApp(new RedisStore({ client, secret: [OTHER_SECRET, SECRET] })));
    try {
      const browser = new Browser(rotated.url);
      browser.cookie = victim.cookie;
      const res = await browser.get("/get");
      expect(res.body).toEqual({ id, user: "ann", role: "admin" });
      expect(decodeURIComponent(browser.cookie as string)).toBe(sign(id, OTHER_SECRET));
    } finally {
      await rotated.close();
    }
  });
});
