// Micro-benchmarks of the hot paths (issue 4, item 4), so that a regression shows where it
// happens. Run by run.mjs; also runnable alone: `node bench/micro.mjs` (after npm run build).
//
// Each case: a warm-up, then ROUNDS rounds of about ROUND_MS each (the iteration count is
// calibrated during warm-up); ops/s is the median round. The store calls get a minimal
// SessionContext, as the middleware would pass.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import http from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { DIST, fmtInt, median } from "./common.mjs";
import { createApp } from "./server.mjs";

const require = createRequire(import.meta.url);
const QUICK = process.env.BENCH_QUICK === "1";
const ROUNDS = QUICK ? 3 : 5;
const ROUND_MS = QUICK ? 100 : 200;
const WARMUP_MS = QUICK ? 100 : 200;
const SECRET = "bench-secret-bench-secret-bench-secret-0123456789";
/** Distinct cookies to cycle through for the "new cookie each time" cases: more than a cache of recent ones would hold. */
const DISTINCT = 4000;

let sink;

/** Calls per round of about ROUND_MS, from the last warm-up batch (`n` calls in `elapsed` ms). */
function roundSize(n, elapsed) {
  return Math.max(1, Math.round((n * ROUND_MS) / Math.max(elapsed, 0.001)));
}

/** One measured round of `calls` calls that took `wall` ms and `used` CPU (process.cpuUsage). */
function rate(calls, wall, used) {
  return { wall: calls / (wall / 1000), cpu: calls / ((used.user + used.system) / 1e6) };
}

/** Prints and returns a case's result: medians over its rounds. */
function report(name, rounds) {
  const rates = rounds.map((r) => r.wall);
  const ops = median(rates);
  const cpuOps = median(rounds.map((r) => r.cpu));
  console.log(`  ${name.padEnd(60)} ${fmtInt(ops).padStart(11)} ops/s  ${(1e6 / ops).toFixed(2).padStart(8)} µs/op  (${(1e6 / cpuOps).toFixed(2)} µs CPU/op)`);
  return { name, opsPerSec: ops, usPerOp: 1e6 / ops, cpuUsPerOp: 1e6 / cpuOps, rounds: rates };
}

function bench(name, fn) {
  // Warm-up, and calibrate how many calls make a round of about ROUND_MS.
  let n = 1;
  let elapsed = 0;
  const warmEnd = performance.now() + WARMUP_MS;
  while (performance.now() < warmEnd) {
    const t = performance.now();
    for (let i = 0; i < n; i++) sink = fn(i);
    elapsed = performance.now() - t;
    if (elapsed < ROUND_MS / 10) n *= 2;
  }
  const perRound = roundSize(n, elapsed);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    for (let i = 0; i < perRound; i++) sink = fn(i);
    rounds.push(rate(perRound, performance.now() - t, process.cpuUsage(cpu)));
  }
  return report(name, rounds);
}

/** A case that throws (the API under test changed, say) is reported, not fatal to the rest. */
function safeBench(name, fn) {
  try {
    return bench(name, fn);
  } catch (err) {
    console.error(`  ${name}: FAILED: ${err.message}`);
    return { name, error: err.message };
  }
}

/** Session data whose JSON (with the id) is about `bytes` long. */
function sessionOfSize(bytes) {
  const data = { id: "5f0c8a52-3c1e-4d0b-9a57-2a1f7c3e9b10", user: "bench-user", name: "Ada Lovelace", roles: ["reader", "writer"], count: 7 };
  const base = JSON.stringify(data).length + ',"notes":""'.length;
  data.notes = "n".repeat(Math.max(0, bytes - base));
  return data;
}

/**
 * One whole request through an Express app in this process: real IncomingMessage and
 * ServerResponse objects, no socket (the response bytes stay in the response object). What
 * is left is the per-request work of Express, the session middleware and the handler, without
 * the network — the part of a request the middleware can make cheaper or dearer.
 */
function request(app, path, cookie) {
  const req = new http.IncomingMessage({ encrypted: false, remoteAddress: "127.0.0.1", readableHighWaterMark: 16384 });
  req.method = "GET";
  req.url = path;
  req.httpVersion = "1.1";
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.headers = cookie ? { host: "127.0.0.1", cookie } : { host: "127.0.0.1" };
  req.complete = true;
  const res = new http.ServerResponse(req);
  app(req, res);
  return res;
}

/** Resolves when the response has ended (handlers that await finish a few microtasks later). */
async function ended(res) {
  for (let i = 0; i < 20 && !res.writableEnded; i++) await null;
  while (!res.writableEnded) await new Promise((resolve) => setImmediate(resolve));
  return res;
}

async function appWithCookie(impl) {
  const app = await createApp(impl);
  const setup = await ended(request(app, "/setup"));
  const cookie = [].concat(setup.getHeader("set-cookie") ?? []).map((line) => String(line).split(";")[0]).join("; ");
  const check = await ended(request(app, "/read", cookie));
  const body = check.outputData?.map((d) => String(d.data)).join("") ?? "";
  if (impl !== "express" && impl !== "floor" && !body.includes("user bench-user")) throw new Error(`micro: in-process ${impl} /read did not see the session`);
  return { app, cookie };
}

/** Like bench(), for async work: N sequential requests per round (the loops await, so they are its own). */
async function benchAsync(name, fn) {
  let n = 16;
  const warmEnd = performance.now() + WARMUP_MS;
  let elapsed = 0;
  while (performance.now() < warmEnd) {
    const t = performance.now();
    for (let i = 0; i < n; i++) await fn();
    elapsed = performance.now() - t;
    if (elapsed < ROUND_MS / 10) n *= 2;
  }
  const perRound = roundSize(n, elapsed);
  const rounds = [];
  for (let r = 0; r < ROUNDS; r++) {
    const cpu = process.cpuUsage();
    const t = performance.now();
    for (let i = 0; i < perRound; i++) await fn();
    rounds.push(rate(perRound, performance.now() - t, process.cpuUsage(cpu)));
  }
  return report(name, rounds);
}

export const INPROC_IMPLS = ["floor", "sessionbox-cookie", "sessionbox-cookie-signed", "sessionbox-memory", "cookie-session", "express-session"];

async function runInProcess() {
  const results = [];
  const apps = {};
  for (const impl of INPROC_IMPLS) apps[impl] = await appWithCookie(impl);
  for (const route of ["untouched", "read", "write"]) {
    for (const impl of INPROC_IMPLS) {
      const { app, cookie } = apps[impl];
      const path = `/${route}`;
      const r = await benchAsync(`in-process request: ${impl} ${route}`, () => ended(request(app, path, cookie)));
      results.push({ ...r, impl, route });
    }
  }
  return results;
}

export async function runMicro() {
  const pkg = require(DIST);
  const { parseCookies, Cookie } = require(join(DIST, "cookie.js"));
  const { SignedIdCookie } = require(join(DIST, "signed-id.js"));
  const { CookieSettings } = require(join(DIST, "cookie-settings.js"));
  const signature = require("cookie-signature");
  const { CookieStore, MemoryStore, Session, sessions } = pkg;
  const req = { headers: {}, socket: {} };
  const res = {};
  const results = [];

  for (const encrypt of [true, false]) {
    const store = new CookieStore({ secret: SECRET, encrypt });
    const label = encrypt ? "encrypted" : "signed";
    for (const size of [200, 3000]) {
      const data = sessionOfSize(size);
      const ctx = { req, res, cookies: {} };
      // A session built from data is "changed" for the store (it has no record of loading it), so dump seals it.
      const seal = () => store.dump(new Session(data), ctx);
      const cookies = {};
      for (const c of seal()) cookies[c.name] = c.value;
      const sealedBytes = Object.entries(cookies).reduce((sum, [k, v]) => sum + k.length + 1 + v.length, 0);
      const loadCtx = { req, res, cookies };
      if (store.load(loadCtx).notes !== data.notes) throw new Error("micro: the sealed session did not round-trip");
      const tag = `${label} ${size === 200 ? "200 B" : "3 KB"} (cookie ${fmtInt(sealedBytes)} B, ${Object.keys(cookies).length} chunk${Object.keys(cookies).length > 1 ? "s" : ""})`;
      results.push(safeBench(`CookieStore seal (dump) ${tag}`, seal));
      // A store may remember seals it opened recently: the same cookie again is the returning
      // visitor's cost; a different cookie each time (more of them than any such cache holds)
      // is the cost of really opening one.
      results.push(safeBench(`CookieStore unseal (load), same cookie each time, ${tag}`, () => store.load(loadCtx)));
      const many = [];
      for (let i = 0; i < DISTINCT; i++) {
        const jar = {};
        for (const c of store.dump(new Session({ ...data, count: i }), ctx)) jar[c.name] = c.value;
        many.push({ req, res, cookies: jar });
      }
      let next = 0;
      results.push(safeBench(`CookieStore unseal (load), a new cookie each time, ${tag}`, () => store.load(many[next++ % DISTINCT])));
    }
  }

  const idCookie = new SignedIdCookie(new CookieSettings("session", {}, "bench"), [SECRET]);
  const id = "5f0c8a52-3c1e-4d0b-9a57-2a1f7c3e9b10";
  const signed = signature.sign(id, SECRET);
  results.push(safeBench("signed id: sign (SignedIdCookie.issue)", () => idCookie.issue(req, id, 86_400_000)));
  // The same signed value every time: what a returning visitor costs (read caches verified values).
  results.push(safeBench("signed id: read (SignedIdCookie.read), same cookie each time", () => idCookie.read({ session: signed })));
  const ids = Array.from({ length: 10 * DISTINCT }, () => ({ session: signature.sign(Session.empty().id, SECRET) }));
  let nextId = 0;
  results.push(safeBench("signed id: read (SignedIdCookie.read), a new cookie each time", () => idCookie.read(ids[nextId++ % ids.length])));
  results.push(safeBench("cookie-signature sign (reference)", () => signature.sign(id, SECRET)));
  results.push(safeBench("cookie-signature unsign (reference)", () => signature.unsign(signed, SECRET)));

  const header = `_ga=GA1.1.123456789.1700000000; theme=dark; session=${"A".repeat(180)}; _gid=GA1.1.987654321.1700000000`;
  const parseReq = { headers: { cookie: header } };
  results.push(safeBench(`parseCookies (4 cookies, ${header.length} B header)`, () => parseCookies(parseReq)));
  const cookie = new Cookie("session", signed, { path: "/", httpOnly: true, sameSite: "lax", secure: false, maxAge: 86_400_000 });
  results.push(safeBench("Cookie.serialize (signed id, defaults)", () => cookie.serialize()));

  results.push(safeBench("Session.empty (fresh uuid v4)", () => Session.empty()));
  const small = sessionOfSize(200);
  results.push(safeBench("new Session(200 B data)", () => new Session(small)));

  // The middleware's fixed cost on a request whose handler never reads the session.
  const mw = sessions(new MemoryStore({ secret: SECRET }));
  const next = () => {};
  results.push(safeBench("sessions() middleware, untouched request", () => mw({ headers: { cookie: header } }, {}, next)));

  try {
    memoryCases(MemoryStore, req, res, results);
  } catch (err) {
    console.error(`  MemoryStore cases: FAILED: ${err.message}`);
    results.push({ name: "MemoryStore cases", error: err.message });
  }
  const inProcess = await runInProcess();
  return { rounds: ROUNDS, roundMs: ROUND_MS, results, inProcess };
}

function memoryCases(MemoryStore, req, res, results) {
  const memory = new MemoryStore({ secret: SECRET });
  const memCtx = { req, res, cookies: {} };
  const first = memory.load(memCtx);
  Object.assign(first, { user: "bench-user", count: 0 });
  const memCookie = [].concat(memory.dump(first, memCtx))[0];
  const memLoadCtx = { req, res, cookies: { session: memCookie.value } };
  results.push(safeBench("MemoryStore load (signed id + entry)", () => memory.load(memLoadCtx)));
  results.push(
    bench("MemoryStore load + change + dump", (i) => {
      const s = memory.load(memLoadCtx);
      s.count = i;
      return memory.dump(s, memLoadCtx);
    }),
  );
}

export function microMarkdown(result) {
  const out = [
    "### Micro-benchmarks",
    "",
    `Median of ${result.rounds} rounds of ~${result.roundMs} ms after a warm-up (\`node bench/micro.mjs\`). µs CPU/op divides the process's CPU time by the calls, which other load on the machine disturbs less than wall time (it includes GC threads).`,
    "",
    "| case | ops/s | µs/op | µs CPU/op |",
    "|---|---:|---:|---:|",
  ];
  for (const r of result.results) {
    if (r.error) out.push(`| ${r.name} | failed: ${r.error} | | |`);
    else out.push(`| ${r.name} | ${fmtInt(r.opsPerSec)} | ${r.usPerOp.toFixed(2)} | ${r.cpuUsPerOp.toFixed(2)} |`);
  }
  if (result.inProcess?.length) {
    out.push(
      "",
      "Whole requests through the Express app of each implementation, in process (real IncomingMessage/ServerResponse, no socket): the per-request work of Express, the middleware and the handler without the network. " +
        "µs over floor is this row's CPU time per request minus the floor's on the same route.",
      "",
      "| implementation | route | requests/s | µs CPU/request | µs over floor | floor ÷ this (CPU) |",
      "|---|---|---:|---:|---:|---:|",
    );
    for (const r of result.inProcess) {
      const floor = result.inProcess.find((f) => f.impl === "floor" && f.route === r.route);
      out.push(`| ${r.impl} | ${r.route} | ${fmtInt(r.opsPerSec)} | ${r.cpuUsPerOp.toFixed(1)} | ${(r.cpuUsPerOp - floor.cpuUsPerOp).toFixed(1)} | ${(floor.cpuUsPerOp / r.cpuUsPerOp).toFixed(2)}× |`);
    }
  }
  return out.join("\n");
}

/**
 * `node bench/micro.mjs request IMPL ROUTE N`: just N in-process requests, then exit. For
 * counting instructions, which other load on the machine cannot disturb:
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/micro.mjs request floor read 0
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null node bench/micro.mjs request floor read 5000
 * (instructions per request = difference / 5000). Redis implementations need REDIS_URL.
 */
async function requestsOnly(impl, route, n) {
  const { app, cookie } = await appWithCookie(impl);
  for (let i = 0; i < n; i++) await ended(request(app, `/${route}`, cookie));
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv[2] === "request") {
    await requestsOnly(process.argv[3], process.argv[4], Number(process.argv[5] ?? 1000));
    process.exit(0); // a Redis implementation's client would keep the process alive
  } else {
    const result = await runMicro();
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(result, null, 2));
    else console.log(`\n${microMarkdown(result)}`);
  }
}
