// Instructions per request over HTTP, counted by valgrind (callgrind) in the server process:
// like instructions.mjs, a count that other load on the machine barely moves, but of the real
// server (sockets, Node's HTTP parser and writer, Express's per-request objects), which the
// in-process count misses. (Express gives every request and response a hidden class of its
// own; the cost of touching them showed here and not in process.)
//
//   node bench/instructions-http.mjs                  (after npm run build; needs valgrind)
//   IH_IMPLS=floor,sessionbox-cookie IH_ROUTES=read node bench/instructions-http.mjs
//   BENCH_DIST=/abs/other/dist/cjs node bench/instructions-http.mjs   (another build)
//
// For each implementation and route it starts `node --single-threaded bench/server.mjs IMPL`
// under callgrind, sends IH_WARMUP keep-alive requests (default 10,000; the JIT settles),
// zeroes the counters (callgrind_control -z), sends IH_N more (default 5,000) and dumps them
// (callgrind_control -d): instructions per request = that dump's total / IH_N. IH_CONNECTIONS
// (default 10) requests are in flight at a time. Up to IH_PARALLEL (default 3) servers are
// measured at once; the count moves by a few percent with that, so compare rows of one run.
// The client runs outside valgrind; the kernel's work is not counted. Slow: about a minute and a
// half per row.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import { join } from "node:path";
import { BENCH_DIR, freePort, installCleanup, setupSession, startRedis } from "./common.mjs";

installCleanup();

const IMPLS = (process.env.IH_IMPLS ?? "floor,sessionbox-cookie,sessionbox-memory").split(",");
const ROUTES = (process.env.IH_ROUTES ?? "untouched,read,write").split(",");
const N = Number(process.env.IH_N ?? 5000);
const WARMUP = Number(process.env.IH_WARMUP ?? 10_000);
const CONNECTIONS = Number(process.env.IH_CONNECTIONS ?? 10);
const PARALLEL = Number(process.env.IH_PARALLEL ?? 3);

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

async function measure(impl, route, redis) {
  const dir = mkdtempSync(join(os.tmpdir(), "sessionbox-ih-"));
  const port = await freePort();
  const child = spawn(
    "valgrind",
    ["--tool=callgrind", `--callgrind-out-file=${join(dir, "cg.out")}`, process.execPath, "--single-threaded", join(BENCH_DIR, "server.mjs"), impl, String(port)],
    { env: { ...process.env, ...(redis ? { REDIS_URL: redis.url } : {}), NODE_ENV: "production" }, stdio: ["ignore", "pipe", "pipe"] },
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
    const cookie = await setupSession(port);
    await drive(port, `/${route}`, cookie, WARMUP, CONNECTIONS);
    execFileSync("callgrind_control", ["-z", String(child.pid)], { stdio: "ignore" });
    await drive(port, `/${route}`, cookie, N, CONNECTIONS);
    execFileSync("callgrind_control", ["-d", String(child.pid)], { stdio: "ignore" });
    // The dump after zeroing is the file with the highest part number.
    const dumps = readdirSync(dir).filter((name) => /^cg\.out\.\d+$/.test(name));
    const last = dumps.sort((a, b) => Number(a.split(".").pop()) - Number(b.split(".").pop())).pop();
    if (last === undefined) throw new Error(`callgrind wrote no dump for ${impl} ${route}:\n${log.slice(-2000)}`);
    const totals = /^(?:summary|totals):\s+(\d+)/m.exec(readFileSync(join(dir, last), "utf8"));
    if (totals === null) throw new Error(`no totals in the callgrind dump for ${impl} ${route}`);
    return Number(totals[1]) / N;
  } finally {
    child.kill("SIGTERM");
    await exited;
    rmSync(dir, { recursive: true, force: true });
  }
}

const redis = IMPLS.some((impl) => impl.includes("redis")) ? await startRedis() : null;
const jobs = ROUTES.flatMap((route) => IMPLS.map((impl) => ({ impl, route })));
const results = new Map();
for (let i = 0; i < jobs.length; i += PARALLEL) {
  const batch = jobs.slice(i, i + PARALLEL);
  const counts = await Promise.all(batch.map(({ impl, route }) => measure(impl, route, redis)));
  batch.forEach((job, k) => {
    results.set(`${job.impl} ${job.route}`, counts[k]);
    console.log(`${job.impl.padEnd(32)} ${job.route.padEnd(9)} ${Math.round(counts[k]).toLocaleString("en-US").padStart(10)} instructions/request`);
  });
}
for (const route of ROUTES) {
  const floor = results.get(`floor ${route}`);
  if (floor === undefined) continue;
  for (const impl of IMPLS) {
    if (impl !== "floor") console.log(`${route}: floor ÷ ${impl} = ${(floor / results.get(`${impl} ${route}`)).toFixed(3)}`);
  }
}
redis?.stop();
