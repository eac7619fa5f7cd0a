// Shared by run.mjs, correctness.mjs and profile.mjs: a private redis-server, benchmark
// servers in child processes, a tiny HTTP client, and clean-up of every child on exit.
import { fork, spawn } from "node:child_process";
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
  const exited = new Promise((resolve) => child.once("exit", resolve));
  return new Promise((resolve, reject) => {
    child.once("message", (msg) => {
      if (msg?.ready) {
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
