// One benchmark server: `node bench/server.mjs IMPL PORT` (PORT 0 picks a free port).
//
// Every implementation serves the same routes with the same handlers, so the only thing
// that differs between rows of the table is the session middleware:
//
//   GET /setup       writes the benchmark session (the client keeps its Set-Cookie)
//   GET /untouched   never reads the session (the cookie is still sent)
//   GET /read        reads one value
//   GET /write       increments a counter
//   GET /lost/:key   correctness.mjs: waits ?delay ms after loading, then sets one key
//   GET /dump        correctness.mjs: the session's data as JSON
//
// It reports readiness to the parent over IPC ({ ready: true, port }) when forked, and
// prints `READY <port>` on stdout otherwise. SIGINT/SIGTERM/IPC disconnect end it with
// process.exit(), so that `node --cpu-prof` writes its profile.
import { createRequire } from "node:module";
import http from "node:http";
import { pathToFileURL } from "node:url";
import { DIST } from "./common.mjs";

const require = createRequire(import.meta.url);
const express = require("express");

const SECRET = "bench-secret-bench-secret-bench-secret-0123456789";
const IMPL = process.argv[2];
const PORT = Number(process.argv[3] ?? 0);
export { SESSION_DATA };
const REDIS_URL = process.env.REDIS_URL;
/** What /setup stores: small and typical (a user id, a name, roles, a counter). */
const SESSION_DATA = { user: "bench-user", name: "Ada Lovelace", roles: ["reader", "writer"], count: 0 };
/** Bare Express and the floor get a cookie of comparable size, so request sizes match. */
const DUMMY_COOKIE = "x".repeat(180);

const closers = [];

/** Per implementation: the middleware to mount and how a handler gets at the session. */
async function makeImpl(name) {
  switch (name) {
    case "express":
      return { mount: [], setup: (req, res) => res.cookie("session", DUMMY_COOKIE), session: null };
    case "floor-busy": {
      // The floor plus BENCH_BUSY_US µs of busy work per request: how much a µs of in-process
      // work costs over HTTP on this machine (bench/FINDINGS.md, "Where the time goes").
      const ns = BigInt(Math.round(Number(process.env.BENCH_BUSY_US ?? 10) * 1000));
      const busy = (req, res, next) => {
        const end = process.hrtime.bigint() + ns;
        while (process.hrtime.bigint() < end);
        next();
      };
      return { mount: [busy], setup: (req, res) => res.cookie("session", DUMMY_COOKIE), session: null };
    }
    case "floor-props":
    case "floor-hook": {
      // Bounds from below (bench/FINDINGS.md): the floor plus what any middleware with
      // express-session's API pays per request once nothing may go on Node's prototypes: four
      // accessors on each request (session, loadSession, sessionID, sessionStore), and for
      // floor-hook writeHead and end wrapped on each response too, as sessions() does on a read.
      // Nothing is loaded, saved or parsed.
      const props = (req, res, next) => {
        defineRequestProps(req);
        if (name === "floor-hook") {
          for (const method of ["writeHead", "end"]) {
            const original = res[method];
            res[method] = (...args) => original.apply(res, args);
          }
        }
        next();
      };
      return { mount: [props], setup: (req, res) => res.cookie("session", DUMMY_COOKIE), session: null };
    }
    case "floor-session": {
      // floor-hook plus the least a sealed-cookie session does per request (bench/FINDINGS.md),
      // without a store, a session object or the after-end check: parse the Cookie header, look
      // the cookie up in a Map of what seals opened to (as CookieStore caches them), JSON.parse
      // the data on the first read of req.session; at the headers, Vary: Cookie and one
      // JSON.stringify to see whether it changed; a change sealed (CookieStore's seal) and sent.
      // The bound from below for CookieStore's `read` and `write` in instructions-http.mjs.
      const { parse } = require("cookie");
      const { CookieStore } = require(DIST);
      const sealer = new CookieStore({ secret: SECRET });
      const opened = new Map();
      const mw = (req, res, next) => {
        let session;
        let json;
        const read = () => {
          if (session !== undefined) return session;
          const header = req.headers.cookie;
          const sealed = header === undefined ? undefined : parse(header).session;
          json = sealed === undefined ? undefined : opened.get(sealed);
          session = json === undefined ? {} : JSON.parse(json);
          const { writeHead, end } = res;
          res.writeHead = (...args) => {
            res.setHeader("Vary", "Cookie");
            const now = JSON.stringify(session);
            if (now !== json) {
              // `seal` is private in the TypeScript source; used here so the bound runs the very same code.
              const value = sealer.seal.seal(now);
              if (opened.size >= 1000) opened.delete(opened.keys().next().value);
              opened.set(value, now);
              res.setHeader("Set-Cookie", `session=${value}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`);
            }
            return writeHead.apply(res, args);
          };
          res.end = (...args) => end.apply(res, args);
          return session;
        };
        defineRequestProps(req, read);
        next();
      };
      return { mount: [mw], session: sync };
    }
    case "floor-redis-session": {
      // floor-hook plus the least a session kept in Redis does per request, as connect-redis
      // keeps it: before the handlers, one GET (node-redis, as RedisStore talks) of the JSON
      // under the id in the Cookie header, and JSON.parse; at `end`, one JSON.stringify to see
      // whether it changed, and a changed session SET with its TTL before `end` goes on. No
      // signed id, no hash, no timeout, no session object, no check after the end, and only the
      // two wrappers (the bench's handlers only call `end`). The bound from below for
      // RedisStore's `read` and `write`, in instructions-http.mjs and npm run bench's pairs.
      const { parse } = require("cookie");
      const { randomUUID } = require("node:crypto");
      const client = await redisClient();
      const prefix = "bench:floor-redis-session:";
      const mw = (req, res, next) => {
        const header = req.headers.cookie;
        const known = header === undefined ? undefined : parse(header).session;
        const id = known ?? randomUUID();
        let session;
        let json = null;
        const { writeHead, end } = res;
        res.writeHead = (...args) => {
          res.setHeader("Vary", "Cookie");
          if (known === undefined) res.setHeader("Set-Cookie", `session=${id}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`);
          return writeHead.apply(res, args);
        };
        res.end = (...args) => {
          const now = JSON.stringify(session);
          if (now === json || (json === null && now === "{}")) return end.apply(res, args); // unchanged, or new and empty
          client.set(prefix + id, now, { PX: 86_400_000 }).then(() => end.apply(res, args), next);
          return res;
        };
        defineRequestProps(req, () => session);
        (known === undefined ? Promise.resolve(null) : client.get(prefix + id)).then((stored) => {
          json = stored;
          session = stored === null ? {} : JSON.parse(stored);
          next();
        }, next);
      };
      return { mount: [mw], session: sync };
    }
    case "floor":
    case "floor-twin": // the floor again, in a second process: run.mjs's control (A/A)
      return { mount: [(req, res, next) => next()], setup: (req, res) => res.cookie("session", DUMMY_COOKIE), session: null };
    case "floor-redis":
      // The floor with an idle node-redis client connected: what having the client in the process
      // costs a route that never uses it. `npm run bench`'s bound for RedisStore `preload: false`
      // on `untouched`.
      await redisClient();
      return makeImpl("floor");
    case "floor-cookie": {
      // The floor whose handlers send what a CookieStore write sends, made once (not in `npm
      // run bench`): a Set-Cookie of a sealed session's size and Vary: Cookie on every write,
      // Vary: Cookie on every read. What the response alone costs, without any session work.
      const value = `session=${"A".repeat(354)}; Max-Age=86400; Path=/; Expires=Sat, 28 Nov 2026 21:00:00 GMT; HttpOnly; SameSite=Lax`;
      return floorSending(() => value);
    }
    case "floor-seal":
    case "floor-seal-signed": {
      // floor-cookie, but each /write seals a session of the benchmark's shape with
      // CookieStore's own seal (AES-256-GCM, or the HMAC with "-signed") and sends that: the
      // least any store that keeps the session in a sealed cookie must do per write with
      // node:crypto, without reading the cookie, without a load, a session object, a change
      // check or a response hook. `npm run bench`'s bound from below for the `write` rows.
      const { CookieStore } = require(DIST);
      const store = new CookieStore({ secret: SECRET, encrypt: name === "floor-seal" });
      const session = { id: "3b241101-e2bb-4255-8caf-4136c566a962", ...SESSION_DATA };
      const created = Date.now();
      return floorSending(() => {
        session.count++;
        // `seal` is private in the TypeScript source; used here so the bound runs the very same code.
        return `session=${store.seal.seal(`[${created},${Date.now()},${JSON.stringify(session)}]`)}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax`;
      });
    }
    case "sessionbox-cookie":
    case "sessionbox-cookie-signed": {
      const { sessions, CookieStore } = require(DIST);
      const store = new CookieStore({ secret: SECRET, encrypt: name === "sessionbox-cookie" });
      return { mount: [sessions(store)], session: sync };
    }
    case "sessionbox-memory": {
      const { sessions, MemoryStore } = require(DIST);
      return { mount: [sessions(new MemoryStore({ secret: SECRET }))], session: sync };
    }
    case "sessionbox-redis":
    case "sessionbox-redis-lazy": {
      const { sessions, RedisStore } = require(DIST);
      if (typeof RedisStore !== "function") throw new Error("RedisStore is not exported by dist/cjs yet (run npm run build once lib/redis-store.ts exists)");
      const client = await redisClient();
      // Under valgrind (bench/instructions-http.mjs) a request takes far longer than the default 2 s timeout.
      const store = new RedisStore({ client, secret: SECRET, prefix: `bench:${name}:`, timeout: Number(process.env.BENCH_REDIS_TIMEOUT ?? 2000) });
      const lazy = name.endsWith("-lazy");
      return { mount: [sessions(store, lazy ? { preload: false } : undefined)], session: lazy ? lazyLoad : sync };
    }
    case "cookie-session": {
      const cookieSession = require("cookie-session");
      return { mount: [cookieSession({ name: "session", keys: [SECRET], maxAge: 86_400_000 })], session: sync };
    }
    case "express-session": {
      const session = require("express-session");
      return { mount: [session({ secret: SECRET, resave: false, saveUninitialized: false })], session: sync };
    }
    case "express-session+connect-redis": {
      const session = require("express-session");
      const { RedisStore } = require("connect-redis");
      const client = await redisClient();
      const store = new RedisStore({ client, prefix: `bench:${name}:` });
      return { mount: [session({ store, secret: SECRET, resave: false, saveUninitialized: false })], session: sync };
    }
    default:
      throw new Error(`unknown implementation ${JSON.stringify(name)}`);
  }
}

/**
 * The four accessors sessions() gives each request (session, loadSession, sessionID,
 * sessionStore), as the bound rows add them: `session` answers `getSession()`, the others a
 * placeholder. One function, so that every bound pays for them alike.
 */
function defineRequestProps(req, getSession) {
  const state = {};
  Object.defineProperty(req, "session", { configurable: true, get: getSession ?? (() => state) });
  for (const key of ["loadSession", "sessionID", "sessionStore"]) Object.defineProperty(req, key, { configurable: true, get: () => state });
}

/** The floor, plus `Vary: Cookie` on every route but `untouched`, and on `write` the `Set-Cookie` that `cookieOnWrite()` makes. */
async function floorSending(cookieOnWrite) {
  const floor = await makeImpl("floor");
  const send = (req, res, next) => {
    if (req.url !== "/untouched") res.setHeader("Vary", "Cookie");
    if (req.url === "/write") res.setHeader("Set-Cookie", [cookieOnWrite()]);
    next();
  };
  return { ...floor, mount: [...floor.mount, send] };
}

function sync(req) {
  return req.session;
}

function lazyLoad(req) {
  return req.loadSession();
}

async function redisClient() {
  if (!REDIS_URL) throw new Error("REDIS_URL is not set: run.mjs starts a redis-server and passes its URL");
  const { createClient } = require("redis");
  const client = createClient({ url: REDIS_URL });
  client.on("error", (err) => console.error(`[${IMPL}] redis client: ${err.message}`));
  await client.connect();
  closers.push(() => client.close?.() ?? client.quit());
  return client;
}

/** Calls `use` with the request's session: at once when the implementation gives it synchronously. */
function withSession(get, req, next, use) {
  const session = get(req);
  if (typeof session?.then === "function") session.then(use).catch(next);
  else use(session);
}

/** Session data without express-session's `cookie` field. */
function dataOf(session) {
  const out = {};
  for (const key of Object.keys(session)) if (key !== "cookie" && key !== "id") out[key] = session[key];
  return out;
}

/** The Express app of one implementation (also used in-process by micro.mjs). */
export async function createApp(name) {
  const impl = await makeImpl(name);
  const app = express();
  for (const mw of impl.mount) app.use(mw);
  const get = impl.session;

  app.get("/setup", async (req, res) => {
    if (get === null) impl.setup(req, res);
    else Object.assign(await get(req), SESSION_DATA);
    res.send("ok");
  });
  app.get("/untouched", (req, res) => {
    res.send("ok");
  });
  // Plain (not async) handlers, as an app would write them: a synchronous req.session is used
  // without an await (an await alone costs a microtask turn, which the floor would not pay);
  // only the lazy RedisStore row waits for req.loadSession().
  app.get("/read", (req, res, next) => {
    if (get === null) return void res.send("user bench-user");
    withSession(get, req, next, (session) => res.send(`user ${session.user}`));
  });
  app.get("/write", (req, res, next) => {
    if (get === null) return void res.send("1");
    withSession(get, req, next, (session) => {
      session.count = (session.count ?? 0) + 1;
      res.send(String(session.count));
    });
  });
  app.get("/lost/:key", async (req, res) => {
    const session = await get(req);
    await new Promise((resolve) => setTimeout(resolve, Number(req.query.delay ?? 0)));
    session[req.params.key] = String(req.query.value);
    res.send("ok");
  });
  app.get("/dump", async (req, res) => {
    res.json(dataOf(await get(req)));
  });
  app.use((err, req, res, next) => {
    console.error(`[${name}] ${req.method} ${req.url}: ${err.stack ?? err}`);
    if (!res.headersSent) res.status(err.status ?? 500).send("error");
    else next(err);
  });
  return app;
}

async function main() {
  const app = await createApp(IMPL);
  const server = http.createServer(app);
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(PORT, "127.0.0.1", resolve);
  });
  const port = server.address().port;

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections?.();
    server.close();
    await Promise.allSettled(closers.map((close) => close()));
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
  process.on("disconnect", stop);
  process.on("message", (msg) => {
    if (msg === "stop") stop();
    // CPU time used by this process so far: run.mjs turns it into CPU µs per request, a
    // figure that other load on the machine disturbs far less than req/s.
    else if (msg?.cpu !== undefined) process.send({ cpu: msg.cpu, usage: process.cpuUsage() });
  });

  if (process.send) process.send({ ready: true, port });
  else console.log(`READY ${port}`);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    const message = err?.stack ?? String(err);
    if (process.send) process.send({ ready: false, error: message });
    else console.error(message);
    process.exit(1);
  });
}
