// A/B on one route: `node bench/ab.mjs ROUTE IMPL_A[@DIST] IMPL_B[@DIST] ... `, alternating short
// autocannon runs (AB_SECONDS, default 3; AB_ROUNDS, default 6) and printing each row's median
// req/s and CPU µs per request, and its per-round ratio to the first row. For checking one change
// quickly; `npm run bench` is the full suite. IMPL@/abs/dist/cjs measures another build;
// AB_EXEC_ARGV (space-separated) passes Node flags to every server. CPUs are placed as in
// `npm run bench` (common.mjs, placeCpus; BENCH_PIN=0 turns it off).
import autocannon from "autocannon";
import { installCleanup, killChildren, median, placeCpus, setupSession, startRedis, startServer } from "./common.mjs";

installCleanup();
console.log(`CPU placement: ${placeCpus()}`);
const [route, ...specs] = process.argv.slice(2);
const SECONDS = Number(process.env.AB_SECONDS ?? 3);
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);
const redis = specs.some((s) => s.includes("redis")) ? await startRedis() : null;
const rows = [];
for (const spec of specs) {
  const [impl, dist] = spec.split("@");
  const env = { ...(redis ? { REDIS_URL: redis.url } : {}), ...(dist ? { BENCH_DIST: dist } : {}) };
  const server = await startServer(impl, { env, execArgv: process.env.AB_EXEC_ARGV ? process.env.AB_EXEC_ARGV.split(" ") : [] });
  rows.push({ spec, server, runs: [] });
}
for (let k = 0; k < ROUNDS; k++) {
  for (const row of k % 2 === 0 ? rows : [...rows].reverse()) {
    const cookie = await setupSession(row.server.port);
    if (k === 0) await autocannon({ url: `http://127.0.0.1:${row.server.port}/${route}`, connections: 50, duration: 1, headers: { cookie } });
    const before = await row.server.cpu();
    const r = await autocannon({ url: `http://127.0.0.1:${row.server.port}/${route}`, connections: 50, duration: SECONDS, headers: { cookie } });
    const after = await row.server.cpu();
    row.runs.push({ rps: r.requests.average, cpu: (after.user + after.system - before.user - before.system) / r.requests.total, sys: (after.system - before.system) / r.requests.total, bad: r.non2xx + r.errors });
  }
}
for (const row of rows) {
  const ratios = row.runs.map((m, k) => m.rps / rows[0].runs[k].rps);
  console.log(
    `${row.spec.padEnd(60)} ${Math.round(median(row.runs.map((m) => m.rps))).toString().padStart(6)} req/s  ${median(row.runs.map((m) => m.cpu)).toFixed(0).padStart(4)} µs CPU/req (${median(row.runs.map((m) => m.sys)).toFixed(0)} sys)  ratio ${median(ratios).toFixed(3)} (${ratios.map((r) => r.toFixed(2)).join(" ")})${row.runs.some((m) => m.bad) ? "  !! errors" : ""}`,
  );
}
for (const row of rows) await row.server.stop();
redis?.stop();
killChildren();
