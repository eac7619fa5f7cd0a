/**
 * The benchmark's servers (`bench/server.mjs`, one per row of `npm run bench`'s table) serve
 * what the table's column names say: each is started from the script the suite runs for it,
 * and driven like a browser. A row whose `write` did not really save, or whose `untouched`
 * route loaded and re-issued the session, would make its req/s mean something else. No timing
 * is asserted.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { stopChild } from "./helpers/child";
import { ensureBuilt, ROOT } from "./helpers/dist";
import { describeRedis, type RedisServer, startRedis } from "./helpers/redis";

const SERVER = join(ROOT, "bench/server.mjs");

interface Running {
  child: ChildProcess;
  base: string;
}

/** Starts `node bench/server.mjs IMPL 0` (the suite forks the same script, with the same NODE_ENV); resolves once it prints `READY <port>`. */
function startServer(impl: string, env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, [SERVER, impl, "0"], { cwd: ROOT, env: { ...process.env, ...env, NODE_ENV: "production" }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      const ready = /READY (\d+)/.exec(output);
      if (ready) resolve({ child, base: `http://127.0.0.1:${ready[1]}` });
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    child.on("exit", (code) => reject(new Error(`bench/server.mjs ${impl} exited with code ${code} before it was ready:\n${output}`)));
  });
}

/** A browser's cookie jar: keeps what each `Set-Cookie` says (an empty value deletes). */
class Browser {
  private readonly jar = new Map<string, string>();
  constructor(private readonly base: string) {}

  get cookie(): string {
    return [...this.jar].map(([name, value]) => `${name}=${value}`).join("; ");
  }

  async get(path: string, cookie = this.cookie): Promise<{ status: number; body: string; setCookies: string[] }> {
    const res = await fetch(this.base + path, { headers: cookie ? { cookie } : {} });
    const setCookies = res.headers.getSetCookie();
    for (const line of setCookies) {
      const pair = line.split(";")[0];
      const at = pair.indexOf("=");
      const [name, value] = [pair.slice(0, at), pair.slice(at + 1)];
      if (value === "") this.jar.delete(name);
      else this.jar.set(name, value);
    }
    return { status: res.status, body: await res.text(), setCookies };
  }
}

/**
 * Drives one row: `/setup` creates the benchmark session; `/read` reads it; `/write` counts, and
 * a second `/write` with the cookies the first one set counts on (the write was saved, in the
 * cookie or in the store); `/untouched` answers. For this package's rows, the two routes that
 * leave the session unchanged send no `Set-Cookie`, as the package promises.
 */
async function checkRow(impl: string, env: Record<string, string> = {}): Promise<void> {
  const server = await startServer(impl, env);
  try {
    const browser = new Browser(server.base);
    const setup = await browser.get("/setup");
    expect(setup).toMatchObject({ status: 200, body: "ok" });
    expect(setup.setCookies.length).toBeGreaterThan(0);
    const sent = browser.cookie; // what the benchmark's client sends with every request

    expect(await browser.get("/read", sent)).toMatchObject({ status: 200, body: "user bench-user" });
    const untouched = await browser.get("/untouched", sent);
    expect(untouched).toMatchObject({ status: 200, body: "ok" });

    const first = await browser.get("/write", sent);
    expect(first).toMatchObject({ status: 200, body: "1" });
    const second = await browser.get("/write");
    const sessionless = impl === "express" || impl.startsWith("floor");
    expect(second).toMatchObject({ status: 200, body: sessionless ? "1" : "2" });

    if (sessionless || impl.startsWith("sessionbox")) {
      expect(untouched.setCookies).toEqual([]);
      expect((await browser.get("/read", sent)).setCookies).toEqual([]);
    }
    if (impl.startsWith("sessionbox-cookie")) expect(first.setCookies).toHaveLength(1); // a write re-seals the cookie
  } finally {
    await stopChild(server.child);
  }
}

beforeAll(() => ensureBuilt(), 60_000);

describe("npm run bench's servers (bench/server.mjs)", () => {
  it.each(["express", "floor", "floor-twin", "sessionbox-cookie", "sessionbox-cookie-signed", "sessionbox-memory", "cookie-session", "express-session"])(
    "%s serves setup, read, untouched and a saved write",
    (impl) => checkRow(impl),
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

  it.each(["sessionbox-redis", "sessionbox-redis-lazy", "express-session+connect-redis"])("%s serves setup, read, untouched and a saved write", async (impl) => {
    await checkRow(impl, { REDIS_URL: redis.url });
    expect(Number(await redis.cli("DBSIZE"))).toBeGreaterThan(0); // the sessions are in this Redis
  });
});
