/**
 * SPEC §4: nothing a client sends may crash the process, produce a 500 or leak another
 * user's session. Property-based: fast-check feeds random and mutated cookies to Express
 * apps over the three store configurations; every answer must be a 200 with a new, empty
 * session and no Set-Cookie (nothing saved, the browser's cookie not overwritten).
 */
import { Agent, request as httpRequest, type Server } from "node:http";
import { parse } from "cookie";
import { sign } from "cookie-signature";
import express from "express";
import fc from "fast-check";
import { v4 as uuidv4 } from "uuid";
import { CookieStore, MemoryStore, Session, sessions, type SessionStore } from "../lib";
import { Jar, openEncrypted, payload, port, SECRET, SECRET_2, sealEncrypted, sealSigned, UUID_V4, useServers } from "./helpers/session-cookies";

const start = useServers();
const agent = new Agent({ keepAlive: true, maxSockets: 1 });
afterAll(() => agent.destroy());

interface Answer {
  status: number;
  setCookie: string[];
  body: { data: Record<string, unknown>; isSession: boolean; protoIsSession: boolean; methods: boolean; error?: string };
}

/** GET `path` with exactly this Cookie header, over a kept-alive connection to 127.0.0.1. */
function get(server: Server, cookie: string | undefined, path = "/"): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: "127.0.0.1", port: port(server), path, agent, headers: cookie === undefined ? {} : { cookie } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => {
        const header = res.headers["set-cookie"] ?? [];
        resolve({ status: res.statusCode as number, setCookie: header, body: JSON.parse(text) });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

/** An app that reports what the handler sees of req.session; errors come back as 500 with their message. */
function inspectApp(store: SessionStore): express.Express {
  const app = express();
  app.use(express.json());
  app.use(sessions(store));
  app.get("/", (req, res) => {
    const session = req.session;
    res.json({
      data: { ...session },
      isSession: session instanceof Session,
      protoIsSession: Object.getPrototypeOf(session) === Session.prototype,
      methods: typeof session.regenerate === "function" && typeof session.destroy === "function",
    });
  });
  app.post("/write", (req, res) => {
    Object.assign(req.session, req.body);
    res.json({ data: { ...req.session } });
  });
  app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ error: err.message });
  });
  return app;
}

/** The answer for an empty new session: 200, only an id (not one the server issued), nothing saved. */
function expectEmpty(answer: Answer, known: readonly string[]): void {
  expect(answer.status).toBe(200);
  expect(answer.body.error).toBeUndefined();
  expect(Object.keys(answer.body.data)).toEqual(["id"]);
  expect(answer.body.data.id).toMatch(UUID_V4);
  expect(known).not.toContain(answer.body.data.id);
  expect(answer.body.isSession && answer.body.protoIsSession && answer.body.methods).toBe(true);
  expect(answer.setCookie).toEqual([]);
}

// ---- arbitraries --------------------------------------------------------------------------

/** Characters Node lets a client put in a header value: tab, printable ASCII, latin1. */
const headerChar = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom("\t", ";", "=", "%", '"', "~", ".", ",", "\\") },
);
const headerString = (maxLength: number) => fc.string({ unit: headerChar, maxLength });
const base64urlChar = fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
const oddValue = fc.oneof(
  headerString(300),
  fc.string({ unit: base64urlChar, maxLength: 400 }),
  fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => encodeURIComponent(s)),
  fc.constantFrom("", "%", "%zz", "%E0%A4%A", '""', '"quoted"', "~", "~~", "~2~", "~-1~", "null", "[]", "{}", "__proto__", "undefined"),
  fc.integer({ min: 4000, max: 13_000 }).map((n) => "A".repeat(n)),
  fc.integer({ min: 4000, max: 13_000 }).chain((n) => fc.string({ unit: base64urlChar, minLength: n, maxLength: n })),
);

/** Replaces the character at a position by a different one from `alphabet`. */
function replaceChar(value: string, alphabet: string) {
  return fc.tuple(fc.nat({ max: value.length - 1 }), fc.nat({ max: alphabet.length - 2 })).map(([at, pick]) => {
    const others = alphabet.replace(value[at], "");
    return value.slice(0, at) + others[pick % others.length] + value.slice(at + 1);
  });
}

/** Flips 1-3 bits of the decoded seal and re-encodes it (a different byte string, always). */
function flipBits(value: string) {
  const bytes = Buffer.from(value, "base64url");
  return fc.uniqueArray(fc.nat({ max: bytes.length * 8 - 1 }), { minLength: 1, maxLength: 3 }).map((bits) => {
    const copy = Buffer.from(bytes);
    for (const bit of bits) copy[bit >> 3] ^= 1 << (bit & 7);
    return copy.toString("base64url");
  });
}

const truncate = (value: string) =>
  fc.oneof(
    fc.nat({ max: value.length - 1 }).map((n) => value.slice(0, n)),
    fc.integer({ min: 1, max: value.length }).map((n) => value.slice(n)),
  );

/** Sends the chunk values under a shuffled (never identity) assignment of names. */
function swappedChunks(jar: Jar) {
  const names = jar.names().filter((n) => n.startsWith("session"));
  return fc.shuffledSubarray(names, { minLength: names.length, maxLength: names.length }).filter((order) => order.some((n, i) => n !== names[i])).map((order) =>
    order.map((from, i) => `${names[i]}=${jar.get(from)}`).join("; "),
  );
}

/** A first chunk with a chunk count that is wrong, absurd or malformed, and random extra chunk cookies. */
function absurdChunkHead(jar: Jar, count: number) {
  const rest = (jar.get("session") as string).replace(/^~\d+~/, "");
  const head = fc.oneof(
    fc.integer({ min: 0, max: 99_999_999 }).filter((n) => n !== count).map(String),
    fc.constantFrom("-1", "1e3", "0x3", "", " 3", "03", "003", `0${count}`, "3.0", "Infinity", "NaN"),
  );
  const extras = fc.array(fc.tuple(fc.integer({ min: 1, max: 1200 }), fc.string({ unit: base64urlChar, maxLength: 50 })), { maxLength: 5 });
  return fc.tuple(head, fc.boolean(), extras).map(([n, keepChunks, extra]) => {
    const parts = [`session=~${n}~${rest}`];
    if (keepChunks) for (const name of jar.names()) if (name !== "session") parts.push(`${name}=${jar.get(name)}`);
    for (const [i, v] of extra) parts.push(`session.${i}=${v}`);
    return parts.join("; ");
  });
}

/** Authentic seals (the store's own secret) of plaintexts that are not a live session. */
function authenticNonsense(seal: (plaintext: string) => string) {
  const plaintext = fc.oneof(
    fc.json(),
    fc.jsonValue().map((data) => JSON.stringify([Date.now(), Date.now(), data])),
    fc.constantFrom(
      payload(0, 0, { id: "expired-long-ago" }), // authentic but expired
      JSON.stringify([Date.now(), Date.now(), { id: "" }]),
      JSON.stringify([Date.now(), Date.now(), { id: 1 }]),
      JSON.stringify([Date.now(), Date.now(), ["id"]]),
      JSON.stringify([Date.now(), Date.now(), { id: "x" }, "extra"]),
      JSON.stringify([String(Date.now()), Date.now(), { id: "x" }]),
      "[1,2,",
      "",
    ),
  );
  return plaintext
    .filter((text) => {
      // Leave out the rare generated value that is a real, live session payload.
      try {
        const v = JSON.parse(text);
        return !(Array.isArray(v) && v.length === 3 && typeof v[0] === "number" && typeof v[1] === "number" && typeof v[2]?.id === "string" && v[2].id !== "" && !Array.isArray(v[2]) && Date.now() - v[1] <= 86_400_000);
      } catch {
        return true;
      }
    })
    .map((text) => `session=${seal(text)}`);
}

// ---- the properties ------------------------------------------------------------------------

const RUNS = 400;

describe.each([
  ["encrypt: true", true],
  ["encrypt: false", false],
])("CookieStore (%s): random and mutated cookies", (_, encrypt) => {
  it(`every one of ${RUNS} answers is a 200 with a new empty session`, async () => {
    const server = await start(inspectApp(new CookieStore({ secret: SECRET, encrypt })));
    // A real user's sessions, small and chunked, to mutate.
    const small = await writeSession(server, { user: "victim", role: "admin" });
    const big = await writeSession(server, { user: "victim", blob: "x".repeat(7000) });
    const value = small.jar.get("session") as string;
    const chunkCount = big.jar.names().length;
    expect(chunkCount).toBeGreaterThanOrEqual(2);
    const sealer = encrypt ? (text: string) => sealEncrypted(text, SECRET, "session") : (text: string) => sealSigned(text, SECRET, "session");
    const otherSecret = encrypt ? (text: string) => sealEncrypted(text, SECRET_2, "session") : (text: string) => sealSigned(text, SECRET_2, "session");
    const liveData = JSON.stringify([Date.now(), Date.now(), { id: small.id, user: "victim", role: "admin" }]);

    const cookieHeader = fc.oneof(
      oddValue.map((v) => `session=${v}`),
      headerString(500),
      truncate(value).map((v) => `session=${v}`),
      (encrypt ? flipBits(value) : replaceChar(value, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.+/")).map((v) => `session=${v}`),
      swappedChunks(big.jar),
      absurdChunkHead(big.jar, chunkCount),
      authenticNonsense(sealer),
      fc.constant(`session=${otherSecret(liveData)}`), // the right data, another secret
      fc.constant(`other=${value}`), // the right seal under another name
      oddValue.map((v) => `session=${v}; session=${value}`), // the first of two cookies wins
    );
    await fc.assert(
      fc.asyncProperty(cookieHeader, async (header) => {
        fc.pre(parse(header).session !== value); // a mutation that decodes back to the real value is no mutation
        expectEmpty(await get(server, header), [small.id, big.id]);
      }),
      { numRuns: RUNS },
    );
    // Still serving, and the real user's session is intact.
    const after = await get(server, small.jar.header());
    expect(after.body.data).toEqual({ id: small.id, user: "victim", role: "admin" });
  });
});

describe("MemoryStore: random and forged id cookies", () => {
  it(`every one of ${RUNS} answers is a 200 with a new empty session, never an adopted id`, async () => {
    const server = await start(inspectApp(new MemoryStore({ secret: SECRET })));
    const victim = await writeSession(server, { user: "victim" });
    const value = victim.jar.get("session") as string;
    const cookieHeader = fc.oneof(
      oddValue.map((v) => `session=${v}`),
      headerString(500),
      truncate(value).map((v) => `session=${v}`),
      replaceChar(value, "0123456789abcdefABCDEF-.+/=xyz").map((v) => `session=${v}`),
      fc.constant(`session=${victim.id}`), // unsigned
      fc.constant(`session=${sign(victim.id, SECRET_2)}`), // another secret
      fc.uuid({ version: 4 }).map((id) => `session=${sign(id, SECRET)}`), // well-formed, signed, unknown
      fc.string({ maxLength: 60 }).map((id) => `session=${encodeURIComponent(sign(id, SECRET))}`), // signed, not a UUID
      fc.constant(`session=${sign(victim.id.toUpperCase(), SECRET)}`),
      fc.constant(`session=${sign(`${victim.id} `, SECRET)}`),
    );
    await fc.assert(
      fc.asyncProperty(cookieHeader, async (header) => {
        fc.pre(parse(header).session !== value);
        expectEmpty(await get(server, header), [victim.id]);
      }),
      { numRuns: RUNS },
    );
    const after = await get(server, victim.jar.header());
    expect(after.body.data).toEqual({ id: victim.id, user: "victim" });
  });
});

async function writeSession(server: Server, data: object): Promise<{ id: string; jar: Jar }> {
  const res = await new Promise<{ setCookie: string[]; body: { data: { id: string } } }>((resolve, reject) => {
    const body = JSON.stringify(data);
    const req = httpRequest(
      { host: "127.0.0.1", port: port(server), path: "/write", method: "POST", agent, headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ setCookie: res.headers["set-cookie"] ?? [], body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
  return { id: res.body.data.id, jar: new Jar().take({ headers: { "set-cookie": res.setCookie } }) };
}

// ---- specific cases ------------------------------------------------------------------------

describe("specific bad cookies", () => {
  it.each([true, false])("a cookie sealed with another secret gives an empty session (encrypt: %p)", async (encrypt) => {
    const server = await start(inspectApp(new CookieStore({ secret: SECRET, encrypt })));
    const other = await start(inspectApp(new CookieStore({ secret: SECRET_2, encrypt })));
    const foreign = await writeSession(other, { user: "mallory", role: "admin" });
    expectEmpty(await get(server, foreign.jar.header()), [foreign.id]);
  });

  it("no cookie at all gives an empty session", async () => {
    const server = await start(inspectApp(new CookieStore({ secret: SECRET })));
    expectEmpty(await get(server, undefined), []);
  });
});

describe("prototype pollution through session data", () => {
  const protoBefore = Object.getOwnPropertyNames(Object.prototype).sort();
  const POISON = { polluted: "yes", isAdmin: true, toString: "hacked" };

  afterEach(() => {
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(protoBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  /** A Session whose JSON holds "__proto__", "constructor" and "prototype" keys, as a crafted payload would. */
  function poisonedSession(): Session {
    const session = new Session(JSON.parse(`{"id":"${uuidv4()}","user":"ann","constructor":{"prototype":${JSON.stringify(POISON)}},"prototype":${JSON.stringify(POISON)}}`));
    // Session ignores "__proto__" in its data; define it as an own key so the seal carries it.
    Object.defineProperty(session, "__proto__", { value: POISON, enumerable: true, configurable: true, writable: true });
    return session;
  }

  const ctx = { req: { headers: {}, socket: {} }, res: {}, cookies: {} } as never;

  it.each([true, false])("a sealed payload with __proto__/constructor/prototype keys pollutes nothing (encrypt: %p)", async (encrypt) => {
    const store = new CookieStore({ secret: SECRET, encrypt });
    const [cookie] = store.dump(poisonedSession(), ctx);
    // The seal really carries the keys (opened independently of the store):
    const plaintext = encrypt ? (openEncrypted(cookie.value, SECRET, "session") as string) : Buffer.from(cookie.value.split(".")[0], "base64url").toString();
    expect(plaintext).toContain('"__proto__":{"polluted":"yes"');
    expect(plaintext).toContain('"constructor":{"prototype":');

    const server = await start(inspectApp(store));
    const answer = await get(server, `session=${cookie.value}`);
    expect(answer.status).toBe(200);
    expect(answer.body.isSession && answer.body.protoIsSession && answer.body.methods).toBe(true);
    expect(answer.body.data.user).toBe("ann");
    expect(answer.body.data).not.toHaveProperty("polluted");
    expect(answer.body.data).not.toHaveProperty("isAdmin");
    expect(Object.hasOwn(answer.body.data, "__proto__")).toBe(false);
    // constructor/prototype stay plain data of this session: they reach no prototype.
    expect(answer.body.data.constructor).toEqual({ prototype: POISON });
    expect(Session.prototype).not.toHaveProperty("polluted");
  });

  it("a hand-crafted seal whose data object is nothing but __proto__ gives a clean session", async () => {
    const store = new CookieStore({ secret: SECRET });
    const id = uuidv4();
    const text = `[${Date.now()},${Date.now()},{"__proto__":{"id":"not-this","polluted":"yes"},"id":"${id}"}]`;
    const server = await start(inspectApp(store));
    const answer = await get(server, `session=${sealEncrypted(text, SECRET, "session")}`);
    expect(answer.body.data).toEqual({ id });
    expect(answer.body.protoIsSession).toBe(true);
  });

  it("MemoryStore: __proto__ stored as a field pollutes nothing when loaded", async () => {
    const store = new MemoryStore({ secret: SECRET });
    const app = express();
    app.use(sessions(store));
    app.post("/poison", (req, res) => {
      Object.defineProperty(req.session, "__proto__", { value: POISON, enumerable: true, configurable: true, writable: true });
      (req.session as Record<string, unknown>)["constructor"] = { prototype: POISON };
      res.json({ ok: true });
    });
    app.use(inspectApp(store));
    const server = await start(app);
    const { jar } = await writeSession(server, { user: "ann" });
    const poison = await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: "127.0.0.1", port: port(server), path: "/poison", method: "POST", agent, headers: { cookie: jar.header() } }, (res) => {
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
      req.end();
    });
    expect(poison).toBeUndefined();
    const answer = await get(server, jar.header());
    expect(answer.status).toBe(200);
    expect(answer.body.isSession && answer.body.protoIsSession && answer.body.methods).toBe(true);
    expect(answer.body.data.user).toBe("ann");
    expect(answer.body.data).not.toHaveProperty("polluted");
    expect(Object.hasOwn(answer.body.data, "__proto__")).toBe(false);
  });

  it("a request body with __proto__ merged into the session changes nothing", async () => {
    const server = await start(inspectApp(new CookieStore({ secret: SECRET })));
    const { jar } = await writeSession(server, JSON.parse('{"user":"ann","__proto__":{"isAdmin":true}}'));
    const answer = await get(server, jar.header());
    expect(answer.body.data).toEqual({ id: expect.any(String), user: "ann" });
    expect(answer.body.protoIsSession).toBe(true);
  });
});
