// `npm run faults`: RedisStore while Redis fails, a run anyone can repeat (issue 19).
//
// For each scenario: a private redis-server on a free loopback port (its own temporary folder;
// AOF with appendfsync always where the scenario says), the app of bench/faults-app.mjs in a
// process of its own, and CLIENTS concurrent clients for SECONDS. Each request appends a unique
// value to the client's own session; a client starts a new session every ROTATE requests, so
// that loads stay small. FAULT_AT seconds in, the fault. Afterwards every session is read back
// from Redis directly, and every value that was answered 200 is looked for.
//
// Per scenario it prints requests, statuses, p99 and max latency, the time to recover (from the
// fault's end to the last failed answer), the app's heap after GC before and after, and the 200s
// missing from Redis, in three counts: of requests sent after the fault began, of those in flight
// when it began (sent before, answered after), and of all. A Redis killed without AOF loses what it
// had, including the saves of requests in flight that it executed just before it died; every
// other count must be 0, and the run exits with 1 when one is not. Options (environment): FAULTS_CLIENTS (50),
// FAULTS_SECONDS (20), FAULTS_FAULT_AT (5), FAULTS_FAULT_SECONDS (5), FAULTS_TIMEOUT (the store's
// timeout, 2000 ms), FAULTS_ONLY (scenario ids, comma-separated), FAULTS_JSON (a file to write
// the results to). Needs `npm run build` first (npm run faults does it) and redis-server 7.
import { spawn, fork } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { BENCH_DIR, fmtInt, freePort, machineInfo } from "./common.mjs";

const require = createRequire(import.meta.url);
const { createClient } = require("redis");

const CLIENTS = Number(process.env.FAULTS_CLIENTS ?? 50);
const SECONDS = Number(process.env.FAULTS_SECONDS ?? 20);
const FAULT_AT = Number(process.env.FAULTS_FAULT_AT ?? 5);
const FAULT_SECONDS = Number(process.env.FAULTS_FAULT_SECONDS ?? 5);
const TIMEOUT = Number(process.env.FAULTS_TIMEOUT ?? 2000);
const ONLY = process.env.FAULTS_ONLY?.split(",").map((id) => id.trim());
/** Requests a client makes in one session before it starts another. */
const ROTATE = 100;
/** A request gives up after this long (the store itself gives up after TIMEOUT). */
const REQUEST_TIMEOUT = 15_000;
const MB = 2 ** 20;

const SCENARIOS = [
  { id: "none", name: "no fault", aof: false, fault: null },
  { id: "sigstop", name: `SIGSTOP for ${FAULT_SECONDS} s`, aof: false, fault: "sigstop" },
  { id: "sleep", name: `DEBUG SLEEP ${FAULT_SECONDS}`, aof: false, fault: "sleep" },
  { id: "kill-aof", name: `kill -9, restart after ${FAULT_SECONDS} s, AOF`, aof: true, fault: "kill" },
  { id: "kill", name: `kill -9, restart after ${FAULT_SECONDS} s, no AOF`, aof: false, fault: "kill" },
  { id: "restart", name: "kill -9, restart at once, no AOF", aof: false, fault: "restart" },
].filter((scenario) => !ONLY || ONLY.includes(scenario.id));

const children = new Set();
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(130));

/** A redis-server on `port` keeping its files (AOF) in `dir`; resolves once it answers PING. */
async function startRedis(port, dir, aof) {
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--enable-debug-command", "local"];
  args.push("--appendonly", aof ? "yes" : "no", ...(aof ? ["--appendfsync", "always"] : []));
  const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  const failed = new Promise((_, reject) => child.once("error", reject));
  const deadline = performance.now() + 10_000;
  while (!(await Promise.race([ping(port), failed]))) {
    if (child.exitCode !== null || performance.now() > deadline) throw new Error(`redis-server did not start on port ${port} (is redis-server 7 installed? apt-get install redis-server)`);
    await sleep(20);
  }
  return child;
}

/** Kills `child` with SIGKILL and waits until it has exited. */
async function kill(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** One raw command on a connection of its own (not the app's); resolves with the reply, or "" on error. */
function command(port, line, timeout = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const done = (reply) => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(timeout, () => done(""));
    socket.once("error", () => done(""));
    socket.once("data", (data) => done(data.toString()));
    socket.write(`${line}\r\n`);
  });
}

async function ping(port) {
  return (await command(port, "PING")).startsWith("+PONG");
}

const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS + 1 });

/** POST over loopback, bounded by REQUEST_TIMEOUT; resolves to `{ status, cookie, body }`, status being an error code when it failed. */
function post(port, path, cookie) {
  return new Promise((resolve) => {
    const req = http.request({ host: "127.0.0.1", port, path, method: "POST", agent, headers: cookie ? { cookie } : {} }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode, setCookie: res.headers["set-cookie"] ?? [], body }));
      res.on("error", (err) => resolve({ status: err.code ?? "error", setCookie: [], body: "" }));
    });
    req.setTimeout(REQUEST_TIMEOUT, () => req.destroy(Object.assign(new Error("timeout"), { code: "timeout" })));
    req.on("error", (err) => resolve({ status: err.code ?? "error", setCookie: [], body: "" }));
    req.end();
  });
}

/**
 * A client: appends a unique value to its session with each request until `until()` is false,
 * keeping its cookie as a browser would. Records every request, and each 200 with its session id.
 */
async function client(port, name, until, log) {
  let cookie;
  for (let n = 0; until(); n++) {
    if (n % ROTATE === 0) cookie = undefined;
    const key = `v${n}`;
    const value = `${name}:${n}`;
    const sent = performance.now();
    const res = await post(port, `/append?key=${key}&value=${encodeURIComponent(value)}`, cookie);
    const answered = performance.now();
    log.requests.push({ status: res.status, sent, answered });
    if (res.status === 200) log.ok.push({ id: JSON.parse(res.body).id, key, value, sent, answered });
    for (const line of res.setCookie) {
      const pair = line.split(";")[0];
      if (!pair.startsWith("session=")) continue;
      cookie = /;\s*max-age=0\b/i.test(line) ? undefined : pair;
    }
  }
}

/** Runs CLIENTS clients for `seconds`, calling `fault(t0)` alongside; returns their log. */
async function load(port, seconds, fault) {
  const log = { requests: [], ok: [] };
  const start = performance.now();
  const end = start + seconds * 1000;
  const until = () => performance.now() < end;
  const faulted = fault ? fault(start) : Promise.resolve(undefined);
  await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(port, `c${c}-${Math.round(start)}`, until, log)));
  return { log, start, window: await faulted };
}

/** The app's heap after two full collections, in bytes. */
function heapOf(app) {
  return new Promise((resolve) => {
    app.once("message", (msg) => resolve(msg.heap));
    app.send({ heap: true });
  });
}

/** The fault of `scenario`, FAULT_AT s after `start`: resolves to when it began and ended (performance.now()). */
async function injectFault(scenario, redis, start) {
  await sleep(Math.max(0, start + FAULT_AT * 1000 - performance.now()));
  const began = performance.now();
  switch (scenario.fault) {
    case "sigstop":
      redis.child.kill("SIGSTOP");
      await sleep(FAULT_SECONDS * 1000);
      redis.child.kill("SIGCONT");
      return { began, ended: performance.now() };
    case "sleep": {
      // The reply comes when the sleep is over.
      await command(redis.port, `DEBUG SLEEP ${FAULT_SECONDS}`, FAULT_SECONDS * 1000 + 5_000);
      return { began, ended: performance.now() };
    }
    case "kill":
    case "restart":
      await kill(redis.child);
      if (scenario.fault === "kill") await sleep(FAULT_SECONDS * 1000);
      redis.child = await startRedis(redis.port, redis.dir, scenario.aof);
      return { began, ended: performance.now() };
  }
}

/** Reads every session the 200s went to from Redis, and returns the 200s whose value is not there. */
async function missingFrom(url, ok) {
  const raw = createClient({ url });
  raw.on("error", () => undefined);
  await raw.connect();
  try {
    const ids = [...new Set(ok.map((entry) => entry.id))];
    const stored = new Map();
    for (let i = 0; i < ids.length; i += 200) {
      const batch = ids.slice(i, i + 200);
      const hashes = await Promise.all(batch.map((id) => raw.hGetAll(`sess:${id}`)));
      batch.forEach((id, j) => stored.set(id, hashes[j]));
    }
    return ok.filter((entry) => stored.get(entry.id)[entry.key] !== JSON.stringify(entry.value)).map((entry) => ({ ...entry, keyGone: Object.keys(stored.get(entry.id)).length === 0 }));
  } finally {
    await raw.close();
  }
}

async function runScenario(scenario) {
  const dir = mkdtempSync(join(tmpdir(), "sessionbox-faults-"));
  const port = await freePort();
  const redis = { port, dir, child: await startRedis(port, dir, scenario.aof) };
  const app = fork(join(BENCH_DIR, "faults-app.mjs"), [], {
    env: { ...process.env, REDIS_URL: `redis://127.0.0.1:${port}`, FAULTS_TIMEOUT: String(TIMEOUT), NODE_ENV: "production" },
    execArgv: ["--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  children.add(app);
  try {
    const appPort = await new Promise((resolve, reject) => {
      app.once("message", (msg) => resolve(msg.port));
      app.once("exit", (code) => reject(new Error(`bench/faults-app.mjs exited with code ${code} before it was ready`)));
    });
    await load(appPort, Math.min(1, SECONDS / 4)); // warm-up, not counted
    const heapBefore = await heapOf(app);
    const { log, start, window } = await load(appPort, SECONDS, scenario.fault && ((t0) => injectFault(scenario, redis, t0)));
    await sleep(200);
    const heapAfter = await heapOf(app);
    const missing = await missingFrom(`redis://127.0.0.1:${port}`, log.ok);
    return summarize(scenario, log, start, window, heapBefore, heapAfter, missing);
  } finally {
    app.disconnect();
    await new Promise((resolve) => (app.exitCode !== null ? resolve() : app.once("exit", resolve)));
    await kill(redis.child);
    rmSync(dir, { recursive: true, force: true });
  }
}

function percentile(sorted, p) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summarize(scenario, log, start, window, heapBefore, heapAfter, missing) {
  const statuses = {};
  for (const { status } of log.requests) statuses[status] = (statuses[status] ?? 0) + 1;
  const latencies = log.requests.map((r) => r.answered - r.sent).sort((a, b) => a - b);
  const failed = log.requests.filter((r) => r.status !== 200);
  const lastFailure = failed.reduce((last, r) => Math.max(last, r.answered), -Infinity);
  const sentAfter = (entry) => window !== undefined && entry.sent >= window.began;
  const inFlight = (entry) => window !== undefined && entry.sent < window.began && entry.answered >= window.began;
  const lateness = missing.filter(inFlight).map((entry) => entry.answered - window.began);
  return {
    id: scenario.id,
    scenario: scenario.name,
    aof: scenario.aof,
    // Redis is killed without AOF: what it held is gone, in-flight saves it executed included.
    losesData: (scenario.fault === "kill" || scenario.fault === "restart") && !scenario.aof,
    requests: log.requests.length,
    statuses,
    ok: log.ok.length,
    okSentAfterFault: log.ok.filter(sentAfter).length,
    okInFlight: log.ok.filter(inFlight).length,
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? 0,
    fault: window && { began: window.began - start, ended: window.ended - start },
    // From the fault's end until the last failed answer (0 when none came after it).
    recovery: window === undefined ? null : Math.max(0, lastFailure - window.ended),
    heapBefore,
    heapAfter,
    missingSentAfterFault: missing.filter(sentAfter).length,
    missingInFlight: lateness.length,
    // The latest of those answered, in ms after the fault began: the client's event loop adds its delay.
    missingInFlightLatest: lateness.length === 0 ? null : Math.max(...lateness),
    missing: missing.length,
    examples: missing.slice(0, 5).map((entry) => ({ id: entry.id, key: entry.key, sent: Math.round(entry.sent - start), answered: Math.round(entry.answered - start), keyGone: entry.keyGone })),
  };
}

function table(results) {
  const rows = [
    "| scenario | requests | statuses | p99 ms | max ms | recovered in ms | heap MB before → after | 200s missing from Redis: sent after the fault began / in flight then / all |",
    "|---|---:|---|---:|---:|---:|---:|---|",
  ];
  for (const r of results) {
    const statuses = Object.entries(r.statuses).map(([status, n]) => `${status}: ${fmtInt(n)}`).join(", ");
    const recovery = r.recovery === null ? "—" : fmtInt(r.recovery);
    const count = (missing, of) => (r.fault ? `${fmtInt(missing)} of ${fmtInt(of)}` : "—");
    const missing = `${count(r.missingSentAfterFault, r.okSentAfterFault)} / ${count(r.missingInFlight, r.okInFlight)} / ${fmtInt(r.missing)} of ${fmtInt(r.ok)}`;
    rows.push(`| ${r.scenario} | ${fmtInt(r.requests)} | ${statuses} | ${fmtInt(r.p99)} | ${fmtInt(r.max)} | ${recovery} | ${(r.heapBefore / MB).toFixed(1)} → ${(r.heapAfter / MB).toFixed(1)} | ${missing} |`);
  }
  return rows.join("\n");
}

async function main() {
  const machine = machineInfo();
  console.log(`npm run faults: ${CLIENTS} clients, ${SECONDS} s per scenario, the fault ${FAULT_AT} s in for ${FAULT_SECONDS} s, store timeout ${TIMEOUT} ms`);
  console.log(`${machine.cpu}, ${machine.cores} cores, ${machine.node}, ${machine.platform}, load average ${machine.loadAverage.join(" ")}, ${machine.date}\n`);
  const results = [];
  for (const scenario of SCENARIOS) {
    process.stdout.write(`${scenario.name} ...`);
    const result = await runScenario(scenario);
    results.push(result);
    console.log(` ${fmtInt(result.requests)} requests, ${fmtInt(result.missing)} of ${fmtInt(result.ok)} 200s missing`);
    for (const example of result.examples) console.log(`  missing: ${JSON.stringify(example)}`);
  }
  console.log(`\n${table(results)}\n`);
  if (process.env.FAULTS_JSON) writeFileSync(process.env.FAULTS_JSON, JSON.stringify({ machine, results }, null, 2));
  for (const r of results.filter((result) => result.missingInFlight > 0)) {
    console.log(`${r.scenario}: ${r.missingInFlight} of the ${r.okInFlight} 200s in flight when Redis was killed are not in Redis: saves it executed and acknowledged before it died (answered at most ${fmtInt(r.missingInFlightLatest)} ms after the kill)`);
  }
  const broken = results.filter((r) => r.missingSentAfterFault > 0 || (!r.losesData && r.missing > 0) || r.ok === 0);
  for (const r of broken) console.log(`FAILED: ${r.scenario}: ${r.missingSentAfterFault} 200s sent after the fault began, ${r.missing} in all, are not in Redis${r.ok === 0 ? "; no request was answered 200" : ""}`);
  if (broken.length === 0) console.log("Every 200 sent after a fault began is in Redis; every 200 of the run is, unless Redis was killed without AOF.");
  process.exitCode = broken.length === 0 ? 0 : 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
