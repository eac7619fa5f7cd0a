// Instructions per request over HTTP, counted by valgrind (callgrind) in the server process:
// like instructions.mjs, a count that other load on the machine barely moves, but of the real
// server (sockets, Node's HTTP parser and writer, Express's per-request objects), which the
// in-process count misses. (Express gives every request and response a hidden class of its
// own; the cost of touching them showed here and not in process.)
//
//   node bench/instructions-http.mjs                  (after npm run build; needs valgrind)
//   IH_IMPLS=floor,sessionbox-cookie IH_ROUTES=read node bench/instructions-http.mjs
//   BENCH_DIST=/abs/other/dist/cjs node bench/instructions-http.mjs   (another build)
//   IH_IMPLS=floor,sessionbox-cookie,sessionbox-cookie@/abs/other/dist/cjs ...  (two builds side by side)
//
// For each implementation and route it starts `node --single-threaded bench/server.mjs IMPL`
// under callgrind, sends IH_WARMUP keep-alive requests (default 10,000, a fresh session every
// 1,000; the JIT settles), takes one more fresh session for 200 requests, zeroes the counters
// (callgrind_control -z), sends IH_N more with it (default 5,000) and dumps them
// (callgrind_control -d): instructions per request = that dump's total / IH_N. IH_CONNECTIONS
// (default 10) requests are in flight at a time. Up to IH_PARALLEL (default 3) servers are
// measured at once; the count moves by a few percent with that, so compare rows of one run.
// The client runs outside valgrind; the kernel's work is not counted. Slow: about a minute and a
// half per row.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { BENCH_DIR, freePort, GC_FUNCTION, installCleanup, setupSession, startRedis } from "./common.mjs";

installCleanup();

const IMPLS = (process.env.IH_IMPLS ?? "floor,sessionbox-cookie,sessionbox-memory").split(",");
const ROUTES = (process.env.IH_ROUTES ?? "untouched,read,write").split(",");
const N = Number(process.env.IH_N ?? 5000);
const WARMUP = Number(process.env.IH_WARMUP ?? 10_000);
const CONNECTIONS = Number(process.env.IH_CONNECTIONS ?? 10);
const PARALLEL = Number(process.env.IH_PARALLEL ?? 3);
/** More Node flags for the servers, e.g. `--perf-basic-prof` (its /tmp/perf-PID.map names the JIT code in a kept dump). */
const NODE_ARGS = process.env.IH_NODE_ARGS ? process.env.IH_NODE_ARGS.split(" ") : [];

/** `count` keep-alive GETs of `path`, `connections` at a time. */
async function drive(port, path, cookie, count, connections) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let left = count;
  const one = () =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: "127.0.0.1", port, path, agent, headers: { cookie } }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`GET ${path} answered ${res.statusCode}`));
        res.resume();
        res.on("end", resolve);
      });
      req.on("error", reject);
    });
  const worker = async () => {
    while (left-- > 0) await one();
  };
  await Promise.all(Array.from({ length: connections }, worker));
  agent.destroy();
}

async function measure(spec, route, redis) {
  // IMPL@/abs/dist/cjs measures another build, as in ab.mjs.
  const [impl, dist] = spec.split("@");
  const dir = mkdtempSync(join(os.tmpdir(), "sessionbox-ih-"));
  const port = await freePort();
  const child = spawn(
    "valgrind",
    ["--tool=callgrind", `--callgrind-out-file=${join(dir, "cg.out")}`, process.execPath, "--single-threaded", ...NODE_ARGS, join(BENCH_DIR, "server.mjs"), impl, String(port)],
    { env: { ...process.env, ...(redis ? { REDIS_URL: redis.url } : {}), ...(dist ? { BENCH_DIST: dist } : {}), BENCH_REDIS_TIMEOUT: "60000", NODE_ENV: "production" }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout.on("data", (chunk) => (log += chunk));
  child.stderr.on("data", (chunk) => (log += chunk));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  try {
    await new Promise((resolve, reject) => {
      child.once("error", (err) => reject(err.code === "ENOENT" ? new Error("valgrind not found: apt-get install valgrind") : err));
      child.once("exit", (code) => reject(new Error(`${impl} under valgrind exited with code ${code}:\n${log.slice(-2000)}`)));
      const poll = setInterval(() => {
        if (log.includes(`READY ${port}`)) {
          clearInterval(poll);
          resolve();
        }
      }, 100);
    });
    // Fresh sessions every 1,000 requests: under valgrind the warm-up takes minutes, and a
    // session older than touchAfter (60 s by default) is re-issued on every read, so a read
    // route would run (and the JIT would settle on) a write's code, then re-optimize while
    // counted.
    for (let done = 0; done < WARMUP; done += 1000) await drive(port, `/${route}`, await setupSession(port), Math.min(1000, WARMUP - done), CONNECTIONS);
    const cookie = await setupSession(port);
    await drive(port, `/${route}`, cookie, 200, CONNECTIONS);
    execFileSync("callgrind_control", ["-z", String(child.pid)], { stdio: "ignore" });
    const started = Date.now();
    await drive(port, `/${route}`, cookie, N, CONNECTIONS);
    const seconds = (Date.now() - started) / 1000;
    if (seconds > 50) console.warn(`!! ${spec} ${route}: the counted requests took ${seconds.toFixed(0)} s, near touchAfter (60 s): lower IH_N`);
    execFileSync("callgrind_control", ["-d", String(child.pid)], { stdio: "ignore" });
    // The dump after zeroing is the file with the highest part number.
    const dumps = readdirSync(dir).filter((name) => /^cg\.out\.\d+$/.test(name));
    const last = dumps.sort((a, b) => Number(a.split(".").pop()) - Number(b.split(".").pop())).pop();
    if (last === undefined) throw new Error(`callgrind wrote no dump for ${impl} ${route}:\n${log.slice(-2000)}`);
    // IH_KEEP=/some/dir keeps each dump there (IMPL-ROUTE.out) for callgrind_annotate.
    if (process.env.IH_KEEP) copyFileSync(join(dir, last), join(process.env.IH_KEEP, `${spec.replace(/[^\w.-]+/g, "_")}-${route}.out`));
    const totals = /^(?:summary|totals):\s+(\d+)/m.exec(readFileSync(join(dir, last), "utf8"));
    if (totals === null) throw new Error(`no totals in the callgrind dump for ${impl} ${route}`);
    return { total: Number(totals[1]) / N, gc: gcInstructions(join(dir, last)) / N };
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The garbage collector's instructions in a dump: the self cost of V8's heap functions
 * (GC_FUNCTION), read with callgrind_annotate. Whether a major collection falls inside the
 * counted requests moved the total by tens of thousands of instructions per request between
 * runs of one build; the count without them compares builds more closely (it still moved by up
 * to 30,000).
 */
function gcInstructions(file) {
  const out = execFileSync("callgrind_annotate", ["--inclusive=no", "--threshold=100", "--auto=no", file], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  let gc = 0;
  for (const line of out.split("\n")) {
    const m = /^\s*([\d,]+) \([^)]*\)\s+(.*)$/.exec(line);
    if (m && GC_FUNCTION.test(m[2])) gc += Number(m[1].replaceAll(",", ""));
  }
  return gc;
}

const redis = IMPLS.some((impl) => impl.includes("redis")) ? await startRedis() : null;
const jobs = ROUTES.flatMap((route) => IMPLS.map((impl) => ({ impl, route })));
const results = new Map();
for (let i = 0; i < jobs.length; i += PARALLEL) {
  const batch = jobs.slice(i, i + PARALLEL);
  const counts = await Promise.all(batch.map(({ impl, route }) => measure(impl, route, redis)));
  batch.forEach((job, k) => {
    results.set(`${job.impl} ${job.route}`, counts[k]);
    const { total, gc } = counts[k];
    const fmt = (n) => Math.round(n).toLocaleString("en-US").padStart(10);
    console.log(`${job.impl.padEnd(32)} ${job.route.padEnd(9)} ${fmt(total)} instructions/request (without GC ${fmt(total - gc)}; GC ${fmt(gc)})`);
  });
}
const fmt = (n) => Math.round(n).toLocaleString("en-US");
const table = ["| implementation | route | instructions/request | without GC | ÷ floor's, without GC |", "|---|---|---:|---:|---:|"];
for (const route of ROUTES) {
  const floor = results.get(`floor ${route}`);
  for (const impl of IMPLS) {
    const { total, gc } = results.get(`${impl} ${route}`);
    const ratio = floor === undefined ? "—" : `${((total - gc) / (floor.total - floor.gc)).toFixed(3)}×`;
    const [name, dist] = impl.split("@");
    table.push(`| ${dist ? `${name} (build in \`${dist}\`)` : name} | ${route} | ${fmt(total)} | ${fmt(total - gc)} | ${ratio} |`);
  }
}
redis?.stop();
const md = `Instructions per request over HTTP (\`bench/instructions-http.mjs\`: callgrind, node --single-threaded, ${N} keep-alive requests after ${WARMUP} of warm-up, ${CONNECTIONS} in flight, Node ${process.version}). The last column is the count without the garbage collector's, divided by the floor's on the same route.\n\n${table.join("\n")}\n`;
writeFileSync(join(BENCH_DIR, "results", "instructions-http.md"), md);
console.log(`\n${md}`);
