// Where the instructions of a kept instructions-http.mjs dump go, JIT code included.
//
//   IH_KEEP=/tmp/keep IH_NODE_ARGS=--perf-basic-prof IH_IMPLS=floor-session,sessionbox-cookie \
//     IH_ROUTES=read node bench/instructions-http.mjs
//   node bench/callgrind-jit.mjs /tmp/keep/sessionbox-cookie-read.out /tmp/perf-PID.map [N] [other.out other.map]
//
// callgrind names V8's compiled JavaScript only by address; `--perf-basic-prof` makes node
// write /tmp/perf-PID.map (address, size, name), which names it. Prints the self cost per
// request (N requests were counted, default 2000) by area (property lookups and inline caches,
// hidden-class transitions, the garbage collector, the optimizing compiler, JSON, ...) and the
// top functions (TOP=n of them, default 40). Given a second dump and map, it prints both side by side and the difference.
import { readFileSync } from "node:fs";
import { GC_FUNCTION } from "./common.mjs";

const AREAS = [
  ["json", /Json|JSON/],
  ["gc", GC_FUNCTION], // as instructions-http.mjs counts it, so "without GC" means the same in both
  ["compiler", /compiler::|Turbofan|Maglev|Bytecode|baseline/],
  ["lookups and ICs", /LookupIterator|IC::|LoadIC|StoreIC|KeyedLoad|KeyedStore|StubCache|Feedback|Handler|PrototypeIterator|PrototypeChain/],
  ["hidden classes", /Map::|MigrateToMap|Descriptor|MapUpdater|Transition|FieldIndex|NumberOfFields|FieldType/],
  ["regexp", /RegExp/],
  ["strings", /String|Cons/],
  ["crypto", /EVP|aes|AES|sha|SHA|gcm|ossl|OPENSSL/],
  ["malloc", /malloc|free|memcpy|memmove|operator new|operator delete/],
  ["JavaScript", /^JS /],
  ["builtins", /^Builtins_/],
];

/** Self cost per function name, per request. */
function selfCosts(dumpFile, mapFile, requests) {
  const ranges = readFileSync(mapFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const [start, size, ...name] = line.split(" ");
      return [parseInt(start, 16), parseInt(size, 16), name.join(" ")];
    })
    .sort((a, b) => a[0] - b[0]);
  const jitName = (address) => {
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (ranges[mid][0] <= address) lo = mid + 1;
      else hi = mid - 1;
    }
    const range = ranges[hi];
    return range && address < range[0] + range[1] ? `JS ${range[2]}` : "JS (unnamed)";
  };
  const names = new Map();
  const costs = new Map();
  let current;
  let afterCalls = false;
  for (const line of readFileSync(dumpFile, "utf8").split("\n")) {
    const fn = /^(c?)fn=\((\d+)\)(?: (.*))?/.exec(line);
    if (fn) {
      if (fn[3] !== undefined) names.set(fn[2], fn[3]);
      if (fn[1] === "") current = fn[2];
      continue;
    }
    if (line.startsWith("calls=")) {
      afterCalls = true; // the next cost line is the callee's inclusive cost
      continue;
    }
    if (/^[0-9+*-]/.test(line)) {
      if (afterCalls) afterCalls = false;
      else if (current !== undefined) costs.set(current, (costs.get(current) ?? 0) + Number(line.split(" ")[1] ?? 0));
    }
  }
  const byName = new Map();
  for (const [id, cost] of costs) {
    const raw = names.get(id) ?? "?";
    const name = raw.startsWith("0x") ? jitName(parseInt(raw.split("'")[0], 16)) : raw.slice(0, 100);
    byName.set(name, (byName.get(name) ?? 0) + cost / requests);
  }
  return byName;
}

const areaOf = (name) => AREAS.find(([, pattern]) => pattern.test(name))?.[0] ?? "other";
const fmt = (n) => Math.round(n).toLocaleString("en-US").padStart(10);

const [dump, map, n = "2000", dump2, map2] = process.argv.slice(2);
if (!dump || !map) {
  console.error("usage: node bench/callgrind-jit.mjs DUMP PERF_MAP [REQUESTS] [DUMP2 PERF_MAP2]");
  process.exit(2);
}
const runs = [selfCosts(dump, map, Number(n))];
if (dump2 && map2) runs.push(selfCosts(dump2, map2, Number(n)));
const areas = runs.map((costs) => {
  const out = new Map();
  for (const [name, cost] of costs) out.set(areaOf(name), (out.get(areaOf(name)) ?? 0) + cost);
  return out;
});
const last = runs.length - 1;
console.log("by area, instructions per request:");
for (const area of [...new Set(areas.flatMap((a) => [...a.keys()]))].sort((a, b) => (areas[last].get(b) ?? 0) - (areas[last].get(a) ?? 0))) {
  const values = areas.map((a) => a.get(area) ?? 0);
  console.log(`${area.padEnd(16)}${values.map(fmt).join("")}${runs.length > 1 ? fmt(values[1] - values[0]) : ""}`);
}
const totals = runs.map((costs) => [...costs.values()].reduce((a, b) => a + b, 0));
console.log(`${"total".padEnd(16)}${totals.map(fmt).join("")}${runs.length > 1 ? fmt(totals[1] - totals[0]) : ""}`);
console.log(runs.length > 1 ? "\nfunctions, by difference:" : "\nfunctions:");
const names = [...new Set(runs.flatMap((costs) => [...costs.keys()]))];
const key = (name) => (runs.length > 1 ? (runs[1].get(name) ?? 0) - (runs[0].get(name) ?? 0) : runs[0].get(name));
for (const name of names.sort((a, b) => key(b) - key(a)).slice(0, Number(process.env.TOP ?? 40))) {
  console.log(`${runs.map((costs) => fmt(costs.get(name) ?? 0)).join("")}${runs.length > 1 ? fmt(key(name)) : ""}  ${name}`);
}
