/**
 * An express-session app and this package sharing one express-session store (SPEC §10): the
 * same cookie and the same records, so each recognises the users the other signed in and reads
 * what the other wrote. Over each store: express-session's MemoryStore, connect-redis,
 * connect-pg-simple (PostgreSQL) and express-mysql-session (MariaDB), on real servers.
 */
import { parseSetCookie } from "cookie";
import { unsign } from "cookie-signature";
import { ExpressSessionStore } from "../lib";
import { Browser, DAY, expressSessionApp, SECRET, type Served, served, sessionboxApp } from "./helpers/express-session-apps";
import { BACKENDS, type OpenBackend } from "./helpers/express-session-backends";
import { describeNeeding } from "./helpers/servers";
import { setCookies } from "./helpers/session-cookies";

for (const backend of BACKENDS) {
  describeNeeding(backend.requirements, `an express-session app and this package sharing ${backend.name}`, () => {
    let opened: OpenBackend;
    let old: Served;
    let now: Served;

    beforeAll(async () => {
      opened = await backend.open();
      old = await served(expressSessionApp(opened.old));
      now = await served(sessionboxApp(new ExpressSessionStore({ store: opened.shared, secret: SECRET, maxAge: DAY })));
    });

    afterAll(async () => {
      await old?.close();
      await now?.close();
      await opened?.close();
    });

    it("recognises here a user who signed in on the express-session app", async () => {
      const browser = new Browser();
      await browser.post(old, "/login", { user: "ann" });
      expect((await browser.get(now, "/me")).body).toEqual({ user: "ann" });
    });

    it("lets the express-session app recognise a user who signed in here", async () => {
      const browser = new Browser();
      await browser.post(now, "/login", { user: "bob" });
      expect((await browser.get(old, "/me")).body).toEqual({ user: "bob" });
    });

    it("reads on each app what the other wrote", async () => {
      const browser = new Browser();
      await browser.post(now, "/login", { user: "cy" });
      await browser.post(old, "/set", { cart: ["apple"] });
      expect((await browser.get(now, "/me")).body).toEqual({ user: "cy", cart: ["apple"] });
      await browser.post(now, "/count");
      await browser.post(old, "/count");
      await browser.post(now, "/unset?key=cart");
      expect((await browser.get(old, "/me")).body).toEqual({ user: "cy", views: 2 });
      expect((await browser.get(now, "/me")).body).toEqual({ user: "cy", views: 2 });
    });

    it("signs the user out on both apps when either signs out, and deletes the record", async () => {
      const browser = new Browser();
      await browser.post(old, "/login", { user: "dee" });
      const id = browser.expressSessionId as string;
      expect(await opened.record(id)).toBeDefined();
      await browser.post(now, "/logout");
      expect(browser.jar.get("connect.sid")).toBeUndefined();
      expect(await opened.record(id)).toBeUndefined();

      await browser.post(now, "/login", { user: "dee" });
      await browser.post(old, "/logout");
      expect((await browser.get(now, "/me")).body).toEqual({});
      expect((await browser.get(old, "/me")).body).toEqual({});
    });

    it("writes records of express-session's shape: the data and express-session's cookie object (which also holds the creation time)", async () => {
      const browser = new Browser();
      const before = Date.now();
      await browser.post(now, "/login", { user: "eve" });
      const record = await opened.record(browser.expressSessionId as string);
      expect(record).toEqual({
        cookie: { originalMaxAge: DAY, expires: expect.any(String), secure: false, httpOnly: true, path: "/", sameSite: "lax", "sessionbox:created": expect.any(Number) },
        user: "eve",
      });
      const expires = Date.parse((record as { cookie: { expires: string } }).cookie.expires);
      expect(expires).toBeGreaterThanOrEqual(before + DAY - 1000);
      expect(expires).toBeLessThanOrEqual(Date.now() + DAY);

      const legacy = new Browser();
      await legacy.post(old, "/login", { user: "eve" });
      const written = (await opened.record(legacy.expressSessionId as string)) as { cookie: object };
      expect(Object.keys(written.cookie).sort()).toEqual(expect.arrayContaining(["expires", "httpOnly", "originalMaxAge", "path", "sameSite"]));
    });

    it("sends the cookie express-session sends: connect.sid = s: + the signed id, URI-encoded the same way", async () => {
      const ours = setCookies(await new Browser().post(now, "/login", { user: "fay" }));
      const theirs = setCookies(await new Browser().post(old, "/login", { user: "fay" }));
      for (const lines of [ours, theirs]) {
        expect(lines).toHaveLength(1);
        const raw = parseSetCookie(lines[0], { decode: (value: string) => value }) as { name: string; value: string };
        expect(raw.name).toBe("connect.sid");
        expect(raw.value).toMatch(/^s%3A[\w-]+\.[\w%]+$/);
        expect(raw.value).toBe(encodeURIComponent(decodeURIComponent(raw.value)));
        expect(unsign(decodeURIComponent(raw.value).slice(2), SECRET)).toEqual(expect.any(String));
      }
      expect(ours[0]).toMatch(/; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/);
    });
  });
}
