// Instructions per request, counted by valgrind (callgrind): a measure of the middleware's
// cost that other load on the machine cannot disturb, for comparing before/after a change
// on a busy or shared machine where req/s swings by tens of percent.
//
//   node bench/instructions.mjs                      (after npm run build; needs valgrind)
//   INSTR_IMPLS=floor,sessionbox-cookie INSTR_ROUTES=read INSTR_N=2000 node bench/instructions.mjs
//
// For each implementation it runs `node --single-threaded bench/micro.mjs request IMPL ROUTE n`
// (n whole requests through the Express app in process, no sockets) under callgrind, with
// n = W and n = W + N; instructions per request = (I(W + N) − I(W)) / N, so the first W requests
// (JIT compilation, caches filling) are left out. --single-threaded keeps V8's compiler and
// garbage collector on the main thread: with their helper threads the count moved by ±15% from
// run to run, without them by under 1%. Slow: each run takes about a minute.
// Redis implementations (e.g. INSTR_IMPLS=sessionbox-redis,express-session+connect-redis)
// get a private redis-server; their count includes the Redis client's work, not Redis's.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, installCleanup, startRedis } from "./common.mjs";

installCleanup();

const IMPLS = (process.env.INSTR_IMPLS ?? "floor,sessionbox-cookie,sessionbox-cookie-signed,sessionbox-memory,cookie-session,express-session").split(",");
const ROUTES = (process.env.INSTR_ROUTES ?? "untouched,read,write").split(",");
const N = Number(process.env.INSTR_N ?? 3000);
const W = Number(process.env.INSTR_WARMUP ?? 1000);

function count(impl, route, n) {
  const run = spawnSync(
    "valgrind",
    ["--tool=callgrind", "--callgrind-out-file=/dev/null", process.execPath, "--single-threaded", join(BENCH_DIR, "micro.mjs"), "request", impl, route, String(n)],
    { encoding: "utf8", env: { ...process.env, ...(redis ? { REDIS_URL: redis.url } : {}) } },
  );
  if (run.error?.code === "ENOENT") throw new Error("valgrind not found: apt-get install valgrind");
  const match = /Collected : (\d+)/.exec(run.stderr);
  if (run.status !== 0 || !match) throw new Error(`callgrind run failed for ${impl} ${route} ${n}:\n${run.stderr.slice(-2000)}`);
  return Number(match[1]);
}

// Redis implementations talk to a private redis-server; their requests include the client's work.
const redis = IMPLS.some((impl) => impl.includes("redis")) ? await startRedis() : null;
const rows = [];
for (const impl of IMPLS) {
  for (const route of ROUTES) {
    const perRequest = (count(impl, route, W + N) - count(impl, route, W)) / N;
    rows.push({ impl, route, perRequest });
    console.log(`${impl.padEnd(26)} ${route.padEnd(9)} ${Math.round(perRequest).toLocaleString("en-US").padStart(10)} instructions/request`);
  }
}

const out = ["| implementation | route | instructions/request | over floor | floor ÷ this |", "|---|---|---:|---:|---:|"];
for (const r of rows) {
  const floor = rows.find((f) => f.impl === "floor" && f.route === r.route);
  out.push(
    `| ${r.impl} | ${r.route} | ${Math.round(r.perRequest).toLocaleString("en-US")} | ${floor ? Math.round(r.perRequest - floor.perRequest).toLocaleString("en-US") : "—"} | ${floor ? `${(floor.perRequest / r.perRequest).toFixed(2)}×` : "—"} |`,
  );
}
redis?.stop();
const md = `Instructions per request (callgrind, node --single-threaded, ${N} in-process requests after ${W} of warm-up, Node ${process.version}):\n\n${out.join("\n")}\n`;
writeFileSync(join(BENCH_DIR, "results", "instructions.md"), md);
console.log(`\n${md}`);
