// Shared by run.mjs, correctness.mjs, profile.mjs and the instruction counters: a private
// redis-server, benchmark servers in child processes, a tiny HTTP client, clean-up of every
// child on exit, and which of V8's functions are its garbage collector.
import { execFileSync, fork, spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(BENCH_DIR, "..");
/**
 * The build under test: dist/cjs, or BENCH_DIST (an absolute path to another build's cjs
 * folder, e.g. a copy of dist/cjs from before a change) to compare two builds.
 */
export const DIST = process.env.BENCH_DIST ?? join(ROOT, "dist", "cjs");

const children = new Set();

/**
 * CPU placement for the throughput runs (run.mjs, ab.mjs): the server under test gets the first
 * CPU this process may use to itself, and this process (autocannon), redis-server and the
 * other tools the rest. Unplaced, on a 2-core machine the scheduler at times ran the load
 * generator on the server's core, and the server's req/s then measured the placement as much
 * as the server: floor against floor (A/A), 8 rounds of 3 s, gave ratios from 0.84 to 1.16
 * unplaced and from 0.90 to 1.07 placed (bench/FINDINGS.md, "Method"). Each server runs alone on one
 * core, as a server of a one-process-per-core deployment does; its garbage collector's helper
 * threads share that core. `BENCH_PIN=0` turns it off; it is off without `taskset` or with
 * fewer than 2 CPUs.
 */
let placement = null;

/** Places this process (see above) and returns a description of the placement, or why there is none. */
export function placeCpus() {
  if (process.env.BENCH_PIN === "0") return "not placed (BENCH_PIN=0): the OS schedules servers and load generator on any CPU";
  let cpus;
  try {
    // "pid 123's current affinity list: 0,1" or "0-3"
    const list = execFileSync("taskset", ["-c", "-p", String(process.pid)], { encoding: "utf8" }).split(":").pop().trim();
    cpus = list.split(",").flatMap((part) => {
      const [a, b = a] = part.split("-").map(Number);
      return Array.from({ length: b - a + 1 }, (_, i) => a + i);
    });
  } catch {
    return "not placed (no taskset): the OS schedules servers and load generator on any CPU";
  }
  if (cpus.length < 2) return `not placed (one CPU: ${cpus.join(",")})`;
  placement = { server: String(cpus[0]), rest: cpus.slice(1).join(","), all: cpus.join(",") };
  pin(process.pid, placement.rest);
  return `each server alone on CPU ${placement.server}; autocannon (this process) and redis-server on CPU ${placement.rest}`;
}

/** Ends the placement: this process (and what it starts from now on) may use every CPU again. */
export function releaseCpus() {
  if (placement) pin(process.pid, placement.all);
  placement = null;
}

/** Restricts every thread of `pid` to `cpus` (threads it starts later inherit it). */
function pin(pid, cpus) {
  execFileSync("taskset", ["-a", "-c", "-p", cpus, String(pid)], { stdio: "ignore" });
}

/** Kills every child we started (servers, redis-server). Safe to call more than once. */
export function killChildren() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

let handlersInstalled = false;
/** Children die with us: on normal exit, on ctrl-c, on SIGTERM, on a crash. */
export function installCleanup() {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", killChildren);
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(signal, () => {
      console.error(`\n${signal}: stopping benchmark servers and redis-server`);
      killChildren();
      process.exit(130);
    });
  }
  process.on("uncaughtException", (err) => {
    console.error(err);
    killChildren();
    process.exit(1);
  });
  process.on("unhandledRejection", (err) => {
    console.error(err);
    killChildren();
    process.exit(1);
  });
}

/** A free TCP port on 127.0.0.1 (the OS picks it; there is a tiny window before we bind it again). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Starts a private redis-server on a free loopback port, keeping nothing on disk.
 * Resolves to `{ url, stop }`, or to `null` (with a loud notice) when redis-server is not installed.
 */
export async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const ok = await new Promise((resolve) => {
    let out = "";
    child.once("error", (err) => {
      if (err.code === "ENOENT") resolve(false);
      else resolve(err);
    });
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("Ready to accept connections")) resolve(true);
    });
    child.once("exit", (code) => resolve(new Error(`redis-server exited with code ${code}:\n${out}`)));
  });
  if (ok === false) {
    const bar = "!".repeat(78);
    console.error(`\n${bar}\n!! redis-server not found: the Redis rows (sessionbox-redis, express-session+connect-redis)\n!! and the lost-update check are SKIPPED. Install it with:\n!!     apt-get install redis-server\n!! (the benchmark starts its own instance on a free port; nothing else is needed)\n${bar}\n`);
    return null;
  }
  if (ok instanceof Error) throw ok;
  children.add(child);
  child.stdout.resume();
  if (placement) pin(child.pid, placement.rest);
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: () => {
      children.delete(child);
      child.kill("SIGTERM");
    },
  };
}

/**
 * Starts `bench/server.mjs IMPL` in its own process and waits for its ready message.
 * Resolves to `{ impl, port, child, stop }`; `stop()` resolves when the process has exited.
 */
export function startServer(impl, { env = {}, execArgv = [], port = 0 } = {}) {
  const child = fork(join(BENCH_DIR, "server.mjs"), [impl, String(port)], {
    cwd: ROOT,
    env: { ...process.env, ...env, NODE_ENV: "production" },
    execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(child);
  if (placement) pin(child.pid, placement.server);
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return new Promise((resolve, reject) => {
    child.once("message", (msg) => {
      if (msg?.ready) {
        // Again, now that Node has started all its threads.
        if (placement) pin(child.pid, placement.server);
        const pending = new Map();
        let next = 0;
        child.on("message", (reply) => {
          if (reply?.cpu === undefined) return;
          pending.get(reply.cpu)?.(reply.usage);
          pending.delete(reply.cpu);
        });
        resolve({
          impl,
          port: msg.port,
          child,
          /** The server process's `process.cpuUsage()` (µs of user and system CPU time). */
          cpu: () =>
            new Promise((done) => {
              const id = next++;
              pending.set(id, done);
              child.send({ cpu: id });
            }),
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
            await exited;
            children.delete(child);
          },
        });
      } else reject(new Error(`${impl} server failed to start: ${msg?.error ?? JSON.stringify(msg)}`));
    });
    child.once("exit", (code) => reject(new Error(`${impl} server exited with code ${code} before it was ready`)));
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

/** GET over loopback. Resolves to `{ status, headers, body }`. */
export function get(port, path, cookie) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent, headers: cookie ? { cookie } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`GET ${path} on port ${port} timed out`)));
  });
}

/** The `Cookie` request header that a browser would send back after this response's `Set-Cookie`s. */
export function cookieHeaderFrom(res) {
  const setCookies = res.headers["set-cookie"] ?? [];
  return setCookies
    .map((line) => line.split(";")[0])
    .filter((pair) => pair.slice(pair.indexOf("=") + 1) !== "")
    .join("; ");
}

/** Creates the benchmark session on a server and returns the cookie header to send with every request. */
export async function setupSession(port) {
  const res = await get(port, "/setup");
  if (res.status !== 200) throw new Error(`GET /setup answered ${res.status}: ${res.body}`);
  const cookie = cookieHeaderFrom(res);
  if (!cookie) throw new Error("GET /setup set no cookie");
  return cookie;
}

/**
 * The garbage collector's functions in a callgrind dump, by name: instructions-http.mjs counts
 * requests without them, and callgrind-jit.mjs's "gc" area is the same functions.
 */
export const GC_FUNCTION = /v8::internal::(?:\w+::)*(?:Scaveng|Mark|Sweep|Evacuat|RecordMigrated|LiveObject|BodyDescriptorBase|Heap::|MemoryChunk|SlotSet|RememberedSet|ConcurrentMarking|GlobalHandles|IncrementalMarking|ArrayBufferSweeper|PagedSpace|Compact|WeakObjects|EphemeronHashTable|HeapObject::SizeFromMap)|heap::base::/;

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model?.trim() ?? "unknown",
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    date: new Date().toISOString(),
    loadAverage: os.loadavg().map((n) => n.toFixed(2)),
  };
}

/** Whether the built package exports RedisStore (another part of the project adds it). */
export async function hasRedisStore() {
  const { createRequire } = await import("node:module");
  const require = createRequire(import.meta.url);
  try {
    return typeof require(DIST).RedisStore === "function";
  } catch (err) {
    throw new Error(`cannot load the built package from dist/cjs (run npm run build first): ${err.message}`);
  }
}

export function fmtInt(n) {
  return Math.round(n).toLocaleString("en-US");
}
