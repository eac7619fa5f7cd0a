// Correctness under load (issue 4, item 3). Run by run.mjs; also runnable alone:
//   node --expose-gc bench/correctness.mjs        (starts its own redis-server if REDIS_URL is unset)
//
// 1. Lost update: two concurrent requests on one session, each writing a different key.
//    Each handler waits LOST_DELAY ms between loading the session and changing it, the way a
//    real handler does some work (a database query) in between; that makes both requests
//    load the session before either saves it, every round, instead of by luck. A store that
//    saves the whole session keeps only the last writer's key; one that writes only changed
//    fields keeps both.
// 2. Memory bound: 1,000,000 distinct sessions through MemoryStore with its default bound,
//    heap sampled as it goes. See memoryCheck() for how the sessions are driven and why.
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { DIST, fmtInt, get, hasRedisStore, installCleanup, killChildren, setupSession, startRedis, startServer } from "./common.mjs";

const require = createRequire(import.meta.url);
const QUICK = process.env.BENCH_QUICK === "1";
const ROUNDS = Number(process.env.BENCH_LOST_ROUNDS ?? (QUICK ? 50 : 200));
const LOST_DELAY = 20;
const SESSIONS = Number(process.env.BENCH_MEMORY_SESSIONS ?? (QUICK ? 100_000 : 1_000_000));
const MB = 2 ** 20;

/** Two concurrent writers per round on one fresh session; counts rounds where both keys persisted. */
async function lostUpdate(impl, redisUrl) {
  const server = await startServer(impl, { env: redisUrl ? { REDIS_URL: redisUrl } : {} });
  let both = 0;
  let lost = 0;
  let failed = 0;
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const cookie = await setupSession(server.port);
      const writes = await Promise.all(
        ["a", "b"].map((key) => get(server.port, `/lost/${key}?value=${round}&delay=${LOST_DELAY}`, cookie)),
      );
      if (writes.some((res) => res.status !== 200)) {
        failed++;
        continue;
      }
      const data = JSON.parse((await get(server.port, "/dump", cookie)).body);
      if (data.a === String(round) && data.b === String(round) && data.user === "bench-user") both++;
      else lost++;
    }
  } finally {
    await server.stop();
  }
  return { impl, rounds: ROUNDS, bothPersisted: both, lostOne: lost, failed };
}

function heapMB() {
  return process.memoryUsage().heapUsed / MB;
}

/**
 * Drives MemoryStore directly with the calls the middleware makes for a new visitor whose
 * handler writes to the session: `load` (no cookie: a new empty session), two fields set,
 * `dump` (stores the entry, returns the signed id cookie), and the cookie serialized. Going
 * through store.load/store.dump rather than HTTP is what makes a million sessions take
 * seconds, and it is the honest test of the bound: the middleware keeps nothing per session
 * after the response (its per-request state is garbage once the request ends), so all
 * retained memory is the store's. Heap after a forced GC (run with --expose-gc) at each
 * checkpoint is the retained size; the peak is the largest heapUsed sampled every 1000
 * sessions, garbage included.
 */
function memoryCheck() {
  const { MemoryStore } = require(DIST);
  const store = new MemoryStore();
  const ctx = { req: { headers: {}, socket: {} }, res: {}, cookies: {} };
  const checkpoints = [100_000, 500_000, 1_000_000].filter((n) => n <= SESSIONS);
  if (!checkpoints.includes(SESSIONS)) checkpoints.push(SESSIONS);
  globalThis.gc?.();
  const baseline = heapMB();
  let peak = baseline;
  const samples = [];
  const started = Date.now();
  for (let i = 1; i <= SESSIONS; i++) {
    const session = store.load(ctx);
    session.userId = `user-${i}`;
    session.cart = [i, i + 1];
    store.dump(session, ctx).serialize();
    if (i % 1000 === 0) peak = Math.max(peak, heapMB());
    if (checkpoints.includes(i)) {
      globalThis.gc?.();
      const sample = { sessions: i, kept: store.size, heapAfterGcMB: heapMB(), peakSoFarMB: peak, rssMB: process.memoryUsage().rss / MB };
      samples.push(sample);
      console.log(
        `  MemoryStore: ${fmtInt(i).padStart(9)} sessions written, ${fmtInt(store.size)} kept; heap after GC ${sample.heapAfterGcMB.toFixed(1)} MB, peak so far ${peak.toFixed(1)} MB, rss ${sample.rssMB.toFixed(0)} MB`,
      );
    }
  }
  return { sessions: SESSIONS, max: 10_000, baselineMB: baseline, peakMB: peak, samples, seconds: (Date.now() - started) / 1000, gcExposed: typeof globalThis.gc === "function" };
}

/** For contrast: express-session's MemoryStore keeps every session until it expires. */
function expressSessionMemory() {
  const session = require("express-session");
  const store = new session.MemoryStore();
  const n = QUICK ? 50_000 : 200_000;
  const samples = [];
  globalThis.gc?.();
  const baseline = heapMB();
  for (let i = 1; i <= n; i++) {
    const expires = new Date(Date.now() + 86_400_000);
    store.set(`sid-${i}-${Math.random().toString(36).slice(2)}`, { cookie: { originalMaxAge: 86_400_000, expires, httpOnly: true, path: "/" }, userId: `user-${i}`, cart: [i, i + 1] }, () => {});
    if (i % (n / 2) === 0) {
      globalThis.gc?.();
      samples.push({ sessions: i, heapAfterGcMB: heapMB() });
      console.log(`  express-session MemoryStore (contrast): ${fmtInt(i).padStart(9)} sessions, heap after GC ${heapMB().toFixed(1)} MB`);
    }
  }
  return { sessions: n, baselineMB: baseline, samples };
}

export async function runCorrectness() {
  installCleanup();
  const result = { lostUpdate: [], rounds: ROUNDS, delayMs: LOST_DELAY };
  let redisUrl = process.env.REDIS_URL;
  let redis = null;
  if (!redisUrl) {
    redis = await startRedis();
    redisUrl = redis?.url;
  }
  const redisStore = process.env.BENCH_REDIS_STORE ? process.env.BENCH_REDIS_STORE === "1" : await hasRedisStore();
  const impls = [];
  if (redisUrl && redisStore) impls.push("sessionbox-redis");
  else result.skippedRedisStore = redisUrl ? "RedisStore is not in dist/cjs yet" : "redis-server not installed (apt-get install redis-server)";
  if (redisUrl) impls.push("express-session+connect-redis");
  impls.push("sessionbox-memory", "express-session");
  for (const impl of impls) {
    const r = await lostUpdate(impl, redisUrl);
    result.lostUpdate.push(r);
    console.log(`  lost update, ${impl.padEnd(30)} ${r.bothPersisted}/${r.rounds} rounds kept both keys, ${r.lostOne} lost one${r.failed ? `, ${r.failed} failed requests` : ""}`);
  }
  redis?.stop();
  result.memory = memoryCheck();
  result.expressSessionMemory = expressSessionMemory();
  return result;
}

export function correctnessMarkdown(result) {
  const out = ["### Correctness under load", ""];
  out.push(
    `Lost update: ${result.rounds} rounds; each round creates a session, then two concurrent requests on it each set a different key ` +
      `(each handler waits ${result.delayMs} ms between loading and writing, so both load before either saves), then the session is read back.`,
    "",
    "| implementation | both keys kept | one key lost | failed |",
    "|---|---:|---:|---:|",
  );
  for (const r of result.lostUpdate) out.push(`| ${r.impl} | ${r.bothPersisted}/${r.rounds} | ${r.lostOne} | ${r.failed} |`);
  if (result.skippedRedisStore) out.push("", `sessionbox-redis skipped: ${result.skippedRedisStore}.`);
  const m = result.memory;
  out.push(
    "",
    `Memory: ${fmtInt(m.sessions)} distinct sessions written through MemoryStore (default bound ${fmtInt(m.max)}), driven with store.load/store.dump as the middleware calls them; ` +
      `heap before ${m.baselineMB.toFixed(1)} MB, peak heapUsed sampled every 1,000 sessions ${m.peakMB.toFixed(1)} MB (${m.seconds.toFixed(0)} s).`,
    "",
    "| sessions written | sessions kept | heap after GC | peak heap so far | rss |",
    "|---:|---:|---:|---:|---:|",
  );
  for (const s of m.samples) out.push(`| ${fmtInt(s.sessions)} | ${fmtInt(s.kept)} | ${s.heapAfterGcMB.toFixed(1)} MB | ${s.peakSoFarMB.toFixed(1)} MB | ${s.rssMB.toFixed(0)} MB |`);
  const e = result.expressSessionMemory;
  if (e) {
    out.push("", `For contrast, express-session's MemoryStore (no bound) after ${e.samples.map((s) => `${fmtInt(s.sessions)} sessions: ${s.heapAfterGcMB.toFixed(1)} MB`).join(", ")} (heap after GC; baseline ${e.baselineMB.toFixed(1)} MB).`);
  }
  return out.join("\n");
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  runCorrectness()
    .then((result) => {
      if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(result, null, 2));
      else console.log(`\n${correctnessMarkdown(result)}`);
      killChildren();
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      killChildren();
      process.exit(1);
    });
}
