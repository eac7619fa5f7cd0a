// `npm run bench`: throughput and p99 latency of every implementation on three routes,
// then the correctness checks (correctness.mjs) and the micro-benchmarks (micro.mjs).
//
// Each implementation runs in its own process (bench/server.mjs); autocannon drives it from
// this process over 127.0.0.1. Runs are interleaved: run k of every implementation before
// run k+1, and within a run all implementations on one route back to back (starting at a
// different implementation each run), so the rows compared with each other are measured
// close together in time and a slow patch of the machine hits every row alike. The table
// shows medians.
//
// Environment:
//   BENCH_DURATION  seconds per measured run (default 3)
//   BENCH_RUNS      measured runs per implementation and route (default 3; medians reported)
//   BENCH_PAIRS     back-to-back pairs of runs measuring each target (default 8)
//   BENCH_PAIR_SECONDS  seconds per run in those pairs (default 2)
//   BENCH_PROCESSES processes per row that the pairs take in turn (default 3)
//   BENCH_WARMUP    seconds of warm-up before the first measured run of each implementation
//                   and route (default 2); the servers stay up, so later runs start warm
//   BENCH_REWARM    seconds of warm-up before each later run (default 0)
//   BENCH_CONNECTIONS  concurrent connections (default 50)
//   BENCH_QUICK=1   development mode: 1 run of 1 s, short warm-up, smaller checks
//   BENCH_SESSIONS  distinct sessions the load rotates through (default 1: every request
//                   carries the same cookie). More sessions than a store's caches hold shows
//                   what many concurrent visitors cost rather than one returning visitor.
//   BENCH_ONLY      comma-separated implementations to measure (baselines always included)
//   BENCH_SKIP      comma-separated parts to skip: http, correctness, micro
//   BENCH_DIST      absolute path of another build's cjs folder to measure instead of dist/cjs
//                   (copy dist/cjs aside before a change to compare before/after)
// Related tools, not run by npm run bench: bench/profile.mjs (CPU profiles under load) and
// bench/instructions.mjs (instructions per request under valgrind: stable on a busy machine).
import autocannon from "autocannon";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import {
  BENCH_DIR,
  fmtInt,
  get,
  hasRedisStore,
  installCleanup,
  killChildren,
  machineInfo,
  median,
  placeCpus,
  releaseCpus,
  setupSession,
  startRedis,
  startServer,
} from "./common.mjs";
import { correctnessMarkdown } from "./correctness.mjs";
import { microMarkdown } from "./micro.mjs";

const env = process.env;
const QUICK = env.BENCH_QUICK === "1";
const DURATION = Number(env.BENCH_DURATION ?? (QUICK ? 1 : 3));
const RUNS = Number(env.BENCH_RUNS ?? (QUICK ? 1 : 3));
const WARMUP = Number(env.BENCH_WARMUP ?? (QUICK ? 0.5 : 2));
const REWARM = Number(env.BENCH_REWARM ?? 0);
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 50);
const SESSIONS = Number(env.BENCH_SESSIONS ?? 1);
const PAIRS = Number(env.BENCH_PAIRS ?? (QUICK ? 2 : 8));
const PAIR_SECONDS = Number(env.BENCH_PAIR_SECONDS ?? (QUICK ? 0.5 : 2));
const PROCESSES = Number(env.BENCH_PROCESSES ?? (QUICK ? 1 : 3));
const SKIP = new Set((env.BENCH_SKIP ?? "").split(",").filter(Boolean));
const ROUTES = ["untouched", "read", "write"];

/** Every implementation, in table order, with the incumbent it is compared with. */
const IMPLS = [
  { name: "express", kind: "baseline" },
  { name: "floor", kind: "baseline" },
  // The control: the floor again in a process of its own, started and measured like every row,
  // so the table and the control pair show what the method gives two identical servers.
  { name: "floor-twin", kind: "baseline" },
  // The bounds for `write`: the floor sealing a session of the benchmark's shape into its cookie
  // on each write with CookieStore's own seal, and no session work at all (server.mjs). What any
  // store that keeps the session in a sealed cookie pays on this machine, at the least.
  { name: "floor-seal", kind: "baseline" },
  { name: "floor-seal-signed", kind: "baseline" },
  // The bound for RedisStore `preload: false` on `untouched`: the floor with an idle node-redis
  // client connected in the process, as that row has, and no session middleware (server.mjs).
  { name: "floor-redis", kind: "baseline", redis: true },
  // The bound for RedisStore's `read` and `write`: the least a session kept in Redis does, as
  // connect-redis keeps it (one GET before the handlers, one SET of a changed session), with
  // writeHead and end wrapped and nothing else (server.mjs).
  { name: "floor-redis-session", kind: "baseline", redis: true },
  { name: "sessionbox-cookie", incumbent: "cookie-session" },
  { name: "sessionbox-cookie-signed", incumbent: "cookie-session" },
  { name: "sessionbox-memory", incumbent: "express-session" },
  { name: "sessionbox-redis", incumbent: "express-session+connect-redis", redis: true, needsRedisStore: true },
  { name: "sessionbox-redis-lazy", incumbent: "express-session+connect-redis", redis: true, needsRedisStore: true },
  { name: "cookie-session", kind: "incumbent" },
  { name: "express-session", kind: "incumbent" },
  { name: "express-session+connect-redis", kind: "incumbent", redis: true },
];

/** The route of the control pair (floor ÷ floor). */
const CONTROL_ROUTE = "untouched";

/**
 * The bound pairs, measured as the targets are (no target of their own): each row against the
 * floor is a cost a store pays with no session work; floor-redis-session against connect-redis
 * is the least a Redis session does, so RedisStore's ratio to connect-redis cannot beat it but
 * for the noise.
 */
const BOUNDS = [
  { impl: "floor-seal", route: "write", vs: "floor", what: "the seal and its cookie, no session work" },
  { impl: "floor-seal-signed", route: "write", vs: "floor", what: "the HMAC and its cookie, no session work" },
  { impl: "floor-redis", route: "untouched", vs: "floor", what: "an idle Redis client in the process, no session work" },
  ...["read", "write"].map((route) => ({ impl: "floor-redis-session", route, vs: "express-session+connect-redis", what: "the least a Redis session does" })),
];

/**
 * The req/s targets (issue 17): every store at least 1.3× its incumbent on `read` and `write`.
 * Costs near the floor are judged in instructions (instructions-http.mjs), which noise does not move.
 */
const TARGETS = [
  ["sessionbox-cookie", "cookie-session"],
  ["sessionbox-memory", "express-session"],
  ["sessionbox-redis", "express-session+connect-redis"],
].flatMap(([impl, vs]) => ["read", "write"].map((route) => ({ impl, route, vs, min: 1.3 })));

function only() {
  if (!env.BENCH_ONLY) return IMPLS;
  const wanted = new Set(env.BENCH_ONLY.split(",").map((s) => s.trim()));
  return IMPLS.filter((impl) => impl.kind === "baseline" || wanted.has(impl.name) || IMPLS.some((i) => wanted.has(i.name) && i.incumbent === impl.name));
}

function log(line = "") {
  console.log(line);
}

/** redis-server's own CPU time so far (µs), from INFO cpu: the Redis rows' cost includes it. */
async function redisCpu(client) {
  const info = await client.info("cpu");
  const field = (name) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(info)?.[1] ?? 0);
  return (field("used_cpu_user") + field("used_cpu_sys")) * 1e6;
}

/** `cookie` is one Cookie header, or a list of them (BENCH_SESSIONS > 1) that the requests take in turn. */
async function measure(server, route, cookie, seconds, redisClient) {
  const port = server.port;
  const redisBefore = redisClient ? await redisCpu(redisClient) : 0;
  const before = await server.cpu();
  const options = { url: `http://127.0.0.1:${port}/${route}`, connections: CONNECTIONS, duration: seconds };
  if (Array.isArray(cookie)) {
    let next = 0;
    options.requests = [{ method: "GET", path: `/${route}`, setupRequest: (req) => ({ ...req, headers: { ...req.headers, cookie: cookie[next++ % cookie.length] } }) }];
  } else options.headers = { cookie };
  const result = await autocannon(options);
  const after = await server.cpu();
  const redisAfter = redisClient ? await redisCpu(redisClient) : 0;
  const cpuMicros = after.user + after.system - before.user - before.system;
  return {
    rps: result.requests.average,
    cpuPerReq: result.requests.total > 0 ? cpuMicros / result.requests.total : undefined,
    redisCpuPerReq: redisClient && result.requests.total > 0 ? (redisAfter - redisBefore) / result.requests.total : undefined,
    p99: result.latency.p99,
    p50: result.latency.p50,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

/** `n` sessions, created 10 at a time; their Cookie headers. */
async function setupSessions(port, n) {
  const cookies = [];
  for (let i = 0; i < n; i += 10) cookies.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => setupSession(port)))));
  return cookies;
}

/** One request per route before measuring: the rows must measure what their names say. */
async function verify(server, cookie, sessionless) {
  const notes = [];
  const read = await get(server.port, "/read", cookie);
  if (read.status !== 200 || read.body !== "user bench-user") throw new Error(`${server.impl}: GET /read answered ${read.status} ${JSON.stringify(read.body)}, expected "user bench-user"`);
  const untouched = await get(server.port, "/untouched", cookie);
  if (untouched.status !== 200) throw new Error(`${server.impl}: GET /untouched answered ${untouched.status}`);
  if (untouched.headers["set-cookie"]) notes.push("sets a cookie on the untouched route");
  const write = await get(server.port, "/write", cookie);
  if (write.status !== 200 || !(Number(write.body) >= 1)) throw new Error(`${server.impl}: GET /write answered ${write.status} ${JSON.stringify(write.body)}`);
  if (!sessionless && !write.headers["set-cookie"] && !server.impl.startsWith("express-session")) notes.push("no Set-Cookie on the write route");
  const reread = await get(server.port, "/read", cookie);
  if (reread.headers["set-cookie"]) notes.push("re-issues its cookie on the read route (Set-Cookie on every request that reads the session)");
  return notes;
}

async function runHttp(redis, redisStoreBuilt) {
  const impls = only().filter((impl) => {
    if (impl.redis && !redis) return false;
    if (impl.needsRedisStore && !redisStoreBuilt) return false;
    return true;
  });
  const skipped = only().filter((impl) => !impls.includes(impl)).map((impl) => impl.name);
  const estimate = impls.length * ROUTES.length * (WARMUP + DURATION + (RUNS - 1) * (REWARM + DURATION));
  log(`HTTP: ${impls.length} implementations × ${ROUTES.length} routes × ${RUNS} runs of ${DURATION} s, ${CONNECTIONS} connections (≈ ${Math.ceil(estimate / 60)} min)`);

  let redisClient;
  if (redis && impls.some((impl) => impl.redis)) {
    const { createClient } = createRequire(import.meta.url)("redis");
    redisClient = createClient({ url: redis.url });
    await redisClient.connect();
  }
  const servers = new Map();
  for (const impl of impls) {
    const server = await startServer(impl.name, { env: redis ? { REDIS_URL: redis.url } : {} });
    const cookie = await setupSession(server.port);
    const notes = await verify(server, cookie, impl.kind === "baseline");
    servers.set(impl.name, { ...server, cookie, notes });
    log(`  started ${impl.name} on 127.0.0.1:${server.port}${notes.length ? ` (note: ${notes.join("; ")})` : ""}`);
  }

  const runs = {};
  for (const impl of impls) runs[impl.name] = Object.fromEntries(ROUTES.map((route) => [route, []]));
  for (let k = 0; k < RUNS; k++) {
    // Start each run at a different implementation, so no row is always first or last.
    const order = impls.map((_, i) => impls[(i + k * 3) % impls.length]);
    for (const route of ROUTES) {
      for (const impl of order) {
        const server = servers.get(impl.name);
        const warm = k === 0 ? WARMUP : REWARM;
        const rc = impl.redis ? redisClient : undefined;
        // A fresh session for every run: the client never stores the cookies the server re-issues
        // (a browser would), so an old one would make CookieStore re-seal on every read once its
        // touchAfter (60 s) has passed, which is not what a browser's requests cost.
        const cookie = SESSIONS > 1 ? await setupSessions(server.port, SESSIONS) : await setupSession(server.port);
        if (warm > 0) await measure(server, route, cookie, warm, rc);
        const m = await measure(server, route, cookie, DURATION, rc);
        runs[impl.name][route].push(m);
        const bad = m.non2xx + m.errors + m.timeouts;
        log(
          `  [run ${k + 1}/${RUNS}] ${impl.name.padEnd(30)} ${route.padEnd(9)} ${fmtInt(m.rps).padStart(7)} req/s  p99 ${String(m.p99).padStart(4)} ms  ${m.cpuPerReq.toFixed(0).padStart(4)} µs CPU/req${m.redisCpuPerReq === undefined ? "" : ` + ${m.redisCpuPerReq.toFixed(0)} in redis-server`}${bad ? `  !! ${m.non2xx} non-2xx, ${m.errors} errors, ${m.timeouts} timeouts` : ""}`,
        );
      }
    }
  }
  const pairs = PAIRS > 0 ? await runPairs(servers, redis ? { REDIS_URL: redis.url } : {}) : [];
  for (const server of servers.values()) await server.stop();
  await redisClient?.close();

  const rows = {};
  for (const impl of impls) {
    rows[impl.name] = {};
    for (const route of ROUTES) {
      const list = runs[impl.name][route];
      const rps = list.map((m) => m.rps);
      rows[impl.name][route] = {
        rps: median(rps),
        p99: median(list.map((m) => m.p99)),
        cpuPerReq: median(list.map((m) => m.cpuPerReq)),
        redisCpuPerReq: impl.redis ? median(list.map((m) => m.redisCpuPerReq)) : undefined,
        spread: rps.length > 1 ? (Math.max(...rps) - Math.min(...rps)) / median(rps) : 0,
        failures: list.reduce((sum, m) => sum + m.non2xx + m.errors + m.timeouts, 0),
        runs: list,
      };
    }
  }
  const notes = Object.fromEntries([...servers.values()].filter((s) => s.notes.length).map((s) => [s.impl, s.notes]));
  return { impls, rows, skipped, notes, pairs };
}

/**
 * The targets' own measurement: for each target, PAIRS back-to-back pairs of short runs of the
 * two rows (AB, then BA, ...), each pair's req/s ratio, and the median of those. On a shared
 * machine whose speed drifts by tens of percent over a minute (seen here: bare Express's req/s
 * doubling between two runs of the table), two runs seconds apart see the same machine, so the
 * pair's ratio holds where the table's medians cannot resolve a few percent.
 *
 * Each row is served by PROCESSES processes in turn (pair k by process k mod PROCESSES): two
 * identical floor processes came out up to 7% apart over a whole run of pairs, for reasons that
 * are not in their code and that more pairs of the same two processes cannot average out. The
 * table's process is the first; the others are started here and warmed on every route first.
 */
async function runPairs(servers, serverEnv) {
  log(`Targets: ${TARGETS.length} × ${PAIRS} pairs of ${PAIR_SECONDS} s runs, back to back, ${PROCESSES} process(es) per row in turn`);
  const replicas = new Map();
  const processesOf = async (name) => {
    if (!replicas.has(name)) {
      const list = [servers.get(name)];
      for (let i = 1; i < PROCESSES; i++) {
        const server = await startServer(name, { env: serverEnv });
        const cookie = await setupSession(server.port);
        if (WARMUP > 0) for (const route of ROUTES) await measure(server, route, cookie, WARMUP);
        list.push(server);
      }
      replicas.set(name, list);
    }
    return replicas.get(name);
  };
  const out = [];
  for (const t of TARGETS) {
    if (!servers.has(t.impl) || !servers.has(t.vs)) continue;
    out.push(await measurePairs(await processesOf(t.impl), await processesOf(t.vs), t.route));
  }
  // The control: the floor against its twin, on the tightest target's route. Its median is what
  // this method gives two identical servers in this run, so a target that misses by less than
  // the control strays from 1.00 is not told apart from noise.
  if (servers.has("floor") && servers.has("floor-twin")) {
    out.push({ ...(await measurePairs(await processesOf("floor-twin"), await processesOf("floor"), CONTROL_ROUTE)), control: true });
  }
  // The bounds. The bounded row does all of its bound's work and more: where the bound is at or
  // under the target, the row's own ratio is too (but for the noise the control shows).
  for (const b of BOUNDS) {
    if (servers.has(b.impl) && servers.has(b.vs)) out.push({ ...(await measurePairs(await processesOf(b.impl), await processesOf(b.vs), b.route)), bound: true, vs: b.vs, what: b.what });
  }
  for (const list of replicas.values()) for (const server of list.slice(1)) await server.stop();
  return out;
}

/** PAIRS pairs of runs of `as` and `bs` (lists of processes of the two rows, taken in turn); their req/s ratios. */
async function measurePairs(as, bs, route) {
  const ratios = [];
  for (let k = 0; k < PAIRS; k++) {
    const a = as[k % as.length];
    const b = bs[k % bs.length];
    const rps = new Map();
    for (const server of k % 2 === 0 ? [a, b] : [b, a]) rps.set(server, (await measure(server, route, await setupSession(server.port), PAIR_SECONDS)).rps);
    ratios.push(rps.get(a) / rps.get(b));
  }
  const [a, b] = [as[0].impl, bs[0].impl];
  log(`  ${`${a} ${route} ÷ ${b}`.padEnd(62)} ${median(ratios).toFixed(3)}  (${ratios.map((r) => r.toFixed(2)).join(" ")})`);
  return { impl: a, route, vs: b, ratios, ratio: median(ratios) };
}

function ratio(a, b) {
  return a === undefined || b === undefined || b === 0 ? undefined : a / b;
}

function fmtRatio(r) {
  return r === undefined ? "—" : `${r.toFixed(2)}×`;
}

/** One compact table for the README: req/s per route, with the ratio to the floor and to the incumbent. */
function summaryMarkdown(http) {
  const out = [
    "| implementation | untouched req/s | read req/s | write req/s |",
    "|---|---:|---:|---:|",
  ];
  for (const impl of http.impls) {
    const cells = ROUTES.map((route) => {
      const row = http.rows[impl.name][route];
      const floor = http.rows.floor?.[route];
      const inc = impl.incumbent ? http.rows[impl.incumbent]?.[route] : undefined;
      const parts = [];
      if (impl.name !== "floor") parts.push(`${fmtRatio(ratio(row.rps, floor?.rps))} floor`);
      if (inc) parts.push(`${fmtRatio(ratio(row.rps, inc.rps))} ${impl.incumbent}`);
      return `${fmtInt(row.rps)}${parts.length ? ` (${parts.join(", ")})` : ""}`;
    });
    out.push(`| ${impl.name} | ${cells.join(" | ")} |`);
  }
  return out.join("\n");
}

function httpMarkdown(http) {
  const out = ["### Summary", "", summaryMarkdown(http), ""];
  for (const route of ROUTES) {
    out.push(`### \`${route}\``, "");
    out.push("| implementation | req/s | × express | × floor | × incumbent | spread | p99 ms | × express | × floor | × incumbent | server CPU µs/req | floor CPU ÷ this | + redis-server CPU µs/req |");
    out.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const impl of http.impls) {
      const row = http.rows[impl.name][route];
      const base = http.rows.express?.[route];
      const floor = http.rows.floor?.[route];
      const inc = impl.incumbent ? http.rows[impl.incumbent]?.[route] : undefined;
      const name = impl.kind === "baseline" || impl.kind === "incumbent" ? impl.name : `**${impl.name}**`;
      out.push(
        `| ${name}${row.failures ? " (!)" : ""} | ${fmtInt(row.rps)} | ${fmtRatio(ratio(row.rps, base?.rps))} | ${fmtRatio(ratio(row.rps, floor?.rps))} | ${fmtRatio(ratio(row.rps, inc?.rps))} | ${(row.spread * 100).toFixed(0)}% | ${row.p99} | ${fmtRatio(ratio(row.p99, base?.p99))} | ${fmtRatio(ratio(row.p99, floor?.p99))} | ${fmtRatio(ratio(row.p99, inc?.p99))} | ${row.cpuPerReq.toFixed(0)} | ${fmtRatio(ratio(floor?.cpuPerReq, row.cpuPerReq))} | ${row.redisCpuPerReq === undefined ? "" : row.redisCpuPerReq.toFixed(0)} |`,
      );
    }
    out.push("");
  }
  out.push(
    "req/s: median of the runs' mean throughput; spread: (max − min) / median of the runs; p99: median of the runs' 99th-percentile latency. " +
      "Ratios above 1 are better for req/s and worse for p99. " +
      "Server CPU µs/req: CPU time (user + system) the server process used per completed request, median of the runs; other load on the machine disturbs it far less than req/s, " +
      "and floor CPU ÷ this is the throughput ratio to the floor that a server with a core to itself would see; redis-server CPU µs/req is what the private redis-server spent per request (INFO cpu). Incumbents: CookieStore → cookie-session, MemoryStore → express-session (MemoryStore), RedisStore → express-session + connect-redis. " +
      "(!) marks rows where some responses were not 2xx or failed.",
    "",
  );
  if (http.skipped.length) out.push(`Skipped (see the notice printed by the run): ${http.skipped.join(", ")}.`, "");
  for (const [impl, notes] of Object.entries(http.notes)) out.push(`Note: ${impl} ${notes.join("; ")}.`, "");
  return out.join("\n");
}

/**
 * The verdict on each target: the median over runs of (this row's req/s ÷ the other row's req/s
 * in the same run). Within a run the two rows are measured in one sweep of the route, seconds
 * apart, so a slow patch of a shared machine that lasts a minute (seen here: the floor's own
 * req/s halving from one run to the next) moves both; a ratio of the two medians, taken from
 * different runs, does not cancel it.
 */
function checkTargets(http) {
  return TARGETS.map((t) => {
    const mine = http.rows[t.impl]?.[t.route];
    const theirs = http.rows[t.vs]?.[t.route];
    const pair = http.pairs.find((p) => !p.control && !p.bound && p.impl === t.impl && p.route === t.route && p.vs === t.vs);
    // The table's cross-check: per run, this row's req/s over the other row's in the same sweep.
    const perRun = mine && theirs ? mine.runs.map((m, k) => ratio(m.rps, theirs.runs[k]?.rps)).filter((r) => r !== undefined) : [];
    // Redis rows: the server's CPU plus redis-server's, both are spent on each request.
    const cpuOf = (row) => (row === undefined ? undefined : row.cpuPerReq + (row.redisCpuPerReq ?? 0));
    const byCpu = ratio(cpuOf(theirs), cpuOf(mine));
    const r = pair?.ratio;
    return { ...t, ratio: r, pairs: pair?.ratios ?? [], perRun: perRun.length ? median(perRun) : undefined, byCpu, met: r === undefined ? null : r >= t.min };
  });
}

function targetsMarkdown(targets, control, bounds = []) {
  const out = [
    "| target | median of paired req/s ratios | the pairs | result | table: median of per-run ratios | table: ratio of CPU/req |",
    "|---|---:|---|---|---:|---:|",
  ];
  for (const t of targets) {
    const result = t.met === null ? "not measured" : t.met ? "met" : "**missed**";
    const fmt = (r) => (r === undefined ? "—" : `${r.toFixed(3)}×`);
    out.push(`| ${t.impl} \`${t.route}\` ≥ ${t.min.toFixed(2)} × ${t.vs} | ${fmt(t.ratio)} | ${t.pairs.map((r) => r.toFixed(2)).join(", ")} | ${result} | ${fmt(t.perRun)} | ${fmt(t.byCpu)} |`);
  }
  if (control !== undefined) {
    out.push(`| control: floor-twin \`${control.route}\` ÷ floor (two identical servers) | ${control.ratio.toFixed(3)}× | ${control.ratios.map((r) => r.toFixed(2)).join(", ")} | no target | — | — |`);
  }
  for (const b of bounds) {
    out.push(`| bound: ${b.impl} \`${b.route}\` ÷ ${b.vs} (${b.what}) | ${b.ratio.toFixed(3)}× | ${b.ratios.map((r) => r.toFixed(2)).join(", ")} | no target | — | — |`);
  }
  out.push(
    "",
    `The verdict is on req/s, as issue 17 defines the targets, measured for each target by ${PAIRS} back-to-back pairs of ${PAIR_SECONDS} s runs of the two rows (alternating which goes first; each row served by ${PROCESSES} process(es) in turn, pair k by process k mod ${PROCESSES}): the median of the pairs' ratios. ` +
      "The table's figures are shown as cross-checks: the median over its runs of the two rows' req/s ratio within a run (measured up to a minute apart), and the ratio of server CPU per request (plus redis-server's for the Redis rows). On this machine both drift with its other load. " +
      "The control row measures floor-twin (the floor again, in processes of its own, started and measured like every row) against the floor in the same way: how far this method puts two identical servers from 1.00 in this run. " +
      "The bound rows measure floor-seal (CookieStore's seal, AES-256-GCM) and floor-seal-signed (its HMAC) against the floor on `write` in the same way: the floor sealing a session of the benchmark's shape into its cookie on every write and doing nothing else, the least a sealed-cookie store can cost. " +
      "floor-redis is the floor with an idle node-redis client connected, as RedisStore `preload: false` has on `untouched`, measured against the floor on `untouched`: what the client costs with no session work. " +
      "floor-redis-session is the least a session kept in Redis does (one GET before the handlers, one SET when it changed, writeHead and end wrapped), measured against express-session + connect-redis: the most RedisStore's target could show.",
  );
  return out.join("\n");
}

/** Runs another bench script in its own process (a clean heap for the memory check) and reads its JSON. */
function runChild(script, extraEnv, args = []) {
  const out = join(BENCH_DIR, "results", `.${script.replace(/\.mjs$/, "")}.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...args, join(BENCH_DIR, script)], {
      stdio: "inherit",
      env: { ...process.env, ...extraEnv, BENCH_OUT: out },
    });
    child.once("exit", async (code) => {
      if (code !== 0) return reject(new Error(`${script} exited with code ${code}`));
      const { readFileSync } = await import("node:fs");
      resolve(JSON.parse(readFileSync(out, "utf8")));
    });
  });
}

/** Which code was measured: the commit, and whether lib/ had uncommitted changes. */
function revision() {
  try {
    const git = (...args) => execFileSync("git", args, { cwd: join(BENCH_DIR, ".."), encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    const dirty = git("status", "--porcelain", "--", "lib") !== "";
    return `${git("rev-parse", "--short", "HEAD")}${dirty ? " with uncommitted changes in lib/" : ""}`;
  } catch {
    return "unknown (not a git checkout)";
  }
}

function commandLine() {
  const vars = Object.keys(env)
    .filter((k) => k.startsWith("BENCH_") && k !== "BENCH_OUT")
    .map((k) => `${k}=${env[k]} `)
    .join("");
  return `${vars}npm run bench`;
}

async function main() {
  installCleanup();
  mkdirSync(join(BENCH_DIR, "results"), { recursive: true });
  const started = Date.now();
  const machine = machineInfo();
  log(`sessionbox benchmark — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, load average ${machine.loadAverage.join(" ")}`);
  const redisStoreBuilt = await hasRedisStore();
  if (!redisStoreBuilt) {
    log("\n!! dist/cjs does not export RedisStore yet: the sessionbox-redis rows are SKIPPED (build again once lib/redis-store.ts exists)\n");
  }
  // Before redis-server starts, so that it is placed with the load generator.
  const placement = SKIP.has("http") ? undefined : placeCpus();
  if (placement) log(`CPU placement: ${placement}`);
  const redis = await startRedis();
  if (redis) log(`redis-server on ${redis.url} (private, nothing on disk)`);

  const report = { placement, machine, revision: revision(), dist: process.env.BENCH_DIST ?? "dist/cjs", command: commandLine(), settings: { DURATION, RUNS, WARMUP, REWARM, CONNECTIONS, SESSIONS, QUICK, PAIRS, PAIR_SECONDS, PROCESSES } };

  if (!SKIP.has("http")) {
    report.http = await runHttp(redis, redisStoreBuilt);
    report.targets = checkTargets(report.http);
    report.control = report.http.pairs.find((p) => p.control); // floor-twin ÷ floor, when measured
    report.bounds = report.http.pairs.filter((p) => p.bound);
    // The correctness checks and micro-benchmarks are not throughput runs: any CPU.
    releaseCpus();
  }
  // A part that fails is reported in the results; the parts that worked are still written.
  report.failures = [];
  if (!SKIP.has("correctness")) {
    log("\nCorrectness under load (bench/correctness.mjs)");
    try {
      report.correctness = await runChild("correctness.mjs", redis ? { REDIS_URL: redis.url, BENCH_REDIS_STORE: redisStoreBuilt ? "1" : "0" } : {}, ["--expose-gc"]);
    } catch (err) {
      report.failures.push(`correctness: ${err.message}`);
    }
  }
  if (!SKIP.has("micro")) {
    log("\nMicro-benchmarks (bench/micro.mjs)");
    try {
      report.micro = await runChild("micro.mjs", {});
    } catch (err) {
      report.failures.push(`micro: ${err.message}`);
    }
  }
  redis?.stop();
  killChildren();
  report.elapsedSeconds = Math.round((Date.now() - started) / 1000);

  const md = [
    "## Benchmark results",
    "",
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, ${machine.platform}; Node ${machine.node}; load average at start ${machine.loadAverage.join(" ")}.`,
    process.env.BENCH_DIST
      ? `Code: the build in ${process.env.BENCH_DIST} (BENCH_DIST; the checkout was at ${report.revision}, which need not be that build's code).`
      : `Code: ${report.revision}.`,
    `Date: ${machine.date}. Command: \`${report.command}\` (${RUNS} interleaved run(s) of ${DURATION} s per implementation and route, ${CONNECTIONS} connections, ${SESSIONS === 1 ? "one session cookie sent with every request" : `${SESSIONS} distinct sessions taken in turn`}, warm-up ${WARMUP} s; took ${Math.round(report.elapsedSeconds / 60)} min).`,
    `Every server runs in its own process; autocannon drives it over 127.0.0.1 from the parent process, on the same machine. CPU placement: ${report.placement ?? "none (no HTTP runs)"}.`,
    "",
  ];
  if (report.http) {
    md.push(httpMarkdown(report.http), "### Targets (issue 17)", "", targetsMarkdown(report.targets, report.control, report.bounds), "");
  }
  if (report.correctness) md.push(correctnessMarkdown(report.correctness), "");
  for (const failure of report.failures) md.push(`**Failed:** ${failure} (see the output above).`, "");
  if (report.micro) md.push(microMarkdown(report.micro), "");
  const markdown = md.join("\n");
  writeFileSync(join(BENCH_DIR, "results", "latest.md"), markdown);
  writeFileSync(join(BENCH_DIR, "results", "latest.json"), `${JSON.stringify(report, null, 2)}\n`);

  log(`\n${markdown}`);
  if (report.targets) {
    const missed = report.targets.filter((t) => t.met === false);
    const unmeasured = report.targets.filter((t) => t.met === null);
    log(`Targets: ${report.targets.length - missed.length - unmeasured.length} met, ${missed.length} missed, ${unmeasured.length} not measured.`);
    if (report.control) log(`Control: floor-twin against the floor on \`${report.control.route}\`, ${report.control.ratio.toFixed(3)}.`);
    for (const b of report.bounds ?? []) log(`Bound: ${b.impl} against ${b.vs} on \`${b.route}\`, ${b.ratio.toFixed(3)}.`);
  }
  log(`Wrote bench/results/latest.md and bench/results/latest.json (${report.elapsedSeconds} s).`);
  if (report.failures.length) {
    console.error(`\n${report.failures.length} part(s) failed:\n  ${report.failures.join("\n  ")}`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  console.error(err);
  killChildren();
  process.exit(1);
});
