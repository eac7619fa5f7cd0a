/**
 * The example app (`npm run example`), driven as a browser would: sign in, count, sign out,
 * with a cookie jar. It runs from the built package, as `npm run example` does.
 */
import { join } from "node:path";
import { type Started, startNode, stopChild } from "./helpers/child";
import { ensureBuilt, ROOT } from "./helpers/dist";

jest.setTimeout(60_000);

const APP = join(ROOT, "examples/cookie-app.mjs");
const SECRET = "an-example-secret-that-is-long-enough-for-the-store";

/** The browser's cookies: what Set-Cookie stores, and Max-Age=0 deletes. */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      if (attributes.some((attr) => /^\s*max-age=0\s*$/i.test(attr))) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1));
    }
  }

  get header(): string {
    return [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  get size(): number {
    return this.cookies.size;
  }
}

/** A running example app and a browser-like client with its own cookie jar. */
class Browser {
  readonly jar = new CookieJar();
  constructor(readonly base: string) {}

  async get(path: string, cookie = this.jar.header): Promise<{ res: Response; body: string }> {
    const res = await fetch(this.base + path, { headers: cookie ? { cookie } : {}, redirect: "manual" });
    this.jar.store(res);
    return { res, body: await res.text() };
  }

  async post(path: string, form: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { "content-type": "application/x-www-form-urlencoded" };
    if (this.jar.size > 0) headers.cookie = this.jar.header;
    const res = await fetch(this.base + path, { method: "POST", headers, body: new URLSearchParams(form).toString(), redirect: "manual" });
    this.jar.store(res);
    await res.arrayBuffer();
    return res;
  }
}

/** Starts the example with `env`; resolves once it prints its address (`ready`) or exits. */
function start(env: Record<string, string | undefined>): Promise<Started> {
  return startNode(APP, [], { ...process.env, PORT: "0", HOST: "127.0.0.1", SESSION_SECRET: undefined, NODE_ENV: "development", ...env }, /listening on (http:\/\/\S+)/);
}

function count(body: string): number {
  const match = /<b id="count">(\d+)<\/b>/.exec(body);
  if (!match) throw new Error(`no counter on the page:\n${body}`);
  return Number(match[1]);
}

function sessionId(body: string): string | undefined {
  return /Session id: <code>([0-9a-f-]{36})<\/code>/.exec(body)?.[1];
}

beforeAll(() => ensureBuilt());

describe("the example app (npm run example)", () => {
  let app: Started;
  let browser: Browser;

  beforeAll(async () => {
    app = await start({ SESSION_SECRET: SECRET });
    if (!app.ready) throw new Error(`the example app did not start:\n${app.output}`);
    browser = new Browser(app.ready);
  });
  afterAll(() => stopChild(app?.child));

  it("shows a new visitor the home page, not signed in, with no cookie (an empty session is not saved)", async () => {
    const { res, body } = await browser.get("/");
    expect(res.status).toBe(200);
    expect(body).toContain("Not signed in.");
    expect(count(body)).toBe(0);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(res.headers.get("vary")).toMatch(/Cookie/);
  });

  it("counts in the session cookie", async () => {
    const first = await browser.post("/count");
    expect(first.status).toBe(303);
    expect(first.headers.get("location")).toBe("/");
    expect(first.headers.getSetCookie()).toEqual([expect.stringMatching(/^session=[\w-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Lax$/)]);
    await browser.post("/count");
    expect(count((await browser.get("/")).body)).toBe(2);
  });

  it("serves a sign-in form", async () => {
    const { res, body } = await browser.get("/login");
    expect(res.status).toBe(200);
    expect(body).toMatch(/<form method="post" action="\/login">[\s\S]*<input name="name"/);
  });

  it("refuses an empty name with 400 and saves nothing", async () => {
    const before = browser.jar.header;
    const res = await browser.post("/login", { name: "  " });
    expect(res.status).toBe(400);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(browser.jar.header).toBe(before);
  });

  it("signs in with a regenerated session: a new id, the count kept, the name shown escaped", async () => {
    const idBefore = sessionId((await browser.get("/")).body);
    expect(idBefore).toBeDefined();
    const res = await browser.post("/login", { name: "Ada <Lovelace>" });
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie()).toHaveLength(1);
    const { body } = await browser.get("/");
    expect(body).toContain("Signed in as <b>Ada &#60;Lovelace&#62;</b>.");
    expect(count(body)).toBe(2);
    expect(sessionId(body)).toBeDefined();
    expect(sessionId(body)).not.toBe(idBefore);
  });

  it("keeps counting while signed in", async () => {
    await browser.post("/count");
    const { body } = await browser.get("/");
    expect(count(body)).toBe(3);
    expect(body).toContain("Signed in as");
  });

  it("signs out by destroying the session: the cookie is expired and the next page starts afresh", async () => {
    const copied = browser.jar.header;
    const res = await browser.post("/logout");
    expect(res.status).toBe(303);
    expect(res.headers.getSetCookie()).toEqual([expect.stringMatching(/^session=; Max-Age=0; Path=\/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax$/)]);
    expect(browser.jar.size).toBe(0);
    const { body } = await browser.get("/");
    expect(body).toContain("Not signed in.");
    expect(count(body)).toBe(0);

    // The README's security model: a cookie session cannot be revoked, so a copy made before
    // sign-out still works until it expires.
    const replay = await browser.get("/", copied);
    expect(replay.body).toContain("Signed in as");
  });
});

describe("the example app's secret", () => {
  let app: Started | undefined;
  afterEach(() => stopChild(app?.child));

  it("uses a random secret in development when SESSION_SECRET is unset, and says so", async () => {
    app = await start({});
    expect(app.ready).toBeDefined();
    expect(app.output).toContain("SESSION_SECRET is not set: using a random secret for this run");
  });

  it("refuses to start in production without SESSION_SECRET", async () => {
    app = await start({ NODE_ENV: "production" });
    expect(app.code).toBe(1);
    expect(app.output).toContain("SESSION_SECRET is not set. In production the secret must come from the environment");
  });

  it("refuses a short secret with the store's message", async () => {
    app = await start({ SESSION_SECRET: "too-short" });
    expect(app.code).toBe(1);
    expect(app.output).toContain("CookieStore: secret must be a string of at least 32 characters");
  });
});
