import type { IncomingMessage, Server } from "node:http";
import express from "express";
import request from "supertest";
import { Cookie, CookieStore, MemoryStore, SessionConfigError, sessions, type CookieOptions } from "../lib";
import { parseCookies } from "../lib/cookie";
import { CookieSettings, isSecureRequest } from "../lib/cookie-settings";
import { close, cookiesByName, parseOne, SECRET, serve } from "./helpers/session-cookies";

function fakeRequest(headers: Record<string, string> = {}, extra: object = {}): IncomingMessage {
  return { headers, socket: {}, ...extra } as unknown as IncomingMessage;
}

describe("Cookie", () => {
  describe(".serialize() through the cookie package", () => {
    it("writes name=value and the attributes; maxAge in ms becomes Max-Age in seconds", () => {
      const cookie = new Cookie("sid", "abc", { maxAge: 3_600_000, httpOnly: true, sameSite: "lax" });
      expect(cookie.serialize()).toBe("sid=abc; Max-Age=3600; HttpOnly; SameSite=Lax");
      expect(String(cookie)).toBe(cookie.serialize());
    });

    it("rounds Max-Age down to whole seconds", () => {
      expect(new Cookie("a", "b", { maxAge: 1999 }).serialize()).toBe("a=b; Max-Age=1");
    });

    it("writes every attribute", () => {
      const cookie = new Cookie("sid", "v", {
        maxAge: 60_000,
        expires: new Date(Date.UTC(2030, 0, 2, 3, 4, 5)),
        domain: "example.com",
        path: "/app",
        secure: true,
        httpOnly: true,
        sameSite: "none",
        partitioned: true,
        priority: "high",
      });
      expect(cookie.serialize()).toBe(
        "sid=v; Max-Age=60; Domain=example.com; Path=/app; Expires=Wed, 02 Jan 2030 03:04:05 GMT; HttpOnly; Secure; Partitioned; Priority=High; SameSite=None",
      );
    });

    it("leaves out attributes that are not set", () => {
      expect(new Cookie("a", "b").serialize()).toBe("a=b");
      expect(new Cookie("a", "b", { secure: false, httpOnly: false, sameSite: false }).serialize()).toBe("a=b");
    });

    it("sends safe values (base64url, signatures, chunk markers) as they are", () => {
      const value = "~3~AQAB-_xy.Zz+/=:";
      expect(new Cookie("a", value).serialize()).toBe(`a=${value}`);
    });

    it("URI-encodes unsafe values, and parseCookies reads them back", () => {
      const value = 'a b;c=d,"é"\\%';
      const line = new Cookie("a", value).serialize();
      expect(line).toBe(`a=${encodeURIComponent(value)}`);
      const { name, value: raw } = parseOne(line);
      expect(parseCookies(fakeRequest({ cookie: `${name}=${raw}` }))).toEqual({ a: value });
    });
  });

  describe("Cookie.expired()", () => {
    it("tells the browser to delete the cookie now, keeping its attributes", () => {
      const cookie = Cookie.expired("sid", { path: "/app", domain: "example.com", httpOnly: true });
      expect(cookie.isExpired).toBe(true);
      expect(cookie.value).toBe("");
      expect(cookie.serialize()).toBe("sid=; Max-Age=0; Domain=example.com; Path=/app; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly");
    });

    it("needs no attributes", () => {
      expect(Cookie.expired("sid").serialize()).toBe("sid=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
    });

    it("a cookie with a lifetime is not expired", () => {
      expect(new Cookie("a", "b", { maxAge: 1000 }).isExpired).toBe(false);
      expect(new Cookie("a", "b").isExpired).toBe(false);
    });
  });
});

describe("parseCookies", () => {
  it("gives no cookies without a Cookie header", () => {
    expect(parseCookies(fakeRequest())).toEqual({});
  });

  it("keeps the first of two cookies with the same name and survives garbage", () => {
    const cookies = parseCookies(fakeRequest({ cookie: "a=1; a=2; =; ;;; b=%E0%A4%A; c" }));
    expect(cookies.a).toBe("1");
    expect(cookies.b).toBe("%E0%A4%A"); // a broken escape is kept as sent
    expect(cookies.c).toBeUndefined();
  });

  it("gives an object where __proto__ is just a name", () => {
    const cookies = parseCookies(fakeRequest({ cookie: "__proto__=x; constructor=y" }));
    expect(cookies.__proto__).toBe("x");
    expect(cookies.constructor).toBe("y");
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });
});

describe("isSecureRequest", () => {
  it("uses Express's req.secure when present", () => {
    expect(isSecureRequest(fakeRequest({}, { secure: true }))).toBe(true);
    expect(isSecureRequest(fakeRequest({}, { secure: false, socket: { encrypted: true } }))).toBe(false);
  });

  it("falls back to whether the socket is TLS (bare node:http)", () => {
    expect(isSecureRequest(fakeRequest({}, { socket: { encrypted: true } }))).toBe(true);
    expect(isSecureRequest(fakeRequest({ "x-forwarded-proto": "https" }))).toBe(false);
    expect(isSecureRequest({ headers: {} } as IncomingMessage)).toBe(false);
  });
});

describe("CookieSettings.make: attribute text serialized once", () => {
  // make() assembles Set-Cookie from attribute text that `cookie` serialized at construction;
  // whatever the settings, it must equal the general path (the `cookie` package, per cookie).
  const settingsCases: [string, CookieOptions][] = [
    ["session", {}],
    ["sid", { domain: "example.com", path: "/app", sameSite: "strict", httpOnly: false }],
    ["sid", { sameSite: "none", secure: true, partitioned: true, priority: "high" }],
    ["sid", { sameSite: false, secure: false, priority: "low" }],
    ["__Host-sid", {}],
    ["__Secure-sid", { domain: "example.com" }],
  ];
  const values = ["AbC-_09", "s:5f0c8a52-3c1e-4d0b-9a57-2a1f7c3e9b10.Xy+/z", "~3~abc", "needs encoding ;,"];
  const maxAges = [0, 999, 1500, 86_400_000, 7 * 86_400_000 - 1];

  it.each(settingsCases)("cookie %s with %j gives the cookie package's text", (name, options) => {
    const settings = new CookieSettings(name, options, "test");
    for (const secure of [false, true]) {
      const req = fakeRequest({}, { socket: { encrypted: secure } });
      for (const value of values) {
        for (const maxAge of maxAges) {
          const made = settings.make(req, value, maxAge);
          const general = new Cookie(made.name, made.value, made.attributes).serialize();
          expect(made.serialize()).toBe(general);
        }
      }
    }
  });

  it("takes the general path for an unusual Max-Age", () => {
    const settings = new CookieSettings("session", {}, "test");
    expect(settings.make(fakeRequest(), "v", undefined).serialize()).toBe("session=v; Path=/; HttpOnly; SameSite=Lax");
    expect(() => settings.make(fakeRequest(), "v", Number.NaN).serialize()).toThrow(/maxAge/);
  });
});

describe("CookieSettings defaults through Express", () => {
  let server: Server;
  let app: express.Express;

  function start(options: { name?: string; cookie?: CookieOptions } = {}, trustProxy = false): Promise<Server> {
    app = express();
    if (trustProxy) app.set("trust proxy", true);
    app.use(sessions(new CookieStore({ secret: SECRET, ...options })));
    app.get("/", (req, res) => {
      req.session.user = "ann";
      res.send("ok");
    });
    return serve(app);
  }

  afterEach(async () => {
    if (server) await close(server);
  });

  it("are HttpOnly, SameSite=Lax, Path=/ and not Secure on plain http", async () => {
    server = await start();
    const res = await request(server).get("/");
    const cookie = cookiesByName(res).session;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: "lax", path: "/" });
    expect(cookie.secure).toBeUndefined();
    expect(cookie.domain).toBeUndefined();
    expect(cookie.maxAge).toBe(86_400);
  });

  it("are Secure when the request is secure behind a trusted proxy (trust proxy + X-Forwarded-Proto)", async () => {
    server = await start({}, true);
    const res = await request(server).get("/").set("X-Forwarded-Proto", "https");
    expect(cookiesByName(res).session.secure).toBe(true);
    const plain = await request(server).get("/").set("X-Forwarded-Proto", "http");
    expect(cookiesByName(plain).session.secure).toBeUndefined();
  });

  it("ignore X-Forwarded-Proto without trust proxy", async () => {
    server = await start();
    const res = await request(server).get("/").set("X-Forwarded-Proto", "https");
    expect(cookiesByName(res).session.secure).toBeUndefined();
  });

  it("follow the given attributes", async () => {
    server = await start({
      name: "app.sid",
      cookie: { domain: "example.com", path: "/shop", secure: true, httpOnly: false, sameSite: "Strict" as "strict", partitioned: true, priority: "HIGH" as "high" },
    });
    const read = await request(server).get("/").set("Host", "example.com");
    const line = read.headers["set-cookie"] as unknown as string[];
    expect(line).toHaveLength(1);
    expect(line[0]).toMatch(/^app\.sid=[\w-]+; Max-Age=86400; Domain=example\.com; Path=\/shop; Secure; Partitioned; Priority=High; SameSite=Strict$/);
  });

  it("secure: false never marks the cookie Secure, even on a secure request", async () => {
    server = await start({ cookie: { secure: false } }, true);
    const res = await request(server).get("/").set("X-Forwarded-Proto", "https");
    expect(cookiesByName(res).session.secure).toBeUndefined();
  });

  it("sameSite: false sends no SameSite attribute", async () => {
    server = await start({ cookie: { sameSite: false } });
    const res = await request(server).get("/");
    expect(cookiesByName(res).session.sameSite).toBeUndefined();
  });
});

describe("cookie name prefixes", () => {
  const req = fakeRequest();

  it('"__Host-" cookies are always Secure, Path=/ and have no Domain', () => {
    const settings = new CookieSettings("__Host-sid", {}, "Test");
    const cookie = settings.make(req, "v", 1000);
    expect(cookie.serialize()).toBe("__Host-sid=v; Max-Age=1; Path=/; HttpOnly; Secure; SameSite=Lax");
    expect(settings.expire(req).serialize()).toMatch(/^__Host-sid=; Max-Age=0; Path=\/; Expires=.*; HttpOnly; Secure; SameSite=Lax$/);
  });

  it.each<[string, CookieOptions]>([
    ["a domain", { domain: "example.com" }],
    ["a path other than /", { path: "/app" }],
    ["secure: false", { secure: false }],
  ])('"__Host-" refuses %s', (_, options) => {
    expect(() => new CookieSettings("__Host-sid", options, "CookieStore")).toThrow(
      new SessionConfigError('CookieStore: a "__Host-" cookie must be Secure, have Path=/ and no Domain; remove the domain/path/secure options or rename the cookie'),
    );
  });

  it('"__Secure-" cookies are always Secure and may have a Domain', () => {
    const settings = new CookieSettings("__Secure-sid", { domain: "example.com" }, "Test");
    expect(settings.make(req, "v", undefined).serialize()).toBe("__Secure-sid=v; Domain=example.com; Path=/; HttpOnly; Secure; SameSite=Lax");
  });

  it.each([["__host-sid"], ["__HOST-sid"]])("the prefix rules apply whatever the case (%s), as browsers match them", (name) => {
    expect(() => new CookieSettings(name, { path: "/app" }, "CookieStore")).toThrow(/a "__Host-" cookie must be Secure/);
    expect(new CookieSettings(name, {}, "Test").make(req, "v", undefined).serialize()).toMatch(/; Secure;/);
  });

  it('"__Secure-" refuses secure: false', () => {
    expect(() => new CookieSettings("__Secure-sid", { secure: false }, "CookieStore")).toThrow(/a "__Secure-" cookie must be Secure/);
  });

  it("a __Host- cookie works end to end over plain http (Secure is set; the test client sends it back anyway)", async () => {
    const app = express();
    app.use(sessions(new MemoryStore({ name: "__Host-sid" })));
    app.get("/", (req, res) => {
      req.session.n = ((req.session.n as number) ?? 0) + 1;
      res.json(req.session.n);
    });
    const server = await serve(app);
    try {
      const first = await request(server).get("/");
      const cookie = cookiesByName(first)["__Host-sid"];
      expect(cookie).toMatchObject({ secure: true, path: "/" });
      const second = await request(server).get("/").set("Cookie", `__Host-sid=${cookie.value}`);
      expect(second.body).toBe(2);
    } finally {
      await close(server);
    }
  });
});

describe("invalid names and attributes are refused at construction", () => {
  it.each(["", "has space", "semi;colon", "équipe", "a=b", "x".repeat(257), 42 as unknown as string])("cookie name %p", (name) => {
    expect(() => new CookieStore({ secret: SECRET, name })).toThrow(SessionConfigError);
    expect(() => new CookieStore({ secret: SECRET, name })).toThrow(/is not a valid cookie name; use 1 to 256 letters, digits and - _ \. only/);
  });

  it("accepts token characters in the name", () => {
    expect(() => new CookieSettings("a.b-c_d!#$%&'*+^`|~9", {}, "Test")).not.toThrow();
  });

  it.each<[string, unknown, RegExp]>([
    ["domain", "exa mple.com", /cookie\.domain "exa mple\.com" is not valid; give a host name/],
    ["domain", 42, /cookie\.domain 42 is not valid/],
    ["path", "app", /cookie\.path "app" is not valid; give a path that starts with "\/"/],
    ["path", "/a;b", /cookie\.path "\/a;b" is not valid/],
    ["secure", "yes", /cookie\.secure "yes" is not valid; use true, false or "auto"/],
    ["httpOnly", "yes", /cookie\.httpOnly "yes" is not valid; use true or false/],
    ["sameSite", "loose", /cookie\.sameSite "loose" is not valid; use "lax", "strict", "none"/],
    ["sameSite", 1, /cookie\.sameSite 1 is not valid/],
    ["partitioned", "yes", /cookie\.partitioned "yes" is not valid/],
    ["priority", "urgent", /cookie\.priority "urgent" is not valid; use "low", "medium" or "high"/],
    ["priority", 3, /cookie\.priority 3 is not valid/],
  ])("cookie.%s = %p", (key, value, message) => {
    const build = () => new CookieStore({ secret: SECRET, cookie: { [key]: value } as CookieOptions });
    expect(build).toThrow(SessionConfigError);
    expect(build).toThrow(message);
  });

  it('accepts "true" and "false" for the flags in configuration, as environment variables give them', async () => {
    const store = sessions({ store: "cookie", secret: SECRET, cookie: { secure: "true", httpOnly: "false", partitioned: "true" } }).store;
    const app = express();
    app.use(sessions(store));
    app.get("/", (req, res) => {
      req.session.n = 1;
      res.end();
    });
    const setCookie = (await request(app).get("/")).headers["set-cookie"] as unknown as string[];
    expect(setCookie[0]).toMatch(/; Secure; Partitioned; SameSite=Lax$/);
    expect(setCookie[0]).not.toMatch(/HttpOnly/);
  });

  it("names an unknown attribute and lists the known ones", () => {
    expect(() => new CookieStore({ secret: SECRET, cookie: { maxAge: 1000 } as CookieOptions })).toThrow(
      'CookieStore: unknown cookie attribute "maxAge"; the cookie option takes domain, path, secure, httpOnly, sameSite, partitioned, priority (set durations with the store\'s maxAge)',
    );
  });

  it.each([[null], ["lax"], [["secure"]]])("refuses a cookie option that is not an object: %p", (cookie) => {
    expect(() => new MemoryStore({ cookie: cookie as unknown as CookieOptions })).toThrow(
      /MemoryStore: the `cookie` option must be an object of attributes \(domain, path/,
    );
  });

  it("refuses SameSite=None and Partitioned without Secure", () => {
    expect(() => new CookieStore({ secret: SECRET, cookie: { sameSite: "none", secure: false } })).toThrow(
      /SameSite=None cookies must be Secure .*set cookie\.secure to true or "auto"/,
    );
    expect(() => new CookieStore({ secret: SECRET, cookie: { partitioned: true, secure: false } })).toThrow(/Partitioned cookies must be Secure/);
    expect(() => new CookieStore({ secret: SECRET, cookie: { sameSite: "none" } })).not.toThrow();
  });

  it("errors carry status 500 and a stable code", () => {
    try {
      new CookieStore({ secret: SECRET, name: "bad name" });
      throw new Error("not thrown");
    } catch (err) {
      expect(err).toBeInstanceOf(SessionConfigError);
      expect(err).toMatchObject({ status: 500, code: "SESSION_CONFIG", name: "SessionConfigError" });
    }
  });
});
