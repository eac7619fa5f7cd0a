// CPU profiles of the package under load: `node bench/profile.mjs` (after npm run build).
//
// For each implementation and route, starts bench/server.mjs under `node --cpu-prof`, drives
// it with autocannon (warm-up, then PROFILE_SECONDS of load), stops it (the profile is
// written at exit) and summarises where the server's CPU time went: by area (this package,
// each dependency, Node internals, GC), the package's functions by self time, and the
// share of samples with a package frame anywhere on the stack (inclusive time).
//
// Environment: PROFILE_SECONDS (default 8), PROFILE_IMPLS (comma-separated; default the
// cookie, memory and redis rows), PROFILE_ROUTES (default untouched,read).
// Profiles land in bench/results/profiles/*.cpuprofile (open them in Chrome DevTools);
// the summary in bench/results/profile.md.
import autocannon from "autocannon";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, hasRedisStore, installCleanup, killChildren, machineInfo, setupSession, startRedis, startServer } from "./common.mjs";

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 8);
const ROUTES = (process.env.PROFILE_ROUTES ?? "untouched,read").split(",");
const DIR = join(BENCH_DIR, "results", "profiles");
const INTERVAL_US = 500;

function isPackage(url) {
  return url.includes("/dist/cjs/") && !url.includes("/node_modules/");
}

/** Frames where control leaves the session code for work that would happen without it. */
const HANDOFF = new Set(["end", "write", "writeHead", "_implicitHeader", "_send", "_writeRaw", "_storeHeader", "flushHeaders", "_finish"]);
function isHandoff(cf) {
  const a = area(cf.url);
  if (a === "router" || a === "express" || a === "bench server (handlers)") return true;
  return (cf.url === "node:_http_outgoing" || cf.url === "node:_http_server") && HANDOFF.has(cf.functionName);
}

function area(url) {
  if (!url) return null;
  if (isPackage(url)) return "sessionbox (dist/cjs)";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  if (url.startsWith("node:")) return "node internals";
  if (url.includes("/bench/")) return "bench server (handlers)";
  return url;
}

/** Summarises a .cpuprofile: per-area self time, package functions by self and inclusive time. */
export function summarise(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);

  let busy = 0;
  const areas = new Map();
  const self = new Map();
  const inclusive = new Map();
  let withPackage = 0;
  let attributable = 0;
  const key = (cf) => `${cf.functionName || "(anonymous)"} ${cf.url.replace(/^.*\/dist\/cjs\//, "")}:${cf.lineNumber + 1}`;
  for (const [id, count] of counts) {
    const node = byId.get(id);
    const cf = node.callFrame;
    if (cf.functionName === "(idle)") continue;
    busy += count;
    const a = area(cf.url) ?? cf.functionName; // (program), (garbage collector)
    areas.set(a, (areas.get(a) ?? 0) + count);
    if (isPackage(cf.url)) self.set(key(cf), (self.get(key(cf)) ?? 0) + count);
    // Walk the stack once per distinct sampled node: each package function counted once per sample.
    // Attributable: the nearest frame up the stack that is either ours or a hand-off to
    // work that happens anyway (the router, the handler, Node writing the response) is ours.
    const seen = new Set();
    let decided = false;
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const f = byId.get(at).callFrame;
      if (isPackage(f.url)) {
        seen.add(key(f));
        if (!decided) attributable += count;
        decided = true;
      } else if (!decided && isHandoff(f)) decided = true;
    }
    if (seen.size) withPackage += count;
    for (const k of seen) inclusive.set(k, (inclusive.get(k) ?? 0) + count);
  }
  const pct = (n) => (100 * n) / busy;
  const sorted = (m) => [...m].sort((a, b) => b[1] - a[1]).map(([name, n]) => ({ name, pct: pct(n) }));
  return { busySamples: busy, packageInclusivePct: pct(withPackage), attributablePct: pct(attributable), areas: sorted(areas), self: sorted(self), inclusive: sorted(inclusive) };
}

function markdown(entries) {
  const out = ["## CPU profiles under load", ""];
  out.push(
    `\`node --cpu-prof --cpu-prof-interval ${INTERVAL_US}\`, ${SECONDS} s of autocannon load (50 connections) after a 2 s warm-up; percentages are of the server's busy (non-idle) samples, start-up included.`,
    "",
  );
  for (const e of entries) {
    const s = e.summary;
    out.push(`### ${e.impl} \`${e.route}\` (${e.rps.toFixed(0)} req/s while profiled)`, "");
    out.push(
      `Attributable to sessionbox: **${s.attributablePct.toFixed(1)}%** of busy samples (a sessionbox frame is the nearest frame above the sample that is ours or a hand-off to ` +
        `the router, the route handler or Node writing the response). Samples with a sessionbox frame anywhere on the stack: ${s.packageInclusivePct.toFixed(1)}% (includes what the wrappers pass through to).`,
      "",
    );
    out.push("Self time by area: " + s.areas.slice(0, 10).map((a) => `${a.name} ${a.pct.toFixed(1)}%`).join(", ") + ".", "");
    out.push("| sessionbox function | self % | | sessionbox function | inclusive % |", "|---|---:|---|---|---:|");
    const n = Math.max(Math.min(s.self.length, 12), Math.min(s.inclusive.length, 12));
    for (let i = 0; i < n; i++) {
      const a = s.self[i];
      const b = s.inclusive[i];
      out.push(`| ${a ? `\`${a.name}\`` : ""} | ${a ? a.pct.toFixed(2) : ""} | | ${b ? `\`${b.name}\`` : ""} | ${b ? b.pct.toFixed(2) : ""} |`);
    }
    out.push("");
  }
  return out.join("\n");
}

async function main() {
  installCleanup();
  rmSync(DIR, { recursive: true, force: true });
  mkdirSync(DIR, { recursive: true });
  const redisStore = await hasRedisStore();
  const redis = await startRedis();
  const defaults = ["sessionbox-cookie", "sessionbox-memory"];
  if (redis && redisStore) defaults.push("sessionbox-redis", "sessionbox-redis-lazy");
  const impls = process.env.PROFILE_IMPLS ? process.env.PROFILE_IMPLS.split(",") : defaults;
  const entries = [];
  for (const impl of impls) {
    for (const route of ROUTES) {
      const name = `${impl}-${route}.cpuprofile`;
      const server = await startServer(impl, {
        env: redis ? { REDIS_URL: redis.url } : {},
        execArgv: ["--cpu-prof", "--cpu-prof-dir", DIR, "--cpu-prof-name", name, "--cpu-prof-interval", String(INTERVAL_US)],
      });
      const cookie = await setupSession(server.port);
      const url = `http://127.0.0.1:${server.port}/${route}`;
      await autocannon({ url, connections: 50, duration: 2, headers: { cookie } });
      const result = await autocannon({ url, connections: 50, duration: SECONDS, headers: { cookie } });
      await server.stop();
      const summary = summarise(JSON.parse(readFileSync(join(DIR, name), "utf8")));
      entries.push({ impl, route, rps: result.requests.average, summary });
      console.log(`${impl} ${route}: ${result.requests.average.toFixed(0)} req/s; attributable to sessionbox ${summary.attributablePct.toFixed(1)}%`);
      for (const f of summary.self.slice(0, 8)) console.log(`    self ${f.pct.toFixed(2).padStart(6)}%  ${f.name}`);
    }
  }
  redis?.stop();
  const md = `Machine: ${machineInfo().cpu}, ${machineInfo().cores} cores, Node ${process.version}.\n\n${markdown(entries)}`;
  writeFileSync(join(BENCH_DIR, "results", "profile.md"), md);
  writeFileSync(join(BENCH_DIR, "results", "profile.json"), JSON.stringify(entries, null, 2));
  console.log(`\n${md}`);
  killChildren();
}

main().catch((err) => {
  console.error(err);
  killChildren();
  process.exit(1);
});
